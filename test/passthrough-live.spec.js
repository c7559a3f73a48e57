"use strict";
// Issue 13: ffmpeg-transcode's flv, push and hls-with-directory presets copy compressed input (msg.mp4).
// Real ffmpeg makes H.264+AAC and H.265+AAC fMP4, the project's Mp4FragmentSplitter cuts it into msg.mp4
// messages sent at camera pace into real ffmpeg-transcode nodes in Node-RED: flv to a file (H.264 copied,
// H.265 encoded with libx264 and the status says why), push to a real nginx-rtmp started here (copied,
// read back by ffprobe) and hls with a directory (segments on disk, copied). All nodes are fed at once.
// Push also to RTSP and SRT servers: ffmpeg's own listen modes (RTSP ANNOUNCE/RECORD, SRT listener) take the
// stream and write it to a file that ffprobe reads; an ffmpeg without SRT makes the node say so in words.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync, execFile, spawn } = require("child_process");
const helper = require("node-red-node-test-helper");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { findNginxRtmp, startNginxRtmp, wait, until } = require("./lib/transcode-helpers");
const { ffmpegBuilds, freePort } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);
const transcode = require("../dist/nodes/ffmpeg-transcode.js");

const build = ffmpegBuilds()[0];

/** H.264 or H.265 (keyframe every 15 frames = 1 s) + AAC as fMP4 with ~0.25 s fragments, split into pieces. */
function source(file, codec, seconds) {
  const video =
    codec === "h265"
      ? ["-c:v", "libx265", "-x265-params", "keyint=15:min-keyint=15:log-level=error", "-tag:v", "hvc1"]
      : ["-c:v", "libx264", "-preset", "ultrafast", "-g", "15"];
  execFileSync(build.ffmpeg, [
    ...["-hide_banner", "-loglevel", "error", "-y"],
    ...["-f", "lavfi", "-i", "testsrc=size=320x240:rate=15"],
    ...["-f", "lavfi", "-i", "sine=f=440:sample_rate=44100"],
    ...["-t", String(seconds), ...video, "-pix_fmt", "yuv420p", "-c:a", "aac"],
    ...["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-frag_duration", "250000"],
    ...["-f", "mp4", file],
  ]);
  const pieces = [];
  const splitter = new Mp4FragmentSplitter({
    init: (data, info) => pieces.push({ type: "init", data, info }),
    fragment: (data, info) => pieces.push({ type: "fragment", data, info }),
  });
  splitter.push(fs.readFileSync(file));
  return pieces;
}

/** Sends the pieces to every node at camera pace, stamped at send. */
async function feed(nodes, pieces, initId, codec) {
  let seq = 0;
  for (const p of pieces) {
    const mp4 = {
      type: p.type,
      seq: seq++,
      time: monotonicEpochMs(),
      duration: p.type === "init" ? 0 : p.info.durationSec,
      codec: p.info.codec ?? codec,
      width: 320,
      height: 240,
      keyframe: p.type === "init" ? undefined : p.info.keyframe,
      initId,
    };
    for (const n of nodes) n.receive({ payload: p.data, topic: "cam", mp4 });
    if (p.type === "fragment") await wait(p.info.durationSec * 1000);
  }
}

