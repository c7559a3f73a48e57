// ffmpeg-transcode: CPU per second of video for each preset, and live latency, at 640x480 10 fps.
// Frames are fed in real time (with jitter) to the transcode core, as camera connect would deliver them.
// CPU = ffmpeg's utime+stime from /proc/<pid>/stat, plus this Node process's CPU over the same run.
// Latency = from a frame's receive time (msg.frame.time) to the moment the fMP4 fragment holding it is
// emitted, or the HLS segment holding it is listed in index.m3u8 (i.e. servable). Prints numbers only.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { Recorder } = require("../dist/nodes/lib/transcode/recorder");
const { LiveTranscoder } = require("../dist/nodes/lib/transcode/live");
const args = require("../dist/nodes/lib/transcode/args");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { FFMPEG, testJpegs, findNginxRtmp, startNginxRtmp } = require("../test/lib/transcode-helpers");
const { wait, cpuSeconds } = require("../test/lib/toolkit");

const WIDTH = 640;
const HEIGHT = 480;
const FPS = 10;
const percentile = (xs, p) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/**
 * Feeds frames at a jittering ~FPS for `seconds`, sampling ffmpeg's CPU (pid from getPid()) while it runs.
 * Returns the frame times and the CPU used by ffmpeg and by Node during the feed.
 */
async function feed(push, getPid, seconds, jpegs) {
  const times = [];
  const cpu = new Map();
  const node0 = process.cpuUsage();
  const t0 = Date.now();
  let i = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const time = monotonicEpochMs();
    times.push(time);
    push({ data: jpegs[i % jpegs.length], time, seq: ++i, camera: "bench", width: WIDTH, height: HEIGHT });
    const pid = getPid();
    if (pid) {
      const c = cpuSeconds(pid);
      if (c !== undefined) cpu.set(pid, c);
    }
    await wait((1000 / FPS) * (0.7 + 0.6 * Math.random()));
  }
  const node = process.cpuUsage(node0);
  return {
    times,
    ffmpegCpu: [...cpu.values()].reduce((a, b) => a + b, 0),
    nodeCpu: (node.user + node.system) / 1e6,
  };
}

function row(preset, videoSeconds, fed, extra = {}) {
  return {
    preset,
    videoSeconds: +videoSeconds.toFixed(2),
    frames: fed.times.length,
    ffmpegCpuSeconds: +fed.ffmpegCpu.toFixed(3),
    nodeCpuSeconds: +fed.nodeCpu.toFixed(3),
    cpuPerVideoSecond: +((fed.ffmpegCpu + fed.nodeCpu) / videoSeconds).toFixed(4),
    ...extra,
  };
}

function video(encoder) {
  return { quality: 23, bitrate: 0, keyframeInterval: 1, encoder };
}

async function benchRecording(dir, seconds, jpegs, encoder) {
  const recorder = new Recorder({
    ffmpegPath: FFMPEG,
    directory: dir,
    camera: "bench",
    preRollSec: 0,
    preRollMaxBytes: 64 << 20,
    postRollSec: 0,
    defaultDurationSec: 0,
    maxDurationSec: 0,
    video: video(encoder),
  });
  const done = new Promise((resolve) => recorder.once("recording", resolve));
  recorder.start({ time: monotonicEpochMs() });
  const fed = await feed(
    (f) => recorder.push(f),
    () => recorder.sessionPid,
    seconds,
    jpegs,
  );
  recorder.stop(monotonicEpochMs());
  const info = await done;
  await recorder.close();
  return row("mp4 recording", info.duration, fed, {
    kbps: Math.round((info.bytes * 8) / info.duration / 1000),
  });
}

