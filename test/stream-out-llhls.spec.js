// Low-latency HLS (issue 14): every fMP4 fragment that comes in is an EXT-X-PART of the open GOP, the
// playlist says CAN-BLOCK-RELOAD with a PART-HOLD-BACK and hints the next part, and a reload with
// _HLS_msn/_HLS_part is held until that part exists (bounded; released on close). Checked by parsing the
// playlist, with real sockets against a StreamServer fed a real ffmpeg clip in real time, with ffmpeg
// (Debian's and the bundled one) reading the live playlist, with the served hls.js in real Chromium (its
// own latency estimate printed, classic and low-latency), and with a passthrough RTSP camera in Node-RED.
/* global document, window */ // used inside page.evaluate()
"use strict";
const assert = require("assert");
const http = require("http");
const helper = require("node-red-node-test-helper");
const { StreamServer } = require("../dist/nodes/lib/serve/stream-server");
const { Fmp4Store } = require("../dist/nodes/lib/serve/fmp4-store");
const { serveHlsJs } = require("../dist/nodes/lib/serve/hls-js");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const sourceNode = require("../dist/nodes/camera-source.js");
const connectNode = require("../dist/nodes/camera-connect.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { recorderConfig, testJpegs } = require("./lib/transcode-helpers");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const h = require("./lib/stream-out-helpers");
const { ffmpegBuilds, until, wait } = require("./lib/toolkit");
const { rtspServer } = require("./lib/rtsp-server");
const { launchChromium } = require("./lib/browser-chromium");

helper.init(require.resolve("node-red"));

/** Reads a media playlist: its tags, segments (with their parts), the open GOP's parts and the hint. */
function parsePlaylist(text) {
  const lines = text.split("\n").filter((l) => l !== "");
  assert.strictEqual(lines[0], "#EXTM3U");
  const attrs = (v) => {
    const out = {};
    for (const m of v.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) out[m[1]] = m[2].replace(/^"|"$/g, "");
    return out;
  };
  const pl = { tags: {}, segments: [], open: [], hint: undefined, text };
  let parts = [];
  let seq;
  for (const line of lines.slice(1)) {
    const m = /^#(EXT[A-Z-]*)(?::(.*))?$/.exec(line);
    if (!m) {
      seq = seq === undefined ? Number(pl.tags["EXT-X-MEDIA-SEQUENCE"]) : seq + 1;
      const seg = pl.segments[pl.segments.length - 1];
      assert.ok(seg && seg.uri === undefined, `a URI without #EXTINF: ${line}`);
      Object.assign(seg, { uri: line, seq, parts });
      parts = [];
      continue;
    }
    const [, tag, value = ""] = m;
    if (tag === "EXT-X-PART") parts.push(attrs(value));
    else if (tag === "EXT-X-PRELOAD-HINT") pl.hint = attrs(value);
    else if (tag === "EXTINF") pl.segments.push({ duration: parseFloat(value) });
    else if (!["EXT-X-PROGRAM-DATE-TIME", "EXT-X-MAP", "EXT-X-DISCONTINUITY"].includes(tag))
      pl.tags[tag] = value;
  }
  pl.open = parts;
  const ll = pl.tags["EXT-X-PART-INF"] !== undefined;
  if (ll) {
    pl.partTarget = Number(attrs(pl.tags["EXT-X-PART-INF"])["PART-TARGET"]);
    pl.serverControl = attrs(pl.tags["EXT-X-SERVER-CONTROL"]);
  }
  return pl;
}

/** [msn, part] named by a part URI. */
function partName(uri) {
  const m = /^part-(\d+)\.(\d+)\.m4s/.exec(uri);
  assert.ok(m, `part URI ${uri}`);
  return [Number(m[1]), Number(m[2])];
}

/** Checks what every low-latency playlist must hold; returns it parsed. */
function checkLowLatency(text) {
  const pl = parsePlaylist(text);
  assert.ok(pl.partTarget > 0, `PART-TARGET in\n${text}`);
  assert.strictEqual(pl.serverControl["CAN-BLOCK-RELOAD"], "YES");
  assert.ok(
    Number(pl.serverControl["PART-HOLD-BACK"]) >= 3 * pl.partTarget - 0.0015,
    `PART-HOLD-BACK ${pl.serverControl["PART-HOLD-BACK"]} >= 3 x ${pl.partTarget}`,
  );
  const target = Number(pl.tags["EXT-X-TARGETDURATION"]);
  for (const seg of pl.segments) {
    assert.match(seg.uri, /^seg-\d+\.m4s/);
    assert.ok(Math.round(seg.duration) <= target, `segment of ${seg.duration} s, target ${target}`);
    if (seg.parts.length === 0) continue;
    // A segment is its parts: the first starts the GOP, the others do not; together they last the segment.
    assert.deepStrictEqual(
      seg.parts.map((p) => p.INDEPENDENT === "YES"),
      seg.parts.map((_p, i) => i === 0),
      `INDEPENDENT only on the first part of seg ${seg.seq}`,
    );
    seg.parts.forEach((p, i) => assert.deepStrictEqual(partName(p.URI), [seg.seq, i]));
    const sum = seg.parts.reduce((s, p) => s + Number(p.DURATION), 0);
    assert.ok(
      Math.abs(sum - seg.duration) < 0.01 * seg.parts.length,
      `parts ${sum} s, segment ${seg.duration} s`,
    );
  }
  for (const p of [...pl.segments.flatMap((s) => s.parts), ...pl.open])
    assert.ok(Number(p.DURATION) <= pl.partTarget, `part of ${p.DURATION} s, PART-TARGET ${pl.partTarget}`);
  const openSeq = pl.segments.length ? pl.segments[pl.segments.length - 1].seq + 1 : 0;
  pl.open.forEach((p, i) => assert.deepStrictEqual(partName(p.URI), [openSeq, i]));
  assert.ok(pl.hint, "a preload hint");
  assert.strictEqual(pl.hint.TYPE, "PART");
  assert.deepStrictEqual(partName(pl.hint.URI), [openSeq, pl.open.length], "the hint names the next part");
  pl.openSeq = openSeq;
  return pl;
}

/** A real camera's fMP4: libx264 at 15 fps with a keyframe a second, AAC, ~0.25 s fragments, split. */
async function makeClip(seconds) {
  const args = ["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"];
  args.push("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", String(seconds));
  args.push("-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "aac");
  args.push("-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe");
  args.push("-frag_duration", "250000", "pipe:1");
  const r = await h.run(h.ffmpegPath, args, { timeout: 60000 });
  if (r.code !== 0) throw new Error(r.stderr);
  const clip = { fragments: [] };
  new Mp4FragmentSplitter({
    init: (data, info) => Object.assign(clip, { init: data, ...info }),
    fragment: (data, info) =>
      clip.fragments.push({ data, keyframe: info.keyframe, duration: info.durationSec }),
    problem: (m) => {
      throw new Error(m);
    },
  }).push(r.stdout);
  return clip;
}

/** Feeds a clip into server.pushMp4 in real time (each fragment when the one before has played). */
function feed(server, clip) {
  const f = { pushed: 0, paused: false, timer: undefined, last: undefined };
  let i = 0;
  let initId = 0;
  const base = { codec: clip.codec, width: clip.width, height: clip.height, cameraId: "cam" };
  const sendInit = () => {
    initId++;
    server.pushMp4(clip.init, { type: "init", seq: 0, duration: 0, time: Date.now(), initId, ...base });
  };
  const tick = () => {
    f.timer = undefined;
    if (f.paused) return;
    if (i === clip.fragments.length) {
      i = 0; // the clip again, as a camera that restarted: a new init
      sendInit();
    }
    const frag = clip.fragments[i++];
    f.last = frag;
    server.pushMp4(frag.data, {
      type: "fragment",
      seq: i,
      duration: frag.duration,
      time: Date.now(),
      keyframe: frag.keyframe,
      initId,
      ...base,
    });
    f.pushed++;
    f.timer = setTimeout(tick, frag.duration * 1000);
  };
  sendInit();
  tick();
  f.pause = () => {
    f.paused = true;
    clearTimeout(f.timer);
    f.timer = undefined;
  };
  f.resume = () => {
    f.paused = false;
    if (!f.timer) tick();
  };
  return f;
}

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("low-latency HLS", function () {
  this.timeout(60000);

  describe("the playlist (Fmp4Store)", function () {
    const t0 = 1700000000000;
    const info = (i, keyframe, duration = 0.25) => ({
      type: "fragment",
      seq: i,
      duration,
      time: t0 + i * 250,
      codec: "avc1.64001e",
      width: 320,
      height: 240,
      keyframe,
    });
    const init = { ...info(0), type: "init" };

    it("lists each flagged fragment as a part of its GOP, with server control, part target and hint", function () {
      const s = new Fmp4Store({ maxSegments: 6 });
      s.pushInit(Buffer.from("init"), init);
      const pushed = [];
      for (let i = 0; i < 4 * 8 + 2; i++) {
        const data = Buffer.from(`fragment ${i}`);
        pushed.push(data);
        s.pushFragment(data, info(i, i % 4 === 0, i % 4 === 3 ? 0.2 : 0.25));
      }
      const pl = checkLowLatency(s.playlist("token=t"));
      assert.strictEqual(pl.partTarget, 0.25);
      assert.strictEqual(pl.serverControl["PART-HOLD-BACK"], "0.750");
      assert.strictEqual(pl.tags["EXT-X-VERSION"], "7");
      assert.strictEqual(pl.segments.length, 6, "the ring of whole GOPs stays as it was");
      assert.deepStrictEqual(
        pl.segments.map((x) => x.duration),
        [0.95, 0.95, 0.95, 0.95, 0.95, 0.95],
      );
      // Parts only for the last three target durations: the older segments have none.
      assert.deepStrictEqual(
        pl.segments.map((x) => x.parts.length),
        [0, 0, 0, 4, 4, 4],
      );
      assert.strictEqual(pl.open.length, 2, "the open GOP's two fragments");
      assert.deepStrictEqual(pl.hint, { TYPE: "PART", URI: "part-8.2.m4s?token=t" });
      assert.ok(pl.open.every((p) => /\?token=t$/.test(p.URI)));
      // The parts are the fragments byte for byte, and a segment is its parts concatenated.
      assert.ok(s.part(7, 1).data.equals(pushed[29]));
      assert.ok(s.part(8, 1).data.equals(pushed[33]));
      assert.ok(s.segment(7).data.equals(Buffer.concat(pushed.slice(28, 32))));
      assert.strictEqual(s.part(7, 1).data.buffer, s.segment(7).data.buffer, "no copy: views of the segment");
      assert.strictEqual(s.partState(8, 2), "next");
      assert.strictEqual(s.partState(8, 3), "none");
      assert.strictEqual(s.partState(1, 0), "none", "gone with its segment");
      // What a blocking reload waits for.
      assert.ok(s.reached(7) && !s.reached(8), "segment 8 is still open");
      assert.ok(s.reached(8, 1) && !s.reached(8, 2) && !s.reached(9, 0));
    });

    it("groups fragments of one picture each (a passthrough camera) into parts of about 0.2 s", function () {
      const s = new Fmp4Store({ maxSegments: 6 });
      s.pushInit(Buffer.from("init"), init);
      const pushed = [];
      // 15 fps, a keyframe every 15 pictures: 3 GOPs and 7 pictures of the fourth.
      for (let i = 0; i < 15 * 3 + 7; i++) {
        const data = Buffer.from(`picture ${i}`);
        pushed.push(data);
        s.pushFragment(data, { ...info(i, i % 15 === 0, 1 / 15), time: t0 + (i * 1000) / 15 });
      }
      const pl = checkLowLatency(s.playlist());
      assert.strictEqual(pl.segments.length, 3);
      // 15 pictures = 3 pictures x 5 parts of 0.2 s; the open GOP has 2 complete parts, a third filling.
      assert.deepStrictEqual(
        pl.segments.map((x) => x.parts.map((p) => Number(p.DURATION))),
        [0, 1, 2].map(() => [0.2, 0.2, 0.2, 0.2, 0.2]),
      );
      assert.strictEqual(pl.partTarget, 0.2);
      assert.deepStrictEqual(
        pl.open.map((p) => Number(p.DURATION)),
        [0.2, 0.2],
      );
      assert.deepStrictEqual(pl.hint, { TYPE: "PART", URI: "part-3.2.m4s" });
      assert.ok(s.part(1, 0).data.equals(Buffer.concat(pushed.slice(15, 18))), "a part is its pictures");
      assert.ok(s.segment(1).data.equals(Buffer.concat(pushed.slice(15, 30))));
      assert.ok(pl.segments[0].parts[0].INDEPENDENT === "YES" && !pl.segments[0].parts[1].INDEPENDENT);
      // A late joiner still gets every picture of the open GOP, not just the complete parts.
      assert.strictEqual(s.gop.length, 7);
      assert.ok(s.reached(3, 1) && !s.reached(3, 2));
      // The part being filled is published with the segment when the next keyframe comes.
      s.pushFragment(Buffer.from("key"), { ...info(52, true, 1 / 15), time: t0 + 52000 / 15 });
      const after = parsePlaylist(s.playlist());
      assert.deepStrictEqual(
        after.segments[3].parts.map((p) => Number(p.DURATION).toFixed(3)),
        ["0.200", "0.200", "0.067"],
      );
    });

    it("stays a plain playlist for fragments without keyframe flags (a GOP each)", function () {
      const s = new Fmp4Store();
      s.pushInit(Buffer.from("init"), init);
      for (let i = 0; i < 4; i++) s.pushFragment(Buffer.from("gop"), info(i, undefined, 1));
      const text = s.playlist();
      assert.doesNotMatch(text, /EXT-X-PART|SERVER-CONTROL|PRELOAD-HINT/);
      assert.strictEqual(parsePlaylist(text).segments.length, 4);
    });

    it("a new init ends the open GOP as a segment, so its published parts keep their sequence number", function () {
      const s = new Fmp4Store();
      s.pushInit(Buffer.from("a"), init);
      for (let i = 0; i < 6; i++) s.pushFragment(Buffer.from(`f${i}`), info(i, i % 4 === 0));
      assert.strictEqual(s.openSeq, 1);
      const before = s.part(1, 1).data;
      s.pushInit(Buffer.from("b"), init);
      assert.strictEqual(s.segment(1).duration, 0.5);
      assert.ok(s.part(1, 1).data.equals(before));
      for (let i = 0; i < 2; i++) s.pushFragment(Buffer.from(`g${i}`), info(i, i === 0));
      const pl = checkLowLatency(s.playlist());
      assert.match(
        pl.text,
        /#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init\.mp4\?v=2"\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXT-X-PART:DURATION=0\.250,URI="part-2\.0\.m4s",INDEPENDENT=YES\n/,
      );
    });
  });

  describe("blocking reloads and parts over HTTP", function () {
    let clip;
    let server;
    let web;
    let base;
    let feeder;
    let browser;
    const requests = [];

    before(async function () {
      clip = await makeClip(40);
      assert.ok(
        clip.fragments.some((f) => !f.keyframe),
        "the clip has fragments inside GOPs",
      );
      server = new StreamServer({ path: "/cam", tickMs: 200, renderPlaceholder: () => Buffer.alloc(0) });
      web = http.createServer((req, res) => {
        requests.push(req.url);
        if (req.url.startsWith("/cam/")) server.handle(req, res, req.url.slice(4));
        else if (req.url === "/hls.min.js") serveHlsJs(req, res, (err) => console.error(err));
        else if (req.url.startsWith("/page")) {
          const ll = req.url.includes("ll=1");
          res.writeHead(200, { "Content-Type": "text/html" });
          res.end(`<!doctype html><video id="v" muted autoplay playsinline></video>
<script src="/hls.min.js"></script>
<script>
  window.hlsErrors = [];
  var hls = new Hls({ lowLatencyMode: ${ll} });
  window.hls = hls;
  hls.on(Hls.Events.ERROR, function (_e, d) { window.hlsErrors.push(d.type + ":" + d.details + ":" + d.fatal); });
  hls.loadSource("/cam/index.m3u8");
  hls.attachMedia(document.getElementById("v"));
  document.getElementById("v").play().catch(function () {});
</script>`);
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise((r) => web.listen(0, "127.0.0.1", r));
      base = `http://127.0.0.1:${web.address().port}`;
      feeder = feed(server, clip);
      await until(
        async () => (await h.request(`${base}/cam/index.m3u8`)).status === 200,
        10000,
        "a playlist",
      );
    });
    after(async function () {
      feeder.pause();
      await browser?.close();
      server.close();
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    });

    const playlist = async (query = "") => {
      const r = await h.request(`${base}/cam/index.m3u8${query}`);
      assert.strictEqual(r.status, 200, r.body.toString());
      return checkLowLatency(r.body.toString());
    };

    it("answers a blocking reload once the part it names exists, and the hinted part with its bytes", async function () {
      const pl = await playlist();
      const [msn, n] = partName(pl.hint.URI);
      const pushedAt = feeder.pushed;
      const reload = h.request(`${base}/cam/index.m3u8?_HLS_msn=${msn}&_HLS_part=${n}`);
      const part = h.request(`${base}/cam/${pl.hint.URI}`);
      const [r, p] = await Promise.all([reload, part]);
      const next = clip.fragments.indexOf(feeder.last); // not asserted: only what came after the request counts
      assert.ok(next >= 0);
      assert.ok(feeder.pushed > pushedAt, "held until a fragment came");
      assert.strictEqual(r.status, 200);
      const after = checkLowLatency(r.body.toString());
      const names = [...after.segments.flatMap((s) => s.parts), ...after.open].map((x) => partName(x.URI));
      assert.ok(
        names.some(([m, i]) => (m === msn && i === n) || (m === msn + 1 && i === 0)),
        `part ${msn}.${n} or the next GOP's first in\n${after.text}`,
      );
      if (names.some(([m, i]) => m === msn && i === n)) {
        assert.strictEqual(p.status, 200);
        assert.strictEqual(p.body.toString("latin1", 4, 8), "moof", "a part is moof + mdat");
        assert.ok(p.body.equals(server.fmp4.store.part(msn, n).data));
      } else {
        // The fragment after the hint started a GOP: that part never comes.
        assert.strictEqual(p.status, 404, p.body.toString());
      }
      assert.strictEqual(server.fmp4.heldRequests, 0);
    });

    it("waits for a whole segment with _HLS_msn alone; at once for what is there", async function () {
      const pl = await playlist();
      const t = Date.now();
      const now = await h.request(`${base}/cam/index.m3u8?_HLS_msn=${pl.openSeq - 1}`);
      assert.strictEqual(now.status, 200);
      assert.ok(Date.now() - t < 500, "an existing segment answers at once");
      const r = await playlist(`?_HLS_msn=${pl.openSeq}`);
      assert.ok(
        r.segments.some((s) => s.seq === pl.openSeq),
        `seg ${pl.openSeq} complete in\n${r.text}`,
      );
    });

    it("refuses directives it cannot read in words, and does not hold those too far ahead", async function () {
      const pl = await playlist();
      for (const [query, words] of [
        ["?_HLS_msn=abc", /_HLS_msn must be a whole number/],
        ["?_HLS_part=1", /_HLS_part needs _HLS_msn/],
        ["?_HLS_msn=1&_HLS_part=-1", /_HLS_part must be a whole number/],
      ]) {
        const r = await h.request(`${base}/cam/index.m3u8${query}`);
        assert.strictEqual(r.status, 400, query);
        assert.match(r.body.toString(), words);
      }
      // Far ahead (a player from before a redeploy, whose numbers start again): the playlist at once.
      const t = Date.now();
      const ahead = await h.request(`${base}/cam/index.m3u8?_HLS_msn=${pl.openSeq + 10}&_HLS_part=0`);
      assert.strictEqual(ahead.status, 200);
      checkLowLatency(ahead.body.toString());
      assert.ok(Date.now() - t < 1000, "not held");
      const future = await h.request(`${base}/cam/part-${pl.openSeq + 1}.0.m4s`);
      assert.strictEqual(future.status, 404, "a part after the hint is not waited for");
      assert.strictEqual(
        (await h.request(`${base}/cam/part-${pl.openSeq}.${pl.open.length + 10}.m4s`)).status,
        404,
      );
    });

    it("times out a held reload after three target durations with the playlist as it is", async function () {
      feeder.pause();
      try {
        const pl = await playlist();
        const [msn, n] = partName(pl.hint.URI);
        const t = Date.now();
        const held = h.request(`${base}/cam/index.m3u8?_HLS_msn=${msn}&_HLS_part=${n}`);
        await until(() => server.fmp4.heldRequests === 1, 2000, "held");
        const r = await held;
        const waited = Date.now() - t;
        assert.strictEqual(r.status, 200);
        assert.strictEqual(r.body.toString(), pl.text, "the same playlist: nothing came");
        // Bounds of the wait itself (3 x EXT-X-TARGETDURATION), not a speed.
        const hold = 3000 * Number(pl.tags["EXT-X-TARGETDURATION"]);
        assert.ok(waited >= hold - 100 && waited < hold + 2000, `held ${waited} ms, bound ${hold} ms`);
        assert.strictEqual(server.fmp4.heldRequests, 0);
        // (the answered sockets take a moment to go; a hold timer would stay for seconds)
      } finally {
        feeder.resume();
      }
    });

    for (const build of ffmpegBuilds()) {
      it(`${build.name} reads the live playlist (parts ignored) and decodes with no error`, async function () {
        const r = await h.run(
          build.ffmpeg,
          ["-v", "error", "-i", `${base}/cam/index.m3u8`, "-t", "2", "-f", "null", "-"],
          { timeout: 30000 },
        );
        assert.strictEqual(r.code, 0, r.stderr);
        assert.strictEqual(r.stderr.trim(), "", "no decode error");
      });
    }

    for (const ll of [false, true]) {
      it(`plays in Chromium with the served hls.js, lowLatencyMode ${ll} (latency printed)`, async function () {
        browser ??= await launchChromium({ viewport: { width: 640, height: 480 } });
        const page = await browser.context.newPage();
        const from = requests.length;
        await page.goto(`${base}/page?ll=${ll ? 1 : 0}`);
        try {
          await page.waitForFunction(() => document.getElementById("v").currentTime > 0.5, null, {
            timeout: 20000,
          });
        } catch (err) {
          const state = await page.evaluate(() => ({
            errors: window.hlsErrors,
            t: document.getElementById("v").currentTime,
          }));
          throw new Error(`no playback: ${JSON.stringify(state)} (${err.message.split("\n")[0]})`);
        }
        // Playing means 2 s of media within at most 8 s of wall clock: on a loaded 2-core CI box (the bare
        // lane beside the main one) hls.js's small low-latency buffer can run dry for a second or two and
        // then play on; that is a stall, not a failure to play.
        const samples = [];
        for (let i = 0; i < 16 && !(i >= 8 && samples[i - 1][1] > samples[0][1] + 2); i++) {
          await wait(500);
          samples.push(
            await page.evaluate(() => [window.hls.latency, document.getElementById("v").currentTime]),
          );
        }
        const errors = await page.evaluate(() => window.hlsErrors);
        await page.close();
        const latencies = samples.map((s) => s[0]).sort((a, b) => a - b);
        const stalls = errors.filter((e) => e.includes("bufferStalledError")).length;
        console.log(
          `      hls.js ${ll ? "low-latency" : "classic"}: hls.latency p50 ` +
            `${latencies[latencies.length >> 1].toFixed(2)} s (min ${latencies[0].toFixed(2)}, ` +
            `max ${latencies[latencies.length - 1].toFixed(2)}; ${stalls} stall(s), ${samples.length / 2} s watched)`,
        );
        const last = samples[samples.length - 1][1];
        assert.ok(last > samples[0][1] + 2, `currentTime ${samples.map((s) => s[1].toFixed(2))}`);
        assert.deepStrictEqual(
          errors.filter((e) => e.endsWith(":true")),
          [],
          "no fatal hls.js error",
        );
        const seen = requests.slice(from);
        if (ll) {
          assert.ok(
            seen.some((u) => /\/part-\d+\.\d+\.m4s/.test(u)),
            "hls.js loaded parts",
          );
          assert.ok(
            seen.some((u) => /_HLS_msn=\d+&_HLS_part=\d+/.test(u)),
            "and reloaded blocking",
          );
        } else assert.ok(!seen.some((u) => /\/part-/.test(u)), "classic mode loads whole segments");
      });
    }

    it("close answers held requests with 503 and leaves no timer", async function () {
      feeder.pause();
      await wait(300);
      await browser?.close();
      browser = undefined;
      const pl = await playlist();
      await wait(300); // (the socket of that request goes)
      const idle = timers();
      const [msn, n] = partName(pl.hint.URI);
      const held = [
        h.request(`${base}/cam/index.m3u8?_HLS_msn=${msn}&_HLS_part=${n}`),
        h.request(`${base}/cam/${pl.hint.URI}`),
      ];
      await until(() => server.fmp4.heldRequests === 2, 2000, "two held");
      assert.ok(timers() >= idle + 2, "their timers run while they are held");
      server.close();
      const answers = await Promise.all(held);
      assert.deepStrictEqual(
        answers.map((a) => a.status),
        [503, 503],
      );
      assert.strictEqual(server.fmp4.heldRequests, 0);
      await until(() => timers() <= idle, 1000, "no timer left for them");
    });
  });

  describe("in Node-RED", function () {
    const web = h.httpNodeServer();
    const streamOut = web.wrap(streamOutNode);
    let camera;
    let timer;

    before(async function () {
      await web.listen();
      camera = await rtspServer({ width: 320, height: 240, fps: 15, gop: 15 });
    });
    afterEach(async function () {
      clearInterval(timer);
      await helper.unload();
    });
    after(async function () {
      await camera?.stop();
      await web.close();
    });

    /** Waits for a low-latency playlist with two segments at `path`; checks it and a blocking reload. */
    async function lowLatencyPlaylist(path) {
      let pl;
      await until(
        async () => {
          const r = await h.request(web.url(`${path}/index.m3u8`));
          if (r.status !== 200) return false;
          pl = parsePlaylist(r.body.toString());
          return pl.segments.length >= 2 && pl.partTarget > 0;
        },
        30000,
        "a low-latency playlist",
      );
      pl = checkLowLatency(pl.text);
      const partsPerGop = pl.segments.filter((s) => s.parts.length).map((s) => s.parts.length);
      assert.ok(
        partsPerGop.some((c) => c >= 2),
        `parts per GOP ${partsPerGop}: shorter than the GOP`,
      );
      const [msn, n] = partName(pl.hint.URI);
      const r = await h.request(web.url(`${path}/index.m3u8?_HLS_msn=${msn}&_HLS_part=${n}`));
      assert.strictEqual(r.status, 200);
      assert.notStrictEqual(r.body.toString(), pl.text, "held until the playlist changed");
      const first = pl.segments.find((s) => s.parts.length).parts[0];
      const part = await h.request(web.url(`${path}/${first.URI}`));
      assert.strictEqual(part.status, 200);
      assert.strictEqual(part.body.toString("latin1", 4, 8), "moof");
      const decode = await h.run(
        ffmpegBuilds()[0].ffmpeg,
        ["-v", "error", "-i", web.url(`${path}/index.m3u8`), "-t", "2", "-f", "null", "-"],
        { timeout: 30000 },
      );
      assert.strictEqual(decode.code, 0, decode.stderr);
      assert.strictEqual(decode.stderr.trim(), "");
    }

    it("a passthrough RTSP camera: parts of the camera's own H.264, ffmpeg decodes the live playlist", async function () {
      await helper.load(
        [sourceNode, connectNode, streamOut],
        [
          {
            id: "src",
            type: "camera-source",
            name: "door",
            protocol: "ffmpeg",
            url: camera.url("h264"),
            video: "auto",
            audio: false,
            fps: 0,
            linger: 0,
          },
          { id: "conn", type: "camera-connect", camera: "src", output: "video", wires: [["out"], []] },
          { id: "out", type: "http-stream-out", path: "/cam/door", wires: [[]] },
        ],
      );
      await lowLatencyPlaylist("/cam/door");
    });

    it("a JPEG camera through ffmpeg transcode (hls): ~0.25 s parts of 1 s GOPs", async function () {
      await helper.load(
        [transcodeNode, streamOut],
        [
          recorderConfig({ preset: "hls", directory: "", wires: [["out"]] }),
          { id: "out", type: "http-stream-out", path: "/cam/yard", wires: [[]] },
        ],
      );
      const rec = helper.getNode("rec");
      const jpegs = testJpegs(10, "320x240", 8);
      let seq = 0;
      timer = setInterval(() => {
        seq++;
        rec.receive({
          payload: jpegs[seq % jpegs.length],
          topic: "yard",
          frame: { seq, time: monotonicEpochMs(), camera: "yard", width: 320, height: 240 },
        });
      }, 100);
      await lowLatencyPlaylist("/cam/yard");
    });
  });
});
