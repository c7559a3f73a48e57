// <camrelay-player> in real Chromium against a real Node-RED process (one for the whole file): twelve
// test-pattern cameras on one page all live through the player (one shared WebSocket) while twelve bare
// MJPEG <img> tags are held to the browser's six HTTP/1.1 connections per host; the fallbacks when WebRTC
// is refused or a transport is forced, on an H.264 path from ffmpeg transcode; the offline card and the
// reconnect when the camera comes back; pausing off-screen; the status page playing through the player;
// player.js gone once the last http stream out is removed.
// Functions passed to page.evaluate() run in the browser, where these exist.
/* global document, window */
"use strict";
const assert = require("assert");
const { startNodeRed } = require("./lib/browser-nodered");
const { launchChromium } = require("./lib/browser-chromium");
const { until } = require("./lib/toolkit");

const CAMERAS = 12;
const TAB = "c0a1e5f0d1a30001";

const script = `<script src="/camrelay/player.js"></script>`;
const players = (attrs = "") =>
  Array.from(
    { length: CAMERAS },
    (_, i) => `<camrelay-player src="/cam/${i + 1}" ${attrs}></camrelay-player>`,
  ).join("\n");
const pages = {
  "twelve.html": testPage(`${script}${players()}`),
  "bare.html": testPage(
    Array.from({ length: CAMERAS }, (_, i) => `<img src="/cam/${i + 1}/" alt="">`).join("\n"),
  ),
  "video-mse.html": testPage(`${script}<camrelay-player src="/video" transport="mse"></camrelay-player>`),
  "video-hls.html": testPage(`${script}<camrelay-player src="/video" transport="hls"></camrelay-player>`),
  "video-auto.html": testPage(`${script}<camrelay-player src="/video"></camrelay-player>`),
  "webrtc-jpeg.html": testPage(
    `${script}<camrelay-player src="/cam/4" transport="webrtc"></camrelay-player>`,
  ),
  "token.html": testPage(
    `${script}<camrelay-player id="yes" src="/cam/5" token="s3cret"></camrelay-player>` +
      `<camrelay-player id="no" src="/cam/5"></camrelay-player>`,
  ),
  "seven.html": testPage(`${script}<camrelay-player id="p" src="/cam/7"></camrelay-player>`),
  "one.html": testPage(`${script}<camrelay-player id="p" src="/cam/1"></camrelay-player>`),
  "scroll.html": testPage(
    `${script}<div style="width:100%;height:3000px"></div><camrelay-player id="p" src="/cam/2"></camrelay-player>`,
  ),
};

/** Twelve 160x120 test-pattern cameras on /cam/1../cam/12, an H.264 path /video, and GET /ctl/:action for camera 1. */
function flows() {
  const nodes = [{ id: TAB, type: "tab", label: "player" }];
  for (let i = 1; i <= CAMERAS; i++) {
    nodes.push(
      {
        id: `cam${i}`,
        type: "camera-source",
        name: `cam ${i}`,
        protocol: "test",
        url: "160x120",
        fps: 5,
        linger: 0,
      },
      {
        id: `cc${i}`,
        type: "camera-connect",
        z: TAB,
        camera: `cam${i}`,
        autoStart: true,
        output: "jpeg",
        wires: [[`out${i}`], []],
      },
      {
        id: `out${i}`,
        type: "http-stream-out",
        z: TAB,
        path: `/cam/${i}`,
        maxClients: 100,
        maxKbps: 0,
        cors: "",
        offlineAfter: 1.5,
        stallTimeout: 10,
        wires: [[]],
      },
    );
  }
  nodes.push(
    {
      id: "vcam",
      type: "camera-source",
      name: "video cam",
      protocol: "test",
      url: "320x240",
      fps: 10,
      linger: 0,
    },
    {
      id: "vcc",
      type: "camera-connect",
      z: TAB,
      camera: "vcam",
      autoStart: true,
      output: "jpeg",
      wires: [["vtc"], []],
    },
    {
      id: "vtc",
      type: "ffmpeg-transcode",
      z: TAB,
      preset: "fmp4",
      quality: 30,
      keyframeInterval: 1,
      encoder: "libx264",
      size: "320x240",
      wires: [["vout"], []],
    },
    {
      id: "vout",
      type: "http-stream-out",
      z: TAB,
      path: "/video",
      maxClients: 100,
      maxKbps: 0,
      cors: "",
      offlineAfter: 5,
      stallTimeout: 10,
      wires: [[]],
    },
    { id: "ctl", type: "http in", z: TAB, url: "/ctl/:action", method: "get", wires: [["ctlfn"]] },
    {
      id: "ctlfn",
      type: "function",
      z: TAB,
      func: "msg.payload = 'ok';\nreturn [{ action: msg.req.params.action }, msg];",
      outputs: 2,
      wires: [["cc1"], ["ctlres"]],
    },
    { id: "ctlres", type: "http response", z: TAB, statusCode: "", wires: [] },
    // The test pages, served by Node-RED itself: Chromium's local network access checks refuse a
    // WebSocket to 127.0.0.1 from a page the test fulfils without a real address.
    { id: "pg", type: "http in", z: TAB, url: "/player-test/:name", method: "get", wires: [["pgfn"]] },
    {
      id: "pgfn",
      type: "function",
      z: TAB,
      func:
        `const pages = ${JSON.stringify(pages)};\n` +
        "msg.payload = pages[msg.req.params.name] || 'no such page';\n" +
        "msg.headers = { 'Content-Type': 'text/html; charset=utf-8' };\nreturn msg;",
      outputs: 1,
      wires: [["ctlres"]],
    },
  );
  return nodes;
}

