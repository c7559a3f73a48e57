// lib/transcode/closing-files: recordings being finished are reported in closing order and awaited.
"use strict";
const assert = require("assert");
const { ClosingFiles } = require("../dist/nodes/lib/transcode/closing-files");

const later = (ms) => new Promise((r) => setTimeout(r, ms));

describe("transcode closing files", function () {
  it("reports in the order closed, even when the first file takes longer", async function () {
    const c = new ClosingFiles();
    const order = [];
    c.add("a", later(30), () => order.push("a"), assert.fail);
    c.add("b", later(1), () => order.push("b"), assert.fail);
    assert.ok(c.has("a") && c.has("b"));
    await c.all();
    assert.deepStrictEqual(order, ["a", "b"]);
    assert.ok(!c.has("a") && !c.has("b"));
  });

  it("release() takes a file off the list before its report ends; a failure goes to onError", async function () {
    const c = new ClosingFiles();
    const seen = [];
    c.add(
      "x",
      Promise.resolve(),
      (release) => {
        release();
        seen.push(c.has("x"));
        throw new Error("disk gone");
      },
      (err) => seen.push(err.message),
    );
    await c.all();
    assert.deepStrictEqual(seen, [false, "disk gone"]);
  });
});
