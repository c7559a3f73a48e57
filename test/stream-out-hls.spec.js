// http-stream-out fed with fMP4 (as ffmpeg transcode sends it): HLS and progressive MP4 read by ffmpeg/ffprobe.
"use strict";
const assert = require("assert");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const h = require("./lib/stream-out-helpers");

helper.init(require.resolve("node-red"));

describe("http-stream-out with fMP4 input", function () {
  this.timeout(30000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let mp4;
  const t0 = Date.UTC(2024, 0, 1, 12, 0, 0);
  const open = [];

  before(async function () {
    await web.listen();
    mp4 = await h.makeFmp4({ seconds: 10 });
    assert.strictEqual(mp4.fragments.length, 10);
  });
  after(() => web.close());
  afterEach(async function () {
    while (open.length) open.pop().close();
    await helper.unload();
  });

  async function load(props = {}, credentials) {
    const flow = [{ id: "out", type: "http-stream-out", path: "/cam", wires: [[]], ...props }];
    await helper.load(streamOut, flow, credentials ? { out: credentials } : {});
    return helper.getNode("out");
  }

  const meta = { codec: "avc1.42c00d", width: 320, height: 240 };
  function sendInit(n) {
    n.receive({
      payload: mp4.init,
      topic: "cam",
      mp4: { type: "init", seq: 0, duration: 0, time: t0, ...meta },
    });
  }
  function sendFragment(n, i) {
    const mp4msg = { type: "fragment", seq: i, duration: 1, time: t0 + i * 1000, ...meta };
    n.receive({ payload: mp4.fragments[i % mp4.fragments.length], topic: "cam", mp4: mp4msg });
  }

  /** Decodes `frames` frames from url with ffmpeg, scaled tiny; resolves the number decoded. */
  async function decode(url, frames) {
    const r = await h.run(h.ffmpegPath, [
      ...["-v", "error", "-i", url, "-frames:v", String(frames)],
      ...["-vf", "scale=16:12", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"],
    ]);
    assert.strictEqual(r.code, 0, r.stderr);
    return r.stdout.length / (16 * 12);
  }

  it("answers 503 until the first init and fragment arrive", async function () {
    await load();
    for (const p of ["/index.m3u8", "/stream.mp4"]) {
      const r = await h.request(web.url(`/cam${p}`));
      assert.strictEqual(r.status, 503, p);
      assert.ok(r.headers["retry-after"], p);
    }
    assert.strictEqual((await h.request(web.url("/cam/init.mp4"))).status, 404);
  });

  it("serves an HLS v7 playlist over the last fragments that ffprobe and ffmpeg decode", async function () {
    const n = await load();
    sendInit(n);
    for (let i = 0; i < 8; i++) sendFragment(n, i);
    const r = await h.request(web.url("/cam/index.m3u8"));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers["content-type"], "application/vnd.apple.mpegurl");
    assert.match(r.headers["cache-control"], /no-store/);
    const pl = r.body.toString();
    assert.match(pl, /^#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:2\n/);
    assert.match(pl, /#EXT-X-MAP:URI="init\.mp4\?v=1"/);
    assert.match(pl, /#EXT-X-PROGRAM-DATE-TIME:2024-01-01T12:00:02\.000Z\n#EXTINF:1\.000,\nseg-2\.m4s\n/);
    assert.strictEqual((pl.match(/^seg-\d+\.m4s$/gm) || []).length, 6);
    assert.doesNotMatch(pl, /EXT-X-ENDLIST/);
    const probe = await h.run(h.ffprobePath, [
      ...["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"],
      web.url("/cam/index.m3u8"),
    ]);
    assert.strictEqual(probe.stdout.toString().trim().split(/\s+/)[0], "h264,320,240", probe.stderr);
    assert.strictEqual(await decode(web.url("/cam/index.m3u8"), 25), 25);
    const seg = await h.request(web.url("/cam/seg-7.m4s"));
    assert.ok(seg.body.equals(mp4.fragments[7]));
    assert.strictEqual((await h.request(web.url("/cam/seg-1.m4s"))).status, 404, "expired segment");
    assert.ok((await h.request(web.url("/cam/init.mp4"))).body.equals(mp4.init));
    const s = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.ok(
      s.viewers.some((v) => v.kind === "hls" && v.framesSent >= 1),
      JSON.stringify(s.viewers),
    );
    assert.strictEqual(s.fmp4.segments, 6);
  });

  it("streams progressive fMP4: init and latest fragment at once, then each new fragment", async function () {
    const n = await load();
    sendInit(n);
    sendFragment(n, 0);
    let i = 1;
    const feeder = setInterval(() => sendFragment(n, i++), 150);
    try {
      const probe = await h.run(h.ffprobePath, [
        ...["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"],
        web.url("/cam/stream.mp4"),
      ]);
      assert.strictEqual(probe.stdout.toString().trim().split(/\s+/)[0], "h264,320,240", probe.stderr);
      assert.strictEqual(await decode(web.url("/cam/stream.mp4"), 35), 35);
    } finally {
      clearInterval(feeder);
    }
    const c = await new Promise((resolve) => {
      const chunks = [];
      const req = require("http").get(web.url("/cam/stream.mp4"), (res) => {
        res.on("data", (d) => chunks.push(d));
        resolve({ res, chunks, close: () => req.destroy() });
      });
    });
    open.push(c);
    const expected = mp4.init.length + mp4.fragments[(i - 1) % 10].length;
    await h.until(() => Buffer.concat(c.chunks).length >= expected, "init and latest fragment");
    assert.strictEqual(c.res.headers["content-type"], "video/mp4");
    const got = Buffer.concat(c.chunks);
    assert.ok(got.subarray(0, mp4.init.length).equals(mp4.init));
    sendFragment(n, i);
    await h.until(
      () => Buffer.concat(c.chunks).length === expected + mp4.fragments[i % 10].length,
      "next fragment",
    );
  });

  it("marks a new init with a discontinuity and ends progressive viewers, who reconnect to it", async function () {
    const n = await load();
    sendInit(n);
    for (let i = 0; i < 3; i++) sendFragment(n, i);
    const c = await new Promise((resolve) => {
      const req = require("http").get(web.url("/cam/stream.mp4"), (res) => {
        res.resume();
        resolve({ res, close: () => req.destroy() });
      });
    });
    open.push(c);
    const ended = new Promise((r) => c.res.on("close", r));
    sendInit(n);
    await ended;
    sendFragment(n, 0);
    const pl = (await h.request(web.url("/cam/index.m3u8"))).body.toString();
    assert.match(pl, /seg-2\.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init\.mp4\?v=2"\n/);
    assert.strictEqual((await h.request(web.url("/cam/init.mp4?v=1"))).status, 200, "still referenced");
    const metrics = (await h.request(web.url("/cam/metrics"))).body.toString();
    assert.match(
      metrics,
      /^camrelay_ffmpeg_restarts_total\{path="\/cam"\} 1$/m,
      "the new init counts as a restart",
    );
    let i = 1;
    const feeder = setInterval(() => sendFragment(n, i++), 150);
    try {
      assert.strictEqual(await decode(web.url("/cam/stream.mp4"), 15), 15);
    } finally {
      clearInterval(feeder);
    }
  });

  it("carries ?token= into the playlist URIs so a player can follow them", async function () {
    const n = await load({}, { token: "a b" });
    sendInit(n);
    for (let i = 0; i < 4; i++) sendFragment(n, i);
    assert.strictEqual((await h.request(web.url("/cam/index.m3u8"))).status, 401);
    const pl = (await h.request(web.url("/cam/index.m3u8?token=a%20b"))).body.toString();
    assert.match(pl, /init\.mp4\?v=1&token=a%20b/);
    assert.match(pl, /seg-3\.m4s\?token=a%20b/);
    assert.strictEqual(await decode(web.url("/cam/index.m3u8?token=a%20b"), 15), 15);
  });
});
