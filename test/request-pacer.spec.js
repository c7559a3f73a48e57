// RequestPacer (JPEG snapshot polling, Canon WebView): the next request starts one interval after the
// previous one started, so request time does not lower the rate.
"use strict";
const assert = require("assert");
const { RequestPacer } = require("../dist/nodes/lib/sources/request-pacer");
const { wait, until } = require("./lib/toolkit");

/** Polls like a source: each "request" takes `busyMs`, then asks the pacer for the next; resolves start times. */
async function poll(pacer, count, busyMs) {
  const starts = [];
  await new Promise((resolve) => {
    const request = () => {
      starts.push(performance.now());
      if (starts.length === count) return resolve();
      setTimeout(() => pacer.schedule(request), busyMs);
    };
    pacer.schedule(request);
  });
  return starts;
}

describe("RequestPacer", function () {
  this.timeout(20000);
  let pacer;
  afterEach(() => pacer && pacer.cancel());

  it("runs at once, synchronously, when fps is 0", function () {
    pacer = new RequestPacer(0);
    let runs = 0;
    for (let i = 0; i < 5; i++) pacer.schedule(() => runs++);
    assert.strictEqual(runs, 5);
  });

  it("runs the first request at once", function () {
    pacer = new RequestPacer(2);
    let ran = false;
    pacer.schedule(() => (ran = true));
    assert.strictEqual(ran, true);
  });

  it("starts requests one interval apart, counted from the previous start, not its end", async function () {
    pacer = new RequestPacer(10); // 100 ms
    const starts = await poll(pacer, 11, 60); // each request takes 60 ms
    const t0 = starts[0];
    starts.forEach((t, k) =>
      assert.ok(t - t0 >= k * 100 - 2, `request ${k} at ${(t - t0).toFixed(1)} ms: too early`),
    );
    const lag = starts[10] - t0 - 1000;
    // Counted from the end, ten 60 ms requests would start 600 ms late.
    assert.ok(lag < 100, `the 11th request started ${lag.toFixed(0)} ms after its slot`);
  });

  it("starts the next request at once when a request took longer than the interval, then restarts the schedule", async function () {
    pacer = new RequestPacer(20); // 50 ms
    const starts = await poll(pacer, 3, 150);
    const gaps = [starts[1] - starts[0], starts[2] - starts[1]];
    gaps.forEach((g) => assert.ok(g >= 148 && g < 400, `gap ${g.toFixed(0)} ms: the slot had passed`));
    // After the missed slots the schedule starts from now: the next due is one interval after the last start.
    let at;
    pacer.schedule(() => (at = performance.now()));
    assert.strictEqual(at, undefined, "the next slot is one interval after the last start, not in the past");
    await until(() => at !== undefined, "the paced request", 5000);
    assert.ok(at - starts[2] >= 48, `${(at - starts[2]).toFixed(0)} ms after the last start`);
  });

  it("keeps one request scheduled at a time: a new schedule() replaces the waiting one", async function () {
    pacer = new RequestPacer(5); // 200 ms
    const ran = [];
    pacer.schedule(() => ran.push("first"));
    pacer.schedule(() => ran.push("replaced"));
    pacer.schedule(() => ran.push("last"));
    await wait(500);
    assert.deepStrictEqual(ran, ["first", "last"]);
  });

  it("cancel() stops a waiting request", async function () {
    pacer = new RequestPacer(5);
    const ran = [];
    pacer.schedule(() => ran.push(1));
    pacer.schedule(() => ran.push(2));
    pacer.cancel();
    await wait(400);
    assert.deepStrictEqual(ran, [1]);
  });
});
