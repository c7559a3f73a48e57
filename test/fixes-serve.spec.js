// Issue 10, the serving part: limits against anonymous load (maxClients default, snapshot waiters and HLS
// sessions counted, a cap per address), msg.mp4 numbers checked before they reach the playlist, the
// admin app's CORS header kept out of camrelay's answers in a real Node-RED with the default layout,
// hls.js served from the package for example 04, and example 02's numbers measured with 74 KB frames.
"use strict";
const assert = require("assert");
const fs = require("fs");
const http = require("http");
const path = require("path");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const frameThrottle = require("../dist/nodes/frame-throttle.js");
const { addressGroup, HLS_SESSIONS_PER_ADDRESS } = require("../dist/nodes/lib/serve/stream-server");
const { Fmp4Store, readMp4Info } = require("../dist/nodes/lib/serve/fmp4-store");
const cams = require("./lib/fake-cameras");
const h = require("./lib/stream-out-helpers");
const { startNodeRed, hash } = require("./lib/soak-nodered");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const ROOT = path.join(__dirname, "..");
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const example = (name) => JSON.parse(fs.readFileSync(path.join(ROOT, "examples", name), "utf8"));

/** The value the editor gives a new node for `prop` (read from the node's .html defaults). */
function editorDefault(prop) {
  const html = fs.readFileSync(path.join(ROOT, "nodes", "http-stream-out.html"), "utf8");
  const m = new RegExp(`\\b${prop}: \\{ value: (\\d+)`).exec(html);
  assert.ok(m, `a default for ${prop} in http-stream-out.html`);
  return Number(m[1]);
}

/** GET that resolves at the response headers: { status, headers, res, req } (the caller closes). */
function open(url, { headers = {}, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, localAddress }, (res) => {
      res.on("error", () => undefined);
      if (res.statusCode !== 200) res.resume();
      resolve({ status: res.statusCode, headers: res.headers, res, req, close: () => req.destroy() });
    });
    req.on("error", reject);
  });
}

