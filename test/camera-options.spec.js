// cameraOptions: the camera-source node's saved settings and credentials -> the Camera's options, with one
// default for every missing or bad value.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { cameraOptions } = require("../dist/nodes/lib/camera/options");
const { CAMERA_DEFAULTS } = require("../dist/nodes/lib/camera/camera");

describe("cameraOptions", function () {
  it("fills every setting the editor left out from the camera defaults", function () {
    const o = cameraOptions({}, undefined);
    assert.deepStrictEqual(o, {
      name: "test pattern",
      protocol: "test",
      url: "",
      fps: 0,
      user: undefined,
      password: undefined,
      maxFrameBytes: CAMERA_DEFAULTS.maxFrameBytes,
      ffmpegPath: undefined,
      options: { mode: "stream", imageSize: "640x480", rtspTransport: "auto", video: "auto", audio: true },
      tls: { verify: true, fingerprint: undefined },
      lingerMs: CAMERA_DEFAULTS.lingerMs,
      alwaysOn: false,
      watchdogMs: CAMERA_DEFAULTS.watchdogMs,
      maxAuthFailures: CAMERA_DEFAULTS.maxAuthFailures,
      backoffFirstMs: CAMERA_DEFAULTS.backoffFirstMs,
      backoffMaxMs: CAMERA_DEFAULTS.backoffMaxMs,
    });
  });

  it("takes the editor's values, numbers as numbers or strings, in the units the camera uses", function () {
    const o = cameraOptions(
      {
        name: "front door",
        protocol: "mjpeg",
        url: "  http://127.0.0.1:8080/video.mjpg \n",
        fps: "12.5",
        linger: 3,
        alwaysOn: true,
        watchdog: "4",
        maxFrameKB: 512,
        mode: "snapshot",
        imageSize: "1280x720",
        ffmpegPath: "",
        rtspTransport: "udp",
      },
      { user: "admin", password: "s3cret" },
    );
    assert.strictEqual(o.name, "front door");
    assert.strictEqual(o.protocol, "mjpeg");
    assert.strictEqual(o.url, "http://127.0.0.1:8080/video.mjpg", "the URL is trimmed");
    assert.strictEqual(o.fps, 12.5);
    assert.strictEqual(o.lingerMs, 3000);
    assert.strictEqual(o.alwaysOn, true);
    assert.strictEqual(o.watchdogMs, 4000);
    assert.strictEqual(o.maxFrameBytes, 512 * 1024);
    assert.deepStrictEqual(o.options, {
      mode: "snapshot",
      imageSize: "1280x720",
      rtspTransport: "udp",
      video: "auto",
      audio: true,
    });
    assert.strictEqual(o.user, "admin");
    assert.strictEqual(o.password, "s3cret");
    assert.strictEqual(o.ffmpegPath, undefined, "only the ffmpeg protocol looks for ffmpeg");
  });

  it("names an unnamed camera 'camera' (the test pattern 'test pattern')", function () {
    assert.strictEqual(cameraOptions({ protocol: "rtsp", name: "" }, undefined).name, "camera");
    assert.strictEqual(cameraOptions({ protocol: "", name: "" }, undefined).protocol, "test");
  });

  for (const bad of ["", "abc", null, undefined, "NaN", "Infinity", {}, [1, 2]]) {
    it(`falls back to the default for a bad number (${JSON.stringify(bad) ?? "undefined"})`, function () {
      const o = cameraOptions({ fps: bad, linger: bad, watchdog: bad, maxFrameKB: bad }, undefined);
      assert.strictEqual(o.fps, 0);
      assert.strictEqual(o.lingerMs, CAMERA_DEFAULTS.lingerMs);
      assert.strictEqual(o.watchdogMs, CAMERA_DEFAULTS.watchdogMs);
      assert.strictEqual(o.maxFrameBytes, CAMERA_DEFAULTS.maxFrameBytes);
    });
  }

  it("clamps numbers out of range: no negative fps or linger, watchdog at least 1 s, frames at least 64 KB", function () {
    const o = cameraOptions({ fps: -5, linger: -1, watchdog: 0, maxFrameKB: 1 }, undefined);
    assert.strictEqual(o.fps, 0);
    assert.strictEqual(o.lingerMs, 0);
    assert.strictEqual(o.watchdogMs, 1000);
    assert.strictEqual(o.maxFrameBytes, 64 * 1024);
    assert.strictEqual(
      cameraOptions({ linger: 0 }, undefined).lingerMs,
      0,
      "0 is a value, not a missing one",
    );
  });

  it("turns alwaysOn on only for a real true (not the string 'true' of an old flow)", function () {
    assert.strictEqual(cameraOptions({ alwaysOn: "true" }, undefined).alwaysOn, false);
    assert.strictEqual(cameraOptions({ alwaysOn: 1 }, undefined).alwaysOn, false);
  });

  it("treats empty credentials as none", function () {
    const o = cameraOptions({ protocol: "mjpeg" }, { user: "", password: "" });
    assert.strictEqual(o.user, undefined);
    assert.strictEqual(o.password, undefined);
  });

  describe("the ffmpeg protocol", function () {
    let dir;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-opts-"))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("uses the ffmpeg the node names", function () {
      const fake = path.join(dir, "my-ffmpeg");
      fs.writeFileSync(fake, "#!/bin/sh\n", { mode: 0o755 });
      assert.strictEqual(cameraOptions({ protocol: "ffmpeg", ffmpegPath: fake }, undefined).ffmpegPath, fake);
    });

    it("finds one when the node names none", function () {
      const found = cameraOptions({ protocol: "ffmpeg", ffmpegPath: "" }, undefined).ffmpegPath;
      assert.ok(found && fs.existsSync(found), `found ${found}`);
    });

    it("leaves a missing ffmpeg to the source to report (no throw here)", function () {
      const o = cameraOptions(
        { protocol: "ffmpeg", ffmpegPath: path.join(dir, "no-such-ffmpeg") },
        undefined,
      );
      assert.strictEqual(o.ffmpegPath, undefined);
    });
  });
});
