// A watching viewer for the reliability suites: one MJPEG connection that tells the camera's real frames
// from camrelay's placeholder card, and remembers what it saw in order, so a test can say "the viewer
// stayed connected and saw the placeholder, then the picture again".
"use strict";
const crypto = require("crypto");
const http = require("http");
const { MultipartReader } = require("./stream-out-helpers");
const { readJpegSize } = require("../../dist/nodes/lib/codec/jpeg-markers");

const digest = (buf) => crypto.createHash("sha1").update(buf).digest("hex");

class Viewer {
  /**
   * @param {string} url MJPEG URL
   * @param {Buffer[]} known the fake camera's frames: anything else that is a JPEG is the placeholder
   */
  constructor(url, known, { headers } = {}) {
    this.url = url;
    this.known = new Set(known.map(digest));
    this.seen = [];
    this.ended = false;
    this.status = 0;
    this.waiters = new Set();
    this.ready = new Promise((resolve, reject) => {
      this.req = http.get(url, { headers, agent: false }, (res) => {
        this.res = res;
        this.status = res.statusCode;
        const reader = new MultipartReader((part) => this.onPart(part));
        res.on("data", (d) => {
          try {
            reader.push(d);
          } catch (err) {
            this.error = err;
          }
        });
        res.on("error", () => undefined);
        res.on("close", () => {
          this.ended = true;
          this.wake();
        });
        resolve(this);
      });
      this.req.on("error", (err) => {
        this.ended = true;
        this.error = err;
        reject(err);
        this.wake();
      });
    });
  }

  onPart(part) {
    const body = part.body;
    const isJpeg = body.length > 4 && body[0] === 0xff && body[1] === 0xd8;
    const kind = this.known.has(digest(body)) ? "live" : isJpeg ? "placeholder" : "bad";
    const size = isJpeg ? readJpegSize(body) : undefined;
    this.seen.push({ kind, at: Date.now(), width: size?.width ?? 0, height: size?.height ?? 0 });
    this.wake();
  }

  wake() {
    for (const w of [...this.waiters]) w();
  }

  /** Index of the next part (for "after this point" questions). */
  get mark() {
    return this.seen.length;
  }

  count(kind, from = 0) {
    let n = 0;
    for (let i = from; i < this.seen.length; i++) if (this.seen[i].kind === kind) n++;
    return n;
  }

  /** Resolves with the index of the first part of `kind` at or after `from`; rejects after ms or on end. */
  waitFor(kind, from = 0, ms = 10000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.seen.length; i++) {
          if (this.seen[i].kind === kind) {
            done();
            resolve(i);
            return;
          }
        }
        if (this.ended) {
          done();
          reject(new Error(`viewer disconnected while waiting for a ${kind} frame`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${kind} frame within ${ms} ms (saw ${this.summary(from)})`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** "12 live, 3 placeholder, 10 live" from `from` on. */
  summary(from = 0) {
    const runs = [];
    for (let i = from; i < this.seen.length; i++) {
      const last = runs[runs.length - 1];
      if (last && last.kind === this.seen[i].kind) last.n++;
      else runs.push({ kind: this.seen[i].kind, n: 1 });
    }
    return runs.map((r) => `${r.n} ${r.kind}`).join(", ") || "nothing";
  }

  close() {
    this.req?.destroy();
  }
}

/** Opens `n` viewers of `url` and waits until each has its response headers. */
async function openViewers(n, url, known, options) {
  const viewers = [];
  for (let i = 0; i < n; i++) viewers.push(new Viewer(url, known, options));
  await Promise.all(viewers.map((v) => v.ready));
  return viewers;
}

module.exports = { Viewer, openViewers, digest };
