"use strict";
// Shared by the ffmpeg, ffmpeg-source and transcode specs: process and port checks, test clips.
const fs = require("fs");
const net = require("net");
const path = require("path");
const { execFileSync } = require("child_process");

const FFMPEG = require("@ffmpeg-installer/ffmpeg").path;
const FFPROBE = require("@ffprobe-installer/ffprobe").path;

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves fn()'s first truthy value, polling every 25 ms; throws "timed out waiting for <what>" after `ms`. */
async function until(fn, ms, what) {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await wait(25);
  }
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
  const until = Date.now() + ms;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

function writeScript(dir, name, body) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

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

/** pids of this process's children whose command line contains `needle` (from /proc). */
function processesMatching(needle) {
  const pids = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").replace(/\0/g, " ");
      if (cmd.includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** `ffprobe -show_format -show_streams [-count_frames]` as JSON. */
function ffprobe(file, countFrames = false) {
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"];
  if (countFrames) args.push("-count_frames");
  return JSON.parse(execFileSync(FFPROBE, [...args, file], { encoding: "utf8" }));
}

/**
 * Reads a file or playlist with the bundled ffmpeg (decoding every frame): { codec, frames, width, height }.
 * For MPEG-TS (HLS segments): the bundled ffprobe build crashes (SIGSEGV) on any MPEG-TS input.
 * A live playlist must be finished (#EXT-X-ENDLIST) first.
 */
function ffmpegRead(input) {
  const { spawnSync } = require("child_process");
  const r = spawnSync(FFMPEG, ["-hide_banner", "-i", input, "-map", "0:v:0", "-f", "null", "-"], {
    encoding: "utf8",
    timeout: 20000, // a live playlist (no ENDLIST) would be followed forever
  });
  if (r.status !== 0) throw new Error(`ffmpeg could not read ${input}: ${r.stderr.slice(-500)}`);
  const video = /Stream #\S+.*?: Video: (\w+).*?, (\d+)x(\d+)/.exec(r.stderr);
  const frames = [...r.stderr.matchAll(/frame=\s*(\d+)/g)].pop();
  return {
    codec: video?.[1],
    width: Number(video?.[2]),
    height: Number(video?.[3]),
    frames: frames ? Number(frames[1]) : 0,
  };
}

/** JPEG frames of the lavfi test source, made once by the bundled ffmpeg. */
function testJpegs(count, size = "320x240", quality = 5) {
  const out = execFileSync(
    FFMPEG,
    ["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=10`, "-frames:v", String(count)].concat([
      "-f",
      "image2pipe",
      "-c:v",
      "mjpeg",
      "-q:v",
      String(quality),
      "pipe:1",
    ]),
    { maxBuffer: 256 << 20 },
  );
  const frames = [];
  let start = 0;
  for (let i = 2; i < out.length - 1; i++) {
    if (out[i] === 0xff && out[i + 1] === 0xd9 && (i + 2 === out.length || out[i + 2] === 0xff)) {
      frames.push(out.subarray(start, i + 2));
      start = i + 2;
      i++;
    }
  }
  return frames;
}

/** The nginx binary and its RTMP module (Debian: nginx + libnginx-mod-rtmp), or why they cannot be used. */
function findNginxRtmp() {
  const bins = (process.env.PATH || "").split(path.delimiter).concat(["/usr/sbin", "/usr/local/sbin"]);
  const nginx = bins.map((d) => path.join(d, "nginx")).find((f) => fs.existsSync(f));
  const module_ = ["/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"]
    .map((d) => path.join(d, "ngx_rtmp_module.so"))
    .find((f) => fs.existsSync(f));
  if (!nginx) return { missing: "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)" };
  if (!module_) return { missing: "the nginx RTMP module is missing (apt-get install libnginx-mod-rtmp)" };
  return { nginx, module: module_ };
}

/**
 * Starts nginx in the foreground as our child: an RTMP server (`application live`, live on) and an HTTP server
 * with /stat (rtmp_stat). Returns { rtmpPort, httpPort, restart(), stop() }; stop() kills it.
 */
async function startNginxRtmp(dir) {
  const found = findNginxRtmp();
  if (found.missing) throw new Error(found.missing);
  const { spawn } = require("child_process");
  const rtmpPort = await freePort();
  const httpPort = await freePort();
  const conf = path.join(dir, "nginx.conf");
  fs.writeFileSync(
    conf,
    [
      `load_module ${found.module};`,
      "daemon off;",
      "master_process off;",
      "worker_processes 1;",
      `error_log ${dir}/error.log warn;`,
      `pid ${dir}/nginx.pid;`,
      "events { worker_connections 64; }",
      `rtmp { server { listen 127.0.0.1:${rtmpPort}; application live { live on; record off; } } }`,
      "http {",
      "  access_log off;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${dir}/${t};`),
      `  server { listen 127.0.0.1:${httpPort}; location /stat { rtmp_stat all; } }`,
      "}",
    ].join("\n"),
  );
  let proc;
  const server = {
    rtmpPort,
    httpPort,
    async restart() {
      proc = spawn(found.nginx, ["-p", dir, "-c", conf], { stdio: ["ignore", "ignore", "inherit"] });
      const until = Date.now() + 5000;
      while (!(await server.stat()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    },
    async stop() {
      const p = proc;
      proc = undefined;
      if (!p || p.exitCode !== null) return;
      p.kill("SIGKILL");
      await waitGone(p.pid, 5000);
    },
    /** The rtmp_stat XML, or "" while nginx is down. */
    stat() {
      return new Promise((resolve) => {
        require("http")
          .get(`http://127.0.0.1:${httpPort}/stat`, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve(body));
          })
          .on("error", () => resolve(""));
      });
    },
    /** Resolves true once nginx reports `key` as published, false after `ms`. */
    async publishing(key, ms) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        if (new RegExp(`<name>${key}</name>[\\s\\S]*?<publishing/>`).test(await server.stat())) return true;
        await new Promise((r) => setTimeout(r, 200));
      }
      return false;
    },
  };
  await server.restart();
  return server;
}

/** An `ffmpeg-transcode` mp4 recorder (id "rec", wired to "out") with quick test settings; props override. */
function recorderConfig(props = {}) {
  return {
    id: "rec",
    type: "ffmpeg-transcode",
    preset: "mp4",
    preRoll: 0,
    postRoll: 0,
    duration: 0,
    maxDuration: 300,
    quality: 30,
    keyframeInterval: 1,
    encoder: "libx264",
    wires: [["out"]],
    ...props,
  };
}

module.exports = {
  wait,
  until,
  recorderConfig,
  findNginxRtmp,
  startNginxRtmp,
  FFMPEG,
  FFPROBE,
  alive,
  waitGone,
  writeScript,
  freePort,
  processesMatching,
  ffprobe,
  ffmpegRead,
  testJpegs,
};
