// frame-throttle with compressed video (issue 13), in a real Node-RED: msg.mp4 fragments are never
// dropped one by one. video=pass (default): 100 fragments in, the same 100 out, in order, untouched, while
// JPEG frames are still throttled. video=gop: only whole GOPs pass (each run of output fragments starts at
// a keyframe and holds every fragment of that GOP), inits always pass.
"use strict";
const assert = require("assert");
const helper = require("node-red-node-test-helper");
const frameThrottle = require("../dist/nodes/frame-throttle.js");
const { wait, until } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
const init = (initId = 1) => ({
  topic: "cam",
  mp4: {
    type: "init",
    seq: 0,
    time: Date.now(),
    duration: 0,
    codec: "avc1.64001f",
    width: 320,
    height: 240,
    initId,
  },
  payload: Buffer.from("ftyp+moov"),
});
const fragment = (seq, keyframe) => ({
  topic: "cam",
  mp4: {
    type: "fragment",
    seq,
    time: Date.now(),
    duration: 0.25,
    codec: "avc1.64001f",
    width: 320,
    height: 240,
    keyframe,
    initId: 1,
  },
  payload: Buffer.from(`moof+mdat ${seq}`),
});

async function load(props) {
  await helper.load(frameThrottle, [
    { id: "ft", type: "frame-throttle", fps: 2, wires: [["sink"]], ...props },
    { id: "sink", type: "helper" },
  ]);
  const got = [];
  helper.getNode("sink").on("input", (m) => got.push(m));
  return { ft: helper.getNode("ft"), got };
}

describe("frame-throttle with compressed video (msg.mp4)", function () {
  this.timeout(20000);
  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it("video=pass (default): 100 fragments in, 100 out in order and untouched, JPEG still throttled", async () => {
    const { ft, got } = await load({});
    ft.receive(init());
    const sent = [];
    for (let i = 1; i <= 100; i++) {
      const m = fragment(i, i % 8 === 1);
      sent.push(m.payload);
      ft.receive(m);
    }
    await until(() => got.length >= 101, "101 messages out", 5000);
    assert.strictEqual(got[0].mp4.type, "init");
    const frags = got.slice(1);
    assert.deepStrictEqual(
      frags.map((m) => m.mp4.seq),
      [...Array(100).keys()].map((i) => i + 1),
    );
    frags.forEach((m, i) => assert(m.payload.equals(sent[i]), `payload ${i + 1} untouched`));
    // 20 JPEGs at once through 2 fps: the first passes now, the newest waits for the next slot.
    for (let i = 0; i < 20; i++) ft.receive({ topic: "cam", payload: JPEG, seq: i });
    await wait(700);
    const jpegs = got.filter((m) => !m.mp4);
    assert.deepStrictEqual(
      jpegs.map((m) => m.seq),
      [0, 19],
      "JPEG frames throttled, newest kept",
    );
  });

  it("video=gop: whole GOPs only, at most one GOP start per 1/fps; inits always pass", async () => {
    const { ft, got } = await load({ video: "gop", fps: 2 });
    ft.receive(init());
    // 12 GOPs of 4 fragments, sent every 40 ms: a GOP starts every 160 ms, faster than 2 per second.
    let seq = 0;
    for (let g = 0; g < 12; g++) {
      for (let f = 0; f < 4; f++) {
        ft.receive(fragment(++seq, f === 0));
        await wait(40);
      }
      if (g === 6) ft.receive(init(2));
    }
    await wait(100);
    const inits = got.filter((m) => m.mp4.type === "init");
    assert.strictEqual(inits.length, 2, "both inits passed");
    const seqs = got.filter((m) => m.mp4.type === "fragment").map((m) => m.mp4.seq);
    assert(seqs.length >= 8 && seqs.length < 48, `some GOPs dropped, some passed (${seqs.length})`);
    assert.strictEqual(seqs.length % 4, 0, `whole GOPs only: ${seqs}`);
    for (let i = 0; i < seqs.length; i += 4) {
      assert.strictEqual(seqs[i] % 4, 1, `a run starts at a keyframe: ${seqs}`);
      assert.deepStrictEqual(seqs.slice(i, i + 4), [seqs[i], seqs[i] + 1, seqs[i] + 2, seqs[i] + 3]);
    }
  });
});
