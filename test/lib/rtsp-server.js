// A real RTSP camera for tests and bench/, written by nobody here.
//
// Primary: Debian's GStreamer RTSP server through /usr/bin/python3 (python3-gi, gir1.2-gst-rtsp-server-1.0,
// installed by .ci/run), script test/lib/rtsp_server.py. Mounts: /h264aac, /h264, /h265aac, /h265, /busy (noise at 8x the bitrate), /switch
// (H.264 whose size changes with server.resize(w, h): a new SPS in-band, what a camera does when its
// resolution is changed in its web page), /live (= /h264). Options: width, height, fps, gop, bitrate, user,
// password, only ("udp" | "tcp" | "").
//
// Restart: server.restart({ downMs }) kills the camera and starts it again on the same port after downMs
// (a camera reboot: clients lose the connection, get "connection refused" meanwhile, and reconnect).
// A size change by restart: server.restart({ width, height }).
//
// Fallback, for a machine without GStreamer: ffmpeg cannot serve RTSP itself (its `-rtsp_flags listen`
// only *receives* a stream someone pushes with ANNOUNCE/RECORD; checked with ffmpeg 5.1), so the fallback is
// the npm package rtsp-streaming-server (someone else's RTSP server) with ffmpeg pushing a generated live
// test picture into it. Used when GStreamer is missing and that package resolves; otherwise rtspServer()
// throws an error that says what to install. `backend: "gstreamer" | "node"` forces one.
"use strict";
const path = require("path");
const net = require("net");
const { spawn, execFileSync } = require("child_process");
const { freePort, waitGone, until, FFMPEG } = require("./toolkit");

const SCRIPT = path.join(__dirname, "rtsp_server.py");
// ffprobe on PATH, else the bundled one (a machine with only Node.js and npm has no ffprobe on PATH).
const FFPROBE = require("../../dist/nodes/lib/ffmpeg").resolveFfprobePath();
const PYTHON = "/usr/bin/python3";

let gstOk;
/** True when /usr/bin/python3 has gi with GstRtspServer and the elements the script needs. */
function hasGstreamer() {
  if (gstOk !== undefined) return gstOk;
  try {
    execFileSync(
      PYTHON,
      [
        "-c",
        "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');" +
          "from gi.repository import Gst, GstRtspServer; Gst.init(None);" +
          "import sys; sys.exit(0 if all(Gst.ElementFactory.find(e) for e in ('videotestsrc','x264enc','rtph264pay')) else 1)",
      ],
      { stdio: "ignore", timeout: 15000 },
    );
    gstOk = true;
  } catch {
    gstOk = false;
  }
  return gstOk;
}

function nodeServerModule() {
  try {
    return require(require.resolve("rtsp-streaming-server", { paths: [process.cwd(), __dirname] }));
  } catch {
    return null;
  }
}

/** Sends OPTIONS to the server and resolves its status code (200 once it answers RTSP). */
function rtspOptions(port, host = "127.0.0.1", ms = 2000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    let data = "";
    const done = (v) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(ms, () => done(0));
    sock.on("error", () => done(0));
    sock.on("connect", () => sock.write(`OPTIONS rtsp://${host}:${port}/ RTSP/1.0\r\nCSeq: 1\r\n\r\n`));
    sock.on("data", (d) => {
      data += d;
      const m = /^RTSP\/1\.0 (\d+)/.exec(data);
      if (m) done(Number(m[1]));
    });
  });
}

/** ffprobe of an RTSP URL: the streams as [{codec_name, profile, width, height, sample_rate, ...}]. */
function probeRtsp(url, { ffprobe = FFPROBE, transport = "tcp", timeoutMs = 15000 } = {}) {
  const out = execFileSync(
    ffprobe,
    ["-v", "error", "-rtsp_transport", transport, "-show_entries", "stream", "-of", "json", url],
    { encoding: "utf8", timeout: timeoutMs, stdio: ["ignore", "pipe", "pipe"] },
  );
  return JSON.parse(out).streams || [];
}

