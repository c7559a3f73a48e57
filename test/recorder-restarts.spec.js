"use strict";
// When a crashed recording carries on (nodes/lib/transcode/recorder-restarts.ts).
const assert = require("assert");
const { RecorderRestarts } = require("../dist/nodes/lib/transcode/recorder-restarts");

describe("recorder restarts", function () {
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));

  it("restarts after the backoff, doubling, and is pending meanwhile", async function () {
    const restarts = new RecorderRestarts(10000);
    const at = [];
    const t0 = Date.now();
    restarts.schedule(() => at.push(Date.now() - t0));
    assert.strictEqual(restarts.pending, true);
    await wait(1500);
    assert.strictEqual(restarts.pending, false);
    assert.strictEqual(at.length, 1);
    assert.ok(at[0] >= 950 && at[0] < 1500, `first after ~1 s: ${at[0]}`);
    restarts.died({ startedAt: Date.now() }); // a short run: no reset
    const t1 = Date.now();
    restarts.schedule(() => at.push(Date.now() - t1));
    await wait(1500);
    assert.strictEqual(at.length, 1, "the second waits 2 s");
    restarts.clear();
    assert.strictEqual(restarts.pending, false);
  });

  it("a healthy run or a new recording resets the backoff; clear drops a pending restart", async function () {
    const restarts = new RecorderRestarts(50);
    let runs = 0;
    restarts.schedule(() => runs++);
    restarts.clear();
    restarts.died({ startedAt: Date.now() - 100 }); // ran long enough
    restarts.schedule(() => runs++);
    await wait(1500);
    assert.strictEqual(runs, 1, "the cleared one never ran; the next waited 1 s again");
    restarts.schedule(() => runs++);
    restarts.clear();
    restarts.reset();
    restarts.schedule(() => runs++);
    await wait(1500);
    assert.strictEqual(runs, 2);
  });
});
