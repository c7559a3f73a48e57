// The one test toolkit, shared by the specs, the test/lib helpers, the soak suite, the browser suite and
// bench/: waiting (wait, until), the /proc walker (processes, children, fds, memory, CPU), the JPEG fixture
// maker (real frames from ffmpeg's test source) and the Node-RED process helper (a real `node-red/red.js`
// in a child process with camrelay linked into its user directory).
//
// Older helper modules re-export these under the names they always had (transcode-helpers' until, wait,
// alive, waitGone, processesMatching, testJpegs; stream-out-helpers' until and makeJpegs; fake-cameras'
// makeFrames; soak-nodered's childrenOf, fdsOf, rssOf): there is one implementation of each, here.
"use strict";
const fs = require("fs");
const os = require("os");
const net = require("net");
const path = require("path");
const { spawn, execFileSync } = require("child_process");

const ROOT = path.join(__dirname, "..", "..");

// ---- waiting ---------------------------------------------------------------------------------------

/** Resolves after `ms` milliseconds. */
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `test()` (sync or async) until it returns a truthy value and resolves that value; rejects with
 * "timed out waiting for <what>" after `ms`. Three ways to call it:
 *   until(test, what, ms = 5000)         (the order stream-out-helpers and Node-RED process helpers used)
 *   until(test, ms, what)                (the order transcode-helpers used)
 *   until(test, { what, ms, every, retryErrors, detail, stop })
 * every: poll interval in ms (20). retryErrors: a throwing test() counts as false instead of rejecting.
 * detail(): text appended to the error (e.g. a process log). stop(): a reason (string) to give up early.
 */
async function until(test, a, b) {
  let o;
  if (a !== null && typeof a === "object") o = a;
  else if (typeof a === "number") o = { ms: a, what: b };
  else o = { what: a, ms: b };
  const { what = "condition", every = 20, retryErrors = false, detail, stop } = o;
  const ms = o.ms ?? 5000;
  const fail = (text) => new Error(detail ? `${text}:\n${detail()}` : text);
  const t0 = Date.now();
  for (;;) {
    let v;
    try {
      v = await test();
    } catch (err) {
      if (!retryErrors) throw err;
      v = false;
    }
    if (v) return v;
    const reason = stop && stop();
    if (reason) throw fail(`${reason} while waiting for ${what}`);
    if (Date.now() - t0 > ms) throw fail(`timed out waiting for ${what}`);
    await wait(every);
  }
}

// ---- /proc -----------------------------------------------------------------------------------------

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" })) || 100;
  } catch {
    return 100;
  }
})();

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * Every process on the machine as { pid, ppid, state, cmd (argv array), environ() (its environment as one
 * string, read on demand) }, skipping processes that vanish while being read. `filter` picks some.
 */
function processes(filter = () => true) {
  const out = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = statFields(entry);
      const p = {
        pid: Number(entry),
        ppid: Number(fields[1]),
        state: fields[0],
        cmd: fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean),
        environ: () => fs.readFileSync(`/proc/${entry}/environ`, "latin1"),
      };
      if (filter(p)) out.push(p);
    } catch {
      // gone meanwhile (or not ours to read)
    }
  }
  return out;
}

/** The live (not zombie) child processes of `pid` as { pid, cmd }. */
function childrenOf(pid) {
  return processes((p) => p.ppid === pid && p.state !== "Z").map(({ pid: child, cmd }) => ({
    pid: child,
    cmd,
  }));
}

/** pids of this process's children (zombies too) whose command line contains `needle`. */
function processesMatching(needle) {
  return processes((p) => p.ppid === process.pid && `${p.cmd.join(" ")} `.includes(needle)).map((p) => p.pid);
}

/** Every live process that inherited `marker` in its environment (descendants, orphans included). */
function processesWithEnv(marker) {
  return processes((p) => p.state !== "Z" && p.environ().includes(marker)).map(({ pid, cmd }) => ({
    pid,
    cmd,
  }));
}

/** Open file descriptors of a process, by kind: socket, pipe, file, other (and the files' paths). */
function fdsOf(pid = "self") {
  const kinds = { total: 0, socket: 0, pipe: 0, file: 0, other: 0, files: [] };
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    kinds.total++;
    if (target.startsWith("socket:")) kinds.socket++;
    else if (target.startsWith("pipe:")) kinds.pipe++;
    else if (target.startsWith("/")) {
      kinds.file++;
      kinds.files.push(target);
    } else kinds.other++;
  }
  return kinds;
}

