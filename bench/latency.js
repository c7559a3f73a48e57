// Glass-to-screen latency of every transport, side by side in one run, in real Chromium (issue 14).
//
// A test camera in this process (bench/lib/stamp-camera.js) burns its send time into each picture as a
// strip of 32 black/white 16x16 blocks (24 bits of Date.now() in ms + CRC-8, bench/lib/stamp.js):
//   - as MJPEG over HTTP, read by camera-source protocol "mjpeg" -> camera connect -> http stream out
//     /bench/mjpeg, watched as an <img> (transport "mjpeg");
//   - as H.264 (one ffmpeg: libx264 -tune zerolatency, a keyframe every `gop` frames, 2 Mbit/s, MPEG-TS over
//     HTTP), read by camera-source protocol "ffmpeg" with video "copy" -> camera connect output "video" ->
//     http stream out /bench/h264, watched over WebRTC (WHEP <path>/whep), MSE over the shared WebSocket
//     (<root>camrelay/ws), HLS through hls.js with lowLatencyMode off ("hls") and, when the playlist carries
//     parts, at hls.js's low-latency defaults ("ll-hls").
// One page (bench/lib/latency-page.js, on Node-RED's origin) plays them all at once and reads the strip back
// from the pixels through a canvas; latency = Date.now() when the picture is shown - its stamp (one clock:
// the same machine). A transport that the running code does not offer is reported as such (not run).
// Prints p50/p90/max per transport against the targets. Numbers only, never an assertion.
//
//   node bench/latency.js [--seconds 40] [--warmup 10] [--size 640x360] [--fps 15] [--gop 15]
//                         [--transports mjpeg,webrtc,mse,hls,ll-hls] [--camera rtp|ts]
"use strict";
const os = require("os");
const { startStampCamera } = require("./lib/stamp-camera");
const { startRtspRelay } = require("./lib/rtsp-relay");
const { startStampReader } = require("./lib/stamp-reader");
const { latencyPage, pageFlow } = require("./lib/latency-page");
const { notOffered: whyNot } = require("./lib/offered");
const { percentile, loadAverage, ffmpegBinary, startNodeRedTwice } = require("./lib/measure");
const { launchChromium } = require("../test/lib/browser-chromium");
const { wait, until } = require("../test/lib/toolkit");

const TRANSPORTS = ["mjpeg", "webrtc", "mse", "hls", "ll-hls"];
const PAGE = "/camrelay-latency-bench";
const TARGET_MS = { mjpeg: 150, webrtc: 300, mse: 800, hls: 3000, "ll-hls": 3000 };

function flows(cam, rtspUrl) {
  const source = (id, extra) => ({
    id,
    type: "camera-source",
    name: `bench ${id.slice(4)}`,
    fps: 0,
    linger: 0,
    ...extra,
  });
  const connect = (id, camera, out, extra = {}) => ({
    id,
    z: "tab",
    type: "camera-connect",
    camera,
    autoStart: true,
    stats: 0,
    wires: [[out], []],
    ...extra,
  });
  const streamOut = (id, path) => ({
    id,
    z: "tab",
    type: "http-stream-out",
    path,
    maxClients: 0,
    maxPerAddress: 0,
    wires: [[]],
  });
  return [
    { id: "tab", type: "tab", label: "latency bench" },
    source("cam-mjpeg", { protocol: "mjpeg", url: cam.mjpegUrl, watchdog: 10 }),
    source("cam-h264", {
      protocol: "ffmpeg",
      url: rtspUrl,
      rtspTransport: "tcp",
      video: "copy",
      audio: false,
      watchdog: 10,
    }),
    connect("conn-mjpeg", "cam-mjpeg", "out-mjpeg", { output: "jpeg" }),
    connect("conn-h264", "cam-h264", "out-h264", { output: "video" }),
    streamOut("out-mjpeg", "/bench/mjpeg"),
    streamOut("out-h264", "/bench/h264"),
    ...pageFlow(
      "tab",
      PAGE,
      latencyPage({
        mjpegUrl: "/bench/mjpeg",
        whepUrl: "/bench/h264/whep",
        wsPath: "/camrelay/ws",
        hlsUrl: "/bench/h264/index.m3u8",
        h264Path: "/bench/h264",
        hlsJsUrl: "/camrelay/hls.min.js",
      }),
    ),
  ];
}

