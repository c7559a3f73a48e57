// Node-RED CPU for many viewers of one camera, per transport (issue 14): one H.264 camera of 1280x720,
// 15 fps, a keyframe every 15 frames, a true 2000 kbit/s (bench/lib/ts-camera.js: a noisy test picture
// encoded once at constant bitrate and looped, served as RTSP by bench/lib/rtsp-relay.js), read by
// camera-source protocol "ffmpeg" (RTSP over TCP) with video "copy" -> camera connect output "video" -> http
// stream out /bench/cam, and in turn: no viewer ("idle"), 20 WebRTC viewers (werift, WHEP), 20 MSE
// viewers (ws, the shared WebSocket), 20 MJPEG viewers (HTTP; the JPEGs are decoded from the H.264 at the
// node's mjpegFps, 5 by default). The viewers run in a separate process (bench/lib/viewer-clients.js), so
// the CPU measured is the server's: utime+stime of the Node-RED process and all its descendants (its
// copying ffmpeg, the decoder for MJPEG), reaped children included, from /proc, over `seconds` after the
// viewers are in and `warmup` seconds passed. The camera server and the clients are not counted (the
// clients' own CPU is printed beside). A transport the running code does not offer is listed as such.
//
//   node bench/viewers.js [--n 20] [--seconds 25] [--warmup 5] [--size 1280x720] [--kbps 2000] [--mjpegFps 5]
//                         [--cases idle,webrtc,mse,mjpeg]
"use strict";
const os = require("os");
const path = require("path");
const { spawn } = require("child_process");
const readline = require("readline");
const { wait } = require("../test/lib/toolkit");
const { tree, treeCpu, treeRssMiB, loadAverage, ffmpegBinary, startNodeRedTwice } = require("./lib/measure");
const { notOffered } = require("./lib/offered");
const { startTsCamera } = require("./lib/ts-camera");
const { startRtspRelay } = require("./lib/rtsp-relay");

const PATH = "/bench/cam";

function flows(rtspUrl, mjpegFps) {
  return [
    { id: "tab", type: "tab", label: "viewers bench" },
    {
      id: "cam",
      type: "camera-source",
      name: "bench camera",
      protocol: "ffmpeg",
      url: rtspUrl,
      rtspTransport: "tcp",
      video: "copy",
      audio: false,
      fps: 0,
      linger: 0,
    },
    {
      id: "conn",
      z: "tab",
      type: "camera-connect",
      camera: "cam",
      autoStart: true,
      stats: 0,
      output: "video",
      wires: [["out"], []],
    },
    {
      id: "out",
      z: "tab",
      type: "http-stream-out",
      path: PATH,
      maxClients: 0,
      maxPerAddress: 0,
      mjpegFps,
      wires: [[]],
    },
  ];
}

/** Starts the viewer process; resolves { pid, connected(), report(), stop() } once all are in (or 75 s passed). */
async function startViewers(kind, n, base) {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, "lib", "viewer-clients.js"), JSON.stringify({ kind, n, base, path: PATH })],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const waiting = [];
  let connected = 0;
  let fatal = null;
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return;
    }
    if (m.type === "ready") connected = m.connected;
    if (m.type === "fatal") fatal = m.error;
    if (m.type === "report") waiting.shift()?.(m);
  });
  const exited = new Promise((r) => child.once("exit", r));
  const t0 = Date.now();
  while (connected < n && !fatal && child.exitCode === null && Date.now() - t0 < 75000) await wait(250);
  if (fatal) throw new Error(`viewer process: ${fatal}`);
  return {
    pid: child.pid,
    connected: () => connected,
    joinSeconds: (Date.now() - t0) / 1000,
    report: () =>
      new Promise((resolve) => {
        waiting.push(resolve);
        child.stdin.write("report\n");
      }),
    stop: async () => {
      child.stdin.end();
      const kill = setTimeout(() => child.kill("SIGKILL"), 10000);
      await exited;
      clearTimeout(kill);
    },
  };
}

