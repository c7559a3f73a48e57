// The page the latency bench opens in Chromium, served by Node-RED itself (pageFlow), so the canvas may
// read the pixels of every <video> and <img>. One tile per transport, all playing at once; each tile reads
// the stamp strip (./stamp.js) back from what the browser shows and records now - stamp once per new
// stamp, checked on every animation frame (and every requestVideoFrameCallback of a <video>). The clients are deliberately plain (what a page would do
// without camrelay's player): WHEP with one recvonly video transceiver, MSE over the shared WebSocket
// with a small live-edge chase (seek when more than 1 s behind, play 10 % fast when more than 0.3 s
// behind), hls.js with lowLatencyMode off for classic HLS and at its low-latency defaults plus
// maxLiveSyncPlaybackRate 1.5 (catch up after a stall) for LL-HLS.
/* global document, window, Hls, MediaSource, RTCPeerConnection, WebSocket */
"use strict";
const { readStampSource, STAMP_X, STAMP_Y, STAMP_BLOCK, STAMP_BLOCKS } = require("./stamp");

/** The browser side, as a function whose source goes into the page (it runs there, not here). */
function client(cfg) {
  const results = {};
  window.benchResults = results;
  const W = cfg.blocks * cfg.block;

  function tile(name, el) {
    const box = document.createElement("div");
    const label = document.createElement("p");
    label.textContent = name;
    box.append(label, el);
    document.body.append(box);
    const r = { state: "starting", samples: [], frames: 0, bad: 0, last: -1, error: "" };
    results[name] = r;
    r.el = el;
    const canvas = document.createElement("canvas");
    canvas.width = W;
    canvas.height = cfg.block;
    const g = canvas.getContext("2d", { willReadFrequently: true });
    r.read = () => {
      const w = el.videoWidth ?? el.naturalWidth;
      if (!w) return;
      try {
        g.drawImage(el, cfg.x, cfg.y, W, cfg.block, 0, 0, W, cfg.block);
      } catch (err) {
        r.error = String(err);
        return;
      }
      const stamp = readStamp(g.getImageData(0, 0, W, cfg.block).data, W); // eslint-disable-line no-undef
      const now = Date.now();
      if (stamp < 0) {
        r.bad++;
        return;
      }
      if (stamp === r.last) return;
      r.last = stamp;
      r.frames++;
      r.state = "live";
      if (window.benchMeasuring) r.samples.push(stampAge(stamp, now)); // eslint-disable-line no-undef
    };
    return r;
  }

  // requestVideoFrameCallback where it fires (it reports a frame as it is handed to the compositor), and
  // requestAnimationFrame as well: headless Chromium may call the former only once. A stamp counts once.
  function watchVideo(r, video) {
    if (video.requestVideoFrameCallback) {
      const cb = () => {
        r.read();
        video.requestVideoFrameCallback(cb);
      };
      video.requestVideoFrameCallback(cb);
    }
    const loop = () => {
      r.read();
      window.requestAnimationFrame(loop);
    };
    window.requestAnimationFrame(loop);
  }

  function newVideo() {
    const v = document.createElement("video");
    v.muted = true;
    v.autoplay = true;
    v.playsInline = true;
    return v;
  }

  const fail = (r, err) => {
    r.state = "error";
    r.error = String(err && err.message ? err.message : err);
  };

  // ---- MJPEG: an <img> on the multipart stream
  function mjpeg() {
    const img = document.createElement("img");
    const r = tile("mjpeg", img);
    img.onerror = () => fail(r, "the MJPEG stream failed");
    img.src = cfg.mjpegUrl;
    const loop = () => {
      r.read();
      window.requestAnimationFrame(loop);
    };
    window.requestAnimationFrame(loop);
  }

  // ---- WebRTC: WHEP, all candidates in the offer
  async function webrtc() {
    const video = newVideo();
    const r = tile("webrtc", video);
    try {
      const pc = new RTCPeerConnection();
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.ontrack = (ev) => {
        video.srcObject = ev.streams[0] || new window.MediaStream([ev.track]);
        video.play().catch(() => {});
      };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        pc.addEventListener(
          "icegatheringstatechange",
          () => pc.iceGatheringState === "complete" && resolve(),
        );
        setTimeout(resolve, 3000);
      });
      const res = await fetch(cfg.whepUrl, {
        method: "POST",
        headers: { "Content-Type": "application/sdp" },
        body: pc.localDescription.sdp,
      });
      if (res.status !== 201)
        throw new Error(`WHEP answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
      r.state = "connecting";
      // The receiver's own account of where the time goes: its jitter buffer's mean delay per frame.
      r.extra = async () => {
        let text = "";
        (await pc.getStats()).forEach((s) => {
          if (s.type === "inbound-rtp" && s.kind === "video" && s.jitterBufferEmittedCount) {
            const ms = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
            text = `jitter buffer ${Math.round(ms)} ms mean`;
          }
        });
        return text;
      };
      watchVideo(r, video);
    } catch (err) {
      fail(r, err);
    }
  }

  // ---- MSE over the shared WebSocket (live contract: text control, binary kind + uint32 id + payload)
  function mse() {
    const video = newVideo();
    const r = tile("mse", video);
    const ws = new WebSocket(cfg.wsUrl);
    ws.binaryType = "arraybuffer";
    let sb = null;
    const queue = [];
    const pump = () => {
      if (!sb || sb.updating || queue.length === 0) return;
      try {
        sb.appendBuffer(queue.shift());
      } catch (err) {
        fail(r, err);
      }
    };
    const chase = () => {
      const b = video.buffered;
      if (b.length === 0) return;
      const end = b.end(b.length - 1);
      const lag = end - video.currentTime;
      if (lag > 1.0) video.currentTime = end - 0.1;
      else video.playbackRate = lag > 0.3 ? 1.1 : 1.0;
      if (video.currentTime - b.start(0) > 20 && !sb.updating) sb.remove(b.start(0), video.currentTime - 10);
    };
    ws.onopen = () =>
      ws.send(JSON.stringify({ type: "play", id: 1, path: cfg.h264Path, codecs: ["avc1"], mjpeg: false }));
    ws.onerror = () => fail(r, "the WebSocket failed (no MSE endpoint?)");
    ws.onclose = (ev) =>
      r.state !== "error" && r.state !== "live" && fail(r, `WebSocket closed (${ev.code})`);
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const m = JSON.parse(ev.data);
        if (m.type === "error") fail(r, `${m.status} ${m.error}`);
        if (m.type !== "mse") return;
        queue.length = 0;
        const ms = new MediaSource();
        video.src = window.URL.createObjectURL(ms);
        sb = null;
        ms.addEventListener("sourceopen", () => {
          sb = ms.addSourceBuffer(m.mime);
          sb.mode = "segments";
          sb.addEventListener("updateend", () => {
            chase();
            pump();
          });
          pump();
          video.play().catch(() => {});
        });
        r.state = "connecting";
        return;
      }
      const u8 = new Uint8Array(ev.data);
      if (u8[0] !== 0 && u8[0] !== 1) return;
      queue.push(u8.subarray(5));
      if (queue.length > 200) queue.splice(0, queue.length - 200);
      pump();
    };
    watchVideo(r, video);
  }

  // ---- HLS through hls.js (served by camrelay), classic or low-latency
  function hls(name, lowLatencyMode) {
    const video = newVideo();
    const r = tile(name, video);
    if (!window.Hls || !Hls.isSupported()) return fail(r, "hls.js did not load");
    // Classic: hls.js's defaults but lowLatencyMode (what the issue measured at ~7 s). Low latency: its
    // defaults plus catching up by playing faster when behind (hls.js never does by default, so every stall
    // would add to the latency for good).
    const h = new Hls(lowLatencyMode ? { lowLatencyMode, maxLiveSyncPlaybackRate: 1.5 } : { lowLatencyMode });
    h.on(Hls.Events.ERROR, (_e, data) => {
      if (data.fatal) fail(r, `hls.js: ${data.type} ${data.details}`);
    });
    h.loadSource(cfg.hlsUrl);
    h.attachMedia(video);
    video.play().catch(() => {});
    r.state = "connecting";
    watchVideo(r, video);
  }

  for (const t of cfg.transports) {
    if (t === "mjpeg") mjpeg();
    if (t === "webrtc") webrtc();
    if (t === "mse") mse();
    if (t === "hls") hls("hls", false);
    if (t === "ll-hls") hls("ll-hls", true);
  }
  const mediaState = (el) => {
    if (!el || el.tagName !== "VIDEO") return "";
    const b = el.buffered;
    const end = b.length ? b.end(b.length - 1).toFixed(2) : "-";
    return `t=${el.currentTime.toFixed(2)} end=${end} ready=${el.readyState} paused=${el.paused} ${el.videoWidth}x${el.videoHeight}`;
  };
  window.benchSummary = async () =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(results).map(async ([k, v]) => [
          k,
          {
            extra: v.extra ? await v.extra() : "",
            state: v.state,
            error: v.error,
            frames: v.frames,
            bad: v.bad,
            samples: v.samples,
            media: mediaState(v.el),
          },
        ]),
      ),
    );
}

/**
 * The page. `cfg` = { mjpegUrl, whepUrl, wsPath, hlsUrl, h264Path, hlsJsUrl } (root-relative on the page's
 * origin); the transports to play come in the page's hash (#mjpeg,webrtc,...), so one page serves every run.
 */
function latencyPage(cfg) {
  const full = { ...cfg, x: STAMP_X, y: STAMP_Y, block: STAMP_BLOCK, blocks: STAMP_BLOCKS };
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>camrelay latency bench</title>
<style>body{margin:0;display:flex;flex-wrap:wrap;font:12px sans-serif}div{margin:2px}
video,img{width:640px;height:360px;display:block;background:#000}</style>
<script src="${cfg.hlsJsUrl}"></script>
</head><body>
<script>
"use strict";
${readStampSource()}
const benchConfig = ${JSON.stringify(full)};
benchConfig.transports = location.hash.slice(1).split(",").filter(Boolean);
benchConfig.wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + benchConfig.wsPath;
(${client.toString()})(benchConfig);
</script>
</body></html>`;
}

/**
 * Node-RED's own core nodes serving the page at `url` (http in -> change -> http response), so it comes
 * from Node-RED's origin and address: the canvas may read every picture, and Chromium's local network
 * access checks let the page open the loopback WebSocket (a page injected by the test driver would be
 * refused it).
 */
function pageFlow(z, url, html) {
  return [
    { id: "bench-page-in", z, type: "http in", url, method: "get", wires: [["bench-page-set"]] },
    {
      id: "bench-page-set",
      z,
      type: "change",
      rules: [
        { t: "set", p: "payload", pt: "msg", to: html, tot: "str" },
        { t: "set", p: "headers", pt: "msg", to: '{"Content-Type":"text/html; charset=utf-8"}', tot: "json" },
      ],
      wires: [["bench-page-out"]],
    },
    { id: "bench-page-out", z, type: "http response", statusCode: "200", headers: {}, wires: [] },
  ];
}

module.exports = { latencyPage, pageFlow };