async function benchLive(preset, dir, seconds, jpegs, encoder, server) {
  const hlsDir = preset === "hls" ? path.join(dir, "hls") : undefined;
  if (hlsDir) fs.mkdirSync(hlsDir, { recursive: true });
  const output = (w, h, fps) => {
    const encode = [...args.inputArgs(encoder), ...args.videoArgs(video(encoder), w, h, true, fps)];
    switch (preset) {
      case "hls":
      case "fmp4":
        return { args: [...encode, ...args.fmp4PipeArgs(hlsDir)], stdout: "fmp4" };
      case "flv":
        return {
          args: [...encode, ...args.flvArgs(path.join(dir, `bench-${Date.now()}.flv`))],
          stdout: "none",
        };
      default:
        return {
          args: [...encode, ...args.pushArgs(`rtmp://127.0.0.1:${server.rtmpPort}/live/bench`)],
          stdout: "none",
        };
    }
  };
  const live = new LiveTranscoder({ ffmpegPath: FFMPEG, output });
  const failures = [];
  live.on("failure", (m) => failures.push(m));
  // fMP4: every frame in [fragment.time, fragment.time + duration) became servable when the fragment came out.
  const fragments = [];
  let bytes = 0;
  live.on("fragment", ({ data, info }) => {
    fragments.push({ at: monotonicEpochMs(), start: info.time, end: info.time + info.duration * 1000 });
    bytes += data.length;
  });
  // HLS: a segment is servable once index.m3u8 lists it.
  const segments = new Map();
  const poll = hlsDir
    ? setInterval(() => {
        let text = "";
        try {
          text = fs.readFileSync(path.join(hlsDir, "index.m3u8"), "utf8");
        } catch {
          return;
        }
        const lines = text.split("\n");
        for (let i = 0; i < lines.length; i++) {
          const m = /^#EXTINF:([\d.]+)/.exec(lines[i]);
          if (!m) continue;
          const name = lines.slice(i + 1).find((l) => l && !l.startsWith("#"));
          if (name && !segments.has(name))
            segments.set(name, { at: monotonicEpochMs(), duration: Number(m[1]) });
        }
      }, 20)
    : undefined;
  const fed = await feed(
    (f) => live.push(f),
    () => live.pid,
    seconds,
    jpegs,
  );
  if (poll) clearInterval(poll);
  await live.close();
  if (failures.length) throw new Error(`${preset}: ${failures[0]}`);
  const latencies = [];
  for (const t of fed.times) {
    const f = fragments.find((x) => t >= x.start && t < x.end);
    if (f) latencies.push(f.at - t);
  }
  const hlsLatencies = [];
  if (hlsDir) {
    // Segments in playlist order cover consecutive spans of the stream, starting at the first frame.
    let start = fed.times[0];
    for (const s of [...segments.values()].sort((a, b) => a.at - b.at)) {
      const end = start + s.duration * 1000;
      for (const t of fed.times) if (t >= start && t < end) hlsLatencies.push(s.at - t);
      start = end;
    }
  }
  const videoSeconds = (fed.times[fed.times.length - 1] - fed.times[0]) / 1000;
  const extra = {};
  if (latencies.length) {
    extra.fragmentLatencyMsMedian = Math.round(percentile(latencies, 50));
    extra.fragmentLatencyMsMax = Math.round(Math.max(...latencies));
    extra.kbps = Math.round((bytes * 8) / videoSeconds / 1000);
  }
  if (hlsLatencies.length) {
    extra.segmentLatencyMsMedian = Math.round(percentile(hlsLatencies, 50));
    extra.segmentLatencyMsMax = Math.round(Math.max(...hlsLatencies));
  }
  return row(preset, videoSeconds, fed, extra);
}

/** Runs every preset for `seconds` of real-time video each; returns one row per preset. */
async function run({ seconds = 10, encoder = "libx264", log = true } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-bench-tc-"));
  const jpegs = testJpegs(50, `${WIDTH}x${HEIGHT}`, 5);
  const profile = await args.chooseEncoder(FFMPEG, encoder);
  const rows = [];
  let server;
  try {
    if (log)
      console.log(
        `transcode bench: ${WIDTH}x${HEIGHT} ~${FPS} fps, ${seconds} s per preset, ${profile.name}`,
      );
    rows.push(await benchRecording(dir, seconds, jpegs, profile));
    for (const preset of ["hls", "fmp4", "flv"])
      rows.push(await benchLive(preset, dir, seconds, jpegs, profile));
    const nginx = findNginxRtmp();
    if (nginx.missing) {
      if (log) console.log(`push skipped: ${nginx.missing}`);
    } else {
      server = await startNginxRtmp(fs.mkdtempSync(path.join(dir, "nginx-")));
      rows.push(await benchLive("push", dir, seconds, jpegs, profile, server));
    }
  } finally {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

function print(rows) {
  const cols = [
    ["preset", "preset"],
    ["videoSeconds", "video s"],
    ["frames", "frames"],
    ["ffmpegCpuSeconds", "ffmpeg CPU s"],
    ["nodeCpuSeconds", "Node CPU s"],
    ["cpuPerVideoSecond", "CPU s / video s"],
    ["kbps", "kb/s"],
    ["fragmentLatencyMsMedian", "fMP4 latency ms (median)"],
    ["fragmentLatencyMsMax", "(max)"],
    ["segmentLatencyMsMedian", "HLS latency ms (median)"],
    ["segmentLatencyMsMax", "(max)"],
  ];
  console.log(`| ${cols.map((c) => c[1]).join(" | ")} |`);
  console.log(`|${cols.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${cols.map(([k]) => (r[k] === undefined ? "" : r[k])).join(" | ")} |`);
}

module.exports = { run, print };

if (require.main === module) {
  const seconds = Number(process.argv[2]) || 10;
  run({ seconds }).then(print, (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
