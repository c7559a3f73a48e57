"use strict";
// Reading a passthrough camera's video in bursts (FfmpegProcess.batchStdout, asked for by the Camera while
// nobody needs each picture at once): real ffmpeg writing a fragment a picture in real time, read in bursts
// without losing a byte, seen to its end while batched, read as it comes again for a heavy stream; and the
// Camera in a real Node-RED switching it by who is there (a live viewer, a JPEG user's rate).
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const { FfmpegProcess } = require("../dist/nodes/lib/ffmpeg/process");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { liveDemand } = require("../dist/nodes/lib/camera/live-demand");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const { FFMPEG, until } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

/** ffmpeg encoding `seconds` of test picture in real time, a fragment a picture, to stdout. */
function liveFmp4(seconds) {
  return [
    ...["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"],
    ...["-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p"],
    ...["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe", "-frag_duration", "1000"],
    "pipe:1",
  ];
}

/** Raw yuv420p pictures of `size` at 15 fps in real time, `seconds` long, to stdout. */
function rawVideo(size, seconds) {
  return [
    ...["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=15`],
    ...["-t", String(seconds), "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"],
  ];
}

/**
 * Starts ffmpeg with `args`: { proc, exited (its exit), got: arrival times and sizes of stdout chunks, and
 * with `mp4` the fragments they make and the splitter's problems }.
 */
function run(args, { mp4 = true } = {}) {
  const proc = new FfmpegProcess({ ffmpegPath: FFMPEG, args });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  proc.start();
  const got = { chunks: [], bytes: 0, fragments: 0, problems: [] };
  const splitter = mp4
    ? new Mp4FragmentSplitter({
        init: () => undefined,
        fragment: () => got.fragments++,
        problem: (m) => got.problems.push(m),
      })
    : undefined;
  proc.stdout.on("data", (d) => {
    got.chunks.push({ at: performance.now(), bytes: d.length });
    got.bytes += d.length;
    splitter?.push(d);
  });
  return { proc, exited, got };
}

/** Wake-ups with data in [from, to): chunks closer than 20 ms to the one before count as one read. */
function wakeups(chunks, from, to) {
  let n = 0;
  let last = -Infinity;
  for (const c of chunks) {
    if (c.at < from || c.at >= to) continue;
    if (c.at - last > 20) n++;
    last = c.at;
  }
  return n;
}

describe("FfmpegProcess.batchStdout: ffmpeg's output read in bursts", function () {
  this.timeout(60000);

  it("reads a fragment-a-picture stream in about four bursts a second, loses nothing, and sees the end", async function () {
    const { proc, exited, got } = run(liveFmp4(5));
    await new Promise((r) => setTimeout(r, 1500));
    const t1 = performance.now();
    proc.batchStdout(250);
    await new Promise((r) => setTimeout(r, 2000));
    const t2 = performance.now();
    const asItComes = wakeups(got.chunks, t1 - 1000, t1);
    const batched = wakeups(got.chunks, t2 - 1750, t2 - 250);
    assert.ok(asItComes >= 10, `as it comes: ${asItComes} reads in a second`);
    assert.ok(batched <= 7, `in bursts: ${batched} reads in 1.5 s`);
    // ffmpeg's input ends while reading is batched: the exit still comes, after all of the output.
    const { code } = await exited;
    assert.strictEqual(code, 0);
    assert.deepStrictEqual(got.problems, []);
    assert.strictEqual(got.fragments, 75, "5 s at 15 fps: every picture's fragment arrived");
  });

  it("goes back to reading as it comes when asked, and when the process is killed mid-pause", async function () {
    const { proc, exited, got } = run(liveFmp4(20));
    proc.batchStdout(250);
    await new Promise((r) => setTimeout(r, 1500));
    proc.batchStdout(0);
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 1200));
    assert.ok(wakeups(got.chunks, t + 100, t + 1100) >= 10, "as it comes again");
    proc.batchStdout(250);
    await new Promise((r) => setTimeout(r, 100));
    proc.kill();
    const { signal } = await exited;
    assert.ok(signal, "the exit of a killed ffmpeg is seen while its output was paused");
  });

  it("reads a busier stream in closer bursts: at most about 64 kB each", async function () {
    // Raw 160x120 pictures in real time: 28.8 kB each, 432 kB/s: 0.25 s would be 108 kB, so ~150 ms bursts.
    const { proc, exited, got } = run(rawVideo("160x120", 4), { mp4: false });
    proc.batchStdout(250);
    const t = performance.now();
    await exited;
    assert.strictEqual(got.bytes, 60 * 160 * 120 * 1.5, "every picture");
    const reads = wakeups(got.chunks, t + 1000, t + 3000);
    assert.ok(
      reads >= 9 && reads <= 20,
      `${reads} reads in 2 s: more than four a second, fewer than fifteen`,
    );
  });

  it("reads a heavy stream as it comes: more than the socket holds between bursts", async function () {
    // Raw 640x480 pictures in real time: 460 kB each, 6.9 MB/s; bursts every 250 ms would hold ffmpeg back.
    const { proc, exited, got } = run(rawVideo("640x480", 3), { mp4: false });
    proc.batchStdout(250);
    const samples = [];
    const sample = setInterval(() => samples.push(proc.readPaused), 50);
    await exited;
    clearInterval(sample);
    assert.strictEqual(got.bytes, 45 * 640 * 480 * 1.5, "every picture");
    const paused = samples.filter(Boolean).length;
    assert.ok(paused <= samples.length / 4, `reading paused in ${paused} of ${samples.length} samples`);
  });
});

