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

  it("an earlier file whose ffmpeg hangs holds a later report at most 5 s (a full disk must not stop reports)", async function () {
    this.timeout(15000);
    const c = new ClosingFiles();
    const order = [];
    let unhang;
    c.add("hung", new Promise((r) => (unhang = r)), () => order.push("hung"), assert.fail);
    const t0 = Date.now();
    c.add("next", Promise.resolve(), () => order.push("next"), assert.fail);
    while (!order.includes("next") && Date.now() - t0 < 8000) await later(50);
    const waited = Date.now() - t0;
    assert.deepStrictEqual(order, ["next"]);
    assert.ok(waited >= 4900 && waited < 7000, `reported after ${waited} ms`);
    unhang();
    await c.all();
    assert.deepStrictEqual(order, ["next", "hung"]);
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
