// Compressed video passthrough (issue 13): whole-process-tree CPU and RSS for one H.264 RTSP camera (the
// GStreamer RTSP fixture, test/lib/rtsp-server.js) at 15 fps, three ways, in the same run:
//   baseline    one plain ffmpeg from the same server: HLS copy + MP4 copy + 1 fps JPEG
//   before      camrelay as on main before issue 13: camera connect -> ffmpeg transcode hls -> http stream out,
//               one HLS viewer and one MJPEG viewer
//   passthrough camera-source video=auto, camera connect output=both -> http stream out; ffmpeg transcode mp4
//               recording with preRoll 5; one HLS, one stream.mp4 and one MJPEG viewer at 2 fps, a snapshot
//               every 5 s (needs the issue 13 nodes; say --only passthrough when they are merged)
// CPU = utime+stime (+ reaped children) of the process and all its descendants, from /proc, over the
// measured window; RSS = the tree's summed VmRSS at the end. The camera server itself is not counted.
// Prints numbers only.
//
//   node bench/passthrough.js [--seconds 60] [--sizes 1280x720,1920x1080] [--only baseline,before,passthrough]
//                             [--pattern ball|snow]
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const { spawn } = require("child_process");
const { rtspServer } = require("../test/lib/rtsp-server");
const { wait, processes, rssOf, FFMPEG } = require("../test/lib/toolkit");
const { startNodeRed } = require("../test/lib/soak-nodered");

const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : d;
};
const SECONDS = Number(opt("seconds", 60));
const SIZES = opt("sizes", "1280x720,1920x1080").split(",");
const ONLY = opt("only", "baseline,before").split(",");
// The camera's picture: "ball" (the fixture's ball on black: ~0.15 Mbit/s whatever it is asked for) or "snow"
// (noise: the encoder spends the whole bitrate, ~2 Mbit/s at 720p, as a camera on a busy scene does).
const PATTERN = opt("pattern", "ball");
const FPS = 15;
const WARMUP_S = 8;
// Node-RED settles for about 20 s after it starts (V8 shrinks the start-up heap: ~0.3 s of CPU at 15-20 s,
// measured with an empty flow; 0 % after). A relay runs for months, so its runs start measuring only after
// that: Node-RED is started, left this long, then deployed and warmed up as the plain ffmpeg is.
const NODE_RED_SETTLE_S = 25;
const CLK_TCK = 100;

