// lib/transcode/settings: an ffmpeg-transcode node's config into settings, and the deploy-time check, without Node-RED.
"use strict";
const assert = require("assert");
const path = require("path");
const {
  TRANSCODE_DEFAULTS,
  readTranscodeSettings,
  settingsProblem,
  sendsToUrl,
} = require("../dist/nodes/lib/transcode/settings");

describe("transcode settings", function () {
  it("a config with nothing set runs on the defaults", function () {
    const s = readTranscodeSettings({});
    assert.strictEqual(s.preset, "mp4");
    assert.strictEqual(s.directory, "");
    assert.strictEqual(s.encoder, "libx264");
    assert.strictEqual(s.preRollSec, TRANSCODE_DEFAULTS.preRoll);
    assert.strictEqual(s.postRollSec, TRANSCODE_DEFAULTS.postRoll);
    assert.strictEqual(s.maxDurationSec, TRANSCODE_DEFAULTS.maxDuration);
    assert.strictEqual(s.preRollMaxBytes, TRANSCODE_DEFAULTS.preRollMaxMB * 1024 * 1024);
    assert.deepStrictEqual(s.video, {
      width: undefined,
      height: undefined,
      maxSize: { width: 1920, height: 1080 },
      quality: 23,
      bitrate: 0,
      keyframeInterval: 1,
    });
    assert.strictEqual(s.maxSizeWarning, undefined);
  });

  it("one rule for bad numbers: empty or not a number is the default, out of range is clamped", function () {
    const s = readTranscodeSettings({
      preRoll: "",
      postRoll: "abc",
      quality: 99,
      keyframeInterval: "0.01",
      preRollMaxMB: 0,
    });
    assert.strictEqual(s.preRollSec, 5);
    assert.strictEqual(s.postRollSec, 5);
    assert.strictEqual(s.video.quality, 51);
    assert.strictEqual(s.video.keyframeInterval, 0.2);
    assert.strictEqual(s.preRollMaxBytes, 1024 * 1024);
    assert.strictEqual(readTranscodeSettings({ preRoll: "12" }).preRollSec, 12);
    assert.strictEqual(readTranscodeSettings({ preRoll: 9999 }).preRollSec, 600);
    assert.strictEqual(readTranscodeSettings({ keepDays: -3 }).keepDays, 0);
  });

  it("an unknown preset runs as mp4; the directory is resolved, the URL trimmed", function () {
    assert.strictEqual(readTranscodeSettings({ preset: "webm" }).preset, "mp4");
    assert.strictEqual(readTranscodeSettings({ preset: "push" }).preset, "push");
    assert.strictEqual(readTranscodeSettings({ directory: " rec " }).directory, path.resolve("rec"));
    assert.strictEqual(readTranscodeSettings({ url: " rtmp://h/app/k " }).url, "rtmp://h/app/k");
  });

  it("sizes follow parseSize; a bad largest size warns and keeps 1920x1080", function () {
    const s = readTranscodeSettings({ size: " 640 X 360 ", maxSize: "1280*720" });
    assert.strictEqual(s.video.width, 640);
    assert.strictEqual(s.video.height, 360);
    assert.deepStrictEqual(s.video.maxSize, { width: 1280, height: 720 });
    const bad = readTranscodeSettings({ maxSize: "huge" });
    assert.deepStrictEqual(bad.video.maxSize, { width: 1920, height: 1080 });
    assert.deepStrictEqual(bad.maxSizeWarning, {
      key: "errors.badMaxSize",
      params: { size: "huge", max: "1920x1080" },
    });
    assert.strictEqual(readTranscodeSettings({ size: "99999x1" }).video.width, undefined);
  });

  it("settings that cannot work are problems in words (i18n keys, or the argument builder's text)", function () {
    const problem = (c) => settingsProblem(readTranscodeSettings(c));
    assert.deepStrictEqual(problem({ preset: "mp4" }), { key: "errors.noDirectory" });
    assert.strictEqual(problem({ preset: "mp4", directory: "/tmp/x" }), undefined);
    assert.deepStrictEqual(problem({ preset: "flv" }), { key: "errors.noTarget" });
    assert.strictEqual(problem({ preset: "flv", url: "rtmp://h/a/k" }), undefined);
    assert.match(problem({ preset: "push", url: "http://h/x" }).text, /rtmp:\/\/, rtsp:\/\/ or srt:\/\//);
    assert.strictEqual(problem({ preset: "push", url: "srt://h:9000" }), undefined);
    assert.deepStrictEqual(problem({ preset: "custom", customArgs: "  " }), { key: "errors.noCustomArgs" });
    assert.match(problem({ preset: "custom", customArgs: "-f 'flv" }).text, /unbalanced quote/);
    assert.strictEqual(problem({ preset: "hls" }), undefined);
    assert.strictEqual(problem({ preset: "fmp4" }), undefined);
  });

  it("only flv and push send to the URL", function () {
    assert.deepStrictEqual(["mp4", "hls", "fmp4", "flv", "push", "custom"].filter(sendsToUrl), [
      "flv",
      "push",
    ]);
  });
});
