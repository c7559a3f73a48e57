// The shared camera and its sources, without Node-RED: real sockets against fake cameras.
"use strict";
const assert = require("assert");
const { Camera, CAMERA_DEFAULTS } = require("../dist/nodes/lib/camera/camera");
const { createSource } = require("../dist/nodes/lib/sources");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const cams = require("./lib/fake-cameras");
const { wait } = require("./lib/toolkit");

function options(over) {
  return {
    name: "cam",
    protocol: "mjpeg",
    url: "",
    fps: 0,
    maxFrameBytes: CAMERA_DEFAULTS.maxFrameBytes,
    options: {},
    lingerMs: 0,
    alwaysOn: false,
    watchdogMs: 5000,
    maxAuthFailures: 3,
    backoffFirstMs: 100,
    backoffMaxMs: 1000,
    ...over,
  };
}

/** Resolves with the first `n` frames the camera emits, or rejects after `ms`. */
function frames(camera, n, ms = 8000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(
      () => reject(new Error(`only ${got.length}/${n} frames; state ${JSON.stringify(camera.state)}`)),
      ms,
    );
    const on = (f) => {
      got.push(f);
      if (got.length === n) {
        clearTimeout(timer);
        camera.off("frame", on);
        resolve(got);
      }
    };
    camera.on("frame", on);
  });
}

function stateSeen(camera, name, ms = 8000) {
  return new Promise((resolve, reject) => {
    if (camera.state.state === name) return resolve(camera.state);
    const timer = setTimeout(
      () => reject(new Error(`state ${name} not seen; now ${camera.state.state}`)),
      ms,
    );
    const on = (s) => {
      if (s.state === name) {
        clearTimeout(timer);
        camera.off("state", on);
        resolve(s);
      }
    };
    camera.on("state", on);
  });
}