function stat(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return s.slice(s.lastIndexOf(")") + 2).split(" ");
}
function tree(root) {
  const all = processes();
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i]) out.push(p.pid);
  return out;
}
/** CPU seconds of the tree: each live process's own + its reaped children's. */
function treeCpu(root) {
  let sum = 0;
  for (const pid of tree(root)) {
    try {
      const f = stat(pid);
      sum += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}
const treeRss = (root) =>
  tree(root).reduce(
    (s, pid) =>
      s +
      (() => {
        try {
          return rssOf(pid);
        } catch {
          return 0;
        }
      })(),
    0,
  );

/** What a process of the tree is, from its command line. */
function role(cmd, isRoot) {
  const c = cmd.join(" ");
  if (isRoot) return /^node/.test(path.basename(cmd[0] ?? "")) ? "Node-RED" : "plain ffmpeg";
  if (/rtsp:\/\//.test(c))
    return /image2pipe/.test(c) && !/-f mp4/.test(c) ? "source ffmpeg (JPEG)" : "source ffmpeg";
  if (/pipe:0/.test(c) && /-c copy/.test(c)) return "recorder ffmpeg";
  if (/pipe:0/.test(c) && /-frames:v 1/.test(c)) return "snapshot decoder";
  if (/pipe:0/.test(c) && /mjpeg/.test(c)) {
    const fps = /floor\(t\*([\d.]+)\)/.exec(c)?.[1];
    return `MJPEG decoder${fps ? ` ${fps} fps` : /skip_frame/.test(c) ? " keyframes" : ""}`;
  }
  if (/pipe:0/.test(c)) return "transcode ffmpeg";
  return cmd[0] ? path.basename(cmd[0]) : "?";
}

/** Per process: own CPU seconds, and the root's reaped children (short runs: snapshot decoders, probes). */
function perProcess(root) {
  const all = processes();
  const out = new Map();
  for (const pid of tree(root)) {
    try {
      const f = stat(pid);
      const p = all.find((x) => x.pid === pid);
      out.set(pid, {
        parent: p?.ppid,
        role: role(p?.cmd ?? [], pid === root),
        own: (Number(f[11]) + Number(f[12])) / CLK_TCK,
        reaped: (Number(f[13]) + Number(f[14])) / CLK_TCK,
      });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU % of a core by role over the window (processes that started meanwhile count from 0). */
function byRole(before, after, seconds) {
  const roles = {};
  const add = (name, sec) => (roles[name] = (roles[name] ?? 0) + (100 * sec) / seconds);
  for (const [pid, a] of after) {
    const b = before.get(pid);
    add(a.role, a.own - (b?.own ?? 0));
    let reaped = a.reaped - (b?.reaped ?? 0);
    // Children that were running at the start and exited: their CPU before the window is not in it.
    for (const [cpid, c] of before) if (!after.has(cpid) && c.parent === pid) reaped -= c.own;
    if (reaped > 0.005) add(`exited children of ${a.role} (snapshot decoders, probes...)`, reaped);
  }
  return roles;
}

async function measure(rootPid) {
  await wait(WARMUP_S * 1000);
  const c0 = treeCpu(rootPid);
  const p0 = perProcess(rootPid);
  const t0 = Date.now();
  // Processes that start and end inside the window (their CPU lands in the parent's reaped children).
  const seen = new Map();
  const poll = setInterval(() => {
    for (const [pid, p] of perProcess(rootPid)) if (!p0.has(pid)) seen.set(pid, p.role);
  }, 250);
  await wait(SECONDS * 1000);
  clearInterval(poll);
  const p1 = perProcess(rootPid);
  const shortLived = {};
  for (const [pid, r] of seen) if (!p1.has(pid)) shortLived[r] = (shortLived[r] ?? 0) + 1;
  for (const [pid, p] of p0) if (!p1.has(pid)) shortLived[`${p.role} (running at the start)`] = 1;
  const cpu = treeCpu(rootPid) - c0;
  const seconds = (Date.now() - t0) / 1000;
  return {
    roles: byRole(p0, p1, seconds),
    shortLived,
    load: os.loadavg()[0],
    cpu: (100 * cpu) / seconds,
    rss: treeRss(rootPid) / 1048576,
    procs: tree(rootPid).length,
  };
}

/** A viewer that reads a URL forever (reconnecting) and counts bytes. */
function viewer(url) {
  const v = { bytes: 0, stopped: false, req: null };
  const go = () => {
    if (v.stopped) return;
    v.req = http.get(url, (res) => {
      res.on("data", (d) => (v.bytes += d.length));
      res.on("end", () => setTimeout(go, 200));
    });
    v.req.on("error", () => setTimeout(go, 500));
  };
  go();
  v.stop = () => ((v.stopped = true), v.req && v.req.destroy());
  return v;
}
/** An HLS viewer: fetches the playlist every second and each new segment. */
function hlsViewer(base) {
  const seen = new Set();
  const v = { bytes: 0, stopped: false };
  const get = (u) =>
    new Promise((resolve) => {
      http
        .get(u, (res) => {
          let body = [];
          res.on("data", (d) => (body.push(d), (v.bytes += d.length)));
          res.on("end", () => resolve(Buffer.concat(body).toString("latin1")));
        })
        .on("error", () => resolve(""));
    });
  (async () => {
    while (!v.stopped) {
      const list = await get(`${base}/index.m3u8`);
      for (const line of list.split("\n")) {
        const l = line.trim();
        if (!l || l.startsWith("#") || seen.has(l)) continue;
        seen.add(l);
        await get(new URL(l, `${base}/index.m3u8`).href);
      }
      await wait(1000);
    }
  })();
  v.stop = () => (v.stopped = true);
  return v;
}

async function baseline(cam) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-bench-ff-"));
  const child = spawn(
    FFMPEG || "ffmpeg",
    [
      "-hide_banner",
      "-loglevel",
      "error",
      "-rtsp_transport",
      "tcp",
      "-i",
      cam.url("h264"),
      "-map",
      "0:v",
      "-c",
      "copy",
      "-f",
      "hls",
      "-hls_time",
      "2",
      "-hls_list_size",
      "6",
      "-hls_flags",
      "delete_segments",
      path.join(dir, "index.m3u8"),
      "-map",
      "0:v",
      "-c",
      "copy",
      "-f",
      "mp4",
      "-movflags",
      "frag_keyframe+empty_moov",
      path.join(dir, "rec.mp4"),
      "-map",
      "0:v",
      "-vf",
      "fps=1",
      "-q:v",
      "5",
      "-f",
      "image2",
      "-update",
      "1",
      path.join(dir, "snap.jpg"),
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const r = await measure(child.pid);
  child.kill("SIGTERM");
  await new Promise((res) => child.on("exit", res));
  fs.rmSync(dir, { recursive: true, force: true });
  return r;
}

const cameraNode = (cam, extra = {}) => ({
  id: "cam",
  type: "camera-source",
  name: "bench",
  protocol: "ffmpeg",
  url: cam.url("h264"),
  fps: 0,
  linger: 0,
  rtspTransport: "tcp",
  ...extra,
});

async function beforeIssue13(cam) {
  const nr = await startNodeRed();
  await wait(NODE_RED_SETTLE_S * 1000);
  try {
    await nr.deploy([
      { id: "tab", type: "tab", label: "bench" },
      // video "jpeg": the 0.1 pipeline (every picture decoded to JPEG by the camera's ffmpeg). An old flow
      // without the property now gets "auto" (copied, one decoder for the JPEG wire), which is cheaper.
      cameraNode(cam, { video: "jpeg" }),
      {
        id: "conn",
        z: "tab",
        type: "camera-connect",
        camera: "cam",
        autoStart: true,
        stats: 0,
        wires: [["tx", "out"], []],
      },
      {
        id: "tx",
        z: "tab",
        type: "ffmpeg-transcode",
        preset: "hls",
        directory: "",
        quality: 28,
        keyframeInterval: 1,
        encoder: "libx264",
        wires: [["out"]],
      },
      { id: "out", z: "tab", type: "http-stream-out", path: "/bench/cam", wires: [[]] },
    ]);
    const base = `${nr.base}/bench/cam`;
    const viewers = [hlsViewer(base), viewer(base)];
    const r = await measure(nr.pid);
    viewers.forEach((v) => v.stop());
    r.viewerBytes = viewers.map((v) => v.bytes);
    return r;
  } finally {
    await nr.stop();
  }
}

async function passthrough(cam) {
  const nr = await startNodeRed();
  await wait(NODE_RED_SETTLE_S * 1000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-bench-rec-"));
  try {
    await nr.deploy([
      { id: "tab", type: "tab", label: "bench" },
      cameraNode(cam, { video: "auto" }),
      {
        id: "conn",
        z: "tab",
        type: "camera-connect",
        camera: "cam",
        autoStart: true,
        stats: 0,
        output: "both",
        jpegRate: 2,
        wires: [["out", "rec"], []],
      },
      {
        id: "rec",
        z: "tab",
        type: "ffmpeg-transcode",
        preset: "mp4",
        directory: dir,
        preRoll: 5,
        postRoll: 0,
        duration: 0,
        maxDuration: 300,
        wires: [[]],
      },
      { id: "out", z: "tab", type: "http-stream-out", path: "/bench/cam", wires: [[]] },
    ]);
    const base = `${nr.base}/bench/cam`;
    const comms = await nr.comms(["status/#"]);
    const viewers = [hlsViewer(base), viewer(`${base}/stream.mp4`), viewer(`${base}?fps=2`)];
    const snaps = setInterval(
      () => http.get(`${base}/snapshot.jpg`, (res) => res.resume()).on("error", () => {}),
      5000,
    );
    const r = await measure(nr.pid);
    clearInterval(snaps);
    viewers.forEach((v) => v.stop());
    r.viewerBytes = viewers.map((v) => v.bytes);
    // The recorder's own account of its pre-roll: "idle (pre-roll 5s, 1.4MB)" (the last status it sent).
    const rec = comms.messages.filter((m) => m.topic === "status/rec" && m.data?.text).pop();
    r.preRoll = rec?.data.text;
    comms.close();
    return r;
  } finally {
    // BENCH_LOG=1: Node-RED's warnings and errors (why a camera reconnected in the window, say).
    if (process.env.BENCH_LOG) {
      const lines = nr.output.split("\n").filter((l) => /\[(warn|error)\]/.test(l));
      console.log(lines.slice(-20).join("\n"));
    }
    await nr.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const runs = { baseline, before: beforeIssue13, passthrough };
  console.log(
    `${os.cpus().length} cores, ${os.cpus()[0].model}; ${FPS} fps, ${SECONDS} s measured after ${WARMUP_S} s; camera picture ${PATTERN}`,
  );
  for (const size of SIZES) {
    const [width, height] = size.split("x").map(Number);
    const cam = await rtspServer({
      width,
      height,
      fps: FPS,
      gop: FPS,
      bitrate: Math.round((width * height) / 460),
      pattern: PATTERN,
    });
    try {
      const results = {};
      for (const name of ONLY) {
        results[name] = await runs[name](cam);
        const r = results[name];
        const ratio =
          results.baseline && name !== "baseline"
            ? `  ${(r.cpu / results.baseline.cpu).toFixed(1)}x baseline`
            : "";
        console.log(
          `${size} ${name.padEnd(12)} CPU ${r.cpu.toFixed(1).padStart(6)} % of a core  RSS ${r.rss.toFixed(0).padStart(4)} MiB  ${r.procs} processes${ratio}${r.viewerBytes ? `  viewer bytes ${r.viewerBytes.join("/")}` : ""}  load ${r.load.toFixed(1)}`,
        );
        for (const [who, pct] of Object.entries(r.roles).sort((x, y) => y[1] - x[1]))
          console.log(`    ${pct.toFixed(1).padStart(6)} %  ${who}`);
        for (const [who, n] of Object.entries(r.shortLived))
          console.log(`    started and ended: ${n} x ${who}`);
        if (r.preRoll) console.log(`    recorder status: ${r.preRoll}`);
      }
    } finally {
      await cam.stop();
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
