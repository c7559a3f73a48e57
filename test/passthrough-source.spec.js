"use strict";
// ffprobe on PATH, else the bundled one (the bare CI run hides /usr/bin/ffprobe).
const FFPROBE = require("../dist/nodes/lib/ffmpeg").resolveFfprobePath();
// Compressed video passed through by the ffmpeg source and Camera: real ffmpeg, real clips, real processes.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { Camera } = require("../dist/nodes/lib/camera/camera");
const { createSource } = require("../dist/nodes/lib/sources");
const { cameraOptions } = require("../dist/nodes/lib/camera/options");
const { FfmpegSource } = require("../dist/nodes/lib/sources/ffmpeg-source");
const { planVideo } = require("../dist/nodes/lib/sources/ffmpeg-copy");
const { Mp4FragmentSplitter, hevcCodecString } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { FFMPEG, processes, until, wait, waitGone, alive } = require("./lib/toolkit");

/** The codec, size and stream kinds of a file by ffprobe. */
function ffprobe(file) {
  const out = execFileSync(FFPROBE, ["-v", "error", "-print_format", "json", "-show_streams", file]);
  return JSON.parse(String(out)).streams;
}

/** Every process below `pid`, with its command line. */
function tree(pid) {
  const all = processes();
  const out = [];
  const walk = (p) => {
    for (const c of all.filter((x) => x.ppid === p)) {
      out.push({ ...c, cmd: c.cmd.join(" ") });
      walk(c.pid);
    }
  };
  walk(pid);
  return out;
}

/** The video stream of a file as camrelay's probe reads it (ffprobe, or ffmpeg's banner where it crashes). */
async function sourceVideo(file) {
  const { probeMedia } = require("../dist/nodes/lib/ffmpeg");
  const v = (await probeMedia(file)).streams.find((s) => s.codecType === "video");
  return { codec_name: v.codecName, profile: v.profile, width: v.width };
}

function cameraFor(url, settings = {}) {
  const options = cameraOptions({ protocol: "ffmpeg", url, name: "clip", ...settings }, {});
  options.options.loop = true;
  options.lingerMs = 0;
  return new Camera(options, createSource);
}

