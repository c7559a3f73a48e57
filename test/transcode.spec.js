"use strict";
// ffmpeg-transcode `mp4` recordings in a real Node-RED runtime: real-time frames, real ffmpeg and ffprobe.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const {
  FFMPEG,
  ffprobe,
  testJpegs,
  processesMatching,
  writeScript,
  waitGone,
  wait,
  until,
} = require("./lib/transcode-helpers");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

describe("ffmpeg-transcode node: mp4 recordings", function () {
  this.timeout(40000);
  let tmp;
  let jpegs;
  let feeder;

  before(async function () {
    jpegs = testJpegs(30, "320x240", 8);
    await helper.startServer();
  });
  after(() => helper.stopServer());
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-"));
  });
  afterEach(async function () {
    if (feeder) feeder.stop();
    feeder = undefined;
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function load(props = {}, credentials = {}) {
    const flow = [
      {
        id: "rec",
        type: "ffmpeg-transcode",
        name: "",
        preset: "mp4",
        directory: tmp,
        preRoll: 1,
        postRoll: 0,
        duration: 0,
        maxDuration: 300,
        keepDays: 0,
        keepGB: 0,
        quality: 30,
        keyframeInterval: 1,
        encoder: "libx264",
        wires: [["out"]],
        ...props,
      },
      { id: "out", type: "helper" },
    ];
    return helper.load(transcodeNode, flow, { rec: credentials }).then(() => ({
      rec: helper.getNode("rec"),
      out: helper.getNode("out"),
    }));
  }

  /** Frames at a jittering ~7 fps in real time, stamped with their send time like camera connect does. */
  function startFeeding(node) {
    let seq = 0;
    let timer;
    let stopped = false;
    const tick = () => {
      if (stopped) return;
      seq++;
      const time = monotonicEpochMs();
      node.receive({
        payload: jpegs[seq % jpegs.length],
        topic: "garage cam",
        frame: { seq, time, camera: "garage cam", width: 320, height: 240 },
      });
      timer = setTimeout(tick, 143 * (0.5 + Math.random()));
    };
    tick();
    return {
      get count() {
        return seq;
      },
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  function nextMessage(node) {
    return new Promise((resolve) => node.once("input", resolve));
  }

  it("records pre-roll + duration in real time, emits the file and writes the sidecar", async function () {
    const { rec, out } = await load({ preRoll: 1 });
    const statuses = [];
    rec.on("call:status", (call) => statuses.push(call.args[0].text));
    feeder = startFeeding(rec);
    await wait(2300);
    const message = nextMessage(out);
    rec.receive({ action: "start", duration: 2, topic: "pir/garage", payload: { motion: true } });
    const msg = await message;
    const r = msg.recording;
    assert.strictEqual(msg.payload, r.file);
    assert.strictEqual(msg.topic, "garage cam");
    assert.ok(r.file.startsWith(tmp + path.sep));
    assert.match(path.basename(r.file), /^garage_cam-\d{8}-\d{6}\.mp4$/);
    assert.deepStrictEqual(r.trigger, { topic: "pir/garage", payload: { motion: true } });
    assert.strictEqual(r.reason, "duration");
    const probe = ffprobe(r.file, true);
    const duration = Number(probe.format.duration);
    // 1 s pre-roll + 2 s, timed by the frames' receive times
    assert.ok(Math.abs(duration - 3) <= 0.06, `ffprobe says ${duration} s`);
    assert.ok(Math.abs(r.duration - 3) <= 0.06, `reported ${r.duration} s`);
    assert.strictEqual(Number(probe.streams[0].nb_read_frames), r.frames);
    assert.ok(r.frames >= 12 && r.frames <= 35, `${r.frames} frames in 3 s at ~7 fps`);
    assert.strictEqual(r.bytes, fs.statSync(r.file).size);
    const sidecar = JSON.parse(fs.readFileSync(r.file.replace(/\.mp4$/, ".json"), "utf8"));
    assert.deepStrictEqual(
      { ...sidecar, "camrelay-recording": undefined },
      { ...r, "camrelay-recording": undefined },
    );
    assert.ok(
      statuses.some((s) => /^recording 00:0\d \d+(kb|Mb)\/s$/.test(s)),
      `status while recording: ${statuses.join(", ")}`,
    );
    assert.ok(
      statuses.some((s) => /^idle \(pre-roll 1s, \d+(\.\d)?[kM]B\)$/.test(s)),
      statuses.join(", "),
    );
  });

  it("a start during the post-roll extends the file; stop ends it; msg.filename is used", async function () {
    const { rec, out } = await load({ preRoll: 0, postRoll: 1 });
    const messages = [];
    out.on("input", (m) => messages.push(m));
    feeder = startFeeding(rec);
    await wait(300);
    const started = monotonicEpochMs();
    rec.receive({ action: "start", filename: "events/door" });
    await wait(1000);
    rec.receive({ action: "stop" });
    await wait(500);
    rec.receive({ action: "start", filename: "ignored-while-recording" }); // retrigger inside the post-roll
    await wait(1000);
    const stopped = monotonicEpochMs();
    rec.receive({ action: "stop" });
    await until(() => messages.length === 1, 6000, "the recording");
    await wait(500);
    assert.strictEqual(messages.length, 1, "one file");
    const r = messages[0].recording;
    assert.strictEqual(r.file, path.join(tmp, "events", "door.mp4"));
    assert.strictEqual(r.reason, "stop");
    // start .. last stop (about 2.5 s) + 1 s post-roll
    const expected = (stopped - started) / 1000 + 1;
    const duration = Number(ffprobe(r.file).format.duration);
    assert.ok(
      Math.abs(duration - expected) <= 0.02 * expected,
      `clip is ${duration} s, expected ${expected} s`,
    );
    assert.ok(!fs.existsSync(path.join(tmp, "ignored-while-recording.mp4")));
  });

  it("refuses a msg.filename outside the directory with a clear error and writes nothing", async function () {
    const { rec } = await load();
    feeder = startFeeding(rec);
    await wait(300);
    for (const bad of ["../escape", "/tmp/abs.mp4", "a/../../b"]) {
      const err = new Promise((resolve) => rec.once("call:error", (call) => resolve(call.args[0])));
      rec.receive({ action: "start", filename: bad });
      const e = await err;
      assert.match(String(e.message || e), /refused: .*relative path inside the recording directory/);
    }
    await wait(500);
    assert.deepStrictEqual(fs.readdirSync(tmp), []);
    assert.ok(!fs.existsSync(path.join(path.dirname(tmp), "escape.mp4")));
    assert.ok(!fs.existsSync("/tmp/abs.mp4"));
    const bad = new Promise((resolve) => rec.once("call:error", (call) => resolve(call.args[0])));
    rec.receive({ action: "record" });
    assert.match(String((await bad).message), /unknown msg.action "record"/);
  });

  it("an unwritable directory gives a clear error and the node keeps running", async function () {
    const file = path.join(tmp, "not-a-dir");
    fs.writeFileSync(file, "");
    const { rec } = await load({ directory: path.join(file, "rec") });
    const statuses = [];
    rec.on("call:status", (call) => statuses.push(call.args[0]));
    feeder = startFeeding(rec);
    await wait(300);
    const err = new Promise((resolve) => rec.once("call:error", (call) => resolve(call.args[0])));
    rec.receive({ action: "start" });
    assert.match(
      String((await err).message),
      /recording directory ".*not-a-dir\/rec" is not writable: ENOTDIR/,
    );
    await wait(200);
    assert.ok(statuses.some((s) => s.fill === "red" && s.shape === "ring"));
    const before = feeder.count;
    await wait(500);
    assert.ok(feeder.count > before, "frames still accepted");
  });

  it("when the disk fills up ffmpeg's error is reported, retried with backoff, and nothing piles up", async function () {
    // RLIMIT_FSIZE makes every write past 8 KB fail with EFBIG, as a full disk fails with ENOSPC.
    const wrapper = writeScript(
      tmp,
      "small-disk-ffmpeg",
      `trap '' XFSZ\nulimit -f 16\nexec "${FFMPEG}" "$@"`,
    );
    const { rec, out } = await load({ ffmpegPath: wrapper, preRoll: 0, directory: path.join(tmp, "rec") });
    const errors = [];
    rec.on("call:error", (call) => errors.push(String(call.args[0])));
    const recordings = [];
    out.on("input", (m) => recordings.push(m.recording));
    feeder = startFeeding(rec);
    await wait(200);
    rec.receive({ action: "start" });
    await until(() => errors.length >= 2, 15000, "two ffmpeg failures");
    assert.match(errors[0], /ffmpeg exited with code 1 while recording .*\.mp4: .*File too large/);
    assert.ok(recordings.length >= 1 && recordings.every((r) => r.reason === "error" && r.bytes > 0));
    const rss = process.memoryUsage().rss;
    await wait(1500);
    assert.ok(process.memoryUsage().rss - rss < 50 * 1024 * 1024, "memory does not grow");
  });

  it("a redeploy mid-recording closes a playable file and leaves no ffmpeg behind", async function () {
    const { rec, out } = await load({ preRoll: 0 });
    const messages = [];
    out.on("input", (m) => messages.push(m));
    feeder = startFeeding(rec);
    await wait(200);
    rec.receive({ action: "start" });
    const pids = await until(
      () => {
        const p = processesMatching(tmp).filter((pid) => pid !== process.pid);
        return p.length ? p : undefined;
      },
      5000,
      "ffmpeg",
    );
    await wait(2500);
    feeder.stop();
    const t0 = Date.now();
    await helper.unload();
    assert.ok(Date.now() - t0 < 15000);
    for (const pid of pids) assert.ok(await waitGone(pid, 100), `ffmpeg ${pid} is gone`);
    assert.deepStrictEqual(
      processesMatching(tmp).filter((pid) => pid !== process.pid),
      [],
    );
    const files = fs.readdirSync(tmp).filter((f) => f.endsWith(".mp4"));
    assert.strictEqual(files.length, 1);
    const probe = ffprobe(path.join(tmp, files[0]));
    assert.ok(Number(probe.format.duration) > 2, "the recording was closed properly");
    const sidecar = JSON.parse(fs.readFileSync(path.join(tmp, files[0].replace(/\.mp4$/, ".json")), "utf8"));
    assert.strictEqual(sidecar.reason, "close");
  });

  it("retention removes the oldest recordings after a new one is closed", async function () {
    const day = 86400000;
    for (const [name, age] of [
      ["a", 40],
      ["b", 20],
    ]) {
      fs.writeFileSync(path.join(tmp, `${name}.mp4`), "old");
      fs.writeFileSync(
        path.join(tmp, `${name}.json`),
        JSON.stringify({ "camrelay-recording": 1, file: `${name}.mp4`, start: Date.now() - age * day }),
      );
    }
    fs.writeFileSync(path.join(tmp, "mine.mp4"), "not camrelay's");
    const { rec, out } = await load({ preRoll: 0, keepDays: 30 });
    await until(() => !fs.existsSync(path.join(tmp, "a.mp4")), 3000, "the sweep at deploy");
    assert.ok(fs.existsSync(path.join(tmp, "b.mp4")));
    assert.ok(fs.existsSync(path.join(tmp, "mine.mp4")));
    feeder = startFeeding(rec);
    await wait(200);
    const msg = nextMessage(out);
    rec.receive({ action: "start", duration: 1 });
    assert.ok(fs.existsSync((await msg).payload));
  });
});
