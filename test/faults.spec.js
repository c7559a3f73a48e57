// Camera faults through a real Node-RED flow: camera -> camera connect -> http stream out, with a viewer
// watching over real HTTP. The fake camera drops mid-frame, goes silent, answers 500 and 401, sends a frame
// that never ends, changes resolution and restarts over and over. Every time camrelay must come back by
// itself within its backoff schedule, the viewer must stay connected (placeholder while the camera is away,
// then the picture again) and Node-RED must keep running. `npm run test:soak` restarts the camera 100 times.
"use strict";
const assert = require("assert");
const helper = require("node-red-node-test-helper");
const cameraSource = require("../dist/nodes/camera-source.js");
const cameraConnect = require("../dist/nodes/camera-connect.js");
const streamOut = require("../dist/nodes/http-stream-out.js");
const transcode = require("../dist/nodes/ffmpeg-transcode.js");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { ffprobe } = require("./lib/transcode-helpers");
const { childrenOf } = require("./lib/soak-nodered");
const cams = require("./lib/fake-cameras");
const h = require("./lib/stream-out-helpers");
const { Viewer } = require("./lib/soak-viewer");
const { SupervisionLog } = require("./lib/soak-supervision");
const { pick, escapeWatch } = require("./lib/soak-env");
const { wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const SMALL = cams.makeFrames(10, "320x240");
const LARGE = cams.makeFrames(10, "640x480");
const PATH = "/faults/cam";

describe("camera faults in a running flow", function () {
  this.timeout(pick(60000, 900000));
  const web = h.httpNodeServer();
  const nodes = [cameraSource, cameraConnect, web.wrap(streamOut), transcode];
  const escapes = escapeWatch();
  let cam;
  let viewer;
  let log;
  let frames;
  let states;

  before(async () => {
    await web.listen();
    await helper.startServer();
    escapes.start();
  });
  after(async () => {
    escapes.stop();
    await helper.stopServer();
    await web.close();
  });
  afterEach(async () => {
    viewer?.close();
    viewer = undefined;
    log?.detach();
    await helper.unload();
    await cam?.close();
    cam = undefined;
  });

  function flow(url, source = {}, { extra = [], to = [], connect = {} } = {}) {
    return [
      { id: "tab", type: "tab", label: "faults" },
      {
        id: "cam1",
        type: "camera-source",
        name: "yard",
        protocol: "mjpeg",
        url,
        fps: 0,
        linger: 0,
        watchdog: 2,
        maxFrameKB: 256,
        ...source,
      },
      {
        id: "c1",
        z: "tab",
        type: "camera-connect",
        camera: "cam1",
        wires: [["out", "frames", ...to], ["states"]],
        ...connect,
      },
      {
        id: "out",
        z: "tab",
        type: "http-stream-out",
        path: PATH,
        offlineAfter: 1,
        stallTimeout: 10,
        wires: [[]],
      },
      { id: "frames", z: "tab", type: "helper" },
      { id: "states", z: "tab", type: "helper" },
      ...extra,
    ];
  }

  /** Loads the flow against a fresh fake camera and waits until a viewer sees the picture. */
  async function start(camOptions = {}, source = {}, more = {}) {
    cam = await cams.mjpegCamera({ fps: 20, ...camOptions });
    await helper.load(nodes, flow(cam.url, source, more));
    log = new SupervisionLog(helper.getNode("cam1").camera);
    frames = [];
    states = [];
    helper.getNode("frames").on("input", (m) => frames.push(m));
    helper.getNode("states").on("input", (m) => states.push(m));
    viewer = new Viewer(web.url(PATH), [...SMALL, ...LARGE]);
    await viewer.ready;
    assert.strictEqual(viewer.status, 200);
    await viewer.waitFor("live");
  }

  /** Node-RED is still up: no exception escaped, the flow still serves a new viewer the live picture. */
  async function assertStillRunning() {
    assert.deepStrictEqual(escapes.escaped.map(String), [], "nothing escaped to the process");
    assert.ok(!viewer.ended, `the viewer stayed connected (saw ${viewer.summary()})`);
    assert.strictEqual(viewer.count("bad"), 0, "every part the viewer got was a JPEG");
    const fresh = new Viewer(web.url(PATH), [...SMALL, ...LARGE]);
    try {
      await fresh.ready;
      await fresh.waitFor("live", 0, 5000);
    } finally {
      fresh.close();
    }
  }

  it("drops the connection mid-frame: reconnects at the first retry, the viewer never notices", async () => {
    await start();
    const mark = log.mark;
    const seen = viewer.mark;
    const connections = cam.connections;
    const upAt = Date.now();
    cam.cutNext();
    await log.waitFor("retrying", mark);
    await log.waitFor("streaming", mark + 1);
    await viewer.waitFor("live", seen + 1);
    log.assertBackoffSchedule(mark);
    const ms = log.assertRecoveredAfter(upAt, mark);
    assert.strictEqual(cam.connections, connections + 1, "one reconnect");
    assert.ok(
      log.warnings.some((w) => /ended inside a frame|cut short/.test(w)),
      `the lost half frame is reported: ${log.warnings}`,
    );
    const retry = states.find((m) => m.payload === "retrying");
    assert.ok(retry && retry.state.retryInMs <= 600, "the first retry comes within the first backoff step");
    console.log(`      back streaming ${ms} ms after the drop`);
    await assertStillRunning();
  });

  it("goes silent: the watchdog reconnects, the viewer sees the placeholder, then the picture", async () => {
    await start();
    const mark = log.mark;
    const seen = viewer.mark;
    cam.silence(true);
    const stalled = await log.waitFor("stalled", mark, 6000);
    assert.match(stalled.state.error, /no frame for 2 s/);
    const placeholderAt = await viewer.waitFor("placeholder", seen, 5000);
    await wait(500);
    const upAt = Date.now();
    cam.silence(false);
    await viewer.waitFor("live", placeholderAt);
    log.assertBackoffSchedule(mark);
    log.assertRecoveredAfter(upAt, mark, 5000);
    const status = JSON.parse((await h.request(web.url(`${PATH}/status.json`))).body);
    assert.strictEqual(status.upstream, "live");
    await assertStillRunning();
  });

  it("answers 500 (a camera busy rebooting): retries on the backoff schedule, then streams again", async () => {
    await start();
    const mark = log.mark;
    const seen = viewer.mark;
    cam.failNext(500, 2);
    cam.dropClients();
    await log.waitFor("streaming", mark + 1, 15000);
    const failures = log.since(mark).filter((s) => s.state === "retrying");
    assert.ok(failures.length >= 3, `the drop and two refused attempts: ${failures.map((s) => s.error)}`);
    assert.ok(
      failures.slice(-2).every((s) => /HTTP 500/.test(s.error)),
      failures.map((s) => s.error).join("; "),
    );
    log.assertBackoffSchedule(mark);
    const placeholder = await viewer.waitFor("placeholder", seen, 1);
    await viewer.waitFor("live", placeholder);
    await assertStillRunning();
  });

  it("answers 401 twice (a camera rebooting): recovers by itself before the auth breaker trips", async () => {
    await start();
    const mark = log.mark;
    cam.failNext(401, 2);
    cam.dropClients();
    await log.waitFor("streaming", mark + 1, 10000);
    const failures = log.since(mark).filter((s) => s.state === "retrying");
    assert.ok(
      failures.some((s) => /HTTP 401/.test(s.error)),
      failures.map((s) => s.error).join("; "),
    );
    assert.ok(!log.since(mark).some((s) => s.state === "auth-failed"));
    log.assertBackoffSchedule(mark);
    await assertStillRunning();
  });

  it("answers 401 for good: stops retrying and says so; a start message tries again", async () => {
    await start();
    const mark = log.mark;
    cam.failNext(401, 1000);
    cam.dropClients();
    const failed = await log.waitFor("auth-failed", mark, 10000);
    assert.match(failed.state.error, /HTTP 401.*stopped retrying after 3 refusals/);
    const requests = cam.requests.length;
    const c1 = helper.getNode("c1");
    const statuses = [];
    const orig = c1.status.bind(c1);
    c1.status = (s) => {
      statuses.push(s);
      orig(s);
    };
    await wait(2500);
    assert.strictEqual(cam.requests.length, requests, "no request while the breaker is open (accounts lock)");
    await viewer.waitFor("placeholder", 0, 1);
    assert.ok(
      states.some((m) => m.payload === "auth-failed"),
      "the state message says auth-failed",
    );
    cam.failNext(401, 0);
    const seen = viewer.mark;
    c1.receive({ action: "start" });
    await log.waitFor("streaming", failed.index);
    await viewer.waitFor("live", seen);
    assert.ok(
      statuses.some((s) => s.fill === "green"),
      JSON.stringify(statuses),
    );
    await assertStillRunning();
  });

  it("sends a frame that never ends: dropped at the size cap, memory bounded, reconnected", async () => {
    await start();
    const mark = log.mark;
    const seen = viewer.mark;
    cam.endlessNext(1);
    cam.dropClients();
    const camera = helper.getNode("cam1").camera;
    const cap = camera.options.maxFrameBytes + 64 * 1024;
    let peak = 0;
    const sampler = setInterval(() => {
      const parser = camera.source?.parser;
      if (parser) peak = Math.max(peak, parser.buf.length, parser.bufferedBytes);
    }, 20);
    try {
      await log.waitFor("stalled", mark, 8000);
      await log.waitFor("streaming", log.mark, 8000);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(
      cam.endlessBytes > 2 * camera.options.maxFrameBytes,
      `sent ${cam.endlessBytes} bytes of one frame`,
    );
    assert.ok(peak > 0 && peak <= cap, `parser held at most ${peak} bytes (cap ${cap})`);
    assert.ok(
      log.warnings.some((w) => /larger than 256 KB/.test(w)),
      `oversize frame reported: ${log.warnings.join("; ")}`,
    );
    const placeholder = await viewer.waitFor("placeholder", seen, 1);
    await viewer.waitFor("live", placeholder);
    log.assertBackoffSchedule(mark);
    await assertStillRunning();
  });

  it("changes resolution mid-stream: frames carry the new size, no reconnect, viewers keep watching", async () => {
    await start();
    const connections = cam.connections;
    const seen = viewer.mark;
    cam.setFrames(LARGE);
    const first = await viewer.waitFor("live", seen);
    const big = viewer.seen.findIndex((p, i) => i >= first && p.width === 640);
    if (big < 0) await h.until(() => viewer.seen.some((p) => p.width === 640), "a 640x480 frame");
    await h.until(
      () => frames.some((m) => m.frame.width === 640 && m.frame.height === 480),
      "msg.frame 640x480",
    );
    const status = JSON.parse((await h.request(web.url(`${PATH}/status.json`))).body);
    assert.strictEqual(status.lastFrame.width, 640);
    cam.setFrames(SMALL);
    await h.until(() => frames.slice(-1)[0].frame.width === 320, "back to 320x240");
    assert.strictEqual(cam.connections, connections, "a size change is not a reason to reconnect");
    await assertStillRunning();
  });

  const RESTARTS = pick(12, 100);
  it(`restarts ${RESTARTS} times in a row: back within the schedule after each, the viewer stays`, async function () {
    this.timeout(pick(120000, 900000));
    await start();
    const recoveries = [];
    let placeholders = 0;
    for (let i = 0; i < RESTARTS; i++) {
      const mark = log.mark;
      const seen = viewer.mark;
      await cam.restart(Math.round(Math.random() * 1500));
      const upAt = cam.upSince;
      await log.waitFor("streaming", mark + 1, 15000);
      recoveries.push(log.assertRecoveredAfter(upAt, mark));
      log.assertBackoffSchedule(mark);
      await viewer.waitFor("live", seen);
      if (viewer.count("placeholder", seen) > 0) placeholders++;
    }
    recoveries.sort((a, b) => a - b);
    const q = (p) => recoveries[Math.min(recoveries.length - 1, Math.floor(p * recoveries.length))];
    console.log(
      `      ${RESTARTS} restarts: back ${q(0)}/${q(0.5)}/${q(0.95)}/${q(1)} ms (min/p50/p95/max) after the camera; ` +
        `placeholder shown in ${placeholders}`,
    );
    assert.ok(placeholders > 0, "long outages showed the placeholder");
    assert.strictEqual(cam.restarts, RESTARTS);
    await assertStillRunning();
  });

  it("a recording in progress keeps what it had through drops, errors, silence and a restart", async function () {
    this.timeout(pick(90000, 900000));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-faultrec-"));
    try {
      await start(
        {},
        {},
        {
          to: ["rec"],
          extra: [
            {
              id: "rec",
              z: "tab",
              type: "ffmpeg-transcode",
              preset: "mp4",
              directory: dir,
              preRoll: 0,
              postRoll: 0,
              duration: 0,
              maxDuration: 300,
              quality: 32,
              keyframeInterval: 1,
              encoder: "libx264",
              wires: [["recs"]],
            },
            { id: "recs", z: "tab", type: "helper" },
          ],
        },
      );
      const recs = [];
      helper.getNode("recs").on("input", (m) => recs.push(m));
      const rec = helper.getNode("rec");
      await wait(500);
      rec.receive({ action: "start", topic: "alarm" });
      await wait(2500);
      const framesBefore = frames.length;
      const sizes = [];
      const file = () => fs.readdirSync(dir).find((f) => f.endsWith(".mp4"));
      const grow = () => sizes.push(fs.statSync(path.join(dir, file())).size);
      grow();
      const faults = [
        async () => {
          cam.cutNext();
          await log.waitFor("streaming", log.mark + 1);
        },
        async () => {
          const mark = log.mark;
          cam.failNext(500, 2);
          cam.dropClients();
          await log.waitFor("streaming", mark + 1, 15000);
        },
        async () => {
          const mark = log.mark;
          cam.silence(true);
          await log.waitFor("stalled", mark, 6000);
          cam.silence(false);
          await log.waitFor("streaming", mark + 1, 10000);
        },
        async () => {
          const mark = log.mark;
          await cam.restart(800);
          await log.waitFor("streaming", mark + 1, 10000);
        },
      ];
      for (const fault of faults) {
        await fault();
        await wait(1500);
        grow();
      }
      rec.receive({ action: "stop" });
      await h.until(() => recs.length >= 1, "the recording to close", 15000);
      for (let i = 1; i < sizes.length; i++)
        assert.ok(sizes[i] >= sizes[i - 1], `the file only grows: ${sizes}`);
      const files = recs.map((m) => m.recording);
      assert.strictEqual(files.length, 1, `one recording through the faults: ${files.map((r) => r.reason)}`);
      const probe = ffprobe(files[0].file, true);
      const kept = Number(probe.streams[0].nb_read_frames);
      assert.strictEqual(kept, files[0].frames, "every frame handed to ffmpeg is in the file");
      assert.ok(kept >= framesBefore, `${kept} frames kept, ${framesBefore} came before the first fault`);
      assert.strictEqual(files[0].reason, "stop");
      await assertStillRunning();
    } finally {
      await helper.unload();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("metrics (Prometheus text) and stats messages count viewers, frames, bytes, upstream, reconnects, ffmpeg restarts", async function () {
    this.timeout(60000);
    await start(
      {},
      {},
      {
        to: ["live"],
        connect: { stats: 1 },
        extra: [
          {
            id: "live",
            z: "tab",
            type: "ffmpeg-transcode",
            preset: "hls",
            directory: "",
            quality: 32,
            keyframeInterval: 1,
            encoder: "libx264",
            wires: [["out"]],
          },
        ],
      },
    );
    await h.until(async () => (await h.request(web.url(`${PATH}/index.m3u8`))).status === 200, "HLS", 15000);
    const mark = log.mark;
    cam.cutNext();
    await log.waitFor("streaming", mark + 1);
    const ffmpeg = childrenOf(process.pid).find((c) => /ffmpeg$/.test(c.cmd[0]));
    process.kill(ffmpeg.pid, "SIGKILL");
    await h.until(
      () => childrenOf(process.pid).some((c) => /ffmpeg$/.test(c.cmd[0]) && c.pid !== ffmpeg.pid),
      "ffmpeg restarted",
      10000,
    );
    // The periodic stats message of camera connect counts the camera's side.
    await h.until(
      () => states.some((m) => m.topic === "yard/stats" && m.payload.reconnects >= 1),
      "a stats message",
      3000,
    );
    const stats = states.filter((m) => m.topic === "yard/stats").pop().payload;
    assert.ok(stats.framesIn > 0 && stats.bytesIn > 0 && stats.state === "streaming", JSON.stringify(stats));
    // The restart shows once the new ffmpeg's init reached the stream.
    let text = "";
    await h
      .until(
        async () => {
          text = (await h.request(web.url(`${PATH}/metrics`))).body.toString();
          return /ffmpeg_restarts[a-z_]*(\{[^}]*\})? [1-9]/.test(text);
        },
        "the ffmpeg restart in the metrics",
        15000,
      )
      .catch(() => undefined);
    // Valid exposition format: HELP/TYPE comments, then `name{labels} value` samples.
    for (const line of text.split("\n").filter(Boolean)) {
      assert.match(
        line,
        /^(# (HELP|TYPE) [a-z_:][a-z0-9_:]* .+|[a-z_:][a-z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|[a-z_:][a-z0-9_:]*(\{[^}]*\})? (NaN|\+Inf|-Inf))$/i,
        line,
      );
    }
    const value = (re) => {
      const m = text.split("\n").find((l) => !l.startsWith("#") && re.test(l.split(/[{ ]/)[0]));
      return m === undefined ? undefined : Number(m.split(" ").pop());
    };
    const wanted = {
      viewers: /viewers$/,
      "frames in": /frames_in/,
      "frames out": /frames_(sent|out)/,
      "frames skipped": /frames_skipped/,
      bytes: /bytes/,
      "upstream state": /upstream/,
      reconnects: /reconnect/,
      "ffmpeg restarts": /ffmpeg_restart/,
    };
    const missing = Object.entries(wanted)
      .filter(([, re]) => value(re) === undefined)
      .map(([name]) => name);
    assert.deepStrictEqual(missing, [], `metrics missing from ${PATH}/metrics:\n${text}`);
    const got = Object.fromEntries(Object.entries(wanted).map(([name, re]) => [name, value(re)]));
    assert.ok(
      got.viewers >= 1 && got["frames in"] > 0 && got.reconnects >= 1 && got["ffmpeg restarts"] >= 1,
      JSON.stringify(got),
    );
    assert.strictEqual(got["upstream state"], 1, "upstream is up again");
  });
});
