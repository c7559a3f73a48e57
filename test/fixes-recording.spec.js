"use strict";
// Issue 10, recording: long file names in bytes, a killed ffmpeg's file, retention's sidecars and depth,
// example 03's notification. Real ffmpeg (every build on this machine), real files, real Node-RED.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawn, execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const { Recorder, confineFilename, MAX_BASE_NAME_BYTES } = require("../dist/nodes/lib/transcode/recorder");
const { RetentionSweeper, SIDECAR_MARK, MAX_FOLDER_DEPTH } = require("../dist/nodes/lib/transcode/retention");
const args = require("../dist/nodes/lib/transcode/args");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const {
  FFMPEG,
  FFPROBE,
  testJpegs,
  wait,
  until,
  waitGone,
  recorderConfig,
  video,
} = require("./lib/transcode-helpers");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

/** Every ffmpeg build here, with its own ffprobe: the one on the system (Debian's 5.1) and the bundled 4.x. */
const { ffmpegBuilds } = require("./lib/toolkit");

function makeRecorder(dir, overrides = {}) {
  return new Recorder({
    ffmpegPath: FFMPEG,
    directory: dir,
    camera: "node",
    preRollSec: 0,
    preRollMaxBytes: 64 << 20,
    postRollSec: 0,
    defaultDurationSec: 0,
    maxDurationSec: 0,
    video: video(),
    ...overrides,
  });
}

/** `ffprobe -count_frames` of a file with a given ffprobe: { duration, frames }; throws when it cannot read it. */
function probe(ffprobe, file) {
  const out = execFileSync(
    ffprobe,
    ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-count_frames", file],
    { encoding: "utf8" },
  );
  const data = JSON.parse(out);
  return { duration: Number(data.format.duration), frames: Number(data.streams[0].nb_read_frames) };
}

