"use strict";
// camera connect with a passed-through H.264 camera: output video / both / jpeg, a late start, snapshot.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const { FFMPEG, until } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

describe("camera connect: compressed video out", function () {
  this.timeout(60000);
  let tmp;
  let clip;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-passc-"));
    clip = path.join(tmp, "h264aac.mp4");
    execFileSync(FFMPEG, [
      ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"],
      ...["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "4"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac", clip],
    ]);
    await helper.startServer();
  });
  after(async function () {
    await helper.stopServer();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  function flow() {
    return [
      { id: "cam1", type: "camera-source", name: "clip", protocol: "ffmpeg", url: clip, linger: 0 },
      { id: "v", type: "camera-connect", camera: "cam1", output: "video", wires: [["hv"], []] },
      { id: "b", type: "camera-connect", camera: "cam1", output: "both", jpegRate: "5", wires: [["hb"], []] },
      { id: "j", type: "camera-connect", camera: "cam1", autoStart: false, wires: [["hj"], []] },
      {
        id: "lv",
        type: "camera-connect",
        camera: "cam1",
        output: "video",
        autoStart: false,
        wires: [["hl"], []],
      },
      { id: "hl", type: "helper" },
      { id: "hv", type: "helper" },
      { id: "hb", type: "helper" },
      { id: "hj", type: "helper" },
    ];
  }

  it("video sends init then keyframe-first fragments; both adds JPEG; a late start gets init + GOP", async function () {
    await helper.load([cameraSource, cameraConnect], flow());
    // The clip ends after 4 s and the camera reconnects: enough for this test.
    const got = { hv: [], hb: [], hj: [], hl: [] };
    for (const id of Object.keys(got)) helper.getNode(id).on("input", (m) => got[id].push(m));
    await until(() => got.hv.filter((m) => m.mp4 && m.mp4.type === "fragment").length >= 6, 20000);
    const first = got.hv[0];
    assert.strictEqual(first.mp4.type, "init");
    assert.match(first.mp4.codec, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/);
    assert.strictEqual(first.mp4.width, 320);
    assert.strictEqual(first.mp4.cameraId, "cam1");
    assert.strictEqual(first.topic, "clip");
    assert.strictEqual(got.hv[1].mp4.keyframe, true);
    assert.ok(
      got.hv.every((m) => m.mp4 && !m.frame),
      "video output sends no JPEG",
    );
    await until(() => got.hb.some((m) => m.frame) && got.hb.some((m) => m.mp4), 15000);
    // A late start: the node given "start" first gets the JPEG it wants (it has output jpeg).
    helper.getNode("j").receive({ action: "start" });
    await until(() => got.hj.length >= 2, 15000);
    assert.ok(got.hj.every((m) => m.frame && !m.mp4));
    // A late video start: the cached init, then the GOP from its keyframe, at once.
    helper.getNode("lv").receive({ action: "start" });
    await until(() => got.hl.length >= 2, 10000);
    assert.strictEqual(got.hl[0].mp4.type, "init");
    assert.strictEqual(got.hl[1].mp4.type, "fragment");
    assert.strictEqual(got.hl[1].mp4.keyframe, true);
    assert.strictEqual(got.hl[1].mp4.initId, got.hl[0].mp4.initId);
    // snapshot on the video node: a picture from the cached keyframe.
    const snap = new Promise((resolve) => helper.getNode("hv").on("input", (m) => m.frame && resolve(m)));
    helper.getNode("v").receive({ action: "snapshot" });
    const picture = await snap;
    assert.strictEqual(picture.payload[0], 0xff);
    assert.strictEqual(picture.frame.width, 320);
  });
});
