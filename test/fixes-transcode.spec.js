"use strict";
// Issue 10, live transcoding: the frame size cap, clock jumps, the push I/O timeout (also with Node-RED
// SIGKILLed), HLS directory clean-up, one log line per push outage, and the rate shown for HLS with a directory.
// Real Node-RED (test helper and a real red.js process), real ffmpeg/ffprobe, real sockets.
const assert = require("assert");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { outputSize, pushArgs } = require("../dist/nodes/lib/transcode/args");
const { FrameClock } = require("../dist/nodes/lib/transcode/session");
const { rtspTimeoutOption, resolveFfmpegPath, resolveFfprobePath } = require("../dist/nodes/lib/ffmpeg");
const {
  findNginxRtmp,
  freePort,
  processesMatching,
  startNginxRtmp,
  testJpegs,
  wait,
  until,
} = require("./lib/transcode-helpers");
const { startNodeRed } = require("./lib/soak-nodered");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

// The ffmpeg under test: FFMPEG_PATH / FFPROBE_PATH select the bundled 4.x build, else PATH's.
const FFMPEG = resolveFfmpegPath();
const FFPROBE = resolveFfprobePath();
const MB = 1024 * 1024;

function ffprobeStream(file) {
  const out = execFileSync(
    FFPROBE,
    ["-v", "error", "-print_format", "json", "-show_format", "-show_streams", file],
    { encoding: "utf8" },
  );
  const data = JSON.parse(out);
  const video = data.streams.find((s) => s.codec_type === "video");
  return { width: video.width, height: video.height, duration: Number(data.format.duration) };
}

/** One JPEG of `size`, made by ffmpeg. */
function jpegOf(size) {
  return execFileSync(
    FFMPEG,
    ["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=1`, "-frames:v", "1"].concat([
      "-q:v",
      "8",
      "-f",
      "image2pipe",
      "-c:v",
      "mjpeg",
      "pipe:1",
    ]),
    { maxBuffer: 64 << 20 },
  );
}

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** True while `pid` runs (a zombie whose parent died and nobody reaps counts as gone). */
function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** A TCP server that accepts every connection and never answers (a hung media server). */
function startHungServer() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("data", () => undefined);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      server.port = server.address().port;
      server.connections = () => sockets.size;
      server.stop = () =>
        new Promise((r) => {
          for (const s of sockets) s.destroy();
          server.close(() => r());
        });
      resolve(server);
    });
  });
}

