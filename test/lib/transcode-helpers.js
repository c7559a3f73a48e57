"use strict";
// Shared by the ffmpeg, ffmpeg-source and transcode specs: ffprobe/ffmpeg readers, nginx-rtmp, recorder
// settings. wait, until, alive, waitGone, freePort, processesMatching and testJpegs are the toolkit's
// (./toolkit.js), re-exported here under the names specs import.
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const {
  wait,
  until,
  alive,
  waitGone,
  freePort,
  processesMatching,
  jpegFrames,
  FFMPEG,
} = require("./toolkit");
const FFPROBE = require("@ffprobe-installer/ffprobe").path;

function writeScript(dir, name, body) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
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

/** JPEG frames of the lavfi test source (the toolkit's maker, under this module's old name). */
const testJpegs = (count, size = "320x240", quality = 5) => jpegFrames({ count, size, quality });

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
      await until(() => server.stat(), { ms: 5000, every: 100 }).catch(() => undefined);
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
      const published = new RegExp(`<name>${key}</name>[\\s\\S]*?<publishing/>`);
      return until(async () => published.test(await server.stat()), { ms, every: 200 }).catch(() => false);
    },
  };
  await server.restart();
  return server;
}

/** The video settings the core specs encode with (quick libx264, 1 s keyframes); overrides win. */
function video(overrides = {}) {
  const args = require("../../dist/nodes/lib/transcode/args");
  return { quality: 28, bitrate: 0, keyframeInterval: 1, encoder: args.ENCODERS.libx264, ...overrides };
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
  video,
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
