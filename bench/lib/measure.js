// Small shared parts of bench/latency.js and bench/viewers.js: percentiles, the load average, the ffmpeg to
// encode with, and whole-process-tree CPU from /proc (utime+stime of every live descendant plus the
// children each has reaped, so an ffmpeg that exited mid-run still counts).
"use strict";
const fs = require("fs");
const os = require("os");
const { spawnSync } = require("child_process");
const { processes, CLK_TCK } = require("../../test/lib/toolkit");

/** The value at fraction q (0..1) of an ascending array (nearest rank). */
function percentile(sorted, q) {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** [1, 5, 15]-minute load averages. */
const loadAverage = () => os.loadavg().map((v) => +v.toFixed(2));

/** An ffmpeg with libx264: the system's when it has it, else the bundled one. */
function ffmpegBinary() {
  for (const bin of ["/usr/bin/ffmpeg", "/usr/local/bin/ffmpeg"]) {
    const r = spawnSync(bin, ["-hide_banner", "-encoders"], { encoding: "utf8" });
    if (r.status === 0 && /libx264/.test(r.stdout)) return bin;
  }
  return require("@ffmpeg-installer/ffmpeg").path;
}

/** pid and all its descendants. */
function tree(root) {
  const all = processes();
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const p of all) if (p.ppid === out[i]) out.push(p.pid);
  return out;
}

/** CPU seconds of a process tree: each live process's own and its reaped children's. */
function treeCpu(root) {
  let sum = 0;
  for (const pid of tree(root)) {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      sum += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}

/** Summed VmRSS of a process tree, in MiB. */
function treeRssMiB(root) {
  let kb = 0;
  for (const pid of tree(root)) {
    try {
      kb += Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return kb / 1024;
}

module.exports = { percentile, loadAverage, ffmpegBinary, tree, treeCpu, treeRssMiB };

/** test/lib/soak-nodered's startNodeRed, tried twice: on a loaded machine the first start can miss its 30 s. */
async function startNodeRedTwice(opts) {
  const { startNodeRed } = require("../../test/lib/soak-nodered");
  try {
    return await startNodeRed(opts);
  } catch (err) {
    console.error(`Node-RED did not start (${String(err.message).split("\n")[0]}); once more`);
    return startNodeRed(opts);
  }
}

module.exports.startNodeRedTwice = startNodeRedTwice;