describe("issue 10, live transcoding fixes", function () {
  this.timeout(90000);
  let tmp;
  let feeders = [];

  before(() => helper.startServer());
  after(() => helper.stopServer());
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-fixes-tc-"));
  });
  afterEach(async () => {
    feeders.forEach((f) => f.stop());
    feeders = [];
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function load(props) {
    const flow = [
      {
        id: "tc",
        type: "ffmpeg-transcode",
        quality: 32,
        keyframeInterval: 1,
        encoder: "libx264",
        ffmpegPath: FFMPEG,
        wires: [["out"]],
        ...props,
      },
      { id: "out", type: "helper" },
    ];
    await helper.load(transcodeNode, flow);
    const tc = helper.getNode("tc");
    const got = { tc, messages: [], errors: [], warnings: [], logs: [], statuses: [] };
    helper.getNode("out").on("input", (m) => got.messages.push(m));
    tc.on("call:error", (c) => got.errors.push(String(c.args[0]?.message ?? c.args[0])));
    tc.on("call:warn", (c) => got.warnings.push(String(c.args[0])));
    tc.on("call:log", (c) => got.logs.push(String(c.args[0])));
    tc.on("call:status", (c) => got.statuses.push(c.args[0].text));
    return got;
  }

  /** Sends `jpegs` at `fps` in real time; `stamp(now)` gives msg.frame.time, `extra` more msg.frame fields. */
  function feed(node, jpegs, fps = 10, stamp = (now) => now, extra = {}) {
    let seq = 0;
    const timer = setInterval(() => {
      seq++;
      const time = stamp(monotonicEpochMs(), seq);
      node.receive({
        payload: jpegs[seq % jpegs.length],
        topic: "cam",
        frame: { seq, time, camera: "cam", ...extra },
      });
    }, 1000 / fps);
    const feeder = {
      stop: () => clearInterval(timer),
      get seq() {
        return seq;
      },
    };
    feeders.push(feeder);
    return feeder;
  }

  /** The fMP4 (init + fragments) the node sent, as a file for ffprobe. */
  function fmp4File(messages, name) {
    const file = path.join(tmp, name);
    const init = messages.filter((m) => m.mp4?.type === "init").pop();
    const frags = messages.filter((m) => m.mp4?.type === "fragment" && m.mp4.seq >= init.mp4.seq);
    fs.writeFileSync(file, Buffer.concat([init.payload, ...frags.map((m) => m.payload)]));
    return file;
  }

  describe("frame size cap", function () {
    it("outputSize: fits the cap in the frame's orientation, keeps the aspect, honours a set size", function () {
      assert.deepStrictEqual(outputSize({}, 8000, 8000), { width: 1080, height: 1080 });
      assert.deepStrictEqual(outputSize({}, 3840, 2160), { width: 1920, height: 1080 });
      assert.deepStrictEqual(outputSize({}, 2160, 3840), { width: 1080, height: 1920 });
      assert.deepStrictEqual(outputSize({}, 640, 480), { width: 640, height: 480 });
      const raised = { maxSize: { width: 3840, height: 2160 } };
      assert.deepStrictEqual(outputSize(raised, 3840, 2160), { width: 3840, height: 2160 });
      assert.deepStrictEqual(outputSize({ width: 2560, height: 1440 }, 8000, 8000), {
        width: 2560,
        height: 1440,
      });
    });

    it("an 8000x8000 JPEG is recorded at 1080x1080 and its ffmpeg stays far below 1 GB", async function () {
      const big = jpegOf("8000x8000");
      const { tc, messages } = await load({ preset: "mp4", directory: tmp, preRoll: 0, postRoll: 0 });
      feed(tc, [big], 4);
      await wait(300);
      tc.receive({ action: "start" });
      const [pid] = await until(() => processesMatching("matroska"), 20000, "the recorder's ffmpeg");
      let maxRss = 0;
      const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssOf(pid))), 100);
      await wait(5000);
      clearInterval(sampler);
      tc.receive({ action: "stop" });
      const rec = await until(() => messages.find((m) => m.recording), 20000, "the recording");
      const probed = ffprobeStream(rec.payload);
      console.log(
        `      8000x8000 JPEG: encoded ${probed.width}x${probed.height}, ffmpeg RSS ${(maxRss / MB).toFixed(0)} MB`,
      );
      assert.deepStrictEqual([probed.width, probed.height], [1080, 1080]);
      assert.ok(maxRss > 0, "RSS was read");
      assert.ok(maxRss < 450 * MB, `ffmpeg took ${(maxRss / MB).toFixed(0)} MB`);
    });

    it("msg.frame.width/height of 8000x8000 on a 320x240 JPEG do not change the output size", async function () {
      const small = testJpegs(10, "320x240", 8);
      const { tc, messages } = await load({ preset: "hls" });
      feed(tc, small, 10, (now) => now, { width: 8000, height: 8000 });
      const fragments = () => messages.filter((m) => m.mp4?.type === "fragment").length;
      await until(() => fragments() >= 1, 30000, "a fragment");
      const pids = processesMatching("matroska");
      let maxRss = 0;
      const sample = () => pids.forEach((pid) => (maxRss = Math.max(maxRss, rssOf(pid))));
      sample();
      const sampler = setInterval(sample, 100);
      // Fragments are 0.25 s now: 12 of them are 3 s of ffmpeg at work, sampled every 100 ms.
      await until(() => fragments() >= 12, 30000, "fragments");
      clearInterval(sampler);
      const probed = ffprobeStream(fmp4File(messages, "lying.mp4"));
      console.log(
        `      lying msg.frame 8000x8000: encoded ${probed.width}x${probed.height}, RSS ${(maxRss / MB).toFixed(0)} MB`,
      );
      assert.deepStrictEqual([probed.width, probed.height], [320, 240]);
      assert.ok(maxRss > 0, "RSS was read");
      assert.ok(maxRss < 200 * MB, `ffmpeg took ${(maxRss / MB).toFixed(0)} MB`);
    });

    it("a frame over 8192 pixels a side is refused with one clear error, no ffmpeg started", async function () {
      const huge = jpegOf("9000x64");
      const { tc, errors } = await load({ preset: "hls" });
      for (let i = 0; i < 5; i++) {
        tc.receive({ payload: huge, topic: "cam", frame: { seq: i + 1, time: monotonicEpochMs() } });
        await wait(100);
      }
      await wait(500);
      assert.deepStrictEqual(errors, [
        "a 9000x64 frame is larger than the 8192x8192 ffmpeg transcode takes: dropped (and any more like it)",
      ]);
      assert.deepStrictEqual(processesMatching("matroska"), []);
    });

    it("the user can raise the cap (Largest size), and a 2560x1440 camera is scaled to 1920x1080 by default", async function () {
      const qhd = jpegOf("2560x1440");
      for (const [maxSize, want] of [
        [undefined, [1920, 1080]],
        ["2560x1440", [2560, 1440]],
      ]) {
        const { tc, messages } = await load({ preset: "hls", ...(maxSize ? { maxSize } : {}) });
        const f = feed(tc, [qhd], 5);
        await until(() => messages.filter((m) => m.mp4?.type === "fragment").length >= 2, 30000, "fragments");
        f.stop();
        const probed = ffprobeStream(fmp4File(messages, `qhd-${maxSize}.mp4`));
        assert.deepStrictEqual([probed.width, probed.height], want, `maxSize ${maxSize}`);
        await helper.unload();
      }
    });
  });

  describe("frame times that jump", function () {
    it("FrameClock: forward and backward jumps are re-anchored to the clock, steady offsets kept", function () {
      const c = new FrameClock();
      const t0 = 1e12;
      assert.strictEqual(c.correct(t0 - 5000, t0), t0 - 5000, "a pre-roll frame keeps its time");
      assert.strictEqual(c.correct(t0 - 4900, t0), t0 - 4900);
      assert.strictEqual(c.correct(t0 + 100, t0 + 100), t0 + 100);
      assert.strictEqual(c.correct(t0 + 86400000, t0 + 200), t0 + 200, "24 h ahead: now");
      assert.strictEqual(c.correct(t0 + 86400100, t0 + 300), t0 + 300, "then its spacing");
      assert.strictEqual(c.correct(t0 + 400, t0 + 400), t0 + 400, "back to the true time");
      assert.strictEqual(c.correct(t0 - 3600000, t0 + 500), t0 + 500, "an hour back: after the last frame");
      assert.strictEqual(c.correct(t0 - 3600000 + 100, t0 + 600), t0 + 600);
    });

    it("HLS keeps flowing through a frame 23 h ahead and a clock set an hour back, with monotonic true times", async function () {
      const jpegs = testJpegs(10, "320x240", 8);
      const { tc, messages } = await load({ preset: "hls" });
      let mode = "normal";
      feed(tc, jpegs, 10, (now, seq) => {
        if (mode === "ahead" && seq % 10 === 0) return now + 23 * 3600 * 1000;
        if (mode === "back") return now - 3600 * 1000;
        return now;
      });
      const fragments = () => messages.filter((m) => m.mp4?.type === "fragment");
      await until(() => fragments().length >= 2, 30000, "first fragments");
      for (const next of ["ahead", "normal", "back", "normal"]) {
        mode = next;
        const n = fragments().length;
        await until(() => fragments().length >= n + 3, 20000, `fragments after the switch to "${next}"`);
      }
      const times = fragments().map((m) => m.mp4.time);
      for (let i = 1; i < times.length; i++) assert.ok(times[i] > times[i - 1], `time ${i} goes forward`);
      const last = fragments().pop().mp4.time;
      assert.ok(
        Math.abs(last - monotonicEpochMs()) < 5000,
        `last fragment ${last - monotonicEpochMs()} ms from now`,
      );
    });

    it("a recording through a jump forward and back lasts as long as the wall clock", async function () {
      const jpegs = testJpegs(10, "320x240", 8);
      const { tc, messages } = await load({ preset: "mp4", directory: tmp, preRoll: 0, postRoll: 0 });
      const t0 = monotonicEpochMs();
      feed(tc, jpegs, 10, (now) =>
        now - t0 > 2000 && now - t0 < 2200
          ? now + 20 * 3600 * 1000
          : now > t0 + 4000
            ? now - 7200 * 1000
            : now,
      );
      await wait(200);
      tc.receive({ action: "start" });
      const started = Date.now();
      await wait(6000);
      tc.receive({ action: "stop" });
      const wall = (Date.now() - started) / 1000;
      const rec = await until(() => messages.find((m) => m.recording), 20000, "the recording");
      const probed = ffprobeStream(rec.payload);
      console.log(
        `      wall ${wall.toFixed(1)} s, file ${probed.duration.toFixed(1)} s, ${rec.recording.frames} frames`,
      );
      assert.ok(Math.abs(probed.duration - wall) < 1.5, `file ${probed.duration} s for ${wall} s`);
      assert.ok(rec.recording.frames >= 45, `${rec.recording.frames} frames in 6 s at 10 fps`);
    });
  });

  describe("push I/O timeout", function () {
    it("push arguments carry an I/O timeout for every protocol, named as this ffmpeg knows it", async function () {
      const rtsp = await rtspTimeoutOption(FFMPEG);
      const help = execFileSync(FFMPEG, ["-hide_banner", "-h", "full"], {
        encoding: "utf8",
        maxBuffer: 16 << 20,
      });
      assert.match(help, /^\s*-rw_timeout\b/m, "this ffmpeg has -rw_timeout");
      assert.ok(help.includes(`\n  ${rtsp} `), `this ffmpeg has ${rtsp}`);
      const timeout = (a) => a.slice(-3, -1);
      assert.deepStrictEqual(timeout(pushArgs("rtmp://h/app/key")), ["-rw_timeout", "10000000"]);
      assert.deepStrictEqual(timeout(pushArgs("srt://h:1", rtsp)), ["-rw_timeout", "10000000"]);
      assert.deepStrictEqual(timeout(pushArgs("rtsp://h/x", rtsp)), [rtsp, "10000000"]);
    });

    it("a push ffmpeg whose server accepts and never answers gives up, also after Node-RED was SIGKILLed", async function () {
      const hung = await startHungServer();
      const nr = await startNodeRed({ env: { FFMPEG_PATH: FFMPEG } });
      try {
        const push = (id, url, y) => ({
          id,
          z: "tab",
          type: "ffmpeg-transcode",
          preset: "push",
          url,
          quality: 32,
          keyframeInterval: 1,
          encoder: "libx264",
          x: 300,
          y,
          wires: [[]],
        });
        await nr.deploy([
          { id: "tab", type: "tab", label: "push" },
          {
            id: "cam",
            type: "camera-source",
            name: "c",
            protocol: "test",
            url: "320x240",
            fps: 10,
            alwaysOn: true,
          },
          {
            id: "conn",
            z: "tab",
            type: "camera-connect",
            camera: "cam",
            autoStart: true,
            wires: [["rtmp", "rtsp"], []],
          },
          push("rtmp", `rtmp://127.0.0.1:${hung.port}/live/key`, 100),
          push("rtsp", `rtsp://127.0.0.1:${hung.port}/live/key`, 200),
        ]);
        const ffmpegs = await (async () => {
          const end = Date.now() + 20000;
          for (;;) {
            const list = nr.ffmpegs();
            if (list.length >= 2 && hung.connections() >= 2) return list;
            if (Date.now() > end)
              throw new Error(`ffmpegs ${list.length}, connections ${hung.connections()}`);
            await wait(100);
          }
        })();
        nr.child.kill("SIGKILL");
        await until(() => nr.exited, 5000, "Node-RED gone");
        const t0 = Date.now();
        const pids = ffmpegs.map((f) => f.pid);
        const end = t0 + 30000;
        while (pids.some(running) && Date.now() < end) await wait(100);
        const left = pids.filter(running);
        left.forEach((pid) => process.kill(pid, "SIGKILL"));
        console.log(`      ffmpegs gone ${((Date.now() - t0) / 1000).toFixed(1)} s after Node-RED's SIGKILL`);
        assert.deepStrictEqual(left, [], "no push ffmpeg outlives Node-RED for more than 30 s");
      } finally {
        await nr.cleanup();
        await hung.stop();
      }
    });
  });

  describe("push ffmpeg and a SIGKILLed Node-RED", function () {
    it("a push ffmpeg streaming to a healthy server ends when Node-RED is SIGKILLed", async function () {
      // nginx-rtmp where it is installed, else the npm RTMP server (node-media-server): never skipped.
      const found = findNginxRtmp();
      const server = found.missing
        ? await require("./lib/rtmp-node-media-server").startNodeMediaServer(tmp)
        : await startNginxRtmp(tmp);
      const nr = await startNodeRed({ env: { FFMPEG_PATH: FFMPEG } });
      try {
        await nr.deploy([
          { id: "tab", type: "tab", label: "push" },
          {
            id: "cam",
            type: "camera-source",
            name: "c",
            protocol: "test",
            url: "320x240",
            fps: 10,
            alwaysOn: true,
          },
          {
            id: "conn",
            z: "tab",
            type: "camera-connect",
            camera: "cam",
            autoStart: true,
            wires: [["pusher"], []],
          },
          {
            id: "pusher",
            z: "tab",
            type: "ffmpeg-transcode",
            preset: "push",
            url: `rtmp://127.0.0.1:${server.rtmpPort}/live/healthy`,
            quality: 32,
            keyframeInterval: 1,
            encoder: "libx264",
            wires: [[]],
          },
        ]);
        const published = await server.publishing("healthy", 20000);
        assert.ok(
          published,
          `the RTMP server sees the stream: ${nr.output.slice(-1500)} ${JSON.stringify(nr.ffmpegs())}`,
        );
        const pids = nr.ffmpegs().map((f) => f.pid);
        assert.strictEqual(pids.length, 1);
        nr.child.kill("SIGKILL");
        const t0 = Date.now();
        while (pids.some(running) && Date.now() - t0 < 15000) await wait(100);
        const left = pids.filter(running);
        left.forEach((pid) => process.kill(pid, "SIGKILL"));
        console.log(`      ffmpeg gone ${((Date.now() - t0) / 1000).toFixed(1)} s after Node-RED's SIGKILL`);
        assert.deepStrictEqual(left, [], "the push ffmpeg ended with its stdin");
      } finally {
        await nr.cleanup();
        await server.stop();
      }
    });
  });

  describe("HLS directory", function () {
    const segFiles = (dir) => fs.readdirSync(dir).filter((n) => /^seg-\d+\.ts$/.test(n));
    const listed = (dir) =>
      fs
        .readFileSync(path.join(dir, "index.m3u8"), "utf8")
        .split("\n")
        .filter((l) => l && !l.startsWith("#"));

    it("deletes earlier runs' segments the playlist no longer lists, never other files", async function () {
      this.timeout(120000);
      const dir = path.join(tmp, "hls");
      fs.mkdirSync(dir);
      const old = Date.now() / 1000 - 600;
      for (let i = 1; i <= 20; i++) {
        fs.writeFileSync(path.join(dir, `seg-${1000 + i}.ts`), "old");
        fs.utimesSync(path.join(dir, `seg-${1000 + i}.ts`), old, old);
      }
      const others = ["notes.txt", "seg-1.ts.bak", "seg-abc.ts", "other-5.ts", "index.html"];
      for (const name of others) {
        fs.writeFileSync(path.join(dir, name), "keep");
        fs.utimesSync(path.join(dir, name), old, old);
      }
      const jpegs = testJpegs(10, "320x240", 8);
      for (let run = 1; run <= 3; run++) {
        const { tc } = await load({ preset: "hls", directory: dir });
        feed(tc, jpegs, 10);
        await until(
          () => fs.existsSync(path.join(dir, "index.m3u8")) && listed(dir).length >= 3,
          30000,
          "a playlist",
        );
        await wait(run === 1 ? 1000 : 12000); // the first sweep runs at start, then every 10 s
        feeders.forEach((f) => f.stop());
        feeders = [];
        await helper.unload();
        const onDisk = segFiles(dir);
        const inList = listed(dir);
        console.log(`      run ${run}: ${onDisk.length} segments on disk, ${inList.length} in the playlist`);
        assert.ok(!onDisk.some((n) => /^seg-10(0\d|1\d|20)\.ts$/.test(n)), "the stale segments are gone");
        if (run > 1) {
          const unlisted = onDisk.filter((n) => !inList.includes(n));
          assert.ok(unlisted.length <= 2, `unlisted on disk after run ${run}: ${unlisted.join(" ")}`);
        }
        for (const name of others) assert.ok(fs.existsSync(path.join(dir, name)), `${name} is kept`);
        // Time passes between deploys: this run's segments are old by the next one.
        for (const n of segFiles(dir)) fs.utimesSync(path.join(dir, n), old, old);
      }
    });

    it("no sub-millisecond last segment when stopped right after a keyframe", async function () {
      const dir = path.join(tmp, "hls");
      const jpegs = testJpegs(10, "320x240", 8);
      const { tc } = await load({ preset: "hls", directory: dir });
      // Frames exactly 100 ms apart: frame 10n is the forced keyframe at n seconds; stop right after frame 40.
      const t0 = monotonicEpochMs();
      for (let i = 0; i <= 40; i++) {
        tc.receive({ payload: jpegs[i % 10], topic: "cam", frame: { seq: i + 1, time: t0 + i * 100 } });
        await wait(100);
      }
      await helper.unload();
      const playlist = fs.readFileSync(path.join(dir, "index.m3u8"), "utf8");
      const durations = [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].map((m) => Number(m[1]));
      console.log(`      segment durations: ${durations.join(" ")}`);
      assert.ok(durations.length >= 2, playlist);
      assert.ok(Math.min(...durations) >= 0.05, `segment durations ${durations.join(" ")}`);
    });

    it("the status shows the rate of the stream, not 0kb/s, when HLS also writes a directory", async function () {
      const jpegs = testJpegs(10, "320x240", 8);
      const { tc, statuses } = await load({ preset: "hls", directory: path.join(tmp, "hls") });
      feed(tc, jpegs, 10);
      await until(() => statuses.some((s) => /^live \d+fps/.test(s)), 30000, "a live status");
      await wait(3000);
      const live = statuses.filter((s) => /^live \d+fps/.test(s));
      console.log(`      statuses: ${live.slice(-3).join(", ")}`);
      assert.ok(live.length > 0);
      assert.ok(/^live \d+fps ([1-9]\d*kb|[\d.]+Mb)\/s$/.test(live[live.length - 1]), live.join(", "));
    });
  });

  describe("push target down", function () {
    it("failureCause names the cause in a few words, the same on every retry", function () {
      const { failureCause } = require("../dist/nodes/lib/transcode/live");
      const refused = (p) =>
        `ffmpeg exited with code 1: [tcp @ 0x${p}] Connection to tcp://127.0.0.1:1 failed: Connection refused`;
      assert.strictEqual(failureCause(refused("55d0aa")), "connection refused");
      assert.strictEqual(failureCause("rtmp://h/live/***: Connection timed out"), "no answer (timed out)");
      assert.strictEqual(failureCause("Server returned 404 Not Found"), "the server refused the stream");
      assert.strictEqual(
        failureCause("[x @ 0x1] odd | [x @ 0x2] odd"),
        failureCause("[x @ 0x3] odd | [x @ 0x4] odd"),
      );
    });

    it('logs "connection refused" once per outage, not "not keeping up" every 10 s', async function () {
      this.timeout(60000);
      const port = await freePort();
      const jpegs = testJpegs(10, "320x240", 8);
      const { tc, errors, warnings } = await load({
        preset: "push",
        url: `rtmp://127.0.0.1:${port}/live/key`,
      });
      feed(tc, jpegs, 10);
      // backoff 1 + 2 + 4 + 8 s: at least four failed runs in 16 s
      await wait(16000);
      console.log(`      errors: ${JSON.stringify(errors)}; warnings: ${JSON.stringify(warnings)}`);
      assert.deepStrictEqual(
        warnings.filter((w) => /not keeping up/.test(w)),
        [],
      );
      const refused = errors.filter((e) => /connection refused/.test(e));
      assert.strictEqual(refused.length, 1, `one error for the outage: ${errors.join(" / ")}`);
      assert.strictEqual(errors.length, 1, errors.join(" / "));
    });
  });
});
