// http-stream-out under load, through a real Node-RED: fake MJPEG camera (this process) -> camera-source /
// camera-connect -> http-stream-out -> N viewers in client worker processes, all on loopback.
// Each JPEG carries "camrelay-bench <seq> <epoch ms>" in a COM segment, stamped as the camera sends it, so
// a viewer knows which frames it got and how long each took. Prints numbers; asserts nothing.
//
//   node bench/stream-out.js [--duration 20] [--only 1000x6] [--workers 2] [--repeat 1] [--quiet 0.3]
"use strict";
const os = require("os");
const path = require("path");
const http = require("http");
const net = require("net");
const { fork } = require("child_process");
const { insertJpegComment } = require("../dist/nodes/lib/codec/jpeg-markers");
const { makeJpegs, MultipartReader } = require("../test/lib/stream-out-helpers");
const { wait, cpuSeconds, machineCpu, rssOf, startNodeRedProcess } = require("../test/lib/toolkit");

const SELF = path.join(__dirname, "stream-out.js");
const STAMP = "camrelay-bench ";
const now = () => performance.timeOrigin + performance.now();

const SMALL = { noise: 8, quality: 5 }; // ~34 KB, a typical 640x480 camera JPEG
const LARGE = { noise: 12, quality: 4 }; // ~75 KB, the mjpg-streamer reference
// `bare` rows are the floor: a minimal Node relay (no Node-RED, no backpressure) with the same clients.
// Stalled scenarios warm up longer, so the stalled sockets' kernel buffers are full while measuring.
const SCENARIOS = [
  { name: "1000x6", viewers: 1000, fps: 6, stalledShare: 0, image: SMALL },
  { name: "1000x6 stalled", viewers: 1000, fps: 6, stalledShare: 0.1, image: SMALL, warmup: 25 },
  { name: "1000x6 bare", viewers: 1000, fps: 6, stalledShare: 0, image: SMALL, bare: true },
  { name: "200x10", viewers: 200, fps: 10, stalledShare: 0, image: LARGE },
  { name: "200x10 stalled", viewers: 200, fps: 10, stalledShare: 0.1, image: LARGE, warmup: 12 },
  { name: "200x10 bare", viewers: 200, fps: 10, stalledShare: 0, image: LARGE, bare: true },
];

// ---- client worker ---------------------------------------------------------------------------------

/** Reads the stamp from a part's first bytes: FF D8 FF FE <len> "camrelay-bench <seq> <ms>". */
function readStamp(head) {
  if (!head || head[2] !== 0xff || head[3] !== 0xfe) return undefined;
  const text = head.toString("latin1", 6, Math.min(head.length, 4 + head.readUInt16BE(4)));
  if (!text.startsWith(STAMP)) return undefined;
  const [seq, ms] = text.slice(STAMP.length).split(" ");
  return { seq: Number(seq), ms: Number(ms) };
}

