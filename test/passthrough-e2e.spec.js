// Issue 13 end to end: a real RTSP camera (GStreamer's RTSP server, test/lib/rtsp-server.js) read once by a
// camera-source with video=auto, camera connect output=video straight into http stream out (no transcode node)
// and into an ffmpeg transcode mp4 recording. HLS and stream.mp4 are the camera's own video (codec, profile,
// size by ffprobe), nothing encodes H.264, MJPEG and snapshots are decoded on demand, the recording with
// pre-roll 3 s and duration 6 s lasts 9 s plus at most a GOP and starts on a keyframe, audio stays AAC, and a
// camera restart and an H.265 camera are handled without a human.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const helper = require("node-red-node-test-helper");
const sourceNode = require("../dist/nodes/camera-source.js");
const connectNode = require("../dist/nodes/camera-connect.js");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const h = require("./lib/stream-out-helpers");
const { rtspServer } = require("./lib/rtsp-server");
const { processes, until, wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

/** ffprobe's streams of a file or URL. */
async function probe(input) {
  const r = await h.run(h.ffprobePath, ["-v", "error", "-show_streams", "-of", "json", input], {
    timeout: 30000,
  });
  if (r.code !== 0) throw new Error(`ffprobe ${input}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()).streams;
}

/** Our process tree's command lines. */
function ourTree() {
  const all = processes();
  const mine = new Set([process.pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of all) {
      if (!mine.has(p.pid) && mine.has(p.ppid) && p.state !== "Z") {
        mine.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => p.pid !== process.pid && mine.has(p.pid)).map((p) => p.cmd.join(" "));
}

/** GET as a Buffer, reading at most `ms` of a stream. */
function fetchFor(url, ms) {
  return new Promise((resolve, reject) => {
    const req = require("http").get(url, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      const done = () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) });
      res.on("end", done);
      setTimeout(() => {
        req.destroy();
        done();
      }, ms);
    });
    req.on("error", reject);
  });
}

/** Waits for the HLS playlist of /cam/front to list a segment; writes its init + first segment to `file`. */
async function firstHlsSegment(web, file, ms) {
  let playlist = "";
  await until(
    async () => {
      const r = await fetchFor(web.url("/cam/front/index.m3u8"), 2000);
      playlist = r.body.toString();
      return r.status === 200 && /seg-\d+\.m4s/.test(playlist);
    },
    ms,
    "HLS playlist with a segment",
  );
  const init = await fetchFor(web.url(`/cam/front/${playlist.match(/URI="([^"]+)"/)[1]}`), 2000);
  const seg = await fetchFor(web.url(`/cam/front/${playlist.match(/(seg-\d+\.m4s)/)[1]}`), 2000);
  fs.writeFileSync(file, Buffer.concat([init.body, seg.body]));
  return file;
}

describe("compressed video end to end (real RTSP camera, issue 13)", function () {
  this.timeout(120000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-e2e-"));
  let server;

  before(async function () {
    await web.listen();
    server = await rtspServer({ width: 640, height: 360, fps: 15, gop: 15 });
  });
  after(async function () {
    await server?.stop();
    await web.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(async function () {
    await helper.unload();
    await until(() => !ourTree().some((c) => /ffmpeg/.test(c)), 10000, "no ffmpeg after the flow closed");
  });

  function flow(mount, dir) {
    return [
      {
        id: "src",
        type: "camera-source",
        name: "front",
        protocol: "ffmpeg",
        url: server.url(mount),
        video: "auto",
        audio: true,
        fps: 0,
        linger: 0,
      },
      { id: "conn", type: "camera-connect", camera: "src", output: "video", wires: [["out", "rec"], []] },
      { id: "out", type: "http-stream-out", path: "/cam/front", wires: [[]] },
      {
        id: "rec",
        type: "ffmpeg-transcode",
        preset: "mp4",
        directory: dir,
        preRoll: 3,
        postRoll: 0,
        duration: 0,
        maxDuration: 300,
        wires: [["done"]],
      },
      { id: "done", type: "helper" },
    ];
  }

  it("H.264 + AAC: one camera connection for HLS, stream.mp4, MJPEG, snapshot and a recording, all copied", async () => {
    const dir = path.join(tmp, "h264");
    await helper.load([sourceNode, connectNode, streamOut, transcodeNode], flow("h264aac", dir));
    const recordings = [];
    helper.getNode("done").on("input", (m) => recordings.push(m));
    const camera = await probe(server.url("h264aac"));
    const cv = camera.find((s) => s.codec_type === "video");

    // HLS: the playlist lists GOP segments; init + segment are the camera's own H.264 and its AAC.
    const hlsFile = await firstHlsSegment(web, path.join(tmp, "hls.mp4"), 30000);
    const hls = await probe(hlsFile);
    const hv = hls.find((s) => s.codec_type === "video");
    assert.deepStrictEqual(
      [hv.codec_name, hv.width, hv.height],
      [cv.codec_name, cv.width, cv.height],
      "HLS carries the camera's video as it is",
    );
    // The bundled 2018 ffprobe names no profile for an init + segment file: read it from the init's avcC
    // (the codec string in status.json, avc1.PPCCLL) instead.
    const status = JSON.parse((await fetchFor(web.url("/cam/front/status.json"), 2000)).body.toString());
    const idc = parseInt(/avc1\.([0-9a-f]{2})/i.exec(JSON.stringify(status))[1], 16);
    const PROFILES = { 66: "Baseline", 77: "Main", 100: "High" };
    assert.ok(cv.profile.includes(PROFILES[idc]), `camera profile ${cv.profile}, init profile_idc ${idc}`);
    if (hv.profile !== undefined) assert.strictEqual(hv.profile, cv.profile);
    assert.strictEqual(hls.find((s) => s.codec_type === "audio")?.codec_name, "aac", "HLS has the AAC");

    // stream.mp4 for 3 s decodes without an error.
    const mp4 = await fetchFor(web.url("/cam/front/stream.mp4"), 3000);
    const mp4File = path.join(tmp, "stream.mp4");
    fs.writeFileSync(mp4File, mp4.body);
    const decode = await h.run(h.ffmpegPath, ["-v", "error", "-i", mp4File, "-f", "null", "-"], {
      timeout: 30000,
    });
    assert.strictEqual(decode.stderr.toString().trim(), "", "stream.mp4 decodes cleanly");
    assert.strictEqual((await probe(mp4File)).find((s) => s.codec_type === "video").codec_name, "h264");

    // snapshot and MJPEG: decoded on demand.
    const snap = await fetchFor(web.url("/cam/front/snapshot.jpg"), 5000);
    assert.strictEqual(snap.status, 200);
    assert.strictEqual(snap.body.readUInt16BE(0), 0xffd8, "snapshot is a JPEG");
    const mjpeg = await fetchFor(web.url("/cam/front"), 3000);
    const parts = mjpeg.body.toString("latin1").split("\xff\xd8").length - 1;
    assert.ok(parts >= 2, `MJPEG viewer got ${parts} pictures`);

    // One connection to the camera; no H.264 encoder anywhere in our tree.
    const tree = ourTree();
    const readers = tree.filter((c) => c.includes(`127.0.0.1:${server.port}`) && !/ffprobe/.test(c));
    assert.strictEqual(readers.length, 1, `one ffmpeg reads the camera: ${readers.join(" / ")}`);
    assert.ok(!tree.some((c) => /libx264|libx265/.test(c)), `no encoder: ${tree.join(" / ")}`);

    // A recording: pre-roll 3 s + duration 6 s = 9 s plus at most one GOP (1 s), starting on a keyframe.
    await wait(1000);
    helper.getNode("rec").receive({ action: "start", duration: 6 });
    await until(() => recordings.length > 0, 30000, "msg.recording");
    const file = recordings[0].recording.file;
    const r = await h.run(
      h.ffprobePath,
      ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file],
      { timeout: 20000 },
    );
    const seconds = Number(r.stdout.toString().trim());
    console.log(`      recording lasts ${seconds.toFixed(2)} s`);
    assert.ok(seconds >= 8.7 && seconds <= 10.4, `recording lasts ${seconds} s, want 9 s + at most a GOP`);
    const streams = await probe(file);
    const rv = streams.find((s) => s.codec_type === "video");
    assert.deepStrictEqual([rv.codec_name, rv.profile, rv.width], [cv.codec_name, cv.profile, cv.width]);
    assert.strictEqual(streams.find((s) => s.codec_type === "audio")?.codec_name, "aac", "audio kept");
    const key = await h.run(
      h.ffprobePath,
      [
        "-v",
        "error",
        "-select_streams",
        "v",
        "-show_entries",
        "frame=key_frame",
        "-read_intervals",
        "%+#1",
        "-of",
        "csv=p=0",
        file,
      ],
      { timeout: 20000 },
    );
    assert.strictEqual(key.stdout.toString().trim().split("\n")[0], "1", "the clip starts on a keyframe");
  });

  it("a camera restart is survived: HLS goes on with new segments, without a human", async () => {
    await helper.load(
      [sourceNode, connectNode, streamOut, transcodeNode],
      flow("h264aac", path.join(tmp, "r")),
    );
    const seqOf = async () => {
      const r = await fetchFor(web.url("/cam/front/index.m3u8"), 2000);
      const all = [...r.body.toString().matchAll(/seg-(\d+)\.m4s/g)].map((m) => Number(m[1]));
      return all.length ? Math.max(...all) : -1;
    };
    await until(async () => (await seqOf()) >= 1, 30000, "segments before the restart");
    await server.restart({ downMs: 1500 });
    const before = await seqOf();
    await until(async () => (await seqOf()) >= before + 2, 60000, "new segments after the restart");
  });

  it("H.265 + AAC is passed through too (hvc1/hev1 in the init, no encoder)", async () => {
    await helper.load(
      [sourceNode, connectNode, streamOut, transcodeNode],
      flow("h265aac", path.join(tmp, "x")),
    );
    const file = await firstHlsSegment(web, path.join(tmp, "hevc.mp4"), 40000);
    const streams = await probe(file);
    assert.strictEqual(streams.find((s) => s.codec_type === "video").codec_name, "hevc");
    const status = JSON.parse((await fetchFor(web.url("/cam/front/status.json"), 2000)).body.toString());
    assert.match(JSON.stringify(status), /hvc1|hev1/, "status names the H.265 codec");
    assert.ok(!ourTree().some((c) => /libx264|libx265/.test(c)), "no encoder");
  });
});
