"use strict";
// The Node-RED-free transcode core with real ffmpeg and ffprobe: timing, pre-roll, retrigger, crash safety,
// retention, fMP4 splitting, backpressure, supervision.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { Recorder, confineFilename, sanitizeCameraName } = require("../dist/nodes/lib/transcode/recorder");
const { RetentionSweeper, SIDECAR_MARK } = require("../dist/nodes/lib/transcode/retention");
const { PreRollBuffer } = require("../dist/nodes/lib/transcode/preroll");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { TranscodeSession } = require("../dist/nodes/lib/transcode/session");
const { LiveTranscoder, Backoff } = require("../dist/nodes/lib/transcode/live");
const args = require("../dist/nodes/lib/transcode/args");
const {
  FFMPEG,
  ffprobe,
  testJpegs,
  waitGone,
  writeScript,
  alive,
  video,
} = require("./lib/transcode-helpers");
const { wait, until } = require("./lib/toolkit");

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

/** Frame times over [from, to) ms after T0 at a jittering ~fps (seeded, so runs are repeatable). */
function jitteredTimes(fromMs, toMs, fps, seed = 1) {
  let s = seed;
  const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const out = [];
  for (let t = fromMs; t < toMs; t += (1000 / fps) * (0.4 + 1.2 * rand())) out.push(T0 + Math.round(t));
  return out;
}

