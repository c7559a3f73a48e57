// Which live transports the running code offers on a stream path, asked the way a page would (one HTTP
// request each), so a bench run against a branch without them reports "not offered" instead of failing.
"use strict";

async function get(url, init) {
  try {
    const res = await fetch(url, init);
    return { status: res.status, text: await res.text() };
  } catch (err) {
    return { status: 0, text: String(err.message) };
  }
}

/** The HTTP status a WebSocket upgrade gets: 101 when it opens, 0 when the connection fails. */
function upgrade(url) {
  const WebSocket = require("ws");
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const done = (status) => {
      ws.terminate();
      resolve(status);
    };
    ws.on("open", () => done(101));
    ws.on("unexpected-response", (_req, res) => done(res.statusCode));
    ws.on("error", () => done(0));
  });
}

/**
 * { transport: why-not } for each of `wanted` that `base` + `path` does not offer: "webrtc" (WHEP at
 * <path>/whep), "mse" (the shared WebSocket at <root>camrelay/ws), "ll-hls" (parts in index.m3u8).
 */
async function notOffered(base, path, wanted) {
  const why = {};
  if (wanted.includes("webrtc")) {
    // An empty offer: a WHEP endpoint refuses it with 400 (or 415); without one it is 404 or 405.
    const r = await get(`${base}${path}/whep`, {
      method: "POST",
      headers: { "Content-Type": "application/sdp" },
      body: "",
    });
    if (r.status === 404 || r.status === 405 || r.status === 0) why.webrtc = `POST <path>/whep: ${r.status}`;
  }
  if (wanted.includes("mse")) {
    // A WebSocket upgrade: it opens, or the server refuses it with a status (404 = no endpoint).
    const status = await upgrade(`${base.replace(/^http/, "ws")}/camrelay/ws`);
    if (status !== 101) why.mse = `WebSocket upgrade of /camrelay/ws: ${status}`;
  }
  if (wanted.includes("ll-hls")) {
    const r = await get(`${base}${path}/index.m3u8`);
    if (!/#EXT-X-PART:/.test(r.text)) why["ll-hls"] = "index.m3u8 lists no #EXT-X-PART";
  }
  return why;
}

module.exports = { notOffered };
