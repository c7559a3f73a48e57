// ffmpeg faults under ffmpeg-transcode in a real Node-RED flow: ffmpeg missing, ffmpeg that dies at once,
// ffmpeg killed with SIGKILL from outside mid-recording (and mid-HLS), ffmpeg stuck without output, the
// disk filling up (a real 1 MB tmpfs when this runs as root, else a file-size limit) and a read-only
// directory. Each time: a clear error, Node-RED keeps running, nothing piles up in memory, what was
// recorded stays playable, and no ffmpeg is left behind.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const { FFMPEG, ffprobe, writeScript, waitGone, alive, recorderConfig } = require("./lib/transcode-helpers");
const h = require("./lib/stream-out-helpers");
const { childrenOf } = require("./lib/soak-nodered");
const { pick, memoryAfterGc, MB } = require("./lib/soak-env");
const { wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

/** ffmpeg processes this test process started (real or fake), by pid. */
function ffmpegChildren(marker = "") {
  return childrenOf(process.pid)
    .filter((c) => c.cmd.some((a) => /ffmpeg/.test(path.basename(a))) && c.cmd.join(" ").includes(marker))
    .map((c) => c.pid);
}

/**
 * A fake ffmpeg: answers capability queries with the real one and runs `body` (bash) for real work;
 * `exec -a "$0"` keeps its name on a replacement process so /proc still shows what it is.
 */
function fakeFfmpeg(dir, name, body) {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    `#!/bin/bash\ncase "$*" in *-encoders*|*-hide_banner\\ -h*|*-version*|*-formats*|*-codecs*) exec "${FFMPEG}" "$@";; esac\n${body}\n`,
    { mode: 0o755 },
  );
  return file;
}

