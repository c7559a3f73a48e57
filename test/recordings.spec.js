// Recordings people can find and play (issue 15): <path>/recordings (JSON, paged), /recordings/<name>.mp4
// (Range), /recordings/<name>.jpg (thumbnail), /recordings.html, DELETE. Real Node-RED (test helper and a
// real process with adminAuth and httpNodeAuth), real ffmpeg clips, sidecars written by camrelay's writer.
"use strict";
/* global document */
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { writeSidecar } = require("../dist/nodes/lib/transcode/sidecar");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const h = require("./lib/stream-out-helpers");
const { recorderConfig, testJpegs } = require("./lib/transcode-helpers");
const { startNodeRed, hash } = require("./lib/soak-nodered");
const { until } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const TOKEN = "Rec-Tok-4417";

/** A real 2 s H.264 clip at `file`. */
function makeClip(file, seconds = 2) {
  execFileSync(h.ffmpegPath, [
    ...["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i"],
    `testsrc=size=320x240:rate=10:duration=${seconds}`,
    ...["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", file],
  ]);
}

/** A sidecar as the recorder writes it (through camrelay's own writeSidecar). */
function sidecarFor(dir, base, start, extra = {}) {
  const file = path.join(dir, `${base}.mp4`);
  writeSidecar(path.join(dir, `${base}.json`), {
    file,
    camera: "front",
    start,
    end: start + 2000,
    duration: 2,
    triggerTime: start,
    frames: 20,
    bytes: fs.existsSync(file) ? fs.statSync(file).size : 0,
    trigger: { topic: "doorbell", payload: { pressed: true } },
    reason: "duration",
    ...extra,
  });
}

function get(url, headers) {
  return h.request(url, { headers });
}

