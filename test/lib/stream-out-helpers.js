// Shared by the http-stream-out specs and bench/stream-out.js: real ffmpeg fixtures, an MJPEG client,
// an MP4 box walker, and an HTTP server in front of the RED.httpNode app the test helper gives nodes.
"use strict";
const http = require("http");
const { spawn } = require("child_process");
// until and makeJpegs are the toolkit's, re-exported under the names specs import.
const { until, makeJpegs } = require("./toolkit");

const ffmpegPath = require("@ffmpeg-installer/ffmpeg").path;
const ffprobePath = require("@ffprobe-installer/ffprobe").path;

/** Runs a program to its end; rejects after `timeout` ms (killing it). */
function run(file, args, { timeout = 20000, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out = [];
    let err = "";
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`${file.split("/").pop()} timed out: ${err.slice(-500)}`));
    }, timeout);
    p.stdout.on("data", (d) => out.push(d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    p.stdin.on("error", () => undefined);
    if (input) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** Top-level MP4 boxes as { type, start, end }. */
function mp4Boxes(buf) {
  const boxes = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    if (size === 1) size = Number(buf.readBigUInt64BE(pos + 8));
    else if (size === 0) size = buf.length - pos;
    if (size < 8 || pos + size > buf.length) break;
    boxes.push({ type, start: pos, end: pos + size });
    pos += size;
  }
  return boxes;
}

/** A fragmented MP4 from ffmpeg cut into the init segment and moof+mdat fragments (1 s each at -g 10). */
async function makeFmp4({ seconds = 8, size = "320x240" } = {}) {
  const { code, stdout, stderr } = await run(ffmpegPath, [
    ...["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=10`, "-t", String(seconds)],
    ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p"],
    ...["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe", "pipe:1"],
  ]);
  if (code !== 0) throw new Error(stderr);
  const boxes = mp4Boxes(stdout);
  const moof = boxes.findIndex((b) => b.type === "moof");
  const init = stdout.subarray(0, boxes[moof].start);
  const fragments = [];
  for (let i = moof; i < boxes.length; i++) {
    if (boxes[i].type !== "moof") continue;
    const mdat = boxes.slice(i + 1).find((b) => b.type === "mdat");
    fragments.push(stdout.subarray(boxes[i].start, mdat.end));
  }
  return { init, fragments, all: stdout };
}

/**
 * Reads a multipart/x-mixed-replace body part by part (by Content-Length). Calls onPart(part) with
 * { length, head (first 64 bytes), body (only with keepBody), headers, at }. Cheap enough for a benchmark.
 */
class MultipartReader {
  constructor(onPart, { keepBody = true } = {}) {
    this.onPart = onPart;
    this.keepBody = keepBody;
    this.header = Buffer.alloc(0);
    this.need = -1;
    this.chunks = [];
    this.headBytes = null;
    this.headers = "";
    this.bytes = 0;
  }

  push(chunk) {
    this.bytes += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.need < 0) {
        const hdr = this.header.length
          ? Buffer.concat([this.header, chunk.subarray(pos)])
          : chunk.subarray(pos);
        const end = hdr.indexOf("\r\n\r\n");
        if (end < 0) {
          if (hdr.length > 4096) throw new Error("part header too long");
          this.header = Buffer.from(hdr);
          return;
        }
        const used = end + 4 - this.header.length;
        this.headers = hdr.toString("latin1", 0, end);
        const m = /content-length:\s*(\d+)/i.exec(this.headers);
        if (!m) throw new Error(`no Content-Length in part: ${this.headers}`);
        this.need = Number(m[1]);
        this.length = this.need;
        this.header = Buffer.alloc(0);
        this.chunks = [];
        this.headBytes = null;
        pos += used;
        continue;
      }
      const take = Math.min(this.need, chunk.length - pos);
      const piece = chunk.subarray(pos, pos + take);
      if (this.headBytes === null) this.headBytes = Buffer.from(piece.subarray(0, 64));
      else if (this.headBytes.length < 64)
        this.headBytes = Buffer.concat([this.headBytes, piece]).subarray(0, 64);
      if (this.keepBody) this.chunks.push(piece);
      this.need -= take;
      pos += take;
      if (this.need === 0) {
        this.need = -1;
        const body = this.keepBody ? Buffer.concat(this.chunks) : undefined;
        this.chunks = [];
        this.onPart({
          length: this.length,
          head: this.headBytes,
          body,
          headers: this.headers,
          at: performance.now(),
        });
      }
    }
  }
}

/** GET an MJPEG URL; resolves { res, req, parts, close() } once headers arrive; parts fill as they come. */
function openMjpeg(url, { onPart, headers } = {}) {
  return new Promise((resolve, reject) => {
    const parts = [];
    const req = http.get(url, { headers, agent: false }, (res) => {
      const reader = new MultipartReader((p) => {
        parts.push(p);
        if (onPart) onPart(p);
      });
      res.on("data", (d) => reader.push(d));
      res.on("error", () => undefined);
      resolve({ res, req, parts, close: () => req.destroy() });
    });
    req.on("error", reject);
  });
}

/** Simple request: resolves { status, headers, body }. */
function request(url, { method = "GET", headers } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The test helper hands nodes a fresh express app as RED.httpNode (not attached to any server), so
 * wrapNode() remembers it and this server, mounted at `root`, passes requests to it.
 */
function httpNodeServer(root = "/") {
  const state = { app: null };
  const server = http.createServer((req, res) => {
    const notFound = () => {
      if (!res.headersSent) res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("no route\n");
    };
    if (!state.app || !req.url.startsWith(root)) return notFound();
    if (root !== "/") req.url = req.url.slice(root.length - 1);
    state.app(req, res, notFound);
  });
  const wrap = (nodeModule) => (RED) => {
    state.app = RED.httpNode;
    return nodeModule(RED);
  };
  return {
    wrap,
    listen: () => new Promise((r) => server.listen(0, "127.0.0.1", r)),
    url: (p = "") => `http://127.0.0.1:${server.address().port}${root.replace(/\/$/, "")}${p}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  };
}

/** Every endpoint an http stream out serves under its path, but the segment and init URLs (they vary). */
const ENDPOINTS = [
  "",
  "/",
  "/snapshot.jpg",
  "/status.json",
  "/status",
  "/metrics",
  "/stream.mp4",
  "/index.m3u8",
];

module.exports = {
  ENDPOINTS,
  ffmpegPath,
  ffprobePath,
  run,
  makeJpegs,
  makeFmp4,
  mp4Boxes,
  MultipartReader,
  openMjpeg,
  request,
  until,
  httpNodeServer,
};
