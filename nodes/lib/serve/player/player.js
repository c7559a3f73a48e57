// <camrelay-player src="/camera/front">: camrelay's live player, served at <httpNodeRoot>camrelay/player.js.
// Plain browser JavaScript, no build step, no framework. It picks WebRTC (WHEP), then MSE over one
// WebSocket shared by every player of the page, then HLS (native or hls.js), then MJPEG, by what the
// browser and the stream support; reconnects by itself; stops while hidden or off-screen; chases the live
// edge. Attributes: src, transport (auto|webrtc|mse|hls|mjpeg), fit (contain|cover), controls
// (snapshot,fullscreen,audio), token, muted. Events: camrelay-state, camrelay-snapshot.
(function () {
  "use strict";
  if (typeof window === "undefined" || !window.customElements) return;
  if (window.customElements.get("camrelay-player")) return; // loaded twice: the first definition stays

  /** <httpNodeRoot> as an absolute URL ending in "/", from this script's own URL. */
  function scriptRoot() {
    let src = document.currentScript && document.currentScript.src;
    if (!src) {
      const found = [...document.querySelectorAll("script[src]")].find((s) => /camrelay\/player\.js/.test(s.src));
      src = found ? found.src : "";
    }
    if (!src) return new URL("/", location.href).href;
    return new URL("../", new URL(src, location.href)).href;
  }
  const ROOT = scriptRoot();

  const TRANSPORTS = ["webrtc", "mse", "hls", "mjpeg"];
  const WEBRTC_VIDEO_TIMEOUT_MS = 4000;
  const WS_CONNECT_TIMEOUT_MS = 4000;
  const HIDDEN_STOP_MS = 1000;
  const STALL_MS = 6000;
  const BACKOFF = [1000, 2000, 4000, 8000, 15000];
  /** Transports refused by the server or browser for a path, forgotten after this long. */
  const REFUSAL_MS = 60000;
  /** Why a socket play could not start; a player that fell back for this goes back to the socket later. */
  const NO_SOCKET = "no camrelay WebSocket on this server (or it cannot be reached)";

  /** "/camera/front" or a full URL -> { path: "/camera/front", url: "http://host/root/camera/front/" }. */
  function streamUrls(src) {
    const raw = String(src || "").trim();
    let url;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) url = new URL(raw);
    else url = new URL(raw.replace(/^\/+/, ""), ROOT);
    url.search = "";
    url.hash = "";
    if (!url.pathname.endsWith("/")) url.pathname += "/";
    const root = new URL(ROOT);
    let path = url.pathname;
    if (url.origin === root.origin && path.startsWith(root.pathname)) path = "/" + path.slice(root.pathname.length);
    path = path.replace(/\/+$/, "") || "/";
    return { path, url: url.href };
  }

  function withToken(url, token) {
    if (!token) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  /** The codec families this browser's MSE plays, as the WebSocket's play message names them. */
  function mseCodecs() {
    const MS = window.MediaSource || window.ManagedMediaSource;
    if (!MS) return [];
    const probes = {
      avc1: 'video/mp4; codecs="avc1.42e01e"',
      hvc1: 'video/mp4; codecs="hvc1.1.6.L93.B0"',
      mp4a: 'audio/mp4; codecs="mp4a.40.2"',
    };
    return Object.keys(probes).filter((k) => {
      try {
        return MS.isTypeSupported(probes[k]);
      } catch {
        return false;
      }
    });
  }

  // ---------------------------------------------------------------------------------------------------
  // The one WebSocket of the page: every player's plays share it (per-play ids), reconnects with backoff,
  // closes a few seconds after the last play stopped.

  const sockets = new Map(); // ws URL -> SharedSocket
  let nextPlayId = 1;

  class SharedSocket {
    constructor(url) {
      this.url = url;
      this.plays = new Map(); // id -> { message, onText, onBinary }
      this.ws = null;
      this.opened = false;
      this.failures = 0;
      this.retryTimer = 0;
      this.idleTimer = 0;
      /** Set when the server refused the upgrade (no camrelay WebSocket there): players fall back. */
      this.unavailableUntil = 0;
    }

    static for(url) {
      let s = sockets.get(url);
      if (!s) sockets.set(url, (s = new SharedSocket(url)));
      return s;
    }

    get available() {
      return typeof WebSocket === "function" && Date.now() >= this.unavailableUntil;
    }

    /** Starts a play; returns its id. Handlers: onText(msg), onBinary(kind, Uint8Array), onDown(). */
    play(message, handlers) {
      const id = nextPlayId++ >>> 0;
      const entry = { message: Object.assign({ type: "play", id }, message), ...handlers };
      this.plays.set(id, entry);
      clearTimeout(this.idleTimer);
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.send(entry.message);
      else this.connect();
      return id;
    }

    stop(id) {
      if (!this.plays.delete(id)) return;
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.send({ type: "stop", id });
      if (this.plays.size === 0) {
        clearTimeout(this.idleTimer);
        this.idleTimer = setTimeout(() => this.plays.size === 0 && this.shut(), 5000);
      }
    }

    send(obj) {
      try {
        this.ws.send(JSON.stringify(obj));
      } catch {
        // a closing socket: its close handler restarts the plays
      }
    }

    connect() {
      if (this.ws || this.retryTimer) return;
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch {
        this.refused();
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.opened = false;
      const timer = setTimeout(() => {
        if (!this.opened) ws.close();
      }, WS_CONNECT_TIMEOUT_MS);
      ws.onopen = () => {
        clearTimeout(timer);
        this.opened = true;
        this.failures = 0;
        for (const p of this.plays.values()) this.send(p.message);
      };
      ws.onmessage = (ev) => this.receive(ev.data);
      ws.onclose = () => {
        clearTimeout(timer);
        const wasOpen = this.opened;
        this.ws = null;
        this.opened = false;
        if (!wasOpen) return this.refused();
        for (const p of [...this.plays.values()]) if (p.onDown) p.onDown("closed");
        this.retry();
      };
      ws.onerror = () => {}; // onclose follows
    }

    /** Never opened: the server has no camrelay WebSocket (or refused us); players use another transport. */
    refused() {
      this.ws = null;
      this.failures++;
      this.unavailableUntil = Date.now() + Math.min(30000, 5000 * this.failures);
      const plays = [...this.plays.values()];
      this.plays.clear();
      for (const p of plays) if (p.onDown) p.onDown("unavailable");
    }

    retry() {
      if (this.plays.size === 0) return;
      const delay = BACKOFF[Math.min(this.failures++, BACKOFF.length - 1)];
      this.retryTimer = setTimeout(() => {
        this.retryTimer = 0;
        if (this.plays.size) this.connect();
      }, delay);
    }

    receive(data) {
      if (typeof data === "string") {
        let msg;
        try {
          msg = JSON.parse(data);
        } catch {
          return;
        }
        const p = msg && this.plays.get(msg.id);
        if (p) p.onText(msg);
        return;
      }
      const bytes = new Uint8Array(data);
      if (bytes.length < 5) return;
      const id = ((bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4]) >>> 0;
      const p = this.plays.get(id);
      if (p) p.onBinary(bytes[0], bytes.subarray(5));
    }

    shut() {
      clearTimeout(this.retryTimer);
      this.retryTimer = 0;
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        ws.onclose = null;
        ws.close();
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // hls.js, loaded once per page from camrelay itself (Node-RED hosts often have no internet).

  let hlsJs;
  function loadHlsJs() {
    if (window.Hls) return Promise.resolve(window.Hls);
    hlsJs =
      hlsJs ||
      new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = ROOT + "camrelay/hls.min.js";
        s.onload = () => (window.Hls ? resolve(window.Hls) : reject(new Error("hls.js did not load")));
        s.onerror = () => reject(new Error("hls.js could not be loaded"));
        document.head.appendChild(s);
      });
    hlsJs.catch(() => (hlsJs = undefined));
    return hlsJs;
  }

  // ---------------------------------------------------------------------------------------------------
  // Live-edge chasing for a <video> fed by MSE or hls.js: keep the buffer under about a second.

  function chaseLiveEdge(video, target) {
    const b = video.buffered;
    if (!b.length || video.paused && video.readyState < 2) return;
    const end = b.end(b.length - 1);
    const start = b.start(b.length - 1);
    if (video.currentTime < start) {
      video.currentTime = start;
      return;
    }
    const lag = end - video.currentTime;
    if (lag > target + 1.5) {
      video.currentTime = Math.max(start, end - target / 2);
      video.playbackRate = 1;
    } else if (lag > target) video.playbackRate = 1.1;
    else if (lag < target / 2) video.playbackRate = 1;
  }

  // ---------------------------------------------------------------------------------------------------
  // Transports. Each: constructor(player, ctx), start(), stop(); it calls ctx.live(), ctx.offline(),
  // ctx.online(), ctx.fail(reason, refused), ctx.audio(hasAudio). ctx.video / ctx.img are the elements.

  class WebRtcTransport {
    constructor(ctx) {
      this.ctx = ctx;
      this.pc = null;
      this.resource = null;
      this.timer = 0;
      this.stopped = false;
    }

    async start() {
      const ctx = this.ctx;
      if (typeof RTCPeerConnection !== "function") return ctx.fail("no WebRTC in this browser", true);
      const pc = (this.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" }));
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
      const stream = new MediaStream();
      pc.ontrack = (ev) => {
        stream.addTrack(ev.track);
        if (ev.track.kind === "audio") ctx.audio(true);
        if (ctx.video.srcObject !== stream) ctx.video.srcObject = stream;
        ctx.video.play().catch(() => {});
      };
      pc.onconnectionstatechange = () => {
        if (this.stopped) return;
        if (pc.connectionState === "failed" || pc.connectionState === "closed") ctx.fail("WebRTC connection " + pc.connectionState);
      };
      ctx.showVideo();
      ctx.video.onplaying = () => {
        clearTimeout(this.timer);
        ctx.live();
      };
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await gathered(pc, 1500);
        if (this.stopped) return;
        const headers = { "Content-Type": "application/sdp" };
        if (ctx.token) headers.Authorization = "Bearer " + ctx.token;
        // The first session on a server loads the WebRTC library: allow the answer a while.
        const abort = new AbortController();
        const answerTimer = setTimeout(() => abort.abort(), 15000);
        const res = await fetch(ctx.url + "whep", {
          method: "POST",
          headers,
          body: pc.localDescription.sdp,
          signal: abort.signal,
        }).finally(() => clearTimeout(answerTimer));
        if (this.stopped) return;
        if (res.status !== 201 && res.status !== 200) {
          const words = (await res.text().catch(() => "")).trim().slice(0, 200);
          const refused = [404, 405, 415, 501].includes(res.status);
          return ctx.fail("WHEP " + res.status + (words ? ": " + words : ""), refused, res.status);
        }
        const location = res.headers.get("Location");
        if (location) this.resource = new URL(location, ctx.url).href;
        const answer = await res.text();
        if (this.stopped) return;
        // From the answer on, the picture should come within about 4 s, else MSE takes over.
        this.timer = setTimeout(
          () => !this.stopped && ctx.fail("no video over WebRTC within 4 s", true),
          WEBRTC_VIDEO_TIMEOUT_MS,
        );
        await pc.setRemoteDescription({ type: "answer", sdp: answer });
      } catch (err) {
        if (!this.stopped) ctx.fail("WebRTC: " + (err && err.message ? err.message : err), true);
      }
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.timer);
      this.ctx.video.onplaying = null;
      // DELETE first: closing the connection also ends the session on the server, and then DELETE finds none.
      if (this.resource) {
        const headers = this.ctx.token ? { Authorization: "Bearer " + this.ctx.token } : {};
        fetch(this.resource, { method: "DELETE", headers, keepalive: true }).catch(() => {});
      }
      this.resource = null;
      const pc = this.pc;
      this.pc = null;
      if (pc) {
        pc.ontrack = pc.onconnectionstatechange = null;
        setTimeout(() => pc.close(), 500);
      }
      this.ctx.video.srcObject = null;
    }
  }

  function gathered(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        pc.removeEventListener("icegatheringstatechange", check);
        resolve();
      }
      function check() {
        if (pc.iceGatheringState === "complete") done();
      }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  /** MSE (and JPEG frames, for paths MSE cannot play) over the page's shared WebSocket. */
  class SocketTransport {
    constructor(ctx, wantJpegOnly) {
      this.ctx = ctx;
      this.wantJpegOnly = wantJpegOnly;
      this.socket = SharedSocket.for(ROOT.replace(/^http/, "ws") + "camrelay/ws");
      this.id = 0;
      this.ms = null;
      this.sb = null;
      this.queue = [];
      this.mime = "";
      this.objectUrl = "";
      this.chase = 0;
      this.jpegBusy = false;
      this.jpegNext = null;
      this.jpegUrl = "";
      this.stopped = false;
      this.kind = wantJpegOnly ? "mjpeg" : "mse";
    }

    start() {
      const ctx = this.ctx;
      if (!this.socket.available) return ctx.fail(NO_SOCKET, true);
      const codecs = this.wantJpegOnly ? [] : mseCodecs();
      if (!this.wantJpegOnly && codecs.length === 0) return ctx.fail("no MSE in this browser", true);
      const message = { path: ctx.path, codecs, mjpeg: true };
      if (ctx.token) message.token = ctx.token;
      this.id = this.socket.play(message, {
        onText: (m) => this.text(m),
        onBinary: (kind, data) => this.binary(kind, data),
        onDown: (why) => !this.stopped && ctx.fail(why === "unavailable" ? NO_SOCKET : "WebSocket " + why, why === "unavailable"),
      });
    }

    text(m) {
      const ctx = this.ctx;
      switch (m.type) {
        case "mse":
          this.kind = "mse";
          ctx.setTransport("mse");
          ctx.audio(/mp4a|opus/i.test(m.codec || ""));
          this.openMse(m.mime);
          break;
        case "mjpeg":
          this.kind = "mjpeg";
          this.closeMse();
          ctx.setTransport("mjpeg");
          ctx.audio(false);
          ctx.showImage();
          break;
        case "offline":
          ctx.offline();
          break;
        case "online":
          ctx.online();
          break;
        case "error": {
          const refused = m.status === 415;
          ctx.fail(m.error || "error " + m.status, refused, m.status);
          break;
        }
      }
    }

    binary(kind, data) {
      if (this.stopped) return;
      if (kind === 2) return this.jpeg(data);
      if (!this.ms) return;
      if (kind === 0) this.queue = []; // a new init starts a new stream: older fragments do not belong to it
      // Newest wins: a backlog while MSE is busy drops what is queued and starts over at the next init/keyframe.
      if (this.queue.length > 60) this.queue = this.queue.filter((b) => b.init);
      this.queue.push({ data: data.slice(), init: kind === 0 });
      this.pump();
    }

    openMse(mime) {
      const MS = window.MediaSource || window.ManagedMediaSource;
      if (!MS || !MS.isTypeSupported(mime)) return this.ctx.fail("this browser cannot play " + mime, true, 415);
      // Every new init (a late join, a camera restart, new parameters) gets a fresh MediaSource: its
      // timestamps may start over, which one SourceBuffer in "segments" mode would overlap.
      this.closeMse();
      this.mime = mime;
      const ms = (this.ms = new MS());
      const video = this.ctx.showVideo();
      video.disableRemotePlayback = true;
      this.objectUrl = URL.createObjectURL(ms);
      video.src = this.objectUrl;
      ms.addEventListener("sourceopen", () => {
        if (this.ms !== ms) return;
        try {
          this.sb = ms.addSourceBuffer(mime);
          this.sb.mode = "segments";
        } catch (err) {
          return this.ctx.fail("MSE: " + err.message, true, 415);
        }
        this.sb.addEventListener("updateend", () => this.pump());
        this.pump();
      });
      video.onplaying = () => this.ctx.live();
      video.play().catch(() => {});
      this.chase = setInterval(() => {
        if (this.sb && !this.sb.updating) this.trim();
        chaseLiveEdge(video, 0.5);
        if (video.paused && video.buffered.length) video.play().catch(() => {});
      }, 250);
    }

    pump() {
      const sb = this.sb;
      if (!sb || sb.updating || this.queue.length === 0) return;
      // Before the first init nothing can be appended.
      const next = this.queue.shift();
      try {
        sb.appendBuffer(next.data);
      } catch (err) {
        if (err && err.name === "QuotaExceededError") {
          this.queue.unshift(next);
          this.trim(true);
        } else this.ctx.fail("MSE: " + (err && err.message), false);
      }
    }

    /** Keeps at most a few seconds behind the play position in the SourceBuffer (memory bounded). */
    trim(hard) {
      const sb = this.sb;
      const video = this.ctx.video;
      if (!sb || sb.updating || !sb.buffered.length) return;
      const start = sb.buffered.start(0);
      const keep = hard ? 1 : 10;
      if (video.currentTime - start > keep + 5) {
        try {
          sb.remove(start, video.currentTime - keep);
        } catch {
          // removal is an optimisation only
        }
      }
    }

    jpeg(data) {
      // Newest wins: while one picture decodes, only the latest next one is kept.
      if (this.jpegBusy) {
        this.jpegNext = data.slice();
        return;
      }
      this.jpegBusy = true;
      const done = () => {
        this.jpegBusy = false;
        if (this.stopped) return;
        const next = this.jpegNext;
        this.jpegNext = null;
        if (next) this.jpeg(next);
      };
      // Decoded off-screen first, then shown: the shown <img> gets a picture already decoded (an <img>
      // whose src changes five times a second is otherwise "loading" most of the time on a busy machine).
      const url = URL.createObjectURL(new Blob([data], { type: "image/jpeg" }));
      const pre = new Image();
      pre.src = url;
      pre.decode().then(
        () => {
          if (this.stopped) URL.revokeObjectURL(url);
          else {
            const img = this.ctx.showImage();
            const old = this.jpegUrl;
            this.jpegUrl = url;
            img.src = url;
            // the shown picture may still be loading from the old URL for a moment
            if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
            this.ctx.live();
          }
          done();
        },
        () => {
          URL.revokeObjectURL(url);
          done();
        },
      );
    }

    closeMse() {
      clearInterval(this.chase);
      this.chase = 0;
      this.queue = [];
      if (this.ms && this.ms.readyState === "open") {
        try {
          this.ms.endOfStream();
        } catch {
          // already ended
        }
      }
      this.ms = null;
      this.sb = null;
      if (this.objectUrl) {
        this.ctx.video.onplaying = null;
        this.ctx.video.removeAttribute("src");
        this.ctx.video.load();
        URL.revokeObjectURL(this.objectUrl);
      }
      this.objectUrl = "";
    }

    stop() {
      this.stopped = true;
      if (this.id) this.socket.stop(this.id);
      this.id = 0;
      this.closeMse();
      this.ctx.img.onload = this.ctx.img.onerror = null;
      if (this.jpegUrl) {
        const url = this.jpegUrl;
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      }
      this.jpegUrl = "";
    }
  }

  /** HLS: the browser's own player where there is no MSE (Safari/iOS), else hls.js in low-latency mode. */
  class HlsTransport {
    constructor(ctx) {
      this.ctx = ctx;
      this.hls = null;
      this.chase = 0;
      this.stopped = false;
    }

    async start() {
      const ctx = this.ctx;
      const video = ctx.showVideo();
      const url = withToken(ctx.url + "index.m3u8", ctx.token);
      video.onplaying = () => ctx.live();
      const MS = window.MediaSource || window.ManagedMediaSource;
      const native = video.canPlayType("application/vnd.apple.mpegurl");
      if (!MS && !native) return ctx.fail("no HLS in this browser", true);
      if (!MS && native) {
        // Probe first: the native player says nothing useful when the path has no fMP4.
        const r = await fetch(url, { cache: "no-store" }).catch(() => null);
        if (this.stopped) return;
        if (!r || !r.ok) return ctx.fail("HLS playlist: " + (r ? r.status : "unreachable"), r && r.status === 503);
        video.onerror = () => !this.stopped && ctx.fail("HLS: the video element failed");
        video.src = url;
        video.play().catch(() => {});
        this.watch(video);
        return;
      }
      let Hls;
      try {
        Hls = await loadHlsJs();
      } catch (err) {
        if (!this.stopped) ctx.fail(err.message, true);
        return;
      }
      if (this.stopped) return;
      if (!Hls.isSupported()) return ctx.fail("hls.js is not supported here", true);
      const hls = (this.hls = new Hls({
        lowLatencyMode: true,
        liveSyncDuration: 1,
        liveMaxLatencyDuration: 4,
        maxLiveSyncPlaybackRate: 1.1,
        backBufferLength: 10,
        maxBufferLength: 4,
        manifestLoadingMaxRetry: 0,
      }));
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        const levels = (data && data.levels) || [];
        ctx.audio(levels.some((l) => /mp4a|opus/i.test(l.audioCodec || l.attrs?.CODECS || "")) || (data.audioTracks || []).length > 0);
        video.play().catch(() => {});
      });
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal || this.stopped) return;
        const status = data.response && data.response.code;
        // 503 "No fMP4 input yet": a JPEG-only path; a codec the browser cannot decode: both refuse HLS here.
        const refused = status === 503 || status === 404 || /codec|incompatible/i.test(data.details || "");
        ctx.fail("HLS: " + data.details + (status ? " (" + status + ")" : ""), refused, status);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      this.watch(video);
    }

    watch(video) {
      this.chase = setInterval(() => {
        if (!this.hls) chaseLiveEdge(video, 1.5);
        if (video.paused && video.buffered.length) video.play().catch(() => {});
      }, 500);
    }

    stop() {
      this.stopped = true;
      clearInterval(this.chase);
      const video = this.ctx.video;
      video.onplaying = video.onerror = null;
      if (this.hls) this.hls.destroy();
      this.hls = null;
      video.removeAttribute("src");
      video.load();
    }
  }

  /** MJPEG in an <img>: one HTTP connection per picture (browsers allow six per host over HTTP/1.1). */
  class MjpegImgTransport {
    constructor(ctx) {
      this.ctx = ctx;
      this.stopped = false;
    }

    start() {
      const ctx = this.ctx;
      const img = ctx.showImage();
      img.onload = () => ctx.live();
      img.onerror = () => !this.stopped && ctx.fail("MJPEG stream failed");
      img.src = withToken(ctx.url, ctx.token);
    }

    stop() {
      this.stopped = true;
      const img = this.ctx.img;
      img.onload = img.onerror = null;
      // An empty src ends the HTTP request (the browser closes the multipart response).
      img.src = "data:,";
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // The element.

  const STYLE = `
:host{display:block;position:relative;background:#111;overflow:hidden;aspect-ratio:16/9;color:#fff;font:13px system-ui,sans-serif}
video,img.live,img.card{position:absolute;inset:0;width:100%;height:100%;object-fit:var(--camrelay-fit,contain);display:block}
[hidden]{display:none!important}
.badge{position:absolute;left:8px;top:8px;padding:2px 8px;border-radius:3px;background:rgba(0,0,0,.55);pointer-events:none}
.badge.offline{background:rgba(160,0,0,.75)}
.bar{position:absolute;right:6px;bottom:6px;display:flex;gap:4px;opacity:0;transition:opacity .2s}
:host(:hover) .bar,.bar:focus-within{opacity:1}
button{background:rgba(0,0,0,.6);color:#fff;border:0;border-radius:3px;padding:4px 8px;cursor:pointer;font:inherit}
button:hover{background:rgba(0,0,0,.85)}`;

  class CamrelayPlayer extends HTMLElement {
    static get observedAttributes() {
      return ["src", "transport", "fit", "controls", "token", "muted"];
    }

    constructor() {
      super();
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${STYLE}</style>
<video part="video" playsinline muted hidden></video>
<img part="image" class="live" alt="" hidden>
<img class="card" alt="" hidden>
<div class="badge" hidden></div>
<div class="bar" part="controls">
<button type="button" data-b="snapshot" title="Snapshot">&#128247;</button>
<button type="button" data-b="audio" title="Sound" hidden>&#128263;</button>
<button type="button" data-b="fullscreen" title="Fullscreen">&#x26F6;</button>
</div>`;
      this.video = root.querySelector("video");
      this.img = root.querySelector("img.live");
      this.card = root.querySelector("img.card");
      this.badge = root.querySelector(".badge");
      this.buttons = {};
      for (const b of root.querySelectorAll("button")) this.buttons[b.dataset.b] = b;
      this.buttons.snapshot.onclick = () => this.pressSnapshot();
      this.buttons.fullscreen.onclick = () => this.toggleFullscreen();
      this.buttons.audio.onclick = () => this.toggleAudio();
      this._transport = null;
      this._state = "";
      this._current = null;
      this._hasAudio = false;
      this._userMuted = true;
      this._refused = new Map(); // transport -> until (ms)
      this._failures = 0;
      this._retry = 0;
      this._stopTimer = 0;
      this._stall = 0;
      this._visible = true;
      this._connected = false;
      this._lastProgress = 0;
      this._hint = null;
      this.onVisibility = () => this.updateRunning();
      // Leaving the page: end the transport now (WHEP DELETE with keepalive) rather than by the server's timeout.
      this.onPageHide = () => this.halt();
    }

    get transport() {
      return this._transport;
    }
    set transport(value) {
      this.setAttribute("transport", value);
    }
    get src() {
      return this.getAttribute("src") || "";
    }
    set src(value) {
      this.setAttribute("src", value);
    }
    get state() {
      return this._state;
    }

    connectedCallback() {
      this._connected = true;
      this._userMuted = true;
      this.applyFit();
      this.applyControls();
      this.applyMuted();
      document.addEventListener("visibilitychange", this.onVisibility);
      window.addEventListener("pagehide", this.onPageHide);
      window.addEventListener("pageshow", this.onVisibility);
      if (typeof IntersectionObserver === "function") {
        this._visible = false; // until the observer's first report: a player below the fold never starts
        this.observer = new IntersectionObserver((entries) => {
          this._visible = entries[entries.length - 1].isIntersecting;
          this.updateRunning();
        });
        this.observer.observe(this);
      }
      this._stall = setInterval(() => this.checkStall(), 1000);
      this.updateRunning();
    }

    disconnectedCallback() {
      this._connected = false;
      document.removeEventListener("visibilitychange", this.onVisibility);
      window.removeEventListener("pagehide", this.onPageHide);
      window.removeEventListener("pageshow", this.onVisibility);
      if (this.observer) this.observer.disconnect();
      this.observer = null;
      clearInterval(this._stall);
      this.halt();
    }

    attributeChangedCallback(name, old, value) {
      if (old === value) return;
      if (name === "fit") return this.applyFit();
      if (name === "controls") return this.applyControls();
      if (name === "muted") {
        this._userMuted = value !== null;
        return this.applyMuted();
      }
      // src, transport, token: start over
      this._refused.clear();
      this._hint = null;
      this._failures = 0;
      if (this._connected) {
        this.halt();
        this.updateRunning();
      }
    }

    applyFit() {
      const fit = this.getAttribute("fit") === "cover" ? "cover" : "contain";
      this.style.setProperty("--camrelay-fit", fit);
    }

    applyControls() {
      const attr = this.getAttribute("controls");
      const list = attr === null ? ["snapshot", "fullscreen", "audio"] : attr.split(/[\s,]+/).filter(Boolean);
      this.buttons.snapshot.hidden = !list.includes("snapshot");
      this.buttons.fullscreen.hidden = !list.includes("fullscreen");
      this.buttons.audio.hidden = !list.includes("audio") || !this._hasAudio;
      this._controls = list;
    }

    applyMuted() {
      this.video.muted = this._userMuted;
      this.buttons.audio.innerHTML = this._userMuted ? "&#128263;" : "&#128266;";
      this.buttons.audio.title = this._userMuted ? "Sound on" : "Sound off";
    }

    /** Runs the transport while the element is in the page, the page is visible and the element on screen. */
    wanted() {
      return this._connected && !document.hidden && this._visible && !!this.src;
    }

    updateRunning() {
      const want = this.wanted();
      clearTimeout(this._stopTimer);
      if (want) {
        if (!this._current && !this._retry && !this._starting) this.begin();
      } else if (this._current || this._retry || this._starting) {
        this._stopTimer = setTimeout(() => this.halt(), this._connected ? HIDDEN_STOP_MS : 0);
      }
    }

    /** Stops the transport and any retry (hidden, off-screen, removed or restarting). */
    halt() {
      this._starting = 0;
      clearTimeout(this._retry);
      this._retry = 0;
      if (this._current) this._current.stop();
      this._current = null;
    }

    /** The transports to try, in order, for the transport attribute and what was refused. */
    plan() {
      const want = (this.getAttribute("transport") || "auto").toLowerCase();
      if (TRANSPORTS.includes(want)) return [want];
      const now = Date.now();
      const hint = this._hint;
      return TRANSPORTS.filter((t) => {
        const until = this._refused.get(t);
        if (until && until > now) return false;
        // status.json says the path carries no compressed video: neither WebRTC nor HLS can play it.
        if (hint && hint.video === false && (t === "webrtc" || t === "hls")) return false;
        if (hint && hint.h264 === false && t === "webrtc") return false;
        return true;
      });
    }

    async begin() {
      const { path, url } = streamUrls(this.src);
      const token = this.getAttribute("token") || "";
      this.setState("connecting");
      const stale = !this._hint || Date.now() - this._hint.at > 30000;
      if (stale && (this.getAttribute("transport") || "auto") === "auto") {
        const ticket = (this._starting = (this._tickets = (this._tickets || 0) + 1));
        const hint = await this.fetchHint(url, token);
        const cancelled = this._starting !== ticket;
        if (!cancelled) this._starting = 0;
        if (streamUrls(this.src).url === url) this._hint = hint;
        if (cancelled || !this.wanted() || this._current || streamUrls(this.src).url !== url) return;
      }
      const plan = this.plan();
      const name = plan[0] || "mjpeg";
      const ctx = this.context(name, path, url, token);
      const transport =
        name === "webrtc"
          ? new WebRtcTransport(ctx)
          : name === "mse"
            ? new SocketTransport(ctx, false)
            : name === "hls"
              ? new HlsTransport(ctx)
              : SharedSocket.for(ROOT.replace(/^http/, "ws") + "camrelay/ws").available && !this._refused.has("mjpeg-ws")
                ? new SocketTransport(ctx, true)
                : new MjpegImgTransport(ctx);
      ctx.owner = transport;
      this._current = transport;
      this._since = Date.now();
      this.setTransport(name);
      this.setState("connecting");
      transport.start();
    }

    /** One look at status.json: which media the path carries. Nothing when it cannot be read. */
    async fetchHint(url, token) {
      try {
        const r = await fetch(withToken(url + "status.json", token), { cache: "no-store" });
        if (!r.ok) return { video: undefined, at: Date.now() };
        const s = await r.json();
        const v = s.video;
        return {
          at: Date.now(),
          video: v ? true : s.fmp4 && s.fmp4.init ? true : false,
          h264: v && v.codec ? /avc1|h264/i.test(v.codec) : undefined,
          offline: s.upstream === "offline",
        };
      } catch {
        return { video: undefined, at: Date.now() };
      }
    }

    context(name, path, url, token) {
      const ctx = {
        owner: null,
        path,
        url,
        token,
        video: this.video,
        img: this.img,
        active: () => this._current === ctx.owner,
        setTransport: (t) => ctx.active() && this.setTransport(t),
        showVideo: () => this.show("video"),
        showImage: () => this.show("img"),
        live: () => {
          if (!ctx.active()) return;
          this._pictures = (this._pictures || 0) + 1; // pictures (JPEG) or starts (video) shown: for tests
          this._failures = 0;
          this._lastProgress = Date.now();
          this.card.hidden = true;
          this.setState("live");
        },
        offline: () => ctx.active() && this.showOffline(ctx),
        online: () => {
          if (!ctx.active()) return;
          this.card.hidden = true;
          this.setState("connecting");
        },
        audio: (has) => {
          if (!ctx.active()) return;
          this._hasAudio = has;
          this.applyControls();
          this.applyMuted();
        },
        fail: (reason, refused, status) => {
          if (!ctx.active()) return;
          this.failed(name, reason, !!refused, status);
        },
      };
      if (name === "mjpeg") {
        // the mjpeg step may run on the shared socket; its refusal falls back to the <img>
        const origFail = ctx.fail;
        ctx.fail = (reason, refused, status) => {
          if (ctx.active() && this._current instanceof SocketTransport && refused) {
            this._refused.set("mjpeg-ws", Date.now() + REFUSAL_MS);
            this.failed("mjpeg-ws", reason, false, status, true);
            return;
          }
          origFail(reason, refused, status);
        };
      }
      return ctx;
    }

    /** A transport failed: refused ones are skipped for a while; then retry with backoff. */
    failed(name, reason, refused, status, immediate) {
      if (reason === NO_SOCKET) this._socketSkipped = true;
      if (this._current) this._current.stop();
      this._current = null;
      const auto = (this.getAttribute("transport") || "auto").toLowerCase() === "auto";
      if (refused && auto && name !== "mjpeg") {
        this._refused.set(name, Date.now() + REFUSAL_MS);
        immediate = true; // the next transport at once
      }
      const auth = status === 401 || status === 403;
      if (immediate) this.setState("connecting", reason);
      else {
        this.setState(auth ? "error" : this._state === "offline" ? "offline" : "error", reason);
        this.showOffline(null);
      }
      const delay = immediate ? 0 : BACKOFF[Math.min(this._failures++, BACKOFF.length - 1)] * (auth ? 2 : 1);
      clearTimeout(this._retry);
      this._retry = setTimeout(() => {
        this._retry = 0;
        if (this.wanted()) this.begin();
      }, delay);
    }

    /** Shows one of the picture elements. */
    show(which) {
      this.video.hidden = which !== "video";
      this.img.hidden = which !== "img";
      return which === "video" ? this.video : this.img;
    }

    /** The offline placeholder: the server's offline card (snapshot.jpg), with a drawn badge over it. */
    showOffline(ctx) {
      if (ctx) this.setState("offline");
      const { url } = streamUrls(this.src);
      const token = this.getAttribute("token") || "";
      this.card.src = withToken(url + "snapshot.jpg", token) + (token ? "&" : "?") + "t=" + Date.now();
      this.card.onerror = () => (this.card.hidden = true);
      this.card.hidden = false;
    }

    /** A picture that stops moving for STALL_MS is treated as a dropped connection. */
    checkStall() {
      this.backToSocket();
      if (!this._current || this._state !== "live") return;
      const v = this.video;
      if (!v.hidden) {
        const t = v.currentTime;
        if (t !== this._lastTime) {
          this._lastTime = t;
          this._lastProgress = Date.now();
        }
      } else if (this._transport === "mjpeg" && this._current instanceof MjpegImgTransport) {
        return; // the <img> gives no progress events; the server's offline card keeps it moving
      }
      if (Date.now() - this._lastProgress > STALL_MS) this.failed(this._transport, "the picture stopped", false);
    }

    /**
     * Fell back to HLS or the MJPEG <img> because the WebSocket could not be reached (Node-RED restarting):
     * once it can be tried again, go back to it, or twelve <img> players would stay on six connections.
     */
    backToSocket() {
      const cur = this._current;
      if (!this._socketSkipped || !(cur instanceof MjpegImgTransport || cur instanceof HlsTransport)) return;
      if ((this.getAttribute("transport") || "auto").toLowerCase() !== "auto" && !(cur instanceof MjpegImgTransport)) return;
      const socket = SharedSocket.for(ROOT.replace(/^http/, "ws") + "camrelay/ws");
      if (!socket.available || Date.now() - this._since < 10000) return;
      this._socketSkipped = false;
      this._refused.delete("mse");
      this._refused.delete("mjpeg-ws");
      this.halt();
      this.begin();
    }

    setTransport(t) {
      this._transport = t;
    }

    setState(state, error) {
      const changed = state !== this._state || (error && error !== this._error);
      this._state = state;
      this._error = error;
      this.badge.hidden = state === "live";
      this.badge.className = "badge" + (state === "offline" || state === "error" ? " offline" : "");
      this.badge.textContent = state === "connecting" ? "connecting" : state === "offline" ? "offline" : state === "error" ? "error" : "";
      if (error) this.badge.title = error;
      this.setAttribute("data-state", state);
      if (this._transport) this.setAttribute("data-transport", this._transport);
      if (!changed) return;
      const detail = { transport: this._transport, state };
      if (error) detail.error = error;
      this.dispatchEvent(new CustomEvent("camrelay-state", { detail, bubbles: true, composed: true }));
    }

    /** The picture now as a JPEG Blob: drawn from the video or image, else the server's snapshot.jpg. */
    async snapshot() {
      let blob = null;
      let width = 0;
      let height = 0;
      const source = [this.video, this.img].find((e) => !e.hidden) || null;
      if (source) {
        width = source.videoWidth || source.naturalWidth || 0;
        height = source.videoHeight || source.naturalHeight || 0;
        if (width && height) {
          try {
            const c = document.createElement("canvas");
            c.width = width;
            c.height = height;
            c.getContext("2d").drawImage(source, 0, 0, width, height);
            blob = await new Promise((resolve) => c.toBlob(resolve, "image/jpeg", 0.92));
          } catch {
            blob = null; // a tainted canvas (another origin): ask the server
          }
        }
      }
      if (!blob) {
        const { url } = streamUrls(this.src);
        const r = await fetch(withToken(url + "snapshot.jpg", this.getAttribute("token") || ""), { cache: "no-store" });
        if (!r.ok) throw new Error("snapshot: HTTP " + r.status);
        blob = await r.blob();
        const bmp = window.createImageBitmap ? await createImageBitmap(blob).catch(() => null) : null;
        if (bmp) {
          width = bmp.width;
          height = bmp.height;
          bmp.close();
        }
      }
      this.dispatchEvent(
        new CustomEvent("camrelay-snapshot", { detail: { blob, width, height }, bubbles: true, composed: true, cancelable: true }),
      );
      return blob;
    }

    /** The button: emits camrelay-snapshot; downloads the picture unless a listener called preventDefault. */
    async pressSnapshot() {
      let prevented = false;
      const mark = (ev) => (prevented = ev.defaultPrevented);
      // runs after the page's own listeners (added later than theirs would be on the element's own event)
      window.addEventListener("camrelay-snapshot", mark, { once: true });
      let blob;
      try {
        blob = await this.snapshot();
      } catch (err) {
        window.removeEventListener("camrelay-snapshot", mark);
        this.setState(this._state, err.message);
        return;
      }
      if (prevented) return;
      const a = document.createElement("a");
      const name = streamUrls(this.src).path.replace(/^\/+/, "").replace(/[^\w.-]+/g, "-") || "camera";
      a.href = URL.createObjectURL(blob);
      a.download = name + "-" + new Date().toISOString().replace(/[:.]/g, "-") + ".jpg";
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    }

    toggleFullscreen() {
      if (document.fullscreenElement === this) document.exitFullscreen().catch(() => {});
      else if (this.requestFullscreen) this.requestFullscreen().catch(() => {});
      else if (this.video.webkitEnterFullscreen) this.video.webkitEnterFullscreen();
    }

    toggleAudio() {
      this._userMuted = !this._userMuted;
      this.applyMuted();
      if (!this._userMuted) this.video.play().catch(() => {});
    }
  }

  window.customElements.define("camrelay-player", CamrelayPlayer);
})();
