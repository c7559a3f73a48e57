// http-stream-out finds the camera behind its frames by identity (msg.frame.cameraId, the camera-source
// node's id), not by camera name: two unnamed cameras are both "test pattern" and must not share metrics.
"use strict";
const assert = require("assert");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const { frameMessage } = require("../dist/nodes/lib/messages");
const h = require("./lib/stream-out-helpers");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

/** The value of one sample in `<path>/metrics` text, or undefined when it is not there. */
function sample(text, name) {
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

describe("http-stream-out: the camera behind the frames, by identity", function () {
  this.timeout(30000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let jpeg;

  before(async function () {
    await web.listen();
    [jpeg] = await h.makeJpegs({ count: 1 });
  });
  after(() => web.close());
  afterEach(() => helper.unload());

  const metrics = async (path) => (await h.request(web.url(`${path}/metrics`))).body.toString();

  /** Two unnamed test-pattern cameras and two streams; `extra` adds nodes (e.g. camera connect). */
  async function loadTwo(extra = [], outWires = [[], []]) {
    await helper.load(
      [cameraSource, cameraConnect, streamOut],
      [
        { id: "cam1", type: "camera-source", protocol: "test", url: "160x120", fps: 10, linger: 0 },
        { id: "cam2", type: "camera-source", protocol: "test", url: "160x120", fps: 10, linger: 0 },
        { id: "out1", type: "http-stream-out", path: "/one", wires: outWires[0] },
        { id: "out2", type: "http-stream-out", path: "/two", wires: outWires[1] },
        ...extra,
      ],
    );
    const cam1 = helper.getNode("cam1").camera;
    const cam2 = helper.getNode("cam2").camera;
    assert.strictEqual(cam1.name, cam2.name, "both unnamed cameras have the default name");
    return { cam1, cam2, out1: helper.getNode("out1"), out2: helper.getNode("out2") };
  }

  const frame = (seq) => ({ data: jpeg, seq, time: Date.now(), camera: "test pattern", width: 0, height: 0 });

  it("frame messages that name their camera-source get that camera's counters", async function () {
    const { cam2, out1, out2 } = await loadTwo();
    cam2.stats.reconnects = 5;
    for (let i = 1; i <= 3; i++) out1.receive(frameMessage(frame(i), "cam1"));
    out2.receive(frameMessage(frame(1), "cam2"));
    const one = await metrics("/one");
    const two = await metrics("/two");
    assert.strictEqual(sample(one, "camrelay_camera_reconnects_total"), 0);
    assert.strictEqual(sample(two, "camrelay_camera_reconnects_total"), 5);
    assert.strictEqual(sample(one, "camrelay_frames_in_total"), 3);
    assert.strictEqual(sample(two, "camrelay_frames_in_total"), 1);
    assert.match(two, /^camrelay_camera_up\{path="\/two",camera="test pattern"\} 0$/m);
  });

  it("without an id, a camera name two cameras share finds neither; a name one camera has finds it", async function () {
    const { cam1, out1 } = await loadTwo([
      { id: "cam3", type: "camera-source", name: "porch", protocol: "test", url: "160x120", linger: 0 },
      { id: "out3", type: "http-stream-out", path: "/three", wires: [] },
    ]);
    cam1.stats.reconnects = 2;
    out1.receive(frameMessage(frame(1)));
    const one = await metrics("/one");
    assert.strictEqual(sample(one, "camrelay_frames_in_total"), 1);
    assert.strictEqual(sample(one, "camrelay_camera_reconnects_total"), undefined, "no guess between two");
    helper.getNode("cam3").camera.stats.reconnects = 4;
    helper.getNode("out3").receive({ payload: jpeg, topic: "porch" });
    assert.strictEqual(sample(await metrics("/three"), "camrelay_camera_reconnects_total"), 4);
  });

  it("two unnamed test-pattern cameras feeding two streams through camera connect do not share metrics", async function () {
    const { cam1, cam2 } = await loadTwo([
      { id: "conn1", type: "camera-connect", camera: "cam1", wires: [["out1", "seen1"], []] },
      { id: "conn2", type: "camera-connect", camera: "cam2", wires: [["out2"], []] },
      { id: "seen1", type: "helper" },
    ]);
    const seen = [];
    helper.getNode("seen1").on("input", (msg) => seen.push(msg));
    await h.until(() => seen.length > 0, "a frame from camera connect");
    assert.strictEqual(seen[0].frame.cameraId, "cam1");
    cam1.stats.reconnects = 1;
    cam2.stats.reconnects = 6;
    await h.until(
      async () => sample(await metrics("/two"), "camrelay_frames_in_total") > 0,
      "frames on /two",
    );
    const one = await metrics("/one");
    const two = await metrics("/two");
    assert.strictEqual(sample(one, "camrelay_camera_reconnects_total"), 1);
    assert.strictEqual(sample(two, "camrelay_camera_reconnects_total"), 6);
    assert.strictEqual(sample(one, "camrelay_camera_up"), 1);
    assert.strictEqual(sample(two, "camrelay_camera_up"), 1);
    helper.getNode("conn2").receive({ action: "stop" });
    await h.until(() => cam2.state.state !== "streaming", "camera 2 stops");
    assert.strictEqual(sample(await metrics("/one"), "camrelay_camera_up"), 1);
    assert.strictEqual(sample(await metrics("/two"), "camrelay_camera_up"), 0);
  });
});
