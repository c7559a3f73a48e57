// RateLimiter (frame-throttle and camera fps): at most fps items per key, newest wins, an absolute schedule.
"use strict";
const assert = require("assert");
const { RateLimiter } = require("../dist/nodes/lib/camera/rate-limiter");
const { wait, until } = require("./lib/toolkit");

/** A limiter that records what it emits (with performance.now()) and what it drops. */
function recorder(fps) {
  const seen = { emitted: [], at: [], dropped: [] };
  const limiter = new RateLimiter(
    fps,
    (item) => {
      seen.emitted.push(item);
      seen.at.push(performance.now());
    },
    (item) => seen.dropped.push(item),
  );
  return { limiter, seen };
}

describe("RateLimiter", function () {
  this.timeout(20000);
  let limiter;
  afterEach(() => limiter && limiter.close());

  it("passes everything through at once when fps is 0 (no limit)", function () {
    const r = recorder(0);
    limiter = r.limiter;
    for (let i = 0; i < 100; i++) limiter.push("k", i);
    assert.deepStrictEqual(r.seen.emitted, [...Array(100).keys()]);
    assert.deepStrictEqual(r.seen.dropped, []);
  });

  it("emits the first item at once, then the newest waiting one at the next slot, dropping the ones between", async function () {
    const r = recorder(5); // 200 ms slots
    limiter = r.limiter;
    limiter.push("k", "a");
    assert.deepStrictEqual(r.seen.emitted, ["a"], "the first item is not delayed");
    limiter.push("k", "b");
    limiter.push("k", "c");
    limiter.push("k", "d");
    assert.deepStrictEqual(
      r.seen.dropped,
      ["b", "c"],
      "an older waiting item is dropped at once: never a queue",
    );
    assert.deepStrictEqual(r.seen.emitted, ["a"], "nothing before the next slot");
    await until(() => r.seen.emitted.length === 2, "the waiting item", 5000);
    assert.deepStrictEqual(r.seen.emitted, ["a", "d"], "newest wins");
    const gap = r.seen.at[1] - r.seen.at[0];
    assert.ok(gap >= 198, `second item ${gap.toFixed(1)} ms after the first`);
    await wait(450);
    assert.deepStrictEqual(r.seen.emitted, ["a", "d"], "nothing is emitted twice or made up");
  });

  it("keeps a separate schedule per key", function () {
    const r = recorder(1);
    limiter = r.limiter;
    limiter.push("front", 1);
    limiter.push("back", 2);
    limiter.push("front", 3);
    assert.deepStrictEqual(r.seen.emitted, [1, 2], "another key's slot is free");
    assert.deepStrictEqual(r.seen.dropped, []);
  });

  it("holds the long-run rate on an absolute schedule: never faster, and timer lateness does not add up", async function () {
    const fps = 20;
    const interval = 1000 / fps;
    const r = recorder(fps);
    limiter = r.limiter;
    let pushed = 0;
    const t0 = performance.now();
    // Offer far more than the rate (every few ms) for 3 s.
    while (performance.now() - t0 < 3000) {
      limiter.push("k", pushed++);
      await wait(3);
    }
    const elapsed = performance.now() - t0;
    limiter.close();
    const start = r.seen.at[0];
    // Node's timers count whole milliseconds: a slot may come up to 2 ms early by performance.now().
    r.seen.at.forEach((t, k) =>
      assert.ok(
        t - start >= k * interval - 2,
        `item ${k} at ${(t - start).toFixed(1)} ms is before its slot`,
      ),
    );
    const slots = Math.floor(elapsed / interval) + 1;
    assert.ok(r.seen.emitted.length <= slots, `${r.seen.emitted.length} emitted in ${slots} slots`);
    assert.ok(
      r.seen.emitted.length >= slots - 3,
      `${r.seen.emitted.length} emitted of ${slots} slots in ${elapsed.toFixed(0)} ms: the schedule drifted`,
    );
    assert.strictEqual(
      r.seen.emitted.length + r.seen.dropped.length,
      pushed,
      "every item emitted or dropped",
    );
    for (let i = 1; i < r.seen.emitted.length; i++)
      assert.ok(r.seen.emitted[i] > r.seen.emitted[i - 1], "in order");
  });

  it("restarts the schedule after an idle gap instead of bursting to catch up", async function () {
    const r = recorder(20);
    limiter = r.limiter;
    limiter.push("k", 0);
    await wait(600); // 12 slots unused
    for (let i = 1; i <= 5; i++) limiter.push("k", i);
    assert.deepStrictEqual(r.seen.emitted, [0, 1], "one item at once after the gap, not a burst of five");
    assert.deepStrictEqual(r.seen.dropped, [2, 3, 4]);
    await until(() => r.seen.emitted.length === 3, "the next slot", 5000);
    assert.deepStrictEqual(r.seen.emitted, [0, 1, 5]);
  });

  it("close() drops what waits and stops its timers", async function () {
    const r = recorder(2);
    limiter = r.limiter;
    limiter.push("a", 1);
    limiter.push("a", 2);
    limiter.push("b", 3);
    limiter.push("b", 4);
    limiter.close();
    assert.deepStrictEqual(r.seen.dropped.sort(), [2, 4]);
    await wait(700);
    assert.deepStrictEqual(r.seen.emitted, [1, 3], "nothing is emitted after close");
  });

  it("keeps a busy key's schedule and its waiting item however many other keys arrive", function () {
    const r = recorder(1);
    limiter = r.limiter;
    limiter.push("busy", "first");
    limiter.push("busy", "waiting");
    for (let i = 0; i < 3000; i++) limiter.push(`cam-${i}`, i);
    assert.strictEqual(r.seen.emitted.length, 3001, "each new key's first item passes");
    limiter.push("busy", "newer");
    assert.deepStrictEqual(
      r.seen.dropped,
      ["waiting"],
      "the busy key kept its schedule and its waiting item",
    );
    assert.ok(!r.seen.emitted.includes("newer"));
  });
});
