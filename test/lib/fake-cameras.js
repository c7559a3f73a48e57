// Fake cameras served by the tests themselves on loopback: HTTP MJPEG (with quirks), JPEG snapshots,
// Canon VB native port and Canon WebView. Each records its connections so tests can count them.
"use strict";
const http = require("http");
const net = require("net");
const crypto = require("crypto");
const { jpegFrames, wait } = require("./toolkit");

/** Real JPEG frames from the bundled ffmpeg's test source, made once per size (the toolkit's maker). */
const makeFrames = (count = 10, size = "320x240") => jpegFrames({ count, size });

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

/** Checks Basic or Digest credentials; answers 401 with a challenge and returns false when they are wrong. */
function checkAuth(req, res, auth) {
  if (!auth) return true;
  const header = req.headers.authorization || "";
  if (auth.scheme === "basic") {
    const expected = "Basic " + Buffer.from(`${auth.user}:${auth.password}`).toString("base64");
    if (header === expected) return true;
    res.writeHead(401, { "WWW-Authenticate": 'Basic realm="fake"' });
    res.end();
    return false;
  }
  const realm = "fake-digest";
  const nonce = auth.nonce || (auth.nonce = crypto.randomBytes(8).toString("hex"));
  if (header.startsWith("Digest ")) {
    const p = {};
    header.replace(/(\w+)="?([^",]*)"?/g, (_m, k, v) => (p[k] = v));
    const md5 = (s) => crypto.createHash("md5").update(s).digest("hex");
    const ha1 = md5(`${auth.user}:${realm}:${auth.password}`);
    const ha2 = md5(`${req.method}:${p.uri}`);
    const expected = md5(`${ha1}:${p.nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
    if (p.username === auth.user && p.nonce === nonce && p.response === expected && p.uri === req.url)
      return true;
  }
  res.writeHead(401, {
    "WWW-Authenticate": `Digest realm="${realm}", qop="auth", nonce="${nonce}", opaque="abc"`,
  });
  res.end();
  return false;
}

/**
 * HTTP MJPEG camera. Options: fps, frames, contentLength (default true), boundary ("frame"),
 * headerBoundary (what the Content-Type header says), lf (LF line ends), auth {scheme,user,password},
 * dropAfter (close mid-frame after N frames), silentAfter (stop sending after N frames), status, html.
 * Faults a test can cause while it runs:
 *   cam.cutNext()                every open connection sends half of its next frame, then drops
 *   cam.failNext(status, count)  the next `count` requests get `status` (401 comes with a Basic challenge)
 *   cam.setFrames(frames)        send these frames from now on (e.g. another resolution)
 *   cam.endlessNext(count)       the next `count` connections send one frame, then a frame that never ends
 *   cam.silence(on)              open connections stay open but get nothing while on
 *   cam.restart(downMs)          drop everything, stop listening, listen again on the same port after downMs
 */
async function mjpegCamera(opts = {}) {
  let frames = opts.frames || makeFrames();
  const fps = opts.fps || 10;
  const cam = { connections: 0, open: 0, requests: [], sent: 0, restarts: 0, endlessBytes: 0 };
  const sockets = new Set();
  const responses = new Set();
  const faults = { status: 0, statusCount: 0, endless: 0, silent: false, cut: new Set() };
  const server = http.createServer((req, res) => {
    cam.requests.push({ url: req.url, headers: req.headers, time: Date.now() });
    if (!checkAuth(req, res, opts.auth)) return;
    if (faults.statusCount > 0) {
      faults.statusCount--;
      const headers = { "Content-Type": "text/plain" };
      if (faults.status === 401) headers["WWW-Authenticate"] = 'Basic realm="fake"';
      res.writeHead(faults.status, headers);
      return res.end("error");
    }
    if (opts.status) {
      res.writeHead(opts.status, { "Content-Type": "text/plain" });
      return res.end("error");
    }
    if (opts.html) {
      res.writeHead(200, { "Content-Type": "text/html" });
      return res.end("<html><head><title>Login required</title></head><body>please log in</body></html>");
    }
    cam.connections++;
    cam.open++;
    responses.add(res);
    const nl = opts.lf ? "\n" : "\r\n";
    const boundary = opts.boundary || "frame";
    res.writeHead(200, {
      "Content-Type": `multipart/x-mixed-replace; boundary=${opts.headerBoundary || boundary}`,
      Connection: "close",
    });
    let n = 0;
    const endless = faults.endless > 0;
    if (endless) faults.endless--;
    const timer = setInterval(() => {
      if (faults.silent) return;
      if (endless && n >= 1) {
        // A frame that never ends: entropy-coded bytes (no 0xFF) after the scan header, forever.
        if (n === 1) {
          const jpeg = frames[0];
          const sos = jpeg.indexOf(Buffer.from([0xff, 0xda]));
          res.write(`--${boundary}${nl}Content-Type: image/jpeg${nl}${nl}`);
          res.write(jpeg.subarray(0, sos + 2 + jpeg.readUInt16BE(sos + 2)));
          n++;
        }
        cam.endlessBytes += ENDLESS_CHUNK.length;
        res.write(ENDLESS_CHUNK);
        return;
      }
      const jpeg = frames[n % frames.length];
      n++;
      let head = `--${boundary}${nl}Content-Type: image/jpeg${nl}`;
      if (opts.contentLength !== false) head += `Content-Length: ${jpeg.length}${nl}`;
      head += nl;
      if ((opts.dropAfter && n > opts.dropAfter) || faults.cut.delete(res)) {
        res.write(head);
        res.write(jpeg.subarray(0, jpeg.length >> 1));
        clearInterval(timer);
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (opts.silentAfter && n > opts.silentAfter) return;
      res.write(head);
      res.write(jpeg);
      res.write(nl);
      cam.sent++;
    }, 1000 / fps);
    res.on("close", () => {
      clearInterval(timer);
      cam.open--;
      responses.delete(res);
      faults.cut.delete(res);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  cam.port = await listen(server);
  cam.url = `http://127.0.0.1:${cam.port}/video.mjpg`;
  cam.dropClients = () => sockets.forEach((s) => s.destroy());
  cam.cutNext = () => responses.forEach((r) => faults.cut.add(r));
  cam.failNext = (status, count = 1) => Object.assign(faults, { status, statusCount: count });
  cam.setFrames = (next) => (frames = next);
  cam.endlessNext = (count = 1) => (faults.endless = count);
  cam.silence = (on = true) => (faults.silent = on);
  let up = true;
  cam.restart = async (downMs = 0) => {
    if (!up) throw new Error("camera is already restarting");
    up = false;
    cam.restarts++;
    await new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    });
    if (downMs > 0) await wait(downMs);
    await new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(cam.port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    up = true;
    cam.upSince = Date.now();
  };
  cam.close = () =>
    new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      if (!server.listening) return resolve();
      server.close(() => resolve());
    });
  return cam;
}

