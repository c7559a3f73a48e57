"use strict";
// Issue 13: ffmpeg-transcode copies compressed input (msg.mp4). Real ffmpeg makes H.264+AAC fMP4, the
// project's Mp4FragmentSplitter cuts it into msg.mp4 messages sent at camera pace, a real ffmpeg-transcode
// in Node-RED records (copy, no encoder) or passes the fragments through (hls/fmp4).
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { GopRing } = require("../dist/nodes/lib/transcode/mp4-input");
const { recorderConfig, wait, until } = require("./lib/transcode-helpers");
const { ffmpegBuilds } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);
const transcode = require("../dist/nodes/ffmpeg-transcode.js");

/** H.264 (keyframe every 15 frames = 1 s) + AAC as fMP4 with ~0.25 s fragments, split into pieces. */
function source(ffmpeg, file, size, seconds) {
  execFileSync(ffmpeg, [
    "-hide_banner",
    "-loglevel",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `testsrc=size=${size}:rate=15`,
    "-f",
    "lavfi",
    "-i",
    "sine=f=440:sample_rate=44100",
    "-t",
    String(seconds),
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-pix_fmt",
    "yuv420p",
    "-g",
    "15",
    "-c:a",
    "aac",
    "-movflags",
    "+frag_keyframe+empty_moov+default_base_moof",
    "-frag_duration",
    "250000",
    "-f",
    "mp4",
    file,
  ]);
  const pieces = [];
  const splitter = new Mp4FragmentSplitter({
    init: (data, info) => pieces.push({ type: "init", data, info }),
    fragment: (data, info) => pieces.push({ type: "fragment", data, info }),
  });
  splitter.push(fs.readFileSync(file));
  return pieces;
}

/** Sends the pieces at camera pace, stamped at send (the camera's timeline and the wall clock agree). */
async function feed(node, pieces, initId, camera = "cam", onEach = () => {}) {
  let seq = 0;
  for (const p of pieces) {
    const mp4 = {
      type: p.type,
      seq: seq++,
      time: monotonicEpochMs(),
      duration: p.type === "init" ? 0 : p.info.durationSec,
      codec: p.info.codec ?? "avc1.42c00d,mp4a.40.2",
      width: 0,
      height: 0,
      keyframe: p.type === "init" ? undefined : p.info.keyframe,
      initId,
    };
    node.receive({ payload: p.data, topic: camera, mp4 });
    await onEach(p);
    if (p.type === "fragment") await wait(p.info.durationSec * 1000);
  }
}

function probe(ffprobe, file) {
  const out = execFileSync(
    ffprobe,
    ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file],
    { encoding: "utf8" },
  );
  return JSON.parse(out);
}

/** The first video frame's key flag, by ffprobe. */
function firstFrameKey(ffprobe, file) {
  const out = execFileSync(
    ffprobe,
    [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-read_intervals",
      "%+#1",
      "-show_entries",
      "frame=key_frame",
      "-of",
      "csv=p=0",
      file,
    ],
    { encoding: "utf8" },
  );
  return out.trim().split(/[\s,]+/)[0];
}

/** Command lines of this process's descendants. */
function descendants() {
  const rows = execFileSync("ps", ["-e", "-o", "pid=,ppid=,args="], { encoding: "utf8" })
    .split("\n")
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter(Boolean)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] }));
  const ours = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const r of rows) {
      if (ours.has(r.ppid) && !ours.has(r.pid)) {
        ours.add(r.pid);
        grew = true;
      }
    }
  }
  return rows.filter((r) => r.pid !== process.pid && ours.has(r.pid)).map((r) => r.args);
}

