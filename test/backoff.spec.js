"use strict";
const assert = require("assert");
const sinon = require("sinon");
const { backoffDelay, Backoff } = require("../dist/nodes/lib/backoff");

describe("backoff", function () {
  describe("backoffDelay", function () {
    const opts = { firstMs: 1000, maxMs: 30000 };

    it("starts at firstMs and doubles up to maxMs", function () {
      const delays = [0, 1, 2, 3, 4, 5, 6, 50, 5000].map((a) => backoffDelay(a, opts));
      assert.deepStrictEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
    });

    it("takes another factor", function () {
      const delays = [0, 1, 2, 3].map((a) => backoffDelay(a, { firstMs: 100, maxMs: 5000, factor: 3 }));
      assert.deepStrictEqual(delays, [100, 300, 900, 2700]);
    });

    it("treats a negative attempt as the first", function () {
      assert.strictEqual(backoffDelay(-3, opts), 1000);
    });

    it("spreads by +-jitter around the delay", function () {
      const j = { ...opts, jitter: 0.2 };
      assert.strictEqual(
        backoffDelay(1, j, () => 0),
        1600,
      );
      assert.strictEqual(
        backoffDelay(1, j, () => 0.5),
        2000,
      );
      assert.strictEqual(
        backoffDelay(1, j, () => 0.999999),
        2400,
      );
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(2, j);
        assert.ok(d >= 3200 && d <= 4800, String(d));
      }
    });

    it("caps after the jitter: never above maxMs", function () {
      const j = { ...opts, jitter: 0.5 };
      assert.strictEqual(
        backoffDelay(10, j, () => 0.999999),
        30000,
      );
      assert.strictEqual(
        backoffDelay(4, j, () => 0.999999),
        24000,
      ); // 16000 * 1.5
      assert.strictEqual(
        backoffDelay(10, j, () => 0),
        15000,
      ); // the capped delay still spreads down
    });

    it("returns whole milliseconds and never less than 0", function () {
      assert.strictEqual(
        backoffDelay(0, { firstMs: 333, maxMs: 1000, jitter: 0.1 }, () => 0.25),
        316,
      );
      assert.strictEqual(
        backoffDelay(0, { firstMs: 100, maxMs: 1000, jitter: 2 }, () => 0),
        0,
      );
    });
  });

  describe("Backoff", function () {
    afterEach(() => sinon.restore());

    it("counts attempts: each next() doubles, up to the cap", function () {
      const b = new Backoff({ firstMs: 500, maxMs: 3000 });
      assert.strictEqual(b.attempt, 0);
      assert.deepStrictEqual(
        [b.next(), b.next(), b.next(), b.next(), b.next()],
        [500, 1000, 2000, 3000, 3000],
      );
      assert.strictEqual(b.attempt, 5);
    });

    it("reset() starts again at firstMs", function () {
      const b = new Backoff({ firstMs: 500, maxMs: 3000 });
      b.next();
      b.next();
      b.reset();
      assert.strictEqual(b.attempt, 0);
      assert.strictEqual(b.next(), 500);
    });

    it("applies its jitter, capped", function () {
      sinon.stub(Math, "random").returns(0.999999);
      const b = new Backoff({ firstMs: 1000, maxMs: 4000, jitter: 0.25 });
      assert.deepStrictEqual([b.next(), b.next(), b.next(), b.next()], [1250, 2500, 4000, 4000]);
    });
  });
});
