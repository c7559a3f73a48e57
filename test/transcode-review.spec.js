"use strict";
// Findings of the ffmpeg-transcode code review, each pinned by a test with real ffmpeg and real files:
// pre-roll kept whole, one clock, in-progress files protected, restart timers, hostile msg.frame fields,
// backoff reset, splitter failures, symlinks, resume, stream keys.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const sinon = require("sinon");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { Recorder } = require("../dist/nodes/lib/transcode/recorder");
const { RetentionSweeper, SIDECAR_MARK } = require("../dist/nodes/lib/transcode/retention");
const { LiveTranscoder, Backoff } = require("../dist/nodes/lib/transcode/live");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { frameFromMessage } = require("../dist/nodes/lib/messages");
const { MatroskaFrameWriter } = require("../dist/nodes/lib/codec/matroska-writer");
const { TranscodeSession } = require("../dist/nodes/lib/transcode/session");
const args = require("../dist/nodes/lib/transcode/args");
const {
  FFMPEG,
  ffprobe,
  testJpegs,
  recorderConfig,
  writeScript,
  wait,
  until,
} = require("./lib/transcode-helpers");

helper.init(require.resolve("node-red"));

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);
const DAY = 86400000;

describe("ffmpeg-transcode review findings", function () {
  this.timeout(40000);
  let tmp;
  let jpegs;
  const cleanups = [];

  before(async function () {
    jpegs = testJpegs(30, "320x240", 8);
    await helper.startServer();
  });
  after(() => helper.stopServer());
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-review-"));
  });
  afterEach(async function () {
    sinon.restore();
    while (cleanups.length) await cleanups.pop()();
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function frameAt(time, i) {
    return { data: jpegs[i % jpegs.length], time, seq: i + 1, camera: "porch", width: 320, height: 240 };
  }

  function makeRecorder(overrides = {}) {
    const recorder = new Recorder({
      ffmpegPath: FFMPEG,
      directory: tmp,
      camera: "node",
      preRollSec: 5,
      preRollMaxBytes: 64 << 20,
      postRollSec: 0,
      defaultDurationSec: 0,
      maxDurationSec: 0,
      video: { quality: 30, bitrate: 0, keyframeInterval: 1, encoder: args.ENCODERS.libx264 },
      ...overrides,
    });
    cleanups.push(() => recorder.close());
    return recorder;
  }

  /** Frames in real time (~10 fps) stamped with the monotonic clock, until stopped. */
  function feedRealTime(push) {
    let i = 0;
    const timer = setInterval(() => push(frameAt(monotonicEpochMs(), i++)), 100);
    const stop = () => clearInterval(timer);
    cleanups.push(stop);
    return stop;
  }

  it("1: a 5 s pre-roll given to ffmpeg in one burst keeps every frame and warns of no drop", async function () {
    const recorder = makeRecorder({ preRollSec: 5 });
    let dropped = 0;
    recorder.on("dropped", () => dropped++);
    const times = [];
    for (let t = 50; t < 8000; t += 100) times.push(T0 + t);
    const done = new Promise((resolve, reject) => {
      recorder.once("recording", resolve);
      recorder.once("failure", (m) => reject(new Error(m)));
    });
    let i = 0;
    for (; times[i] < T0 + 6000; i++) recorder.push(frameAt(times[i], i));
    recorder.start({ time: T0 + 6000, duration: 1 });
    for (; i < times.length; i++) {
      recorder.push(frameAt(times[i], i));
      await recorder.drained();
    }
    const info = await done;
    // every frame from 1 s to 7 s, the one on screen at 1 s, and the two repeats that end the file
    const expected = times.filter((t) => t >= T0 + 1000 && t <= T0 + 7000).length + 3;
    assert.strictEqual(dropped, 0, "no frame dropped");
    assert.strictEqual(info.frames, expected);
    assert.strictEqual(Number(ffprobe(info.file, true).streams[0].nb_read_frames), expected);
    assert.strictEqual(info.start, T0 + 1000);
  });

  it("1: the longer recorder queue is still capped in bytes when ffmpeg does not read", function () {
    const session = new TranscodeSession({
      ffmpegPath: writeScript(tmp, "stuck", "exec sleep 30"),
      args: [],
      width: 320,
      height: 240,
      stdout: "none",
      maxQueueMs: 600000,
      maxQueueBytes: 200 * 1024,
    });
    cleanups.push(() => session.finish(undefined, 100));
    session.start();
    for (let i = 0; i < 100; i++) session.write(frameAt(T0 + i * 100, i));
    const queuedFrames = session.stats.framesIn - session.stats.framesWritten - session.stats.framesDropped;
    assert.ok(session.stats.framesDropped > 0, "frames were dropped");
    assert.ok(queuedFrames * jpegs[0].length < 300 * 1024, `${queuedFrames} frames queued`);
  });

  it("2: frames without a time get the monotonic clock's, even when the wall clock jumps", function () {
    const real = Date.now();
    sinon.stub(Date, "now").returns(real + 3 * DAY);
    const frame = frameFromMessage({ payload: jpegs[0] });
    assert.ok(Math.abs(frame.time - monotonicEpochMs()) < 1000, `${frame.time - monotonicEpochMs()} ms off`);
  });

  it("2: retention measures age on the frames' clock, not on a wall clock that jumped", async function () {
    const keep = path.join(tmp, "porch-recent.mp4");
    fs.writeFileSync(keep, Buffer.alloc(1000));
    fs.writeFileSync(
      path.join(tmp, "porch-recent.json"),
      JSON.stringify({ [SIDECAR_MARK]: 1, file: keep, start: monotonicEpochMs() - 3600000 }),
    );
    // the wall clock is set 3 days ahead (NTP, a user): a recording an hour old is not 3 days old
    const real = Date.now.bind(Date);
    sinon.stub(Date, "now").callsFake(() => real() + 3 * DAY);
    await helper.load(transcodeNode, [
      recorderConfig({ directory: tmp, keepDays: 1 }),
      { id: "out", type: "helper" },
    ]);
    await wait(1500); // the sweep at deploy runs once the encoder is chosen
    sinon.restore();
    assert.ok(fs.existsSync(keep), "the recent recording was kept");
  });

  it("3: an in-progress sidecar carries the first frame's time, and closing files stay protected", async function () {
    const recorder = makeRecorder({ preRollSec: 0 });
    const start = monotonicEpochMs();
    recorder.start({ time: start });
    recorder.push(frameAt(start + 10, 0));
    const file = recorder.currentFile;
    const sidecar = JSON.parse(fs.readFileSync(file.replace(/\.mp4$/, ".json"), "utf8"));
    assert.strictEqual(sidecar.start, start + 10);
    assert.strictEqual(sidecar.reason, "recording");
    for (let i = 1; i < 10; i++) recorder.push(frameAt(start + 10 + i * 100, i));
    await recorder.drained();
    recorder.stop(start + 1000);
    assert.strictEqual(recorder.currentFile, undefined, "the recording is closing");
    assert.ok(recorder.isInProgress(file), "a closing file is still in progress");
    // a sweep during the close (keepGB tiny: everything over the limit) leaves it alone
    const sweeper = new RetentionSweeper({
      directory: tmp,
      keepDays: 0,
      keepGB: 1e-9,
      isProtected: (f) => recorder.isInProgress(f),
    });
    const result = await sweeper.sweep();
    assert.deepStrictEqual(result.deleted, []);
    await recorder.close();
    assert.ok(!recorder.isInProgress(file));
    assert.ok(fs.existsSync(file));
  });

  it("3: retention deletes a finished old recording before a crashed newer one", async function () {
    const recorder = makeRecorder({ preRollSec: 0 });
    const start = monotonicEpochMs();
    recorder.start({ time: start });
    recorder.push(frameAt(start, 0));
    // Node-RED "crashed" now: the in-progress sidecar is all there is
    const crashDir = path.join(tmp, "crashed");
    fs.mkdirSync(crashDir);
    const inProgress = JSON.parse(fs.readFileSync(recorder.currentFile.replace(/\.mp4$/, ".json"), "utf8"));
    const crashed = path.join(crashDir, "crashed.mp4");
    fs.writeFileSync(crashed, Buffer.alloc(1000));
    fs.writeFileSync(path.join(crashDir, "crashed.json"), JSON.stringify({ ...inProgress, file: crashed }));
    const old = path.join(crashDir, "old.mp4");
    fs.writeFileSync(old, Buffer.alloc(1000));
    fs.writeFileSync(
      path.join(crashDir, "old.json"),
      JSON.stringify({ [SIDECAR_MARK]: 1, file: old, start: start - 3600000 }),
    );
    const sweeper = new RetentionSweeper({ directory: crashDir, keepDays: 0, keepGB: 1500 / 1024 ** 3 });
    const result = await sweeper.sweep();
    assert.deepStrictEqual(result.deleted, [old]);
  });

  it("4: a recording stopped while ffmpeg waits for its restart does not hold back the next one", async function () {
    const recorder = makeRecorder({ preRollSec: 2 });
    const failures = [];
    recorder.on("failure", (m) => failures.push(m));
    const stopFeed = feedRealTime((f) => recorder.push(f));
    await wait(2500);
    recorder.start({ time: monotonicEpochMs() });
    await wait(500);
    recorder.killFfmpeg();
    await until(() => failures.length, 5000, "the failure");
    recorder.stop(monotonicEpochMs()); // during the 1 s backoff
    recorder.start({ time: monotonicEpochMs() });
    assert.ok(recorder.sessionPid, "the new recording starts at once, with its pre-roll");
    stopFeed();
  });

  it("5: Infinity/NaN in msg.frame are answered and the nodes keep working (mp4 and fmp4)", async function () {
    const onTab = (n) => ({ z: "tab", ...n });
    await helper.load(
      transcodeNode,
      [
        { id: "tab", type: "tab", label: "hostile frames" },
        recorderConfig({ directory: tmp, preRoll: 1 }),
        { id: "live", type: "ffmpeg-transcode", preset: "fmp4", encoder: "libx264", wires: [["liveOut"]] },
        { id: "out", type: "helper" },
        { id: "liveOut", type: "helper" },
        { id: "doneWatch", type: "complete", scope: ["rec", "live"], wires: [["doneOut"]] },
        { id: "doneOut", type: "helper" },
        { id: "errorWatch", type: "catch", scope: ["rec", "live"], uncaught: false, wires: [["doneOut"]] },
      ].map((n) => (n.type === "tab" ? n : onTab(n))),
    );
    const rec = helper.getNode("rec");
    const live = helper.getNode("live");
    const liveMessages = [];
    helper.getNode("liveOut").on("input", (m) => liveMessages.push(m));
    const recordings = [];
    helper.getNode("out").on("input", (m) => recordings.push(m));
    let answered = 0;
    helper.getNode("doneOut").on("input", () => answered++);
    await wait(300);
    rec.receive({ action: "start" });
    await until(() => answered === 1, 5000, "the start answered");
    const bad = [
      { time: Infinity, width: 320, height: 240 },
      { time: NaN, width: NaN, height: Infinity },
      { time: -Infinity, width: 1e9, height: -5 },
      { time: 1e300, width: 320.5, height: 240 },
    ];
    for (const node of [rec, live]) {
      for (const frame of bad) {
        const before = answered;
        node.receive({ payload: jpegs[0], frame });
        await until(() => answered > before, 5000, `an answer to ${JSON.stringify(frame)}`);
      }
    }
    // and good frames after them still make a recording and a stream
    for (let i = 0; i < 25; i++) {
      const frame = { seq: i, time: monotonicEpochMs(), camera: "porch", width: 320, height: 240 };
      rec.receive({ payload: jpegs[i % jpegs.length], frame });
      live.receive({ payload: jpegs[i % jpegs.length], frame });
      await wait(100);
    }
    rec.receive({ action: "stop" });
    await until(() => recordings.length, 10000, "the recording");
    await until(() => liveMessages.some((m) => m.mp4.type === "fragment"), 10000, "an fMP4 fragment");
    const probe = ffprobe(recordings[0].payload, true);
    assert.ok(Number(probe.streams[0].nb_read_frames) >= 20, `${probe.streams[0].nb_read_frames} frames`);
    assert.ok(Number(probe.format.duration) < 10, `duration ${probe.format.duration} s`);
  });

  it("5: the Matroska writer refuses a non-finite time instead of looping forever", function () {
    const mkv = new MatroskaFrameWriter(320, 240);
    mkv.frame(jpegs[0], T0);
    assert.throws(() => mkv.frame(jpegs[0], Infinity));
  });

  it("6: the recorder's restart backoff resets after ffmpeg ran well", async function () {
    const recorder = makeRecorder({ preRollSec: 1, healthyMs: 300 });
    const failures = [];
    recorder.on("failure", (m) => failures.push(m));
    feedRealTime((f) => recorder.push(f));
    await wait(300);
    recorder.start({ time: monotonicEpochMs() });
    for (let n = 1; n <= 3; n++) {
      const pid = await until(() => recorder.sessionPid, 10000, "ffmpeg");
      await wait(700);
      recorder.killFfmpeg();
      await until(() => failures.length >= n, 5000, `failure ${n}`);
      await until(() => recorder.sessionPid && recorder.sessionPid !== pid, 5000, `restart ${n}`);
    }
    assert.strictEqual(recorder.backoff.next(), 2000, "each run went well: back to the first step");
  });

  it("7: a broken fMP4 stream from ffmpeg is a failure and ffmpeg restarts with a fresh init", async function () {
    let runs = 0;
    const live = new LiveTranscoder({
      ffmpegPath: FFMPEG,
      // MPEG-TS where fMP4 is expected: the splitter gives up on the first packet
      output: () => {
        runs++;
        return {
          args: [...args.inputArgs(args.ENCODERS.libx264), "-c:v", "mpeg2video", "-f", "mpegts", "pipe:1"],
          stdout: "fmp4",
        };
      },
      backoff: new Backoff(100, 100),
    });
    cleanups.push(() => live.close());
    const failures = [];
    live.on("failure", (m) => failures.push(m));
    const stop = feedRealTime((f) => live.push(f));
    await until(() => failures.length >= 1, 10000, "the failure");
    assert.match(failures[0], /MP4 box/);
    await until(() => runs >= 2, 10000, "a restarted ffmpeg");
    stop();
  });

  it("8: a dangling symlink where the video or sidecar would go is never followed", async function () {
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-outside-"));
    cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }));
    fs.symlinkSync(path.join(outside, "video.mp4"), path.join(tmp, "a.mp4"));
    fs.symlinkSync(path.join(outside, "side.json"), path.join(tmp, "b.json"));
    const recorder = makeRecorder({ preRollSec: 0 });
    for (const name of ["a", "b"]) {
      const start = monotonicEpochMs();
      const { file } = recorder.start({ time: start, filename: name });
      assert.strictEqual(file, path.join(tmp, `${name}-2.mp4`));
      for (let i = 0; i < 5; i++) recorder.push(frameAt(start + i * 100, i));
      recorder.stop(start + 500);
    }
    await recorder.close();
    assert.deepStrictEqual(fs.readdirSync(outside), []);
  });

  it("9: resume after a failed run starts ffmpeg with the next frame", async function () {
    const dies = writeScript(tmp, "dies", "exit 1");
    const live = new LiveTranscoder({
      ffmpegPath: dies,
      output: () => ({ args: [], stdout: "none" }),
      backoff: new Backoff(20000, 20000),
    });
    cleanups.push(() => live.close());
    const failures = [];
    live.on("failure", (m) => failures.push(m));
    live.push(frameAt(monotonicEpochMs(), 0));
    await until(() => failures.length, 5000, "the failure");
    await live.pause();
    live.resume();
    live.push(frameAt(monotonicEpochMs(), 1));
    assert.ok(live.pid, "ffmpeg started again");
  });

  for (const url of [
    "rtmp://127.0.0.1:9/live/SECRETKEY",
    "srt://127.0.0.1:9?streamid=SECRETKEY&passphrase=SECRETPASS",
  ]) {
    it(`10: a push to ${url.split(":")[0]} never shows its stream key in errors or status`, async function () {
      await helper.load(transcodeNode, [
        { id: "tab", type: "tab", label: "push" },
        {
          id: "pusher",
          z: "tab",
          type: "ffmpeg-transcode",
          preset: "push",
          url,
          encoder: "libx264",
          wires: [],
        },
      ]);
      const node = helper.getNode("pusher");
      const said = [];
      for (const ev of ["call:error", "call:warn", "call:log", "call:status"])
        node.on(ev, (c) => said.push(JSON.stringify(c.args[0]) ?? ""));
      const stop = feedRealTime((f) => node.receive({ payload: f.data, frame: { ...f, data: undefined } }));
      const errors = [];
      node.on("call:error", (c) => errors.push(String(c.args[0])));
      await until(() => errors.some((e) => /ffmpeg/.test(e)), 15000, "the push error");
      stop();
      const all = said.join("\n");
      assert.doesNotMatch(all, /SECRETKEY|SECRETPASS/, all);
    });
  }
});