describe("issue 10: recording fixes", function () {
  this.timeout(60000);
  let tmp;
  let jpegs;

  before(function () {
    jpegs = testJpegs(30, "320x240", 8);
  });
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-fixrec-"));
  });
  afterEach(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const frame = (time, i) => ({
    data: jpegs[i % jpegs.length],
    time,
    camera: "cam",
    width: 320,
    height: 240,
  });

  describe("msg.filename in bytes", function () {
    it("a name within 255 characters but too long in bytes is refused at once, in words, without hanging", async function () {
      // 127 two-byte characters: 127 characters, 254 bytes; with ".mp4" 258 bytes, more than any file system
      // takes. The unique-name search used to loop for ever on ENAMETOOLONG, so this runs in a child process.
      const script = `
        const { Recorder } = require(${JSON.stringify(path.resolve("dist/nodes/lib/transcode/recorder"))});
        const args = require(${JSON.stringify(path.resolve("dist/nodes/lib/transcode/args"))});
        const r = new Recorder({ ffmpegPath: ${JSON.stringify(FFMPEG)}, directory: ${JSON.stringify(tmp)},
          camera: "c", preRollSec: 0, preRollMaxBytes: 1 << 20, postRollSec: 0, defaultDurationSec: 0,
          maxDurationSec: 0, video: { quality: 28, bitrate: 0, keyframeInterval: 1, encoder: args.ENCODERS.libx264 } });
        const out = {};
        for (const [key, name] of Object.entries({ two: "é".repeat(127), four: "😀".repeat(63), mixed: "a".repeat(200) + "ü".repeat(20) })) {
          try { r.start({ time: Date.now(), filename: name }); out[key] = "accepted"; }
          catch (e) { out[key] = e.name + ": " + e.message; }
        }
        console.log(JSON.stringify(out));
        process.exit(0);`;
      const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      const exited = await Promise.race([
        new Promise((r) => child.on("exit", () => r(true))),
        wait(15000).then(() => false),
      ]);
      if (!exited) child.kill("SIGKILL");
      assert.ok(exited, "the recorder returned (it hung at 100 % CPU before)");
      const out = JSON.parse(stdout);
      for (const key of ["two", "four", "mixed"]) {
        assert.match(out[key], /^RecorderError: msg\.filename .* refused: its file name is \d+ bytes/, key);
      }
      assert.match(out.two, /254 bytes/);
      assert.deepStrictEqual(fs.readdirSync(tmp), [], "nothing was created");
    });

    it("leaves room for -N, .json and the temporary sidecar: the longest accepted name records and is closed whole", async function () {
      const longest = "é".repeat(Math.floor(MAX_BASE_NAME_BYTES / 2)); // 228 bytes
      assert.ok(Buffer.byteLength(longest) <= MAX_BASE_NAME_BYTES);
      assert.throws(() => confineFilename(tmp, longest + "ab"), /bytes/);
      const recorder = makeRecorder(tmp);
      const failures = [];
      recorder.on("failure", (m) => failures.push(m));
      const infos = [];
      recorder.on("recording", (i) => infos.push(i));
      const t0 = Date.now();
      // Twice the same name: the second is "-2", whose temporary sidecar is the longest name made.
      for (let n = 0; n < 2; n++) {
        recorder.start({ time: t0 + n * 10000, filename: longest });
        for (let i = 0; i < 12; i++) {
          recorder.push(frame(t0 + n * 10000 + i * 100, i));
          await recorder.drained();
        }
        recorder.stop(t0 + n * 10000 + 1100);
        await until(() => infos.length > n, 20000, "the recording");
      }
      await recorder.close();
      assert.deepStrictEqual(failures, []);
      assert.deepStrictEqual(
        infos.map((i) => path.basename(i.file)),
        [`${longest}.mp4`, `${longest}-2.mp4`],
      );
      for (const i of infos) {
        assert.ok(fs.existsSync(i.file.replace(/\.mp4$/, ".json")), "the sidecar is there");
        assert.ok(probe(FFPROBE, i.file).frames >= 10, "and the file plays");
      }
    });

    it("a folder name too long in bytes, or deeper than retention looks, is refused; depth up to the limit is fine", function () {
      assert.throws(() => confineFilename(tmp, "ä".repeat(128) + "/clip"), /folder name .* 256 bytes/);
      const deep = (n) => [...Array(n).keys()].map((i) => `d${i}`).join("/") + "/clip";
      assert.strictEqual(
        confineFilename(tmp, deep(MAX_FOLDER_DEPTH)),
        path.join(tmp, deep(MAX_FOLDER_DEPTH) + ".mp4"),
      );
      assert.throws(
        () => confineFilename(tmp, deep(MAX_FOLDER_DEPTH + 1)),
        new RegExp(`${MAX_FOLDER_DEPTH + 1} folders deep, more than ${MAX_FOLDER_DEPTH}`),
      );
    });

    it("the numbered-name search is bounded: with every name taken the start is refused in words", function () {
      fs.writeFileSync(path.join(tmp, "busy.mp4"), "");
      for (let i = 2; i <= 9999; i++) fs.writeFileSync(path.join(tmp, `busy-${i}.json`), "");
      const recorder = makeRecorder(tmp);
      assert.throws(
        () => recorder.start({ time: Date.now(), filename: "busy" }),
        /9998 numbered names are taken/,
      );
      assert.strictEqual(recorder.recording, false);
      return recorder.close();
    });

    it("a name whose folder is a file is refused in words (any error but 'does not exist' refuses)", function () {
      fs.writeFileSync(path.join(tmp, "plain"), "x");
      const recorder = makeRecorder(tmp);
      assert.throws(
        () => recorder.start({ time: Date.now(), filename: "plain/clip" }),
        /ENOTDIR|EEXIST|not writable/,
      );
      // and the recorder keeps working
      assert.strictEqual(recorder.start({ time: Date.now(), filename: "ok" }).file, path.join(tmp, "ok.mp4"));
      return recorder.close();
    });

    it("after repeated ffmpeg deaths the parts are name, name-2, name-3 (a name never grows with each restart)", async function () {
      const recorder = makeRecorder(tmp, { healthyMs: 0 });
      const infos = [];
      recorder.on("recording", (i) => infos.push(i));
      recorder.on("failure", () => {});
      const t0 = Date.now();
      recorder.start({ time: t0, filename: "door" });
      let i = 0;
      for (let kill = 0; kill < 3; kill++) {
        const until2 = Date.now() + 1500;
        while (Date.now() < until2 || !recorder.sessionPid) {
          recorder.push(frame(Date.now(), i++));
          await wait(100);
        }
        if (kill < 2) {
          const pid = recorder.killFfmpeg();
          assert.ok(await waitGone(pid));
        }
      }
      await recorder.close();
      assert.deepStrictEqual(
        infos.map((r) => path.basename(r.file)),
        ["door.mp4", "door-2.mp4", "door-3.mp4"],
      );
    });
  });

  describe("a killed ffmpeg keeps what it recorded", function () {
    for (const build of ffmpegBuilds()) {
      for (const keyframeInterval of [1, 4]) {
        it(`${build.name} ffmpeg, keyframes every ${keyframeInterval} s: SIGKILL at 3.5 s leaves a file that decodes, within ~1 s of the time recorded`, async function () {
          const recorder = makeRecorder(tmp, {
            ffmpegPath: build.ffmpeg,
            video: video({ keyframeInterval }),
          });
          recorder.on("failure", () => {});
          const start = Date.now();
          recorder.start({ time: start, filename: "killed" });
          let i = 0;
          while (Date.now() - start < 3500) {
            recorder.push(frame(Date.now(), i++));
            await wait(100);
          }
          const recorded = (Date.now() - start) / 1000;
          const file = recorder.currentFile;
          const pid = recorder.killFfmpeg();
          assert.ok(await waitGone(pid), "ffmpeg killed");
          const bytes = fs.statSync(file).size;
          await recorder.close();
          let got;
          try {
            got = probe(build.ffprobe, file);
          } catch (err) {
            assert.fail(
              `${bytes} bytes on disk, ffprobe: ${String(err.stderr ?? err.message)
                .trim()
                .slice(0, 200)}`,
            );
          }
          console.log(
            `      ${build.name}, keyframes ${keyframeInterval} s: ${recorded.toFixed(2)} s recorded, ${got.duration} s / ${got.frames} frames / ${bytes} bytes on disk after SIGKILL`,
          );
          assert.ok(got.frames >= 15, `${got.frames} frames decoded`);
          assert.ok(
            got.duration >= recorded - 1.3,
            `${got.duration} s on disk of ${recorded.toFixed(2)} s recorded`,
          );
        });
      }
    }

    it("asks the binary: -flush_packets and the mov muxer's -frag_duration only where `ffmpeg -h full` lists them", async function () {
      for (const build of ffmpegBuilds()) {
        assert.deepStrictEqual(await args.mp4FileOptions(build.ffmpeg), [
          "-flush_packets",
          "1",
          "-frag_duration",
          "1000000",
        ]);
      }
      const bare = path.join(tmp, "old-ffmpeg");
      fs.writeFileSync(bare, "#!/bin/sh\necho '  -movflags <flags> E... MOV muxer flags'\n", { mode: 0o755 });
      assert.deepStrictEqual(await args.mp4FileOptions(bare), []);
    });
  });

  describe("retention", function () {
    const DAY = 86400000;
    const now = Date.UTC(2024, 5, 1);

    function recording(rel, start, data = {}) {
      const file = path.join(tmp, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, Buffer.alloc(1000));
      fs.writeFileSync(
        file.replace(/\.mp4$/, ".json"),
        JSON.stringify({ [SIDECAR_MARK]: 1, file, start, ...data }),
      );
      return file;
    }

    it("a sidecar deletes only its own recording: '../../precious.db' and '.' are skipped with a warning, the rest is swept", async function () {
      fs.mkdirSync(path.join(tmp, "a", "b"), { recursive: true });
      const precious = [path.join(tmp, "precious.db"), path.join(tmp, "a", "b", "precious.db")];
      for (const p of precious) fs.writeFileSync(p, "keep me");
      const old = recording("a/b/old.mp4", now - 30 * DAY);
      const evil = recording("a/b/evil.mp4", now - 30 * DAY, { file: "../../precious.db" });
      const dot = recording("a/dot.mp4", now - 30 * DAY, { file: "." });
      const other = recording("a/b/other.mp4", now - 30 * DAY, { file: path.join(tmp, "a/b/old.mp4") });
      const warnings = [];
      const sweeper = new RetentionSweeper({
        directory: tmp,
        keepDays: 7,
        keepGB: 0,
        now: () => now,
        warn: (m) => warnings.push(m),
      });
      const result = await sweeper.sweep();
      assert.deepStrictEqual(result.deleted, [old]);
      for (const p of precious) assert.strictEqual(fs.readFileSync(p, "utf8"), "keep me", p);
      assert.ok(fs.existsSync(path.join(tmp, "a")), "the folder '.' named is still there");
      for (const f of [evil, dot, other])
        assert.ok(fs.existsSync(f), `${f} was not deleted through another sidecar`);
      assert.strictEqual(warnings.length, 3, warnings.join("\n"));
      assert.ok(
        warnings.some((w) => /evil\.json: it names "precious\.db", not its own recording evil\.mp4/.test(w)),
      );
      // Reported once, not at every sweep.
      await sweeper.sweep();
      assert.strictEqual(warnings.length, 3);
    });

    it("a recording written as deep as msg.filename allows is swept", async function () {
      const rel = [...Array(MAX_FOLDER_DEPTH).keys()].map((i) => `d${i}`).join("/") + "/deep.mp4";
      assert.strictEqual(confineFilename(tmp, rel), path.join(tmp, rel), "the recorder accepts this depth");
      const five = recording("y/m/d/h/m/five.mp4", now - 30 * DAY);
      const deep = recording(rel, now - 30 * DAY);
      const result = await new RetentionSweeper({
        directory: tmp,
        keepDays: 7,
        keepGB: 0,
        now: () => now,
      }).sweep();
      assert.deepStrictEqual(result.deleted.sort(), [deep, five].sort());
    });
  });

  describe("in Node-RED", function () {
    before(() => helper.startServer());
    after(() => helper.stopServer());
    afterEach(() => helper.unload());

    it("a refused msg.filename reaches done(err) with the reason, and the node records the next start", async function () {
      const transcode = require("../dist/nodes/ffmpeg-transcode.js");
      await helper.load(transcode, [recorderConfig({ directory: tmp }), { id: "out", type: "helper" }]);
      const rec = helper.getNode("rec");
      const outs = [];
      helper.getNode("out").on("input", (m) => outs.push(m));
      const errors = [];
      rec.on("call:error", (call) => errors.push(String(call.args[0]?.message ?? call.args[0])));
      await wait(1000); // the encoder is chosen asynchronously
      let seq = 0;
      const timer = setInterval(() => {
        seq++;
        rec.receive({
          payload: jpegs[seq % jpegs.length],
          frame: { seq, time: monotonicEpochMs(), camera: "c", width: 320, height: 240 },
        });
      }, 100);
      try {
        const t = Date.now();
        rec.receive({ action: "start", filename: "ü".repeat(127) });
        await until(() => errors.length > 0, 5000, "the error");
        assert.ok(Date.now() - t < 5000);
        assert.match(errors[0], /msg\.filename .* refused: its file name is 254 bytes/);
        rec.receive({ action: "start", duration: 1, filename: "good" });
        await until(() => outs.length > 0, 20000, "the next recording");
      } finally {
        clearInterval(timer);
      }
      const r = outs[0].recording;
      assert.strictEqual(path.basename(r.file), "good.mp4");
      assert.strictEqual(errors.length, 1, errors.join(" / "));
      assert.ok(probe(FFPROBE, r.file).frames >= 8);
    });

    it("example 03's notification prints the time of the motion, not the start of the pre-roll", async function () {
      this.timeout(60000);
      const flow = JSON.parse(
        fs.readFileSync(path.join(__dirname, "..", "examples", "03-motion-recording.json"), "utf8"),
      )
        // no broker here: the inject nodes simulate the sensor, as the example says
        .filter((n) => n.type !== "mqtt in" && n.type !== "mqtt-broker");
      const transcode = flow.find((n) => n.type === "ffmpeg-transcode");
      transcode.directory = tmp;
      transcode.postRoll = 1; // the notification is what is tested, not the 10 s wait
      const motion = flow.find((n) => n.type === "inject" && n.payload === "ON");
      const clear = flow.find((n) => n.type === "inject" && n.payload === "OFF");
      const notify = flow.find((n) => n.type === "debug");
      const nodes = [
        require("../dist/nodes/camera-source.js"),
        require("../dist/nodes/camera-connect.js"),
        require("../dist/nodes/ffmpeg-transcode.js"),
        require("@node-red/nodes/core/common/20-inject.js"),
        require("@node-red/nodes/core/common/21-debug.js"),
        require("@node-red/nodes/core/common/90-comment.js"),
        require("@node-red/nodes/core/function/10-function.js"),
        require("@node-red/nodes/core/function/15-change.js"),
      ];
      await helper.load(nodes, flow);
      const notes = [];
      helper.getNode(notify.id).on("input", (m) => notes.push(m));
      await wait(4000); // 4 s of frames: the 5 s pre-roll reaches back ~4 s before the motion
      const pressed = monotonicEpochMs();
      helper.getNode(motion.id).receive({});
      await wait(1500);
      helper.getNode(clear.id).receive({});
      await until(() => notes.length > 0, 30000, "the notification");
      const { payload, recording } = notes[0];
      assert.ok(Math.abs(recording.triggerTime - pressed) < 1000, "msg.recording.triggerTime is the motion");
      assert.ok(recording.triggerTime - recording.start > 2500, "the file starts well before (pre-roll)");
      const hms = (t) => {
        const d = new Date(t);
        const p = (n) => String(n).padStart(2, "0");
        return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
      };
      assert.ok(payload.startsWith(`Motion at ${hms(recording.triggerTime)}: `), payload);
      assert.ok(!payload.includes(hms(recording.start)), payload);
    });
  });
});