/** How many file descriptors a process (this one by default) has open. */
const openFds = (pid = "self") => fs.readdirSync(`/proc/${pid}/fd`).length;

/** Resident memory of a process in bytes (0 when /proc does not say). */
function rssOf(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** utime+stime of a process in seconds, or undefined once it is gone. */
function cpuSeconds(pid) {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/** Machine-wide CPU seconds: busy (not idle/iowait) and softirq (loopback TCP work lands there). */
function machineCpu() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((x, y) => x + y, 0);
  return { busy: (total - f[3] - f[4]) / CLK_TCK, softirq: f[6] / CLK_TCK };
}

/** True while a process with this pid exists. */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true once the process is gone, false if it is still there after `ms`. */
async function waitGone(pid, ms = 5000) {
  return until(() => !alive(pid), { ms, every: 50 }).catch(() => !alive(pid));
}

// ---- ports -----------------------------------------------------------------------------------------

/** A local TCP port nothing listens on (just now). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---- JPEG fixtures ---------------------------------------------------------------------------------

const FFMPEG = require("@ffmpeg-installer/ffmpeg").path;

/** ffmpeg arguments for `count` JPEGs of testsrc2 on stdout; `noise` makes them large (hard to compress). */
function jpegArgs({
  width = 320,
  height = 240,
  size = `${width}x${height}`,
  count = 10,
  noise = 0,
  quality = 5,
}) {
  const filter = noise > 0 ? `,noise=alls=${noise}:allf=t` : "";
  return [
    ...["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=10${filter}`],
    ...["-frames:v", String(count), "-q:v", String(quality), "-f", "image2pipe", "-c:v", "mjpeg", "pipe:1"],
  ];
}

/** Splits back-to-back JPEGs (ffmpeg image2pipe) at each EOI that ends the data or precedes a marker. */
function splitJpegs(data) {
  const frames = [];
  let start = 0;
  for (let i = 2; i < data.length - 1; i++) {
    if (data[i] === 0xff && data[i + 1] === 0xd9 && (i + 2 === data.length || data[i + 2] === 0xff)) {
      frames.push(data.subarray(start, i + 2));
      start = i + 2;
      i++;
    }
  }
  return frames;
}

const jpegCache = new Map();

/**
 * Real JPEG frames from the bundled ffmpeg's testsrc2, made once per setting (the array is a fresh copy,
 * the frames are shared). Options: width 320, height 240 (or size "WxH"), count 10, noise 0, quality 5.
 */
function jpegFrames(options = {}) {
  const args = jpegArgs(options);
  const key = args.join(" ");
  if (!jpegCache.has(key))
    jpegCache.set(key, splitJpegs(execFileSync(FFMPEG, args, { maxBuffer: 256 << 20 })));
  return [...jpegCache.get(key)];
}

/** The same frames as jpegFrames(), made without blocking the event loop. */
function makeJpegs(options = {}) {
  const args = jpegArgs(options);
  const key = args.join(" ");
  if (jpegCache.has(key)) return Promise.resolve([...jpegCache.get(key)]);
  return new Promise((resolve, reject) => {
    const p = spawn(FFMPEG, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    let err = "";
    p.stdout.on("data", (d) => out.push(d));
    p.stderr.on("data", (d) => (err += d));
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) return reject(new Error(`ffmpeg could not make test JPEGs: ${err}`));
      jpegCache.set(key, splitJpegs(Buffer.concat(out)));
      resolve([...jpegCache.get(key)]);
    });
  });
}

// ---- a real Node-RED process -----------------------------------------------------------------------

/**
 * Starts `node node-red/red.js --userDir <tmp> --settings <tmp>/settings.js --port <free>` with camrelay
 * linked into <tmp>/node_modules (as a user's `npm install` would). Options:
 *   settings   object (written to settings.js over uiHost 127.0.0.1, uiPort, flowFile flows.json), or
 *              (userDir) => path of a settings file the caller wrote itself
 *   flows      written to flows.json (default []) when settings is an object
 *   env        extra environment; nodeArgs: arguments for node before red.js; redJs: another red.js
 *   prefix     of the temporary user directory; cwd: (userDir) => working directory (default: ours)
 *   ready(nr)  true (or a promise of it) once the process counts as started (default: "Started flows"
 *              logged); timeoutMs (30000) for that
 * Resolves { child, pid, port, base, userDir, output (live string of stdout+stderr), exited, stop(),
 * cleanup() } once ready; stop() ends it (SIGTERM, then SIGKILL after killAfterMs), cleanup() also removes
 * the directory. On a failed start the process is killed, the directory removed, and the log is in the error.
 */