describe("recordings served by http stream out", function () {
  this.timeout(60000);
  let tmp;
  let many;
  let outside;
  let srv;
  const day = new Date(2026, 11, 2).getTime();
  const names = ["front-20261202-100000", "front-20261202-110000", "front-20261202-120000"];

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-"));
    many = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-many-"));
    outside = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-out-"));
    makeClip(path.join(tmp, `${names[0]}.mp4`));
    for (const n of names.slice(1))
      fs.copyFileSync(path.join(tmp, `${names[0]}.mp4`), path.join(tmp, `${n}.mp4`));
    names.forEach((n, i) => sidecarFor(tmp, n, day + (10 + i) * 3600000));
    // Not camrelay's: a file without a sidecar, a symlink to a file outside with a valid sidecar, a bad name.
    fs.copyFileSync(path.join(tmp, `${names[0]}.mp4`), path.join(tmp, "front-20261202-130000.mp4"));
    fs.writeFileSync(path.join(outside, "secret.mp4"), "secret bytes");
    fs.symlinkSync(path.join(outside, "secret.mp4"), path.join(tmp, "front-20261202-140000.mp4"));
    sidecarFor(tmp, "front-20261202-140000", day + 14 * 3600000);
    fs.writeFileSync(path.join(tmp, "notes.txt"), "x");
    // 10,000 fake but validly named recordings (empty files, real sidecars).
    const t0 = Date.now();
    for (let i = 0; i < 10000; i++) {
      const base = `cam-20260101-${String(i).padStart(6, "0")}`;
      fs.writeFileSync(path.join(many, `${base}.mp4`), "");
      sidecarFor(many, base, day + i * 1000);
    }
    console.log(`      (wrote 10,000 fake recordings in ${Date.now() - t0} ms)`);
    srv = h.httpNodeServer("/");
    await srv.listen();
    await helper.startServer();
  });

  after(async function () {
    await helper.unload();
    await helper.stopServer();
    await srv.close();
    for (const d of [tmp, many, outside]) fs.rmSync(d, { recursive: true, force: true });
  });

  describe("with a token, in the test helper", function () {
    before(async function () {
      const flow = [
        { id: "rec", type: "ffmpeg-transcode", preset: "mp4", directory: tmp, wires: [["view"]] },
        { id: "view", type: "http-stream-out", path: "/cam", wires: [[]] },
        recorderConfig({ id: "rec2", directory: many, wires: [["view2"]] }),
        { id: "view2", type: "http-stream-out", path: "/many", wires: [[]] },
        // An HLS node wired in does not add its directory.
        { id: "hlsrec", type: "ffmpeg-transcode", preset: "hls", directory: outside, wires: [["view"]] },
      ];
      await helper.load([srv.wrap(streamOutNode), transcodeNode], flow, { view: { token: TOKEN } });
    });
    after(() => helper.unload());

    it("lists the wired mp4 node's recordings newest first with their fields; the token is needed", async function () {
      assert.strictEqual((await get(srv.url("/cam/recordings"))).status, 401);
      const r = await get(srv.url(`/cam/recordings?token=${TOKEN}`));
      assert.strictEqual(r.status, 200);
      const body = JSON.parse(r.body);
      assert.deepStrictEqual(
        body.recordings.map((x) => x.name),
        [...names].reverse(),
        "neither the file without sidecar, nor the symlink, nor notes.txt",
      );
      const e = body.recordings[2];
      assert.strictEqual(e.url, `/cam/recordings/${names[0]}.mp4?token=${TOKEN}`);
      assert.strictEqual(e.thumbnail, `/cam/recordings/${names[0]}.jpg?token=${TOKEN}`);
      assert.strictEqual(e.start, day + 10 * 3600000);
      assert.strictEqual(e.end, e.start + 2000);
      assert.strictEqual(e.duration, 2);
      assert.deepStrictEqual(e.trigger, { topic: "doorbell", payload: { pressed: true } });
      assert.strictEqual(e.bytes, fs.statSync(path.join(tmp, `${names[0]}.mp4`)).size);
      assert.strictEqual(body.total, 3);
      assert.strictEqual(body.next, null);
      const bearer = await get(srv.url("/cam/recordings"), { Authorization: `Bearer ${TOKEN}` });
      assert.strictEqual(bearer.status, 200);
      assert.strictEqual(JSON.parse(bearer.body).recordings[0].url, `/cam/recordings/${names[2]}.mp4`);
      const bad = await get(srv.url(`/cam/recordings?token=${TOKEN}&limit=abc`));
      assert.strictEqual(bad.status, 400);
      assert.match(String(bad.body), /limit must be a number/);
    });

    it("serves a clip whole and by Range (206 slice equals the disk; 416 for a bad range); ffprobe reads it", async function () {
      const disk = fs.readFileSync(path.join(tmp, `${names[1]}.mp4`));
      const url = srv.url(`/cam/recordings/${names[1]}.mp4?token=${TOKEN}`);
      const whole = await get(url);
      assert.strictEqual(whole.status, 200);
      assert.strictEqual(whole.headers["accept-ranges"], "bytes");
      assert.strictEqual(whole.headers["content-type"], "video/mp4");
      assert.ok(whole.body.equals(disk));
      const saved = path.join(outside, "served.mp4");
      fs.writeFileSync(saved, whole.body);
      const probe = JSON.parse(
        execFileSync(h.ffprobePath, ["-v", "error", "-print_format", "json", "-show_streams", saved], {
          encoding: "utf8",
        }),
      );
      assert.strictEqual(probe.streams[0].codec_name, "h264");
      assert.strictEqual(probe.streams[0].width, 320);
      const part = await get(url, { Range: "bytes=100-1099" });
      assert.strictEqual(part.status, 206);
      assert.strictEqual(part.headers["content-range"], `bytes 100-1099/${disk.length}`);
      assert.ok(part.body.equals(disk.subarray(100, 1100)));
      const tail = await get(url, { Range: "bytes=-64" });
      assert.strictEqual(tail.status, 206);
      assert.ok(tail.body.equals(disk.subarray(disk.length - 64)));
      const open = await get(url, { Range: `bytes=${disk.length - 10}-` });
      assert.ok(open.body.equals(disk.subarray(disk.length - 10)));
      for (const range of [`bytes=${disk.length}-`, "bytes=500-100", "bytes=x-y", "bytes=-0"]) {
        const r = await get(url, { Range: range });
        assert.strictEqual(r.status, 416, range);
        assert.strictEqual(r.headers["content-range"], `bytes */${disk.length}`);
      }
      const dl = await get(`${url}&download=1`, { Range: "bytes=0-3" });
      assert.match(dl.headers["content-disposition"], /attachment; filename="front-20261202-110000.mp4"/);
    });

    it("makes a JPEG thumbnail beside the clip the first time it is asked for", async function () {
      const url = srv.url(`/cam/recordings/${names[0]}.jpg?token=${TOKEN}`);
      const r = await get(url);
      assert.strictEqual(r.status, 200, String(r.body));
      assert.strictEqual(r.headers["content-type"], "image/jpeg");
      assert.strictEqual(r.body[0], 0xff);
      assert.strictEqual(r.body[1], 0xd8);
      const kept = path.join(tmp, `.${names[0]}.camrelay-thumb.jpg`);
      assert.ok(fs.readFileSync(kept).equals(r.body));
      assert.strictEqual((await get(url)).status, 200);
    });

    it("never serves traversal, absolute names, backslashes, symlinks or names camrelay did not make", async function () {
      const paths = [
        "/cam/recordings/..%2f..%2f..%2fetc%2fpasswd",
        "/cam/recordings/%2e%2e%2f%2e%2e%2fetc%2fpasswd.mp4",
        "/cam/recordings/%2fetc%2fpasswd.mp4",
        "/cam/recordings/..%5c..%5csecret.mp4",
        "/cam/recordings/front-20261202-140000.mp4", // a symlink, with a valid sidecar
        "/cam/recordings/front-20261202-140000.jpg",
        "/cam/recordings/front-20261202-130000.mp4", // no sidecar
        "/cam/recordings/notes.txt",
        "/cam/recordings/notes.mp4",
        `/cam/recordings/${names[0]}.json`,
        "/cam/recordings/sub/front-20261202-100000.mp4",
        `/cam/recordings/.${names[0]}.camrelay-thumb.jpg`,
      ];
      for (const p of paths) {
        const r = await get(srv.url(`${p}?token=${TOKEN}`));
        assert.strictEqual(r.status, 404, `${p}: ${r.status}`);
        assert.ok(!String(r.body).includes("secret bytes"));
        const d = await h.request(srv.url(`${p}?token=${TOKEN}`), { method: "DELETE" });
        assert.strictEqual(d.status, 404, `DELETE ${p}: ${d.status}`);
      }
      assert.ok(fs.existsSync(path.join(outside, "secret.mp4")));
      assert.ok(fs.lstatSync(path.join(tmp, "front-20261202-140000.mp4")).isSymbolicLink());
    });

    it("serves the page with the token needed", async function () {
      assert.strictEqual((await get(srv.url("/cam/recordings.html"))).status, 401);
      const r = await get(srv.url(`/cam/recordings.html?token=${TOKEN}`));
      assert.strictEqual(r.status, 200);
      assert.match(r.headers["content-type"], /text\/html/);
      assert.match(String(r.body), /<video id="video"/);
      assert.match(String(r.body), /type="date"/);
    });

    it("deletes only with the node's token: the clip, its sidecar and thumbnail go", async function () {
      const name = names[0];
      const url = srv.url(`/cam/recordings/${name}.mp4`);
      assert.strictEqual((await h.request(url, { method: "DELETE" })).status, 401);
      const wrong = await h.request(url, { method: "DELETE", headers: { Authorization: "Bearer nope" } });
      assert.strictEqual(wrong.status, 401);
      assert.ok(fs.existsSync(path.join(tmp, `${name}.mp4`)));
      const ok = await h.request(url, { method: "DELETE", headers: { Authorization: `Bearer ${TOKEN}` } });
      assert.strictEqual(ok.status, 204);
      for (const f of [`${name}.mp4`, `${name}.json`, `.${name}.camrelay-thumb.jpg`])
        assert.ok(!fs.existsSync(path.join(tmp, f)), f);
      const list = JSON.parse((await get(srv.url(`/cam/recordings?token=${TOKEN}`))).body);
      assert.deepStrictEqual(
        list.recordings.map((x) => x.name),
        [names[2], names[1]],
      );
    });

    it("pages through 10,000 recordings (newest first, each once); a day filter", async function () {
      let t = Date.now();
      const first = JSON.parse((await get(srv.url("/many/recordings?limit=100"))).body);
      console.log(`      (first page of 10,000, cold: ${Date.now() - t} ms)`);
      assert.strictEqual(first.total, 10000);
      assert.strictEqual(first.recordings[0].name, "cam-20260101-009999");
      t = Date.now();
      const seen = [];
      let url = srv.url("/many/recordings?limit=500");
      let pages = 0;
      while (url) {
        const page = JSON.parse((await get(url.startsWith("http") ? url : srv.url(url))).body);
        seen.push(...page.recordings.map((r) => r.start));
        url = page.next;
        pages++;
      }
      console.log(`      (all 10,000 in ${pages} pages, warm: ${Date.now() - t} ms)`);
      assert.strictEqual(seen.length, 10000);
      assert.strictEqual(new Set(seen).size, 10000);
      assert.ok(seen.every((s, i) => i === 0 || s < seen[i - 1]));
      const from = day + 100 * 1000;
      const slice = JSON.parse((await get(srv.url(`/many/recordings?from=${from}&to=${from + 50000}`))).body);
      assert.strictEqual(slice.total, 50);
      const off = JSON.parse((await get(srv.url("/many/recordings?offset=9990&limit=100"))).body);
      assert.strictEqual(off.recordings.length, 10);
      assert.strictEqual(off.next, null);
    });
  });

  describe("a real ffmpeg transcode recording, in the test helper", function () {
    let dir;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-live-"))));
    after(async () => {
      await helper.unload();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it("lists the closed recording with its trigger and makes its thumbnail when the file closes", async function () {
      const jpegs = testJpegs(10);
      await helper.load(
        [srv.wrap(streamOutNode), transcodeNode],
        [
          recorderConfig({ directory: dir, wires: [["view"]] }),
          { id: "view", type: "http-stream-out", path: "/live", wires: [[]] },
        ],
      );
      const rec = helper.getNode("rec");
      const view = helper.getNode("view");
      const errors = [];
      view.on("call:error", (c) => errors.push(String(c.args[0])));
      await new Promise((r) => setTimeout(r, 1000)); // the encoder is chosen asynchronously
      let seq = 0;
      const timer = setInterval(() => {
        seq++;
        rec.receive({
          payload: jpegs[seq % jpegs.length],
          frame: { seq, time: monotonicEpochMs(), camera: "porch", width: 320, height: 240 },
        });
      }, 100);
      try {
        rec.receive({ action: "start", duration: 1, topic: "bell", payload: "ring" });
        await until(() => fs.readdirSync(dir).some((f) => f.endsWith(".camrelay-thumb.jpg")), {
          what: "the thumbnail made at close",
          ms: 30000,
        });
      } finally {
        clearInterval(timer);
      }
      const list = JSON.parse((await get(srv.url("/live/recordings"))).body);
      assert.strictEqual(list.recordings.length, 1);
      const e = list.recordings[0];
      assert.match(e.name, /^[A-Za-z0-9_]+-\d{8}-\d{6}$/);
      assert.deepStrictEqual(e.trigger, { topic: "bell", payload: "ring" });
      assert.ok(e.duration > 0.5 && e.end > e.start);
      assert.strictEqual(e.bytes, fs.statSync(path.join(dir, `${e.name}.mp4`)).size);
      const thumb = await get(srv.url(e.thumbnail));
      assert.strictEqual(thumb.body[0], 0xff);
      assert.deepStrictEqual(errors, [], "the recording message is taken, not refused as a non-JPEG");
    });
  });
});

