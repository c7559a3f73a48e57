"use strict";
// h264-sps: size, profile and level read from the SPS of real ffmpeg output (avcC in the init and in-band
// before each IDR), cropping included (1080 lines are coded as 1088); damaged input gives undefined, never
// a throw; spsChanged looks at size and profile only.
const assert = require("assert");
const { execFileSync } = require("child_process");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { parseH264Sps, parseH265Sps, sampleSps, spsChanged } = require("../dist/nodes/lib/codec/h264-sps");
const { ffmpegBuilds } = require("./lib/toolkit");

const ffmpeg = ffmpegBuilds()[0].ffmpeg;

/** fMP4 of 1 s of H.264 with the SPS repeated in-band (dump_extra), split. */
function clip(size, profile) {
  const out = execFileSync(ffmpeg, [
    ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", `testsrc=size=${size}:rate=10`, "-t", "1"],
    ...["-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile, "-pix_fmt", "yuv420p", "-g", "5"],
    ...["-bsf:v", "dump_extra", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"],
  ]);
  const got = { inits: [], keyframes: [] };
  new Mp4FragmentSplitter({
    init: (d, info) => got.inits.push(info),
    fragment: (d, info) => info.keyframe && got.keyframes.push(info),
  }).push(out);
  return got;
}

describe("h264-sps: size and profile from H.264 parameter sets", function () {
  this.timeout(30000);

  for (const [size, profile, idc] of [
    ["320x240", "baseline", 66],
    ["1920x1080", "high", 100],
    ["642x362", "main", 77],
  ]) {
    it(`${size} ${profile}: the init's SPS and the in-band one agree with the picture`, () => {
      const [w, hgt] = size.split("x").map(Number);
      const { inits, keyframes } = clip(size, profile);
      assert.strictEqual(inits.length, 1);
      assert.deepStrictEqual(
        [inits[0].sps.width, inits[0].sps.height, inits[0].sps.profile],
        [w, hgt, idc],
        "from avcC",
      );
      assert.ok(keyframes.length >= 2, "keyframe fragments");
      for (const k of keyframes) {
        assert.ok(k.sps, "an in-band SPS before each IDR");
        assert.strictEqual(spsChanged(inits[0].sps, k.sps), false);
      }
    });
  }

  for (const [size, idc] of [
    ["320x240", 1],
    ["642x362", 1],
  ]) {
    it(`H.265 ${size}: the init's SPS (hvcC) and the in-band one (repeat-headers) agree with the picture`, () => {
      const [w, hgt] = size.split("x").map(Number);
      const out = execFileSync(ffmpeg, [
        ...[
          "-hide_banner",
          "-loglevel",
          "error",
          "-f",
          "lavfi",
          "-i",
          `testsrc=size=${size}:rate=10`,
          "-t",
          "1",
        ],
        ...["-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1"],
        ...["-x265-params", "keyint=5:repeat-headers=1:log-level=error"],
        ...["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"],
      ]);
      const inits = [];
      const keyframes = [];
      new Mp4FragmentSplitter({
        init: (d, info) => inits.push(info),
        fragment: (d, info) => info.keyframe && keyframes.push(info),
      }).push(out);
      assert.strictEqual(inits.length, 1);
      const sps = inits[0].sps;
      assert.deepStrictEqual(
        [sps.width, sps.height, sps.profile, sps.codec],
        [w, hgt, idc, "h265"],
        "from hvcC",
      );
      assert.ok(keyframes.length >= 2, "keyframe fragments");
      for (const k of keyframes) {
        assert.ok(k.sps, "an in-band SPS before each IRAP picture");
        assert.strictEqual(spsChanged(sps, k.sps), false, JSON.stringify([sps, k.sps]));
      }
      // Another size is a change; the same numbers from H.264 are one too.
      assert.strictEqual(spsChanged(sps, { ...sps, width: sps.width * 2 }), true);
      assert.strictEqual(spsChanged(sps, { ...sps, codec: undefined }), true);
    });
  }

  it("damaged input: undefined, never a throw", () => {
    assert.strictEqual(parseH264Sps(Buffer.from([0x67])), undefined);
    assert.strictEqual(parseH264Sps(Buffer.from([0x65, 1, 2, 3, 4])), undefined, "not an SPS");
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(4 + (i % 40));
      for (let k = 0; k < b.length; k++) b[k] = (i * 31 + k * 17) & 0xff;
      b[0] = 0x67;
      parseH264Sps(b);
      sampleSps(b, 4);
      b[0] = 33 << 1;
      parseH265Sps(b);
      sampleSps(b, 4, true);
    }
    assert.strictEqual(sampleSps(Buffer.from([0, 0, 0, 9, 0x67])), undefined, "NAL longer than the sample");
  });

  it("spsChanged: size or profile, not level", () => {
    const a = { width: 640, height: 360, profile: 100, level: 30 };
    assert.strictEqual(spsChanged(a, { ...a, level: 31 }), false);
    assert.strictEqual(spsChanged(a, { ...a, width: 1280 }), true);
    assert.strictEqual(spsChanged(a, { ...a, profile: 77 }), true);
  });
});

describe("Mp4FragmentSplitter: any chunking gives the same pieces", function () {
  this.timeout(30000);
  it("1-byte, 7-byte, random and whole-file chunks split alike (one buffer per fragment, in order)", () => {
    const file = execFileSync(ffmpeg, [
      ...["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"],
      ...["-f", "lavfi", "-i", "sine=f=440:sample_rate=44100", "-t", "2", "-c:v", "libx264"],
      ...["-preset", "ultrafast", "-g", "15", "-c:a", "aac", "-frag_duration", "250000"],
      ...["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", "-"],
    ]);
    const split = (sizes) => {
      const pieces = [];
      const s = new Mp4FragmentSplitter({
        init: (d, info) => pieces.push(["init", Buffer.from(d), info.codec]),
        fragment: (d, info) => pieces.push(["fragment", Buffer.from(d), info.keyframe, info.startSec]),
      });
      let pos = 0;
      let k = 0;
      while (pos < file.length) {
        const n = sizes(k++);
        s.push(file.subarray(pos, pos + n));
        pos += n;
      }
      return pieces;
    };
    const whole = split(() => file.length);
    assert.ok(whole.length > 8, "init and fragments");
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 5000;
    for (const sizes of [() => 1, () => 7, () => 1 + random(), () => 65536]) {
      const got = split(sizes);
      assert.strictEqual(got.length, whole.length);
      got.forEach((p, i) => assert.deepStrictEqual(p, whole[i], `piece ${i}`));
    }
  });
});

describe("ffmpeg source: an in-band SPS change restarts ffmpeg, never in a loop", function () {
  this.timeout(60000);
  for (const codec of ["h264", "hevc"]) {
    it(`${codec === "hevc" ? "H.265" : "H.264"}: a file whose SPS switches 320x240 -> 640x360: one restart; the restart brings the old init back, so no more`, async () => {
      const { FfmpegSource } = require("../dist/nodes/lib/sources/ffmpeg-source");
      const fs = require("fs");
      const os = require("os");
      const path = require("path");
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-sps-"));
      const part = (size, seconds, file) =>
        execFileSync(ffmpeg, [
          ...[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            `testsrc=size=${size}:rate=15`,
            "-t",
            String(seconds),
          ],
          ...(codec === "hevc"
            ? [
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=15:repeat-headers=1:log-level=error",
              ]
            : ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-bsf:v", "dump_extra"]),
          ...["-pix_fmt", "yuv420p", path.join(tmp, file)],
        ]);
      part("320x240", 2, "a.mkv");
      part("640x360", 3, "b.mkv");
      // One Matroska file of both (the concat demuxer copies the packets, each part's parameter sets in-band;
      // the header keeps the first part's): 320x240 for 2 s, then 640x360. Not MPEG-TS, which the bundled
      // ffprobe (N-66595 static) cannot read (the source's probe falls back to ffmpeg's banner, but this test
      // is about the SPS).
      const list = path.join(tmp, "list.txt");
      fs.writeFileSync(list, ["a.mkv", "b.mkv"].map((f) => `file '${path.join(tmp, f)}'`).join("\n") + "\n");
      const file = path.join(tmp, "ab.mkv");
      execFileSync(ffmpeg, [
        "-v",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list,
        "-c",
        "copy",
        file,
      ]);
      // The file plays looped at its real speed: 320x240 for 2 s, then 640x360 in-band, again and again.
      const source = new FfmpegSource({
        name: "c",
        url: file,
        fps: 0,
        maxFrameBytes: 4 << 20,
        ffmpegPath: ffmpeg,
        options: { video: "copy", loop: true },
      });
      const inits = [];
      const warnings = [];
      let closed;
      source.on("init", (i) => inits.push(i));
      source.on("warning", (w) => warnings.push(w.message));
      source.on("close", (e) => (closed = e));
      source.start();
      try {
        const until = async (test, ms) => {
          const end = Date.now() + ms;
          while (!test() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
          return test();
        };
        assert.ok(await until(() => source.spsRestarts === 1, 20000), "restarted for the new SPS");
        assert.ok(await until(() => inits.length >= 2, 10000), "a new init after the restart");
        // The restarted ffmpeg reads the file from its start: the init is 320x240 again, not what the restart was for.
        assert.ok(
          await until(() => warnings.some((w) => /still announces/.test(w)), 10000),
          `said once that the restart did not help: ${warnings.join(" / ")}`,
        );
        // More loops (640x360 in-band every 5 s, also more than 10 s after the restart): no more restarts.
        await new Promise((r) => setTimeout(r, 14000));
        assert.strictEqual(source.spsRestarts, 1, "no restart loop");
        assert.strictEqual(closed, undefined, "the source never failed");
        assert.ok(warnings.filter((w) => /restarting ffmpeg/.test(w)).length === 1, warnings.join(" / "));
      } finally {
        source.stop();
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
  }
});