async function startGstreamer(o, port) {
  const env = {
    ...process.env,
    RTSP_PORT: String(port),
    RTSP_WIDTH: String(o.width),
    RTSP_HEIGHT: String(o.height),
    RTSP_FPS: String(o.fps),
    RTSP_GOP: String(o.gop),
    RTSP_BITRATE: String(o.bitrate),
    RTSP_ONLY: o.only || "",
    RTSP_PATTERN: o.pattern || "ball",
  };
  if (o.user) Object.assign(env, { RTSP_USER: o.user, RTSP_PASS: o.password || "" });
  // stdin stays a pipe: commands go there, and its end (this process gone) ends the server too.
  const child = spawn(PYTHON, [SCRIPT], { env, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  const replies = [];
  child.stdout.on("data", (d) => {
    output += d;
    for (const line of String(d).split("\n")) if (/^(ok|error) /.test(line)) replies.push(line);
  });
  child.stderr.on("data", (d) => {
    output += d;
    if (output.length > 20000) output = output.slice(-10000);
  });
  let exited = null;
  child.on("exit", (code, signal) => (exited = `${code ?? signal}`));
  await until(() => /^ready /m.test(output), {
    what: "the GStreamer RTSP server",
    ms: 20000,
    stop: () => exited && `it exited (${exited})`,
    detail: () => output,
  });
  await until(async () => (await rtspOptions(port)) === 200, { what: "RTSP OPTIONS answered", ms: 10000 });
  return {
    child,
    log: () => output,
    command: async (line) => {
      const before = replies.length;
      child.stdin.write(line + "\n");
      await until(() => replies.length > before, { what: `reply to "${line}"`, ms: 5000 });
      const reply = replies[replies.length - 1];
      if (!reply.startsWith("ok")) throw new Error(reply);
      return reply;
    },
  };
}

async function startNodeBackend(o, port) {
  const mod = nodeServerModule();
  const RtspServer = mod.default || mod.RtspServer || mod;
  const clientPort = port;
  const serverPort = await freePort();
  const server = new RtspServer({
    serverPort,
    clientPort,
    rtpPortStart: 30000 + (port % 5000) * 4,
    rtpPortCount: 1000,
  });
  await server.start();
  const ffmpegs = [];
  const push = (mountName, codec, audio) => {
    const args = ["-hide_banner", "-loglevel", "error", "-re"];
    args.push("-f", "lavfi", "-i", `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`);
    if (audio) args.push("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000");
    args.push("-pix_fmt", "yuv420p");
    if (codec === "h265") args.push("-c:v", "libx265", "-x265-params", `keyint=${o.gop}:log-level=error`);
    else args.push("-c:v", "libx264", "-g", String(o.gop));
    args.push("-preset", "ultrafast", "-tune", "zerolatency", "-b:v", `${o.bitrate}k`);
    if (audio) args.push("-c:a", "aac", "-ac", "1", "-b:a", "64k");
    args.push("-f", "rtsp", "-rtsp_transport", "tcp", `rtsp://127.0.0.1:${serverPort}/${mountName}`);
    const child = spawn(o.ffmpeg || FFMPEG || "ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
    ffmpegs.push(child);
  };
  push("h264aac", "h264", true);
  push("h264", "h264", false);
  push("live", "h264", false);
  push("h265aac", "h265", true);
  await until(async () => (await rtspOptions(port)) === 200, { what: "rtsp-streaming-server", ms: 10000 });
  return {
    ffmpegs,
    log: () => "",
    command: async () => {
      throw new Error("the rtsp-streaming-server fallback has no /switch mount: restart with another size");
    },
    stopAll: async () => {
      for (const c of ffmpegs) c.kill("SIGKILL");
      await Promise.all(ffmpegs.map((c) => waitGone(c.pid)));
      await server.stop?.();
    },
  };
}

/**
 * Starts a test RTSP camera on a free port: { port, url(mount), backend, resize(w, h), kick(), restart(),
 * stop(), pids() }. Default 640x360 at 15 fps, a keyframe every 15 frames, 1000 kbit/s.
 */
async function rtspServer(options = {}) {
  const o = { width: 640, height: 360, fps: 15, bitrate: 1000, ...options };
  o.gop = o.gop || o.fps;
  let backend = o.backend;
  if (!backend) backend = hasGstreamer() ? "gstreamer" : nodeServerModule() ? "node" : null;
  if (!backend) {
    throw new Error(
      "no RTSP server for the tests: install GStreamer's (apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi " +
        "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly), or npm i rtsp-streaming-server",
    );
  }
  const port = o.port || (await freePort());
  let running = null;
  const start = async () => {
    running = backend === "gstreamer" ? await startGstreamer(o, port) : await startNodeBackend(o, port);
  };
  const halt = async () => {
    if (!running) return;
    const r = running;
    running = null;
    if (r.child) {
      r.child.stdin.end();
      r.child.kill("SIGKILL");
      await waitGone(r.child.pid);
    } else await r.stopAll();
  };
  await start();
  return {
    port,
    backend,
    options: o,
    /** rtsp URL of a mount (default /h264aac), with the credentials when asked for. */
    url: (mountName = "h264aac", { credentials = false } = {}) => {
      const cred =
        credentials && o.user ? `${encodeURIComponent(o.user)}:${encodeURIComponent(o.password)}@` : "";
      return `rtsp://${cred}127.0.0.1:${port}/${mountName.replace(/^\//, "")}`;
    },
    /** Changes the size of /switch while clients play it (GStreamer only). */
    resize: async (width, height) => running.command(`size ${width} ${height}`),
    /** Closes every client session (the server keeps running). */
    kick: async () => running.command("kick"),
    /** Stops the camera, waits downMs, starts it again on the same port (with any options changed). */
    restart: async ({ downMs = 0, ...changes } = {}) => {
      await halt();
      Object.assign(o, changes);
      if (downMs) await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
    pids: () => (running ? (running.child ? [running.child.pid] : running.ffmpegs.map((c) => c.pid)) : []),
    log: () => (running ? running.log() : ""),
    stop: halt,
  };
}

module.exports = { rtspServer, hasGstreamer, probeRtsp, rtspOptions, SCRIPT };