describe("Camera and sources", function () {
  this.timeout(20000);
  let cam;
  let camera;
  afterEach(async () => {
    camera?.close();
    camera = undefined;
    await cam?.close();
    cam = undefined;
  });

  it("streams HTTP MJPEG with Content-Length and stamps frames", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    camera = new Camera(options({ url: cam.url }), createSource);
    camera.addUser("a");
    const got = await frames(camera, 5);
    assert.deepStrictEqual(
      got.map((f) => f.seq),
      [1, 2, 3, 4, 5],
    );
    for (const f of got) {
      assert.strictEqual(f.width, 320);
      assert.strictEqual(f.height, 240);
      assert.strictEqual(f.camera, "cam");
      assert.ok(Math.abs(f.time - Date.now()) < 5000);
      assert.deepStrictEqual(readJpegSize(f.data), { width: 320, height: 240 });
    }
    assert.strictEqual(camera.state.state, "streaming");
  });

  it("streams MJPEG without Content-Length, with LF line ends and a boundary that differs from the header", async () => {
    cam = await cams.mjpegCamera({
      fps: 20,
      contentLength: false,
      lf: true,
      boundary: "other",
      headerBoundary: '"--myboundary"',
    });
    camera = new Camera(options({ url: cam.url }), createSource);
    camera.addUser("a");
    const got = await frames(camera, 5);
    const originals = cams.makeFrames();
    assert.ok(got[0].data.equals(originals[0]), "frame comes out byte-identical");
  });

  it("opens one connection for many users and closes after the linger", async () => {
    cam = await cams.mjpegCamera({ fps: 20 });
    camera = new Camera(options({ url: cam.url, lingerMs: 300 }), createSource);
    for (const id of ["a", "b", "c", "d"]) camera.addUser(id);
    await frames(camera, 3);
    assert.strictEqual(cam.connections, 1);
    for (const id of ["a", "b", "c"]) camera.removeUser(id);
    camera.removeUser("d");
    camera.addUser("e"); // a redeploy of consumers: back within the linger
    await wait(500);
    assert.strictEqual(cam.connections, 1);
    assert.strictEqual(cam.open, 1);
    camera.removeUser("e");
    await wait(700);
    assert.strictEqual(cam.open, 0, "disconnected after the linger");
    assert.strictEqual(camera.state.state, "idle");
  });

  it("reconnects within the backoff after the camera drops mid-frame", async () => {
    cam = await cams.mjpegCamera({ fps: 20, dropAfter: 3 });
    camera = new Camera(options({ url: cam.url }), createSource);
    const warnings = [];
    camera.on("warning", (w) => warnings.push(w));
    camera.addUser("a");
    await frames(camera, 3);
    const retry = await stateSeen(camera, "retrying");
    assert.ok(retry.retryInMs <= 1000, `first retry within 1 s (was ${retry.retryInMs})`);
    await stateSeen(camera, "streaming");
    await frames(camera, 3);
    assert.ok(cam.connections >= 2);
    assert.ok(
      warnings.some((w) => /stream ended inside a frame/.test(w)),
      warnings.join("; "),
    );
  });

  it("the watchdog closes a silent connection and reconnects", async () => {
    cam = await cams.mjpegCamera({ fps: 20, silentAfter: 2 });
    camera = new Camera(options({ url: cam.url, watchdogMs: 600 }), createSource);
    camera.addUser("a");
    await frames(camera, 2);
    const stalled = await stateSeen(camera, "stalled", 3000);
    assert.match(stalled.error, /no frame for 1 s/);
    await stateSeen(camera, "connecting", 3000);
    assert.ok(cam.connections >= 2 || camera.stats.reconnects >= 1);
  });

  it("backoff grows, is jittered and capped", () => {
    camera = new Camera(options({ backoffFirstMs: 500, backoffMaxMs: 30000 }), createSource);
    const first = [...Array(50)].map(() => camera.backoffMs(0));
    assert.ok(Math.max(...first) <= 600 && Math.min(...first) >= 400);
    assert.ok(new Set(first).size > 5, "jittered");
    assert.ok(camera.backoffMs(20) <= 36000);
    assert.ok(camera.backoffMs(3) > camera.backoffMs(0));
  });

  it("answers Digest auth", async () => {
    cam = await cams.mjpegCamera({ fps: 20, auth: { scheme: "digest", user: "admin", password: "s3cret!" } });
    camera = new Camera(options({ url: cam.url, user: "admin", password: "s3cret!" }), createSource);
    camera.addUser("a");
    await frames(camera, 2);
  });

  it("answers Basic auth", async () => {
    cam = await cams.mjpegCamera({ fps: 20, auth: { scheme: "basic", user: "admin", password: "pw" } });
    camera = new Camera(options({ url: cam.url, user: "admin", password: "pw" }), createSource);
    camera.addUser("a");
    await frames(camera, 2);
  });

  it("stops retrying after repeated 401s and says so without the password", async () => {
    cam = await cams.mjpegCamera({ auth: { scheme: "digest", user: "admin", password: "right" } });
    camera = new Camera(options({ url: cam.url, user: "admin", password: "wrong-pass-123" }), createSource);
    const states = [];
    camera.on("state", (s) => states.push(s));
    camera.addUser("a");
    const failed = await stateSeen(camera, "auth-failed", 8000);
    assert.match(failed.error, /refused the user name or password/);
    const requests = cam.requests.length;
    await wait(1500);
    assert.strictEqual(cam.requests.length, requests, "no retries after the breaker trips");
    assert.ok(!JSON.stringify(states).includes("wrong-pass-123"));
    camera.retryNow();
    await wait(300);
    assert.ok(cam.requests.length > requests, "retryNow tries again");
  });

  it("names an HTML page instead of video", async () => {
    cam = await cams.mjpegCamera({ html: true });
    camera = new Camera(options({ url: cam.url }), createSource);
    camera.addUser("a");
    const s = await stateSeen(camera, "retrying");
    assert.match(s.error, /text\/html page instead of video: "Login required"/);
  });

  it("says a refused connection and an unknown host in words", async () => {
    camera = new Camera(options({ url: "http://127.0.0.1:1/x" }), createSource);
    camera.addUser("a");
    let s = await stateSeen(camera, "retrying");
    assert.match(s.error, /connection refused by 127\.0\.0\.1:1/);
    camera.close();
    camera = new Camera(options({ url: "http://no-such-camera.invalid/x" }), createSource);
    camera.addUser("a");
    s = await stateSeen(camera, "retrying", 15000);
    assert.match(s.error, /camera host not found: no-such-camera\.invalid/);
  });

  it("polls JPEG snapshots paced to fps over one connection", async () => {
    cam = await cams.snapshotCamera();
    camera = new Camera(options({ protocol: "jpeg", url: cam.url, fps: 5 }), createSource);
    camera.addUser("a");
    await frames(camera, 6);
    const gaps = cam.requests.slice(1).map((t, i) => t - cam.requests[i]);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    assert.ok(mean > 150 && mean < 260, `mean request gap ${mean} ms for 5 fps`);
    assert.strictEqual(cam.connections, 1, "keep-alive: one connection");
  });

  it("speaks the Canon VB native protocol, paced, one request in flight", async () => {
    cam = await cams.canonVbCamera();
    camera = new Camera(options({ protocol: "canon-vb", url: cam.url, fps: 6 }), createSource);
    camera.addUser("a");
    const got = await frames(camera, 7);
    assert.strictEqual(cam.maxOutstanding, 1);
    assert.strictEqual(got[0].width, 320);
    const t = cam.requestTimes;
    const mean = (t[t.length - 1] - t[0]) / (t.length - 1);
    assert.ok(mean > 140 && mean < 200, `mean request gap ${mean} ms for 6 fps`);
    assert.ok(
      got.every((f) => f.data[0] === 0xff && f.data[1] === 0xd8),
      "handshake noise is not a frame",
    );
  });

  it("a frame waiting in the fps cap when the source drops is not delivered: the state stays 'retrying'", async () => {
    const { FrameSource, SourceError } = require("../dist/nodes/lib/sources/source");
    const jpeg = cams.makeFrames(1, "32x24")[0];
    class Flaky extends FrameSource {
      start() {
        this.timer = setInterval(() => this.emitFrame(jpeg, 32, 24), 20);
        this.drop = setTimeout(() => this.finish(new SourceError("network", "gone")), 300);
      }
      release() {
        clearInterval(this.timer);
        clearTimeout(this.drop);
      }
    }
    camera = new Camera(options({ fps: 2, backoffFirstMs: 3000, backoffMaxMs: 3000 }), (o) => new Flaky(o));
    const states = [];
    camera.on("state", (st) => states.push(st.state));
    camera.addUser("a");
    await wait(1200);
    const after = states.slice(states.indexOf("retrying"));
    assert.ok(after.length > 0, `states: ${states}`);
    assert.deepStrictEqual([...new Set(after)], ["retrying"], `states: ${states}`);
  });

  it("Canon VB: an answer cut short is dropped and the next frame requested, no reconnect", async () => {
    cam = await cams.canonVbCamera({ damage: [2] });
    camera = new Camera(options({ protocol: "canon-vb", url: cam.url, fps: 10 }), createSource);
    const warnings = [];
    camera.on("warning", (w) => warnings.push(w));
    camera.addUser("a");
    const got = await frames(camera, 8);
    assert.ok(got.every((f) => f.width === 320));
    assert.strictEqual(cam.connections, 1, "recovered on the same connection");
    assert.ok(warnings.length >= 1, "the damaged answers were reported");
  });

  it("speaks Canon WebView: GetOneShot stream, falling back to a numeric frame_count", async () => {
    cam = await cams.canonWebViewCamera({ needsNumber: true });
    camera = new Camera(
      options({ protocol: "canon-webview", url: cam.url, fps: 10, options: { mode: "stream" } }),
      createSource,
    );
    camera.addUser("a");
    await frames(camera, 3);
    assert.ok(
      cam.requests.some((r) => r.includes("frame_count=1000000000")),
      cam.requests.join(" "),
    );
    assert.ok(cam.requests.some((r) => r.includes("image_size=640x480")));
  });

  it("speaks the Canon WebView session: skips repeated frame numbers and closes the session", async () => {
    cam = await cams.canonWebViewCamera({ newFirmware: true });
    camera = new Camera(
      options({ protocol: "canon-webview", url: cam.url, fps: 20, options: { mode: "session" } }),
      createSource,
    );
    camera.addUser("a");
    const got = await frames(camera, 6);
    assert.strictEqual(cam.opened, 1);
    assert.ok(cam.liveImages > got.length, "repeated frames were requested but not emitted");
    camera.close();
    camera = undefined;
    await wait(300);
    assert.strictEqual(cam.closed, 1, "CloseCameraServer sent");
  });

  it("renders a moving test pattern at the configured rate", async () => {
    camera = new Camera(options({ protocol: "test", url: "320x240", fps: 10 }), createSource);
    camera.addUser("a");
    const got = await frames(camera, 3);
    assert.strictEqual(got[0].width, 320);
    assert.ok(!got[0].data.equals(got[2].data), "the picture changes");
  });

  it("caps the emitted rate at fps, newest frame kept", async () => {
    cam = await cams.mjpegCamera({ fps: 30 });
    camera = new Camera(options({ url: cam.url, fps: 5 }), createSource);
    camera.addUser("a");
    await frames(camera, 2);
    const start = camera.stats.framesEmitted;
    await wait(2000);
    const rate = (camera.stats.framesEmitted - start) / 2;
    assert.ok(rate >= 4 && rate <= 6, `emitted ${rate} fps`);
    assert.ok(camera.stats.framesDropped > 0);
  });
});
