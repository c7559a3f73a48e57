// WebRTC (WHEP, issue 14) in real Chromium against a real Node-RED: a plain RTCPeerConnection page (not
// the player) plays the GStreamer RTSP camera's H.264 through camera connect (output video) -> http stream
// out, and an fMP4 from ffmpeg transcode (libx264 from a test pattern); the picture changes (getStats
// framesDecoded grows, two canvas grabs differ). Refusals (415, 401, 400, 405) say why in words; DELETE ends
// the session and the viewer count drops; a redeploy ends sessions and leaves no UDP socket in this process.
/* global window, document, RTCPeerConnection, MediaStream */ // used inside page.evaluate()
"use strict";
const assert = require("assert");
const fs = require("fs");
const helper = require("node-red-node-test-helper");
const sourceNode = require("../dist/nodes/camera-source.js");
const connectNode = require("../dist/nodes/camera-connect.js");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const h = require("./lib/stream-out-helpers");
const { rtspServer } = require("./lib/rtsp-server");
const { launchChromium } = require("./lib/browser-chromium");
const { processesMatching, until, wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

const TOKEN = "whep-s3cret";

/** Inode numbers of this process's UDP sockets (IPv4 and IPv6): /proc/net/udp* joined with /proc/self/fd. */
function udpSockets() {
  const mine = new Set();
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m) mine.add(m[1]);
    } catch {
      // the fd closed while we looked
    }
  }
  const udp = [];
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text = "";
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && mine.has(cols[9])) udp.push(`${file.slice(10)} ${cols[1]} inode ${cols[9]}`);
    }
  }
  return udp.sort();
}

/** Functions the page gets before it loads: WHEP with a plain RTCPeerConnection, stats, canvas grabs. */
function pageScript() {
  window.whep = async (url, headers = {}, audio = false) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    if (audio) pc.addTransceiver("audio", { direction: "recvonly" });
    window.tracks = [];
    const video = document.createElement("video");
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
    document.body.appendChild(video);
    window.video = video;
    pc.ontrack = (e) => {
      window.tracks.push({ kind: e.track.kind, stream: e.streams[0] && e.streams[0].id });
      if (e.track.kind === "video") video.srcObject = e.streams[0] || new MediaStream([e.track]);
    };
    await pc.setLocalDescription(await pc.createOffer());
    const r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", ...headers },
      body: pc.localDescription.sdp,
    });
    const text = await r.text();
    if (r.status === 201) await pc.setRemoteDescription({ type: "answer", sdp: text });
    else pc.close();
    return { status: r.status, location: r.headers.get("Location"), text };
  };
  window.stats = async () => {
    const out = { state: window.pc.connectionState, framesDecoded: 0, width: 0 };
    (await window.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio")
        out.audio = { packets: s.packetsReceived || 0, samples: s.totalSamplesReceived || 0 };
      if (s.type === "inbound-rtp" && s.kind === "video") {
        out.framesDecoded = s.framesDecoded || 0;
        out.width = s.frameWidth || 0;
        out.packetsLost = s.packetsLost;
      }
    });
    return out;
  };
  // A canvas grab of the video's pixels, kept in the page; difference() compares the last two.
  window.grabs = [];
  window.grab = () => {
    const v = window.video;
    const c = document.createElement("canvas");
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const g = c.getContext("2d");
    g.drawImage(v, 0, 0);
    window.grabs.push(g.getImageData(0, 0, c.width, c.height).data);
    return c.width * c.height;
  };
  /** Fraction of pixels that differ clearly between the last two grabs. */
  window.difference = () => {
    const [a, b] = window.grabs.slice(-2);
    if (!a || !b || a.length !== b.length || a.length === 0) return 1;
    let diff = 0;
    for (let i = 0; i < a.length; i += 4)
      if (Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) > 30) diff++;
    return diff / (a.length / 4);
  };
}