describe("Camera: read batching by who is there", function () {
  this.timeout(60000);
  let tmp;
  let clip;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-batch-"));
    clip = path.join(tmp, "h264.mp4");
    execFileSync(FFMPEG, [
      ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15", "-t", "30"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", clip],
    ]);
    await helper.startServer();
  });
  after(async function () {
    await helper.stopServer();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(() => helper.unload());

  /** The camera's Camera and the running source's ffmpeg. */
  function parts() {
    const camera = helper.getNode("cam1").camera;
    return { camera, proc: camera.source?.proc };
  }

  it("batches with only recording-like users, stops for a live viewer, starts again when it leaves", async function () {
    await helper.load(
      [cameraSource, cameraConnect],
      [
        { id: "cam1", type: "camera-source", name: "c", protocol: "ffmpeg", url: clip, linger: 0 },
        { id: "v", type: "camera-connect", camera: "cam1", output: "video", wires: [["h"], []] },
        { id: "h", type: "helper" },
      ],
    );
    const fragments = [];
    helper.getNode("h").on("input", (m) => m.mp4?.type === "fragment" && fragments.push(m));
    await until(() => parts().proc?.batchMs === 250, 20000);
    const holder = {};
    try {
      liveDemand.set("cam1", holder, true);
      await until(() => parts().proc?.batchMs === 0, 5000);
      assert.strictEqual(parts().camera.readBatchMs, 0);
    } finally {
      liveDemand.release(holder);
    }
    await until(() => parts().proc?.batchMs === 250, 5000);
    assert.ok(fragments.length > 0);
  });

  it("a JPEG user at every frame keeps it reading as it comes; one at 2 fps lets it batch", async function () {
    await helper.load(
      [cameraSource, cameraConnect],
      [
        { id: "cam1", type: "camera-source", name: "c", protocol: "ffmpeg", url: clip, linger: 0 },
        { id: "all", type: "camera-connect", camera: "cam1", output: "both", wires: [["h"], []] },
        {
          id: "two",
          type: "camera-connect",
          camera: "cam1",
          output: "both",
          jpegRate: "2",
          autoStart: false,
          wires: [["h"], []],
        },
        { id: "h", type: "helper" },
      ],
    );
    const jpegs = [];
    helper.getNode("h").on("input", (m) => Buffer.isBuffer(m.payload) && !m.mp4 && jpegs.push(m));
    await until(() => jpegs.length >= 5, 20000);
    assert.strictEqual(parts().camera.readBatchMs, 0, "every frame wanted: read as it comes");
    helper.getNode("two").receive({ action: "start" });
    helper.getNode("all").receive({ action: "stop" });
    await until(() => parts().proc?.batchMs === 250, 10000);
    const before = jpegs.length;
    await until(() => jpegs.length >= before + 3, 10000);
  });
});
