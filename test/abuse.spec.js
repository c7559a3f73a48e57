// Viewer abuse against http-stream-out in a real Node-RED flow: bursts of connects and disconnects,
// viewers that never read, requests that stop half way or wait for a frame, HEAD and Range requests,
// odd methods and URLs. The server must answer or refuse each cleanly, keep serving the well-behaved
// viewer, and hold memory and sockets bounded. `npm run test:soak` multiplies the counts by ten.
"use strict";
const assert = require("assert");
const http = require("http");
const net = require("net");
const helper = require("node-red-node-test-helper");
const streamOut = require("../dist/nodes/http-stream-out.js");
const h = require("./lib/stream-out-helpers");
const { Viewer } = require("./lib/soak-viewer");
const { pick, memoryAfterGc, MB } = require("./lib/soak-env");
const { wait, openFds } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

const PATH = "/abuse/cam";

/** Memory after a collection, minus what the test helper's sinon spies remember of every node call. */
function memory() {
  helper._sandbox.resetHistory();
  return memoryAfterGc();
}

describe("viewer abuse", function () {
  this.timeout(pick(60000, 900000));
  const web = h.httpNodeServer();
  const node = web.wrap(streamOut);
  let jpegs;
  let bigJpegs;
  let feeder;
  let events;
  let seq = 0;

  before(async () => {
    await web.listen();
    jpegs = await h.makeJpegs({ count: 10 });
    bigJpegs = await h.makeJpegs({ width: 1280, height: 720, count: 4, noise: 100, quality: 2 });
  });
  after(() => web.close());
  afterEach(async () => {
    clearInterval(feeder);
    feeder = undefined;
    await helper.unload();
  });

  async function load(props = {}) {
    await helper.load(node, [
      { id: "out", type: "http-stream-out", path: PATH, stallTimeout: 2, wires: [["events"]], ...props },
      { id: "events", type: "helper" },
    ]);
    events = [];
    helper.getNode("events").on("input", (m) => events.push(m));
    return helper.getNode("out");
  }

  function push(out, data) {
    seq++;
    out.receive({
      payload: data,
      topic: "abuse",
      frame: { seq, time: Date.now(), camera: "abuse", width: 0, height: 0 },
    });
  }

  /** Feeds frames at `fps` from `set`; returns the count pushed so far through .pushed. */
  function feed(out, set, fps = 10) {
    const state = { pushed: 0 };
    feeder = setInterval(() => {
      push(out, set[state.pushed % set.length]);
      state.pushed++;
    }, 1000 / fps);
    return state;
  }

  const status = async () => JSON.parse((await h.request(web.url(`${PATH}/status.json`))).body);

  it(`survives ${pick(2000, 20000)} connects and disconnects in a burst (twice), then counts zero viewers`, async () => {
    const out = await load();
    feed(out, jpegs, 10);
    await wait(300);
    const total = pick(2000, 20000);
    const batch = 250;
    const port = new URL(web.url()).port;
    let answered = 0;
    let refused = 0;
    const once = (i) =>
      new Promise((resolve) => {
        const kind = i % 4;
        if (kind === 2) {
          // Sends the request and goes away before any answer.
          const s = net.connect(port, "127.0.0.1", () => {
            s.end(`GET ${PATH} HTTP/1.1\r\nHost: x\r\n\r\n`);
            s.destroy();
          });
          s.on("error", () => undefined);
          s.on("close", resolve);
          return;
        }
        const req = http.get(web.url(PATH), { agent: false, method: kind === 3 ? "HEAD" : "GET" }, (res) => {
          if (res.statusCode === 200) answered++;
          else refused++;
          if (kind === 1) res.once("data", () => req.destroy());
          else if (kind === 3) res.resume();
          else req.destroy();
        });
        req.on("error", () => undefined);
        req.on("close", resolve);
      });
    const burst = async (n) => {
      for (let i = 0; i < n; i += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => once(i + k)));
      }
      await h.until(async () => (await status()).viewerCount === 0, "viewer count back to 0", 10000);
    };
    // A first burst grows the allocator's and the kernel's pools to their working size; a leak is what
    // a second, identical burst adds on top.
    const fdsBefore = openFds();
    await burst(total);
    events.length = 0;
    const memBefore = memory();
    await burst(total);
    const connects = events.filter((m) => m.event === "connect").length;
    const disconnects = events.filter((m) => m.event === "disconnect").length;
    assert.strictEqual(connects, disconnects, "every connect has its disconnect");
    assert.ok(connects >= total / 4, `${connects} viewer events for ${total} requests`);
    assert.ok(answered >= total && refused === 0, `answered ${answered}, refused ${refused}`);
    await h.until(
      () => openFds() <= fdsBefore + 5,
      `sockets closed (fds ${openFds()} vs ${fdsBefore})`,
      10000,
    );
    events.length = 0;
    const memAfter = memory();
    const heap = (memAfter.heapUsed - memBefore.heapUsed) / MB;
    const rss = (memAfter.rss - memBefore.rss) / MB;
    console.log(
      `      second burst of ${total}: heap ${heap.toFixed(1)} MB, rss ${rss.toFixed(1)} MB, fds ${openFds() - fdsBefore}`,
    );
    assert.ok(heap < 16, `heap grew ${heap.toFixed(1)} MB`);
    assert.ok(rss < 64, `rss grew ${rss.toFixed(1)} MB`);
    const v = new Viewer(web.url(PATH), jpegs);
    try {
      await v.waitFor("live");
    } finally {
      v.close();
    }
  });

  it("drops viewers that never read, keeps memory flat, and the reading viewer gets its frames", async () => {
    const out = await load();
    const stuckCount = pick(40, 200);
    const fed = feed(out, bigJpegs, 10);
    const good = new Viewer(web.url(PATH), bigJpegs);
    await good.waitFor("live");
    const memBefore = memory();
    const port = new URL(web.url()).port;
    const stuck = [];
    for (let i = 0; i < stuckCount; i++) {
      const s = net.connect(port, "127.0.0.1", () => {
        s.write(`GET ${PATH} HTTP/1.1\r\nHost: x\r\n\r\n`);
        s.pause(); // never reads: the kernel buffers fill, then the server's writes back up
      });
      s.on("error", () => undefined);
      stuck.push(s);
    }
    const from = good.mark;
    const pushedFrom = fed.pushed;
    let peakRss = 0;
    try {
      await h.until(
        async () => {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
          return (await status()).viewersDropped >= stuckCount;
        },
        "stuck viewers dropped",
        pick(40000, 120000),
      );
    } finally {
      stuck.forEach((s) => s.destroy());
    }
    const st = await status();
    assert.strictEqual(st.viewerCount, 1, "only the reading viewer is left");
    const got = good.count("live", from);
    const pushed = fed.pushed - pushedFrom;
    const growth = (peakRss - memBefore.rss) / MB;
    console.log(
      `      ${stuckCount} stuck viewers of ${(bigJpegs[0].length / 1024).toFixed(0)} KB frames dropped; ` +
        `reader got ${got}/${pushed}; peak rss +${growth.toFixed(1)} MB`,
    );
    assert.ok(!good.ended, "the reading viewer stays connected");
    assert.ok(got >= pushed * 0.9, `the reading viewer got ${got} of ${pushed} frames`);
    assert.ok(growth < 50, `rss grew ${growth.toFixed(1)} MB with stuck viewers`);
    good.close();
  });

  it("requests that stop half way or wait for a frame cost nothing and are answered when one comes", async () => {
    const out = await load();
    const port = new URL(web.url()).port;
    // Half a request line and headers, then nothing.
    const halves = [];
    const connected = [];
    for (let i = 0; i < pick(100, 1000); i++) {
      const s = net.connect(port, "127.0.0.1");
      connected.push(new Promise((resolve) => s.once("connect", resolve).once("error", resolve)));
      s.once("connect", () => s.write(`GET ${PATH} HTTP/1.1\r\nHost: x\r\n`));
      s.on("error", () => undefined);
      halves.push(s);
    }
    await Promise.all(connected);
    // Snapshot requests that wait for the next frame; half of them give up first.
    const waiters = [];
    for (let i = 0; i < 100; i++) {
      const req = http.get(web.url(`${PATH}/snapshot.jpg?wait=1`), { agent: false });
      const done = new Promise((resolve) => {
        req.on("response", (res) => {
          const chunks = [];
          res.on("data", (d) => chunks.push(d));
          res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
        });
        req.on("error", () => resolve({ status: 0 }));
      });
      waiters.push({ req, done });
    }
    await wait(500);
    assert.strictEqual((await status()).viewerCount, 0, "neither kind counts as a viewer");
    waiters.slice(0, 50).forEach((w) => w.req.destroy());
    await wait(100);
    // A frame now and then until every waiter has its answer: each gets a whole frame that came after it asked.
    let n = 0;
    const pusher = setInterval(() => push(out, jpegs[n++ % jpegs.length]), 250);
    let answers;
    try {
      answers = await Promise.all(waiters.slice(50).map((w) => w.done));
    } finally {
      clearInterval(pusher);
    }
    for (const a of answers) {
      assert.strictEqual(a.status, 200);
      assert.ok(
        jpegs.some((j) => j.equals(a.body)),
        "each waiter gets a whole frame",
      );
    }
    const v = new Viewer(web.url(PATH), jpegs);
    feed(out, jpegs, 10);
    try {
      await v.waitFor("live");
    } finally {
      v.close();
      halves.forEach((s) => s.destroy());
    }
  });

  it("answers HEAD on every endpoint with headers only, and a HEAD is never a viewer", async () => {
    const out = await load();
    feed(out, jpegs, 10);
    await wait(300);
    for (const p of h.ENDPOINTS) {
      const r = await h.request(web.url(PATH + p), { method: "HEAD" });
      assert.ok([200, 503].includes(r.status), `HEAD ${p}: ${r.status}`);
      assert.strictEqual(r.body.length, 0, `HEAD ${p} has no body`);
      assert.ok(r.headers["content-type"], `HEAD ${p} says its type`);
    }
    assert.strictEqual((await status()).viewerCount, 0);
    assert.strictEqual(events.length, 0, "no viewer events for HEAD");
  });

  it("answers Range requests with the whole resource, the range, or 416, never a broken body", async () => {
    const out = await load();
    feed(out, jpegs, 10);
    await wait(300);
    const ranges = [
      "bytes=0-99",
      "bytes=100-",
      "bytes=-50",
      "bytes=999999999-",
      "bytes=abc",
      "bytes=0-1,5-9",
    ];
    for (const p of ["/snapshot.jpg", "/status.json", "/metrics", "/status"]) {
      const full = await h.request(web.url(PATH + p));
      for (const range of ranges) {
        const r = await h.request(web.url(PATH + p), { headers: { Range: range } });
        assert.ok([200, 206, 416].includes(r.status), `${p} ${range}: ${r.status}`);
        if (r.status === 200) {
          assert.strictEqual(Number(r.headers["content-length"]), r.body.length, `${p} ${range}: length`);
          if (p === "/snapshot.jpg") assert.ok(r.body[0] === 0xff && r.body[1] === 0xd8, "a whole JPEG");
          else assert.ok(r.body.length > 0);
        }
        if (r.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.headers["content-range"] || "");
          assert.ok(m, `${p} ${range}: Content-Range ${r.headers["content-range"]}`);
          assert.strictEqual(r.body.length, Number(m[2]) - Number(m[1]) + 1);
          if (p !== "/snapshot.jpg" || full.body.length === Number(m[3]))
            assert.ok(r.body.equals(full.body.subarray(Number(m[1]), Number(m[2]) + 1)));
        }
      }
    }
    // The MJPEG stream ignores a range: it is a live stream, not a file.
    const v = new Viewer(web.url(PATH), jpegs, { headers: { Range: "bytes=0-10" } });
    try {
      await v.ready;
      assert.strictEqual(v.status, 200);
      await v.waitFor("live");
      await wait(300);
      assert.ok(v.count("live") >= 2, "frames keep coming");
    } finally {
      v.close();
    }
  });

  it("refuses odd methods and URLs cleanly, without a viewer", async () => {
    await load();
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await h.request(web.url(PATH), { method, headers: { "Content-Length": "1000000" } });
      assert.ok([404, 405].includes(r.status), `${method}: ${r.status}`);
    }
    const odd = [
      `${PATH}/../../../../etc/passwd`,
      `${PATH}/%2e%2e/%2e%2e/etc/passwd`,
      `${PATH}/snapshot.jpg/../../status.json`,
      `${PATH}/seg-99999999999999999999.m4s`,
      `${PATH}/seg--1.m4s`,
      `${PATH}/init.mp4?v=-1`,
      `${PATH}/status.json?${"x=1&".repeat(1500)}`,
      `${PATH}/%00`,
      `${PATH}///[`,
      `${PATH}/status.json?token=${"t".repeat(4000)}`,
    ];
    for (const url of odd) {
      const r = await h.request(web.url(url));
      assert.ok(r.status >= 200 && r.status < 600, `${url.slice(0, 60)}: ${r.status}`);
      assert.ok(!r.body.toString("latin1").includes("root:x:0:0"), "nothing from the file system");
    }
    assert.strictEqual((await status()).viewerCount, 0);
  });
});