/** Whether something accepts a TCP connection on 127.0.0.1:`port` now. */
function portAccepts(port) {
  return new Promise((resolve) => {
    const sock = require("net").connect(port, "127.0.0.1");
    sock.once("connect", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}

async function startNodeRedProcess({
  settings = {},
  flows = [],
  env = {},
  nodeArgs = [],
  redJs = require.resolve("node-red/red.js"),
  prefix = "camrelay-nr-",
  cwd,
  // "Started flows" can be logged a moment before the HTTP server listens: also wait for the port to accept.
  ready = async (nr) => /Started flows/.test(nr.output) && (await portAccepts(nr.port)),
  timeoutMs = 30000,
  killAfterMs = 15000,
} = {}) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(path.join(userDir, "node_modules", "@camrelay"), { recursive: true });
  fs.symlinkSync(ROOT, path.join(userDir, "node_modules", "@camrelay", "node-red-camrelay"), "dir");
  const port = await freePort();
  let settingsFile;
  if (typeof settings === "function") settingsFile = settings(userDir);
  else {
    settingsFile = path.join(userDir, "settings.js");
    const all = { uiHost: "127.0.0.1", uiPort: port, flowFile: "flows.json", ...settings };
    fs.writeFileSync(settingsFile, `module.exports = ${JSON.stringify(all, null, 2)};\n`);
    fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows));
  }
  const child = spawn(
    process.execPath,
    [...nodeArgs, redJs, "--userDir", userDir, "--settings", settingsFile, "--port", String(port)],
    { cwd: cwd && cwd(userDir), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } },
  );
  const nr = {
    child,
    pid: child.pid,
    port,
    userDir,
    base: `http://127.0.0.1:${port}`,
    output: "",
    exited: false,
  };
  const collect = (d) => (nr.output += d.toString());
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exit = new Promise((resolve) => child.once("exit", resolve));
  exit.then(() => (nr.exited = true));
  nr.stop = async () => {
    if (nr.exited || child.exitCode !== null || child.signalCode !== null) return;
    const kill = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.kill("SIGTERM");
    await exit;
    clearTimeout(kill);
  };
  nr.cleanup = async () => {
    await nr.stop();
    fs.rmSync(userDir, { recursive: true, force: true });
  };
  try {
    await until(() => ready(nr), {
      what: "Node-RED to start",
      ms: timeoutMs,
      every: 50,
      retryErrors: true,
      stop: () => nr.exited && "Node-RED exited",
      detail: () => nr.output.slice(-3000),
    });
  } catch (err) {
    child.kill("SIGKILL");
    await nr.cleanup();
    throw err;
  }
  return nr;
}

/**
 * The ffmpeg builds to run ffmpeg-dependent cases against: the system's (Debian's on PATH, when it is
 * installed and runs) and the bundled @ffmpeg-installer one, which is always there. On a bare machine the
 * list is the bundled build alone, so the same cases still run.
 */
function ffmpegBuilds() {
  const builds = [];
  const { spawnSync } = require("child_process");
  for (const dir of ["/usr/bin", "/usr/local/bin"]) {
    const ffmpeg = path.join(dir, "ffmpeg");
    const ffprobe = path.join(dir, "ffprobe");
    const runs = (bin) => spawnSync(bin, ["-version"], { encoding: "utf8" }).status === 0;
    if (runs(ffmpeg) && runs(ffprobe)) {
      const version = /version (\S+)/.exec(spawnSync(ffmpeg, ["-version"], { encoding: "utf8" }).stdout)?.[1];
      builds.push({ name: `system ffmpeg ${version}`, ffmpeg, ffprobe });
      break;
    }
  }
  builds.push({
    name: "bundled ffmpeg 4.x",
    ffmpeg: require("@ffmpeg-installer/ffmpeg").path,
    ffprobe: require("@ffprobe-installer/ffprobe").path,
  });
  return builds;
}

module.exports = {
  ffmpegBuilds,
  ROOT,
  wait,
  until,
  CLK_TCK,
  processes,
  childrenOf,
  processesMatching,
  processesWithEnv,
  fdsOf,
  openFds,
  rssOf,
  cpuSeconds,
  machineCpu,
  alive,
  waitGone,
  freePort,
  FFMPEG,
  jpegFrames,
  makeJpegs,
  splitJpegs,
  startNodeRedProcess,
};