/** A page served from Node-RED's own origin by the browser itself (no CORS, no extra server). */
function testPage(body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>camrelay player test</title>
<style>body{margin:0;background:#222;display:flex;flex-wrap:wrap;gap:4px}
camrelay-player,img{width:300px;height:170px}</style></head>
<body>${body}</body></html>`;
}

/**
 * A small hash of each element's picture now (the shown <video>/<img> inside a player, or a bare <img>),
 * drawn through a canvas at full size; null while it has no picture.
 */
function pictureHashes(page, selector) {
  return page.evaluate((sel) => {
    return [...document.querySelectorAll(sel)].map((el) => {
      const src = el.shadowRoot
        ? [...el.shadowRoot.querySelectorAll("video, canvas.live, img.live")].find((e) => !e.hidden)
        : el;
      if (!src) return null;
      const w = src.videoWidth || src.naturalWidth || (src.tagName === "CANVAS" ? src.width : 0);
      const h = src.videoHeight || src.naturalHeight || (src.tagName === "CANVAS" ? src.height : 0);
      if (!w || !h) return null;
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d");
      g.drawImage(src, 0, 0, w, h);
      const d = g.getImageData(0, 0, w, h).data;
      let x = 0;
      for (let i = 0; i < d.length; i += 4)
        x = (Math.imul(x, 31) + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
      return x;
    });
  }, selector);
}

/** For each element: does its picture change within `ms` (looked at every 250 ms; a live picture changes)? */
async function changing(page, selector, ms = 2000) {
  const first = await pictureHashes(page, selector);
  const moved = first.map(() => false);
  for (let t = 0; t < ms; t += 250) {
    await page.waitForTimeout(250);
    const now = await pictureHashes(page, selector);
    now.forEach((h, i) => {
      if (h !== null && first[i] !== null && h !== first[i]) moved[i] = true;
    });
  }
  return moved;
}

/** Each player's data-state and data-transport. */
function states(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("camrelay-player")].map((p) => ({
      state: p.getAttribute("data-state"),
      transport: p.transport,
    })),
  );
}

/** Waits until every player matching `selector` reports `state`; the error lists states and events seen. */
async function waitState(page, selector, state, ms) {
  try {
    await page.waitForFunction(
      ([sel, st]) => [...document.querySelectorAll(sel)].every((p) => p.getAttribute("data-state") === st),
      [selector, state],
      { timeout: ms },
    );
  } catch (err) {
    const seen = await page.evaluate(() => window.camrelayEvents || []).catch(() => []);
    const now = await states(page).catch(() => []);
    throw new Error(
      `${err.message.split("\n")[0]}: states ${JSON.stringify(now)}; events ${JSON.stringify(seen.slice(-30))}`,
    );
  }
}

describe("<camrelay-player> in Chromium with a real Node-RED", function () {
  this.timeout(60000);
  let nodeRed;
  let browser;
  const pageErrors = [];

  before(async function () {
    this.timeout(90000);
    nodeRed = await startNodeRed({ flows: flows() });
    browser = await launchChromium({ viewport: { width: 1280, height: 720 } });
    await browser.context.addInitScript(() => {
      window.camrelayEvents = [];
      window.addEventListener("camrelay-state", (e) =>
        window.camrelayEvents.push({ src: e.target.getAttribute("src"), ...e.detail }),
      );
    });
    // The fMP4 path needs ffmpeg running before its players start.
    await until(
      async () => {
        const r = await fetch(`${nodeRed.base}/video/status.json`);
        return r.ok && (await r.json()).fmp4.segments >= 2;
      },
      { what: "fMP4 segments on /video", ms: 30000, every: 250 },
    );
  });

  after(async function () {
    this.timeout(30000);
    if (browser) await browser.close();
    if (nodeRed) await nodeRed.stop();
  });

  afterEach(async function () {
    // A failed test leaves its page open: close it, or its MJPEG connections starve the next pages.
    for (const page of browser.context.pages()) await page.close().catch(() => {});
    const errors = pageErrors.splice(0);
    assert.deepStrictEqual(errors, [], "no uncaught errors in the pages");
  });

  async function open(name) {
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`${name}: ${err.message}`));
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    page.sockets = sockets;
    await page.goto(`${nodeRed.base}/player-test/${name}`, { waitUntil: "domcontentloaded" });
    return page;
  }

  it("serves player.js under httpNodeRoot with an ETag (304 when unchanged)", async function () {
    const r = await fetch(`${nodeRed.base}/camrelay/player.js`);
    assert.strictEqual(r.status, 200);
    assert.match(r.headers.get("content-type"), /javascript/);
    const body = await r.text();
    assert.match(body, /customElements\.define\("camrelay-player"/);
    const again = await fetch(`${nodeRed.base}/camrelay/player.js`, {
      headers: { "If-None-Match": r.headers.get("etag") },
    });
    assert.strictEqual(again.status, 304);
  });

  it("twelve cameras on one page are all live through the player, over one WebSocket", async function () {
    const page = await open("twelve.html");
    await waitState(page, "camrelay-player", "live", 20000);
    const live = await changing(page, "camrelay-player", 5000);
    const s = await states(page);
    console.log(`      player transports: ${s.map((x) => x.transport).join(", ")}`);
    const events = await page.evaluate(() => window.camrelayEvents);
    const stuck = live.map((ok, i) => (ok ? null : `/cam/${i + 1}`)).filter(Boolean);
    for (const path of stuck) {
      const st = await (await fetch(`${nodeRed.base}${path}/status.json`)).json();
      const frames = await page.evaluate(
        (src) => document.querySelector(`camrelay-player[src="${src}"]`)._pictures,
        path,
      );
      console.log(
        `      ${path}: fpsIn ${st.fpsIn}, viewers ${JSON.stringify(st.viewers)}, pictures ${frames}`,
      );
    }
    assert.deepStrictEqual(
      stuck,
      [],
      `every player's picture changes; events of those that did not: ${JSON.stringify(events.filter((e) => stuck.includes(e.src)))}`,
    );
    const ws = page.sockets.filter((u) => /\/camrelay\/ws/.test(u));
    assert.strictEqual(ws.length, 1, `one shared WebSocket for the page: ${page.sockets.join(", ")}`);
    await page.close();
  });

  it("the same page with twelve bare MJPEG <img> tags gets at most six live (six connections per host)", async function () {
    const page = await open("bare.html");
    await page.waitForTimeout(3000);
    const live = await changing(page, "img");
    const count = live.filter(Boolean).length;
    console.log(`      bare MJPEG <img>: ${count} of ${CAMERAS} live`);
    assert.ok(count >= 1, "some MJPEG pictures play");
    assert.ok(count <= 6, `at most six of twelve <img> update, saw ${count}`);
    await page.close();
  });

  it("plays an H.264 path over MSE (forced) and HLS (forced): the picture changes", async function () {
    for (const [name, transport] of [
      ["video-mse.html", "mse"],
      ["video-hls.html", "hls"],
    ]) {
      const page = await open(name);
      await waitState(page, "camrelay-player", "live", 20000);
      const [s] = await states(page);
      assert.strictEqual(s.transport, transport);
      const t0 = await page.evaluate(
        () => document.querySelector("camrelay-player").shadowRoot.querySelector("video").currentTime,
      );
      const [moved] = await changing(page, "camrelay-player", 1500);
      const t1 = await page.evaluate(
        () => document.querySelector("camrelay-player").shadowRoot.querySelector("video").currentTime,
      );
      assert.ok(moved, `${transport}: the picture changes`);
      assert.ok(t1 > t0, `${transport}: currentTime advances (${t0} -> ${t1})`);
      await page.close();
    }
  });

  it("plays the H.264 path over WebRTC in auto mode; the session ends with the page", async function () {
    const viewers = async () => (await (await fetch(`${nodeRed.base}/video/status.json`)).json()).viewers;
    const page = await open("video-auto.html");
    await waitState(page, "camrelay-player", "live", 20000);
    const [s] = await states(page);
    const events = await page.evaluate(() => window.camrelayEvents);
    assert.strictEqual(s.transport, "webrtc", JSON.stringify(events));
    const [moved] = await changing(page, "camrelay-player", 1500);
    assert.ok(moved, "the WebRTC picture changes");
    assert.ok(
      (await viewers()).some((v) => v.kind === "webrtc"),
      "a webrtc viewer in status.json",
    );
    await page.close();
    await until(async () => !(await viewers()).some((v) => v.kind === "webrtc"), {
      what: "the WebRTC session ended with the page",
      ms: 15000,
      every: 250,
    });
  });

  it("forced WebRTC on a JPEG-only path reports the server's 415 in words", async function () {
    const page = await open("webrtc-jpeg.html");
    await waitState(page, "camrelay-player", "error", 15000);
    const events = await page.evaluate(() => window.camrelayEvents);
    const refusal = events.find((e) => e.state === "error");
    assert.strictEqual(refusal.transport, "webrtc");
    assert.match(refusal.error, /^WHEP 415: .+/);
    await page.close();
  });

  it("falls back from WebRTC when the WHEP endpoint refuses (415) and still plays the H.264 path", async function () {
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`video-auto: ${err.message}`));
    let posted = 0;
    await page.route(`${nodeRed.base}/video/whep`, (route) => {
      posted++;
      route.fulfill({ status: 415, contentType: "text/plain", body: "no H.264 here" });
    });
    const events = [];
    await page.exposeFunction("reportState", (d) => events.push(d));
    await page.addInitScript(() =>
      window.addEventListener("camrelay-state", (e) => window.reportState(e.detail)),
    );
    await page.goto(`${nodeRed.base}/player-test/video-auto.html`, { waitUntil: "domcontentloaded" });
    await waitState(page, "camrelay-player", "live", 20000);
    const [s] = await states(page);
    assert.strictEqual(posted, 1, "the player asked WHEP first");
    assert.notStrictEqual(s.transport, "webrtc");
    assert.ok(["mse", "hls"].includes(s.transport), `plays as video, got ${s.transport}`);
    assert.ok(
      events.some((e) => e.transport === "webrtc" && /415/.test(e.error || "")),
      `a state event names the refusal: ${JSON.stringify(events)}`,
    );
    const [moved] = await changing(page, "camrelay-player", 1500);
    assert.ok(moved, "the picture changes after the fallback");
    await page.close();
  });

  it("shows offline when the camera stops and is live again by itself when it comes back", async function () {
    const page = await open("one.html");
    const state = () => page.evaluate(() => document.getElementById("p").getAttribute("data-state"));
    await waitState(page, "#p", "live", 15000);
    assert.strictEqual((await fetch(`${nodeRed.base}/ctl/stop`)).status, 200);
    await waitState(page, "#p", "offline", 15000);
    const card = await page.evaluate(
      () => !document.getElementById("p").shadowRoot.querySelector("img.card").hidden,
    );
    assert.ok(card, "the offline card is shown");
    assert.strictEqual((await fetch(`${nodeRed.base}/ctl/start`)).status, 200);
    await waitState(page, "#p", "live", 20000);
    const [moved] = await changing(page, "camrelay-player", 1500);
    assert.ok(moved, `live again and moving (state ${await state()})`);
    await page.close();
  });

  it("stops watching while scrolled off-screen and resumes when back", async function () {
    const viewers = async () => (await (await fetch(`${nodeRed.base}/cam/2/status.json`)).json()).viewerCount;
    const page = await open("scroll.html");
    await page.waitForTimeout(2500);
    assert.strictEqual(await viewers(), 0, "off-screen from the start: no viewer");
    await page.evaluate(() => document.getElementById("p").scrollIntoView());
    await waitState(page, "#p", "live", 15000);
    await until(async () => (await viewers()) === 1, { what: "one viewer on /cam/2", ms: 5000, every: 200 });
    await page.evaluate(() => window.scrollTo(0, 0));
    await until(async () => (await viewers()) === 0, {
      what: "the viewer gone off-screen",
      ms: 8000,
      every: 200,
    });
    await page.evaluate(() => document.getElementById("p").scrollIntoView());
    await until(async () => (await viewers()) === 1, { what: "back on screen", ms: 10000, every: 200 });
    await page.close();
  });

  it("fell back to the MJPEG <img> while the WebSocket could not be reached, goes back to it later", async function () {
    this.timeout(60000);
    const viewers = async () => (await (await fetch(`${nodeRed.base}/cam/7/status.json`)).json()).viewers;
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`socket-back: ${err.message}`));
    let refused = 0;
    // The first connection attempts fail as if Node-RED were restarting; later ones reach the server.
    const started = Date.now();
    await page.routeWebSocket(/\/camrelay\/ws/, (ws) => {
      if (Date.now() - started < 3000) {
        refused++;
        ws.close();
      } else ws.connectToServer();
    });
    await page.goto(`${nodeRed.base}/player-test/seven.html`, { waitUntil: "domcontentloaded" });
    await until(async () => (await viewers()).some((v) => v.kind === "mjpeg"), {
      what: "the MJPEG <img> fallback on /cam/7",
      ms: 15000,
      every: 250,
    });
    assert.ok(refused >= 1, "the WebSocket was refused first");
    await until(
      async () => {
        const v = await viewers();
        return v.length === 1 && v[0].kind === "ws";
      },
      { what: "back on the shared WebSocket", ms: 40000, every: 500 },
    );
    await waitState(page, "#p", "live", 10000);
    await page.close();
  });

  it("the snapshot() method gives a JPEG Blob and emits camrelay-snapshot", async function () {
    const page = await open("one.html");
    await waitState(page, "#p", "live", 15000);
    const r = await page.evaluate(async () => {
      const p = document.getElementById("p");
      let detail = null;
      p.addEventListener("camrelay-snapshot", (e) => (detail = e.detail));
      const blob = await p.snapshot();
      const head = new Uint8Array(await blob.slice(0, 2).arrayBuffer());
      return {
        type: blob.type,
        head: [...head],
        size: blob.size,
        detail: detail && { w: detail.width, h: detail.height, same: detail.blob === blob },
      };
    });
    assert.strictEqual(r.type, "image/jpeg");
    assert.deepStrictEqual(r.head, [0xff, 0xd8]);
    assert.deepStrictEqual(r.detail, { w: 160, h: 120, same: true });
    await page.close();
  });

  it("the status page plays the stream through the player", async function () {
    const page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`status: ${err.message}`));
    await page.goto(`${nodeRed.base}/cam/3/status`, { waitUntil: "domcontentloaded" });
    await page.waitForSelector("camrelay-player", { timeout: 15000 });
    await waitState(page, "camrelay-player", "live", 15000);
    const [moved] = await changing(page, "camrelay-player", 1500);
    assert.ok(moved, "the status page's picture changes");
    await page.close();
  });

  it("a path with a token: the player given the token plays, one without says 401 in words", async function () {
    const nodes = flows().map((n) => (n.id === "out5" ? { ...n, credentials: { token: "s3cret" } } : n));
    const r = await fetch(`${nodeRed.base}/flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "nodes" },
      body: JSON.stringify(nodes),
    });
    assert.ok(r.status === 204 || r.status === 200, `deploy: ${r.status}`);
    await until(async () => (await fetch(`${nodeRed.base}/cam/5/status.json`)).status === 401, {
      what: "/cam/5 asks for the token",
      ms: 10000,
      every: 200,
    });
    const page = await open("token.html");
    await waitState(page, "#yes", "live", 15000);
    await waitState(page, "#no", "error", 15000);
    const events = await page.evaluate(() => window.camrelayEvents);
    const refusal = events.find((e) => e.src === "/cam/5" && e.state === "error");
    assert.match(refusal.error, /token/i);
    const [moved] = await changing(page, "#yes", 1500);
    assert.ok(moved, "the picture with the token changes");
    await page.close();
  });

  it("removes player.js when the last http stream out is gone", async function () {
    const r = await fetch(`${nodeRed.base}/flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify([{ id: TAB, type: "tab", label: "player" }]),
    });
    assert.ok(r.status === 204 || r.status === 200, `deploy: ${r.status}`);
    await until(async () => (await fetch(`${nodeRed.base}/camrelay/player.js`)).status === 404, {
      what: "player.js gone",
      ms: 10000,
      every: 200,
    });
  });
});
