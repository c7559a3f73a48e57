"use strict";
const assert = require("assert");
const { numberSetting, isBadNumber, parseSize, MAX_SIDE } = require("../dist/nodes/lib/settings");

describe("settings", function () {
  describe("numberSetting", function () {
    it("reads numbers and numeric strings, spaces around allowed", function () {
      assert.strictEqual(numberSetting(12, 5), 12);
      assert.strictEqual(numberSetting("12", 5), 12);
      assert.strictEqual(numberSetting(" 7.5 ", 5), 7.5);
      assert.strictEqual(numberSetting("1e3", 5), 1000);
      assert.strictEqual(numberSetting(0, 5), 0);
      assert.strictEqual(numberSetting("0", 5), 0);
    });

    it("missing, empty or not a number means the fallback", function () {
      for (const value of [undefined, null, "", "   ", "abc", "12px", NaN, Infinity, -Infinity, "Infinity"]) {
        assert.strictEqual(numberSetting(value, 5), 5, JSON.stringify(String(value)));
      }
    });

    it("anything that is neither a number nor a string is the fallback", function () {
      for (const value of [true, false, [], [7], {}, { valueOf: () => 3 }]) {
        assert.strictEqual(numberSetting(value, 5), 5, JSON.stringify(value));
      }
    });

    it("clamps out-of-range numbers instead of falling back", function () {
      assert.strictEqual(numberSetting(-5, 10, { min: 0 }), 0);
      assert.strictEqual(numberSetting("500", 10, { min: 0, max: 100 }), 100);
      assert.strictEqual(numberSetting(50, 10, { min: 0, max: 100 }), 50);
      assert.strictEqual(numberSetting(-1, 10, { max: 100 }), -1);
    });

    it("rounds to a whole number after clamping when asked", function () {
      assert.strictEqual(numberSetting("2.6", 1, { integer: true }), 3);
      assert.strictEqual(numberSetting(2.4, 1, { integer: true }), 2);
      assert.strictEqual(numberSetting(0.2, 1, { min: 1, integer: true }), 1);
      assert.strictEqual(numberSetting(99.7, 1, { max: 50, integer: true }), 50);
      assert.strictEqual(numberSetting(2.5, 1), 2.5);
    });

    it("returns the fallback as given, not clamped", function () {
      assert.strictEqual(numberSetting(undefined, -3, { min: 0 }), -3);
    });
  });

  describe("isBadNumber", function () {
    it("is false for what is not given and for numbers", function () {
      for (const value of [undefined, null, "", "  ", 0, -4, 2.5, "12", " 3 "]) {
        assert.strictEqual(isBadNumber(value), false, JSON.stringify(value));
      }
    });

    it("is true for what is given and is not a number (numberSetting then uses the fallback)", function () {
      for (const value of ["abc", "12px", NaN, Infinity, true, [], {}]) {
        assert.strictEqual(isBadNumber(value), true, String(value));
        assert.strictEqual(numberSetting(value, 42), 42);
      }
    });
  });

  describe("parseSize", function () {
    it("reads WIDTHxHEIGHT with x, X or * and spaces around", function () {
      assert.deepStrictEqual(parseSize("640x480"), { width: 640, height: 480 });
      assert.deepStrictEqual(parseSize("640X480"), { width: 640, height: 480 });
      assert.deepStrictEqual(parseSize("640*480"), { width: 640, height: 480 });
      assert.deepStrictEqual(parseSize(" 1280 x 720 "), { width: 1280, height: 720 });
    });

    it("accepts 1..MAX_SIDE on each side and nothing outside", function () {
      assert.strictEqual(MAX_SIDE, 16384);
      assert.deepStrictEqual(parseSize("1x1"), { width: 1, height: 1 });
      assert.deepStrictEqual(parseSize("16384x16384"), { width: 16384, height: 16384 });
      for (const text of ["0x480", "640x0", "16385x10", "10x16385", "99999x1", "100000x1"]) {
        assert.strictEqual(parseSize(text), undefined, text);
      }
    });

    it("is undefined for anything that is not a size", function () {
      for (const value of [
        "",
        "640",
        "640x",
        "x480",
        "640x480x3",
        "-640x480",
        "640.5x480",
        "abc",
        640,
        undefined,
        null,
      ]) {
        assert.strictEqual(parseSize(value), undefined, String(value));
      }
    });
  });
});
