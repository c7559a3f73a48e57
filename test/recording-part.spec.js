"use strict";
// One part of a recording (nodes/lib/transcode/recording-part.ts): naming, continuation, what it holds.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const parts = require("../dist/nodes/lib/transcode/recording-part");
const { stamp } = require("../dist/nodes/lib/transcode/filenames");

describe("recording part", function () {
  let dir;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-part-"))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const fields = (over = {}) => ({
    trigger: { topic: "door" },
    triggerTime: 1000,
    filename: undefined,
    endTime: 5000,
    camera: "Front door",
    ...over,
  });

  it("names a recording without a name after its camera and time", function () {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5);
    assert.strictEqual(parts.defaultBase(dir, "Front door", t), path.join(dir, `Front_door-${stamp(t)}.mp4`));
  });

  it("starts a first part in a free name, ending by duration, not split, not closing", function () {
    const base = path.join(dir, "clip.mp4");
    fs.writeFileSync(base, "taken");
    const part = parts.firstPart(base, fields());
    assert.strictEqual(part.file, path.join(dir, "clip-2.mp4"));
    assert.strictEqual(part.sidecar, path.join(dir, "clip-2.json"));
    assert.strictEqual(part.base, base);
    assert.strictEqual(part.part, 1);
    assert.strictEqual(part.endReason, "duration");
    assert.strictEqual(part.splitAt, Infinity);
    assert.strictEqual(part.closing, false);
    assert.strictEqual(part.camera, "Front door");
  });

  it("continues in a next part without the session, renamed from the base", function () {
    const base = path.join(dir, "clip.mp4");
    const part = { ...parts.firstPart(base, fields()), session: {}, closing: true, splitAt: 3000 };
    const next = parts.nextPart(part);
    assert.strictEqual(next.part, 2);
    assert.strictEqual(next.session, undefined);
    assert.strictEqual(next.closing, false);
    assert.strictEqual(next.splitAt, Infinity);
    fs.writeFileSync(part.file, "x");
    parts.renamePart(next);
    assert.strictEqual(next.file, path.join(dir, "clip-2.mp4"));
    assert.strictEqual(next.sidecar, path.join(dir, "clip-2.json"));
  });

  it("names a part after maxDuration from its time, or keeps the user's name", function () {
    const part = parts.firstPart(parts.defaultBase(dir, "cam", 0), fields({ camera: "cam" }));
    const t = Date.UTC(2026, 5, 6, 7, 8, 9);
    assert.strictEqual(parts.splitPart(part, dir, t).file, path.join(dir, `cam-${stamp(t)}.mp4`));
    const named = parts.firstPart(
      path.join(dir, "mine.mp4"),
      fields({ filename: path.join(dir, "mine.mp4") }),
    );
    fs.writeFileSync(named.file, "x");
    assert.strictEqual(parts.splitPart(named, dir, t).file, path.join(dir, "mine-2.mp4"));
  });

  it("tells what a part holds, and leaves nothing behind of an empty one", function () {
    const part = parts.firstPart(path.join(dir, "clip.mp4"), fields());
    fs.writeFileSync(part.sidecar, "{}");
    assert.strictEqual(parts.closedPartInfo(part, "duration"), undefined);
    assert.ok(!fs.existsSync(part.sidecar));
    fs.writeFileSync(part.file, "12345");
    const info = parts.closedPartInfo(part, "error", "ffmpeg died");
    assert.strictEqual(info.bytes, 5);
    assert.strictEqual(info.reason, "error");
    assert.strictEqual(info.error, "ffmpeg died");
    assert.strictEqual(info.frames, 0);
    assert.deepStrictEqual(info.trigger, { topic: "door" });
    assert.strictEqual(parts.recordingInfo(part, "recording").error, undefined);
  });
});
