// lib/transcode/frame-clock: frame times from any clock onto one timeline that never goes back or runs ahead.
"use strict";
const assert = require("assert");
const { FrameClock } = require("../dist/nodes/lib/transcode/frame-clock");

describe("transcode frame clock", function () {
  it("times that move with the clock are kept as they are (pre-roll keeps its spacing)", function () {
    const c = new FrameClock();
    assert.deepStrictEqual(
      [c.correct(900, 1000), c.correct(1000, 1100), c.correct(1100, 1200)],
      [900, 1000, 1100],
    );
    assert.strictEqual(c.jumps, 0);
  });

  it("a frame stamped ahead of the clock arrived now, and later ones keep that offset", function () {
    const c = new FrameClock();
    c.correct(1000, 1000);
    assert.strictEqual(c.correct(3600000, 1100), 1100);
    assert.strictEqual(c.correct(3600100, 1200), 1200);
    assert.strictEqual(c.jumps, 1);
  });

  it("a jump back is placed as long after the last frame as the clock moved on", function () {
    const c = new FrameClock();
    c.correct(10000, 10000);
    assert.strictEqual(c.correct(0, 10100), 10100);
    assert.strictEqual(c.correct(100, 10200), 10200);
    assert.strictEqual(c.jumps, 1);
  });

  it("a small step back is no jump; the timeline never goes back past its last time", function () {
    const c = new FrameClock();
    c.correct(5000, 5000);
    assert.strictEqual(c.correct(4500, 5100), 4500);
    assert.strictEqual(c.jumps, 0);
    assert.strictEqual(c.correct(5200, 5200), 5200);
  });
});
