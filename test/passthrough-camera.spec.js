// Issue 13 against a real RTSP camera (GStreamer's RTSP server, test/lib/rtsp-server.js), the checks that
// need time, all in one flow so that they share it: a copy recording of 60 s of wall clock plays 60 s +- 2 %
// (ffprobe); meanwhile a camera that switches resolution (/switch, an in-band SPS with another size) is
// followed without a human (ffmpeg restarted once for a new init: HLS serves the new size, the recording
// goes on in a new part), and a stream.mp4 viewer that reads too slowly falls behind, resumes at keyframes
// and what it got decodes without an error.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawn } = require("child_process");
const helper = require("node-red-node-test-helper");
const sourceNode = require("../dist/nodes/camera-source.js");
const connectNode = require("../dist/nodes/camera-connect.js");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const h = require("./lib/stream-out-helpers");
const { rtspServer } = require("./lib/rtsp-server");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { until, wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

// The system ffmpeg/ffprobe when they run (a machine with only Node.js and npm has none), else the bundled ones.
const { ffmpeg, ffprobe } = require("./lib/toolkit").ffmpegBuilds()[0];

async function probe(input) {
  const r = await h.run(ffprobe, ["-v", "error", "-show_streams", "-show_format", "-of", "json", input], {
    timeout: 30000,
  });
  if (r.code !== 0) throw new Error(`ffprobe ${input}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString());
}
const videoOf = (m) => m.streams.find((s) => s.codec_type === "video");

async function get(url) {
  const r = await h.request(url);
  return { status: r.status ?? r.statusCode, body: Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body) };
}

async function status(web, p) {
  return JSON.parse((await get(web.url(`${p}/status.json`))).body.toString());
}

/** The newest init (EXT-X-MAP) and segment of a playlist, written together to `file`. */
async function lastHlsSegment(web, p, file) {
  const playlist = (await get(web.url(`${p}/index.m3u8`))).body.toString();
  // Low-latency HLS lists parts and a preload hint too: the map and whole segments only.
  const maps = [...playlist.matchAll(/#EXT-X-MAP:URI="([^"]+)"/g)].map((m) => m[1]);
  const segs = [...playlist.matchAll(/^(seg-\d+\.m4s)\s*$/gm)].map((m) => m[1]);
  if (!maps.length || !segs.length) return undefined;
  const init = await get(web.url(`${p}/${maps[maps.length - 1]}`));
  const seg = await get(web.url(`${p}/${segs[segs.length - 1]}`));
  fs.writeFileSync(file, Buffer.concat([init.body, seg.body]));
  return file;
}

describe("compressed video from a real RTSP camera over time (issue 13)", function () {
  this.timeout(150000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ptc-"));
  let server;

  before(async function () {
    await web.listen();
    server = await rtspServer({ width: 320, height: 240, fps: 15, gop: 15 });
  });
  after(async function () {
    await helper.unload();
    await server?.stop();
    await web.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  function camera(n, mount, dir) {
    return [
      {
        id: `src${n}`,
        type: "camera-source",
        name: `cam${n}`,
        protocol: "ffmpeg",
        url: server.url(mount),
        video: "auto",
        audio: true,
        fps: 0,
        linger: 0,
      },
      {
        id: `conn${n}`,
        type: "camera-connect",
        camera: `src${n}`,
        output: "video",
        wires: [[`out${n}`, `rec${n}`], []],
      },
      { id: `out${n}`, type: "http-stream-out", path: `/cam/${n}`, wires: [[]] },
      {
        id: `rec${n}`,
        type: "ffmpeg-transcode",
        preset: "mp4",
        directory: dir,
        preRoll: 0,
        postRoll: 0,
        duration: 0,
        maxDuration: 300,
        wires: [[`done${n}`]],
      },
      { id: `done${n}`, type: "helper" },
    ];
  }

  it("60 s of wall clock record 60 s (+-2 %), a resolution switch is followed, a slow viewer resumes at keyframes", async () => {
    const dirs = { wall: path.join(tmp, "wall"), sw: path.join(tmp, "switch") };
    await helper.load(
      [sourceNode, connectNode, streamOut, transcodeNode],
      [
        ...camera("wall", "h264aac", dirs.wall),
        ...camera("sw", "switch", dirs.sw),
        ...camera("busy", "busy", path.join(tmp, "busy")),
      ],
    );
    const recs = { wall: [], sw: [], busy: [] };
    for (const k of Object.keys(recs))
      helper.getNode(`done${k}`).on("input", (m) => recs[k].push(m.recording));
    await until(async () => (await status(web, "/cam/wall")).fmp4.init, 30000, "the camera's init");
    await until(async () => (await status(web, "/cam/sw")).fmp4.segments > 0, 30000, "/switch segments");
    await until(async () => (await status(web, "/cam/busy")).fmp4.init, 30000, "the busy camera's init");

    // 4. The wall-clock recording: 60 s from now, the other checks run meanwhile.
    const startedAt = Date.now();
    helper.getNode("recwall").receive({ action: "start", duration: 60 });

    // 5. A viewer reading 60 kB/s of a camera sending ~1 MB/s: it falls behind, whole GOPs are skipped.
    const slowFile = path.join(tmp, "slow.mp4");
    const slow = spawn("curl", [
      ...["-s", "--limit-rate", "60k", "--max-time", "30", "-o", slowFile],
      web.url("/cam/busy/stream.mp4"),
    ]);
    const slowDone = new Promise((resolve) => slow.on("close", resolve));

    // 3. /switch changes its size: the source's ffmpeg restarts once, a new init goes downstream.
    helper.getNode("recsw").receive({ action: "start", duration: 60 });
    const before = await status(web, "/cam/sw");
    const first = await lastHlsSegment(web, "/cam/sw", path.join(tmp, "sw-before.mp4"));
    assert.strictEqual(videoOf(await probe(first)).width, 320);
    await wait(3000);
    await server.resize(640, 360);
    await until(
      async () => (await status(web, "/cam/sw")).fmp4.restarts > before.fmp4.restarts,
      30000,
      "a new init on /cam/sw",
    );
    let after;
    await until(
      async () => {
        const f = await lastHlsSegment(web, "/cam/sw", path.join(tmp, "sw-after.mp4"));
        after = f && videoOf(await probe(f));
        return after?.width === 640;
      },
      20000,
      "HLS serves the new size",
    );
    assert.strictEqual(after.height, 360);
    await wait(4000);
    helper.getNode("recsw").receive({ action: "stop" });
    await until(() => recs.sw.length >= 2, 20000, "two parts of the /switch recording");
    assert.strictEqual(recs.sw[0].reason, "newStream", "the old size's part closes at the new init");
    const part2 = videoOf(await probe(recs.sw[1].file));
    assert.deepStrictEqual([part2.width, part2.height], [640, 360], "the next part has the new size");
    assert.strictEqual(videoOf(await probe(recs.sw[0].file)).width, 320);
    await wait(3000);
    const restarts = (await status(web, "/cam/sw")).fmp4.restarts - before.fmp4.restarts;
    assert.strictEqual(restarts, 1, "one restart, no restart loop");

    // 5, checked: the slow viewer skipped, and what it got decodes without an error.
    const skipped = (await status(web, "/cam/busy")).framesSkipped;
    await slowDone;
    const body = fs.readFileSync(slowFile);
    const boxes = h.mp4Boxes(body);
    // curl stopped mid-fragment: keep what ends with a whole mdat.
    const lastMdat = boxes.filter((b) => b.type === "mdat").pop();
    const whole = body.subarray(0, lastMdat ? lastMdat.end : 0);
    fs.writeFileSync(slowFile, whole);
    console.log(
      `      slow viewer: ${body.length} bytes, ${boxes.filter((b) => b.type === "moof").length} fragments, server skipped ${skipped}`,
    );
    assert.ok(skipped > 0, "the slow viewer fell behind: fragments were skipped");
    // Where its timeline jumps (GOPs skipped), it goes on with a keyframe fragment.
    const frags = [];
    new Mp4FragmentSplitter({ init: () => {}, fragment: (d, info) => frags.push(info) }).push(whole);
    let jumps = 0;
    for (let i = 1; i < frags.length; i++) {
      if (frags[i].startSec - (frags[i - 1].startSec + frags[i - 1].durationSec) < 0.1) continue;
      jumps++;
      assert.ok(frags[i].keyframe, `after a jump at ${frags[i].startSec} s it resumes on a keyframe`);
    }
    // (The skips counted may also fall after its last whole fragment: the jumps are logged, not required.)
    console.log(`      slow viewer: ${frags.length} whole fragments, ${jumps} jumps in its timeline`);
    assert.ok(frags[0].keyframe, "it starts on a keyframe");
    const decode = await h.run(ffmpeg, ["-v", "error", "-i", slowFile, "-f", "null", "-"], {
      timeout: 30000,
    });
    assert.strictEqual(decode.stderr.toString().trim(), "", "what the slow viewer got decodes cleanly");

    // 4, checked: the recording plays as long as the wall clock it covered.
    await until(
      () => recs.wall.length >= 1,
      Math.max(5000, startedAt + 75000 - Date.now()),
      "the 60 s recording",
    );
    const rec = recs.wall[0];
    const meta = await probe(rec.file);
    const plays = Number(meta.format.duration);
    const wall = (rec.end - rec.start) / 1000;
    console.log(
      `      60 s of wall clock: the file plays ${plays.toFixed(2)} s (msg.recording ${wall.toFixed(2)} s)`,
    );
    assert.strictEqual(rec.reason, "duration");
    assert.ok(Math.abs(plays - wall) <= 0.02 * 60, `plays ${plays} s for ${wall} s of wall clock`);
    // The clip starts at the keyframe at or before the trigger (one GOP = 1 s) and ends at the first fragment after.
    assert.ok(plays >= 60 * 0.98 && plays <= 60 * 1.02 + 1, `plays ${plays} s, want 60 s (+ at most a GOP)`);
  });
});
