// Bad messages into every camrelay node: wrong types, broken and huge JPEGs, frame info that lies, times
// that jump, fMP4 messages that are not MP4, control fields of every wrong kind. Each message must reach
// done() exactly once (with an error or not), nothing may throw out of a node, and every node must still
// do its job with good input afterwards.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const helper = require("node-red-node-test-helper");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const frameThrottle = require("../dist/nodes/frame-throttle.js");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const { ffprobe, recorderConfig } = require("./lib/transcode-helpers");
const h = require("./lib/stream-out-helpers");
const { Viewer } = require("./lib/soak-viewer");
const { pick, escapeWatch } = require("./lib/soak-env");
const { wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

describe("bad messages into every node", function () {
  this.timeout(pick(60000, 600000));
  const web = h.httpNodeServer();
  const nodes = [cameraSource, cameraConnect, frameThrottle, web.wrap(streamOutNode), transcodeNode];
  let jpegs;
  let tmp;
  const escapes = escapeWatch();

  before(async () => {
    jpegs = await h.makeJpegs({ count: 10 });
    await web.listen();
    await helper.startServer();
    escapes.start();
  });
  after(async () => {
    escapes.stop();
    await helper.stopServer();
    await web.close();
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-badmsg-"));
  });
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepStrictEqual(escapes.escaped.map(String), [], "nothing escaped to the process");
  });

  /** Every kind of wrong a message can be. */
  function badMessages() {
    const good = jpegs[0];
    const mutated = Buffer.from(good);
    for (let i = 200; i < mutated.length - 2; i += 97) mutated[i] = 0xff;
    const huge = Buffer.alloc(8 * 1024 * 1024, 0x11);
    huge[0] = 0xff;
    huge[1] = 0xd8;
    const frame = (extra) => ({
      seq: 1,
      time: monotonicEpochMs(),
      camera: "x",
      width: 320,
      height: 240,
      ...extra,
    });
    return [
      {},
      { payload: undefined },
      { payload: null },
      { payload: "a string" },
      { payload: 42 },
      { payload: { type: "Buffer", data: [255, 216] } },
      { payload: [] },
      { payload: Buffer.alloc(0) },
      { payload: Buffer.from("not a jpeg at all") },
      { payload: good.subarray(0, 100), frame: frame() },
      { payload: mutated, frame: frame() },
      { payload: huge, frame: frame() },
      { payload: good, frame: "not an object" },
      { payload: good, frame: { width: -1, height: 1e9, time: "yesterday", seq: NaN } },
      { payload: good, frame: frame({ time: 0 }) },
      { payload: good, frame: frame({ time: 1e15 }) },
      { payload: good, frame: frame({ time: -5 }) },
      { payload: good, topic: { an: "object" }, frame: frame() },
      { payload: good, mp4: { type: "init" } },
      { payload: Buffer.from("moof? no"), mp4: { type: "fragment", seq: -1, duration: NaN, time: "x" } },
      { payload: good, mp4: "fragment" },
      { action: { start: true } },
      { action: 7 },
      { action: "START" },
      { action: "start ", topic: 5 },
      { action: "start", duration: "abc" },
      { action: "start", duration: -5 },
      { action: "start", duration: Infinity },
      { action: "start", duration: 1e12 },
      { action: "start", filename: 42 },
      { action: "start", filename: { path: "x" } },
      { action: "start", filename: ["a", "b"] },
      { action: "start", filename: "" },
      { action: "start", filename: "x\0y" },
      { action: "start", filename: "a".repeat(300) },
      { action: "stop", duration: "forever" },
      { action: "snapshot", payload: "x" },
      { action: "offline", payload: Buffer.alloc(3) },
    ];
  }

  /** Sends every bad message to `id` and checks that each one reached that node's done() exactly once. */
  async function sendAll(id) {
    const target = helper.getNode(id);
    const ids = [];
    for (const m of badMessages()) {
      target.receive(m);
      ids.push(m._msgid);
      await wait(5);
    }
    const calls = () => {
      const n = new Map(ids.map((i) => [i, 0]));
      for (const m of [...done[id].complete, ...done[id].catch])
        if (n.has(m._msgid)) n.set(m._msgid, n.get(m._msgid) + 1);
      return [...n.values()];
    };
    await h.until(() => calls().every((c) => c >= 1), `every message to ${id} reaching done()`, 10000);
    await wait(200);
    assert.deepStrictEqual(
      calls().filter((c) => c !== 1),
      [],
      `${id}: each message reaches done() exactly once`,
    );
  }

  /** done() calls per node under test: `complete` (done()) and `catch` (done(err)) messages. */
  let done = {};

  /** Loads `flow`; `target` is the one node under test (the helper registers complete and catch once). */
  async function load(flow, target) {
    const onTab = (n) => (n.type === "camera-source" ? n : { z: "tab", ...n });
    await helper.load(nodes, [
      { id: "tab", type: "tab", label: "bad messages" },
      ...flow.map(onTab),
      { id: "doneWatch", z: "tab", type: "complete", scope: [target], wires: [["doneOut"]] },
      { id: "doneOut", z: "tab", type: "helper" },
      { id: "errorWatch", z: "tab", type: "catch", scope: [target], uncaught: false, wires: [["errorOut"]] },
      { id: "errorOut", z: "tab", type: "helper" },
    ]);
    done = { [target]: { complete: [], catch: [] } };
    helper.getNode("doneOut").on("input", (m) => done[target].complete.push(m));
    helper.getNode("errorOut").on("input", (m) => done[target].catch.push(m));
  }

  it("camera connect answers each bad message and keeps streaming", async () => {
    await load(
      [
        { id: "cam1", type: "camera-source", name: "bad", protocol: "test", url: "160x120", fps: 10 },
        { id: "c1", type: "camera-connect", camera: "cam1", wires: [["frames"], []] },
        { id: "frames", type: "helper" },
      ],
      "c1",
    );
    await sendAll("c1");
    const frames = [];
    helper.getNode("frames").on("input", (m) => frames.push(m));
    helper.getNode("c1").receive({ action: "start" }); // the list holds a (valid) stop
    await h.until(() => frames.length >= 5, "frames after the bad messages", 5000);
    assert.ok(
      done.c1.catch.some((m) => /unknown msg.action/.test(m.error.message)),
      "bad actions are named",
    );
  });

  it("frame throttle answers each bad message and keeps its rate", async () => {
    await load(
      [
        { id: "t1", type: "frame-throttle", fps: 5, wires: [["throttled"]] },
        { id: "throttled", type: "helper" },
      ],
      "t1",
    );
    await sendAll("t1");
    const throttled = [];
    helper.getNode("throttled").on("input", (m) => throttled.push(m));
    const t1 = helper.getNode("t1");
    for (let i = 0; i < 20; i++) {
      t1.receive({ payload: jpegs[i % jpegs.length], topic: "good" });
      await wait(50);
    }
    await wait(300);
    assert.ok(
      throttled.length >= 4 && throttled.length <= 7,
      `${throttled.length} frames in about 1 s at 5 fps`,
    );
  });

  it("http stream out refuses non-JPEG payloads and garbage fMP4 with an error, and keeps serving", async () => {
    await load([{ id: "out", type: "http-stream-out", path: "/badmsg/cam", wires: [[]] }], "out");
    await sendAll("out");
    assert.ok(
      done.out.catch.some((m) => /not a JPEG/.test(m.error.message)),
      "non-JPEG payloads are named",
    );
    const out = helper.getNode("out");
    const viewer = new Viewer(web.url("/badmsg/cam"), jpegs);
    try {
      await viewer.ready;
      for (let i = 0; i < 3; i++) {
        out.receive({
          payload: jpegs[i],
          frame: { seq: i, time: Date.now(), camera: "x", width: 320, height: 240 },
        });
        await wait(50);
      }
      await viewer.waitFor("live");
    } finally {
      viewer.close();
    }
    const snap = await h.request(web.url("/badmsg/cam/snapshot.jpg"));
    assert.strictEqual(snap.status, 200);
    assert.ok(readJpegSize(snap.body), "a whole JPEG");
  });

  it("ffmpeg transcode (mp4) answers each bad message, and a recording afterwards is whole", async () => {
    await load(
      [recorderConfig({ directory: tmp, wires: [["recs"]] }), { id: "recs", type: "helper" }],
      "rec",
    );
    const recs = [];
    helper.getNode("recs").on("input", (m) => recs.push(m));
    await wait(500); // the encoder is chosen asynchronously
    await sendAll("rec");
    // Stop whatever a bad start may have begun, then record 2 s of good frames.
    helper.getNode("rec").receive({ action: "stop" });
    await wait(1500);
    const rec = helper.getNode("rec");
    const count = recs.length;
    let seq = 0;
    const timer = setInterval(() => {
      seq++;
      rec.receive({
        payload: jpegs[seq % jpegs.length],
        frame: { seq, time: monotonicEpochMs(), camera: "bad", width: 320, height: 240 },
      });
    }, 100);
    try {
      await wait(200);
      rec.receive({ action: "start", duration: 2 });
      await h.until(() => recs.length > count, "a recording after the bad messages", 15000);
    } finally {
      clearInterval(timer);
    }
    const r = recs[recs.length - 1].recording;
    const probe = ffprobe(r.file, true);
    assert.strictEqual(Number(probe.streams[0].nb_read_frames), r.frames, "every frame fed is in the file");
    for (const f of fs.readdirSync(tmp)) assert.ok(!f.includes("\0") && f.length < 260, f);
  });

  it("ffmpeg transcode records frames that carry no size (a JPEG from any source) whole and at their size", async () => {
    await load(
      [recorderConfig({ directory: tmp, wires: [["recs"]] }), { id: "recs", type: "helper" }],
      "rec",
    );
    const recs = [];
    helper.getNode("recs").on("input", (m) => recs.push(m));
    await wait(500);
    const rec = helper.getNode("rec");
    let seq = 0;
    // As a file-in or http-request node sends them: a JPEG Buffer and nothing else.
    const timer = setInterval(() => rec.receive({ payload: jpegs[++seq % jpegs.length] }), 100);
    try {
      await wait(200);
      rec.receive({ action: "start", duration: 2 });
      await h.until(() => recs.length > 0, "the recording", 15000);
    } finally {
      clearInterval(timer);
    }
    const r = recs[0].recording;
    const probe = ffprobe(r.file, true);
    const stream = probe.streams[0];
    assert.deepStrictEqual([stream.width, stream.height], [320, 240], "recorded at the JPEG's own size");
    assert.strictEqual(
      Number(stream.nb_read_frames),
      r.frames,
      `${stream.nb_read_frames} of ${r.frames} frames`,
    );
  });
});
