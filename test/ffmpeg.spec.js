"use strict";
const assert = require("assert");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const fc = require("fast-check");
const {
  resolveFfmpegPath,
  resolveFfprobePath,
  findBinary,
  parseProgressLine,
  FfmpegProcess,
  listEncoders,
  probeMedia,
  rtspTimeoutOption,
} = require("../dist/nodes/lib/ffmpeg");
const { probeFromFfmpegBanner } = require("../dist/nodes/lib/ffmpeg/probe");

const { FFMPEG: BUNDLED, alive, writeScript } = require("./lib/transcode-helpers");
const { wait, ffmpegBuilds } = require("./lib/toolkit");

describe("ffmpeg wrapper", function () {
  let tmp;
  const savedEnv = {};
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ffmpeg-"));
    for (const k of ["FFMPEG_PATH", "FFPROBE_PATH", "PATH"]) savedEnv[k] = process.env[k];
  });
  afterEach(function () {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe("binary lookup", function () {
    it("uses the bundled binary when nothing else is configured", function () {
      delete process.env.FFMPEG_PATH;
      process.env.PATH = tmp;
      assert.strictEqual(resolveFfmpegPath(), BUNDLED);
      assert.strictEqual(resolveFfprobePath(), require("@ffprobe-installer/ffprobe").path);
      fs.accessSync(BUNDLED, fs.constants.X_OK);
    });

    it("prefers ffmpeg on PATH over the bundled one", function () {
      delete process.env.FFMPEG_PATH;
      const fake = writeScript(tmp, "ffmpeg", "exit 0");
      process.env.PATH = `${path.join(tmp, "nothing")}${path.delimiter}${tmp}`;
      assert.strictEqual(resolveFfmpegPath(), fake);
    });

    it("prefers FFMPEG_PATH over PATH, and the setting over FFMPEG_PATH", function () {
      writeScript(tmp, "ffmpeg", "exit 0");
      const fromEnv = writeScript(tmp, "ffmpeg-env", "exit 0");
      const fromSetting = writeScript(tmp, "ffmpeg-setting", "exit 0");
      process.env.PATH = tmp;
      process.env.FFMPEG_PATH = fromEnv;
      assert.strictEqual(resolveFfmpegPath(), fromEnv);
      assert.strictEqual(resolveFfmpegPath(fromSetting), fromSetting);
      assert.strictEqual(resolveFfmpegPath("  "), fromEnv, "a blank setting is no setting");
      // A bare name in the setting is looked up on PATH.
      assert.strictEqual(resolveFfmpegPath("ffmpeg-setting"), fromSetting);
    });

    it("says clearly when a configured binary does not exist", function () {
      process.env.FFMPEG_PATH = path.join(tmp, "no-such-ffmpeg");
      assert.throws(
        () => resolveFfmpegPath(),
        /ffmpeg not found at ".*no-such-ffmpeg" \(environment variable FFMPEG_PATH\)/,
      );
      assert.throws(
        () => resolveFfmpegPath("/nope/ffmpeg"),
        /ffmpeg not found at "\/nope\/ffmpeg" \(the node's ffmpeg setting\)/,
      );
    });

    it("says how to fix it when no binary is found anywhere", function () {
      assert.throws(
        () =>
          findBinary({
            name: "ffmpeg",
            envVar: "FFMPEG_PATH",
            bundledPackage: "@camrelay/no-such-package",
            env: { PATH: tmp },
          }),
        (err) => {
          assert.match(err.message, /^ffmpeg was not found: /);
          assert.match(err.message, /FFMPEG_PATH/);
          assert.match(err.message, /PATH/);
          assert.match(err.message, /@camrelay\/no-such-package/);
          return true;
        },
      );
    });

    it("makes a bundled binary executable when npm skipped its install script", function () {
      const bin = path.join(tmp, "bundled-ffmpeg");
      fs.writeFileSync(bin, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
      const pkg = path.join(tmp, "pkg.js");
      fs.writeFileSync(pkg, `module.exports = { path: ${JSON.stringify(bin)} };`);
      const found = findBinary({
        name: "ffmpeg",
        envVar: "FFMPEG_PATH",
        bundledPackage: pkg,
        env: { PATH: tmp },
      });
      assert.strictEqual(found, bin);
      assert.ok(fs.statSync(bin).mode & 0o100, "user x bit set");
    });
  });

  describe("parseProgressLine", function () {
    it("reads a classic stats line", function () {
      const p = parseProgressLine(
        "frame=  123 fps= 10 q=28.0 size=     512kB time=00:01:02.30 bitrate=1234.5kbits/s dup=0 drop=3 speed=1.01x",
      );
      assert.deepStrictEqual(p, { frame: 123, fps: 10, outTimeMs: 62300, kbps: 1234.5, speed: 1.01 });
    });

    it("reads -progress key=value lines", function () {
      assert.deepStrictEqual(parseProgressLine("frame=42"), { frame: 42 });
      assert.deepStrictEqual(parseProgressLine("fps=9.87"), { fps: 9.87 });
      assert.deepStrictEqual(parseProgressLine("bitrate= 800.0kbits/s"), { kbps: 800 });
      assert.deepStrictEqual(parseProgressLine("out_time_us=4200000"), { outTimeMs: 4200 });
      assert.deepStrictEqual(parseProgressLine("out_time_ms=4200000"), { outTimeMs: 4200 });
      assert.deepStrictEqual(parseProgressLine("out_time=00:00:04.200000"), { outTimeMs: 4200 });
      assert.deepStrictEqual(parseProgressLine("speed=   1x"), { speed: 1 });
      assert.deepStrictEqual(parseProgressLine("bitrate=N/A"), {});
    });

    it("ignores everything else and never throws", function () {
      for (const line of [
        "",
        "Input #0, lavfi, from 'testsrc2':",
        "[tcp @ 0x1] Connection to tcp://127.0.0.1:1?timeout=5 failed",
        "Stream mapping: fps=",
        "frame=",
        "x".repeat(5000),
        "speed=fastx time=aa:bb",
      ]) {
        const p = parseProgressLine(line);
        assert.ok(p === undefined || typeof p === "object");
      }
      assert.strictEqual(
        parseProgressLine("[rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized"),
        undefined,
      );
      fc.assert(
        fc.property(fc.string({ maxLength: 200 }), (s) => {
          const p = parseProgressLine(s);
          if (p) for (const v of Object.values(p)) assert.ok(Number.isFinite(v));
        }),
        { numRuns: 3000 },
      );
      assert.strictEqual(parseProgressLine(undefined), undefined);
    });
  });

  describe("FfmpegProcess", function () {
    this.timeout(20000);

    it("reports progress, exit code and a redacted command line from a real ffmpeg", async function () {
      const proc = new FfmpegProcess({
        ffmpegPath: BUNDLED,
        args: [
          "-hide_banner",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=160x120:rate=10",
          "-t",
          "2",
          "-f",
          "null",
          "-",
        ],
      });
      const progress = [];
      proc.on("progress", (p) => progress.push(p));
      const spawned = new Promise((resolve) => proc.on("spawn", resolve));
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.start();
      await spawned;
      assert.ok(proc.pid > 0);
      const { code, signal } = await exited;
      assert.strictEqual(code, 0);
      assert.strictEqual(signal, null);
      assert.ok(progress.length >= 1, "at least the final stats line");
      const last = progress[progress.length - 1];
      assert.strictEqual(last.frame, 20);
      assert.ok(Math.abs(last.outTimeMs - 2000) <= 200, `out time ${last.outTimeMs}`);
      assert.ok(!proc.lastStderr().some((l) => l.startsWith("frame=")), "progress lines stay out of stderr");
    });

    it("aggregates -progress blocks into one event each", async function () {
      const proc = new FfmpegProcess({
        ffmpegPath: BUNDLED,
        args: [
          "-hide_banner",
          "-nostats",
          "-progress",
          "pipe:2",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=160x120:rate=10",
        ].concat(["-t", "1", "-f", "null", "-"]),
      });
      const progress = [];
      proc.on("progress", (p) => progress.push(p));
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.start();
      await exited;
      assert.ok(progress.length >= 1);
      assert.strictEqual(progress[progress.length - 1].frame, 10);
    });

    it("keeps credentials out of stderr lines and the command line", async function () {
      const proc = new FfmpegProcess({
        ffmpegPath: BUNDLED,
        args: [
          "-hide_banner",
          "-rtsp_transport",
          "tcp",
          "-i",
          "rtsp://bob:Tr0ub4dor@127.0.0.1:1/cam",
          "-f",
          "null",
          "-",
        ],
        secrets: ["Tr0ub4dor"],
      });
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.start();
      await exited;
      const text = proc.lastStderr().join("\n") + proc.commandLine();
      assert.match(text, /Connection refused/);
      assert.match(proc.commandLine(), /rtsp:\/\/\*\*\*@127\.0\.0\.1:1\/cam/);
      assert.ok(!text.includes("Tr0ub4dor"), text);
      assert.ok(!text.includes("bob:"), text);
    });

    it("reports a binary that cannot start through exit, not a crash", async function () {
      const proc = new FfmpegProcess({ ffmpegPath: path.join(tmp, "missing-ffmpeg"), args: ["-version"] });
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.start();
      const { code, signal } = await exited;
      assert.strictEqual(code, null);
      assert.strictEqual(signal, null);
      assert.ok(proc.spawnError);
      assert.match(proc.lastStderr().join(" "), /could not start missing-ffmpeg: .*ENOENT/);
      await proc.stop();
    });

    it("stop() sends SIGTERM, then SIGKILL to a process that ignores SIGTERM", async function () {
      const marker = path.join(tmp, "term-seen");
      const fake = writeScript(
        tmp,
        "ffmpeg",
        `trap 'echo TERM > ${marker}' TERM\nwhile :; do sleep 0.05; done`,
      );
      const proc = new FfmpegProcess({ ffmpegPath: fake, args: [] });
      const spawned = new Promise((resolve) => proc.on("spawn", resolve));
      const exited = new Promise((resolve) => proc.on("exit", resolve));
      proc.start();
      await spawned;
      await wait(100); // let the shell install its trap
      const pid = proc.pid;
      const t0 = Date.now();
      await proc.stop(600);
      const elapsed = Date.now() - t0;
      const { signal } = await exited;
      assert.strictEqual(signal, "SIGKILL");
      assert.ok(elapsed >= 550, `killed after ${elapsed} ms, not before the grace time`);
      assert.strictEqual(fs.readFileSync(marker, "utf8").trim(), "TERM", "SIGTERM came first");
      assert.ok(!alive(pid), "process is gone");
    });

    it("stop() ends a real ffmpeg with SIGTERM quickly", async function () {
      const proc = new FfmpegProcess({
        ffmpegPath: BUNDLED,
        args: [
          "-hide_banner",
          "-re",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=160x120:rate=10",
          "-f",
          "null",
          "-",
        ],
      });
      const spawned = new Promise((resolve) => proc.on("spawn", resolve));
      proc.start();
      await spawned;
      const pid = proc.pid;
      await proc.stop(5000);
      assert.ok(!alive(pid));
      assert.notStrictEqual(proc.exitSignal, "SIGKILL");
    });

    it("stop() ends stdin so ffmpeg finishes its output cleanly", async function () {
      const out = path.join(tmp, "out.mkv");
      const proc = new FfmpegProcess({
        ffmpegPath: BUNDLED,
        args: [
          "-hide_banner",
          "-f",
          "rawvideo",
          "-pix_fmt",
          "gray",
          "-s",
          "16x16",
          "-r",
          "10",
          "-i",
          "pipe:0",
        ].concat(["-c:v", "ffv1", "-y", out]),
        stdin: true,
      });
      const spawned = new Promise((resolve) => proc.on("spawn", resolve));
      proc.start();
      await spawned;
      for (let i = 0; i < 10; i++) proc.stdin.write(Buffer.alloc(256, i * 20));
      await proc.stop(5000);
      assert.strictEqual(proc.exitCode, 0);
      const probe = await probeMedia(out, { countFrames: true });
      assert.strictEqual(probe.streams[0].frames, 10);
      assert.strictEqual(probe.streams[0].fps, 10);
    });

    it("kills an ffprobe that gets no answer and says so", async function () {
      const server = net.createServer(() => {}); // accepts and never answers
      await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
      const url = `http://user:s3cret@127.0.0.1:${server.address().port}/stream`;
      try {
        await assert.rejects(probeMedia(url, { timeoutMs: 1500 }), (err) => {
          assert.match(err.message, /ffprobe failed: no answer within 2 s/);
          assert.ok(!err.message.includes("s3cret"), err.message);
          return true;
        });
      } finally {
        server.close();
      }
    });
  });

  describe("probe of MPEG-TS (the bundled ffprobe dies of SIGSEGV on it)", function () {
    for (const build of ffmpegBuilds()) {
      it(`${build.name}: H.264 + AAC in MPEG-TS probes to codec, profile, size, fps and audio`, async function () {
        const out = path.join(tmp, "clip.ts");
        const { spawnSync } = require("child_process");
        const made = spawnSync(build.ffmpeg, [
          "-v",
          "error",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=320x240:rate=15",
          "-f",
          "lavfi",
          "-i",
          "sine=sample_rate=44100",
          "-t",
          "2",
          "-c:v",
          "libx264",
          "-preset",
          "veryfast",
          "-profile:v",
          "high",
          "-pix_fmt",
          "yuv420p",
          "-c:a",
          "aac",
          "-f",
          "mpegts",
          out,
        ]);
        assert.strictEqual(made.status, 0, String(made.stderr));
        const crashes = spawnSync(build.ffprobe, ["-v", "error", "-show_streams", out]).signal;
        const probe = await probeMedia(out, { ffprobePath: build.ffprobe, ffmpegPath: build.ffmpeg });
        const video = probe.streams.find((s) => s.codecType === "video");
        const audio = probe.streams.find((s) => s.codecType === "audio");
        assert.ok(
          video && audio,
          `${JSON.stringify(probe)} (ffprobe ${crashes ? `died of ${crashes}` : "ran"})`,
        );
        assert.deepStrictEqual(
          [video.codecName, video.profile, video.width, video.height, video.fps, audio.codecName],
          ["h264", "High", 320, 240, 15, "aac"],
        );
        assert.match(probe.formatName, /mpegts/);
        assert.ok(Math.abs(probe.durationSec - 2) < 0.3, `duration ${probe.durationSec}`);
      });
    }

    it("reads ffmpeg's banner, and says nothing for a banner without streams", function () {
      const banner = [
        "Input #0, rtsp, from 'rtsp://cam/live':",
        "  Duration: N/A, start: 0.000000, bitrate: N/A",
        "    Stream #0:0: Video: hevc (Main), yuvj420p(pc), 2560x1440, 20 fps, 20 tbr, 90k tbn",
        "    Stream #0:1: Audio: pcm_alaw, 8000 Hz, 1 channels, s16, 64 kb/s",
        "    Stream #0:2[0x102]: Video: h264 (avc1 / 0x31637661), yuv420p, 640x480, 29.97 tbr",
      ].join("\n");
      assert.deepStrictEqual(probeFromFfmpegBanner(banner), {
        formatName: "rtsp",
        durationSec: undefined,
        streams: [
          { codecType: "video", codecName: "hevc", profile: "Main", width: 2560, height: 1440, fps: 20 },
          { codecType: "audio", codecName: "pcm_alaw" },
          { codecType: "video", codecName: "h264", width: 640, height: 480, fps: 29.97 },
        ],
      });
      assert.strictEqual(probeFromFfmpegBanner("rtsp://cam/live: Connection refused\n"), undefined);
    });
  });

  describe("capabilities", function () {
    it("lists the bundled ffmpeg's encoders and picks the RTSP timeout option", async function () {
      const encoders = await listEncoders(BUNDLED);
      assert.ok(encoders.has("libx264"));
      assert.ok(encoders.has("mjpeg"));
      assert.strictEqual(await rtspTimeoutOption(BUNDLED), "-stimeout");
    });
  });
});
