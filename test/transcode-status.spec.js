// lib/transcode/status: the one mapping from an ffmpeg-transcode node's state to its status, without Node-RED.
"use strict";
const assert = require("assert");
const { transcodeStatus, mmss, rate } = require("../dist/nodes/lib/transcode/status");

const base = { now: 1000, preRollSec: 5, fps: 0, kbps: 0 };
const rec = (o) => ({ recording: false, elapsedSec: 0, preRollSpanMs: 0, ...o });

describe("transcode status", function () {
  it("before setup: starting", function () {
    assert.deepStrictEqual(transcodeStatus(base), { fill: "yellow", shape: "ring", key: "status.starting" });
  });

  it("a fatal problem wins over everything", function () {
    const s = transcodeStatus({
      ...base,
      fatalKey: "status.noFfmpeg",
      errorKey: "status.error",
      errorUntil: 9e9,
    });
    assert.deepStrictEqual(s, { fill: "red", shape: "ring", key: "status.noFfmpeg" });
  });

  it("an error shows until its time is up", function () {
    const v = { ...base, live: "live", errorKey: "status.refused", errorUntil: 2000 };
    assert.deepStrictEqual(transcodeStatus(v), { fill: "red", shape: "ring", key: "status.refused" });
    assert.strictEqual(transcodeStatus({ ...v, now: 2000 }).key, "status.live");
  });

  it("recorder: recording (blue dot, time and rate), idle with the pre-roll held, waiting without frames", function () {
    assert.deepStrictEqual(
      transcodeStatus({ ...base, kbps: 2500, recorder: rec({ recording: true, elapsedSec: 75.9 }) }),
      {
        fill: "blue",
        shape: "dot",
        key: "status.recording",
        params: { time: "01:15", rate: "2.5Mb/s" },
      },
    );
    assert.deepStrictEqual(transcodeStatus({ ...base, recorder: rec() }), {
      fill: "grey",
      shape: "ring",
      key: "status.waiting",
    });
    assert.deepStrictEqual(
      transcodeStatus({ ...base, fps: 10, recorder: rec({ preRollSpanMs: 3900, preRollBytes: 1430000 }) }),
      {
        fill: "green",
        shape: "ring",
        key: "status.idle",
        params: { s: 3, mem: "1.4MB" },
      },
    );
    assert.deepStrictEqual(
      transcodeStatus({ ...base, fps: 10, recorder: rec({ preRollSpanMs: 60000, preRollBytes: 64400 }) })
        .params,
      { s: 5, mem: "64kB" },
    );
  });

  it("live: each state's colour, shape and key", function () {
    const s = (live, extra = {}) => transcodeStatus({ ...base, live, ...extra });
    assert.deepStrictEqual(s("live", { fps: 9.6, kbps: 812.4 }), {
      fill: "green",
      shape: "dot",
      key: "status.live",
      params: { fps: 10, rate: "812kb/s" },
    });
    assert.deepStrictEqual(s("starting"), { fill: "yellow", shape: "ring", key: "status.starting" });
    assert.deepStrictEqual(s("retrying"), { fill: "red", shape: "ring", key: "status.retrying" });
    assert.deepStrictEqual(s("paused"), { fill: "grey", shape: "ring", key: "status.stopped" });
    assert.deepStrictEqual(s("idle"), { fill: "grey", shape: "ring", key: "status.waiting" });
  });

  it("formats time and rate in few characters", function () {
    assert.strictEqual(mmss(-1), "00:00");
    assert.strictEqual(mmss(59.9), "00:59");
    assert.strictEqual(mmss(3661), "1:01:01");
    assert.strictEqual(rate(999.4), "999kb/s");
    assert.strictEqual(rate(1000), "1.0Mb/s");
  });
});
