// The viewers of bench/viewers.js, in their own process so that only the server's CPU is measured:
//   node bench/lib/viewer-clients.js '{"kind":"webrtc"|"mse"|"mjpeg","n":20,"base":"http://...","path":"/x"}'
// webrtc: werift peers, WHEP (POST <path>/whep, one recvonly H.264 video transceiver, all candidates in the
//         offer; DELETE the Location at the end), counting RTP packets and bytes;
// mse:    one WebSocket each to <root>camrelay/ws (the live contract's "play"), counting binary frames;
// mjpeg:  one HTTP GET each of <path> (multipart), counting bytes and parts (by their Content-Length).
// Prints one JSON line {"type":"ready","connected":k} each second until all are in, then on a "report" line
// on stdin a JSON line {"type":"report", connected, receiving, bytes, units, errors}; ends on stdin's end.
"use strict";
const http = require("http");
const readline = require("readline");

const cfg = JSON.parse(process.argv[2]);
const viewers = [];
const errors = [];
let retries = 0;
const say = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const note = (err) => errors.length < 20 && errors.push(String(err?.message ?? err));

/** One werift WHEP viewer. */
async function webrtcViewer(v, id) {
  const { RTCPeerConnection, useH264 } = require("werift");
  const pc = new RTCPeerConnection({ codecs: { video: [useH264()] } });
  v.pc = pc; // only the newest session of a retried viewer counts
  v.close = async () => {
    if (v.location) {
      await fetch(new URL(v.location, cfg.base), { method: "DELETE" }).catch(() => {});
    }
    await pc.close().catch(() => {});
  };
  pc.connectionStateChange.subscribe((state) => v.pc === pc && (v.state = state));
  if (process.env.BENCH_DEBUG) {
    const t0 = Date.now();
    pc.iceConnectionStateChange.subscribe((s) => process.stderr.write(`${id} ice ${s} ${Date.now() - t0}\n`));
    pc.connectionStateChange.subscribe((s) => process.stderr.write(`${id} conn ${s} ${Date.now() - t0}\n`));
  }
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.onTrack.subscribe((track) =>
    track.onReceiveRtp.subscribe((rtp) => {
      if (v.pc !== pc) return;
      v.units++;
      v.bytes += rtp.payload.length;
    }),
  );
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 5000);
      pc.iceGatheringStateChange.subscribe((s) => s === "complete" && (clearTimeout(t), resolve()));
    });
  }
  const res = await fetch(`${cfg.base}${cfg.path}/whep`, {
    method: "POST",
    headers: { "Content-Type": "application/sdp" },
    body: pc.localDescription.sdp,
  });
  const answer = await res.text();
  if (res.status !== 201) throw new Error(`WHEP answered ${res.status}: ${answer.slice(0, 200)}`);
  v.location = res.headers.get("location");
  await pc.setRemoteDescription({ type: "answer", sdp: answer });
  v.connected = true;
}

/**
 * A WebRTC viewer that is connected (DTLS done) within 10 s, or a new session instead, up to twice more:
 * on this busy machine some werift-to-werift DTLS handshakes never finish after ICE connected. The retries
 * are counted and reported.
 */
async function webrtcViewerRetried(v, id) {
  for (let attempt = 1; ; attempt++) {
    await webrtcViewer(v, id);
    const t0 = Date.now();
    while (v.state !== "connected" && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 200));
    if (v.state === "connected" || attempt === 3) return;
    retries++;
    await v.close();
    v.location = undefined;
    v.state = undefined;
  }
}

/** One WebSocket MSE viewer. */
function mseViewer(v, id) {
  const WebSocket = require("ws");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${cfg.base.replace(/^http/, "ws")}/camrelay/ws`);
    v.close = async () => ws.terminate();
    ws.on("open", () => {
      ws.send(JSON.stringify({ type: "play", id, path: cfg.path, codecs: ["avc1", "mp4a"], mjpeg: false }));
      v.connected = true;
      resolve();
    });
    ws.on("message", (data, binary) => {
      if (!binary) {
        const m = JSON.parse(String(data));
        if (m.type === "error") note(`ws error ${m.status} ${m.error}`);
        return;
      }
      if (data[0] === 1) v.units++;
      v.bytes += data.length;
    });
    ws.on("error", (err) => (v.connected ? note(err) : reject(err)));
    ws.on("close", () => (v.connected = false));
  });
}

/** One MJPEG viewer. */
function mjpegViewer(v) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${cfg.base}${cfg.path}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`MJPEG answered ${res.statusCode}`));
      v.connected = true;
      // Parts by their Content-Length: headers are read, bodies skipped.
      let head = "";
      let skip = 0;
      res.on("data", (d) => {
        v.bytes += d.length;
        let i = 0;
        while (i < d.length) {
          if (skip > 0) {
            const n = Math.min(skip, d.length - i);
            skip -= n;
            i += n;
            if (skip === 0) v.units++;
            continue;
          }
          const end = d.indexOf("\r\n\r\n", i, "latin1");
          head += d.toString("latin1", i, end < 0 ? d.length : end + 4);
          if (end < 0) {
            head = head.slice(-200);
            break;
          }
          i = end + 4;
          skip = Number(/Content-Length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
          head = "";
        }
      });
      res.on("end", () => (v.connected = false));
      resolve();
    });
    v.close = async () => req.destroy();
    req.on("error", (err) => (v.connected ? note(err) : reject(err)));
  });
}

async function main() {
  const open = { webrtc: webrtcViewerRetried, mse: mseViewer, mjpeg: mjpegViewer }[cfg.kind];
  if (!open) throw new Error(`unknown viewer kind ${cfg.kind}`);
  for (let i = 0; i < cfg.n; i++) {
    const v = { connected: false, bytes: 0, units: 0, close: async () => {} };
    viewers.push(v);
    // One after another: 20 ICE/DTLS handshakes at once would time out on a busy 2-core machine. WebRTC
    // viewers are opened five at a time (each may wait up to 10 s for its DTLS).
    const opening = open(v, i + 1).catch(note);
    if (cfg.kind !== "webrtc" || i % 5 === 4 || i === cfg.n - 1) await opening;
  }
  const tick = setInterval(
    () => say({ type: "ready", connected: viewers.filter((v) => v.connected).length }),
    1000,
  );
  let last = viewers.map(() => 0);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (line.trim() !== "report") return;
    const bytes = viewers.map((v) => v.bytes);
    say({
      type: "report",
      connected: viewers.filter((v) => v.connected).length,
      // Viewers that got something since the last report.
      receiving: bytes.filter((b, i) => b > last[i]).length,
      bytes: bytes.reduce((a, b) => a + b, 0),
      units: viewers.reduce((a, v) => a + v.units, 0),
      // WebRTC: how many peers are in each connection state.
      retries,
      states: viewers.reduce((a, v) => (v.state ? { ...a, [v.state]: (a[v.state] ?? 0) + 1 } : a), {}),
      errors,
    });
    last = bytes;
  });
  rl.on("close", async () => {
    clearInterval(tick);
    await Promise.all(viewers.map((v) => v.close().catch(() => {})));
    process.exit(0);
  });
}

main().catch((err) => {
  say({ type: "fatal", error: String(err?.stack ?? err) });
  process.exit(1);
});