/** Resolves the whole answer: { status, headers, body }. */
function get(url, { headers = {}, localAddress, method = "GET" } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, localAddress }, (res) => {
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

/** A stack frame as Node prints one ("at fn (/file:line:col)"), also HTML-escaped as Express shows it. */
const STACK = /\bat [\w.<>$]+ \((\/|&lt;|<|node:)/;

describe("issue 10, serving: limits against anonymous load", function () {
  this.timeout(60000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let jpegs;
  let mp4;
  const opened = [];

  before(async () => {
    await web.listen();
    jpegs = await h.makeJpegs({ count: 4 });
    mp4 = await h.makeFmp4({ seconds: 3 });
  });
  after(() => web.close());
  afterEach(async () => {
    while (opened.length) opened.pop().close();
    await helper.unload();
  });

  async function load(props) {
    await helper.load(streamOut, [
      { id: "out", type: "http-stream-out", path: "/cam", wires: [[]], ...props },
    ]);
    const n = helper.getNode("out");
    n.receive({ payload: jpegs[0], frame: { seq: 1, time: Date.now(), camera: "cam", width: 0, height: 0 } });
    return n;
  }
  const stats = async () => JSON.parse((await get(web.url("/cam/status.json"))).body);

  function feedFmp4(n) {
    const t0 = Date.now() - 3000;
    const meta = { codec: "avc1.42c00d", width: 320, height: 240 };
    n.receive({ payload: mp4.init, mp4: { type: "init", seq: 0, duration: 0, time: t0, ...meta } });
    mp4.fragments.forEach((f, i) =>
      n.receive({ payload: f, mp4: { type: "fragment", seq: i, duration: 1, time: t0 + i * 1000, ...meta } }),
    );
  }

  async function mjpegFrom(localAddress) {
    const c = await open(web.url("/cam"), { localAddress });
    opened.push(c);
    return c;
  }

  it("new nodes get 100 viewers and 10 per address; an old flow without the properties, or 0, stays unlimited", async () => {
    assert.strictEqual(editorDefault("maxClients"), 100);
    assert.strictEqual(editorDefault("maxPerAddress"), 10);
    for (const props of [{}, { maxClients: 0, maxPerAddress: 0 }, { maxClients: "" }]) {
      await load(props);
      const all = [];
      for (let i = 0; i < 120; i++) all.push(await mjpegFrom("127.0.0.1"));
      assert.deepStrictEqual([...new Set(all.map((c) => c.status))], [200], JSON.stringify(props));
      assert.strictEqual((await stats()).viewerCount, 120);
      while (opened.length) opened.pop().close();
      await helper.unload();
    }
  });

  it("counts snapshot waiters against maxClients and per address, refusing with 503 and Retry-After", async () => {
    await load({ maxClients: 5, maxPerAddress: 3 });
    const waiters = [];
    for (let i = 0; i < 3; i++) {
      const req = http.get(web.url("/cam/snapshot.jpg?wait=1"), { agent: false, localAddress: "127.0.0.2" });
      req.on("error", () => undefined);
      waiters.push(req);
    }
    opened.push({ close: () => waiters.forEach((r) => r.destroy()) });
    await h.until(async () => (await stats()).snapshotWaiters === 3, "three waiters");
    const fourth = await get(web.url("/cam/snapshot.jpg?wait=1"), { localAddress: "127.0.0.2" });
    assert.strictEqual(fourth.status, 503, "past 3 from one address");
    assert.ok(Number(fourth.headers["retry-after"]) > 0);
    assert.match(fourth.body.toString(), /address/);
    assert.strictEqual((await mjpegFrom("127.0.0.2")).status, 503, "an MJPEG viewer from that address too");
    assert.strictEqual((await mjpegFrom("127.0.0.3")).status, 200);
    assert.strictEqual((await mjpegFrom("127.0.0.4")).status, 200);
    const full = await get(web.url("/cam/snapshot.jpg?wait=1"), { localAddress: "127.0.0.5" });
    assert.strictEqual(full.status, 503, "3 waiters + 2 viewers = maxClients 5");
    assert.strictEqual(full.headers["retry-after"], "10");
    assert.strictEqual((await mjpegFrom("127.0.0.5")).status, 503);
    // A plain snapshot is answered at once and never counted.
    assert.strictEqual((await get(web.url("/cam/snapshot.jpg"), { localAddress: "127.0.0.5" })).status, 200);
    const s = await stats();
    assert.strictEqual(s.viewerCount, 2, "waiters are not viewers");
    assert.strictEqual(s.maxPerAddress, 3);
    // The waiters leave: their places are free again.
    waiters.forEach((r) => r.destroy());
    await h.until(async () => (await stats()).snapshotWaiters === 0, "waiters gone");
    assert.strictEqual((await mjpegFrom("127.0.0.2")).status, 200);
  });

  it(`2,000 User-Agents from one address are at most ${HLS_SESSIONS_PER_ADDRESS + 1} HLS viewers (old flow), and 10 with the new defaults`, async () => {
    const run = async (props) => {
      const n = await load(props);
      feedFmp4(n);
      const statuses = [];
      for (let i = 0; i < 2000; i += 50) {
        const batch = [];
        for (let j = i; j < i + 50; j++)
          batch.push(get(web.url("/cam/index.m3u8"), { headers: { "User-Agent": `player-${j}` } }));
        statuses.push(...(await Promise.all(batch)).map((r) => r.status));
      }
      const s = await stats();
      await helper.unload();
      return { statuses, s };
    };
    const old = await run({ maxClients: 1000 });
    assert.deepStrictEqual([...new Set(old.statuses)], [200], "an old flow still serves every player");
    assert.ok(old.s.viewerCount <= HLS_SESSIONS_PER_ADDRESS + 1, `${old.s.viewerCount} viewers`);
    const fresh = await run({
      maxClients: editorDefault("maxClients"),
      maxPerAddress: editorDefault("maxPerAddress"),
    });
    assert.strictEqual(fresh.s.viewerCount, 10);
    assert.strictEqual(fresh.statuses.filter((c) => c === 200).length, 10);
    assert.strictEqual(fresh.statuses.filter((c) => c === 503).length, 1990);
  });

  it("treats an IPv6 /64 as one address", () => {
    assert.strictEqual(addressGroup("192.0.2.7"), "192.0.2.7");
    assert.strictEqual(addressGroup("2001:db8:1:2::1"), addressGroup("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
    assert.strictEqual(addressGroup("2001:0db8:0001:0002::"), "2001:db8:1:2::/64");
    assert.notStrictEqual(addressGroup("2001:db8:1:2::1"), addressGroup("2001:db8:1:3::1"));
    assert.strictEqual(addressGroup("::1"), "0:0:0:0::/64");
    assert.strictEqual(addressGroup("fe80::1%eth0"), "fe80:0:0:0::/64");
    assert.strictEqual(addressGroup("64:ff9b::192.0.2.1"), "64:ff9b:0:0::/64");
  });
});

describe("issue 10, serving: msg.mp4 numbers", function () {
  this.timeout(30000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let mp4;
  before(async () => {
    await web.listen();
    mp4 = await h.makeFmp4({ seconds: 3 });
  });
  after(() => web.close());
  afterEach(() => helper.unload());

  it("refuses msg.mp4.time 1e300 (and every other bad number) with a clear error; the playlist stays 200", async () => {
    await helper.load(streamOut, [
      { id: "out", type: "http-stream-out", path: "/cam", wires: [[]] },
      { id: "c", type: "catch", scope: ["out"], wires: [["errors"]] },
      { id: "errors", type: "helper" },
    ]);
    const n = helper.getNode("out");
    const errors = [];
    helper.getNode("errors").on("input", (m) => errors.push(m.error.message));
    const t0 = Date.now();
    const meta = { codec: "avc1.42c00d", width: 320, height: 240 };
    n.receive({ payload: mp4.init, mp4: { type: "init", seq: 0, duration: 0, time: t0, ...meta } });
    n.receive({
      payload: mp4.fragments[0],
      mp4: { type: "fragment", seq: 0, duration: 1, time: t0, ...meta },
    });
    const segments = async () => JSON.parse((await get(web.url("/cam/status.json"))).body).fmp4.segments;
    // The case alone first: the playlist answered 500 with a stack trace.
    n.receive({
      payload: mp4.fragments[1],
      mp4: { type: "fragment", seq: 1, duration: 1, time: 1e300, ...meta },
    });
    await h.until(async () => errors.length === 1 || (await segments()) > 1, "the message handled");
    const first = await get(web.url("/cam/index.m3u8"));
    assert.strictEqual(first.status, 200, first.body.toString().slice(0, 300));
    assert.doesNotMatch(first.body.toString(), STACK);
    const bad = [
      ["time", 1e300],
      ["time", -1],
      ["time", "now"],
      ["duration", 1e300],
      ["duration", NaN],
      ["duration", -1],
      ["seq", -1],
      ["seq", 1.5],
      ["width", 1e9],
      ["height", -2],
      ["codec", 42],
    ];
    for (const [field, value] of bad) {
      const info = { type: "fragment", seq: 1, duration: 1, time: t0 + 1000, ...meta, [field]: value };
      n.receive({ payload: mp4.fragments[1], mp4: info });
    }
    // Every message handled: refused (the fix) or stored as a segment (before it).
    await h.until(
      async () => errors.length === bad.length + 1 || (await segments()) > 2,
      "the messages handled",
    );
    const r = await get(web.url("/cam/index.m3u8"));
    assert.strictEqual(r.status, 200);
    assert.doesNotMatch(r.body.toString(), STACK);
    assert.match(r.body.toString(), /#EXT-X-TARGETDURATION:1\n/);
    assert.strictEqual(r.body.toString().match(/\.m4s/g).length, 1, "only the good fragment");
    await h.until(() => errors.length === bad.length + 1, `${bad.length + 1} errors`);
    errors.shift();
    bad.forEach(([field], i) =>
      assert.match(errors[i], new RegExp(`^(Error: )?msg\\.mp4\\.${field} is .+: it must be `)),
    );
    assert.match(errors[0], /msg\.mp4\.time is 1e\+300: it must be epoch milliseconds/);
  });

  it("the playlist cannot throw even for times that never went through the check", () => {
    const store = new Fmp4Store();
    store.pushInit(Buffer.from("init"), {
      type: "init",
      seq: 0,
      duration: 0,
      time: 0,
      codec: "",
      width: 0,
      height: 0,
    });
    for (const time of [1e300, NaN, -Infinity, 8.64e15 + 1])
      store.pushFragment(Buffer.from("f"), {
        type: "fragment",
        seq: 0,
        duration: 1e300,
        time,
        codec: "",
        width: 0,
        height: 0,
      });
    const text = store.playlist();
    assert.match(text, /#EXT-X-TARGETDURATION:1\n/);
    assert.doesNotMatch(text, /PROGRAM-DATE-TIME/);
    assert.strictEqual(readMp4Info({ type: "fragment" }).type, "fragment", "left-out fields take defaults");
  });
});

describe("issue 10, serving: a real Node-RED with default settings", function () {
  this.timeout(120000);
  let nr;

  const conn = ["none", "dash", "enc", "fresh"];

  before(async function () {
    nr = await startNodeRed();
    await nr.deploy([
      { id: "tab", type: "tab", label: "cors" },
      { id: "cam", type: "camera-source", name: "cors", protocol: "test", url: "160x120", fps: 5, linger: 0 },
      { id: "conn", z: "tab", type: "camera-connect", camera: "cam", wires: [conn, []] },
      { id: "none", z: "tab", type: "http-stream-out", path: "/cors/none", wires: [[]] },
      {
        id: "dash",
        z: "tab",
        type: "http-stream-out",
        path: "/cors/dash",
        cors: "https://dash.example",
        wires: [[]],
      },
      {
        id: "enc",
        z: "tab",
        type: "ffmpeg-transcode",
        preset: "hls",
        directory: "",
        quality: 35,
        keyframeInterval: 1,
        encoder: "libx264",
        wires: [["none", "dash"]],
      },
      {
        id: "fresh",
        z: "tab",
        type: "http-stream-out",
        path: "/load/new",
        maxClients: editorDefault("maxClients"),
        maxPerAddress: editorDefault("maxPerAddress"),
        wires: [[]],
      },
      // The msg.mp4.time of 1e300, sent by a function node as any flow could.
      { id: "once", z: "tab", type: "inject", once: true, onceDelay: 0.1, wires: [["fmp4"]] },
      {
        id: "fmp4",
        z: "tab",
        type: "function",
        func:
          'node.send({ payload: Buffer.from("init"), mp4: { type: "init", time: Date.now() } });\n' +
          'node.send({ payload: Buffer.from("moof"), mp4: { type: "fragment", duration: 1, time: 1e300 } });\n' +
          "return null;",
        outputs: 1,
        wires: [["badmp4"]],
      },
      { id: "badmp4", z: "tab", type: "http-stream-out", path: "/bad/mp4", wires: [[]] },
    ]);
    for (const p of ["/cors/none", "/cors/dash"])
      await nr.until(
        async () => (await nr.request("GET", `${p}/index.m3u8`)).status === 200,
        `HLS on ${p}`,
        60000,
      );
  });
  after(async () => {
    await nr?.cleanup();
  });

  it("msg.mp4.time 1e300 never makes the playlist a 500 or shows a stack", async () => {
    const r = await nr.request("GET", "/bad/mp4/index.m3u8");
    assert.notStrictEqual(r.status, 500, r.body.toString().slice(0, 300));
    assert.doesNotMatch(r.body.toString(), STACK);
    assert.match(nr.output, /msg\.mp4\.time is 1e\+300/, "the error is logged");
  });

  it("an answer carries no CORS header when the node sets none, and exactly its origin when it sets one", async () => {
    // Node-RED's own route shows what the admin app adds in this layout.
    const admin = await get(`${nr.base}/settings`, { headers: { Origin: "https://evil.example" } });
    assert.strictEqual(admin.headers["access-control-allow-origin"], "*", "the admin app's header");
    const seen = [];
    for (const [p, expected] of [
      ["/cors/none", undefined],
      ["/cors/dash", "https://dash.example"],
    ]) {
      const playlist = (await get(`${nr.base}${p}/index.m3u8`)).body.toString();
      const seg = /^(seg-\d+\.m4s)$/m.exec(playlist)[1];
      const init = /URI="([^"]+)"/.exec(playlist)[1];
      for (const sub of [
        "",
        "/snapshot.jpg",
        "/status.json",
        "/status",
        "/metrics",
        "/index.m3u8",
        `/${init}`,
        `/${seg}`,
        "/nope",
      ]) {
        const r = await open(`${nr.base}${p}${sub}`, { headers: { Origin: "https://evil.example" } });
        r.close();
        seen.push(`${p}${sub} ${r.status}`);
        assert.strictEqual(r.headers["access-control-allow-origin"], expected, `${p}${sub}`);
        assert.strictEqual(r.headers["access-control-allow-methods"], undefined, `${p}${sub}`);
      }
    }
    assert.ok(
      seen.every((s) => / (200|404)$/.test(s)),
      seen.join(", "),
    );
    const js = await open(`${nr.base}/camrelay/hls.min.js`, { headers: { Origin: "https://evil.example" } });
    js.close();
    assert.strictEqual(js.status, 200);
    assert.strictEqual(js.headers["access-control-allow-origin"], undefined, "hls.min.js");
  });

  it("1,000 anonymous viewers of a new node hold at most 100 connections; the editor keeps answering", async () => {
    const base = nr.fds().socket;
    const viewers = [];
    try {
      const answers = [];
      for (let i = 0; i < 1000; i += 100) {
        const batch = [];
        // 200 addresses, 5 viewers each: only maxClients limits them.
        for (let j = i; j < i + 100; j++)
          batch.push(open(`${nr.base}/load/new`, { localAddress: `127.0.1.${1 + (j % 200)}` }));
        for (const v of await Promise.all(batch)) {
          answers.push(v);
          if (v.status === 200) viewers.push(v);
          else v.close();
        }
      }
      const refused = answers.filter((a) => a.status === 503);
      assert.strictEqual(viewers.length, 100);
      assert.strictEqual(refused.length, 900);
      assert.ok(
        refused.every((a) => Number(a.headers["retry-after"]) > 0),
        "Retry-After on every 503",
      );
      assert.ok(
        refused.every((a) => a.headers.connection === "close"),
        "a refused connection is closed",
      );
      const editor = await nr.request("GET", "/settings");
      assert.strictEqual(editor.status, 200, "the editor answers");
      const s = JSON.parse((await nr.request("GET", "/load/new/status.json")).body);
      assert.strictEqual(s.viewerCount, 100);
      await nr.until(() => nr.fds().socket <= base + 100 + 20, "refused sockets closed", 10000);
      console.log(
        `      1000 viewers: 100 served, 900 refused; Node-RED sockets ${base} -> ${nr.fds().socket}`,
      );
      // One address cannot take more than 10 of the places.
      viewers.splice(0, 20).forEach((v) => v.close());
      await nr.until(
        async () => JSON.parse((await nr.request("GET", "/load/new/status.json")).body).viewerCount === 80,
        "20 viewers gone",
      );
      const one = [];
      for (let i = 0; i < 12; i++) one.push(await open(`${nr.base}/load/new`, { localAddress: "127.0.2.1" }));
      one.forEach((v) => v.close());
      assert.deepStrictEqual(
        one.map((v) => v.status),
        [...Array(10).fill(200), 503, 503],
      );
    } finally {
      viewers.forEach((v) => v.close());
    }
  });
});

describe("issue 10, serving: hls.js from the package for example 04", function () {
  this.timeout(120000);
  const VIEWER = { user: "viewer", password: "View-Pa55-0404" };
  const basic = "Basic " + Buffer.from(`${VIEWER.user}:${VIEWER.password}`).toString("base64");
  let nr;

  before(async () => {
    nr = await startNodeRed({
      settings: { httpNodeAuth: { user: VIEWER.user, pass: hash(VIEWER.password) } },
    });
  });
  after(async () => {
    await nr?.cleanup();
  });

  it("example 04 loads nothing from a CDN; hls.js is served by Node-RED itself, behind httpNodeAuth, and the route goes with the last node", async () => {
    const flow = example("04-dashboard.json");
    assert.doesNotMatch(JSON.stringify(flow), /https?:\/\//, "no CDN or other host");
    // The player (which example 04's ui-camera uses) loads hls.js from here when it needs it.
    const url = new URL("/camrelay/hls.min.js", nr.base);
    // Dashboard 2 is not installed here: deploy everything but its ui-* nodes.
    await nr.deploy(flow.filter((n) => !n.type.startsWith("ui-")));
    assert.strictEqual((await get(url.href)).status, 401, "httpNodeAuth applies");
    const r = await get(url.href, { headers: { Authorization: basic } });
    assert.strictEqual(r.status, 200);
    assert.match(r.headers["content-type"], /^application\/javascript/);
    assert.ok(r.body.equals(fs.readFileSync(require.resolve("hls.js/dist/hls.min.js"))), "hls.js's own file");
    const again = await get(url.href, { headers: { Authorization: basic, "If-None-Match": r.headers.etag } });
    assert.strictEqual(again.status, 304);
    assert.strictEqual((await get(`${url.href}/x`, { headers: { Authorization: basic } })).status, 404);
    // A redeploy keeps one route; removing the last http stream out removes it.
    await nr.deploy(flow.filter((n) => !n.type.startsWith("ui-")));
    assert.strictEqual((await get(url.href, { headers: { Authorization: basic } })).status, 200);
    await nr.deploy([{ id: "t", type: "tab", label: "empty" }]);
    assert.strictEqual((await get(url.href, { headers: { Authorization: basic } })).status, 404);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    assert.ok(pkg.dependencies["hls.js"], "hls.js is a runtime dependency");
  });
});

describe("issue 10, serving: example 02 gives viewers 4 fps of 74 KB frames", function () {
  this.timeout(60000);
  const web = h.httpNodeServer();
  const nodes = [cameraSource, cameraConnect, frameThrottle, web.wrap(streamOutNode)];
  let cam;
  let frames;

  /** A JPEG padded with COM segments to exactly `size` bytes (still a valid JPEG). */
  function pad(jpeg, size) {
    const parts = [jpeg.subarray(0, 2)];
    let missing = size - jpeg.length;
    assert.ok(missing >= 4, `frame of ${jpeg.length} bytes is already larger than ${size}`);
    while (missing > 0) {
      const body = Math.min(missing - 4, 65533);
      const seg = Buffer.alloc(4 + Math.max(0, body), 0x20);
      seg.writeUInt16BE(0xfffe, 0);
      seg.writeUInt16BE(2 + Math.max(0, body), 2);
      parts.push(seg);
      missing -= seg.length;
    }
    parts.push(jpeg.subarray(2));
    return Buffer.concat(parts);
  }

  before(async () => {
    await web.listen();
    const raw = await h.makeJpegs({ width: 640, height: 480, count: 6, noise: 20, quality: 8 });
    frames = raw.map((j) => pad(j, 74 * 1024));
    assert.ok(frames.every((f) => f.length === 74 * 1024));
    cam = await cams.canonVbCamera({ frames });
  });
  after(async () => {
    await cam?.close();
    await web.close();
  });
  afterEach(() => helper.unload());

  it("measures at least 4 fps per viewer with the example's throttle and per-viewer cap", async () => {
    const flow = example("02-canon-relay-2007.json").filter(
      (n) => !["ffmpeg-transcode", "debug", "comment"].includes(n.type),
    );
    const ids = new Set(flow.map((n) => n.id));
    for (const n of flow) {
      if (n.wires) n.wires = n.wires.map((w) => w.filter((id) => ids.has(id)));
      if (n.type === "camera-source") n.url = cam.url;
    }
    const out = flow.find((n) => n.type === "http-stream-out");
    await helper.load(nodes, flow);
    const url = web.url(out.path);
    const times = [];
    const c = await h.openMjpeg(url, { onPart: (p) => times.push(p.at) });
    try {
      await h.until(() => times.length >= 6, "frames flowing", 20000);
      const status = async () => JSON.parse((await h.request(`${url}/status.json`)).body);
      const before = (await status()).viewers[0];
      const from = times.length;
      await wait(8000);
      const after = (await status()).viewers[0];
      const window = times.slice(from);
      const fps = ((window.length - 1) * 1000) / (window[window.length - 1] - window[0]);
      console.log(
        `      example 02: ${frames[0].length} byte frames, maxKbps ${out.maxKbps}: ${fps.toFixed(2)} fps per viewer, ` +
          `${after.framesSkipped - before.framesSkipped} skipped in 8 s`,
      );
      assert.strictEqual(after.framesSkipped - before.framesSkipped, 0, "the cap skips no frame");
      assert.ok(fps >= 3.8, `${fps.toFixed(2)} fps`);
    } finally {
      c.close();
    }
  });
});
