"use strict";
// The state, stats and frame message writer/reader pairs camera connect sends with.
const assert = require("assert");
const {
  stateMessage,
  stateFromMessage,
  statsMessage,
  statsFromMessage,
  frameMessage,
  frameFromMessage,
} = require("../dist/nodes/lib/messages");

const STATS = {
  framesIn: 10,
  framesEmitted: 9,
  framesDropped: 1,
  bytesIn: 12345,
  reconnects: 2,
  warnings: 0,
  users: 1,
};

describe("camera messages", function () {
  it("state: topic <camera>/state, the name in payload, the error redacted", function () {
    const state = { state: "retrying", fps: 0, retryInMs: 500, error: "401 for admin:secret", since: 1 };
    const msg = stateMessage("porch", state, (t) => t.replace("secret", "***"));
    assert.strictEqual(msg.topic, "porch/state");
    assert.strictEqual(msg.payload, "retrying");
    assert.deepStrictEqual(msg.state, { ...state, error: "401 for admin:***" });
    assert.deepStrictEqual(stateFromMessage(msg), msg.state);
    assert.notStrictEqual(msg.state, state, "the camera's own state object is not handed out");
  });

  it("state: no error stays `error: undefined`; readers refuse what is not a state message", function () {
    const msg = stateMessage("porch", { state: "idle", fps: 0, since: 5 }, (t) => t);
    assert.ok("error" in msg.state);
    assert.strictEqual(msg.state.error, undefined);
    assert.strictEqual(stateFromMessage({ payload: "idle" }), undefined);
    assert.strictEqual(
      stateFromMessage({ payload: "x", state: { state: "x", fps: 0, since: 1 } }),
      undefined,
    );
    assert.strictEqual(stateFromMessage({ payload: "idle", state: { state: "idle", since: 1 } }), undefined);
  });

  it("stats: topic <camera>/stats, a copy of the counters with state and fps", function () {
    const msg = statsMessage("porch", STATS, { state: "streaming", fps: 9.5, since: 1 });
    assert.strictEqual(msg.topic, "porch/stats");
    assert.deepStrictEqual(msg.payload, { ...STATS, state: "streaming", fps: 9.5 });
    assert.notStrictEqual(msg.payload, STATS);
    assert.deepStrictEqual(statsFromMessage(msg), msg.payload);
    assert.strictEqual(statsFromMessage({ topic: "porch/state", payload: msg.payload }), undefined);
    assert.strictEqual(statsFromMessage({ topic: "porch/stats", payload: { framesIn: 1 } }), undefined);
  });

  it("frame: the JPEG shared, msg.frame without kind or data; cameraId only when given", function () {
    const frame = {
      kind: "jpeg",
      data: Buffer.from([0xff, 0xd8]),
      seq: 3,
      time: Date.now(),
      camera: "c",
      width: 2,
      height: 1,
    };
    const msg = frameMessage(frame);
    assert.strictEqual(msg.payload, frame.data);
    assert.deepStrictEqual(Object.keys(msg.frame).sort(), ["camera", "height", "seq", "time", "width"]);
    assert.strictEqual(frameMessage(frame, "n1").frame.cameraId, "n1");
    const back = frameFromMessage(msg);
    assert.deepStrictEqual(back, frame);
  });
});
