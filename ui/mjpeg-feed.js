// The MJPEG fallback of the ui-camera widget, used when camrelay's player is not there (or transport is
// "mjpeg"): one connection per stream path for every widget of the page that shows it, parsed here into
// whole JPEGs (camrelay's parts carry Content-Length). Browsers open only six HTTP/1.1 connections per host
// and the dashboard keeps one, so beyond MAX_STREAMING paths a feed polls snapshot.jpg instead.
/* global window, document, fetch, URL, Blob, TextDecoder, AbortController, setTimeout, clearTimeout */

const MAX_STREAMING = 3;
const POLL_MS = 250;
const MAX_PART_BYTES = 16 * 1024 * 1024;
const RETRY_MS = [1000, 2000, 4000, 8000, 10000];
const feeds = new Map();

function withToken(url, token) {
  if (!token) return url;
  return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

function indexOfHeaderEnd(buf) {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) return i;
  }
  return -1;
}

class Feed {
  constructor(src, token) {
    this.src = src;
    this.token = token;
    this.subscribers = new Set();
    this.latest = null; // { blob, url }
    this.oldUrls = [];
    this.state = "connecting";
    this.failures = 0;
    this.abort = null;
    this.timer = null;
    this.stopped = false;
    this.polling = [...feeds.values()].filter((f) => !f.polling).length >= MAX_STREAMING;
  }

  start() {
    this.stopped = false;
    if (this.polling) this.poll();
    else this.stream();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
    clearTimeout(this.timer);
    for (const u of this.oldUrls) URL.revokeObjectURL(u);
    if (this.latest) URL.revokeObjectURL(this.latest.url);
    this.oldUrls = [];
    this.latest = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    for (const s of this.subscribers) s.state(state);
  }

  frame(bytes) {
    const blob = new Blob([bytes], { type: "image/jpeg" });
    const url = URL.createObjectURL(blob);
    // An <img> may still be decoding the previous picture: revoke object URLs two frames later.
    if (this.latest) this.oldUrls.push(this.latest.url);
    while (this.oldUrls.length > 2) URL.revokeObjectURL(this.oldUrls.shift());
    this.latest = { blob, url };
    this.failures = 0;
    this.setState("live");
    for (const s of this.subscribers) s.frame(url, blob);
  }

  retry(next) {
    if (this.stopped) return;
    this.setState("offline");
    const ms = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures++;
    this.timer = setTimeout(next, ms);
  }

  async stream() {
    this.abort = new AbortController();
    try {
      const res = await fetch(withToken(this.src, this.token), {
        signal: this.abort.signal,
        cache: "no-store",
      });
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      const reader = res.body.getReader();
      const latin1 = new TextDecoder("latin1");
      let buf = new Uint8Array(0);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const joined = new Uint8Array(buf.length + value.length);
        joined.set(buf);
        joined.set(value, buf.length);
        buf = joined;
        for (;;) {
          const end = indexOfHeaderEnd(buf);
          if (end < 0) break;
          const head = latin1.decode(buf.subarray(0, end));
          const m = /content-length:\s*(\d+)/i.exec(head);
          if (!m) throw new Error("an MJPEG part without Content-Length");
          const len = Number(m[1]);
          if (len > MAX_PART_BYTES) throw new Error("an MJPEG part of " + len + " bytes");
          if (buf.length < end + 4 + len) break;
          this.frame(buf.slice(end + 4, end + 4 + len));
          buf = buf.slice(end + 4 + len);
        }
        if (buf.length > MAX_PART_BYTES) throw new Error("no MJPEG part in " + buf.length + " bytes");
      }
      throw new Error("the stream ended");
    } catch (err) {
      if (this.stopped) return;
      this.lastError = String((err && err.message) || err);
      this.retry(() => this.stream());
    }
  }

  async poll() {
    try {
      const url = withToken(this.src + "/snapshot.jpg", this.token);
      const res = await fetch(url + (url.includes("?") ? "&" : "?") + "t=" + Date.now(), {
        cache: "no-store",
      });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (this.stopped) return;
      this.frame(bytes);
      this.timer = setTimeout(() => this.poll(), POLL_MS);
    } catch (err) {
      if (this.stopped) return;
      this.lastError = String((err && err.message) || err);
      this.retry(() => this.poll());
    }
  }
}

/**
 * Subscribes to the MJPEG pictures of `src`: `frame(objectUrl, blob)` for each, `state("live"|"offline")`.
 * Returns { unsubscribe(), latest() } (latest: the newest JPEG Blob or null).
 */
export function subscribeMjpeg(src, token, subscriber) {
  const key = src + "\n" + (token || "");
  let feed = feeds.get(key);
  if (!feed) {
    feed = new Feed(src, token);
    feeds.set(key, feed);
    feed.start();
  }
  feed.subscribers.add(subscriber);
  subscriber.state(feed.state);
  if (feed.latest) subscriber.frame(feed.latest.url, feed.latest.blob);
  return {
    latest: () => (feed.latest ? feed.latest.blob : null),
    unsubscribe() {
      feed.subscribers.delete(subscriber);
      if (feed.subscribers.size === 0) {
        feed.stop();
        feeds.delete(key);
      }
    },
  };
}

/** How the page's feeds are doing (for tests and debugging): [{ src, polling, state, subscribers }]. */
export function mjpegFeeds() {
  return [...feeds.values()].map((f) => ({
    src: f.src,
    polling: f.polling,
    state: f.state,
    subscribers: f.subscribers.size,
  }));
}

/** Loads camrelay's player once per page; resolves true when <camrelay-player> is defined, else false. */
let playerLoad = null;
export function loadPlayer(url) {
  if (window.customElements && window.customElements.get("camrelay-player")) return Promise.resolve(true);
  if (playerLoad) return playerLoad;
  playerLoad = new Promise((resolve) => {
    if (!window.customElements) return resolve(false);
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    const timer = setTimeout(() => resolve(false), 8000);
    script.onerror = () => {
      clearTimeout(timer);
      resolve(false);
    };
    window.customElements.whenDefined("camrelay-player").then(() => {
      clearTimeout(timer);
      resolve(true);
    });
    document.head.appendChild(script);
  });
  return playerLoad;
}

// The page's MJPEG pool: when a player stays "connecting" on MJPEG (its own <img> per element, as without
// the shared WebSocket, e.g. behind a proxy that refuses the upgrade), browsers' six connections per host
// are used up. Then every widget of the page whose player shows MJPEG moves to the pooled feeds above.
let pooled = false;
const poolListeners = new Set();

/** True once the page moved its MJPEG pictures to the pooled feeds. */
export function mjpegPooled() {
  return pooled;
}

/** Moves the page to the pooled feeds (once); every listener is told. */
export function poolMjpeg() {
  if (pooled) return;
  pooled = true;
  for (const fn of [...poolListeners]) fn();
}

/** Calls `fn` when the page moves to the pooled feeds; returns the function that stops listening. */
export function onMjpegPooled(fn) {
  poolListeners.add(fn);
  return () => poolListeners.delete(fn);
}
