"use strict";
const assert = require("assert");
const { RateMeter } = require("../dist/nodes/lib/meters");

describe("RateMeter", function () {
  it("reads 0 with nothing counted", function () {
    const m = new RateMeter(5000);
    assert.strictEqual(m.perSecond(1000), 0);
    assert.strictEqual(m.fps(1000), 0);
    assert.strictEqual(m.kbps(1000), 0);
  });

  it("measures a steady frame rate over the window", function () {
    const m = new RateMeter(5000);
    for (let t = 0; t <= 4900; t += 100) m.add(1, t);
    assert.strictEqual(m.fps(4900), 10);
    const m25 = new RateMeter(5000);
    for (let t = 0; t <= 4960; t += 40) m25.add(1, t);
    assert.strictEqual(m25.fps(4960), 25);
  });

  it("keeps measuring past the window: old samples are forgotten", function () {
    const m = new RateMeter(2000);
    for (let t = 0; t < 10000; t += 200) m.add(1, t); // 5 fps for 10 s
    assert.strictEqual(m.fps(9800), 5);
    for (let t = 10000; t < 14000; t += 50) m.add(1, t); // then 20 fps
    assert.strictEqual(m.fps(13950), 20);
  });

  it("reads 0 one window after the stream stopped", function () {
    const m = new RateMeter(3000);
    for (let t = 0; t <= 1000; t += 100) m.add(1, t);
    assert.ok(m.fps(1000) > 0);
    assert.strictEqual(m.fps(4001), 0);
  });

  it("does not read a burst as a huge rate: at least a second of span", function () {
    const m = new RateMeter(5000);
    for (let i = 0; i < 10; i++) m.add(1, 100 + i); // 10 frames within 10 ms
    assert.strictEqual(m.perSecond(110), 9); // what came after the first, over one second
  });

  it("sums amounts: bytes per second read as kilobits per second", function () {
    const m = new RateMeter(5000);
    for (let t = 0; t <= 4000; t += 1000) m.add(125000, t); // 125 kB/s = 1000 kbit/s
    assert.strictEqual(m.perSecond(4000), 125000);
    assert.strictEqual(m.kbps(4000), 1000);
  });

  it("rounds fps to one decimal and kbps to whole numbers", function () {
    const m = new RateMeter(10000);
    for (let t = 0; t <= 3000; t += 300) m.add(1, t); // 10 intervals in 3 s
    assert.strictEqual(m.fps(3000), 3.3);
    const b = new RateMeter(10000);
    b.add(1000, 0);
    b.add(1000, 3000);
    assert.strictEqual(b.kbps(3000), 3); // 333.3 B/s = 2.67 kbit/s
  });

  it("reset() forgets everything", function () {
    const m = new RateMeter(5000);
    for (let t = 0; t <= 1000; t += 100) m.add(1, t);
    m.reset();
    assert.strictEqual(m.perSecond(1000), 0);
    m.add(1, 2000);
    m.add(1, 3000);
    assert.strictEqual(m.perSecond(3000), 1);
  });

  it("uses performance.now() when no time is given", function () {
    const m = new RateMeter(5000);
    m.add();
    m.add();
    assert.ok(m.perSecond() > 0);
  });
});