describe("recordings in a real Node-RED with adminAuth and httpNodeAuth", function () {
  this.timeout(90000);
  let nr;
  let dir;
  const VIEWER = { user: "viewer", password: "View-Pa55-5521" };
  const basic = `Basic ${Buffer.from(`${VIEWER.user}:${VIEWER.password}`).toString("base64")}`;
  const name = "door-20261202-090000";

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-nr-"));
    makeClip(path.join(dir, `${name}.mp4`), 1);
    sidecarFor(dir, name, Date.now() - 60000);
    nr = await startNodeRed({
      admin: { user: "admin", password: "Admin-Pa55-7310" },
      settings: { httpNodeAuth: { user: VIEWER.user, pass: hash(VIEWER.password) } },
    });
    await nr.deploy([
      { id: "tab", type: "tab", label: "rec" },
      { id: "rec", z: "tab", type: "ffmpeg-transcode", preset: "mp4", directory: dir, wires: [["view"]] },
      { id: "view", z: "tab", type: "http-stream-out", path: "/door", wires: [[]] },
    ]);
  });

  after(async function () {
    if (nr) await nr.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const req = (method, p, auth) =>
    h.request(`${nr.base}${p}`, { method, headers: auth ? { Authorization: auth } : {} });

  it("reading needs the httpNodeAuth login; found from the sidecar after a start", async function () {
    assert.strictEqual((await req("GET", "/door/recordings")).status, 401);
    const r = await req("GET", "/door/recordings", basic);
    assert.strictEqual(r.status, 200);
    assert.deepStrictEqual(
      JSON.parse(r.body).recordings.map((x) => x.url),
      [`/door/recordings/${name}.mp4`],
    );
    const part = await req("GET", `/door/recordings/${name}.mp4`, basic);
    assert.strictEqual(part.status, 200);
  });

  it("delete is refused without the admin permission and accepted with an admin token", async function () {
    assert.strictEqual((await req("DELETE", `/door/recordings/${name}.mp4`, basic)).status, 401);
    const wrong = await req("DELETE", `/door/recordings/${name}.mp4?access_token=nope`, basic);
    assert.strictEqual(wrong.status, 401);
    assert.ok(fs.existsSync(path.join(dir, `${name}.mp4`)));
    const ok = await req(
      "DELETE",
      `/door/recordings/${name}.mp4?access_token=${encodeURIComponent(nr.token)}`,
      basic,
    );
    assert.strictEqual(ok.status, 204, `${ok.body} ${JSON.stringify(ok.headers)} ${nr.output.slice(-1500)}`);
    assert.ok(!fs.existsSync(path.join(dir, `${name}.mp4`)));
    assert.ok(!fs.existsSync(path.join(dir, `${name}.json`)));
  });
});