function probe(target) {
  return new Promise((resolve) => {
    execFile(
      build.ffprobe,
      [
        "-v",
        "error",
        // A network read gives up after 5 s; a file takes no such option in the bundled 2018 ffprobe.
        ...(/^[a-z]+:\/\//.test(target) ? ["-rw_timeout", "5000000"] : []),
        "-print_format",
        "json",
        "-show_streams",
        "-show_format",
        target,
      ],
      { timeout: 15000 },
      (err, stdout) => {
        try {
          if (err?.signal === "SIGSEGV") return resolve(streamsFromFfmpeg(target));
          resolve(err ? undefined : JSON.parse(stdout));
        } catch {
          resolve(undefined);
        }
      },
    );
  });
}

/**
 * The bundled 2018 ffprobe crashes (SIGSEGV) on some MPEG-TS segments the bundled ffmpeg 4.x writes; that
 * ffmpeg itself reads them. The same facts, from `ffmpeg -i`'s stream lines.
 */
function streamsFromFfmpeg(target) {
  const { stderr } = require("child_process").spawnSync(build.ffmpeg, ["-hide_banner", "-i", target], {
    encoding: "utf8",
    timeout: 15000,
  });
  const streams = [];
  for (const line of stderr.split("\n")) {
    const v = /Stream #\S+: Video: (\w+)(?: \(([^)]+)\))?.*?, (\d+)x(\d+)/.exec(line);
    if (v)
      streams.push({ codec_type: "video", codec_name: v[1], profile: v[2], width: +v[3], height: +v[4] });
    const a = /Stream #\S+: Audio: (\w+)/.exec(line);
    if (a) streams.push({ codec_type: "audio", codec_name: a[1] });
  }
  return streams.length ? { streams } : undefined;
}

const video = (meta) => meta?.streams.find((s) => s.codec_type === "video");
const audio = (meta) => meta?.streams.find((s) => s.codec_type === "audio");

/** Command lines of every process now. */
function commandLines() {
  return execFileSync("ps", ["-e", "-o", "args="], { encoding: "utf8" }).split("\n");
}

describe("issue 13: flv, push and hls on disk copy compressed input", function () {
  this.timeout(90000);
  let tmp;
  let nginx;

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ptl-"));
    if (findNginxRtmp().missing) {
      if (process.env.CAMRELAY_REQUIRE_NGINX === "1") throw new Error(findNginxRtmp().missing);
      console.log(`      passthrough-live: push is checked without nginx: ${findNginxRtmp().missing}`);
    } else nginx = await startNginxRtmp(tmp);
  });
  after(async () => {
    await helper.unload();
    await nginx?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("flv H.264 copy, flv H.265 encoded (status says why), push to nginx-rtmp copy, hls segments on disk", async () => {
    const h264 = source(path.join(tmp, "a.mp4"), "h264", 8);
    const h265 = source(path.join(tmp, "b.mp4"), "h265", 4);
    const url = nginx ? `rtmp://127.0.0.1:${nginx.rtmpPort}/live/cam1` : undefined;
    const dirs = { flv264: "flv264", flv265: "flv265", hls: "hls" };
    for (const k of Object.keys(dirs)) dirs[k] = path.join(tmp, dirs[k]);
    // Ids unlike any property value (Node-RED takes an id-like value for a config node reference).
    const node = (id, props) => ({
      id,
      type: "ffmpeg-transcode",
      ffmpegPath: build.ffmpeg,
      keyframeInterval: 1,
      wires: [[]],
      ...props,
    });
    const flows = [
      node("n-flv264", { preset: "flv", directory: dirs.flv264 }),
      node("n-flv265", { preset: "flv", directory: dirs.flv265 }),
      node("n-hls", { preset: "hls", directory: dirs.hls }),
    ];
    if (url) flows.push(node("n-push", { preset: "push", url }));
    await helper.load(transcode, flows);
    const statuses = {};
    const errors = [];
    for (const f of flows) {
      const n = helper.getNode(f.id);
      statuses[f.id] = [];
      n.on("call:status", (c) => statuses[f.id].push(String(c.args[0].text)));
      n.on("call:error", (c) => errors.push(`${f.id}: ${c.args[0]}`));
      n.on("call:warn", (c) => errors.push(`${f.id}: ${c.args[0]}`));
    }
    await wait(500);
    const h264Nodes = flows.filter((f) => f.id !== "n-flv265").map((f) => helper.getNode(f.id));
    let pushed;
    let lines = [];
    const checks = (async () => {
      await wait(3000);
      lines = commandLines();
      if (url) {
        assert.ok(await nginx.publishing("cam1", 5000), "nginx sees cam1 published");
        pushed = await probe(url);
      }
    })();
    await Promise.all([
      feed(h264Nodes, h264, 1, "avc1.42c00d,mp4a.40.2"),
      feed([helper.getNode("n-flv265")], h265, 1, "hvc1.1.6.L60.90,mp4a.40.2"),
      checks,
    ]);
    const src264 = video(await probe(path.join(tmp, "a.mp4")));

    // The runs' command lines: copy, no encoder, except for the H.265 into FLV one.
    const runOf = (needle) => lines.find((l) => l.includes("pipe:0") && l.includes(needle)) ?? "";
    for (const needle of [dirs.flv264, dirs.hls, ...(url ? ["rtmp://"] : [])]) {
      const run = runOf(needle);
      assert.match(run, /-c copy/, `copy run for ${needle}: ${run}`);
      assert.doesNotMatch(run, /libx264/, `no encoder for ${needle}`);
    }
    assert.match(runOf(dirs.flv265), /-c:v libx264/, "H.265 into FLV is encoded with libx264");
    assert.ok(
      statuses["n-flv265"].some((t) => /H\.265/.test(t) && /libx264/.test(t)),
      `the status says why: ${statuses["n-flv265"].join(" / ")}`,
    );
    assert.ok(
      statuses["n-flv264"].some((t) => /copy/.test(t)),
      `flv H.264 status says copy: ${statuses["n-flv264"].join(" / ")}`,
    );

    if (url) {
      assert.ok(pushed, "ffprobe read the pushed stream back from nginx");
      assert.deepStrictEqual(
        [video(pushed).codec_name, video(pushed).profile, video(pushed).width, video(pushed).height],
        [src264.codec_name, src264.profile, 320, 240],
      );
      assert.strictEqual(audio(pushed)?.codec_name, "aac", "AAC pushed along");
    }

    // HLS on disk: a playlist and segments that are the camera's H.264 with its audio.
    await until(() => fs.existsSync(path.join(dirs.hls, "index.m3u8")), 5000, "index.m3u8");
    const playlist = fs.readFileSync(path.join(dirs.hls, "index.m3u8"), "utf8");
    const segments = playlist.split("\n").filter((l) => /^seg-\d+\.ts$/.test(l));
    assert.ok(segments.length >= 3, `segments listed: ${playlist}`);
    const seg = await probe(path.join(dirs.hls, segments[0]));
    assert.deepStrictEqual(
      [video(seg).codec_name, video(seg).profile, video(seg).width],
      [src264.codec_name, src264.profile, 320],
    );
    assert.strictEqual(audio(seg)?.codec_name, "aac");

    // The flv files, once the runs end (unload: EOF, ffmpeg finishes them).
    await helper.unload();
    const flvOf = (dir) =>
      path.join(
        dir,
        fs.readdirSync(dir).find((f) => f.endsWith(".flv")),
      );
    const f264 = await probe(flvOf(dirs.flv264));
    const f265 = await probe(flvOf(dirs.flv265));
    assert.deepStrictEqual(
      [video(f264).codec_name, video(f264).profile, video(f264).width],
      [src264.codec_name, src264.profile, 320],
    );
    assert.ok(Number(f264.format.duration) > 6, `flv H.264 plays ${f264.format.duration} s`);
    assert.strictEqual(audio(f264)?.codec_name, "aac");
    assert.strictEqual(video(f265).codec_name, "h264", "H.265 became H.264 in the FLV");
    assert.ok(Number(f265.format.duration) > 2.5, `flv H.265->H.264 plays ${f265.format.duration} s`);
    assert.deepStrictEqual(errors, [], "no errors or warnings");
  });

  it("push copies to an RTSP server and an SRT listener (ffmpeg's listen modes), or says the ffmpeg has no SRT", async () => {
    const h264 = source(path.join(tmp, "p.mp4"), "h264", 8);
    const src = video(await probe(path.join(tmp, "p.mp4")));
    const hasSrt = / srt\n/.test(
      execFileSync(build.ffmpeg, ["-hide_banner", "-protocols"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }),
    );
    const [rtspPort, srtPort] = [await freePort(), await freePort()];
    const listeners = [];
    /** ffmpeg as the server: takes one stream and copies it into `file`. */
    const listen = (input, file, pre = []) => {
      const p = spawn(
        build.ffmpeg,
        ["-hide_banner", "-loglevel", "error", ...pre, "-i", input, "-c", "copy", "-y", file],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      );
      let stderr = "";
      p.stderr.on("data", (d) => (stderr += d));
      const ended = new Promise((resolve) =>
        p.on("exit", (code, signal) => resolve({ code, signal, stderr })),
      );
      listeners.push(p);
      return { ended, file };
    };
    const rtsp = listen(`rtsp://127.0.0.1:${rtspPort}/live`, path.join(tmp, "rtsp-in.mkv"), [
      "-rtsp_flags",
      "listen",
    ]);
    const srt = hasSrt
      ? listen(`srt://127.0.0.1:${srtPort}?mode=listener`, path.join(tmp, "srt-in.ts"))
      : undefined;
    try {
      await wait(1000); // the listeners bind
      const node = (id, url) => ({
        id,
        type: "ffmpeg-transcode",
        ffmpegPath: build.ffmpeg,
        preset: "push",
        url,
        keyframeInterval: 1,
        wires: [[]],
      });
      const flows = [
        node("n-rtsp", `rtsp://127.0.0.1:${rtspPort}/live`),
        node("n-srt", `srt://127.0.0.1:${srtPort}`),
      ];
      await helper.load(transcode, flows);
      const errors = { "n-rtsp": [], "n-srt": [] };
      const statuses = [];
      for (const f of flows) {
        const n = helper.getNode(f.id);
        n.on("call:error", (c) => errors[f.id].push(String(c.args[0])));
        n.on("call:warn", (c) => errors[f.id].push(String(c.args[0])));
        n.on("call:status", (c) => statuses.push(`${f.id}: ${c.args[0].text}`));
      }
      let lines = [];
      await Promise.all([
        feed(
          flows.map((f) => helper.getNode(f.id)),
          h264,
          1,
          "avc1.42c00d,mp4a.40.2",
        ),
        wait(3000).then(() => (lines = commandLines())),
      ]);
      const run = lines.find((l) => l.includes("pipe:0") && l.includes(`rtsp://127.0.0.1:${rtspPort}`)) ?? "";
      assert.match(
        run,
        /-c copy/,
        `the RTSP push copies: ${run} (${errors["n-rtsp"].join(" / ")}; ${statuses.join(" / ")})`,
      );
      assert.doesNotMatch(run, /libx264/);
      assert.deepStrictEqual(errors["n-rtsp"], [], "the RTSP push ran without a complaint");
      await helper.unload(); // EOF: the push ends, the listeners finish their files
      const got = await Promise.race([rtsp.ended, wait(15000).then(() => ({ timeout: true }))]);
      assert.ok(!got.timeout, "the RTSP listener ended with the push");
      const meta = await probe(rtsp.file);
      assert.deepStrictEqual(
        [video(meta)?.codec_name, video(meta)?.profile, video(meta)?.width, video(meta)?.height],
        [src.codec_name, src.profile, 320, 240],
        "the RTSP server received the camera's H.264 as it was",
      );
      assert.strictEqual(audio(meta)?.codec_name, "aac", "and its AAC");
      assert.ok(
        Number(meta.format?.duration ?? 0) >= 5 || !meta.format,
        `about 8 s: ${meta.format?.duration}`,
      );
      if (srt) {
        const done = await Promise.race([srt.ended, wait(15000).then(() => ({ timeout: true }))]);
        assert.ok(!done.timeout, "the SRT listener ended with the push");
        const m = await probe(srt.file);
        assert.deepStrictEqual(
          [video(m)?.codec_name, video(m)?.profile, video(m)?.width],
          [src.codec_name, src.profile, 320],
          "the SRT listener received the camera's H.264",
        );
        assert.strictEqual(audio(m)?.codec_name, "aac");
        assert.deepStrictEqual(errors["n-srt"], []);
      } else {
        assert.ok(
          errors["n-srt"].some((e) => /srt/i.test(e) && /protocol/i.test(e)),
          `an ffmpeg without SRT: the node says so (${errors["n-srt"].join(" / ")})`,
        );
      }
    } finally {
      for (const p of listeners) p.kill("SIGKILL");
    }
  });
});
