// The latency bench's test camera, served by the bench process itself:
//   GET /mjpeg   multipart/x-mixed-replace JPEGs (camrelay reads it with camera-source protocol "mjpeg")
//   GET /cam.ts  the same pictures as H.264 in MPEG-TS, encoded by one ffmpeg (libx264 -tune zerolatency)
//                that reads /mjpeg (camrelay reads it with camera-source protocol "ffmpeg", video copy)
// Every picture carries its send time in a strip of blocks (./stamp.js). Frames are due on a fixed clock
// (t0 + k/fps); each is encoded a little ahead and stamped with the time it is due, then written at that
// time, so the stamp is the moment the picture leaves the camera (a late frame goes out at once, and the
// lateness counts as latency: the bench never flatters). JPEGs come from camrelay's own encoder (dist/),
// ~15 ms for 640x360 here, where jpeg-js rebuilds its tables on every call (~100 ms).
"use strict";
const http = require("http");
const { spawn } = require("child_process");
const { encodeJpeg } = require("../../dist/nodes/lib/codec/jpeg-encoder");
const { drawStamp, STAMP_Y, STAMP_BLOCK } = require("./stamp");
const { TsFanout } = require("./ts-fanout");

const BOUNDARY = "camrelaybenchframe";
const LEAD_MS = 40;

/** A 4:2:0 picture padded to whole 16x16 blocks, with a dark gradient background. */
function background(width, height) {
  const stride = Math.ceil(width / 16) * 16;
  const rows = Math.ceil(height / 16) * 16;
  const y = new Uint8Array(stride * rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < stride; c++) y[r * stride + c] = 40 + Math.round((60 * c) / stride + (40 * r) / rows);
  }
  const cb = new Uint8Array((stride / 2) * (rows / 2)).fill(120);
  const cr = new Uint8Array((stride / 2) * (rows / 2)).fill(136);
  return { width, height, stride, rows, y, cb, cr };
}

/**
 * Starts the camera on a free port. Options: width (640), height (360), fps (15), quality (80), ffmpeg
 * (binary for /cam.ts; none = no H.264), bitrate (kbit/s, 2000), gop (fps), rtpPort (H.264 as RTP to
 * this UDP port on 127.0.0.1 instead of /cam.ts). Resolves { port, mjpegUrl,
 * tsUrl, stats(), stop() }.
 */
async function startStampCamera(options = {}) {
  const o = { width: 640, height: 360, fps: 15, quality: 80, bitrate: 2000, ...options };
  o.gop = o.gop || o.fps;
  const bg = background(o.width, o.height);
  const pic = { ...bg, y: new Uint8Array(bg.y) };
  const period = 1000 / o.fps;
  const mjpegClients = new Set();
  let ts = null;
  let stopped = false;
  const late = [];
  let sent = 0;

  /** The picture due at `due`: the background, a box that moves one step per frame, the stamp. */
  function render(due, k) {
    pic.y.set(bg.y);
    const box = 48;
    const x0 = ((k * 8) % (bg.stride - box)) & ~15;
    const y0 = STAMP_Y + STAMP_BLOCK + 48;
    for (let r = 0; r < box; r++) pic.y.fill(200, (y0 + r) * bg.stride + x0, (y0 + r) * bg.stride + x0 + box);
    drawStamp(pic.y, bg.stride, due);
    return encodeJpeg(pic, o.quality);
  }

  function send(jpeg) {
    const head = Buffer.from(
      `--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`,
      "latin1",
    );
    const part = Buffer.concat([head, jpeg, Buffer.from("\r\n")]);
    for (const res of mjpegClients) {
      // Newest wins: a viewer whose socket is still full skips this picture.
      if (res.writableLength > 0) continue;
      res.write(part);
    }
    sent++;
  }

  const sleepUntil = (t) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
  async function clock() {
    const t0 = Date.now() + 100;
    let k = 0;
    while (!stopped) {
      const due = t0 + k * period;
      await sleepUntil(due - LEAD_MS);
      if (stopped) break;
      const jpeg = render(Math.round(due), k);
      await sleepUntil(due);
      const lateBy = Date.now() - due;
      if (late.length < 100000) late.push(lateBy);
      send(jpeg);
      k++;
      // Behind by more than a frame (the machine stalled us): skip the frames that are past, keep the clock.
      if (Date.now() - (t0 + k * period) > period) k = Math.ceil((Date.now() - t0) / period);
    }
  }

  const server = http.createServer((req, res) => {
    const url = req.url.split("?")[0];
    if (url === "/mjpeg") {
      res.writeHead(200, {
        "Content-Type": `multipart/x-mixed-replace; boundary=${BOUNDARY}`,
        "Cache-Control": "no-store",
        Connection: "close",
      });
      res.socket.setNoDelay(true);
      mjpegClients.add(res);
      req.on("close", () => mjpegClients.delete(res));
    } else if (url === "/cam.ts" && ts) {
      ts.serve(req, res);
    } else {
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("not found\n");
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  const base = `http://127.0.0.1:${port}`;

  let encoder = null;
  let encoderLog = "";
  if (o.ffmpeg) {
    encoder = spawn(
      o.ffmpeg,
      [
        ...["-hide_banner", "-nostdin", "-loglevel", "error"],
        ...["-fflags", "nobuffer", "-flags", "low_delay", "-use_wallclock_as_timestamps", "1"],
        ...["-f", "mpjpeg", "-i", `${base}/mjpeg`],
        ...["-an", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-pix_fmt", "yuv420p"],
        // One slice a picture (zerolatency would cut each into one per thread), as most cameras send.
        ...["-x264-params", "sliced-threads=0", "-threads", "1"],
        ...["-g", String(o.gop), "-keyint_min", String(o.gop), "-sc_threshold", "0"],
        ...["-b:v", `${o.bitrate}k`, "-maxrate", `${o.bitrate}k`, "-bufsize", `${o.bitrate}k`],
        ...["-vsync", "passthrough"],
        // RTP over UDP on loopback (o.rtpPort): each picture leaves as its packets, marker bit on the last,
        // so the relay re-packs it at once; MPEG-TS (the default) holds every picture until the next PES
        // starts in the demuxer, a picture's time (67 ms at 15 fps) before camrelay even sees it.
        ...(o.rtpPort
          ? ["-payload_type", "96", "-f", "rtp", `rtp://127.0.0.1:${o.rtpPort}?pkt_size=1200`]
          : ["-f", "mpegts", "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1", "pipe:1"]),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    encoder.stderr.on("data", (d) => (encoderLog = (encoderLog + d).slice(-4000)));
    if (!o.rtpPort) ts = new TsFanout(encoder.stdout);
    else encoder.stdout.resume(); // the SDP ffmpeg prints
  }

  const running = clock();
  return {
    port,
    mjpegUrl: `${base}/mjpeg`,
    tsUrl: `${base}/cam.ts`,
    encoderPid: encoder?.pid,
    encoderLog: () => encoderLog,
    /** Frames sent, and how late the clock sent them (ms, median and max). */
    stats() {
      const s = [...late].sort((a, b) => a - b);
      return { sent, lateMedianMs: s[s.length >> 1] ?? 0, lateMaxMs: s[s.length - 1] ?? 0 };
    },
    async stop() {
      stopped = true;
      await running;
      if (encoder && encoder.exitCode === null) {
        const gone = new Promise((r) => encoder.once("exit", r));
        encoder.kill("SIGKILL");
        await gone;
      }
      for (const res of mjpegClients) res.destroy();
      ts?.closeAll();
      await new Promise((r) => server.close(r));
    },
  };
}

module.exports = { startStampCamera };
