// lib/messages: the msg.recording and msg.mp4 writers ffmpeg-transcode sends with, against their readers.
"use strict";
const assert = require("assert");
const {
  recordingMessage,
  recordingFromMessage,
  mp4Message,
  mp4InfoFromMessage,
} = require("../dist/nodes/lib/messages");

describe("recording and mp4 messages", function () {
  it("a recording message carries the file, the camera and the details, and reads back", function () {
    const info = {
      file: "/r/a.mp4",
      camera: "door",
      start: 1,
      end: 2,
      duration: 0.001,
      triggerTime: 1,
      frames: 1,
      bytes: 9,
      trigger: {},
      reason: "stop",
    };
    const msg = recordingMessage(info);
    assert.deepStrictEqual(msg, { payload: "/r/a.mp4", topic: "door", recording: info });
    assert.strictEqual(recordingFromMessage(msg), info);
    assert.strictEqual(recordingFromMessage({ recording: { file: 1 } }), undefined);
    assert.strictEqual(recordingFromMessage({}), undefined);
  });

  it("an mp4 message shares the data and reads back with the msg.mp4 reader", function () {
    const data = Buffer.from("moof");
    const info = {
      type: "fragment",
      seq: 3,
      duration: 1,
      time: 1000,
      codec: "avc1.640028",
      width: 640,
      height: 480,
    };
    const msg = mp4Message(data, info, "door");
    assert.strictEqual(msg.payload, data);
    assert.strictEqual(msg.topic, "door");
    assert.deepStrictEqual(mp4InfoFromMessage(msg.mp4), info);
  });
});