function clientMain() {
  const viewers = [];
  let recording = false;
  let cpu0 = process.cpuUsage();
  let t0 = now();

  function openViewer(port, urlPath, stalled) {
    return new Promise((resolve) => {
      const v = { seqs: [], lat: [], stalled, ok: false, closed: false };
      const sock = net.connect(port, "127.0.0.1", () => {
        sock.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        if (stalled) {
          sock.pause();
          v.ok = true;
          resolve(v);
        }
      });
      v.sock = sock;
      sock.on("error", () => undefined);
      sock.on("close", () => {
        v.closed = true;
        resolve(v);
      });
      if (stalled) return;
      let headers = Buffer.alloc(0);
      const reader = new MultipartReader(
        (part) => {
          if (!recording) return;
          const stamp = readStamp(part.head);
          if (!stamp) return;
          v.seqs.push(stamp.seq);
          v.lat.push(now() - stamp.ms);
        },
        { keepBody: false },
      );
      sock.on("data", (d) => {
        if (headers !== null) {
          headers = Buffer.concat([headers, d]);
          const end = headers.indexOf("\r\n\r\n");
          if (end < 0) return;
          v.ok = headers.toString("latin1", 0, 12).includes("200");
          const rest = headers.subarray(end + 4);
          headers = null;
          resolve(v);
          if (rest.length) reader.push(rest);
          return;
        }
        reader.push(d);
      });
    });
  }

  process.on("message", async (m) => {
    if (m.cmd === "open") {
      // Open in small batches so the listen backlog never overflows.
      for (let i = 0; i < m.live + m.stalled; i += 50) {
        const batch = [];
        for (let j = i; j < Math.min(i + 50, m.live + m.stalled); j++) {
          batch.push(openViewer(m.port, m.path, j >= m.live));
        }
        viewers.push(...(await Promise.all(batch)));
      }
      process.send({ ev: "opened", ok: viewers.filter((v) => v.ok).length });
    } else if (m.cmd === "mark") {
      for (const v of viewers) {
        v.seqs = [];
        v.lat = [];
      }
      recording = true;
      cpu0 = process.cpuUsage();
      t0 = now();
      process.send({ ev: "marked" });
    } else if (m.cmd === "report") {
      const cpu = process.cpuUsage(cpu0);
      const seconds = (now() - t0) / 1000;
      const live = viewers.filter((v) => !v.stalled);
      const counts = [];
      const lat = [];
      for (const v of live) {
        let n = 0;
        for (let i = 0; i < v.seqs.length; i++) {
          if (v.seqs[i] >= m.s0 && v.seqs[i] <= m.s1) {
            n++;
            lat.push(Math.round(v.lat[i] * 100) / 100);
          }
        }
        counts.push(n);
      }
      process.send({
        ev: "report",
        counts,
        lat,
        closedLive: live.filter((v) => v.closed).length,
        closedStalled: viewers.filter((v) => v.stalled && v.closed).length,
        cpuPerSecond: (cpu.user + cpu.system) / 1e6 / seconds,
      });
    } else if (m.cmd === "close") {
      for (const v of viewers) v.sock.destroy();
      process.exit(0);
    }
  });
}

// ---- fake camera -----------------------------------------------------------------------------------

/** An MJPEG camera on loopback that stamps seq and send time into each frame, paced to fps. */
function startCamera(pool, fps) {
  const clients = new Set();
  let seq = 0;
  let timer;
  const start = now();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "multipart/x-mixed-replace; boundary=frame", Connection: "close" });
    clients.add(res);
    res.on("close", () => clients.delete(res));
  });
  const tick = () => {
    seq++;
    const jpeg = insertJpegComment(pool[seq % pool.length], `${STAMP}${seq} ${now().toFixed(3)}`);
    const head = `--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`;
    for (const res of clients) res.write(Buffer.concat([Buffer.from(head), jpeg, Buffer.from("\r\n")]));
    // Scheduled against the start, so the rate does not drift.
    timer = setTimeout(tick, Math.max(0, start + ((seq + 1) * 1000) / fps - now()));
  };
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      tick();
      resolve({
        port: server.address().port,
        get seq() {
          return seq;
        },
        close: () => {
          clearTimeout(timer);
          for (const res of clients) res.destroy();
          server.close();
        },
      });
    });
  });
}

// ---- bare relay (the floor) -------------------------------------------------------------------------

