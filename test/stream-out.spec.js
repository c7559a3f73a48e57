// http-stream-out in real Node-RED flows: real HTTP, real ffmpeg/ffprobe as clients.
"use strict";
const assert = require("assert");
const net = require("net");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const h = require("./lib/stream-out-helpers");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);
const { escapeWatch } = require("./lib/soak-env");
const { wait } = require("./lib/toolkit");

/** The helper spies on Node.prototype, so one spy sees every node: keep the calls made on `node`. */
function calls(node, method) {
  return node[method].getCalls().filter((c) => c.thisValue === node);
}

describe("http-stream-out node", function () {
  this.timeout(30000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let jpegs;
  let bigJpegs;
  const open = [];

  before(async function () {
    await web.listen();
    jpegs = await h.makeJpegs({ count: 12 });
    bigJpegs = await h.makeJpegs({ width: 1280, height: 720, count: 4, noise: 100, quality: 2 });
  });

  after(async function () {
    await web.close();
  });

  afterEach(async function () {
    while (open.length) open.pop().close();
    await helper.unload();
  });

  function flow(props = {}, extra = []) {
    return [
      { id: "out", type: "http-stream-out", path: "/camera/front", wires: [["events"]], ...props },
      { id: "events", type: "helper" },
      ...extra,
    ];
  }

  async function load(props, credentials, extra) {
    await helper.load(streamOut, flow(props, extra), credentials ? { out: credentials } : {});
    return helper.getNode("out");
  }

  function frameMsg(data, seq) {
    return {
      payload: data,
      topic: "front",
      frame: { seq, time: Date.now(), camera: "front", width: 0, height: 0 },
    };
  }

  async function mjpeg(path, options) {
    const c = await h.openMjpeg(web.url(path), options);
    open.push(c);
    return c;
  }

  it("serves an offline placeholder JPEG before the first frame", async function () {
    await load();
    const r = await h.request(web.url("/camera/front/snapshot.jpg"));
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers["content-type"], "image/jpeg");
    assert.strictEqual(r.headers["cache-control"].split(",")[0], "no-store");
    assert.strictEqual(r.headers["x-camrelay-upstream"], "offline");
    assert.deepStrictEqual(readJpegSize(r.body), { width: 640, height: 480 });
    const probe = await h.run(h.ffprobePath, [
      ...["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0"],
      web.url("/camera/front/snapshot.jpg"),
    ]);
    assert.strictEqual(probe.stdout.toString().trim(), "mjpeg,640,480");
  });

  it("streams MJPEG: headers, the latest frame twice at once, then every new frame", async function () {
    const n = await load();
    n.receive(frameMsg(jpegs[0], 1));
    const c = await mjpeg("/camera/front");
    assert.strictEqual(c.res.statusCode, 200);
    assert.strictEqual(c.res.headers["content-type"], "multipart/x-mixed-replace; boundary=camrelay");
    assert.strictEqual(c.res.headers["transfer-encoding"], undefined);
    assert.match(c.res.headers["cache-control"], /no-store/);
    await h.until(() => c.parts.length >= 2, "two first parts");
    assert.ok(c.parts[0].body.equals(jpegs[0]) && c.parts[1].body.equals(jpegs[0]));
    assert.match(
      c.parts[0].headers,
      /^--camrelay\r\nContent-Type: image\/jpeg\r\nContent-Length: \d+\r\nX-Timestamp: \d+\.\d{3}/,
    );
    for (let i = 1; i < 4; i++) n.receive(frameMsg(jpegs[i], i + 1));
    await h.until(() => c.parts.length >= 5, "three more parts");
    for (let i = 1; i < 4; i++) assert.ok(c.parts[i + 1].body.equals(jpegs[i]), `part ${i + 1}`);
  });

  it("is read by ffmpeg's own MJPEG client", async function () {
    const n = await load();
    n.receive(frameMsg(jpegs[0], 0));
    let seq = 0;
    const feeder = setInterval(() => n.receive(frameMsg(jpegs[seq % jpegs.length], ++seq)), 50);
    try {
      const r = await h.run(h.ffmpegPath, [
        ...["-v", "error", "-f", "mpjpeg", "-i", web.url("/camera/front")],
        ...["-frames:v", "8", "-c", "copy", "-f", "image2pipe", "pipe:1"],
      ]);
      assert.strictEqual(r.code, 0, r.stderr);
      const got = [];
      new (require("../dist/nodes/lib/codec/jpeg-stream-splitter").JpegStreamSplitter)((j) =>
        got.push(j),
      ).push(r.stdout);
      assert.strictEqual(got.length, 8);
      for (const j of got) assert.deepStrictEqual(readJpegSize(j), { width: 320, height: 240 });
    } finally {
      clearInterval(feeder);
    }
  });

  it("answers snapshots with the latest frame, and ?wait=1 with the next one", async function () {
    const n = await load();
    n.receive(frameMsg(jpegs[0], 1));
    const r = await h.request(web.url("/camera/front/snapshot.jpg"));
    assert.ok(r.body.equals(jpegs[0]));
    assert.strictEqual(r.headers["x-camrelay-upstream"], "live");
    const waiting = h.request(web.url("/camera/front/snapshot.jpg?wait=1"));
    await new Promise((res) => setTimeout(res, 100));
    n.receive(frameMsg(jpegs[5], 2));
    const w = await waiting;
    assert.strictEqual(w.status, 200);
    assert.ok(w.body.equals(jpegs[5]));
  });

  it("answers 503 with Retry-After past maxClients, and serves again when a viewer leaves", async function () {
    const n = await load({ maxClients: 2 });
    n.receive(frameMsg(jpegs[0], 1));
    const a = await mjpeg("/camera/front");
    await mjpeg("/camera/front");
    const r = await h.request(web.url("/camera/front"));
    assert.strictEqual(r.status, 503);
    assert.ok(Number(r.headers["retry-after"]) > 0);
    a.close();
    await h.until(
      async () => (await h.request(web.url("/camera/front/status.json"))).body.includes('"viewerCount":1'),
      "a left",
    );
    const c = await mjpeg("/camera/front");
    assert.strictEqual(c.res.statusCode, 200);
  });

  it("requires the token on every endpoint: ?token= or Authorization: Bearer", async function () {
    await load({}, { token: "s3cret" });
    for (const p of ["", "/snapshot.jpg", "/status.json", "/status", "/metrics", "/index.m3u8", "/nope"]) {
      const r = await h.request(web.url(`/camera/front${p}`));
      assert.strictEqual(r.status, 401, p);
      assert.match(r.headers["www-authenticate"], /^Bearer/);
      assert.strictEqual((await h.request(web.url(`/camera/front${p}?token=wrong`))).status, 401, p);
    }
    assert.strictEqual((await h.request(web.url("/camera/front/status.json?token=s3cret"))).status, 200);
    const bearer = await h.request(web.url("/camera/front/snapshot.jpg"), {
      headers: { Authorization: "Bearer s3cret" },
    });
    assert.strictEqual(bearer.status, 200);
    const c = await mjpeg("/camera/front?token=s3cret");
    assert.strictEqual(c.res.statusCode, 200);
  });

  it("gives a capped viewer fewer frames instead of a growing buffer (maxKbps)", async function () {
    const n = await load({ maxKbps: 80 });
    const size = jpegs[0].length;
    n.receive(frameMsg(jpegs[0], 1));
    const c = await mjpeg("/camera/front");
    for (let i = 0; i < 30; i++) {
      n.receive(frameMsg(jpegs[i % jpegs.length], i + 2));
      await wait(33);
    }
    await wait(200);
    const s = JSON.parse((await h.request(web.url("/camera/front/status.json"))).body);
    // 80 kbit/s is 10 KB/s: about one second of budget plus one burst over ~1 s of frames.
    const budget = Math.ceil(20000 / size) + 3;
    assert.ok(
      c.parts.length <= budget,
      `capped viewer got ${c.parts.length} parts of ${size} B (budget ${budget})`,
    );
    assert.ok(s.framesSkipped >= 30 - budget, `skipped ${s.framesSkipped}`);
    assert.strictEqual(s.maxKbps, 80);
  });

  it("drops a stalled viewer after stallTimeout while others keep up, holding at most one pending frame", async function () {
    const n = await load({ stallTimeout: 1 });
    n.receive(frameMsg(bigJpegs[0], 1));
    const stalled = net.connect(Number(new URL(web.url()).port), "127.0.0.1");
    open.push({ close: () => stalled.destroy() });
    stalled.pause();
    stalled.write("GET /camera/front HTTP/1.1\r\nHost: x\r\n\r\n");
    const live = await mjpeg("/camera/front");
    await h.until(() => live.parts.length >= 2, "live viewer's first parts");
    let maxPending = 0;
    let maxBuffered = 0;
    // ~60 MB of frames: far more than the kernel buffers hold for a socket that never reads.
    for (let i = 0; i < 150; i++) {
      n.receive(frameMsg(bigJpegs[i % bigJpegs.length], i + 2));
      await new Promise((r) => setImmediate(r));
      if (i % 10 === 0) {
        const s = JSON.parse((await h.request(web.url("/camera/front/status.json"))).body);
        maxPending = Math.max(maxPending, s.pendingFrames);
        for (const v of s.viewers) maxBuffered = Math.max(maxBuffered, v.buffered);
        if (s.viewersDropped) break;
      }
    }
    await h.until(
      async () =>
        JSON.parse((await h.request(web.url("/camera/front/status.json"))).body).viewersDropped === 1,
      "the stalled viewer to be dropped",
      5000,
    );
    const s = JSON.parse((await h.request(web.url("/camera/front/status.json"))).body);
    // One pending frame per viewer at most, and Node's own queue never holds more than the frames
    // written before the socket said "busy" (two first copies plus one): the kernel buffer holds the rest.
    assert.ok(maxPending <= 2, `pending frames ${maxPending} for 2 viewers`);
    assert.ok(maxBuffered <= 3 * 900000, `buffered ${maxBuffered}`);
    assert.strictEqual(s.viewerCount, 1);
    assert.ok(s.framesSkipped > 0);
    n.receive(frameMsg(jpegs[0], 999));
    await h.until(() => live.parts.some((p) => p.body.equals(jpegs[0])), "live viewer still served");
  });

  it("emits viewer connect and disconnect messages with the count", async function () {
    const n = await load();
    const events = [];
    helper.getNode("events").on("input", (msg) => events.push(msg));
    n.receive(frameMsg(jpegs[0], 1));
    const a = await mjpeg("/camera/front");
    await h.until(() => events.length === 1, "connect event");
    a.close();
    await h.until(() => events.length === 2, "disconnect event");
    assert.deepStrictEqual(
      events.map((m) => [m.topic, m.event, m.payload, m.viewer.kind, m.path]),
      [
        ["viewers", "connect", 1, "mjpeg", "/camera/front"],
        ["viewers", "disconnect", 0, "mjpeg", "/camera/front"],
      ],
    );
    assert.strictEqual(events[0].viewer.address, "127.0.0.1");
  });

  it("removes its route on redeploy, ends open responses, and the new flow serves", async function () {
    const n = await load();
    n.receive(frameMsg(jpegs[0], 1));
    const c = await mjpeg("/camera/front");
    const ended = new Promise((r) => c.res.on("close", r));
    await helper.setFlows(flow({ path: "/camera/back" }));
    await ended;
    assert.strictEqual((await h.request(web.url("/camera/front/status.json"))).status, 404);
    assert.strictEqual((await h.request(web.url("/camera/back/status.json"))).status, 200);
    await helper.setFlows(flow({ path: "/camera/front" }));
    const r = await h.request(web.url("/camera/front/status.json"));
    assert.strictEqual(r.status, 200);
    assert.strictEqual((await h.request(web.url("/camera/back/status.json"))).status, 404);
    await helper.clearFlows();
    assert.strictEqual((await h.request(web.url("/camera/front/status.json"))).status, 404);
  });

  it("refuses a second node on the same path with a clear error", async function () {
    await helper.load(streamOut, [
      { id: "a", type: "http-stream-out", path: "/camera/front", wires: [] },
      { id: "b", type: "http-stream-out", path: "camera/Front/", wires: [] },
    ]);
    const a = helper.getNode("a");
    const b = helper.getNode("b");
    const failed = calls(b, "error").length ? b : a;
    const ok = failed === b ? a : b;
    assert.strictEqual(calls(failed, "error").length, 1);
    assert.strictEqual(calls(ok, "error").length, 0);
    assert.match(String(calls(failed, "error")[0].args[0]), /already served by another http stream out node/);
    const status = calls(failed, "status").pop().args[0];
    assert.deepStrictEqual([status.fill, status.shape], ["red", "ring"]);
    assert.match(status.text, /^path in use$/);
    assert.strictEqual((await h.request(web.url("/camera/front/status.json"))).status, 200);
  });

  it("answers HEAD without a body and without counting a viewer; unknown subpaths are 404", async function () {
    const n = await load();
    n.receive(frameMsg(jpegs[0], 1));
    const head = await h.request(web.url("/camera/front"), { method: "HEAD" });
    assert.strictEqual(head.status, 200);
    assert.match(head.headers["content-type"], /^multipart\/x-mixed-replace/);
    assert.strictEqual(head.body.length, 0);
    const snap = await h.request(web.url("/camera/front/snapshot.jpg"), { method: "HEAD" });
    assert.strictEqual(Number(snap.headers["content-length"]), jpegs[0].length);
    assert.strictEqual(snap.body.length, 0);
    const s = JSON.parse((await h.request(web.url("/camera/front/status.json"))).body);
    assert.strictEqual(s.viewerCount, 0);
    assert.strictEqual((await h.request(web.url("/camera/front/nope"))).status, 404);
    assert.strictEqual(
      (await h.request(web.url("/camera/front/snapshot.jpg"), { method: "POST" })).status,
      405,
    );
  });

  it("reports viewers and counters in status.json and metrics", async function () {
    const n = await load({ maxClients: 5 });
    for (let i = 0; i < 3; i++) n.receive(frameMsg(jpegs[i], i + 1));
    const c = await mjpeg("/camera/front");
    n.receive(frameMsg(jpegs[3], 4));
    await h.until(() => c.parts.length >= 3, "three parts");
    const s = JSON.parse((await h.request(web.url("/camera/front/status.json"))).body);
    assert.strictEqual(s.path, "/camera/front");
    assert.strictEqual(s.camera, "front");
    assert.strictEqual(s.upstream, "live");
    assert.strictEqual(s.framesIn, 4);
    assert.ok(s.fpsIn > 0);
    assert.strictEqual(s.maxClients, 5);
    assert.strictEqual(s.viewerCount, 1);
    const v = s.viewers[0];
    assert.strictEqual(v.kind, "mjpeg");
    assert.strictEqual(v.address, "127.0.0.1");
    assert.strictEqual(v.framesSent, 3);
    assert.strictEqual(v.framesSkipped, 0);
    assert.ok(typeof v.kbps === "number" && v.since <= Date.now());
    assert.ok(s.bytesOut >= jpegs[0].length * 2 + jpegs[3].length);
    const m = (await h.request(web.url("/camera/front/metrics"))).body.toString();
    assert.match(m, /^camrelay_viewers\{path="\/camera\/front"\} 1$/m);
    assert.match(m, /^camrelay_frames_in_total\{path="\/camera\/front"\} 4$/m);
    assert.match(m, /^camrelay_frames_sent_total\{path="\/camera\/front"\} 3$/m);
    assert.match(m, /^camrelay_upstream_up\{path="\/camera\/front"\} 1$/m);
    for (const name of ["frames_skipped_total", "bytes_out_total", "viewers_dropped_total"]) {
      assert.match(m, new RegExp(`^# TYPE camrelay_${name} counter$`, "m"));
    }
  });

  it("sets the CORS origin on every response and answers preflights", async function () {
    await load({ cors: "https://dash.example" }, { token: "t" });
    for (const p of ["/status.json?token=t", "/status.json", "/nope?token=t"]) {
      const r = await h.request(web.url(`/camera/front${p}`));
      assert.strictEqual(r.headers["access-control-allow-origin"], "https://dash.example", p);
    }
    const pre = await h.request(web.url("/camera/front/snapshot.jpg"), { method: "OPTIONS" });
    assert.strictEqual(pre.status, 204);
    assert.match(pre.headers["access-control-allow-headers"], /Authorization/);
  });

  it("serves the status page, self-contained", async function () {
    await load({ name: "Front <door>" });
    const r = await h.request(web.url("/camera/front/status"));
    assert.strictEqual(r.status, 200);
    assert.match(r.headers["content-type"], /^text\/html/);
    const html = r.body.toString();
    assert.match(html, /Front &#60;door&#62;/);
    assert.match(html, /<img[^>]+id="live"/);
    assert.doesNotMatch(html, /(src|href)="(https?:|\/)/);
    assert.match(html, /status\.json/);
  });

  it("shows the placeholder on msg.action offline and after offlineAfter, and the clock moves", async function () {
    const n = await load({ offlineAfter: 0.5 });
    n.receive(frameMsg(jpegs[0], 1));
    const c = await mjpeg("/camera/front");
    await h.until(() => c.parts.length >= 2, "first parts");
    n.receive({ action: "offline" });
    const snap = await h.request(web.url("/camera/front/snapshot.jpg"));
    assert.strictEqual(snap.headers["x-camrelay-upstream"], "offline");
    assert.deepStrictEqual(readJpegSize(snap.body), { width: 320, height: 240 });
    await h.until(() => c.parts.length >= 4, "two placeholder parts, a second apart", 4000);
    const ph = c.parts.slice(2);
    assert.ok(!ph[0].body.equals(jpegs[0]) && !ph[0].body.equals(ph[1].body));
    n.receive(frameMsg(jpegs[1], 2));
    await h.until(() => c.parts.some((p) => p.body.equals(jpegs[1])), "live again");
    assert.strictEqual(
      (await h.request(web.url("/camera/front/snapshot.jpg"))).headers["x-camrelay-upstream"],
      "live",
    );
    await h.until(
      async () =>
        (await h.request(web.url("/camera/front/snapshot.jpg"))).headers["x-camrelay-upstream"] === "offline",
      "offline after 0.5 s without frames",
    );
  });

  it("reports its state in the node status and rejects non-JPEG payloads", async function () {
    const n = await load();
    const last = () => (calls(n, "status").pop() || { args: [{}] }).args[0];
    await h.until(() => last().fill === "yellow", "a yellow status");
    assert.match(last().text, /waiting/);
    n.receive(frameMsg(jpegs[0], 1));
    await mjpeg("/camera/front");
    await h.until(() => last().fill === "green", "green status");
    assert.match(last().text, /^1 viewer \d+ fps$/);
    n.receive({ payload: "not a jpeg" });
    await h.until(() => calls(n, "error").length === 1, "an error");
    assert.match(String(calls(n, "error")[0].args[0]), /payload is not a JPEG Buffer/);
  });
});

describe("http-stream-out with httpNodeMiddleware and httpNodeCors", function () {
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  before(() => web.listen());
  after(() => web.close());
  afterEach(async function () {
    helper.settings({});
    await helper.unload();
  });

  it("runs the middleware before every endpoint and takes the CORS origin from the settings", async function () {
    const seen = [];
    helper.settings({
      httpNodeCors: { origin: "https://from.settings" },
      httpNodeMiddleware: [
        (req, res, next) => {
          seen.push(req.url);
          if (req.headers["x-deny"]) {
            res.statusCode = 403;
            res.end();
          } else next();
        },
      ],
    });
    await helper.load(streamOut, [{ id: "out", type: "http-stream-out", path: "/cam", wires: [] }]);
    const ok = await h.request(web.url("/cam/status.json"));
    assert.strictEqual(ok.status, 200);
    assert.strictEqual(ok.headers["access-control-allow-origin"], "https://from.settings");
    assert.strictEqual(
      (await h.request(web.url("/cam/status.json"), { headers: { "X-Deny": "1" } })).status,
      403,
    );
    assert.deepStrictEqual(seen, ["/status.json", "/status.json"]);
  });

  it("answers a path URL cannot read with 400 when the middleware calls next later (no crash)", async function () {
    const escapes = escapeWatch();
    escapes.start();
    helper.settings({ httpNodeMiddleware: (req, res, next) => setImmediate(next) });
    try {
      await helper.load(streamOut, [{ id: "out", type: "http-stream-out", path: "/cam", wires: [] }]);
      const r = await h.request(web.url("/cam///["));
      assert.ok(r.status === 400 || r.status === 404, `status ${r.status}`);
      assert.strictEqual((await h.request(web.url("/cam/status.json"))).status, 200);
      assert.deepStrictEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
    }
  });
});

describe("http-stream-out under httpNodeRoot", function () {
  const web = h.httpNodeServer("/nr/");
  const streamOut = web.wrap(streamOutNode);
  before(() => web.listen());
  after(() => web.close());
  afterEach(() => helper.unload());

  it("serves below the root", async function () {
    await helper.load(streamOut, [{ id: "out", type: "http-stream-out", path: "/cam", wires: [] }]);
    assert.strictEqual((await h.request(web.url("/cam/status.json"))).status, 200);
    assert.strictEqual((await h.request(web.url("/cam/status"))).status, 200);
  });
});
