// The Node-RED-free core of http-stream-out: viewer backpressure, bandwidth cap, fMP4 ring and playlist,
// snapshot timeouts and stall drops on a plain Node http server.
"use strict";
const assert = require("assert");
const http = require("http");
const { EventEmitter } = require("events");
const { StreamViewer } = require("../dist/nodes/lib/serve/viewer");
const { Fmp4Store } = require("../dist/nodes/lib/serve/fmp4-store");
const { StreamServer, mjpegPart } = require("../dist/nodes/lib/serve/stream-server");
const h = require("./lib/stream-out-helpers");

/** A response whose socket accepts writes until `full`, then says busy until drain(). */
class FakeResponse extends EventEmitter {
  constructor() {
    super();
    this.written = [];
    this.full = false;
    this.destroyed = false;
    this.writableLength = 0;
  }
  write(buf) {
    this.written.push(buf);
    return !this.full;
  }
  drain() {
    this.full = false;
    this.emit("drain");
  }
  end() {
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
}

function viewer(res, { kbps = 0, clock } = {}) {
  const totals = { framesSent: 0, framesSkipped: 0, bytesOut: 0 };
  const now = clock || (() => performance.now());
  return { v: new StreamViewer(res, "mjpeg", "1.2.3.4", Date.now(), totals, (kbps * 1000) / 8, now), totals };
}

describe("StreamViewer", function () {
  it("keeps one pending packet while busy, newest wins, and sends it on drain", function () {
    const res = new FakeResponse();
    const { v, totals } = viewer(res);
    const p = [1, 2, 3, 4].map((i) => Buffer.from(`frame${i}`));
    res.full = true;
    v.offer(p[0]);
    assert.deepStrictEqual(res.written, [p[0]]);
    v.offer(p[1]);
    v.offer(p[2]);
    v.offer(p[3]);
    assert.strictEqual(res.written.length, 1, "nothing written while busy");
    assert.ok(v.hasPending);
    assert.strictEqual(v.framesSkipped, 2);
    res.drain();
    assert.deepStrictEqual(res.written, [p[0], p[3]]);
    assert.strictEqual(res.written[1], p[3], "the shared Buffer itself, not a copy");
    assert.ok(!v.hasPending);
    assert.deepStrictEqual(totals, { framesSent: 2, framesSkipped: 2, bytesOut: p[0].length + p[3].length });
  });

  it("is stalled once busy for longer than the timeout", function () {
    let t = 0;
    const res = new FakeResponse();
    const { v } = viewer(res, { clock: () => t });
    res.full = true;
    v.offer(Buffer.alloc(10));
    t = 999;
    assert.ok(!v.isStalled(1000));
    t = 1001;
    assert.ok(v.isStalled(1000));
    res.drain();
    assert.ok(!v.isStalled(1000));
    v.close(false);
    assert.ok(res.ended && !res.destroyed);
  });

  it("skips packets over the kbps budget instead of queueing them", function () {
    let t = 0;
    const res = new FakeResponse();
    const { v } = viewer(res, { kbps: 80, clock: () => t }); // 10 000 bytes per second
    const frame = Buffer.alloc(4000);
    for (let i = 0; i < 100; i++) {
      v.offer(frame);
      t += 100; // 10 s at 10 fps: 40 000 bytes/s offered
    }
    // One second of burst plus 10 s at 10 000 B/s (one packet of debt allowed) is about 110 000 bytes.
    const sent = res.written.length * frame.length;
    assert.ok(sent >= 100000 && sent <= 116000, `sent ${sent}`);
    assert.strictEqual(v.framesSkipped + v.framesSent, 100);
  });

  it("never writes after close", function () {
    const res = new FakeResponse();
    const { v } = viewer(res);
    v.close(true);
    v.offer(Buffer.alloc(1));
    assert.strictEqual(res.written.length, 0);
    assert.ok(res.destroyed);
  });
});

describe("Fmp4Store", function () {
  const info = (i) => ({
    type: "fragment",
    seq: i,
    duration: 1,
    time: 1700000000000 + i * 1000,
    codec: "avc1",
    width: 1,
    height: 1,
  });

  it("bounds the ring by count and bytes and 404s what left it", function () {
    const s = new Fmp4Store({ maxSegments: 4, maxBytes: 1000 });
    assert.strictEqual(s.pushFragment(Buffer.alloc(10), info(0)), undefined, "no init yet");
    s.pushInit(Buffer.from("init"), { ...info(0), type: "init" });
    for (let i = 0; i < 10; i++) s.pushFragment(Buffer.alloc(100), info(i));
    assert.deepStrictEqual(
      s.segments.map((x) => x.seq),
      [6, 7, 8, 9],
    );
    assert.strictEqual(s.segment(5), undefined);
    assert.strictEqual(s.segment(9).seq, 9);
    s.pushFragment(Buffer.alloc(900), info(10));
    assert.ok(s.byteLength <= 1000);
    s.pushFragment(Buffer.alloc(5000), info(11));
    assert.deepStrictEqual(
      s.segments.map((x) => x.seq),
      [11],
      "keeps the latest even when it alone is too big",
    );
  });

  it("writes an HLS v7 playlist with the map, program date time and a discontinuity after a new init", function () {
    const s = new Fmp4Store({ maxSegments: 4 });
    s.pushInit(Buffer.from("a"), { ...info(0), type: "init" });
    for (let i = 0; i < 3; i++) s.pushFragment(Buffer.alloc(1), { ...info(i), duration: 1.2 });
    s.pushInit(Buffer.from("b"), { ...info(0), type: "init" });
    s.pushFragment(Buffer.alloc(1), info(3));
    const pl = s.playlist("token=a%20b");
    assert.match(pl, /^#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n/);
    assert.match(
      pl,
      /#EXT-X-MAP:URI="init\.mp4\?v=1&token=a%20b"\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20\.000Z\n#EXTINF:1\.200,\nseg-0\.m4s\?token=a%20b\n/,
    );
    assert.match(
      pl,
      /#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init\.mp4\?v=2&token=a%20b"\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXTINF:1\.000,\nseg-3\.m4s/,
    );
    assert.strictEqual(s.initById(1).data.toString(), "a", "the old init stays while a segment needs it");
    for (let i = 4; i < 8; i++) s.pushFragment(Buffer.alloc(1), info(i));
    assert.strictEqual(s.initById(1), undefined, "and goes with its last segment");
    assert.match(s.playlist(), /#EXT-X-DISCONTINUITY-SEQUENCE:1\n/);
    assert.doesNotMatch(s.playlist(), /#EXT-X-DISCONTINUITY\n/);
  });
});

describe("StreamServer on a plain http server", function () {
  let server;
  let srv;
  let url;
  const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);

  async function start(options) {
    server = new StreamServer({ path: "/cam", tickMs: 50, renderPlaceholder: () => jpeg, ...options });
    srv = http.createServer((req, res) => server.handle(req, res));
    await new Promise((r) => srv.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${srv.address().port}`;
  }

  afterEach(async function () {
    server.close();
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  });

  it("answers snapshot.jpg?wait=1 with 504 when no frame comes in time", async function () {
    await start({ snapshotWaitMs: 200 });
    const r = await h.request(`${url}/snapshot.jpg?wait=1`);
    assert.strictEqual(r.status, 504);
  });

  it("builds each MJPEG part once, with header, frame and CRLF in one Buffer", function () {
    const part = mjpegPart({ data: jpeg, seq: 1, time: 1234567, camera: "c", width: 1, height: 1 });
    assert.strictEqual(
      part.toString("latin1"),
      "--camrelay\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\nX-Timestamp: 1234.567\r\n\r\n" +
        jpeg.toString("latin1") +
        "\r\n",
    );
  });

  it("ends open responses on close and answers 503 afterwards", async function () {
    await start();
    const c = await h.openMjpeg(`${url}/`);
    const ended = new Promise((r) => c.res.on("end", r));
    server.close();
    await ended;
    assert.strictEqual((await h.request(`${url}/status.json`)).status, 503);
  });

  it("reports viewer connect and disconnect through onViewer", async function () {
    const events = [];
    await start({ onViewer: ({ event, viewer: v, count }) => events.push([event, v.kind, count]) });
    const c = await h.openMjpeg(`${url}/`);
    await h.until(() => events.length === 1, "connect");
    c.close();
    await h.until(() => events.length === 2, "disconnect");
    assert.deepStrictEqual(events, [
      ["connect", "mjpeg", 1],
      ["disconnect", "mjpeg", 0],
    ]);
  });
});