/** A UDP port nobody holds now on 127.0.0.1 (the relay binds it when its first client plays). */
function freeUdpPort() {
  const sock = require("dgram").createSocket("udp4");
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

async function run(opts = {}) {
  const o = { seconds: 40, warmup: 10, size: "640x360", fps: 15, gop: 15, transports: TRANSPORTS, ...opts };
  const [width, height] = String(o.size).split("x").map(Number);
  const wanted = typeof o.transports === "string" ? o.transports.split(",") : o.transports;
  const ffmpeg = ffmpegBinary();
  // --camera rtp (default): the test camera's H.264 reaches the RTSP relay as RTP over UDP; --camera ts: as
  // MPEG-TS over HTTP (what runs A-G of 2026-12-02 used; a picture more of latency in the camera itself).
  const rtpPort = o.camera === "ts" ? undefined : await freeUdpPort();
  const cam = await startStampCamera({
    width,
    height,
    fps: o.fps,
    gop: o.gop,
    ffmpeg,
    bitrate: 2000,
    rtpPort,
  });
  let relay;
  let reader;
  let nr;
  let browser;
  const log = (...a) => o.quiet || console.log(...a);
  try {
    relay = await startRtspRelay(rtpPort ? `udp://127.0.0.1:${rtpPort}` : cam.tsUrl);
    nr = await startNodeRedTwice({ settings: { logging: { console: { level: "info" } } } });
    await nr.deploy(flows(cam, relay.url));
    const base = nr.base;
    await until(async () => (await fetch(`${base}/bench/mjpeg/snapshot.jpg`)).status === 200, {
      what: "a picture at /bench/mjpeg",
      ms: 30000,
      retryErrors: true,
    });
    await until(
      async () => /seg-\d+\.m4s/.test(await (await fetch(`${base}/bench/h264/index.m3u8`)).text()),
      {
        what: "HLS segments at /bench/h264",
        ms: 40000,
        retryErrors: true,
        detail: () => nr.output.slice(-2000),
      },
    );
    const notOffered = await whyNot(base, "/bench/h264", wanted);
    const transports = wanted.filter((t) => !notOffered[t]);
    if (o.verbose) {
      const list = await (await fetch(`${base}/bench/h264/index.m3u8`)).text();
      log(list.split("\n").slice(0, 16).join("\n"));
    }
    log(
      `transports: ${transports.join(", ")}${Object.keys(notOffered).length ? `; not offered: ${JSON.stringify(notOffered)}` : ""}`,
    );

    browser = await launchChromium({ viewport: { width: 1300, height: 1200 } });
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => log(`page error: ${err.message}`));
    await page.goto(`${base}${PAGE}#${transports.join(",")}`);
    await wait(o.warmup * 1000);
    const load0 = loadAverage();
    reader = startStampReader(ffmpeg, relay.url);
    await wait(2000); // its first keyframe
    reader.measuring = true;
    await page.evaluate(() => (window.benchMeasuring = true)); // eslint-disable-line no-undef
    await wait(o.seconds * 1000);
    const summary = await page.evaluate(() => window.benchSummary()); // eslint-disable-line no-undef
    if (o.screenshot) await page.screenshot({ path: o.screenshot });
    const load1 = loadAverage();
    const rows = [];
    const own = [...reader.samples].sort((a, b) => a - b);
    if (own.length) {
      rows.push({
        transport: "camera",
        state: "the test camera alone: RTSP straight into one ffmpeg decode, no camrelay",
        n: own.length,
        frames: own.length,
        unreadable: reader.bad,
        min: own[0],
        p50: percentile(own, 0.5),
        p90: percentile(own, 0.9),
        max: own[own.length - 1],
      });
    }
    for (const t of wanted) {
      const target = TARGET_MS[t];
      if (notOffered[t]) {
        rows.push({ transport: t, state: `not offered (${notOffered[t]})`, target });
        continue;
      }
      const s = summary[t] ?? { state: "missing", samples: [] };
      const sorted = [...s.samples].sort((a, b) => a - b);
      const row = {
        transport: t,
        state:
          s.state +
          (s.error ? `: ${s.error}` : "") +
          (s.media ? ` (${s.media}${s.extra ? `; ${s.extra}` : ""})` : ""),
        n: sorted.length,
        frames: s.frames,
        unreadable: s.bad,
      };
      if (sorted.length) {
        Object.assign(row, {
          p50: percentile(sorted, 0.5),
          p90: percentile(sorted, 0.9),
          max: sorted[sorted.length - 1],
          min: sorted[0],
          target,
          met: percentile(sorted, 0.5) <= target,
        });
      } else row.target = target;
      rows.push(row);
    }
    const cs = cam.stats();
    rows.push({
      transport: "(run)",
      state: `${width}x${height} ${o.fps} fps gop ${o.gop}, ${o.seconds} s after ${o.warmup} s`,
      load1Start: load0[0],
      load1End: load1[0],
      cameraLateMedianMs: +cs.lateMedianMs.toFixed(1),
      cameraLateMaxMs: +cs.lateMaxMs.toFixed(1),
    });
    return rows;
  } finally {
    if (reader) await reader.stop();
    if (browser) await browser.close();
    if (nr) await nr.cleanup();
    if (relay) await relay.stop();
    await cam.stop();
  }
}

function print(rows) {
  const cols = [
    "transport",
    "frames",
    "n",
    "min",
    "p50",
    "p90",
    "max",
    "target",
    "met",
    "unreadable",
    "state",
  ];
  console.log(cols.map((c) => c.padEnd(c === "state" ? 0 : 10)).join(""));
  for (const r of rows) {
    if (r.transport === "(run)") {
      console.log(
        `\n${r.state}; load average ${r.load1Start} -> ${r.load1End}; camera clock late median ` +
          `${r.cameraLateMedianMs} ms, max ${r.cameraLateMaxMs} ms`,
      );
      continue;
    }
    const cell = (v) => (v === undefined ? "-" : typeof v === "boolean" ? (v ? "yes" : "NO") : String(v));
    console.log(cols.map((c) => cell(r[c]).padEnd(c === "state" ? 0 : 10)).join(""));
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, "");
    opts[k] = /^\d+(\.\d+)?$/.test(argv[i + 1]) ? Number(argv[i + 1]) : argv[i + 1];
  }
  console.log(
    `${os.cpus().length} x ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`,
  );
  run(opts)
    .then(print)
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}

module.exports = { run, print };