/** The least a Node relay can do: parse the camera, write each part to every viewer, nothing else. */
function bareServerMain(cameraPort) {
  const { JpegStreamSplitter } = require("../dist/nodes/lib/codec/jpeg-stream-splitter");
  const viewers = new Set();
  const server = http.createServer((req, res) => {
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, { "Content-Type": "multipart/x-mixed-replace; boundary=b", Connection: "close" });
    res.socket.setNoDelay(true);
    viewers.add(res);
    res.on("close", () => viewers.delete(res));
    if (req.url.includes("status.json")) res.end();
  });
  const parser = new JpegStreamSplitter((jpeg) => {
    const head = Buffer.from(`--b\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
    const part = Buffer.concat([head, jpeg, Buffer.from("\r\n")]);
    for (const res of viewers) res.write(part);
  });
  http.get(`http://127.0.0.1:${cameraPort}/`, (res) => res.on("data", (d) => parser.push(d)));
  server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
}

function startBare(cameraPort) {
  const child = fork(SELF, ["--bare-server", String(cameraPort)], { stdio: "inherit" });
  return new Promise((resolve) => {
    child.once("message", (m) =>
      resolve({
        pid: child.pid,
        port: m.port,
        base: null,
        stop: () =>
          new Promise((r) => {
            child.once("exit", r);
            child.kill("SIGTERM");
          }),
      }),
    );
  });
}

// ---- Node-RED child --------------------------------------------------------------------------------

const rssMB = (pid) => rssOf(pid) / 2 ** 20 || NaN;

async function getJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

async function startNodeRed(cameraPort, stallTimeout) {
  const flows = [
    { id: "tab", type: "tab", label: "bench" },
    {
      ...{ id: "cam", type: "camera-source", name: "bench", protocol: "mjpeg" },
      ...{
        url: `http://127.0.0.1:${cameraPort}/`,
        fps: 0,
        linger: 0,
        alwaysOn: true,
        watchdog: 10,
        maxFrameKB: 4096,
      },
    },
    {
      id: "connect",
      type: "camera-connect",
      z: "tab",
      camera: "cam",
      autoStart: true,
      stats: 0,
      wires: [["out"], []],
    },
    {
      ...{
        id: "out",
        type: "http-stream-out",
        z: "tab",
        path: "/bench",
        maxClients: 0,
        maxKbps: 0,
        cors: "",
      },
      ...{ offlineAfter: 10, stallTimeout, wires: [[]] },
    },
  ];
  const nr = await startNodeRedProcess({
    prefix: "camrelay-bench-",
    flows,
    settings: {
      httpAdminRoot: false,
      credentialSecret: false,
      logging: { console: { level: "warn", metrics: false, audit: false } },
    },
    // e.g. CAMRELAY_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile Node-RED.
    nodeArgs: (process.env.CAMRELAY_BENCH_NODE_ARGS || "").split(" ").filter(Boolean),
    killAfterMs: 10000,
    ready: async ({ base }) => (await getJson(`${base}/bench/status.json`)).upstream === "live",
  });
  return { pid: nr.pid, port: nr.port, base: `${nr.base}/bench`, stop: nr.cleanup };
}

// ---- scenario ----------------------------------------------------------------------------------------

function ask(worker, msg, ev) {
  return new Promise((resolve) => {
    const on = (m) => {
      if (m.ev === ev) {
        worker.off("message", on);
        resolve(m);
      }
    };
    worker.on("message", on);
    worker.send(msg);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runScenario(sc, { duration, warmup, workers: nWorkers, log }) {
  const pool = await makeJpegs({ width: 640, height: 480, count: 30, ...sc.image });
  const frameKB = pool.reduce((a, b) => a + b.length, 0) / pool.length / 1024;
  const camera = await startCamera(pool, sc.fps);
  // Stalled viewers are kept for the whole run (no drop), to measure the memory they can hold.
  const warm = sc.warmup ?? warmup;
  const nr = sc.bare ? await startBare(camera.port) : await startNodeRed(camera.port, duration + warm + 60);
  const workers = [];
  try {
    await wait(1000);
    const rssBefore = rssMB(nr.pid);
    const stalled = Math.round(sc.viewers * sc.stalledShare);
    const live = sc.viewers - stalled;
    for (let i = 0; i < nWorkers; i++) workers.push(fork(SELF, ["--client"], { stdio: "inherit" }));
    const share = (n, i) => Math.floor(n / nWorkers) + (i < n % nWorkers ? 1 : 0);
    const opened = await Promise.all(
      workers.map((w, i) =>
        ask(
          w,
          { cmd: "open", port: nr.port, path: "/bench", live: share(live, i), stalled: share(stalled, i) },
          "opened",
        ),
      ),
    );
    const ok = opened.reduce((a, m) => a + m.ok, 0);
    await wait(warm * 1000);
    await Promise.all(workers.map((w) => ask(w, { cmd: "mark" }, "marked")));
    const rssMark = rssMB(nr.pid);
    const rssSeries = [];
    const sampler = setInterval(() => rssSeries.push(Math.round(rssMB(nr.pid))), 5000);
    const s0 = camera.seq + 1;
    const cpu0 = cpuSeconds(nr.pid);
    const machine0 = machineCpu();
    const load0 = os.loadavg()[0];
    const t0 = now();
    const camCpuStart = process.cpuUsage();
    await wait(duration * 1000);
    const s1 = camera.seq;
    const elapsed = (now() - t0) / 1000;
    const nrCpu = (cpuSeconds(nr.pid) - cpu0) / elapsed;
    const machine1 = machineCpu();
    const camCpu = process.cpuUsage(camCpuStart);
    const rssAfter = rssMB(nr.pid);
    clearInterval(sampler);
    const status = nr.base ? await getJson(`${nr.base}/status.json`) : {};
    await wait(1000); // frames in flight at s1 arrive
    const reports = await Promise.all(workers.map((w) => ask(w, { cmd: "report", s0, s1 }, "report")));
    const counts = reports.flatMap((r) => r.counts);
    const lat = reports.flatMap((r) => r.lat).sort((a, b) => a - b);
    if (process.env.BENCH_DEBUG)
      console.log(sc.name, "top", lat.slice(-8).join(" "), "p90", percentile(lat, 90));
    const sent = s1 - s0 + 1;
    const clientCpu = reports.reduce((a, r) => a + r.cpuPerSecond, 0);
    const cameraCpu = (camCpu.user + camCpu.system) / 1e6 / elapsed;
    const machineBusy = (machine1.busy - machine0.busy) / elapsed;
    const softirq = (machine1.softirq - machine0.softirq) / elapsed;
    const r3 = (x) => Math.round(x * 1000) / 1000;
    const row = {
      scenario: sc.name,
      viewers: sc.viewers,
      stalled,
      connected: ok,
      fps: sc.fps,
      frameKB: Math.round(frameKB),
      seconds: duration,
      framesSent: sent,
      deliveredMinPct: Math.round((Math.min(...counts) / sent) * 1000) / 10,
      deliveredAvgPct: Math.round((counts.reduce((a, b) => a + b, 0) / counts.length / sent) * 1000) / 10,
      p50ms: Math.round(percentile(lat, 50) * 10) / 10,
      p99ms: Math.round(percentile(lat, 99) * 10) / 10,
      nodeRedCpuPerS: Math.round(nrCpu * 1000) / 1000,
      rssBeforeMB: Math.round(rssBefore),
      rssMarkMB: Math.round(rssMark),
      rssAfterMB: Math.round(rssAfter),
      rssGrowthMB: Math.round(rssAfter - rssBefore),
      rssEvery5sMB: rssSeries.join(" "),
      clientCpuPerS: r3(clientCpu),
      cameraCpuPerS: r3(cameraCpu),
      softirqCpuPerS: r3(softirq),
      // Busy CPU of everything else on the machine (other people's work would skew the latency).
      otherCpuPerS: r3(Math.max(0, machineBusy - softirq - nrCpu - clientCpu - cameraCpu)),
      loadAvg: Math.round(load0 * 100) / 100,
      serverSkipped: status.framesSkipped ?? "-",
      serverDropped: status.viewersDropped ?? "-",
      serverPending: status.pendingFrames ?? "-",
      liveClosed: reports.reduce((a, r) => a + r.closedLive, 0),
    };
    log(`${sc.name}: ${JSON.stringify(row)}`);
    return row;
  } finally {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((r) => {
            w.once("exit", r);
            w.send({ cmd: "close" });
          }),
      ),
    );
    await nr.stop();
    camera.close();
  }
}

/** Waits (at most maxS) until the machine's busy CPU over 2 s is below `threshold` CPU-s/s. */
async function waitQuiet(threshold, maxS, log) {
  const end = Date.now() + maxS * 1000;
  for (;;) {
    const a = machineCpu().busy;
    await wait(2000);
    const busy = (machineCpu().busy - a) / 2;
    if (busy < threshold || Date.now() > end) return busy;
    log(`waiting for a quiet machine: ${busy.toFixed(2)} CPU-s/s busy`);
  }
}

/**
 * Runs the scenarios one after another, each with a fresh Node-RED; returns one row per scenario.
 * Other work on the machine skews latency: with `repeat` > 1 each scenario runs that often and the run
 * with the least foreign CPU is kept; `quiet` waits before each run for the machine to calm down.
 */
async function run({
  duration = 20,
  warmup = 4,
  workers = 2,
  only,
  repeat = 1,
  quiet = 0,
  log = () => undefined,
} = {}) {
  const rows = [];
  for (const sc of SCENARIOS) {
    if (only && !sc.name.startsWith(only)) continue;
    let best;
    for (let i = 0; i < repeat; i++) {
      if (quiet > 0) await waitQuiet(quiet, 300, log);
      const row = await runScenario(sc, { duration, warmup, workers, log });
      if (!best || row.otherCpuPerS < best.otherCpuPerS) best = row;
    }
    rows.push(best);
  }
  return rows;
}

function printTable(rows) {
  const cols = [
    ["scenario", "scenario"],
    ["frameKB", "KB"],
    ["connected", "conn"],
    ["deliveredMinPct", "min %"],
    ["deliveredAvgPct", "avg %"],
    ["p50ms", "p50 ms"],
    ["p99ms", "p99 ms"],
    ["nodeRedCpuPerS", "NR cpu-s/s"],
    ["rssBeforeMB", "rss0 MB"],
    ["rssMarkMB", "rss@start"],
    ["rssAfterMB", "rss1 MB"],
    ["rssGrowthMB", "+MB"],
    ["clientCpuPerS", "client cpu-s/s"],
    ["softirqCpuPerS", "softirq"],
    ["otherCpuPerS", "other"],
    ["serverSkipped", "skipped"],
  ];
  const cells = [cols.map((c) => c[1]), ...rows.map((r) => cols.map((c) => String(r[c[0]])))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  for (const row of cells) console.log(row.map((c, i) => c.padStart(widths[i])).join("  "));
  const ref = rows.find((r) => r.scenario === "200x10");
  if (ref) {
    console.log(
      `\nmjpg-streamer reference (issue): 1.6 CPU-s per 10 s = 0.16 CPU-s/s for 200 viewers @ 10 fps, 75 KB.` +
        ` camrelay: ${ref.nodeRedCpuPerS} CPU-s/s (${ref.frameKB} KB frames).`,
    );
  }
}

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[2] === "--client") {
  clientMain();
} else if (process.argv[2] === "--bare-server") {
  bareServerMain(Number(process.argv[3]));
} else if (require.main === module) {
  console.log(
    `${os.cpus().length} x ${os.cpus()[0].model}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}`,
  );
  run({
    duration: Number(arg("duration", 20)),
    warmup: Number(arg("warmup", 4)),
    workers: Number(arg("workers", 2)),
    only: arg("only"),
    repeat: Number(arg("repeat", 1)),
    quiet: Number(arg("quiet", 0)),
    log: (line) => console.log(line),
  }).then(printTable, (err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

module.exports = { run, SCENARIOS };