describe("transcode core", function () {
  this.timeout(60000);
  let tmp;
  let jpegs;

  before(function () {
    jpegs = testJpegs(40, "320x240", 8);
  });
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-tc-"));
  });
  afterEach(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function frameAt(time, i) {
    return { data: jpegs[i % jpegs.length], time, seq: i + 1, camera: "front door", width: 320, height: 240 };
  }

  /** A session whose "ffmpeg" never reads its stdin. */
  function stuckSession(overrides = {}) {
    const ffmpegPath = writeScript(tmp, "stuck-ffmpeg", "exec sleep 30");
    return new TranscodeSession({
      ffmpegPath,
      args: [],
      width: 320,
      height: 240,
      stdout: "none",
      ...overrides,
    });
  }

  function makeRecorder(overrides = {}) {
    return new Recorder({
      ffmpegPath: FFMPEG,
      directory: tmp,
      camera: "node",
      preRollSec: 3,
      preRollMaxBytes: 64 << 20,
      postRollSec: 0,
      defaultDurationSec: 0,
      maxDurationSec: 0,
      video: video(),
      ...overrides,
    });
  }

  /** Feeds frames as fast as ffmpeg takes them, running `at[ms]` callbacks when frame time passes them. */
  async function feed(recorder, times, at = {}) {
    const pending = Object.keys(at)
      .map(Number)
      .sort((a, b) => a - b);
    for (let i = 0; i < times.length; i++) {
      while (pending.length && times[i] >= T0 + pending[0]) at[pending.shift()](T0 + pending[0] || times[i]);
      recorder.push(frameAt(times[i], i));
      await recorder.drained();
    }
  }

  function nextRecording(recorder) {
    return new Promise((resolve, reject) => {
      recorder.once("recording", resolve);
      recorder.once("failure", (m) => reject(new Error(m)));
    });
  }

  it("a 60 s recording at a jittering ~7 fps plays 60 s (+-2%) with every frame, pre-roll included", async function () {
    const recorder = makeRecorder({ preRollSec: 3 });
    const times = jitteredTimes(0, 70000, 7);
    const done = nextRecording(recorder);
    // trigger at 5 s with 57 s to go: 3 s of pre-roll + 57 s = 60 s
    await feed(recorder, times, {
      5000: () => recorder.start({ time: T0 + 5000, duration: 57, trigger: { topic: "pir" } }),
    });
    const info = await done;
    await recorder.close();
    // every frame from 2 s to 62 s, plus the one on screen at 2 s (restamped to 2 s), plus the two 1 ms
    // repeats of the last picture that make the file end exactly at 62 s
    const expectedFrames = times.filter((t) => t >= T0 + 2000 && t <= T0 + 62000).length + 3;
    const probe = ffprobe(info.file, true);
    const duration = Number(probe.format.duration);
    assert.ok(Math.abs(duration - 60) <= 1.2, `ffprobe duration ${duration} s`);
    assert.ok(Math.abs(duration - 60) <= 0.005, `in fact exact: ${duration} s`);
    assert.strictEqual(info.duration, 60);
    assert.strictEqual(Number(probe.streams[0].nb_read_frames), expectedFrames);
    assert.strictEqual(info.frames, expectedFrames);
    assert.strictEqual(probe.streams[0].codec_name, "h264");
    assert.strictEqual(info.reason, "duration");
    assert.deepStrictEqual(info.trigger, { topic: "pir" });
    assert.strictEqual(info.bytes, fs.statSync(info.file).size);
    assert.match(path.basename(info.file), /^front_door-\d{8}-\d{6}\.mp4$/);
    const sidecar = JSON.parse(fs.readFileSync(info.file.replace(/\.mp4$/, ".json"), "utf8"));
    assert.strictEqual(sidecar[SIDECAR_MARK], 1);
    assert.strictEqual(sidecar.frames, info.frames);
    assert.strictEqual(sidecar.duration, info.duration);
  });

  it("pre-roll 3 + duration 6 = 9 s; a retrigger extends the same file; post-roll is added", async function () {
    const recorder = makeRecorder({ preRollSec: 3, postRollSec: 2 });
    const times = jitteredTimes(0, 30000, 8, 7);
    const recordings = [];
    recorder.on("recording", (r) => recordings.push(r));
    let extended;
    await feed(recorder, times, {
      10000: () => recorder.start({ time: T0 + 10000, duration: 6 }),
      // 4 s later another trigger: the recording now ends at 14 + 6 + 2 = 22 s
      14000: () => (extended = recorder.start({ time: T0 + 14000, duration: 6 })),
    });
    await recorder.close();
    assert.strictEqual(extended.extended, true);
    assert.strictEqual(recordings.length, 1, "one file, not two");
    const duration = Number(ffprobe(recordings[0].file).format.duration);
    // 7 s .. 22 s
    assert.ok(Math.abs(duration - 15) <= 0.005, `clip is ${duration} s`);

    const second = makeRecorder({ preRollSec: 3, postRollSec: 0 });
    const done = nextRecording(second);
    await feed(second, jitteredTimes(0, 20000, 6, 3), {
      5000: () => second.start({ time: T0 + 5000, duration: 6 }),
    });
    const nine = Number(ffprobe((await done).file).format.duration);
    await second.close();
    assert.ok(Math.abs(nine - 9) <= 0.005, `pre-roll 3 + duration 6 gave ${nine} s`);
  });

  it("stop ends after the post-roll; maxDuration continues in a new file", async function () {
    const recorder = makeRecorder({ preRollSec: 0, postRollSec: 1, maxDurationSec: 4 });
    const recordings = [];
    recorder.on("recording", (r) => recordings.push(r));
    await feed(recorder, jitteredTimes(0, 15000, 10, 5), {
      1000: () => recorder.start({ time: T0 + 1000 }),
      10000: () => recorder.stop(T0 + 10000),
    });
    await recorder.close();
    // 1 s .. 11 s in files of at most 4 s: 4 + 4 + 2
    assert.deepStrictEqual(
      recordings.map((r) => r.reason),
      ["maxDuration", "maxDuration", "stop"],
    );
    const durations = recordings.map((r) => Number(ffprobe(r.file).format.duration));
    assert.ok(Math.abs(durations.reduce((a, b) => a + b, 0) - 10) <= 0.01, `parts ${durations}`);
    assert.ok(Math.abs(durations[0] - 4) <= 0.005, `first part ${durations[0]} s`);
    assert.strictEqual(new Set(recordings.map((r) => r.file)).size, 3);
  });

  it("a SIGKILLed ffmpeg leaves a playable file, and recording carries on in a new one", async function () {
    const recorder = makeRecorder({ preRollSec: 0 });
    const recordings = [];
    const failures = [];
    recorder.on("recording", (r) => recordings.push(r));
    recorder.on("failure", (m) => failures.push(m));
    const start = Date.now();
    recorder.start({ time: start });
    // real-time frames for 3.5 s, so ffmpeg has written a few 1 s fragments
    for (let i = 0; i < 35; i++) {
      recorder.push(frameAt(start + i * 100, i));
      await wait(100);
    }
    const pid = recorder.killFfmpeg();
    assert.ok(await waitGone(pid), "ffmpeg killed");
    await wait(200);
    assert.strictEqual(recordings.length, 1);
    assert.strictEqual(recordings[0].reason, "error");
    assert.match(failures[0], /ffmpeg was killed by SIGKILL/);
    const probe = ffprobe(recordings[0].file, true);
    assert.strictEqual(probe.streams[0].codec_name, "h264");
    assert.ok(
      Number(probe.streams[0].nb_read_frames) >= 20,
      `${probe.streams[0].nb_read_frames} frames survived`,
    );
    // frames keep coming: after the 1 s backoff a new file starts
    for (let i = 35; i < 70; i++) {
      recorder.push(frameAt(start + i * 100, i));
      await wait(50);
    }
    assert.ok(recorder.sessionPid && recorder.sessionPid !== pid, "ffmpeg restarted");
    await recorder.close();
    assert.strictEqual(recordings.length, 2);
    assert.notStrictEqual(recordings[1].file, recordings[0].file);
    assert.ok(Number(ffprobe(recordings[1].file).format.duration) > 1);
  });

  it("honours a bitrate (x264 is told the camera's real frame rate, not the time base's)", async function () {
    const big = testJpegs(30, "640x480", 3);
    const recorder = makeRecorder({ preRollSec: 0, video: video({ bitrate: 400 }) });
    const done = nextRecording(recorder);
    const times = jitteredTimes(0, 12000, 10, 9);
    for (let i = 0; i < times.length; i++) {
      if (i === 5) recorder.start({ time: times[i], duration: 10 });
      recorder.push({ data: big[i % big.length], time: times[i], width: 640, height: 480, camera: "c" });
      await recorder.drained();
    }
    const info = await done;
    await recorder.close();
    const kbps = (info.bytes * 8) / info.duration / 1000;
    assert.ok(kbps > 300 && kbps < 520, `${kbps.toFixed(0)} kb/s for a 400 kb/s setting`);
  });

  it("confines msg.filename to the directory", function () {
    const dir = path.join(tmp, "rec");
    assert.strictEqual(confineFilename(dir, "garage/clip"), path.join(dir, "garage", "clip.mp4"));
    assert.strictEqual(confineFilename(dir, "a.mp4"), path.join(dir, "a.mp4"));
    for (const bad of [
      "../x.mp4",
      "a/../../x",
      "/etc/passwd",
      "..",
      "a/..\\..\\b",
      "C:\\x",
      "",
      "x\0y",
      42,
    ]) {
      assert.throws(() => confineFilename(dir, bad), /refused|non-empty/, String(bad));
    }
    const recorder = makeRecorder({ directory: dir });
    assert.throws(() => recorder.start({ time: T0, filename: "../escape" }), /refused: it contains \.\./);
    assert.ok(!fs.existsSync(path.join(tmp, "escape.mp4")));
    assert.strictEqual(recorder.recording, false);
    // a symlinked folder inside the directory does not lead out of it either
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-outside-"));
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.symlinkSync(outside, path.join(dir, "link"));
      assert.throws(
        () => recorder.start({ time: T0, filename: "link/deeper/x" }),
        /leads outside the recording directory/,
      );
      assert.deepStrictEqual(fs.readdirSync(outside), []);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
    assert.strictEqual(sanitizeCameraName("Front door / cam#1"), "Front_door_cam_1");
    assert.strictEqual(sanitizeCameraName("../.."), "camera");
  });

  it("says clearly when the directory is not writable and keeps working", function () {
    const file = path.join(tmp, "plain-file");
    fs.writeFileSync(file, "x");
    const recorder = makeRecorder({ directory: path.join(file, "sub") });
    assert.throws(
      () => recorder.start({ time: T0 }),
      /recording directory ".*plain-file\/sub" is not writable: E(NOTDIR|EXIST)/,
    );
    recorder.push(frameAt(T0, 0));
    assert.strictEqual(recorder.preRoll.length, 1);
  });

  it("retention deletes the oldest recordings first, and only camrelay's", async function () {
    const day = 86400000;
    const now = T0 + 30 * day;
    const mk = (name, ageDays, bytes, mark = true) => {
      fs.writeFileSync(path.join(tmp, `${name}.mp4`), Buffer.alloc(bytes));
      const side = { file: path.join("/elsewhere", `${name}.mp4`), start: now - ageDays * day };
      if (mark) side[SIDECAR_MARK] = 1;
      fs.writeFileSync(path.join(tmp, `${name}.json`), JSON.stringify(side));
    };
    mk("old", 10, 1000);
    mk("mid", 5, 1000);
    mk("new", 1, 1000);
    mk("foreign", 20, 1000, false);
    fs.mkdirSync(path.join(tmp, "sub"));
    fs.writeFileSync(path.join(tmp, "sub", "unrelated.mp4"), "x");
    const byAge = await new RetentionSweeper({
      directory: tmp,
      keepDays: 7,
      keepGB: 0,
      now: () => now,
    }).sweep();
    assert.deepStrictEqual(
      byAge.deleted.map((f) => path.basename(f)),
      ["old.mp4"],
    );
    assert.ok(!fs.existsSync(path.join(tmp, "old.json")));
    const bySize = await new RetentionSweeper({
      directory: tmp,
      keepDays: 0,
      keepGB: 1500 / 1024 ** 3,
      now: () => now,
      isProtected: (f) => f.endsWith("never.mp4"),
    }).sweep();
    assert.deepStrictEqual(
      bySize.deleted.map((f) => path.basename(f)),
      ["mid.mp4"],
    );
    assert.ok(fs.existsSync(path.join(tmp, "new.mp4")));
    assert.ok(fs.existsSync(path.join(tmp, "foreign.mp4")), "no camrelay sidecar: never deleted");
    assert.ok(fs.existsSync(path.join(tmp, "sub", "unrelated.mp4")));
  });

  it("the pre-roll ring is capped by time and bytes", function () {
    const ring = new PreRollBuffer(3000, 10 * 1024);
    for (let i = 0; i < 100; i++) ring.push({ data: Buffer.alloc(100), time: T0 + i * 100 });
    assert.strictEqual(ring.spanMs, 3000);
    assert.strictEqual(ring.since(T0 + 9000).length, 10);
    for (let i = 0; i < 10; i++) ring.push({ data: Buffer.alloc(3000), time: T0 + 10000 + i });
    assert.ok(ring.bytes <= 10 * 1024, `${ring.bytes} bytes held`);
    assert.strictEqual(ring.length, 3);
  });

  it("fMP4: init first, then about 1 s fragments that each start with a keyframe, split alike in any chunking", async function () {
    const whole = [];
    const pieces = { inits: [], fragments: [] };
    const session = new TranscodeSession({
      ffmpegPath: FFMPEG,
      args: [
        ...args.inputArgs(args.ENCODERS.libx264),
        ...args.videoArgs(video(), 320, 240, true),
        ...args.fmp4PipeArgs(),
      ],
      width: 320,
      height: 240,
      stdout: "fmp4",
    });
    session.on("init", ({ data: b, info }) => pieces.inits.push({ b, info }));
    session.on("fragment", ({ data: b, info }) => pieces.fragments.push({ b, info }));
    session.start();
    session.proc.stdout.on("data", (d) => whole.push(d));
    const times = jitteredTimes(0, 5000, 9, 11);
    for (let i = 0; i < times.length; i++) {
      session.write(frameAt(times[i], i));
      await session.drained();
    }
    await session.finish();
    assert.strictEqual(pieces.inits.length, 1);
    assert.match(pieces.inits[0].info.codec, /^avc1\.[0-9a-f]{6}$/);
    assert.strictEqual(pieces.inits[0].info.width, 320);
    assert.ok(pieces.fragments.length >= 4, `${pieces.fragments.length} fragments`);
    for (const f of pieces.fragments.slice(0, -1)) {
      assert.ok(f.info.keyframe, "fragment starts with a keyframe");
      assert.ok(Math.abs(f.info.durationSec - 1) < 0.25, `fragment of ${f.info.durationSec} s`);
    }
    assert.strictEqual(pieces.fragments[0].info.time, times[0]);
    // The same bytes cut at random places split into the same pieces.
    const all = Buffer.concat(whole);
    const again = [];
    const splitter = new Mp4FragmentSplitter({ init: (b) => again.push(b), fragment: (b) => again.push(b) });
    let pos = 0;
    let seed = 3;
    while (pos < all.length) {
      seed = (seed * 16807) % 2147483647;
      const n = 1 + (seed % 5000);
      splitter.push(all.subarray(pos, pos + n));
      pos += n;
    }
    assert.deepStrictEqual(
      again.map((b) => b.length),
      [pieces.inits[0].b.length, ...pieces.fragments.map((f) => f.b.length)],
    );
    // init + fragments is a valid H.264 MP4
    const file = path.join(tmp, "joined.mp4");
    fs.writeFileSync(file, all);
    const probe = ffprobe(file, true);
    assert.strictEqual(Number(probe.streams[0].nb_read_frames), times.length);
  });

  it("keeps at most ~2 s of frames when ffmpeg does not read, dropping and counting the rest", async function () {
    const big = Buffer.alloc(200 * 1024, 7);
    const session = stuckSession();
    let dropped = 0;
    session.on("dropped", (n) => (dropped = n));
    session.start();
    await new Promise((r) => session.proc.once("spawn", r));
    for (let i = 0; i < 200; i++) session.write({ data: big, time: T0 + i * 100, width: 320, height: 240 });
    const queuedBytes = session.proc.stdin.writableLength;
    assert.ok(dropped >= 150, `${dropped} frames dropped`);
    assert.ok(session.stats.framesWritten + dropped + 25 >= 200);
    assert.ok(queuedBytes < 2 * big.length + 64 * 1024, `${queuedBytes} bytes in the pipe buffer`);
    const pid = session.proc.pid;
    await session.finish(undefined, 300);
    assert.ok(!alive(pid));
  });

  it("kills an ffmpeg that is given frames but shows no sign of life", async function () {
    const session = stuckSession({ stallMs: 800 });
    const exited = new Promise((resolve) =>
      session.on("exit", ({ signal, expected }) => resolve({ signal, expected })),
    );
    session.start();
    await new Promise((r) => session.proc.once("spawn", r));
    const pid = session.proc.pid;
    const t0 = Date.now();
    const timer = setInterval(
      () => session.write({ data: jpegs[0], time: Date.now(), width: 320, height: 240 }),
      100,
    );
    try {
      const { signal, expected } = await exited;
      assert.strictEqual(signal, "SIGKILL");
      assert.strictEqual(expected, false, "reported as a failure, so the supervisor restarts it");
      assert.ok(session.stalled);
      assert.ok(Date.now() - t0 >= 700, "not before the stall time");
      assert.ok(!alive(pid));
    } finally {
      clearInterval(timer);
    }
  });

  it("supervises a live ffmpeg: restarts it with backoff after it dies, and close() leaves nothing", async function () {
    const live = new LiveTranscoder({
      ffmpegPath: FFMPEG,
      output: (w, h) => ({
        args: [
          ...args.inputArgs(args.ENCODERS.libx264),
          ...args.videoArgs(video(), w, h, true),
          ...args.fmp4PipeArgs(),
        ],
        stdout: "fmp4",
      }),
      backoff: new Backoff(300, 1000),
    });
    const inits = [];
    const failures = [];
    live.on("init", ({ info }) => inits.push(info));
    live.on("failure", (m) => failures.push(m));
    let i = 0;
    const timer = setInterval(() => live.push(frameAt(Date.now(), i++)), 100);
    try {
      await new Promise((r) => live.once("init", r));
      const first = live.killFfmpeg();
      await waitGone(first);
      await until(() => inits.length >= 2, { ms: 5000, every: 100 }).catch(() => undefined);
      assert.strictEqual(inits.length, 2, "a new init after the restart");
      assert.match(failures[0], /killed by SIGKILL/);
      assert.ok(live.pid && live.pid !== first);
      const second = live.pid;
      clearInterval(timer);
      await live.close();
      assert.ok(!alive(second), "no ffmpeg after close");
    } finally {
      clearInterval(timer);
      await live.close();
    }
  });

  it("chooses libx264 for auto when no hardware encoder works, once per binary", async function () {
    const a = args.chooseEncoder(FFMPEG, "auto");
    assert.strictEqual(a, args.chooseEncoder(FFMPEG, "auto"), "cached");
    assert.strictEqual((await a).name, "libx264");
    assert.strictEqual((await args.chooseEncoder(FFMPEG, "")).name, "libx264");
    assert.strictEqual((await args.chooseEncoder(FFMPEG, "h264_nvenc")).name, "h264_nvenc");
    assert.deepStrictEqual(args.splitArgs(`-c:v libx264 -metadata title="a b" 'x y' z\\ w`), [
      "-c:v",
      "libx264",
      "-metadata",
      "title=a b",
      "x y",
      "z w",
    ]);
    assert.throws(() => args.splitArgs(`-f "flv`), /unbalanced/);
    assert.deepStrictEqual(args.pushArgs("rtmp://h/live/k").slice(0, 2), ["-f", "flv"]);
    assert.throws(() => args.pushArgs("http://h/x"), /rtmp/);
  });
});
