// A camera that really sends its bitrate, for bench/viewers.js: `seconds` of ffmpeg's testsrc2 with moving
// noise (so the encoder needs every bit it may use, as a real street scene does; the GStreamer fixture's
// plain ball pattern comes out at ~0.3 Mbit/s whatever bitrate it is given), encoded once by libx264 at a
// constant `bitrate` (HRD CBR, filler included) with a keyframe every `gop` frames, then looped at real
// speed without re-encoding (-re -stream_loop -1 -c copy: a few % of a core) as MPEG-TS over HTTP at
// /cam.ts. bench/lib/rtsp-relay.js turns that into an RTSP camera.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const { spawn } = require("child_process");
const { TsFanout } = require("./ts-fanout");

function ffmpegRun(bin, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err = (err + d).slice(-3000)));
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${err}`))));
  });
}

/** Options: ffmpeg, width (1280), height (720), fps (15), gop (fps), bitrate (kbit/s, 2000), seconds (10). */
async function startTsCamera(options) {
  const o = { width: 1280, height: 720, fps: 15, bitrate: 2000, seconds: 10, ...options };
  o.gop = o.gop || o.fps;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-bench-tscam-"));
  const clip = path.join(dir, "clip.ts");
  const k = `${o.bitrate}k`;
  await ffmpegRun(o.ffmpeg, [
    ...["-hide_banner", "-loglevel", "error", "-f", "lavfi"],
    ...["-i", `testsrc2=size=${o.width}x${o.height}:rate=${o.fps},noise=alls=14:allf=t+u`],
    ...["-t", String(o.seconds), "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency"],
    ...["-x264-params", "sliced-threads=0:nal-hrd=cbr", "-pix_fmt", "yuv420p"],
    ...["-g", String(o.gop), "-keyint_min", String(o.gop), "-sc_threshold", "0"],
    ...["-b:v", k, "-minrate", k, "-maxrate", k, "-bufsize", k, "-f", "mpegts", clip],
  ]);
  const player = spawn(
    o.ffmpeg,
    [
      ...["-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip],
      ...["-c", "copy", "-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "pipe:1"],
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const ts = new TsFanout(player.stdout);
  const server = http.createServer((req, res) => {
    if (req.url.split("?")[0] === "/cam.ts") ts.serve(req, res);
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    tsUrl: `http://127.0.0.1:${server.address().port}/cam.ts`,
    clipKbps: Math.round((fs.statSync(clip).size * 8) / 1000 / o.seconds),
    async stop() {
      if (player.exitCode === null) {
        const gone = new Promise((r) => player.once("exit", r));
        player.kill("SIGKILL");
        await gone;
      }
      ts.closeAll();
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports = { startTsCamera };