describe("WebRTC (WHEP) in Chromium from a real Node-RED (issue 14)", function () {
  this.timeout(120000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let camera;
  let browser;
  let page;
  let baselineUdp;
  const viewerMessages = [];

  const flow = () => [
    {
      id: "rtsp",
      type: "camera-source",
      name: "rtsp cam",
      protocol: "ffmpeg",
      url: camera.url("h264"),
      video: "auto",
      audio: false,
      fps: 0,
      linger: 0,
    },
    { id: "conn", type: "camera-connect", camera: "rtsp", output: "video", wires: [["out"], []] },
    { id: "out", type: "http-stream-out", path: "/cam/rtsp", maxClients: 10, wires: [["viewers"]] },
    { id: "viewers", type: "helper" },
    {
      id: "rtspa",
      type: "camera-source",
      name: "rtsp av",
      protocol: "ffmpeg",
      url: camera.url("h264aac"),
      video: "auto",
      audio: true,
      fps: 0,
      linger: 0,
    },
    { id: "conna", type: "camera-connect", camera: "rtspa", output: "video", wires: [["outa"], []] },
    { id: "outa", type: "http-stream-out", path: "/cam/av", wires: [[]] },
    { id: "pattern", type: "camera-source", protocol: "test", url: "320x240", fps: 10, linger: 0 },
    { id: "conn2", type: "camera-connect", camera: "pattern", wires: [["tc", "jpeg"], []] },
    {
      id: "tc",
      type: "ffmpeg-transcode",
      preset: "fmp4",
      size: "320x240",
      encoder: "libx264",
      keyframeInterval: 1,
      wires: [["out2"]],
    },
    { id: "out2", type: "http-stream-out", path: "/cam/tc", wires: [[]] },
    { id: "jpeg", type: "http-stream-out", path: "/cam/jpeg", wires: [[]] },
  ];

  const status = async (p, token = "") =>
    JSON.parse((await h.request(web.url(`${p}/status.json${token && "?token=" + token}`))).body.toString());
  const bearer = { Authorization: `Bearer ${TOKEN}` };

  before(async function () {
    await web.listen();
    baselineUdp = udpSockets();
    [camera, browser] = await Promise.all([
      rtspServer({ width: 320, height: 240, fps: 15, gop: 15 }),
      launchChromium({ viewport: { width: 640, height: 480 } }),
    ]);
    await helper.load([sourceNode, connectNode, streamOut, transcodeNode], flow(), { out: { token: TOKEN } });
    helper.getNode("viewers").on("input", (m) => viewerMessages.push(m));
    page = await browser.context.newPage();
    await page.addInitScript(pageScript);
    await page.goto(web.url("/blank"));
    await until(async () => (await status("/cam/rtsp", TOKEN)).video, 30000, "H.264 on /cam/rtsp");
  });
  after(async function () {
    await helper.unload().catch(() => undefined);
    await browser?.close();
    await camera?.stop();
    await web.close();
  });

  /** Plays `path` until Chromium decoded `frames` more pictures; returns what the POST answered. */
  async function play(path, headers, frames = 20, audio = false) {
    const answer = await page.evaluate(
      ([u, hd, a]) => window.whep(u, hd, a),
      [web.url(`${path}/whep`), headers, audio],
    );
    assert.strictEqual(answer.status, 201, answer.text);
    await until(async () => (await page.evaluate(() => window.stats())).framesDecoded >= frames, {
      ms: 30000,
      what: `${frames} frames decoded from ${path}`,
      detail: async () => JSON.stringify(await page.evaluate(() => window.stats())),
    });
    return answer;
  }

  /** The picture changes: two grabs a second apart differ, and the decoder kept going. */
  async function pictureChanges() {
    const before = await page.evaluate(() => window.stats());
    assert.ok((await page.evaluate(() => window.grab())) > 0, "a picture to grab");
    await wait(1000);
    await page.evaluate(() => window.grab());
    const after = await page.evaluate(() => window.stats());
    assert.ok(
      after.framesDecoded > before.framesDecoded + 5,
      `${before.framesDecoded} -> ${after.framesDecoded}`,
    );
    const d = await page.evaluate(() => window.difference());
    assert.ok(d > 0.001, `two grabs a second apart differ in ${(d * 100).toFixed(3)}% of pixels`);
    assert.strictEqual(after.width, 320);
  }

  it("plays the RTSP camera's H.264 (camera connect video -> http stream out); DELETE ends it", async function () {
    const answer = await play("/cam/rtsp", bearer);
    assert.match(answer.location, /^\/cam\/rtsp\/whep\/[0-9a-f]{32}$/);
    assert.match(answer.text, /a=sendonly/);
    const codec = (await status("/cam/rtsp", TOKEN)).video.codec;
    const profile = /avc1\.([0-9a-f]{2})/.exec(codec)[1];
    assert.match(
      answer.text,
      new RegExp(`profile-level-id=${profile}`),
      `the answer keeps ${codec}'s profile`,
    );
    assert.match(answer.text, /packetization-mode=1/);
    await pictureChanges();

    const s = await status("/cam/rtsp", TOKEN);
    assert.strictEqual(s.viewerCount, 1);
    const webrtc = s.viewers.filter((v) => v.kind === "webrtc");
    assert.strictEqual(webrtc.length, 1);
    assert.ok(webrtc[0].bytesSent > 10000, `${webrtc[0].bytesSent} bytes counted`);
    assert.ok(viewerMessages.some((m) => m.event === "connect" && m.viewer.kind === "webrtc"));

    const del = await page.evaluate(
      async ([u, hd]) => (await fetch(u, { method: "DELETE", headers: hd })).status,
      [web.url(answer.location), bearer],
    );
    assert.strictEqual(del, 200);
    await until(async () => (await status("/cam/rtsp", TOKEN)).viewerCount === 0, 5000, "no viewer");
    assert.ok(
      viewerMessages.some((m) => m.event === "disconnect" && m.viewer.kind === "webrtc" && m.payload === 0),
    );
    const again = await h.request(web.url(`${answer.location}?token=${TOKEN}`), { method: "DELETE" });
    assert.strictEqual(again.status, 404);
    assert.match(again.body.toString(), /has ended/);
    await page.evaluate(() => window.pc.close());
  });

  it("plays an fMP4 from ffmpeg transcode (libx264 from a test pattern)", async function () {
    await until(async () => (await status("/cam/tc")).video, 30000, "H.264 on /cam/tc");
    await play("/cam/tc", {}, 10);
    await pictureChanges();
    await page.evaluate(() => window.pc.close());
    await until(async () => (await status("/cam/tc")).viewerCount === 0, 20000, "the closed viewer left");
  });

  it("sends the camera's AAC as Opus, in the video's MediaStream, from one ffmpeg that runs only while needed", async function () {
    await until(
      async () => /mp4a/.test((await status("/cam/av")).video?.codec ?? ""),
      30000,
      "AAC on /cam/av",
    );
    const opus = () => processesMatching("libopus").length;
    assert.strictEqual(opus(), 0, "no audio converter before a WebRTC viewer");
    const answer = await play("/cam/av", {}, 10, true);
    assert.match(answer.text, /m=audio [1-9]\d* [^\n]*\r?\n(?:[^m][^\n]*\n)*?a=sendonly/);
    assert.match(answer.text, /a=rtpmap:\d+ opus\/48000\/2/i);
    await until(async () => ((await page.evaluate(() => window.stats())).audio?.packets ?? 0) > 50, {
      ms: 20000,
      what: "Opus packets in Chromium",
      detail: async () => JSON.stringify(await page.evaluate(() => window.stats())),
    });
    const tracks = await page.evaluate(() => window.tracks);
    assert.deepStrictEqual(tracks.map((t) => t.kind).sort(), ["audio", "video"]);
    assert.ok(tracks[0].stream && tracks[0].stream === tracks[1].stream, JSON.stringify(tracks));
    assert.strictEqual(opus(), 1, "one audio converter for the path");
    await pictureChanges();
    await page.evaluate(() => window.pc.close());
    await until(() => opus() === 0, 10000, "the audio converter ended with the last viewer");
    await until(async () => (await status("/cam/av")).viewerCount === 0, 10000, "no viewer");
  });

  it("refuses in words: 415 for a JPEG-only path, 401 without the token, 400/415 for bad offers, 405 PATCH", async function () {
    const post = (p, body, headers = {}) =>
      page.evaluate(
        async ([u, b, hd]) => {
          const r = await fetch(u, { method: "POST", headers: hd, body: b });
          return { status: r.status, text: await r.text() };
        },
        [web.url(p), body, headers],
      );
    const sdp = { "Content-Type": "application/sdp" };
    const jpeg = await page.evaluate((u) => window.whep(u), web.url("/cam/jpeg/whep"));
    assert.strictEqual(jpeg.status, 415);
    assert.match(jpeg.text, /JPEG only: WebRTC needs H\.264/);
    const noToken = await page.evaluate((u) => window.whep(u), web.url("/cam/rtsp/whep"));
    assert.strictEqual(noToken.status, 401);
    assert.match(noToken.text, /needs its token/);
    const wrongToken = await page.evaluate((u) => window.whep(u), web.url("/cam/rtsp/whep?token=nope"));
    assert.strictEqual(wrongToken.status, 401);
    const notSdp = await post("/cam/tc/whep", "v=0", { "Content-Type": "text/plain" });
    assert.strictEqual(notSdp.status, 415);
    assert.match(notSdp.text, /Content-Type: application\/sdp/);
    const garbage = await post("/cam/tc/whep", "hello", sdp);
    assert.strictEqual(garbage.status, 400);
    assert.match(garbage.text, /not an SDP offer/);
    const vp8 = await post(
      "/cam/tc/whep",
      "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n",
      sdp,
    );
    assert.strictEqual(vp8.status, 415);
    assert.match(vp8.text, /no H\.264 with packetization-mode=1/);
    const patch = await h.request(web.url("/cam/tc/whep/abc"), { method: "PATCH" });
    assert.strictEqual(patch.status, 404, "no such session");
    const get = await h.request(web.url("/cam/tc/whep"));
    assert.strictEqual(get.status, 405);
    assert.match(get.headers.allow, /POST/);
    const options = await h.request(web.url("/cam/tc/whep"), { method: "OPTIONS" });
    assert.strictEqual(options.status, 204);
    assert.match(options.headers["access-control-allow-methods"], /POST, DELETE/);
    assert.match(options.headers["access-control-expose-headers"], /Location/);
  });

  it("a redeploy ends the sessions (video and audio) and leaves no UDP socket and no ffmpeg behind", async function () {
    await play("/cam/av", {}, 5, true);
    await until(() => processesMatching("libopus").length === 1, 10000, "the audio converter runs");
    const during = udpSockets();
    assert.ok(
      during.length > baselineUdp.length,
      `werift holds UDP sockets while playing (${during.length})`,
    );
    assert.strictEqual((await status("/cam/av")).viewerCount, 1);
    await helper.unload();
    await until(
      async () => (await page.evaluate(() => window.pc.connectionState)) !== "connected",
      20000,
      "Chromium sees the session end",
    );
    await until(() => udpSockets().length === baselineUdp.length, 10000, "UDP sockets closed");
    assert.deepStrictEqual(udpSockets(), baselineUdp);
    await until(
      () => processesMatching("libopus").length === 0,
      10000,
      "no audio converter after the redeploy",
    );
    await page.evaluate(() => window.pc.close());
  });
});