async function run(opts = {}) {
  const o = {
    n: 20,
    seconds: 25,
    warmup: 5,
    size: "1280x720",
    mjpegFps: 5,
    kbps: 2000,
    cases: ["idle", "webrtc", "mse", "mjpeg"],
    ...opts,
  };
  const cases = typeof o.cases === "string" ? o.cases.split(",") : o.cases;
  const [width, height] = String(o.size).split("x").map(Number);
  const log = (...a) => o.quiet || console.log(...a);
  const cam = await startTsCamera({
    ffmpeg: ffmpegBinary(),
    width,
    height,
    fps: 15,
    gop: 15,
    bitrate: o.kbps,
  });
  log(`camera: ${width}x${height} 15 fps, a keyframe every 15 frames, ${cam.clipKbps} kbit/s`);
  let relay;
  let nr;
  const rows = [];
  try {
    relay = await startRtspRelay(cam.tsUrl);
    nr = await startNodeRedTwice();
    await nr.deploy(flows(relay.url, o.mjpegFps));
    await nr.until(
      async () => /seg-\d+\.m4s/.test((await nr.request("GET", `${PATH}/index.m3u8`)).body.toString()),
      "HLS segments (the camera passes through)",
      40000,
    );
    const why = await notOffered(nr.base, PATH, cases);
    let idleCpu;
    for (const kind of cases) {
      if (why[kind]) {
        rows.push({ case: kind, state: `not offered (${why[kind]})` });
        log(`${kind}: not offered (${why[kind]})`);
        continue;
      }
      const viewers = kind === "idle" ? null : await startViewers(kind, o.n, nr.base);
      try {
        await wait(o.warmup * 1000);
        if (viewers) await viewers.report();
        const load0 = loadAverage()[0];
        const c0 = treeCpu(nr.pid);
        const v0 = viewers ? treeCpu(viewers.pid) : 0;
        const t0 = Date.now();
        await wait(o.seconds * 1000);
        const secs = (Date.now() - t0) / 1000;
        const cpu = (100 * (treeCpu(nr.pid) - c0)) / secs;
        const clientCpu = viewers ? (100 * (treeCpu(viewers.pid) - v0)) / secs : 0;
        const r = viewers ? await viewers.report() : { connected: 0, receiving: 0, bytes: 0, units: 0 };
        if (kind === "idle") idleCpu = cpu;
        const row = {
          case: kind,
          state:
            (r.errors?.length ? `errors: ${r.errors.slice(0, 3).join("; ")}` : "ok") +
            (r.states && Object.keys(r.states).length ? ` (peers ${JSON.stringify(r.states)})` : "") +
            (r.retries
              ? `, ${r.retries} WHEP sessions opened again after a DTLS handshake that never finished`
              : ""),
          viewers: r.connected,
          receiving: r.receiving,
          cpu: +cpu.toFixed(1),
          perViewer:
            viewers && idleCpu !== undefined
              ? +((cpu - idleCpu) / Math.max(1, r.receiving)).toFixed(2)
              : undefined,
          // Per viewer that received anything in the window.
          kbpsPerViewer: r.receiving ? Math.round((r.bytes * 8) / 1000 / secs / r.receiving) : 0,
          unitsPerSecPerViewer: r.receiving ? +(r.units / secs / r.receiving).toFixed(1) : 0,
          rssMiB: Math.round(treeRssMiB(nr.pid)),
          procs: tree(nr.pid).length,
          clientCpu: +clientCpu.toFixed(1),
          joinSeconds: viewers ? +viewers.joinSeconds.toFixed(1) : 0,
          load1: load0,
        };
        rows.push(row);
        log(
          `${kind.padEnd(7)} ${String(row.viewers).padStart(2)} viewers (${row.receiving} receiving): Node-RED tree ` +
            `${row.cpu} % of a core${row.perViewer !== undefined ? ` (+${row.perViewer} % per viewer over idle)` : ""}, ` +
            `${row.rssMiB} MiB, ${row.procs} processes; ${row.kbpsPerViewer} kbit/s and ${row.unitsPerSecPerViewer} ` +
            `${{ webrtc: "RTP packets", mse: "fragments", mjpeg: "JPEGs", idle: "" }[kind]}/s per viewer; clients ` +
            `${row.clientCpu} %; load ${row.load1}${row.state !== "ok" ? `; ${row.state}` : ""}`,
        );
      } finally {
        if (viewers) await viewers.stop();
      }
      await wait(3000);
    }
    rows.push({ case: "(camera)", state: `${width}x${height} 15 fps gop 15, ${cam.clipKbps} kbit/s` });
    return rows;
  } finally {
    if (nr) await nr.cleanup();
    if (relay) await relay.stop();
    await cam.stop();
  }
}

function print(rows) {
  const cols = [
    "case",
    "viewers",
    "receiving",
    "cpu",
    "perViewer",
    "kbpsPerViewer",
    "unitsPerSecPerViewer",
    "rssMiB",
    "clientCpu",
    "load1",
    "state",
  ];
  console.log(cols.join("\t"));
  for (const r of rows) console.log(cols.map((c) => (r[c] === undefined ? "-" : String(r[c]))).join("\t"));
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const opts = {};
  for (let i = 0; i < argv.length; i += 2) {
    opts[argv[i].replace(/^--/, "")] = /^\d+(\.\d+)?$/.test(argv[i + 1]) ? Number(argv[i + 1]) : argv[i + 1];
  }
  console.log(
    `${os.cpus().length} x ${os.cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`,
  );
  run(opts)
    .then((rows) => {
      console.log("");
      print(rows);
    })
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}

module.exports = { run, print };
