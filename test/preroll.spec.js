// PreRollBuffer: the last seconds of frames for a recording's pre-roll, bounded by time and by bytes.
"use strict";
const assert = require("assert");
const { PreRollBuffer } = require("../dist/nodes/lib/transcode/preroll");

let seq = 0;
/** A frame of `bytes` bytes at `time` (epoch ms). */
const frame = (time, bytes = 100) => ({
  data: Buffer.alloc(bytes),
  seq: ++seq,
  time,
  camera: "cam",
  width: 1,
  height: 1,
});
const times = (frames) => frames.map((f) => f.time);

describe("PreRollBuffer", function () {
  it("holds the frames of the last maxMs (relative to the newest frame), oldest first", function () {
    const buf = new PreRollBuffer(1000, 1e9);
    for (let t = 0; t <= 5000; t += 100) buf.push(frame(t));
    assert.deepStrictEqual(
      times(buf.since()),
      [4000, 4100, 4200, 4300, 4400, 4500, 4600, 4700, 4800, 4900, 5000],
    );
    assert.strictEqual(buf.length, 11);
    assert.strictEqual(buf.spanMs, 1000);
    assert.strictEqual(buf.bytes, 11 * 100);
  });

  it("counts time by the frames' own clock, not the wall clock", function () {
    const buf = new PreRollBuffer(1000, 1e9);
    const old = Date.now() - 3600e3;
    for (let i = 0; i < 5; i++) buf.push(frame(old + i * 100));
    assert.strictEqual(buf.length, 5, "an hour-old burst is still 400 ms long");
  });

  it("holds at most maxBytes, dropping the oldest frames first", function () {
    const buf = new PreRollBuffer(60000, 1000);
    for (let i = 0; i < 10; i++) buf.push(frame(i * 10, 300));
    assert.deepStrictEqual(times(buf.since()), [70, 80, 90]);
    assert.strictEqual(buf.bytes, 900);
    assert.ok(buf.bytes <= 1000);
  });

  it("does not hold a single frame larger than maxBytes", function () {
    const buf = new PreRollBuffer(60000, 1000);
    buf.push(frame(0, 400));
    buf.push(frame(10, 5000));
    assert.strictEqual(buf.length, 0);
    assert.strictEqual(buf.bytes, 0);
    buf.push(frame(20, 400));
    assert.deepStrictEqual(times(buf.since()), [20], "and recovers with the next frame");
  });

  it("shares the frames it holds (no copies)", function () {
    const buf = new PreRollBuffer(1000, 1e9);
    const f = frame(0);
    buf.push(f);
    assert.strictEqual(buf.since()[0], f);
    assert.strictEqual(buf.since()[0].data, f.data);
  });

  it("answers since(), after() and lastBefore() at a trigger time", function () {
    const buf = new PreRollBuffer(10000, 1e9);
    for (const t of [100, 200, 300, 400]) buf.push(frame(t));
    assert.deepStrictEqual(times(buf.since(200)), [200, 300, 400], "since includes the time itself");
    assert.deepStrictEqual(times(buf.after(200)), [300, 400], "after excludes it");
    assert.strictEqual(buf.lastBefore(300).time, 200);
    assert.strictEqual(buf.lastBefore(100), undefined, "nothing older than the oldest");
    assert.deepStrictEqual(times(buf.since(1000)), []);
  });

  it("stays bounded and correct over many frames (it compacts its array now and then)", function () {
    const buf = new PreRollBuffer(2000, 1e9);
    for (let i = 0; i < 20000; i++) {
      buf.push(frame(i * 40));
      if (i % 997 === 0) {
        const held = buf.since();
        assert.ok(held.length <= 51, `${held.length} frames held`);
        assert.strictEqual(held[held.length - 1].time, i * 40, "the newest is last");
        assert.ok(held[0].time >= i * 40 - 2000, "nothing older than maxMs");
      }
    }
    assert.strictEqual(buf.length, 51);
    assert.strictEqual(buf.spanMs, 2000);
    assert.strictEqual(buf.bytes, 51 * 100);
    assert.deepStrictEqual(
      times(buf.since()),
      Array.from({ length: 51 }, (_, k) => (20000 - 51 + k) * 40),
    );
  });

  it("is empty with no frames", function () {
    const buf = new PreRollBuffer(1000, 1000);
    assert.strictEqual(buf.length, 0);
    assert.strictEqual(buf.bytes, 0);
    assert.strictEqual(buf.spanMs, 0);
    assert.deepStrictEqual(buf.since(), []);
    assert.strictEqual(buf.lastBefore(Infinity), undefined);
  });

  it("cuts a clip from a time: the frame on screen then, stamped with that time, and every later frame", function () {
    const buf = new PreRollBuffer(10000, 1e9);
    for (let t = 0; t <= 1000; t += 250) buf.push(frame(t));
    const clip = buf.clipFrom(600);
    assert.deepStrictEqual(times(clip), [600, 750, 1000]);
    assert.strictEqual(clip[0].seq, buf.lastBefore(600).seq, "the frame shown at 600 is the one from 500");
    assert.strictEqual(buf.lastBefore(600).time, 500, "the ring keeps its own time");
    assert.deepStrictEqual(
      times(buf.clipFrom(-100)),
      [0, 250, 500, 750, 1000],
      "nothing before: no extra frame",
    );
  });
});