describe("issue 13: ffmpeg-transcode copies compressed input", function () {
  this.timeout(90000);
  let tmp;
  beforeEach(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-pt-"))));
  afterEach(async () => {
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("GopRing keeps whole GOPs: pre-roll plus at most one GOP, newest never dropped, a P-frame never alone", () => {
    const ring = new GopRing(3000, 1 << 30);
    const unit = (time, keyframe, initId = 1) => ({
      data: Buffer.alloc(10),
      info: { type: "fragment" },
      time,
      duration: 0.25,
      keyframe,
      initId,
    });
    assert.strictEqual(ring.pushFragment(unit(0, true)), undefined, "no init yet: dropped");
    ring.pushInit({
      data: Buffer.alloc(5),
      info: { type: "init" },
      time: 0,
      duration: 0,
      keyframe: true,
      initId: 1,
    });
    assert.strictEqual(ring.pushFragment(unit(0, false)), undefined, "no GOP to join: dropped");
    for (let t = 0; t <= 10000; t += 250) ring.pushFragment(unit(t, t % 1000 === 0));
    const gops = ring.from(10000 - 3000);
    assert.strictEqual(gops[0].time, 7000, "clip starts at the keyframe at or before trigger - preRoll");
    assert.ok(ring.from(-Infinity)[0].time >= 6000, "ring holds pre-roll + at most one GOP");
    ring.pushInit({
      data: Buffer.alloc(5),
      info: { type: "init" },
      time: 0,
      duration: 0,
      keyframe: true,
      initId: 2,
    });
    assert.strictEqual(ring.bytes, 0, "a new initId empties the ring");
  });

  for (const build of ffmpegBuilds()) {
    it(`${build.name}: preRoll 3 s + duration 6 s records 9 s (+ at most one GOP), copied, keyframe first, AAC kept`, async () => {
      const pieces = source(build.ffmpeg, path.join(tmp, "src.mp4"), "320x240", 14);
      const dir = path.join(tmp, "rec");
      await helper.load(transcode, [
        recorderConfig({ directory: dir, preRoll: 3, postRoll: 0, ffmpegPath: build.ffmpeg }),
        { id: "out", type: "helper" },
      ]);
      const rec = helper.getNode("rec");
      const out = helper.getNode("out");
      const messages = [];
      out.on("input", (m) => messages.push(m));
      await wait(300);
      let sent = 0;
      let encoders = [];
      let triggered = false;
      await feed(rec, pieces, 1, "cam", async (p) => {
        if (p.type !== "fragment") return;
        sent += p.info.durationSec;
        if (sent >= 4.5 && !triggered) {
          triggered = true;
          rec.receive({ action: "start", duration: 6 });
        }
        if (sent >= 8 && !encoders.length) encoders = descendants();
      });
      await until(() => messages.length >= 1, 20000, "msg.recording");
      const info = messages[0].recording;
      const meta = probe(build.ffprobe, info.file);
      const duration = Number(meta.format.duration);
      console.log(
        `      recorded ${duration.toFixed(2)} s (msg.recording.duration ${info.duration.toFixed(2)} s, reason ${info.reason}${info.error ? `: ${info.error}` : ""}, ${messages.length} part(s))`,
      );
      assert.ok(
        duration >= 9 - 0.3 && duration <= 9 + 1 + 0.3,
        `recording lasts ${duration} s, want 9..10 s`,
      );
      const v = meta.streams.find((s) => s.codec_type === "video");
      const a = meta.streams.find((s) => s.codec_type === "audio");
      const src = probe(build.ffprobe, path.join(tmp, "src.mp4")).streams.find(
        (s) => s.codec_type === "video",
      );
      assert.deepStrictEqual(
        [v.codec_name, v.profile, v.width, v.height],
        [src.codec_name, src.profile, src.width, src.height],
      );
      assert.strictEqual(a?.codec_name, "aac", "the AAC track is copied");
      assert.strictEqual(firstFrameKey(build.ffprobe, info.file), "1", "starts on a keyframe");
      assert.ok(
        encoders.some((c) => /-c copy/.test(c)),
        `a copy ffmpeg ran: ${encoders.join(" / ")}`,
      );
      assert.ok(
        !encoders.some((c) => /libx264/.test(c)),
        `no encoder while recording: ${encoders.join(" / ")}`,
      );
      assert.ok(
        Math.abs(info.duration - duration) < 1.0,
        `msg.recording.duration ${info.duration} vs file ${duration}`,
      );
      assert.ok(fs.existsSync(info.file.replace(/\.mp4$/, ".json")), "sidecar written");
    });
  }

  it("a new init mid-recording closes the part and continues in a new one: two playable parts", async () => {
    const build = ffmpegBuilds()[0];
    const a = source(build.ffmpeg, path.join(tmp, "a.mp4"), "320x240", 3);
    const b = source(build.ffmpeg, path.join(tmp, "b.mp4"), "640x360", 3);
    const dir = path.join(tmp, "rec");
    await helper.load(transcode, [
      recorderConfig({ directory: dir, preRoll: 1, ffmpegPath: build.ffmpeg }),
      { id: "out", type: "helper" },
    ]);
    const rec = helper.getNode("rec");
    const messages = [];
    helper.getNode("out").on("input", (m) => messages.push(m));
    await wait(300);
    let started = false;
    await feed(rec, a, 1, "cam", (p) => {
      if (p.type === "fragment" && !started) {
        rec.receive({ action: "start", duration: 30 });
        started = true;
      }
    });
    await feed(rec, b, 2);
    rec.receive({ action: "stop" });
    await until(() => messages.length >= 2, 20000, "two msg.recording");
    const [first, second] = messages.map((m) => m.recording);
    assert.strictEqual(first.reason, "newStream");
    assert.notStrictEqual(first.file, second.file);
    const p1 = probe(build.ffprobe, first.file).streams.find((s) => s.codec_type === "video");
    const p2 = probe(build.ffprobe, second.file).streams.find((s) => s.codec_type === "video");
    assert.deepStrictEqual([p1.width, p2.width], [320, 640]);
    for (const f of [first.file, second.file]) {
      const d = Number(probe(build.ffprobe, f).format.duration);
      assert.ok(d > 2 && d < 4, `${path.basename(f)} plays ${d} s`);
    }
  });

  it("ffmpeg killed mid-recording: its part closes (error) and the recording carries on in a new part", async () => {
    const build = ffmpegBuilds()[0];
    const pieces = source(build.ffmpeg, path.join(tmp, "k.mp4"), "320x240", 9);
    const dir = path.join(tmp, "rec");
    await helper.load(transcode, [
      recorderConfig({ directory: dir, preRoll: 1, ffmpegPath: build.ffmpeg }),
      { id: "out", type: "helper" },
    ]);
    const rec = helper.getNode("rec");
    const messages = [];
    const errors = [];
    helper.getNode("out").on("input", (m) => messages.push(m));
    rec.on("call:error", (c) => errors.push(String(c.args[0])));
    await wait(300);
    let sent = 0;
    let killed;
    await feed(rec, pieces, 1, "cam", (p) => {
      if (p.type !== "fragment") return;
      if (sent === 0) rec.receive({ action: "start", duration: 60 });
      sent += p.info.durationSec;
      if (sent >= 3 && !killed) {
        const rows = execFileSync("ps", ["-e", "-o", "pid=,args="], { encoding: "utf8" }).split("\n");
        const row = rows.find((r) => r.includes("pipe:0") && r.includes("-c copy") && r.includes(dir));
        assert.ok(row, "the copy recorder's ffmpeg runs");
        killed = Number(row.trim().split(/\s+/)[0]);
        process.kill(killed, "SIGKILL");
      }
    });
    rec.receive({ action: "stop" });
    await until(() => messages.length >= 2, 20000, "two msg.recording");
    const [first, second] = messages.map((m) => m.recording);
    assert.strictEqual(first.reason, "error", "the killed part closes with reason error");
    assert.match(first.error, /killed by SIGKILL/);
    assert.ok(
      errors.some((e) => /killed by SIGKILL/.test(e)),
      `the node said so: ${errors.join(" / ")}`,
    );
    assert.notStrictEqual(first.file, second.file, "a new part, a new file");
    assert.strictEqual(second.reason, "stop");
    assert.ok(
      second.start <= first.end + 1500,
      `no gap: part 1 ends ${first.end}, part 2 starts ${second.start}`,
    );
    for (const f of [first.file, second.file]) {
      const d = Number(probe(build.ffprobe, f).format.duration);
      assert.ok(d > 1.5, `${path.basename(f)} plays ${d} s`);
      assert.strictEqual(firstFrameKey(build.ffprobe, f), "1", `${path.basename(f)} starts on a keyframe`);
    }
    const d2 = Number(probe(build.ffprobe, second.file).format.duration);
    assert.ok(d2 > 4, `the continuation plays ${d2} s of the remaining ~6 s`);
  });

  for (const preset of ["fmp4", "hls"]) {
    it(`${preset} with compressed input passes msg.mp4 through (same codec, renumbered seq, no ffmpeg)`, async () => {
      const build = ffmpegBuilds()[0];
      const pieces = source(build.ffmpeg, path.join(tmp, "s.mp4"), "320x240", 2);
      await helper.load(transcode, [
        { id: "t", type: "ffmpeg-transcode", preset, wires: [["out"]], ffmpegPath: build.ffmpeg },
        { id: "out", type: "helper" },
      ]);
      const t = helper.getNode("t");
      const got = [];
      helper.getNode("out").on("input", (m) => got.push(m));
      await wait(300);
      await feed(t, pieces, 7, "cam", () => {});
      await until(() => got.length === pieces.length, 5000, "every piece out");
      assert.strictEqual(got[0].mp4.type, "init");
      assert.ok(got[0].payload.equals(pieces[0].data), "the init is the camera's own");
      assert.ok(got.slice(1).every((m, i) => m.mp4.seq === i && m.payload.equals(pieces[i + 1].data)));
      assert.ok(got.every((m) => m.mp4.initId === 7 && /^avc1/.test(m.mp4.codec)));
      assert.ok(!descendants().some((c) => /ffmpeg.*pipe:0/.test(c)), "no transcode ffmpeg runs");
    });
  }
});
