// Starts bench/lib/rtsp_relay.py: the bench camera's H.264 (MPEG-TS over HTTP) as an RTSP camera at
// rtsp://127.0.0.1:<port>/relay, so camrelay reads it as it reads a real camera (camera-source protocol
// "ffmpeg", RTSP over TCP, video copy). An RTSP camera, not the MPEG-TS URL itself, because ffprobe needs
// ~9 s for a live MPEG-TS over HTTP (the demuxer has no header, so probing runs the whole analyzeduration),
// longer than camera-source gives its probe.
"use strict";
const path = require("path");
const { spawn } = require("child_process");
const { freePort, until, waitGone } = require("../../test/lib/toolkit");
const { rtspOptions } = require("../../test/lib/rtsp-server");

async function startRtspRelay(source) {
  const port = await freePort();
  // stdin stays a pipe: its end (this process gone) ends the relay too.
  const child = spawn("/usr/bin/python3", [path.join(__dirname, "rtsp_relay.py")], {
    env: { ...process.env, RELAY_PORT: String(port), RELAY_SOURCE: source },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  let exited = null;
  child.stdout.on("data", (d) => (output = (output + d).slice(-8000)));
  child.stderr.on("data", (d) => (output = (output + d).slice(-8000)));
  child.on("exit", (code, signal) => (exited = `${code ?? signal}`));
  await until(() => /^ready /m.test(output), {
    what: "the GStreamer RTSP relay",
    ms: 20000,
    stop: () => exited && `it exited (${exited})`,
    detail: () => output,
  });
  await until(async () => (await rtspOptions(port)) === 200, { what: "RTSP OPTIONS answered", ms: 10000 });
  return {
    url: `rtsp://127.0.0.1:${port}/relay`,
    pid: child.pid,
    log: () => output,
    async stop() {
      child.stdin.end();
      child.kill("SIGKILL");
      await waitGone(child.pid);
    },
  };
}

module.exports = { startRtspRelay };