describe("compressed video passthrough: source and Camera", function () {
  this.timeout(60000);
  let tmp;
  let h264;
  let h265;
  let alaw;
  let ts;

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-pass-"));
    h264 = path.join(tmp, "h264aac.mp4");
    h265 = path.join(tmp, "h265.mp4");
    alaw = path.join(tmp, "h264alaw.mkv");
    const src = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"];
    const tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000"];
    const x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p"];
    execFileSync(FFMPEG, ["-v", "error", "-y", ...src, ...tone, "-t", "4", ...x264, "-c:a", "aac", h264]);
    // MPEG-TS: AAC comes as ADTS (the mp4 muxer refuses it unless filtered), and the bundled ffprobe dies of
    // SIGSEGV on it (the probe then reads ffmpeg's banner).
    ts = path.join(tmp, "h264aac.ts");
    execFileSync(FFMPEG, ["-v", "error", "-y", ...src, ...tone, "-t", "4", ...x264, "-c:a", "aac", ts]);
    execFileSync(FFMPEG, [
      "-v",
      "error",
      "-y",
      ...src,
      ...tone,
      "-t",
      "4",
      ...x264,
      "-c:a",
      "pcm_alaw",
      alaw,
    ]);
    execFileSync(FFMPEG, [
      ...["-v", "error", "-y", ...src, "-t", "4", "-c:v", "libx265", "-preset", "ultrafast"],
      ...["-x265-params", "keyint=15:log-level=error", "-pix_fmt", "yuv420p", h265],
    ]);
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("plans copy for H.264/H.265, JPEG for the rest in auto, an error in words for copy", function () {
    const media = (video, audio) => ({
      streams: [
        { codecType: "video", codecName: video },
        ...(audio ? [{ codecType: "audio", codecName: audio }] : []),
      ],
    });
    assert.deepStrictEqual(planVideo("auto", true, media("h264", "aac")).audio, "copy");
    assert.strictEqual(planVideo("auto", true, media("hevc", "pcm_alaw")).audio, "aac");
    assert.strictEqual(planVideo("auto", false, media("h264", "aac")).audio, "none");
    assert.strictEqual(planVideo("auto", true, media("mjpeg")).pipeline, "jpeg");
    assert.throws(
      () => planVideo("copy", true, media("mjpeg")),
      /mjpeg video, which cannot be passed through/,
    );
  });

  it("reads the full hvcC codec string", function () {
    // general_profile_space 0, tier main, profile 1, compatibility 0x60000000, constraints B0, level 93.
    const hvcc = Buffer.from([1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93]);
    assert.strictEqual(hevcCodecString("hvc1", hvcc, 0, hvcc.length), "hvc1.1.6.L93.B0");
  });

  for (const [name, file, codecRe, audio] of [
    ["H.264 + AAC", () => h264, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, "aac"],
    ["H.265", () => h265, /^hvc1\.1\.6\.L\d+(\.[0-9A-F]{2})*$/, undefined],
    ["H.264 + G.711 (converted to AAC)", () => alaw, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, "aac"],
    ["H.264 + AAC in MPEG-TS", () => ts, /^avc1\.[0-9a-f]{6},mp4a\.40\.2$/, "aac"],
  ]) {
    it(`copies ${name}: init + fragments that match the clip, no encoder in the process tree`, async function () {
      const camera = cameraFor(file());
      const inits = [];
      const fragments = [];
      camera.on("init", (i) => inits.push(i));
      camera.on("fragment", (f) => fragments.push(f));
      camera.addUser("viewer", { jpeg: false });
      try {
        await until(() => fragments.filter((f) => f.keyframe).length >= 3, 20000);
        const ffmpegs = tree(process.pid).filter((p) => /ffmpeg/.test(p.cmd));
        assert.ok(ffmpegs.length >= 1, "an ffmpeg runs");
        for (const p of ffmpegs) {
          assert.ok(!/libx26[45]|mjpeg/.test(p.cmd), `no encoder: ${p.cmd}`);
          assert.match(p.cmd, /-c:v copy/);
        }
        assert.strictEqual(inits.length, 1);
        assert.match(inits[0].codec, codecRe);
        assert.strictEqual(inits[0].width, 320);
        assert.strictEqual(inits[0].height, 240);
        assert.strictEqual(inits[0].initId, 1);
        assert.ok(fragments[0].keyframe, "the first fragment starts on a keyframe");
        fragments.forEach((f, i) => assert.strictEqual(f.seq, i + 1));
        assert.ok(fragments.every((f) => f.initId === 1 && f.time > 0 && f.duration > 0 && f.duration < 1.5));
        assert.strictEqual(camera.decoderPid, undefined, "no decoder without a JPEG user");
        assert.strictEqual(camera.latest, undefined);
        assert.ok(camera.stats.fragmentsIn >= fragments.length && camera.stats.fragmentBytes > 0);
        // What came out is the clip's video: ffprobe reads the same codec and size.
        const out = path.join(tmp, `out-${path.basename(file())}.mp4`);
        fs.writeFileSync(out, Buffer.concat([inits[0].data, ...fragments.map((f) => f.data)]));
        const streams = ffprobe(out);
        const source = file().endsWith(".ts")
          ? await sourceVideo(file())
          : ffprobe(file()).find((s) => s.codec_type === "video");
        const video = streams.find((s) => s.codec_type === "video");
        assert.strictEqual(video.codec_name, source.codec_name);
        assert.strictEqual(video.profile, source.profile);
        assert.strictEqual(video.width, 320);
        const sound = streams.find((s) => s.codec_type === "audio");
        assert.strictEqual(sound && sound.codec_name, audio);
        // The GOP cache starts at a keyframe and holds only the fragments since it.
        const gop = camera.gop();
        assert.strictEqual(gop.init, inits[0]);
        assert.ok(gop.fragments[0].keyframe);
        assert.ok(gop.fragments.slice(1).every((f) => !f.keyframe));
      } finally {
        camera.close();
      }
    });
  }

  it("audio off leaves the audio track out", async function () {
    const camera = cameraFor(h264, { audio: false });
    let init;
    camera.on("init", (i) => (init = i));
    camera.addUser("v", { jpeg: false });
    try {
      await until(() => init, 15000);
      assert.match(init.codec, /^avc1\.[0-9a-f]{6}$/);
    } finally {
      camera.close();
    }
  });

  it("runs a JPEG decoder only while a JPEG user is there, at the capped rate", async function () {
    const camera = cameraFor(h264);
    const frames = [];
    camera.on("frame", (f) => frames.push(f));
    camera.addUser("video", { jpeg: false });
    try {
      await until(() => camera.gop(), 15000);
      await wait(500);
      assert.strictEqual(camera.decoderPid, undefined);
      assert.strictEqual(frames.length, 0);
      camera.addUser("jpeg", { fps: 5 });
      await until(() => camera.decoderPid, 10000);
      const pid = camera.decoderPid;
      await until(() => frames.length >= 8, 15000);
      assert.strictEqual(frames[0].width, 320);
      assert.strictEqual(frames[0].data[0], 0xff);
      assert.ok(frames.every((f, i) => i === 0 || f.seq === frames[i - 1].seq + 1));
      camera.removeUser("jpeg");
      await waitGone(pid, 5000);
      assert.ok(!alive(pid), "the decoder ends with the last JPEG user");
      assert.strictEqual(camera.decoderPid, undefined);
      const n = frames.length;
      await wait(1000);
      assert.ok(frames.length <= n + 1, "no more JPEG once nobody wants it");
      // A snapshot still works on the video-only camera: the cached keyframe, decoded once.
      const snap = await camera.snapshot();
      assert.strictEqual(snap.width, 320);
      assert.strictEqual(snap.data[0], 0xff);
      assert.strictEqual(await camera.snapshot(), snap, "cached about a second");
    } finally {
      camera.close();
    }
  });

  it("old callers' addUser(id) still means JPEG", async function () {
    const camera = cameraFor(h265);
    const frames = [];
    camera.on("frame", (f) => frames.push(f));
    camera.addUser("legacy");
    try {
      await until(() => frames.length >= 3, 20000);
      assert.ok(camera.decoderPid);
    } finally {
      const pid = camera.decoderPid;
      camera.close();
      if (pid) await waitGone(pid, 5000);
    }
  });

  it("falls back to JPEG for a non-H.264/H.265 camera in auto, and fails in words in copy", async function () {
    const mjpeg = path.join(tmp, "mjpeg.avi");
    execFileSync(FFMPEG, [
      ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=10", "-t", "2"],
      ...["-c:v", "mjpeg", mjpeg],
    ]);
    const auto = cameraFor(mjpeg);
    const frames = [];
    auto.on("frame", (f) => frames.push(f));
    auto.addUser("v");
    try {
      await until(() => frames.length >= 3, 15000);
      assert.strictEqual(auto.gop(), undefined);
    } finally {
      auto.close();
    }
    const copy = cameraFor(mjpeg, { video: "copy" });
    let failed;
    copy.on("state", (s) => s.state === "failed" && (failed = s));
    copy.addUser("v");
    try {
      await until(() => failed, 15000);
      assert.match(failed.error, /mjpeg video, which cannot be passed through/);
    } finally {
      copy.close();
    }
  });

  it("video jpeg keeps today's pipeline exactly", async function () {
    const source = new FfmpegSource({
      name: "c",
      url: h264,
      fps: 0,
      maxFrameBytes: 4 << 20,
      options: { video: "jpeg" },
    });
    const args = await source.buildArgs(FFMPEG);
    assert.ok(args.includes("image2pipe") && args.includes("-an"));
    assert.ok(!args.includes("copy"));
  });

  it("keeps the initId for the same init after a restart, and counts a new one for a new stream", async function () {
    const live = path.join(tmp, "live.mp4");
    fs.copyFileSync(h264, live);
    const camera = cameraFor(live);
    camera.options.options.loop = false; // the file ends: the camera reconnects to the same input
    camera.options.backoffFirstMs = 100;
    const inits = [];
    camera.on("init", (i) => inits.push(i));
    camera.addUser("v", { jpeg: false });
    try {
      await until(() => inits.length >= 2, 30000);
      assert.strictEqual(inits[1].initId, inits[0].initId, "same init bytes keep the id");
      // The camera now sends another stream (another size): a new init with a new id.
      execFileSync(FFMPEG, [
        ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=15", "-t", "3"],
        ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", live + ".tmp.mp4"],
      ]);
      fs.renameSync(live + ".tmp.mp4", live);
      await until(() => inits.some((i) => i.width === 640), 30000);
      const next = inits.find((i) => i.width === 640);
      assert.ok(next.initId > inits[0].initId);
      assert.strictEqual(next.height, 360);
    } finally {
      camera.close();
    }
  });

  it("a fragment a picture: audio-only fragments ride with the next picture, so GOPs stay whole", function () {
    // The copying ffmpeg's own output settings, with AAC: ffmpeg cuts a fragment at every packet.
    const clip = path.join(os.tmpdir(), `camrelay-av-${process.pid}.ts`);
    execFileSync(FFMPEG, [
      ...["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"],
      ...["-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "3"],
      ...["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac", clip],
    ]);
    const plan = planVideo("auto", true, {
      streams: [
        { codecType: "video", codecName: "h264" },
        { codecType: "audio", codecName: "aac" },
      ],
    });
    const { copyOutputArgs } = require("../dist/nodes/lib/sources/ffmpeg-copy");
    const out = execFileSync(FFMPEG, ["-v", "error", "-i", clip, ...copyOutputArgs(plan)], {
      maxBuffer: 64 << 20,
    });
    fs.rmSync(clip, { force: true });
    const moofs = (b) => {
      let n = 0;
      for (let at = 0; at + 8 <= b.length; at += b.readUInt32BE(at))
        n += b.toString("latin1", at + 4, at + 8) === "moof";
      return n;
    };
    const fragments = [];
    new Mp4FragmentSplitter({
      init: () => {},
      fragment: (data, info) => fragments.push({ data, ...info }),
    }).push(out);
    assert.strictEqual(fragments.length, 45, "one fragment a picture: 3 s at 15 fps");
    assert.deepStrictEqual(
      fragments.flatMap((f, i) => (f.keyframe ? [i] : [])),
      [0, 15, 30],
      "keyframes only where the GOPs start",
    );
    assert.ok(
      fragments.every((f) => Math.abs(f.durationSec - 1 / 15) < 0.03),
      "each a picture long",
    );
    const total = fragments.reduce((n, f) => n + moofs(f.data), 0);
    assert.ok(total > 45 + 60, `${total} moofs: the audio ones travel inside the pictures' fragments`);
    // Every sample arrives: the audio samples parsed from the fragments cover the 3 s.
    const { parseInitTracks, parseFragmentSamples } = require("../dist/nodes/lib/codec/mp4-samples");
    const initEnd = out.indexOf("moof", 0, "latin1") - 4;
    const tracks = parseInitTracks(out.subarray(0, initEnd));
    const audioId = tracks.tracks.find((t) => t.kind === "audio" || t.handler === "soun")?.id;
    const samples = fragments.flatMap((f) => parseFragmentSamples(f.data, tracks));
    const audioSamples = samples.filter((x) => x.trackId === audioId).length;
    assert.ok(audioSamples >= 125, `${audioSamples} AAC frames of 1024 samples in 3 s at 44.1 kHz`);
  });

  it("groups the pictures into ~0.25 s units while no live viewer wants them one by one", async function () {
    const { GROUP_SECONDS } = require("../dist/nodes/lib/camera/camera");
    const camera = cameraFor(h264);
    let live = false;
    camera.liveWanted = () => live;
    const units = [];
    camera.on("fragment", (f) => units.push({ ...f, liveAtEmit: live }));
    camera.addUser("viewer", { jpeg: false });
    try {
      await until(() => units.filter((f) => f.keyframe).length >= 3, 20000);
      const grouped = units.slice(0, -1); // the newest may be a unit cut short by a keyframe
      for (const u of grouped) {
        assert.ok(u.duration <= GROUP_SECONDS + 1 / 15 + 0.01, `a unit of ${u.duration} s`);
        assert.ok(u.frames >= 1 && u.frames <= 4, `${u.frames} pictures`);
      }
      assert.ok(
        units.some((u) => u.frames >= 3),
        "pictures are grouped",
      );
      // A keyframe always starts a unit: 15 pictures a GOP = 4 + 4 + 4 + 3 (the first GOP of the file starts
      // with a longer first picture, so the second GOP is the one to count).
      const keyAt = units.flatMap((u, i) => (u.keyframe ? [i] : []));
      const shape = units.map((u) => `${u.keyframe ? "K" : ""}${u.frames}`).join(" ");
      assert.ok(keyAt.length >= 3 && keyAt[2] - keyAt[1] === 4, `keyframe units at ${keyAt}: ${shape}`);
      assert.strictEqual(
        units.slice(keyAt[1], keyAt[2]).reduce((n, u) => n + u.frames, 0),
        15,
        `a GOP's pictures, all of them: ${shape}`,
      );
      assert.ok(camera.stats.fragmentsIn >= units.reduce((n, u) => n + u.frames, 0) - 4);
      units.forEach(
        (u, i) => i > 0 && assert.strictEqual(u.seq, units[i - 1].seq + 1, "seq numbers the units"),
      );
      // A live viewer comes: from the next picture on, one unit a picture.
      live = true;
      const from = units.length;
      await until(() => units.length >= from + 10, 10000);
      assert.ok(
        units.slice(from + 1).every((u) => u.frames === 1),
        "a unit a picture while wanted",
      );
    } finally {
      camera.close();
    }
  });

  it("a damaged stream is reported, never thrown", function () {
    const problems = [];
    const s = new Mp4FragmentSplitter(
      { init: () => {}, fragment: () => {}, problem: (m) => problems.push(m) },
      { maxBoxBytes: 1024 },
    );
    const big = Buffer.alloc(16);
    big.writeUInt32BE(4096, 0);
    big.write("mdat", 4, "latin1");
    s.push(big);
    assert.match(problems[0], /unexpected MP4 box size 4096/);
  });
});
