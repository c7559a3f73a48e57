// The per-path live feed (lib/serve/live-feed.ts) through a real StreamServer fed with real fMP4 from
// ffmpeg (libx264 -g 15 at 15 fps, 0.25 s fragments): a new video sink gets the init and the current GOP
// at once, JPEG sinks get wire JPEGs or the video decoded (only while wanted), limits, token and Origin are
// checked, status.json and viewer events show kind "ws"/"webrtc", and close() ends every live viewer.
/* global document, window */ // in page.evaluate() code
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

/** Bytes of each GOP of a clip. */
function gopBytes(clip) {
  const gops = [];
  for (const f of clip.fragments) {
    if (f.keyframe || gops.length === 0) gops.push(0);
    gops[gops.length - 1] += f.data.length;
  }
  return gops;
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
    jpegs = await makeJpegs({ count: 3, width: 160, height: 120 });
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
  function sendInit(s, initId = 1, extra = {}) {
    s.pushMp4(clip.init, {
      type: "init",
      seq: 0,
      duration: 0,
      time: t0,
      codec: clip.codec,
      width: clip.width,
      height: clip.height,
      initId,
      ...extra,
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
    const metrics = s.metrics();
    assert.match(metrics, /^camrelay_viewers_by_kind\{path="\/cam",kind="ws"\} 1$/m);
    assert.match(metrics, /^camrelay_viewers_by_kind\{path="\/cam",kind="webrtc"\} 1$/m);
    assert.match(metrics, /^camrelay_viewers_by_kind\{path="\/cam",kind="mjpeg"\} 0$/m);
    assert.strictEqual(metrics.match(/# TYPE camrelay_viewers_by_kind gauge/g).length, 1, "TYPE once");
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

  it("tells the camera (live demand) while a video sink watches its msg.mp4, and no longer after", function () {
    const { liveDemand } = require("../dist/nodes/lib/camera/live-demand");
    const s = server();
    const cam = `cam-${Date.now()}`;
    sendInit(s, 1, { cameraId: cam });
    assert.strictEqual(liveDemand.wanted(cam), false, "no viewer yet: the camera may group");
    const jpegOnly = s.openLive("ws", "10.0.0.1", recorder({ video: false, jpeg: true }).sink);
    assert.strictEqual(liveDemand.wanted(cam), false, "a JPEG sink does not need every fragment");
    const a = s.openLive("ws", "10.0.0.1", recorder().sink);
    const b = s.openLive("webrtc", "10.0.0.2", recorder().sink);
    assert.strictEqual(liveDemand.wanted(cam), true);
    a.close();
    assert.strictEqual(liveDemand.wanted(cam), true, "one still watches");
    b.close();
    assert.strictEqual(liveDemand.wanted(cam), false);
    s.openLive("ws", "10.0.0.3", recorder().sink);
    assert.strictEqual(liveDemand.wanted(cam), true);
    jpegOnly.close();
    s.close();
    assert.strictEqual(liveDemand.wanted(cam), false, "a closed server holds nothing (redeploy)");
    assert.ok(!liveDemand.cameras.includes(cam));
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

  it("calls a sink's methods on the sink (a class instance keeps its `this`)", function () {
    class Sink {
      constructor() {
        this.events = [];
        this.frames = [];
      }
      video(ev) {
        this.events.push(ev.type);
      }
      jpeg(data) {
        this.frames.push(data);
      }
      state(st) {
        this.events.push(st);
      }
    }
    const s = server();
    sendInit(s);
    sendFragment(s, 0);
    const sink = new Sink();
    s.openLive("ws", "10.0.0.1", sink);
    sendFragment(s, 1);
    sendInit(s, 2);
    s.pushFrame({ data: jpegs[0], seq: 1, time: Date.now(), camera: "", width: 160, height: 120 });
    assert.deepStrictEqual(sink.events, ["init", "fragment", "fragment", "init"]);
    assert.strictEqual(sink.frames.length, 1);
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

// ---- the shared WebSocket in Node-RED (test helper: RED.server is the helper's real HTTP server) ----

const helper = require("node-red-node-test-helper");
const WebSocket = require("ws");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const { MAX_BUFFERED_BYTES } = require("../dist/nodes/lib/serve/ws-endpoint");

helper.init(require.resolve("node-red"));

/** A ws client that records every message: texts parsed, binaries split into kind, id, payload. */
function client(url, options = {}) {
  const ws = new WebSocket(url, options);
  const texts = [];
  const binaries = [];
  const c = {
    ws,
    texts,
    binaries,
    closed: null,
    send: (obj) => ws.send(typeof obj === "string" ? obj : JSON.stringify(obj)),
    of: (id) => binaries.filter((b) => b.id === id),
    textsOf: (id) => texts.filter((t) => t.id === id),
  };
  ws.on("message", (data, isBinary) => {
    if (isBinary) binaries.push({ kind: data[0], id: data.readUInt32BE(1), payload: data.subarray(5) });
    else texts.push(JSON.parse(data.toString()));
  });
  ws.on("close", (code, reason) => (c.closed = { code, reason: reason.toString() }));
  ws.on("error", () => undefined);
  c.opened = new Promise((resolve, reject) => {
    ws.once("open", () => resolve(c));
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () =>
        reject(
          Object.assign(new Error(`refused ${res.statusCode}`), {
            status: res.statusCode,
            body,
            headers: res.headers,
          }),
        ),
      );
    });
    ws.once("error", reject);
  });
  return c;
}

/** The HTTP status an upgrade is refused with (fails if it is accepted). */
async function refusal(url, options) {
  const c = client(url, options);
  try {
    await c.opened;
  } catch (err) {
    if (err.status) return err;
    throw err;
  }
  c.ws.terminate();
  throw new Error(`${url} was accepted`);
}

describe("the shared WebSocket <httpNodeRoot>camrelay/ws in Node-RED", function () {
  this.timeout(60000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  const clients = [];
  let clip;
  let jpegs;
  let wsUrl;

  before(async function () {
    clip = await makeClip({ seconds: 4 });
    jpegs = await makeJpegs({ count: 4, width: 160, height: 120 });
    await web.listen();
    await helper.startServer();
    wsUrl = `${helper.url().replace(/^http/, "ws")}/camrelay/ws`;
  });
  after(async function () {
    helper.settings({});
    await helper.stopServer();
    await web.close();
  });
  afterEach(async function () {
    while (clients.length) clients.pop().ws.terminate();
    await helper.unload();
    helper.settings({});
  });

  function open(query = "", options) {
    const c = client(`${wsUrl}${query}`, options);
    clients.push(c);
    return c.opened;
  }

  const FLOW = [
    { id: "a", type: "http-stream-out", path: "/a", wires: [["events"]] },
    { id: "b", type: "http-stream-out", path: "/b", wires: [[]] },
    { id: "j", type: "http-stream-out", path: "/j", wires: [[]] },
    { id: "t", type: "http-stream-out", path: "/t", wires: [[]] },
    { id: "m", type: "http-stream-out", path: "/m", maxClients: 1, wires: [[]] },
    { id: "k", type: "http-stream-out", path: "/k", maxKbps: 100, wires: [[]] },
    { id: "events", type: "helper" },
  ];
  async function load(flow = FLOW) {
    await helper.load(streamOut, flow, { t: { token: "s3cret" } });
    return (id) => helper.getNode(id);
  }
  const t0 = Date.now();
  function sendInit(n, c = clip, initId = 1) {
    n.receive({
      payload: c.init,
      mp4: {
        type: "init",
        seq: 0,
        duration: 0,
        time: t0,
        codec: c.codec,
        width: c.width,
        height: c.height,
        initId,
      },
    });
  }
  function sendFragment(n, i, c = clip) {
    const f = c.fragments[i % c.fragments.length];
    n.receive({
      payload: f.data,
      mp4: {
        type: "fragment",
        seq: i + 1,
        duration: f.duration,
        time: t0 + i * 250,
        codec: c.codec,
        width: c.width,
        height: c.height,
        keyframe: f.keyframe,
        initId: 1,
      },
    });
  }
  const sendJpeg = (n, i) => n.receive({ payload: jpegs[i % jpegs.length] });
  const statusJson = async (p) => JSON.parse((await h.request(web.url(`${p}/status.json`))).body);

  it("plays two video paths and a JPEG path over one socket: mse + init + GOP, mjpeg frames, viewer messages", async function () {
    const node = await load();
    const events = [];
    node("events").on("input", (msg) => events.push(msg));
    for (const id of ["a", "b"]) {
      sendInit(node(id));
      for (let i = 0; i < 3; i++) sendFragment(node(id), i);
    }
    sendJpeg(node("j"), 0);
    const c = await open("?path=/a&path=/b");
    c.send({ type: "play", id: 1, path: "/a", codecs: ["avc1", "mp4a"] });
    c.send({ type: "play", id: 2, path: "/b", codecs: ["avc1"] });
    c.send({ type: "play", id: 7, path: "/j", codecs: ["avc1"], mjpeg: true });
    await h.until(
      () => c.of(1).length >= 4 && c.of(2).length >= 4 && c.textsOf(7).length >= 1,
      "three plays started",
    );
    for (const id of [1, 2]) {
      const mse = c.textsOf(id)[0];
      assert.strictEqual(mse.type, "mse");
      assert.strictEqual(mse.codec, clip.codec);
      assert.strictEqual(mse.mime, `video/mp4; codecs="${clip.codec}"`);
      assert.deepStrictEqual([mse.width, mse.height], [clip.width, clip.height]);
      const bins = c.of(id);
      assert.strictEqual(bins[0].kind, 0);
      assert.ok(bins[0].payload.equals(clip.init));
      assert.deepStrictEqual(
        bins.slice(1, 4).map((b) => b.kind),
        [1, 1, 1],
      );
      assert.ok(bins[1].payload.equals(clip.fragments[0].data), "the current GOP starts at its keyframe");
    }
    assert.deepStrictEqual(c.textsOf(7)[0], { type: "mjpeg", id: 7 });
    sendJpeg(node("j"), 1);
    sendFragment(node("a"), 3);
    await h.until(() => c.of(7).length >= 1 && c.of(1).length >= 5, "a new JPEG and a new fragment");
    assert.strictEqual(c.of(7)[0].kind, 2);
    assert.ok(c.of(7)[0].payload.equals(jpegs[1]));
    assert.ok(c.of(1)[4].payload.equals(clip.fragments[3].data));
    assert.strictEqual(c.of(2).length, 4, "a fragment of /a goes to play 1 only");
    // Counted as a viewer of each path, with kind ws.
    const stats = await statusJson("/a");
    assert.strictEqual(stats.viewerCount, 1);
    assert.strictEqual(stats.viewers[0].kind, "ws");
    assert.ok(stats.viewers[0].bytesSent > clip.init.length);
    assert.strictEqual((await statusJson("/j")).viewers[0].kind, "ws");
    assert.match(stats.viewers[0].connection, /^ws-\d+$/);
    assert.strictEqual(
      (await statusJson("/j")).viewers[0].connection,
      stats.viewers[0].connection,
      "one socket",
    );
    await h.until(() => events.length === 1, "viewer connect message");
    assert.strictEqual(events[0].event, "connect");
    assert.strictEqual(events[0].viewer.kind, "ws");
    assert.strictEqual(events[0].path, "/a");
    c.send({ type: "stop", id: 1 });
    await h.until(() => events.length === 2, "viewer leave message on stop");
    assert.strictEqual(events[1].event, "disconnect");
    assert.strictEqual(events[1].payload, 0);
    sendFragment(node("a"), 4);
    sendFragment(node("b"), 3);
    await h.until(() => c.of(2).length === 5, "play 2 goes on");
    assert.strictEqual(c.of(1).length, 5, "nothing after stop");
    // Closing the socket ends the others.
    c.ws.close();
    await h.until(async () => (await statusJson("/b")).viewerCount === 0, "the socket's plays left");
  });

  it("answers bad plays with errors in words and the connection survives", async function () {
    const node = await load();
    sendInit(node("a"));
    sendFragment(node("a"), 0);
    sendJpeg(node("j"), 0);
    const c = await open();
    c.send("{not json");
    c.send({ type: "play", id: 1, path: "/nowhere" });
    c.send({ type: "play", id: 2, path: "/t" });
    c.send({ type: "play", id: 3, path: "/t", token: "wrong" });
    c.send({ type: "play", id: 4, path: "/a", codecs: ["hvc1"] });
    c.send({ type: "play", id: 5, path: "/j", codecs: ["avc1"] });
    c.send({ type: "play", id: -1, path: "/a" });
    c.send({ type: "dance", id: 8 });
    c.send({ type: "play", id: 9, path: "/m" });
    await h.until(() => c.texts.length >= 9, "nine answers", 5000);
    const err = (id) => c.texts.find((t) => t.id === id && t.type === "error");
    const noId = c.texts.filter((t) => t.type === "error" && t.id === undefined);
    assert.strictEqual(noId.length, 2, JSON.stringify(c.texts));
    assert.match(noId[0].error, /not JSON/);
    assert.strictEqual(noId[0].status, 400);
    assert.match(noId[1].error, /"id" must be a whole number/);
    assert.deepStrictEqual(
      [err(1).status, /no http stream out serves "\/nowhere"/.test(err(1).error)],
      [404, true],
    );
    assert.strictEqual(err(2).status, 401);
    assert.match(err(2).error, /token/);
    assert.strictEqual(err(3).status, 401);
    assert.strictEqual(err(4).status, 415);
    assert.match(err(4).error, /cannot play.*mjpeg/);
    assert.strictEqual(err(5).status, 415);
    assert.match(err(5).error, /JPEG frames only/);
    assert.strictEqual(err(8).status, 400);
    assert.deepStrictEqual(
      c.textsOf(9).map((t) => t.type),
      ["offline"],
    );
    // Still open and serving: the token in the play, and /m is full for a second viewer.
    c.send({ type: "play", id: 10, path: "/t", token: "s3cret" });
    c.send({ type: "play", id: 11, path: "/m" });
    await h.until(() => c.textsOf(10).length >= 1 && c.textsOf(11).length >= 1, "answers to the good plays");
    assert.strictEqual(c.textsOf(10)[0].type, "offline");
    assert.strictEqual(err(11).status, 503);
    assert.match(err(11).error, /Too many viewers/);
    assert.strictEqual(c.ws.readyState, WebSocket.OPEN);
  });

  it("a path the browser cannot play with MSE comes as JPEG frames decoded from the video when mjpeg is accepted", async function () {
    const node = await load();
    sendInit(node("a"));
    sendFragment(node("a"), 0);
    let i = 1;
    const feed = setInterval(() => sendFragment(node("a"), i++), 100);
    try {
      const c = await open();
      c.send({ type: "play", id: 5, path: "/a", codecs: ["hvc1"], mjpeg: true });
      await h.until(() => c.of(5).length >= 2, "decoded JPEG frames", 20000);
      assert.deepStrictEqual(c.textsOf(5)[0], { type: "mjpeg", id: 5 });
      assert.ok(c.of(5).every((b) => b.kind === 2 && b.payload[0] === 0xff && b.payload[1] === 0xd8));
      assert.strictEqual((await statusJson("/a")).video.decoderRunning, true);
      c.send({ type: "stop", id: 5 });
      await h.until(async () => (await statusJson("/a")).video.decoderRunning === false, "decoder stopped");
    } finally {
      clearInterval(feed);
    }
  });

  it("allows 64 plays on one socket, then answers 503 in words", async function () {
    await load();
    const c = await open();
    for (let id = 0; id < 65; id++) c.send({ type: "play", id, path: "/a" });
    await h.until(() => c.texts.some((t) => t.type === "error"), "the 65th refused");
    const e = c.texts.find((t) => t.type === "error");
    assert.strictEqual(e.id, 64);
    assert.strictEqual(e.status, 503);
    assert.match(e.error, /too many plays on one WebSocket \(at most 64\)/);
    assert.strictEqual((await statusJson("/a")).viewerCount, 64);
  });

  it("refuses the upgrade before accepting: unknown ?path= (404), no token (401), full (503); token accepted", async function () {
    const node = await load();
    assert.strictEqual((await refusal(`${wsUrl}?path=/nowhere`)).status, 404);
    const noToken = await refusal(`${wsUrl}?path=/a&path=/t`);
    assert.strictEqual(noToken.status, 401);
    assert.match(noToken.body, /\/t: a valid token is required/);
    assert.match(noToken.headers["www-authenticate"], /Bearer/);
    assert.strictEqual((await refusal(`${wsUrl}?path=/t&token=wrong`)).status, 401);
    const ok = await open("?path=/t&token=s3cret");
    ok.send({ type: "play", id: 1, path: "/t" }); // the query's token serves the plays
    await h.until(() => ok.texts.length === 1, "play answered");
    assert.strictEqual(ok.texts[0].type, "offline");
    await open("?path=/t", { headers: { Authorization: "Bearer s3cret" } });
    const c = await open();
    c.send({ type: "play", id: 1, path: "/m" });
    await h.until(async () => (await statusJson("/m")).viewerCount === 1, "/m full");
    assert.strictEqual((await refusal(`${wsUrl}?path=/m`)).status, 503);
    assert.strictEqual((await refusal(`${wsUrl}?path=/a`, { origin: "http://evil.example" })).status, 403);
    void node;
  });

  it("honours httpNodeAuth (Basic, bcrypt) and httpNodeMiddleware before it accepts", async function () {
    const bcrypt = require("bcryptjs");
    const seen = [];
    helper.settings({
      httpNodeAuth: { user: "ann", pass: bcrypt.hashSync("pw", 4) },
      httpNodeMiddleware: (req, res, next) => {
        seen.push(req.url);
        if (req.headers["x-block"]) {
          res.statusCode = 418;
          res.end("blocked by middleware\n");
        } else next();
      },
    });
    await load();
    const none = await refusal(`${wsUrl}?path=/a`);
    assert.strictEqual(none.status, 401);
    assert.match(none.headers["www-authenticate"], /Basic/);
    assert.strictEqual(seen.length, 0, "auth comes before the middleware");
    const wrong = Buffer.from("ann:nope").toString("base64");
    assert.strictEqual((await refusal(wsUrl, { headers: { Authorization: `Basic ${wrong}` } })).status, 401);
    const basic = `Basic ${Buffer.from("ann:pw").toString("base64")}`;
    const blocked = await refusal(wsUrl, { headers: { Authorization: basic, "X-Block": "1" } });
    assert.strictEqual(blocked.status, 418);
    assert.match(blocked.body, /blocked by middleware/);
    const c = await open("?path=/a", { headers: { Authorization: basic } });
    c.send({ type: "play", id: 1, path: "/a" });
    await h.until(() => c.texts.length === 1, "play answered");
    assert.ok(seen.some((u) => u.startsWith("/camrelay/ws")));
    assert.strictEqual(c.ws.readyState, WebSocket.OPEN);
  });

  it("a client that never reads stays bounded in server memory; it resumes on a keyframe", async function () {
    const node = await load();
    sendInit(node("a"));
    const c = await open();
    c.send({ type: "play", id: 1, path: "/a" });
    await h.until(() => c.of(1).length === 1, "init");
    c.ws._socket.pause();
    const fragBytes = clip.fragments.reduce((n, f) => n + f.data.length, 0);
    const loops = Math.ceil((3 * MAX_BUFFERED_BYTES + 8e6) / fragBytes);
    let maxBuffered = 0;
    for (let l = 0; l < loops; l++) {
      for (let i = 0; i < clip.fragments.length; i++) sendFragment(node("a"), l * clip.fragments.length + i);
      if (l % 3 !== 0 && l !== loops - 1) continue;
      const v = (await statusJson("/a")).viewers[0];
      maxBuffered = Math.max(maxBuffered, v.buffered);
    }
    const stats = await statusJson("/a");
    const biggest = Math.max(...clip.fragments.map((f) => f.data.length));
    console.log(
      `      sent ${((loops * fragBytes) / 1e6).toFixed(1)} MB to a client that never reads: server held at most ${(maxBuffered / 1e6).toFixed(2)} MB, skipped ${stats.viewers[0].framesSkipped} fragments`,
    );
    assert.ok(maxBuffered <= MAX_BUFFERED_BYTES + biggest + 64, `buffered ${maxBuffered}`);
    assert.ok(stats.viewers[0].framesSkipped > 0);
    const before = c.of(1).length;
    c.ws._socket.resume();
    await h.until(() => c.of(1).length > before, "the buffered data after resume");
    await h.until(async () => (await statusJson("/a")).viewers[0].buffered === 0, "drained");
    const drained = c.of(1).length;
    for (let i = 0; i < clip.fragments.length; i++) sendFragment(node("a"), i);
    await h.until(() => c.of(1).length > drained, "new fragments after the socket drained");
    // Whatever came after a skip starts on a keyframe fragment: find a gap and check what follows.
    const keys = new Set(
      clip.fragments.filter((f) => f.keyframe).map((f) => f.data.toString("base64", 0, 64)),
    );
    const order = clip.fragments.map((f) => f.data.toString("base64", 0, 64));
    const frags = c
      .of(1)
      .filter((b) => b.kind === 1)
      .map((b) => b.payload.toString("base64", 0, 64));
    let gaps = 0;
    for (let i = 1; i < frags.length; i++) {
      const prev = order.indexOf(frags[i - 1]);
      if (order[(prev + 1) % order.length] !== frags[i]) {
        gaps++;
        assert.ok(keys.has(frags[i]), `after a gap at ${i} comes a keyframe fragment`);
      }
    }
    assert.ok(gaps > 0, "some GOPs were dropped");
  });

  it("honours maxKbps per play: whole GOPs are skipped, what goes out starts on keyframes", async function () {
    const node = await load();
    sendInit(node("k"));
    const c = await open();
    c.send({ type: "play", id: 1, path: "/k" });
    await h.until(() => c.of(1).length === 1, "init");
    const offeredBytes = clip.fragments.reduce((n, f) => n + f.data.length, 0) * 8; // 8 loops
    const t = Date.now();
    for (let l = 0; l < 8; l++) {
      for (let i = 0; i < clip.fragments.length; i++) sendFragment(node("k"), l * clip.fragments.length + i);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (Date.now() - t) / 1000;
    const st = (await statusJson("/k")).viewers[0];
    console.log(
      `      maxKbps 100: offered ${((offeredBytes * 8) / 1000 / seconds).toFixed(0)} kbit/s for ${seconds.toFixed(1)} s, sent ${st.bytesSent} bytes, skipped ${st.framesSkipped}`,
    );
    // One second's budget plus one GOP of debt at the most (the bucket lets a started GOP finish).
    const maxGop = Math.max(...gopBytes(clip));
    assert.ok(st.bytesSent <= 12500 * (seconds + 1) + 2 * maxGop + clip.init.length, `${st.bytesSent} bytes`);
    assert.ok(st.framesSkipped > 0);
    const keys = new Set(
      clip.fragments.filter((f) => f.keyframe).map((f) => f.data.toString("base64", 0, 64)),
    );
    const got = c.of(1).filter((b) => b.kind === 1);
    assert.ok(got.length > 0);
    assert.ok(keys.has(got[0].payload.toString("base64", 0, 64)), "starts on a keyframe fragment");
  });

  it("runs express-style httpNodeMiddleware (res.status().send()) and its answer goes out before accept", async function () {
    helper.settings({
      httpNodeMiddleware: [
        (req, res, next) => (req.headers["x-deny"] ? res.status(403).send("no cameras for you") : next()),
      ],
    });
    await load();
    const denied = await refusal(`${wsUrl}?path=/a`, { headers: { "X-Deny": "1" } });
    assert.strictEqual(denied.status, 403);
    assert.strictEqual(denied.body, "no cameras for you");
    const c = await open("?path=/a");
    assert.strictEqual(c.ws.readyState, WebSocket.OPEN);
  });

  it("a redeploy closes the sockets and removes the one upgrade listener", async function () {
    const server = helper._server;
    const baseline = server.listeners("upgrade").length;
    await load();
    assert.strictEqual(server.listeners("upgrade").length, baseline + 1, "one listener for five nodes");
    const c = await open();
    c.send({ type: "play", id: 1, path: "/a" });
    c.send({ type: "play", id: 2, path: "/j", mjpeg: true });
    await h.until(() => c.texts.length === 2, "plays answered");
    await helper.unload();
    assert.strictEqual(server.listeners("upgrade").length, baseline, "listener removed");
    await h.until(() => c.closed !== null, "socket closed");
    assert.ok([1001, 1012].includes(c.closed.code), `close code ${c.closed.code}`);
    // A path-less upgrade after the redeploy is no longer ours (nobody answers it): load again and it is.
    await load();
    assert.strictEqual(server.listeners("upgrade").length, baseline + 1);
    const again = await open();
    again.send({ type: "play", id: 1, path: "/a" });
    await h.until(() => again.texts.length === 1, "a play after the redeploy");
  });
});

describe("LiveWsEndpoint on a plain HTTP server", function () {
  this.timeout(20000);
  const http = require("http");
  const { LiveWsEndpoint } = require("../dist/nodes/lib/serve/ws-endpoint");
  let web;
  let endpoint;
  let url;
  const clients = [];

  beforeEach(async function () {
    const s = new StreamServer({ path: "/p" });
    endpoint = new LiveWsEndpoint({
      path: "/camrelay/ws",
      paths: { get: (p) => (p === "/p" ? s : undefined) },
      pingMs: 150,
    });
    web = http.createServer((req, res) => res.end("plain http still works\n"));
    web.on("upgrade", endpoint.onUpgrade);
    web.on("upgrade", (req, socket) => {
      if (req.url.startsWith("/other")) socket.end("HTTP/1.1 418 I'm a teapot\r\nConnection: close\r\n\r\n");
    });
    await new Promise((r) => web.listen(0, "127.0.0.1", r));
    url = `ws://127.0.0.1:${web.address().port}`;
    endpoint.server = s;
  });
  afterEach(async function () {
    while (clients.length) clients.pop().ws.terminate();
    endpoint.close();
    endpoint.server.close();
    web.closeAllConnections();
    await new Promise((r) => web.close(r));
  });

  it("closes a socket that stops answering pings, keeps one that answers", async function () {
    const dead = client(`${url}/camrelay/ws`, { autoPong: false });
    const live = client(`${url}/camrelay/ws`);
    clients.push(dead, live);
    await Promise.all([dead.opened, live.opened]);
    assert.strictEqual(endpoint.socketCount, 2);
    await h.until(() => dead.closed !== null, "the silent socket closed", 3000);
    await new Promise((r) => setTimeout(r, 400));
    assert.strictEqual(live.closed, null);
    assert.strictEqual(endpoint.socketCount, 1);
  });

  it("leaves other upgrade paths to their own listeners", async function () {
    const err = await refusal(`${url}/other/ws`);
    assert.strictEqual(err.status, 418);
    assert.strictEqual(endpoint.socketCount, 0);
  });

  it("close() ends every socket with 1001 and refuses later upgrades", async function () {
    const c = client(`${url}/camrelay/ws`);
    clients.push(c);
    await c.opened;
    c.send({ type: "play", id: 3, path: "/p" });
    await h.until(() => endpoint.server.viewerCount === 1, "play counted");
    endpoint.close();
    await h.until(() => c.closed !== null, "closed");
    assert.strictEqual(c.closed.code, 1001);
    assert.strictEqual(endpoint.server.viewerCount, 0);
  });
});

// ---- real Node-RED + real Chromium: three MSE paths and a JPEG path over one WebSocket ----------------

const { startNodeRed } = require("./lib/browser-nodered");
const { launchChromium } = require("./lib/browser-chromium");

/** The page: three <video>s and an <img>, fed by a minimal MSE client over one WebSocket. */
const LIVE_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>camrelay ws test</title></head>
<body style="margin:0;background:#222">
<video id="v1" muted autoplay playsinline width="320" height="240"></video>
<video id="v2" muted autoplay playsinline width="320" height="240"></video>
<video id="v3" muted autoplay playsinline width="320" height="240"></video>
<img id="j" width="320" height="240">
<script>
window.log = []; window.jpegs = 0; window.sockets = 0;
const paths = ["/live/1", "/live/2", "/live/3", "/live/j"];
const families = ["avc1.42E01E", "mp4a.40.2"].filter((c) => MediaSource.isTypeSupported('video/mp4; codecs="' + c + '"')).map((c) => c.split(".")[0]);
const ws = new WebSocket("ws://" + location.host + "/camrelay/ws?path=" + paths.join("&path="));
window.sockets++;
ws.binaryType = "arraybuffer";
const plays = paths.map((p, i) => ({ id: i + 1, el: document.getElementById(i < 3 ? "v" + (i + 1) : "j"), queue: [], sb: null }));
ws.onopen = () => plays.forEach((p, i) => ws.send(JSON.stringify({ type: "play", id: p.id, path: paths[i], codecs: families, mjpeg: true })));
ws.onclose = (e) => window.log.push({ type: "close", code: e.code });
const pump = (p) => { if (p.sb && !p.sb.updating && p.queue.length) p.sb.appendBuffer(p.queue.shift()); };
function chase(p) {
  const b = p.sb.buffered, v = p.el;
  if (!b.length) return;
  const end = b.end(b.length - 1);
  if (v.currentTime < b.start(0) || end - v.currentTime > 3) v.currentTime = Math.max(b.start(0), end - 0.5);
  if (v.paused) v.play().catch(() => {});
}
ws.onmessage = (e) => {
  if (typeof e.data === "string") {
    const m = JSON.parse(e.data), p = plays[m.id - 1];
    window.log.push(m);
    if (m.type !== "mse") return;
    const ms = new MediaSource();
    p.sb = null; p.queue = [];
    p.el.src = URL.createObjectURL(ms);
    ms.addEventListener("sourceopen", () => {
      p.sb = ms.addSourceBuffer(m.mime);
      p.sb.addEventListener("updateend", () => { chase(p); pump(p); });
      pump(p);
    }, { once: true });
    return;
  }
  const dv = new DataView(e.data), p = plays[dv.getUint32(1) - 1], body = e.data.slice(5);
  if (dv.getUint8(0) === 2) {
    window.jpegs++;
    const url = URL.createObjectURL(new Blob([body], { type: "image/jpeg" }));
    p.el.onload = () => URL.revokeObjectURL(url);
    p.el.src = url;
  } else { p.queue.push(body); pump(p); }
};
window.picture = (id) => {
  const el = document.getElementById(id), c = document.createElement("canvas");
  c.width = 64; c.height = 48;
  const g = c.getContext("2d");
  g.drawImage(el, 0, 0, 64, 48);
  const d = g.getImageData(0, 0, 64, 48).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
  return h;
};
</script></body></html>`;

/** Three test-pattern cameras through ffmpeg-transcode fmp4, and one JPEG-only camera. */
function browserFlow() {
  const flow = [{ id: "wstab", type: "tab", label: "live ws" }];
  const camera = (n) => ({
    id: `wscam${n}`,
    type: "camera-source",
    name: `cam ${n}`,
    protocol: "test",
    url: "320x240",
    fps: 10,
    linger: 10,
    alwaysOn: false,
    watchdog: 10,
    maxFrameKB: 4096,
    mode: "stream",
  });
  for (const n of [1, 2, 3]) {
    flow.push(camera(n));
    flow.push({
      id: `wsconn${n}`,
      type: "camera-connect",
      z: "wstab",
      camera: `wscam${n}`,
      autoStart: true,
      stats: 0,
      wires: [[`wsenc${n}`], []],
    });
    flow.push({
      id: `wsenc${n}`,
      type: "ffmpeg-transcode",
      z: "wstab",
      preset: "fmp4",
      quality: 30,
      keyframeInterval: 1,
      encoder: "libx264",
      wires: [[`wsout${n}`]],
    });
    flow.push({
      id: `wsout${n}`,
      type: "http-stream-out",
      z: "wstab",
      path: `/live/${n}`,
      maxClients: 10,
      wires: [[]],
    });
  }
  flow.push(camera(4));
  flow.push({
    id: "wsconn4",
    type: "camera-connect",
    z: "wstab",
    camera: "wscam4",
    autoStart: true,
    stats: 0,
    wires: [["wsout4"], []],
  });
  flow.push({
    id: "wsout4",
    type: "http-stream-out",
    z: "wstab",
    path: "/live/j",
    maxClients: 10,
    wires: [[]],
  });
  // The page comes from Node-RED itself (core http in/out): Chromium blocks a routed page's WebSocket to
  // 127.0.0.1 (local network access checks), not one from the same server.
  flow.push({
    id: "wspage",
    type: "http in",
    z: "wstab",
    url: "/camrelay-ws-test",
    method: "get",
    wires: [["wspagefn"]],
  });
  flow.push({
    id: "wspagefn",
    type: "function",
    z: "wstab",
    func: `msg.payload = ${JSON.stringify(LIVE_PAGE)};\nmsg.headers = { "Content-Type": "text/html; charset=utf-8" };\nreturn msg;`,
    wires: [["wspageres"]],
  });
  flow.push({ id: "wspageres", type: "http response", z: "wstab", statusCode: "200", wires: [] });
  // Node-RED's own WebSocket nodes on the same server: an echo at /ws/echo.
  flow.push({ id: "wsecholistener", type: "websocket-listener", path: "/ws/echo", wholemsg: "false" });
  flow.push({
    id: "wsechoin",
    type: "websocket in",
    z: "wstab",
    server: "wsecholistener",
    client: "",
    wires: [["wsechoout"]],
  });
  flow.push({
    id: "wsechoout",
    type: "websocket out",
    z: "wstab",
    server: "wsecholistener",
    client: "",
    wires: [],
  });
  return flow;
}

describe("in Chromium: MSE for three paths and MJPEG for a fourth over one WebSocket", function () {
  this.timeout(90000);
  let nodeRed;
  let browser;
  let page;
  const pageErrors = [];

  before(async function () {
    nodeRed = await startNodeRed({ flows: browserFlow() });
    browser = await launchChromium({ viewport: { width: 1300, height: 300 } });
    page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
  });
  after(async function () {
    this.timeout(30000);
    if (browser) await browser.close();
    if (nodeRed) await nodeRed.stop();
  });

  const status = async (p) => (await fetch(`${nodeRed.base}${p}/status.json`)).json();

  it("plays /live/1, /live/2 and /live/3 as MSE and /live/j as JPEG frames on one socket", async function () {
    await page.goto(`${nodeRed.base}/camrelay-ws-test`);
    const state = () =>
      page.evaluate(() => ({
        log: window.log,
        jpegs: window.jpegs,
        times: ["v1", "v2", "v3"].map((id) => document.getElementById(id).currentTime),
        errors: ["v1", "v2", "v3"].map((id) => document.getElementById(id).error?.message ?? null),
      }));
    try {
      await page.waitForFunction(
        () =>
          ["v1", "v2", "v3"].every((id) => document.getElementById(id).currentTime > 0.3) &&
          window.jpegs >= 3,
        null,
        { timeout: 45000 },
      );
    } catch {
      throw new Error(
        `not playing: ${JSON.stringify(await state())} ${pageErrors}\n${nodeRed.log().slice(-3000)}`,
      );
    }
    const first = await state();
    const pictures = await page.evaluate(() => ["v1", "v2", "v3", "j"].map((id) => window.picture(id)));
    await page.waitForFunction(
      (t) => ["v1", "v2", "v3"].every((id, i) => document.getElementById(id).currentTime > t[i] + 1),
      first.times,
      { timeout: 20000 },
    );
    const later = await page.evaluate(() => ["v1", "v2", "v3", "j"].map((id) => window.picture(id)));
    pictures.forEach((p, i) => assert.notStrictEqual(later[i], p, `picture ${i + 1} changed`));
    const s = await state();
    assert.deepStrictEqual(s.errors, [null, null, null]);
    const kinds = Object.fromEntries(s.log.filter((m) => m.id).map((m) => [m.id, m.type]));
    assert.deepStrictEqual([kinds[1], kinds[2], kinds[3], kinds[4]], ["mse", "mse", "mse", "mjpeg"]);
    assert.match(s.log.find((m) => m.type === "mse").codec, /^avc1\./);
    assert.ok(
      await page.evaluate(() => document.getElementById("j").naturalWidth === 320),
      "the JPEG frames show in the <img>",
    );
    assert.strictEqual(await page.evaluate(() => window.sockets), 1);
    // On the server: each path has one ws viewer, and all four are the same connection.
    const viewers = [];
    for (const p of ["/live/1", "/live/2", "/live/3", "/live/j"]) {
      const st = await status(p);
      const ws = st.viewers.filter((v) => v.kind === "ws");
      assert.strictEqual(ws.length, 1, `${p}: ${JSON.stringify(st.viewers)}`);
      viewers.push(ws[0]);
    }
    assert.strictEqual(new Set(viewers.map((v) => v.connection)).size, 1, "one WebSocket carries all four");
    assert.deepStrictEqual(pageErrors, []);
  });

  it("leaves Node-RED's own WebSocket nodes and the editor's comms working beside it", async function () {
    const echo = new WebSocket(`ws://127.0.0.1:${nodeRed.port}/ws/echo`);
    await new Promise((resolve, reject) => echo.once("open", resolve).once("error", reject));
    const answer = new Promise((resolve) => echo.once("message", (d) => resolve(d.toString())));
    echo.send("hello camera");
    assert.strictEqual(await answer, "hello camera");
    echo.close();
    const comms = client(`ws://127.0.0.1:${nodeRed.port}/comms`);
    await comms.opened;
    comms.ws.close();
  });

  it("a redeploy closes the page's socket", async function () {
    const res = await fetch(`${nodeRed.base}/flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "reload" },
      body: JSON.stringify(browserFlow()),
    });
    assert.ok(res.ok, `deploy answered ${res.status}`);
    await page.waitForFunction(() => window.log.some((m) => m.type === "close"), null, { timeout: 20000 });
    const close = await page.evaluate(() => window.log.find((m) => m.type === "close"));
    assert.ok([1001, 1012].includes(close.code), `close code ${close.code}`);
  });
});
