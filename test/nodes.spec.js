// camera-source, camera-connect and frame-throttle in a real Node-RED runtime, against fake cameras.
"use strict";
const assert = require("assert");
const helper = require("node-red-node-test-helper");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const frameThrottle = require("../dist/nodes/frame-throttle.js");
const cams = require("./lib/fake-cameras");
const { wait, until } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const nodes = [cameraSource, cameraConnect, frameThrottle];

/** fn()'s first truthy value; a throwing fn() counts as not yet. */
const untilTrue = (fn, ms = 8000, what = "condition") =>
  until(fn, { ms, what, every: 25, retryErrors: true });

describe("camera nodes in Node-RED", function () {
  this.timeout(30000);
  let cam;
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(async () => {
    await helper.unload();
    await cam?.close();
    cam = undefined;
  });

  function flow(url, extra = {}) {
    return [
      { id: "tab1", type: "tab", label: "one" },
      { id: "tab2", type: "tab", label: "two" },
      {
        id: "cam1",
        type: "camera-source",
        name: "front door",
        protocol: "mjpeg",
        url,
        fps: 0,
        linger: 2,
        ...extra,
      },
      { id: "c1", z: "tab1", type: "camera-connect", camera: "cam1", wires: [["h1"], ["s1"]] },
      { id: "c2", z: "tab1", type: "camera-connect", camera: "cam1", wires: [["h2"], []] },
      { id: "c3", z: "tab2", type: "camera-connect", camera: "cam1", wires: [["h3"], []] },
      { id: "h1", z: "tab1", type: "helper" },
      { id: "h2", z: "tab1", type: "helper" },
      { id: "h3", z: "tab2", type: "helper" },
      { id: "s1", z: "tab1", type: "helper" },
    ];
  }

  it("three camera connect nodes on two tabs share exactly one camera connection", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    await helper.load(nodes, flow(cam.url));
    const got = { h1: [], h2: [], h3: [] };
    for (const id of Object.keys(got)) helper.getNode(id).on("input", (msg) => got[id].push(msg));
    await untilTrue(
      () => got.h1.length >= 5 && got.h2.length >= 5 && got.h3.length >= 5,
      8000,
      "frames on all three",
    );
    assert.strictEqual(cam.connections, 1);
    const msg = got.h3[0];
    assert.ok(Buffer.isBuffer(msg.payload));
    assert.strictEqual(msg.topic, "front door");
    // cameraId (0.2.0): the camera-source node's id, so http stream out finds the camera by identity.
    assert.deepStrictEqual(Object.keys(msg.frame).sort(), [
      "camera",
      "cameraId",
      "height",
      "seq",
      "time",
      "width",
    ]);
    assert.strictEqual(msg.frame.width, 320);
    assert.strictEqual(msg.frame.height, 240);
    assert.strictEqual(msg.frame.camera, "front door");
  });

  it("a redeploy of the consumers only does not reconnect the camera", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    const f = flow(cam.url);
    await helper.load(nodes, f);
    await untilTrue(() => cam.connections === 1 && cam.sent > 3, 8000, "streaming");
    const changed = f.map((n) => (n.id === "c2" ? { ...n, name: "renamed" } : n));
    await helper.setFlows(changed, "nodes");
    const frames = [];
    helper.getNode("h2").on("input", (m) => frames.push(m));
    await untilTrue(() => frames.length >= 3, 8000, "frames after redeploy");
    assert.strictEqual(cam.connections, 1);
    assert.strictEqual(cam.open, 1);
  });

  it("closing the flow closes the camera connection", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    await helper.load(nodes, flow(cam.url));
    await untilTrue(() => cam.open === 1 && cam.sent > 2, 8000, "streaming");
    await helper.unload();
    await untilTrue(() => cam.open === 0, 3000, "camera connection closed");
  });

  it("shows the state on every camera connect node and emits state changes", async () => {
    cam = await cams.mjpegCamera({ fps: 20, dropAfter: 5 });
    await helper.load(nodes, flow(cam.url));
    const statuses = { c1: [], c3: [] };
    for (const id of Object.keys(statuses)) {
      const n = helper.getNode(id);
      const orig = n.status.bind(n);
      n.status = (s) => {
        statuses[id].push(s);
        orig(s);
      };
    }
    const states = [];
    helper.getNode("s1").on("input", (m) => states.push(m));
    await untilTrue(() => states.some((m) => m.payload === "retrying"), 8000, "a retrying state message");
    await untilTrue(
      () => statuses.c3.some((s) => s.fill === "green" && / fps$/.test(s.text)),
      8000,
      "green fps status",
    );
    const retry = states.find((m) => m.payload === "retrying");
    assert.strictEqual(retry.topic, "front door/state");
    assert.match(retry.state.error, /closed the connection/);
    for (const list of Object.values(statuses)) {
      assert.ok(
        list.some((s) => s.fill === "red" && /^retry in \d+s$/.test(s.text)),
        JSON.stringify(list),
      );
    }
  });

  it("answers start, stop and snapshot actions, and names a bad action", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    const f = flow(cam.url).map((n) => (n.id === "c1" ? { ...n, autoStart: false } : n));
    await helper.load(nodes, f);
    const c1 = helper.getNode("c1");
    const got = [];
    helper.getNode("h1").on("input", (m) => got.push(m));
    await untilTrue(() => cam.sent > 3, 8000, "streaming for the others");
    assert.strictEqual(got.length, 0, "not started");
    c1.receive({ action: "snapshot", topic: "button" });
    await untilTrue(() => got.length === 1, 3000, "snapshot");
    assert.ok(Buffer.isBuffer(got[0].payload));
    c1.receive({ action: "start" });
    await untilTrue(() => got.length > 4, 3000, "frames after start");
    c1.receive({ action: "stop" });
    await wait(150);
    const n = got.length;
    await wait(400);
    assert.strictEqual(got.length, n, "no frames after stop");
    const errors = [];
    c1.error = (e) => errors.push(String(e));
    const origOn = c1.receive.bind(c1);
    origOn({ action: "explode" });
    await untilTrue(() => errors.length === 1, 2000, "error for a bad action");
    assert.match(errors[0], /unknown msg.action "explode"/);
  });

  it("keeps credentials out of statuses, logs, messages and the flow", async () => {
    cam = await cams.mjpegCamera({ auth: { scheme: "digest", user: "admin", password: "right" } });
    const f = flow(`http://admin:url-secret-77@127.0.0.1:${cam.port}/video.mjpg`);
    await helper.load(nodes, f, { cam1: { user: "admin", password: "wrong-secret-99" } });
    const seen = [];
    for (const id of ["c1", "c2", "c3"]) {
      const n = helper.getNode(id);
      const orig = n.status.bind(n);
      n.status = (s) => {
        seen.push(JSON.stringify(s));
        orig(s);
      };
    }
    helper.getNode("s1").on("input", (m) => seen.push(JSON.stringify(m)));
    await untilTrue(() => seen.some((s) => s.includes("auth-failed")), 10000, "auth-failed state");
    const logs = helper
      .log()
      .args.map((a) => JSON.stringify(a))
      .join("\n");
    assert.match(logs, /refused the user name or password/);
    const all = seen.join("\n") + logs;
    assert.ok(!all.includes("wrong-secret-99"), "the stored password leaked");
    assert.ok(seen.some((s) => s.includes("auth failed")));
    // The credential store holds the password; the node's config does not.
    const src = helper.getNode("cam1");
    assert.strictEqual(src.credentials.password, "wrong-secret-99");
    assert.ok(!JSON.stringify(f.find((n) => n.id === "cam1")).includes("wrong-secret-99"));
  });

  it("frame throttle holds each topic to its rate within 2% over a long run at mixed input rates", async function () {
    this.timeout(40000);
    await helper.load(nodes, [
      { id: "t", type: "frame-throttle", fps: 5, wires: [["out"]] },
      { id: "out", type: "helper" },
      { id: "done", type: "complete", scope: ["t"], wires: [["doneOut"]] },
      { id: "doneOut", type: "helper" },
    ]);
    const throttle = helper.getNode("t");
    const counts = {};
    let completes = 0;
    helper.getNode("out").on("input", (m) => (counts[m.topic] = (counts[m.topic] || 0) + 1));
    helper.getNode("doneOut").on("input", () => completes++);
    const seconds = 20;
    let sent = 0;
    const stopAt = Date.now() + seconds * 1000;
    // a: steady 30 fps; b: jittered ~12 fps; c: bursts of 10 every 700 ms
    const timers = [
      setInterval(() => {
        throttle.receive({ topic: "a", payload: Buffer.alloc(10) });
        sent++;
      }, 1000 / 30),
      (function jitter() {
        const t = { ref: null };
        const next = () => {
          throttle.receive({ topic: "b", payload: Buffer.alloc(10) });
          sent++;
          t.ref = setTimeout(next, 40 + Math.random() * 90);
        };
        next();
        return t;
      })(),
      setInterval(() => {
        for (let i = 0; i < 10; i++) {
          throttle.receive({ topic: "c", payload: Buffer.alloc(10) });
          sent++;
        }
      }, 700),
    ];
    await wait(stopAt - Date.now());
    clearInterval(timers[0]);
    clearTimeout(timers[1].ref);
    clearInterval(timers[2]);
    await wait(400);
    const expected = seconds * 5;
    for (const topic of ["a", "b"]) {
      const err = Math.abs(counts[topic] - expected) / expected;
      assert.ok(err <= 0.02, `topic ${topic}: ${counts[topic]} frames for ${expected} expected`);
    }
    // c sends 10 per 700 ms: a slot every 200 ms, newest of each burst wins, idle between bursts.
    assert.ok(counts.c > seconds / 0.7 && counts.c < seconds * 5, `topic c: ${counts.c}`);
    assert.strictEqual(completes, sent, "every message, passed or dropped, reached done()");
  });

  it("frame throttle with a bad fps says so, passes frames unthrottled and keeps its red status", async function () {
    await helper.load(nodes, [
      { id: "t", type: "frame-throttle", fps: "fast", wires: [["out"]] },
      { id: "out", type: "helper" },
    ]);
    const throttle = helper.getNode("t");
    let got = 0;
    helper.getNode("out").on("input", () => got++);
    const timer = setInterval(() => throttle.receive({ topic: "a", payload: Buffer.alloc(10) }), 20);
    await wait(2500);
    clearInterval(timer);
    assert.ok(got >= 50, `${got} frames passed`);
    const statuses = throttle.status.getCalls().map((c) => c.args[0]);
    assert.strictEqual(statuses[0].fill, "red");
    assert.ok(
      statuses.every((st) => st.fill !== "blue"),
      JSON.stringify(statuses),
    );
    const errors = throttle.error.getCalls().map((c) => String(c.args[0]));
    assert.ok(
      errors.some((e) => /not a positive number/.test(e)),
      errors.join(" | "),
    );
  });
});