const ENDLESS_CHUNK = Buffer.alloc(32 * 1024, 0x5a);

/** HTTP snapshot camera: one JPEG per request; records request times. */
async function snapshotCamera(opts = {}) {
  const frames = opts.frames || makeFrames();
  const cam = { requests: [], connections: 0 };
  const sockets = new Set();
  let n = 0;
  const server = http.createServer((req, res) => {
    if (!checkAuth(req, res, opts.auth)) return;
    cam.requests.push(performance.now());
    const jpeg = frames[n++ % frames.length];
    res.writeHead(200, { "Content-Type": "image/jpeg", "Content-Length": jpeg.length });
    res.end(jpeg);
  });
  server.on("connection", (s) => {
    cam.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  cam.port = await listen(server);
  cam.url = `http://127.0.0.1:${cam.port}/snapshot.jpg`;
  cam.close = () =>
    new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    });
  return cam;
}

/**
 * Canon VB native port: "START\r\n" -> handshake blob ("100" and junk), then one JPEG per request
 * (a run of newline bytes). The frame is written in several pieces, as a real camera's TCP reads are.
 */
async function canonVbCamera(opts = {}) {
  const frames = opts.frames || makeFrames();
  const cam = { connections: 0, requests: 0, requestTimes: [], maxOutstanding: 0 };
  const sockets = new Set();
  const server = net.createServer((socket) => {
    cam.connections++;
    sockets.add(socket);
    let started = false;
    let n = 0;
    let outstanding = 0;
    let text = "";
    socket.on("data", (d) => {
      text += d.toString("latin1");
      if (!started) {
        const i = text.indexOf("START\r\n");
        if (i < 0) return;
        started = true;
        text = text.slice(i + 7);
        socket.write("100\r\nhandshake-blob\x00\x01\x02\r\n");
      }
      // Each run of newline bytes is one request for a frame.
      const runs = text.match(/[\r\n]+/g) || [];
      text = "";
      const count = runs.reduce((sum, run) => sum + Math.max(1, Math.floor(run.length / 8)), 0);
      for (let r = 0; r < count; r++) {
        cam.requests++;
        cam.requestTimes.push(performance.now());
        outstanding++;
        cam.maxOutstanding = Math.max(cam.maxOutstanding, outstanding);
        const index = n++;
        let jpeg = frames[index % frames.length];
        // opts.damage: answers (0-based) sent cut short, without their last half and EOI.
        if (opts.damage && opts.damage.includes(index)) jpeg = jpeg.subarray(0, jpeg.length >> 1);
        const third = Math.floor(jpeg.length / 3);
        setTimeout(() => {
          if (socket.destroyed) return;
          socket.write(jpeg.subarray(0, third));
          setTimeout(() => {
            if (socket.destroyed) return;
            outstanding--;
            socket.write(jpeg.subarray(third));
          }, 2);
        }, 2);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  cam.port = await listen(server);
  cam.url = `127.0.0.1:${cam.port}`;
  cam.close = () =>
    new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    });
  return cam;
}

/** Canon WebView HTTP: GetOneShot (single or multipart), OpenCameraServer / GetLiveImage / CloseCameraServer. */
async function canonWebViewCamera(opts = {}) {
  const frames = opts.frames || makeFrames();
  const cam = { sessions: new Map(), opened: 0, closed: 0, liveImages: 0, streams: 0, requests: [] };
  const sockets = new Set();
  let frameNumber = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    cam.requests.push(url.pathname + url.search);
    if (!checkAuth(req, res, opts.auth)) return;
    const cmd = url.pathname.replace("/-wvhttp-01-/", "");
    const ok = { "Livescope-Status": "0" };
    if (cmd === "OpenCameraServer") {
      const id = String(1000 + cam.opened++);
      cam.sessions.set(id, true);
      res.writeHead(200, { ...ok, "Content-Type": "text/plain" });
      return res.end(
        `${opts.newFirmware ? "connection_id:=" : "connection_id="}${id}\r\nimage_size=640x480\r\n`,
      );
    }
    if (cmd === "GetLiveImage") {
      const id = url.searchParams.get("connection_id");
      if (!cam.sessions.has(id)) {
        res.writeHead(200, { "Livescope-Status": "501 Unknown Connection ID" });
        return res.end();
      }
      cam.liveImages++;
      // Every third request repeats the previous frame number, as a camera faster polled than it shoots does.
      if (cam.liveImages % 3 !== 0) frameNumber++;
      const jpeg = frames[frameNumber % frames.length];
      res.writeHead(200, {
        ...ok,
        "Content-Type": "image/jpeg",
        "Livescope-Frame-Number": String(frameNumber),
      });
      return res.end(jpeg);
    }
    if (cmd === "CloseCameraServer") {
      cam.sessions.delete(url.searchParams.get("connection_id"));
      cam.closed++;
      res.writeHead(200, ok);
      return res.end();
    }
    if (cmd === "GetOneShot") {
      const count = url.searchParams.get("frame_count");
      if (!count || (opts.needsNumber && count === "no_limit")) {
        res.writeHead(200, { ...ok, "Content-Type": "image/jpeg" });
        return res.end(frames[0]);
      }
      cam.streams++;
      res.writeHead(200, { ...ok, "Content-Type": "multipart/x-mixed-replace;boundary=--wvboundary" });
      let n = 0;
      const timer = setInterval(
        () => {
          const jpeg = frames[n++ % frames.length];
          res.write(`----wvboundary\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
          res.write(jpeg);
          res.write("\r\n");
        },
        1000 / (Number(url.searchParams.get("frame_rate")) || 10),
      );
      res.on("close", () => clearInterval(timer));
      return;
    }
    res.writeHead(404, { "Livescope-Status": "404 Not Found" });
    res.end();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  cam.port = await listen(server);
  cam.url = `http://127.0.0.1:${cam.port}`;
  cam.close = () =>
    new Promise((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    });
  return cam;
}

module.exports = { makeFrames, mjpegCamera, snapshotCamera, canonVbCamera, canonWebViewCamera, checkAuth };