/** Mounts a tmpfs (root only); returns false where mounting is not allowed. */
function mountTmpfs(dir, options) {
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function unmount(dir) {
  try {
    execFileSync("umount", ["-l", dir], { stdio: "ignore" });
  } catch {
    // not mounted
  }
}

describe("ffmpeg faults", function () {
  this.timeout(pick(60000, 600000));
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  let tmp;
  let small;
  let noisy;
  let feeder;
  let mounts = [];
  let errors;
  let warnings;
  let recordings;

  before(async () => {
    small = await h.makeJpegs({ count: 20 });
    noisy = await h.makeJpegs({ width: 640, height: 480, count: 6, noise: 100, quality: 2 });
    await web.listen();
    await helper.startServer();
  });
  after(async () => {
    await helper.stopServer();
    await web.close();
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ffault-"));
  });
  afterEach(async () => {
    feeder?.stop();
    feeder = undefined;
    await helper.unload();
    mounts.forEach(unmount);
    mounts = [];
    const left = ffmpegChildren(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
    assert.deepStrictEqual(left, [], "no ffmpeg left behind after close");
  });

  async function load(props = {}, extra = []) {
    await helper.load(
      [transcodeNode, streamOut],
      [
        recorderConfig({ directory: path.join(tmp, "rec"), ...props }),
        { id: "out", type: "helper" },
        ...extra,
      ],
    );
    const rec = helper.getNode("rec");
    errors = [];
    warnings = [];
    recordings = [];
    rec.on("call:error", (call) => errors.push(String(call.args[0]?.message ?? call.args[0])));
    rec.on("call:warn", (call) => warnings.push(String(call.args[0])));
    helper.getNode("out").on("input", (m) => recordings.push(m));
    return rec;
  }

  /** Frames at `fps` in real time, stamped like camera connect does. */
  function feed(node, frames, fps = 10) {
    let seq = 0;
    const timer = setInterval(() => {
      seq++;
      const payload = frames[seq % frames.length];
      const { width, height } = readJpegSize(payload);
      node.receive({
        payload,
        topic: "drive",
        frame: { seq, time: monotonicEpochMs(), camera: "drive", width, height },
      });
    }, 1000 / fps);
    return { stop: () => clearInterval(timer), count: () => seq };
  }

  const until = (test, what, ms = 10000) => h.until(test, what, ms);

  it("ffmpeg missing (node setting or FFMPEG_PATH): says so, refuses to record, Node-RED carries on", async () => {
    const rec = await load({ ffmpegPath: path.join(tmp, "no-such-ffmpeg") });
    const statuses = [];
    rec.on("call:status", (call) => statuses.push(call.args[0]));
    await until(() => errors.length > 0, "an error at deploy");
    assert.match(errors[0], /ffmpeg not found at ".*no-such-ffmpeg" \(the node's ffmpeg setting\)/);
    feeder = feed(rec, small);
    const refused = new Promise((resolve) => rec.once("call:error", (call) => resolve(String(call.args[0]))));
    rec.receive({ action: "start" });
    assert.match(await refused, /ffmpeg not found/);
    await wait(300);
    assert.ok(
      statuses.some((s) => s.fill === "red" && /ffmpeg not found/.test(s.text)),
      JSON.stringify(statuses),
    );
    feeder.stop();
    await helper.unload();

    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = path.join(tmp, "env-ffmpeg-missing");
    try {
      await load({ ffmpegPath: "" });
      await until(() => errors.length > 0, "an error at deploy");
      assert.match(errors[0], /environment variable FFMPEG_PATH/);
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH;
      else process.env.FFMPEG_PATH = saved;
    }
    assert.deepStrictEqual(ffmpegChildren(), [], "nothing was started");
  });

  it("ffmpeg that dies at once: its last words reach the error, restarts back off instead of spinning", async () => {
    const script = fakeFfmpeg(tmp, "dying-ffmpeg", 'echo "fake: Unknown encoder libx265" >&2\nexit 1');
    const rec = await load({ ffmpegPath: script });
    feeder = feed(rec, small);
    await wait(300);
    rec.receive({ action: "start" });
    await wait(4000);
    const died = errors.filter((e) => /exited with code 1/.test(e));
    assert.ok(died.length >= 2, `restarted after dying: ${errors.join(" / ")}`);
    assert.ok(died.length <= 4, `${died.length} deaths in 4 s: the restarts back off (1 s, 2 s, 4 s ...)`);
    assert.match(died[0], /Unknown encoder libx265/);
  });

  it("ffmpeg killed with SIGKILL mid-recording: the file so far plays, recording continues in a new file", async () => {
    const rec = await load();
    feeder = feed(rec, small);
    await wait(300);
    rec.receive({ action: "start" });
    const [pid] = await waitForFfmpeg(tmp);
    await wait(3000);
    process.kill(pid, "SIGKILL");
    await until(() => recordings.length >= 1, "the killed recording's file");
    const first = recordings[0].recording;
    assert.strictEqual(first.reason, "error");
    assert.match(first.error, /killed by SIGKILL/);
    assert.ok(
      errors.some((e) => /ffmpeg was killed by SIGKILL while recording/.test(e)),
      errors.join(" / "),
    );
    const probe = ffprobe(first.file, true);
    assert.ok(Number(probe.format.duration) >= 2, `the killed file plays for ${probe.format.duration} s`);
    const kept = Number(probe.streams[0].nb_read_frames);
    assert.ok(kept >= 18, `and holds the frames written before the kill (${kept}, ${first.frames} written)`);
    await until(
      () => ffmpegChildren(tmp).some((p) => p !== pid),
      "a new ffmpeg for the rest of the recording",
    );
    await wait(2000);
    rec.receive({ action: "stop" });
    await until(() => recordings.length >= 2, "the continued recording");
    const second = recordings[1].recording;
    assert.notStrictEqual(second.file, first.file);
    assert.ok(Number(ffprobe(second.file).format.duration) >= 1, "the continuation plays");
    for (const r of [first, second]) assert.ok(fs.existsSync(r.file.replace(/\.mp4$/, ".json")), "sidecar");
    await until(() => ffmpegChildren(tmp).length === 0, "ffmpeg gone after stop");
  });

  it("ffmpeg killed with SIGKILL under HLS: restarted, a new init reaches http stream out, playback continues", async () => {
    const rec = await load({ preset: "hls", directory: "", wires: [["hls"]] }, [
      { id: "hls", type: "http-stream-out", path: "/ffault/hls", wires: [[]] },
    ]);
    feeder = feed(rec, small);
    await until(
      async () => (await h.request(web.url("/ffault/hls/index.m3u8"))).status === 200,
      "a playlist",
      15000,
    );
    const [pid] = ffmpegChildren();
    process.kill(pid, "SIGKILL");
    await until(() => errors.some((e) => /killed by SIGKILL/.test(e)), "the error");
    const inits = (text) => new Set([...text.matchAll(/init\.mp4\?v=(\d+)/g)].map((m) => m[1]));
    const before = inits((await h.request(web.url("/ffault/hls/index.m3u8"))).body.toString());
    await until(() => ffmpegChildren().some((p) => p !== pid), "a restarted ffmpeg", 10000);
    let playlist = "";
    await until(
      async () => {
        playlist = (await h.request(web.url("/ffault/hls/index.m3u8"))).body.toString();
        return [...inits(playlist)].some((v) => !before.has(v));
      },
      "segments under the restarted ffmpeg's init",
      15000,
    );
    assert.match(playlist, /#EXT-X-DISCONTINUITY/);
    const segs = playlist.split("\n").filter((l) => /^seg-\d+\.m4s/.test(l));
    const last = await h.request(web.url(`/ffault/hls/${segs[segs.length - 1]}`));
    assert.strictEqual(last.status, 200, "the newest segment is served");
    const init = await h.request(web.url(`/ffault/hls/init.mp4?v=${[...inits(playlist)].pop()}`));
    assert.strictEqual(init.status, 200, "the new init is served");
  });

  it("ffmpeg stuck without output: frames are dropped not queued, close kills it even when it ignores SIGTERM", async () => {
    const script = fakeFfmpeg(tmp, "stuck-ffmpeg", "trap '' TERM INT\nexec -a \"$0\" sleep 1000");
    const rec = await load({ ffmpegPath: script });
    const before = memoryAfterGc();
    feeder = feed(rec, noisy, 15);
    await wait(200);
    rec.receive({ action: "start" });
    const [pid] = await waitForFfmpeg(tmp);
    // a recorder queues up to its pre-roll ring (2 s without pre-roll) + 2 s before it drops
    await wait(pick(5000, 60000));
    helper._sandbox.resetHistory();
    const after = memoryAfterGc();
    const growth = (after.arrayBuffers + after.heapUsed - before.arrayBuffers - before.heapUsed) / MB;
    assert.ok(growth < 32, `memory grew ${growth.toFixed(1)} MB while ffmpeg read nothing`);
    assert.ok(
      warnings.some((w) => /not keeping up: \d+ frames dropped/.test(w)),
      `dropping is reported: ${warnings.join(" / ")}`,
    );
    feeder.stop();
    const t0 = Date.now();
    await helper.unload();
    assert.ok(Date.now() - t0 < 15000, `close took ${Date.now() - t0} ms`);
    assert.ok(await waitGone(pid, 1000), "the stuck ffmpeg was killed");
  });

  it("ffmpeg stuck without output is noticed and replaced, like one that died", async function () {
    this.timeout(40000);
    const script = fakeFfmpeg(tmp, "stuck-ffmpeg", 'exec -a "$0" sleep 1000');
    const rec = await load({ ffmpegPath: script });
    feeder = feed(rec, small);
    await wait(200);
    rec.receive({ action: "start" });
    const [pid] = await waitForFfmpeg(tmp);
    // A recording that writes nothing for this long is not a recording: the supervisor must act.
    await until(() => !alive(pid), "the stuck ffmpeg to be killed", 15000);
    assert.ok(
      errors.some((e) => /ffmpeg/.test(e)),
      "and it says so",
    );
  });

  it("disk full: ENOSPC is reported, the node keeps running, and recording works again once there is room", async () => {
    const dir = path.join(tmp, "rec");
    fs.mkdirSync(dir);
    let real = mountTmpfs(dir, "size=1m");
    if (real) mounts.push(dir);
    const props = { quality: 0, directory: dir };
    if (!real) {
      console.log("      (cannot mount a tmpfs here: simulating a full disk with a 1 MB file size limit)");
      props.ffmpegPath = writeScript(
        tmp,
        "small-disk-ffmpeg",
        `trap '' XFSZ\nulimit -f 2048\nexec "${FFMPEG}" "$@"`,
      );
    }
    const rec = await load(props);
    feeder = feed(rec, noisy, 10);
    await wait(300);
    const before = memoryAfterGc();
    rec.receive({ action: "start" });
    await until(
      () => errors.some((e) => /No space left on device|File too large/.test(e)),
      "a disk full error",
      20000,
    );
    assert.ok(
      errors.some((e) => /while recording .*\.mp4/.test(e)),
      errors.join(" / "),
    );
    helper._sandbox.resetHistory();
    const growth = (memoryAfterGc().rss - before.rss) / MB;
    assert.ok(growth < 64, `rss grew ${growth.toFixed(1)} MB with the disk full`);
    rec.receive({ action: "stop" });
    await until(() => ffmpegChildren(tmp).length === 0 || ffmpegChildren(dir).length === 0, "ffmpeg stopped");
    await wait(1500);
    // Make room, use the small frames, and record again.
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
    feeder.stop();
    feeder = feed(rec, small, 10);
    const count = recordings.length;
    rec.receive({ action: "start", duration: 2 });
    await until(
      () => recordings.slice(count).some((m) => m.recording.reason === "duration"),
      "a recording after room was made",
      20000,
    );
    const ok = recordings.slice(count).find((m) => m.recording.reason === "duration").recording;
    assert.ok(Number(ffprobe(ok.file).format.duration) > 1.5, "it plays");
  });

  it("read-only directory: a clear error at start, no ffmpeg started, recording works once it is writable", async () => {
    const dir = path.join(tmp, "rec");
    fs.mkdirSync(dir);
    const real = mountTmpfs(dir, "ro,size=1m");
    if (real) mounts.push(dir);
    else fs.chmodSync(dir, 0o555); // a non-root user cannot write here either
    const rec = await load({ directory: dir });
    const statuses = [];
    rec.on("call:status", (call) => statuses.push(call.args[0]));
    feeder = feed(rec, small);
    await wait(300);
    const refused = new Promise((resolve) => rec.once("call:error", (call) => resolve(String(call.args[0]))));
    rec.receive({ action: "start" });
    assert.match(await refused, /recording directory ".*rec" is not writable: (EROFS|EACCES)/);
    await wait(500);
    assert.deepStrictEqual(ffmpegChildren(tmp), [], "no ffmpeg for a directory it cannot write");
    assert.ok(
      statuses.some((s) => s.fill === "red"),
      JSON.stringify(statuses),
    );
    if (real) execFileSync("mount", ["-o", "remount,rw", dir]);
    else fs.chmodSync(dir, 0o755);
    rec.receive({ action: "start", duration: 1 });
    await until(() => recordings.length === 1, "a recording once the directory is writable", 15000);
    assert.ok(Number(ffprobe(recordings[0].payload).format.duration) > 0.5);
  });

  async function waitForFfmpeg(marker) {
    let pids = [];
    await h.until(() => (pids = ffmpegChildren(marker)).length > 0, "ffmpeg to start", 10000);
    return pids;
  }
});