describe("the recordings page in Chromium (real Node-RED with adminAuth)", function () {
  this.timeout(90000);
  const { launchChromium } = require("./lib/browser-chromium");
  let nr;
  let browser;
  let dir;
  const start = new Date();
  start.setHours(9, 30, 0, 0);
  const name = "porch-20261202-093000";

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rec-page-"));
    makeClip(path.join(dir, `${name}.mp4`), 4);
    sidecarFor(dir, name, start.getTime(), { duration: 4, end: start.getTime() + 4000 });
    nr = await startNodeRed({ admin: { user: "admin", password: "Admin-Pa55-1188" } });
    await nr.deploy([
      { id: "tab", type: "tab", label: "rec" },
      { id: "rec", z: "tab", type: "ffmpeg-transcode", preset: "mp4", directory: dir, wires: [["view"]] },
      { id: "view", z: "tab", type: "http-stream-out", path: "/porch", wires: [[]] },
    ]);
    browser = await launchChromium({ viewport: { width: 1280, height: 900 } });
  });

  after(async function () {
    if (browser) await browser.close();
    if (nr) await nr.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("shows the day's clip with its thumbnail and trigger, plays and seeks it, and delete is refused", async function () {
    const page = await browser.context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const day = `${start.getFullYear()}-${String(start.getMonth() + 1).padStart(2, "0")}-${String(start.getDate()).padStart(2, "0")}`;
    await page.goto(`${nr.base}/porch/recordings.html?day=${day}`);
    await page.waitForSelector(`li[data-name="${name}"]`, { timeout: 15000 });
    assert.match(await page.textContent(`li[data-name="${name}"] .trigger`), /doorbell/);
    await page.waitForFunction(
      (n) => {
        const img = document.querySelector(`li[data-name="${n}"] img`);
        return img && img.complete && img.naturalWidth > 0;
      },
      name,
      { timeout: 20000 },
    );
    await page.click(`li[data-name="${name}"] button.play`);
    await page.waitForFunction(() => document.getElementById("video").currentTime > 0.5, null, {
      timeout: 20000,
    });
    await page.evaluate(() => {
      const v = document.getElementById("video");
      v.pause();
      v.currentTime = 3;
    });
    await page.waitForFunction(() => Math.abs(document.getElementById("video").currentTime - 3) < 0.3, null, {
      timeout: 10000,
    });
    page.on("dialog", (d) => d.accept());
    await page.click(`li[data-name="${name}"] button.delete`);
    await page.waitForSelector("#error:not([hidden])", { timeout: 10000 });
    assert.match(await page.textContent("#error"), /admin permission/);
    assert.ok(fs.existsSync(path.join(dir, `${name}.mp4`)));
    assert.deepStrictEqual(errors, []);
    await page.close();
  });
});
