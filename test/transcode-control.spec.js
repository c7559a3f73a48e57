// lib/transcode/control: what msg.action, msg.duration and msg.filename may ask of an ffmpeg-transcode node.
"use strict";
const assert = require("assert");
const { readAction, readStart } = require("../dist/nodes/lib/transcode/control");

describe("transcode control messages", function () {
  it("start and stop only", function () {
    assert.strictEqual(readAction({ action: "start" }), "start");
    assert.strictEqual(readAction({ action: "stop" }), "stop");
    assert.deepStrictEqual(readAction({ action: "pause" }), {
      error: { key: "errors.badAction", params: { action: "pause" } },
    });
  });

  it("a duration is seconds in (0, 86400]; empty means the default", function () {
    assert.strictEqual(readStart({ duration: "" }).duration, undefined);
    assert.strictEqual(readStart({ duration: null }).duration, undefined);
    assert.strictEqual(readStart({ duration: "30" }).duration, 30);
    for (const bad of [0, -1, 86401, "x", Infinity]) {
      assert.deepStrictEqual(
        readStart({ duration: bad }),
        { error: { key: "errors.badDuration" } },
        String(bad),
      );
    }
  });

  it("carries the file name and the trigger's topic and payload", function () {
    assert.deepStrictEqual(readStart({ filename: "a/b", topic: "door", payload: 1 }), {
      duration: undefined,
      filename: "a/b",
      trigger: { topic: "door", payload: 1 },
    });
  });
});
