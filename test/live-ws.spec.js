// The per-path live feed (lib/serve/live-feed.ts) through a real StreamServer fed with real fMP4 from
// ffmpeg (libx264 -g 15 at 15 fps, 0.25 s fragments): a new video sink gets the init and the current GOP
// at once, JPEG sinks get wire JPEGs or the video decoded (only while wanted), limits, token and Origin are
// checked, status.json and viewer events show kind "ws"/"webrtc", and close() ends every live viewer.
"use strict";
const assert = require("assert");
const { StreamServer } = require("../dist/nodes/lib/serve/stream-server");
const { liveRegistry, LiveRegistry, isLiveRefusal } = require("../dist/nodes/lib/serve/live-feed");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { decodeKeyframe, Mp4Decoder } = require("../dist/nodes/lib/codec/mp4-decoder");
const h = require("./lib/stream-out-helpers");
const { makeJpegs } = require("./lib/toolkit");

/** A short H.264 clip split as a camera source would: { init, codec, width, height, fragments }. */
async function makeClip({ seconds = 4, size = "320x240" } = {}) {
  const args = ["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=15`];
  args.push("-t", String(seconds), "-c:v", "libx264", "-g", "15", "-pix_fmt", "yuv420p");
  args.push("-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe");
  args.push("-frag_duration", "250000", "pipe:1");
  const r = await h.run(h.ffmpegPath, args, { timeout: 60000 });
  if (r.code !== 0) throw new Error(r.stderr);
  const clip = { fragments: [] };
  const splitter = new Mp4FragmentSplitter({
    init: (data, info) => Object.assign(clip, { init: data, ...info }),
    fragment: (data, info) =>
      clip.fragments.push({ data, keyframe: info.keyframe, duration: info.durationSec }),
    problem: (m) => {
      throw new Error(m);
    },
  });
  splitter.push(r.stdout);
  return clip;
}

/** A request as liveAccess reads it. */
function fakeReq({ address = "10.0.0.1", headers = {} } = {}) {
  return { headers, socket: { remoteAddress: address } };
}

/** A sink that records what it gets. */
function recorder({ video = true, jpeg = false } = {}) {
  const got = { video: [], jpeg: [], state: [], ended: [] };
  const sink = {
    state: (s) => got.state.push(s),
    end: (reason) => got.ended.push(reason),
  };
  if (video) sink.video = (ev) => got.video.push(ev);
  if (jpeg) sink.jpeg = (data) => got.jpeg.push(data);
  return { sink, got };
}

describe("live feed (StreamServer.openLive / liveAccess)", function () {
  this.timeout(60000);
  let clip;
  let jpegs;
  const servers = [];

  before(async function () {
    clip = await makeClip();
    jpegs = await makeJpegs(3, { width: 160, height: 120 });
  });
  afterEach(function () {
    while (servers.length) servers.pop().close();
  });

  function server(options = {}) {
    const s = new StreamServer({ path: "/cam", tickMs: 50, ...options });
    servers.push(s);
    return s;
  }
  const t0 = Date.now();
  function sendInit(s, initId = 1) {
    s.pushMp4(clip.init, {
      type: "init",
      seq: 0,
      duration: 0,
      time: t0,
      codec: clip.codec,
      width: clip.width,
      height: clip.height,
      initId,
    });
  }
  function sendFragment(s, i) {
    const f = clip.fragments[i];
    s.pushMp4(f.data, {
      type: "fragment",
      seq: i + 1,
      duration: f.duration,
      time: t0 + i * 250,
      codec: clip.codec,
      width: clip.width,
      height: clip.height,
      keyframe: f.keyframe,
    });
  }

  it("the clip has GOPs of several fragments (the tests below rely on it)", function () {
    assert.ok(clip.fragments[0].keyframe);
    assert.ok(clip.fragments.length >= 8, `${clip.fragments.length} fragments`);
    const second = clip.fragments.findIndex((f, i) => i > 0 && f.keyframe);
    assert.ok(second >= 2, `second keyframe at ${second}`);
  });

  it("a new video sink gets the init and the current GOP at once, then every new fragment", function () {
    const s = server();
    sendInit(s);
    const second = clip.fragments.findIndex((f, i) => i > 0 && f.keyframe);
    for (let i = 0; i < second + 2; i++) sendFragment(s, i);
    const { sink, got } = recorder();
    const viewer = s.openLive("ws", "10.0.0.1", sink);
    assert.ok(!isLiveRefusal(viewer));
    assert.strictEqual(got.video[0].type, "init");
    assert.ok(got.video[0].data.equals(clip.init));
    assert.strictEqual(got.video[0].codec, clip.codec);
    assert.strictEqual(got.video[0].width, clip.width);
    assert.strictEqual(typeof got.video[0].initId, "number");
    assert.deepStrictEqual(
      got.video.slice(1).map((e) => [e.type, e.keyframe]),
      [
        ["fragment", true],
        ["fragment", false],
      ],
    );
    assert.ok(got.video[1].data.equals(clip.fragments[second].data));
    assert.ok(got.video[2].data.equals(clip.fragments[second + 1].data));
    sendFragment(s, second + 2);
    assert.strictEqual(got.video.length, 4);
    assert.ok(got.video[3].data.equals(clip.fragments[second + 2].data));
    assert.strictEqual(got.video[3].keyframe, clip.fragments[second + 2].keyframe);
    assert.ok(got.video[3].duration > 0);
    assert.strictEqual(s.liveCodec, clip.codec);
    viewer.close();
  });

  it("a sink that joins before any keyframe starts at the next keyframe fragment, never a lone P fragment", function () {
    const s = server();
    const { sink, got } = recorder();
    const viewer = s.openLive("webrtc", "10.0.0.2", sink);
    assert.ok(!isLiveRefusal(viewer));
    assert.strictEqual(got.video.length, 0, "nothing before an init");
    sendInit(s);
    assert.deepStrictEqual(
      got.video.map((e) => e.type),
      ["init"],
    );
    // Fragments of a GOP whose start the sink never saw: skipped.
    sendFragment(s, 1);
    sendFragment(s, 2);
    assert.strictEqual(got.video.length, 1);
    const second = clip.fragments.findIndex((f, i) => i > 0 && f.keyframe);
    for (let i = 3; i <= second; i++) sendFragment(s, i);
    assert.strictEqual(got.video.length, 2);
    assert.strictEqual(got.video[1].keyframe, true);
    assert.ok(got.video[1].data.equals(clip.fragments[second].data));
    viewer.close();
  });

  it("a new init (new initId) goes to every video sink, which then waits for a keyframe", function () {
    const s = server();
    sendInit(s, 1);
    for (let i = 0; i < 3; i++) sendFragment(s, i);
    const { sink, got } = recorder();
    s.openLive("ws", "10.0.0.1", sink);
    const before = got.video.length;
    sendInit(s, 1); // the same init announced again: nothing
    assert.strictEqual(got.video.length, before);
    sendInit(s, 2);
    assert.strictEqual(got.video.length, before + 1);
    assert.strictEqual(got.video[before].type, "init");
    assert.notStrictEqual(got.video[before].initId, got.video[0].initId);
    sendFragment(s, 3); // not a keyframe (GOP of 4): skipped
    assert.strictEqual(clip.fragments[3].keyframe, false);
    assert.strictEqual(got.video.length, before + 1);
  });

  it("counts live viewers: viewerCount, status.json (kind ws/webrtc), connect/leave events, maxClients", function () {
    const events = [];
    const s = server({ maxClients: 2, onViewer: (e) => events.push(e) });
    sendInit(s);
    sendFragment(s, 0);
    const a = s.openLive("ws", "10.0.0.1", recorder().sink);
    const b = s.openLive("webrtc", "10.0.0.2", recorder().sink);
    assert.ok(!isLiveRefusal(a) && !isLiveRefusal(b));
    assert.strictEqual(s.viewerCount, 2);
    const stats = s.stats();
    assert.deepStrictEqual(stats.viewers.map((v) => v.kind).sort(), ["webrtc", "ws"]);
    a.countSent(1000);
    a.countSent(500);
    const ws = s.stats().viewers.find((v) => v.kind === "ws");
    assert.strictEqual(ws.bytesSent, 1500);
    assert.strictEqual(ws.framesSent, 2);
    assert.strictEqual(ws.address, "10.0.0.1");
    assert.strictEqual(s.stats().bytesOut, 1500);
    assert.deepStrictEqual(
      events.map((e) => [e.event, e.viewer.kind, e.count]),
      [
        ["connect", "ws", 1],
        ["connect", "webrtc", 2],
      ],
    );
    // Full: a third is refused by both the check and the open.
    const access = s.liveAccess(fakeReq({ address: "10.0.0.3" }), null);
    assert.strictEqual(access.ok, false);
    assert.strictEqual(access.status, 503);
    assert.match(access.error, /Too many viewers/);
    const refused = s.openLive("ws", "10.0.0.3", recorder().sink);
    assert.ok(isLiveRefusal(refused));
    assert.strictEqual(refused.status, 503);
    a.close();
    a.close(); // idempotent
    assert.strictEqual(s.viewerCount, 1);
    assert.deepStrictEqual(events[2], {
      event: "disconnect",
      viewer: { address: "10.0.0.1", kind: "ws" },
      count: 1,
    });
    assert.strictEqual(events.length, 3);
    assert.strictEqual(s.liveAccess(fakeReq({ address: "10.0.0.3" }), null).ok, true);
    b.close();
    assert.strictEqual(s.viewerCount, 0);
  });

  it("maxPerAddress and maxKbps apply to live viewers", function () {
    const s = server({ maxPerAddress: 1, maxKbps: 800 });
    const a = s.openLive("ws", "10.0.0.1", recorder().sink);
    assert.strictEqual(a.kbpsBudget, 800);
    const again = s.liveAccess(fakeReq({ address: "10.0.0.1" }), null);
    assert.deepStrictEqual([again.ok, again.status], [false, 503]);
    assert.match(again.error, /your address/);
    assert.ok(isLiveRefusal(s.openLive("ws", "10.0.0.1", recorder().sink)));
    assert.ok(!isLiveRefusal(s.openLive("ws", "10.0.0.9", recorder().sink)));
  });

  it("liveAccess checks the token (query or Bearer) and the Origin against the CORS setting", function () {
    const s = server({ token: "s3cret" });
    assert.deepStrictEqual(
      [s.liveAccess(fakeReq(), null).ok, s.liveAccess(fakeReq(), null).status],
      [false, 401],
    );
    assert.strictEqual(s.liveAccess(fakeReq(), "wrong").status, 401);
    assert.strictEqual(s.liveAccess(fakeReq(), "s3cret").ok, true);
    assert.strictEqual(s.liveAccess(fakeReq({ headers: { authorization: "Bearer s3cret" } }), null).ok, true);
    // No CORS setting: only the same host (or no browser Origin at all).
    const same = { host: "nr.local:1880", origin: "http://nr.local:1880" };
    assert.strictEqual(s.liveAccess(fakeReq({ headers: same }), "s3cret").ok, true);
    const other = s.liveAccess(
      fakeReq({ headers: { host: "nr.local:1880", origin: "http://evil.example" } }),
      "s3cret",
    );
    assert.deepStrictEqual([other.ok, other.status], [false, 403]);
    assert.match(other.error, /evil\.example/);
    const listed = server({ path: "/cam2", cors: ["http://dash.local"] });
    assert.strictEqual(
      listed.liveAccess(fakeReq({ headers: { host: "nr:1880", origin: "http://dash.local" } }), null).ok,
      true,
    );
    assert.strictEqual(
      listed.liveAccess(fakeReq({ headers: { host: "nr:1880", origin: "null" } }), null).status,
      403,
    );
    const any = server({ path: "/cam3", cors: "*" });
    assert.strictEqual(
      any.liveAccess(fakeReq({ headers: { host: "a", origin: "http://b" } }), null).ok,
      true,
    );
  });

  it("JPEG sinks get the JPEG wire's frames; offline and online are told to every sink", async function () {
    const s = server({ offlineAfterMs: 300 });
    const { sink, got } = recorder({ video: false, jpeg: true });
    s.openLive("ws", "10.0.0.1", sink);
    assert.deepStrictEqual(got.state, ["offline"], "offline at once before any frame");
    s.pushFrame({ data: jpegs[0], seq: 1, time: Date.now(), camera: "", width: 160, height: 120 });
    s.pushFrame({ data: jpegs[1], seq: 2, time: Date.now(), camera: "", width: 160, height: 120 });
    assert.strictEqual(got.jpeg.length, 2);
    assert.ok(got.jpeg[1].equals(jpegs[1]));
    assert.deepStrictEqual(got.state, ["offline", "online"]);
    await h.until(() => got.state.length === 3, "offline after offlineAfterMs without frames");
    assert.deepStrictEqual(got.state, ["offline", "online", "offline"]);
    s.pushFrame({ data: jpegs[2], seq: 3, time: Date.now(), camera: "", width: 160, height: 120 });
    assert.deepStrictEqual(got.state, ["offline", "online", "offline", "online"]);
    s.setOffline();
    assert.strictEqual(got.state[4], "offline");
  });

  it("on a video-only wire a JPEG sink gets decoded pictures, and the decoder runs only while one is open", async function () {
    const decoders = [];
    const videoDecoding = {
      decodeKeyframe: (init, fragments) => decodeKeyframe(h.ffmpegPath, init, fragments, { timeoutMs: 5000 }),
      createDecoder: () => {
        const d = new Mp4Decoder({ ffmpegPath: h.ffmpegPath, fps: 5 });
        decoders.push(d);
        return d;
      },
    };
    const s = server({ videoDecoding });
    sendInit(s);
    let i = 0;
    const feed = setInterval(() => sendFragment(s, i++ % clip.fragments.length), 100);
    try {
      const video = recorder();
      const v = s.openLive("ws", "10.0.0.1", video.sink);
      await new Promise((r) => setTimeout(r, 300));
      assert.strictEqual(s.stats().video.decoderRunning, false, "a video sink needs no decoder");
      const { sink, got } = recorder({ video: false, jpeg: true });
      const j = s.openLive("ws", "10.0.0.2", sink);
      assert.strictEqual(s.stats().video.decoderRunning, true);
      await h.until(() => got.jpeg.length >= 2, "decoded JPEG frames for the JPEG sink", 20000);
      assert.strictEqual(got.jpeg[0][0], 0xff);
      assert.strictEqual(got.jpeg[0][1], 0xd8);
      assert.strictEqual(video.got.jpeg.length, 0);
      j.close();
      assert.strictEqual(s.stats().video.decoderRunning, false, "stopped when the last JPEG sink left");
      v.close();
    } finally {
      clearInterval(feed);
    }
  });

  it("close() (redeploy) ends every live viewer through its sink, and later opens are refused", function () {
    const events = [];
    const s = server({ onViewer: (e) => events.push(e.event) });
    const a = recorder();
    const b = recorder({ video: false, jpeg: true });
    s.openLive("ws", "10.0.0.1", a.sink);
    const vb = s.openLive("webrtc", "10.0.0.2", b.sink);
    s.close();
    assert.strictEqual(a.got.ended.length, 1);
    assert.strictEqual(b.got.ended.length, 1);
    assert.match(a.got.ended[0], /closed/);
    assert.strictEqual(s.viewerCount, 0);
    assert.deepStrictEqual(events, ["connect", "connect", "disconnect", "disconnect"]);
    vb.close(); // after the server ended it: nothing more
    assert.strictEqual(events.length, 4);
    const late = s.openLive("ws", "10.0.0.3", recorder().sink);
    assert.ok(isLiveRefusal(late));
    assert.strictEqual(late.status, 503);
    assert.strictEqual(s.liveAccess(fakeReq(), null).status, 503);
  });

  it("a sink that throws does not stop the others or the server", function () {
    const s = server();
    sendInit(s);
    s.openLive("ws", "10.0.0.1", {
      video: () => {
        throw new Error("boom");
      },
    });
    const { sink, got } = recorder();
    s.openLive("ws", "10.0.0.2", sink);
    sendFragment(s, 0);
    assert.strictEqual(got.video.length, 2);
  });

  it("liveRegistry: set by path, removed only by the server that set it", function () {
    const r = new LiveRegistry();
    const a = { path: "/a" };
    const a2 = { path: "/a" };
    r.set(a);
    r.set(a2); // a redeploy's new node starts before the old one closes
    r.delete(a);
    assert.strictEqual(r.get("/a"), a2);
    r.delete(a2);
    assert.strictEqual(r.get("/a"), undefined);
    assert.strictEqual(r.size, 0);
    assert.strictEqual(typeof liveRegistry.get, "function");
  });
});
