"use strict";
// ffmpeg-transcode live presets (hls, fmp4, flv, custom) in a real Node-RED runtime with real ffmpeg/ffprobe.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { parseMoof } = require("../dist/nodes/lib/codec/fmp4-splitter");
const {
  ffprobe,
  ffmpegRead,
  testJpegs,
  processesMatching,
  waitGone,
  wait,
  until,
} = require("./lib/transcode-helpers");
const { processes } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

/** True when an fMP4 fragment (moof+mdat) starts with a sync sample. */
function startsWithKeyframe(fragment) {
  const moofSize = fragment.readUInt32BE(0);
  assert.strictEqual(fragment.toString("latin1", 4, 8), "moof");
  return parseMoof(fragment, 8, moofSize, 0).keyframe;
}

describe("ffmpeg-transcode node: live presets", function () {
  this.timeout(40000);
  let tmp;
  let jpegs;
  let feeder;

  before(async function () {
    jpegs = testJpegs(30, "320x240", 8);
    await helper.startServer();
  });
  after(() => helper.stopServer());
  beforeEach(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-live-"));
  });
  afterEach(async function () {
    feeder?.stop();
    feeder = undefined;
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function load(props) {
    const flow = [
      {
        id: "tc",
        type: "ffmpeg-transcode",
        quality: 30,
        keyframeInterval: 1,
        encoder: "libx264",
        wires: [["out"]],
        ...props,
      },
      { id: "out", type: "helper" },
    ];
    await helper.load(transcodeNode, flow);
    const out = helper.getNode("out");
    const messages = [];
    out.on("input", (m) => messages.push(m));
    return { tc: helper.getNode("tc"), out, messages };
  }

  /** ~10 fps of frames in real time, with jitter. */
  function startFeeding(node) {
    let seq = 0;
    let timer;
    const sent = [];
    const tick = () => {
      seq++;
      const time = monotonicEpochMs();
      sent.push(time);
      node.receive({
        payload: jpegs[seq % jpegs.length],
        topic: "yard",
        frame: { seq, time, camera: "yard", width: 320, height: 240 },
      });
      timer = setTimeout(tick, 100 * (0.6 + 0.8 * Math.random()));
    };
    tick();
    return {
      sent,
      stop: () => clearTimeout(timer),
    };
  }

  it("hls: emits an init then ~0.25 s fragments in ~1 s keyframe GOPs, and writes a valid HLS directory", async function () {
    const hlsDir = path.join(tmp, "hls");
    const { tc, messages } = await load({ preset: "hls", directory: hlsDir });
    const statuses = [];
    tc.on("call:status", (c) => statuses.push(c.args[0].text));
    feeder = startFeeding(tc);
    await until(() => messages.filter((m) => m.mp4.keyframe).length >= 3, 15000, "3 keyframe fragments");
    const [init, ...rest] = messages;
    assert.strictEqual(init.mp4.type, "init");
    assert.strictEqual(init.topic, "yard");
    assert.strictEqual(init.mp4.codec, "avc1.64001e", "High profile, level 3.0");
    assert.strictEqual(init.mp4.width, 320);
    assert.strictEqual(init.mp4.height, 240);
    assert.strictEqual(init.payload.toString("latin1", 4, 8), "ftyp");
    // Fragments of ~0.25 s (low-latency HLS parts), flagged: a keyframe fragment starts each ~1 s GOP.
    assert.strictEqual(rest[0].mp4.keyframe, true);
    for (const f of rest) {
      assert.strictEqual(f.mp4.type, "fragment");
      assert.strictEqual(typeof f.mp4.keyframe, "boolean");
      assert.strictEqual(
        startsWithKeyframe(f.payload),
        f.mp4.keyframe,
        "the flag says what the fragment starts with",
      );
      assert.ok(f.mp4.duration > 0 && f.mp4.duration < 0.45, `fragment of ${f.mp4.duration} s`);
    }
    const keys = rest.filter((f) => f.mp4.keyframe);
    for (let i = 1; i < keys.length; i++) {
      const gop = rest
        .slice(rest.indexOf(keys[i - 1]), rest.indexOf(keys[i]))
        .reduce((s, f) => s + f.mp4.duration, 0);
      assert.ok(Math.abs(gop - 1) < 0.2, `GOP of ${gop} s`);
    }
    assert.deepStrictEqual(
      rest.map((f) => f.mp4.seq),
      rest.map((_f, i) => rest[0].mp4.seq + i),
    );
    // the first fragment's time is the first frame's receive time
    assert.strictEqual(rest[0].mp4.time, feeder.sent[0]);
    assert.ok(keys[1].mp4.time - keys[0].mp4.time >= 800);
    const joined = path.join(tmp, "joined.mp4");
    fs.writeFileSync(joined, Buffer.concat(messages.map((m) => m.payload)));
    const probe = ffprobe(joined, true);
    assert.strictEqual(probe.streams[0].codec_name, "h264");
    assert.ok(
      statuses.some((s) => /^live \d+fps \d+(kb|Mb)\/s$/.test(s)),
      statuses.join(", "),
    );
    // closing the node ends the playlist (#EXT-X-ENDLIST), so a reader does not wait for more segments
    feeder.stop();
    await helper.unload();
    const playlist = fs.readFileSync(path.join(hlsDir, "index.m3u8"), "utf8");
    assert.match(playlist, /^#EXTM3U/);
    assert.match(playlist, /#EXT-X-TARGETDURATION:1\n/);
    assert.match(playlist, /#EXT-X-ENDLIST/);
    const segments = playlist.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.ok(segments.length >= 2, playlist);
    for (const s of segments) assert.ok(fs.existsSync(path.join(hlsDir, s)), `${s} exists`);
    const hls = ffmpegRead(path.join(hlsDir, "index.m3u8"));
    assert.strictEqual(hls.codec, "h264");
    assert.strictEqual(hls.width, 320);
    assert.ok(hls.frames >= 10, `${hls.frames} frames in the playlist`);
  });

  it("hls: an unwritable directory is reported and the live fMP4 output keeps running", async function () {
    const file = path.join(tmp, "plain-file");
    fs.writeFileSync(file, "");
    const { tc, messages } = await load({ preset: "hls", directory: path.join(file, "hls") });
    const errors = [];
    tc.on("call:error", (c) => errors.push(String(c.args[0])));
    feeder = startFeeding(tc);
    await until(() => messages.length >= 2, 10000, "init and a fragment");
    assert.match(errors[0], /directory ".*plain-file\/hls" is not writable: ENOTDIR/);
    assert.strictEqual(messages[0].mp4.type, "init");
  });

  it("fmp4: the stream starts with an init segment and a keyframe, at the configured size", async function () {
    const { tc, messages } = await load({ preset: "fmp4", size: "160x120" });
    feeder = startFeeding(tc);
    await until(() => messages.filter((m) => m.mp4.keyframe).length >= 2, 10000, "init and a first GOP");
    assert.strictEqual(messages[0].mp4.type, "init");
    assert.strictEqual(messages[0].mp4.width, 160);
    assert.strictEqual(messages[1].mp4.type, "fragment");
    assert.ok(startsWithKeyframe(messages[1].payload));
    assert.strictEqual(messages[1].mp4.keyframe, true);
    const gop = messages.slice(
      1,
      messages.findIndex((m, i) => i > 1 && m.mp4.keyframe),
    );
    const file = path.join(tmp, "first.mp4");
    fs.writeFileSync(file, Buffer.concat([messages[0].payload, ...gop.map((m) => m.payload)]));
    const probe = ffprobe(file, true);
    assert.strictEqual(probe.streams[0].width, 160);
    assert.ok(Number(probe.streams[0].nb_read_frames) >= 5);
  });

  it("restarts a dead ffmpeg with backoff and reports its end; close leaves no ffmpeg", async function () {
    const { tc, messages } = await load({ preset: "fmp4", name: "restart-me" });
    const errors = [];
    tc.on("call:error", (c) => errors.push(String(c.args[0])));
    feeder = startFeeding(tc);
    await until(() => messages.length >= 1, 10000, "init");
    const marker = "pipe:0";
    const before = processesMatching(marker).filter((p) => p !== process.pid);
    assert.strictEqual(before.length, 1, `one ffmpeg (${before})`);
    process.kill(before[0], "SIGKILL");
    await until(() => errors.length >= 1, 5000, "the error");
    assert.match(errors[0], /ffmpeg was killed by SIGKILL/);
    await until(
      () => messages.filter((m) => m.mp4.type === "init").length >= 2,
      10000,
      "a new init after the restart",
    );
    const after = processesMatching(marker).filter((p) => p !== process.pid);
    assert.strictEqual(after.length, 1);
    assert.notStrictEqual(after[0], before[0]);
    feeder.stop();
    await helper.unload();
    assert.ok(await waitGone(after[0], 100), "ffmpeg gone after close");
  });

  it("flv: writes a playable FLV file into the directory", async function () {
    const { tc } = await load({ preset: "flv", directory: tmp });
    feeder = startFeeding(tc);
    await wait(2500);
    feeder.stop();
    await helper.unload();
    const files = fs.readdirSync(tmp).filter((f) => f.endsWith(".flv"));
    assert.strictEqual(files.length, 1);
    assert.match(files[0], /^yard-\d{8}-\d{6}-\d+\.flv$/);
    const probe = ffprobe(path.join(tmp, files[0]), true);
    assert.strictEqual(probe.format.format_name, "flv");
    assert.strictEqual(probe.streams[0].codec_name, "h264");
    assert.ok(Number(probe.streams[0].nb_read_frames) >= 15);
  });

  it("custom: only the editor's arguments reach ffmpeg; message fields cannot add any", async function () {
    const evil = path.join(tmp, "evil.mp4");
    const { tc, messages } = await load({
      preset: "custom",
      customArgs: "-c:v mjpeg -q:v 5 -f mjpeg pipe:1",
    });
    feeder = startFeeding(tc);
    // fields a message might try to smuggle in
    tc.receive({
      payload: jpegs[0],
      frame: { time: monotonicEpochMs(), width: 320, height: 240 },
      args: ["-y", evil],
      ffmpegArgs: ["-y", evil],
      customArgs: `-y ${evil}`,
      url: evil,
      filename: evil,
    });
    await until(() => messages.length >= 3, 10000, "output bytes");
    assert.ok(Buffer.isBuffer(messages[0].payload));
    assert.deepStrictEqual([...messages[0].payload.subarray(0, 2)], [0xff, 0xd8], "ffmpeg's mjpeg output");
    const cmd = processes((p) => p.ppid === process.pid && p.cmd.join(" ").includes("pipe:0")).map((p) =>
      p.cmd.join("\0"),
    );
    assert.ok(cmd.length >= 1);
    assert.ok(!cmd.some((c) => c.includes(evil)), "no message field in the command line");
    assert.ok(!fs.existsSync(evil));
  });

  it("msg.action stop pauses a live preset and start resumes it", async function () {
    const { tc, messages } = await load({ preset: "fmp4" });
    feeder = startFeeding(tc);
    await until(() => messages.length >= 1, 10000, "init");
    tc.receive({ action: "stop" });
    await until(
      () => processesMatching("pipe:0").filter((p) => p !== process.pid).length === 0,
      5000,
      "ffmpeg to end",
    );
    const count = messages.length;
    await wait(600);
    assert.ok(messages.length <= count + 1, "no new output while stopped");
    tc.receive({ action: "start" });
    await until(() => messages.filter((m) => m.mp4.type === "init").length >= 2, 10000, "a new init");
  });
});
