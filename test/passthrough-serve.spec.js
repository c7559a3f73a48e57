// http-stream-out fed with compressed video straight from camera connect (msg.mp4 with keyframe, initId,
// cameraId; no transcode node): ~0.25 s fragments from real ffmpeg (libx264 -g 15, -frag_duration 250000
// +frag_keyframe, with AAC), split by the Mp4FragmentSplitter. HLS segments are whole GOPs byte for byte,
// stream.mp4 joiners start on the current GOP, a paused reader resumes on a keyframe, snapshots and MJPEG
// come from the video decoded (only while wanted), and nothing is left running after a redeploy.
"use strict";
const assert = require("assert");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const helper = require("node-red-node-test-helper");
const streamOutNode = require("../dist/nodes/http-stream-out.js");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const h = require("./lib/stream-out-helpers");
const { processes, wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

/** Encodes a clip with ffmpeg and splits it as a camera source would: { init, codec, width, height, fragments }. */
async function makeClip({
  seconds = 4,
  size = "320x240",
  filter = "",
  video = ["-c:v", "libx264"],
  audio = true,
}) {
  const args = ["-v", "error", "-f", "lavfi", "-i", `testsrc2=size=${size}:rate=15${filter}`];
  if (audio) args.push("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100");
  args.push("-t", String(seconds), ...video, "-g", "15", "-pix_fmt", "yuv420p");
  if (audio) args.push("-c:a", "aac");
  args.push(...["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe"]);
  args.push("-frag_duration", "250000", "pipe:1");
  const r = await h.run(h.ffmpegPath, args, { timeout: 60000 });
  if (r.code !== 0) throw new Error(r.stderr);
  const clip = { fragments: [] };
  const splitter = new Mp4FragmentSplitter({
    init: (data, info) => Object.assign(clip, { init: data, ...info }),
    fragment: (data, info) =>
      clip.fragments.push({ data, keyframe: info.keyframe, duration: info.durationSec }),
    problem: (m) => {
      throw new Error(m);
    },
  });
  splitter.push(r.stdout);
  return clip;
}

/** The GOPs of a clip: arrays of fragment indexes, each starting on a keyframe fragment. */
function gopsOf(clip) {
  const gops = [];
  clip.fragments.forEach((f, i) => {
    if (f.keyframe || gops.length === 0) gops.push([]);
    gops[gops.length - 1].push(i);
  });
  return gops;
}

const hash = (b) => crypto.createHash("sha1").update(b).digest("hex");

/** Our own ffmpeg children whose command line has all of `words`. */
function ourFfmpeg(...words) {
  return processes(
    (p) => p.ppid === process.pid && p.state !== "Z" && words.every((w) => p.cmd.join(" ").includes(w)),
  );
}

describe("http-stream-out fed with compressed video (passthrough)", function () {
  this.timeout(60000);
  const web = h.httpNodeServer();
  const streamOut = web.wrap(streamOutNode);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-passthrough-"));
  const open = [];
  let clip;
  let gops;

  before(async function () {
    await web.listen();
    clip = await makeClip({ seconds: 4 });
    gops = gopsOf(clip);
  });
  after(async function () {
    await web.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  afterEach(async function () {
    while (open.length) open.pop().destroy();
    await helper.unload();
    await h.until(() => ourFfmpeg("pipe:0").length === 0, "no decoder ffmpeg after the node closed");
  });

  async function load(props = {}) {
    const flow = [{ id: "out", type: "http-stream-out", path: "/cam", wires: [[]], ...props }];
    await helper.load(streamOut, flow, {});
    return helper.getNode("out");
  }

  const t0 = Date.now();
  function sendInit(n, c = clip, initId = 1) {
    n.receive({
      payload: c.init,
      topic: "front door",
      mp4: {
        type: "init",
        seq: 0,
        duration: 0,
        time: t0,
        codec: c.codec,
        width: c.width,
        height: c.height,
        initId,
        cameraId: "cam1",
      },
    });
  }
  function sendFragment(n, i, c = clip, initId = 1) {
    const f = c.fragments[i];
    n.receive({
      payload: f.data,
      topic: "front door",
      mp4: {
        type: "fragment",
        seq: i + 1,
        duration: f.duration,
        time: t0 + i * 250,
        codec: c.codec,
        width: c.width,
        height: c.height,
        keyframe: f.keyframe,
        initId,
        cameraId: "cam1",
      },
    });
  }

  /** Frames of the file as ffprobe reads them: [{ key, type }] of the video stream. */
  async function probeFrames(file) {
    const r = await h.run(h.ffprobePath, [
      ...["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame,pict_type"],
      ...["-of", "csv=p=0", file],
    ]);
    assert.strictEqual(r.code, 0, r.stderr);
    return r.stdout
      .toString()
      .trim()
      .split("\n")
      .filter((l) => /^[01],/.test(l))
      .map((l) => {
        const [key, type] = l.split(",");
        return { key: key === "1", type };
      });
  }

  /** ffmpeg decodes the whole file: resolves its error output (empty = no decode errors). */
  async function decodeErrors(file, extra = []) {
    const args = ["-v", process.env.V || "error", "-i", file, ...extra, "-f", "null", "-"];
    const r = await h.run(h.ffmpegPath, args, { timeout: 20000 });
    assert.strictEqual(r.code, 0, r.stderr);
    return r.stderr.trim();
  }

  /** GET url, reading until the response ends; `pause` holds the socket unread until resume() is called. */
  function stream(url, { pause = false } = {}) {
    const chunks = [];
    let res;
    let resumed = !pause;
    const done = new Promise((resolve, reject) => {
      const req = http.get(url, { agent: false }, (r) => {
        res = r;
        if (pause) r.pause();
        r.on("data", (d) => chunks.push(d));
        r.on("end", resolve);
        r.on("error", reject);
        r.on("close", resolve);
      });
      req.on("error", reject);
      open.push(req);
    });
    return {
      done,
      bytes: () => chunks.reduce((n, c) => n + c.length, 0),
      body: () => Buffer.concat(chunks),
      headers: () => res && res.headers,
      resume: () => {
        resumed = true;
        res.resume();
      },
      get resumed() {
        return resumed;
      },
    };
  }

  /** Splits a progressive fMP4 body into its init and moof+mdat fragments. */
  function splitBody(body) {
    const boxes = h.mp4Boxes(body);
    const first = boxes.findIndex((b) => b.type === "moof");
    const frags = [];
    for (let i = first; i < boxes.length - 1; i++)
      if (boxes[i].type === "moof") frags.push(body.subarray(boxes[i].start, boxes[i + 1].end));
    return { init: body.subarray(0, boxes[first].start), frags };
  }

  it("the clip is what a camera sends: ~0.25 s fragments, only some start with a keyframe, audio inside", async function () {
    assert.match(clip.codec, /^avc1\./);
    assert.ok(clip.fragments.length >= 12, `${clip.fragments.length} fragments`);
    assert.ok(
      clip.fragments.some((f) => !f.keyframe),
      "some fragments do not start with a keyframe",
    );
    // (The last may be a lone fragment: the audio's tail.)
    const whole = gops.slice(0, -1);
    assert.ok(whole.length >= 3 && whole.every((g) => g.length > 1), `GOPs ${JSON.stringify(gops)}`);
    const file = path.join(tmp, "clip.mp4");
    fs.writeFileSync(file, Buffer.concat([clip.init, ...clip.fragments.map((f) => f.data)]));
    const r = await h.run(h.ffprobePath, [
      "-v",
      "error",
      "-show_entries",
      "stream=codec_type",
      "-of",
      "csv=p=0",
      file,
    ]);
    assert.deepStrictEqual(r.stdout.toString().trim().split("\n").sort(), ["audio", "video"]);
  });

  it("HLS segments are whole GOPs, byte for byte the fragments, each starting on a keyframe", async function () {
    const n = await load();
    sendInit(n);
    clip.fragments.forEach((_, i) => sendFragment(n, i));
    const r = await h.request(web.url("/cam/index.m3u8"));
    assert.strictEqual(r.status, 200);
    const pl = r.body.toString();
    const segs = [...pl.matchAll(/^seg-(\d+)\.m4s$/gm)].map((m) => Number(m[1]));
    // The last GOP is still open (its end comes with the next keyframe): it is not listed yet.
    assert.deepStrictEqual(
      segs,
      gops.slice(0, -1).map((_, i) => i),
    );
    assert.match(pl, /#EXT-X-TARGETDURATION:1\n/);
    assert.match(pl, /#EXT-X-PROGRAM-DATE-TIME:/);
    for (const m of pl.matchAll(/#EXTINF:([\d.]+),/g)) assert.ok(Math.abs(Number(m[1]) - 1) < 0.1, m[0]);
    const init = await h.request(web.url("/cam/init.mp4?v=1"));
    assert.ok(init.body.equals(clip.init), "init.mp4 is the camera's init");
    for (const seq of segs) {
      const seg = await h.request(web.url(`/cam/seg-${seq}.m4s`));
      assert.strictEqual(seg.status, 200);
      const expected = Buffer.concat(gops[seq].map((i) => clip.fragments[i].data));
      assert.ok(seg.body.equals(expected), `seg-${seq} is fragments ${gops[seq]} concatenated`);
      const file = path.join(tmp, `seg-${seq}.mp4`);
      fs.writeFileSync(file, Buffer.concat([init.body, seg.body]));
      const frames = await probeFrames(file);
      assert.strictEqual(frames.length, 15, `seg-${seq}: one GOP of 15 frames: ${JSON.stringify(frames)}`);
      assert.ok(frames[0].key && frames[0].type === "I", `seg-${seq} starts on a keyframe`);
      assert.strictEqual(frames.filter((f) => f.key).length, 1, `seg-${seq}: one keyframe`);
    }
    // The next keyframe closes the open GOP into a segment.
    sendFragment(n, gops[gops.length - 1][0]);
    const after = (await h.request(web.url("/cam/index.m3u8"))).body.toString();
    assert.match(after, new RegExp(`^seg-${gops.length - 1}\\.m4s$`, "m"));
    // A live playlist never ends: two GOPs' worth of frames read through HLS.
    assert.strictEqual(await decodeErrors(web.url("/cam/index.m3u8"), ["-frames:v", "10"]), "");
  });

  it("stream.mp4: a joiner gets the init and the current GOP, then live, and ffmpeg decodes it without errors", async function () {
    const n = await load();
    sendInit(n);
    // Two fragments into the second GOP.
    const upTo = gops[1][1];
    for (let i = 0; i <= upTo; i++) sendFragment(n, i);
    const s = stream(web.url("/cam/stream.mp4"));
    const expectedFirst = [clip.init, ...[gops[1][0], gops[1][1]].map((i) => clip.fragments[i].data)];
    const firstBytes = expectedFirst.reduce((a, b) => a + b.length, 0);
    await h.until(() => s.bytes() >= firstBytes, "init and the current GOP");
    assert.strictEqual(s.headers()["content-type"], "video/mp4");
    assert.ok(s.body().equals(Buffer.concat(expectedFirst)), "init, then the current GOP from its keyframe");
    // Live, as a camera sends: each fragment after the one before was read (a burst of whole GOPs
    // faster than the socket drains is a viewer behind, which skips GOPs: the paused-reader case).
    let expected = firstBytes;
    for (let i = upTo + 1; i < clip.fragments.length; i++) {
      sendFragment(n, i);
      expected += clip.fragments[i].data.length;
      await h.until(() => s.bytes() >= expected, `fragment ${i}`);
    }
    const file = path.join(tmp, "joined.mp4");
    fs.writeFileSync(file, s.body());
    assert.strictEqual(await decodeErrors(file), "");
    const frames = await probeFrames(file);
    assert.ok(frames[0].key, "starts on a keyframe");
    const wholeFrom1 = gops.slice(1).filter((g) => g.length > 1).length;
    assert.strictEqual(frames.length, 15 * wholeFrom1, "every frame from the joined GOP on");
    // A new init (the camera's SPS changed) ends progressive viewers, as before.
    sendInit(n, clip, 2);
    await s.done;
    // The same init announced again (same initId) is not a restart.
    const s2 = stream(web.url("/cam/stream.mp4"));
    await h.until(() => s2.bytes() >= clip.init.length, "the init");
    sendInit(n, clip, 2);
    sendFragment(n, 0, clip, 2);
    await h.until(() => s2.bytes() >= clip.init.length + clip.fragments[0].data.length, "the fragment");
    const stats = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.strictEqual(stats.fmp4.restarts, 1);
  });

  it("a paused reader skips whole GOPs and resumes on a keyframe: ffmpeg decodes what it got without errors", async function () {
    this.timeout(120000);
    // Big fragments (~2 MB): enough to fill the socket buffers of a reader that does not read.
    const big = await makeClip({
      seconds: 4,
      size: "640x360",
      filter: ",noise=alls=100:allf=t",
      audio: false,
      video: ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "4"],
    });
    const bigGops = gopsOf(big);
    const index = new Map(big.fragments.map((f, i) => [hash(f.data), i]));
    const n = await load({ stallTimeout: 60 });
    sendInit(n, big);
    sendFragment(n, 0, big);
    const s = stream(web.url("/cam/stream.mp4"), { pause: true });
    await h.until(async () => {
      const st = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
      return st.viewers.length === 1;
    }, "the viewer");
    for (let i = 1; i < big.fragments.length; i++) sendFragment(n, i, big);
    const st = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.ok(st.framesSkipped > 0, `the paused reader skipped fragments (${JSON.stringify(st.viewers)})`);
    s.resume();
    await h.until(async () => {
      const v = JSON.parse((await h.request(web.url("/cam/status.json"))).body).viewers[0];
      return v && !v.pending && v.buffered === 0;
    }, "the viewer caught up");
    // A new init ends the response once everything was written: the body is complete.
    sendInit(n, big, 2);
    await s.done;
    const { init, frags } = splitBody(s.body());
    assert.ok(init.equals(big.init));
    const got = frags.map((f) => index.get(hash(f)));
    assert.ok(
      got.every((i) => i !== undefined),
      "every fragment arrived whole",
    );
    assert.strictEqual(got[0], 0);
    let gaps = 0;
    for (let k = 1; k < got.length; k++) {
      assert.ok(got[k] > got[k - 1], `in order: ${got}`);
      if (got[k] !== got[k - 1] + 1) {
        gaps++;
        assert.ok(big.fragments[got[k]].keyframe, `after a gap it resumes on a keyframe fragment: ${got}`);
        // What was skipped is the rest of a GOP and whole GOPs, never a fragment alone in the middle.
        const gopOf = (i) => bigGops.findIndex((g) => g.includes(i));
        assert.ok(gopOf(got[k]) > gopOf(got[k - 1]), `${got}`);
      }
    }
    assert.ok(gaps > 0, `some GOPs were skipped: ${got}`);
    const file = path.join(tmp, "slow.mp4");
    fs.writeFileSync(file, s.body());
    assert.strictEqual(await decodeErrors(file), "");
  });

  it("snapshot.jpg on a video-only wire: the latest keyframe decoded, the right size, one decode shared", async function () {
    const n = await load();
    sendInit(n);
    for (let i = 0; i < gops[1][2]; i++) sendFragment(n, i);
    const [a, b] = await Promise.all([
      h.request(web.url("/cam/snapshot.jpg")),
      h.request(web.url("/cam/snapshot.jpg")),
    ]);
    for (const r of [a, b]) {
      assert.strictEqual(r.status, 200, r.body.toString());
      assert.strictEqual(r.headers["content-type"], "image/jpeg");
      assert.strictEqual(r.body[0], 0xff);
      assert.strictEqual(r.body[1], 0xd8);
      assert.deepStrictEqual(readJpegSize(r.body), { width: 320, height: 240 });
    }
    assert.strictEqual(a.headers["x-timestamp"], b.headers["x-timestamp"], "both from one decode");
    assert.ok(a.body.equals(b.body));
    const c = await h.request(web.url("/cam/snapshot.jpg"));
    assert.strictEqual(c.headers["x-timestamp"], a.headers["x-timestamp"], "cached for about a second");
    await wait(1100);
    const d = await h.request(web.url("/cam/snapshot.jpg"));
    assert.notStrictEqual(d.headers["x-timestamp"], a.headers["x-timestamp"], "decoded again later");
    // ?wait=1: the next keyframe decoded.
    const waiting = h.request(web.url("/cam/snapshot.jpg?wait=1"));
    await wait(100);
    for (let i = gops[1][2]; i <= gops[2][0]; i++) sendFragment(n, i);
    const w = await waiting;
    assert.strictEqual(w.status, 200);
    assert.deepStrictEqual(readJpegSize(w.body), { width: 320, height: 240 });
    const stats = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.deepStrictEqual(
      { ...stats.video, fragmentsIn: 0, keyframesIn: 0, gopFragments: 0 },
      {
        codec: clip.codec,
        format: "H.264",
        width: 320,
        height: 240,
        passthrough: true,
        fragmentsIn: 0,
        keyframesIn: 0,
        gopFragments: 0,
        jpegSource: "decoded",
        decoderRunning: false,
      },
    );
    assert.strictEqual(stats.upstream, "live");
    assert.strictEqual(stats.camera, "front door");
    const metrics = (await h.request(web.url("/cam/metrics"))).body.toString();
    assert.match(
      metrics,
      /camrelay_video_info\{path="\/cam",codec="avc1\.[0-9a-f]+(,mp4a\.40\.\d+)?",format="H\.264",width="320",height="240",passthrough="true"\} 1/,
    );
    assert.match(metrics, /camrelay_video_decoder_running\{path="\/cam"\} 0/);
  });

  it("snapshots use JPEG frames when the wire carries them too", async function () {
    const n = await load();
    sendInit(n);
    for (let i = 0; i < 4; i++) sendFragment(n, i);
    const jpeg = (await h.makeJpegs({ count: 1, size: "160x120" }))[0];
    n.receive({ payload: jpeg, topic: "front door" });
    const r = await h.request(web.url("/cam/snapshot.jpg"));
    assert.ok(r.body.equals(jpeg), "the wire's JPEG, not a decoded picture");
    const stats = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.strictEqual(stats.video.jpegSource, "frames");
  });

  it("an MJPEG viewer on a video-only wire starts one capped decoder; it stops when the last viewer leaves", async function () {
    const long = await makeClip({ seconds: 8 });
    const n = await load({ mjpegFps: 4 });
    sendInit(n, long);
    let next = 0;
    const feed = setInterval(() => {
      if (next < long.fragments.length) sendFragment(n, next++, long);
    }, 125);
    try {
      await h.until(() => next > 5, "some fragments");
      assert.deepStrictEqual(ourFfmpeg("pipe:0", "image2pipe"), [], "no decoder without viewers");
      const viewers = [await h.openMjpeg(web.url("/cam/")), await h.openMjpeg(web.url("/cam/"))];
      await h.until(
        () => viewers.every((v) => v.parts.filter((p) => readJpegSize(p.body)?.width === 320).length >= 3),
        "decoded pictures for both viewers",
        20000,
      );
      const decoders = ourFfmpeg("pipe:0", "image2pipe");
      assert.strictEqual(decoders.length, 1, "one decoder for every viewer");
      assert.ok(decoders[0].cmd.join(" ").includes("select="), "capped rate");
      // A snapshot while the decoder runs is its latest picture: no decode of its own.
      const snap = await h.request(web.url("/cam/snapshot.jpg"));
      assert.strictEqual(snap.status, 200);
      assert.ok(
        viewers[0].parts.some((p) => p.body.equals(snap.body)),
        "the snapshot is a picture the MJPEG viewers got",
      );
      const stats = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
      assert.strictEqual(stats.video.decoderRunning, true);
      viewers[0].close();
      await wait(300);
      assert.strictEqual(ourFfmpeg("pipe:0", "image2pipe").length, 1, "still one viewer: still decoding");
      viewers[1].close();
      await h.until(() => ourFfmpeg("pipe:0", "image2pipe").length === 0, "the decoder stopped");
      // A viewer again, then a redeploy while it watches: no ffmpeg left.
      const again = await h.openMjpeg(web.url("/cam/"));
      open.push(again.req);
      await h.until(() => ourFfmpeg("pipe:0", "image2pipe").length === 1, "the decoder again");
    } finally {
      clearInterval(feed);
    }
    await helper.unload();
    await h.until(() => ourFfmpeg("pipe:0").length === 0, "no ffmpeg after the redeploy");
  });

  it("H.265 (hvc1) is served as it came: HLS byte for byte, stream.mp4 decodes", async function () {
    const hevc = await makeClip({
      seconds: 3,
      video: [
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-tag:v",
        "hvc1",
        "-x265-params",
        "log-level=error:keyint=15:min-keyint=15:scenecut=0:bframes=0",
      ],
    }).catch((err) => {
      if (/Unknown encoder|libx265/.test(err.message)) return undefined;
      throw err;
    });
    if (!hevc) this.skip();
    assert.match(hevc.codec, /^hvc1/);
    const hg = gopsOf(hevc);
    const n = await load();
    sendInit(n, hevc);
    const s = stream(web.url("/cam/stream.mp4"));
    await h.until(() => s.bytes() >= hevc.init.length, "the init");
    let total = hevc.init.length;
    for (let i = 0; i < hevc.fragments.length; i++) {
      sendFragment(n, i, hevc);
      total += hevc.fragments[i].data.length;
      await h.until(() => s.bytes() >= total, `fragment ${i}`);
    }
    const seg = await h.request(web.url("/cam/seg-0.m4s"));
    assert.ok(seg.body.equals(Buffer.concat(hg[0].map((i) => hevc.fragments[i].data))));
    const file = path.join(tmp, "hevc.mp4");
    fs.writeFileSync(file, s.body());
    assert.strictEqual(await decodeErrors(file), "");
    const stats = JSON.parse((await h.request(web.url("/cam/status.json"))).body);
    assert.strictEqual(stats.video.format, "H.265");
  });
});

describe("StreamViewer with fMP4 fragments: whole GOPs or nothing", function () {
  const { StreamViewer } = require("../dist/nodes/lib/serve/viewer");
  const { EventEmitter } = require("events");

  /** A response whose socket accepts writes while `free`, else reports busy until drain(). */
  function fakeRes() {
    const res = new EventEmitter();
    res.free = true;
    res.written = [];
    res.writableLength = 0;
    res.write = (b) => {
      res.written.push(b.toString());
      return res.free;
    };
    res.drain = () => {
      res.free = true;
      res.emit("drain");
    };
    res.end = () => undefined;
    res.destroy = () => undefined;
    return res;
  }
  const totals = () => ({ framesSent: 0, framesSkipped: 0, bytesOut: 0 });
  const pkt = (name) => Buffer.from(name);

  it("a busy socket queues the GOP's fragments in order; a newer keyframe replaces a queued GOP", function () {
    const res = fakeRes();
    const v = new StreamViewer(res, "mp4", "a", 0, totals(), 0, () => 0);
    res.free = false;
    v.offer(pkt("K1"), true); // written, socket now busy
    v.offer(pkt("p1a"), false);
    v.offer(pkt("p1b"), false);
    res.drain();
    assert.deepStrictEqual(res.written, ["K1", "p1a", "p1b"], "nothing lost while it keeps up");
    res.free = false;
    v.offer(pkt("K2"), true);
    v.offer(pkt("p2a"), false);
    v.offer(pkt("K3"), true); // queue [p2a] holds no keyframe: kept
    v.offer(pkt("p3a"), false);
    v.offer(pkt("K4"), true); // queue [p2a, K3, p3a] holds a keyframe: a GOP behind, dropped
    v.offer(pkt("p4a"), false);
    res.drain();
    assert.deepStrictEqual(res.written.slice(3), ["K2", "K4", "p4a"]);
    assert.strictEqual(v.framesSkipped, 3);
  });

  it("a full queue or an over-budget fragment skips to the next keyframe, never one fragment alone", function () {
    const res = fakeRes();
    const v = new StreamViewer(res, "mp4", "a", 0, totals(), 0, () => 0, 10);
    res.free = false;
    v.offer(pkt("K1"), true);
    v.offer(pkt("p1a-6"), false);
    v.offer(pkt("p1b-6"), false); // over 10 bytes queued: queue dropped, wait for a keyframe
    v.offer(pkt("p1c"), false);
    res.drain();
    v.offer(pkt("p1d"), false);
    v.offer(pkt("K2"), true);
    v.offer(pkt("p2a"), false);
    assert.deepStrictEqual(res.written, ["K1", "K2", "p2a"]);
    // maxKbps: 1000 bytes/s, clock frozen: the budget runs out and stays out until time passes.
    let now = 0;
    const res2 = fakeRes();
    const capped = new StreamViewer(res2, "mp4", "b", 0, totals(), 1000, () => now);
    capped.offer(Buffer.alloc(900, 1), true);
    capped.offer(Buffer.alloc(900, 2), false); // tokens 100: sent, now in debt
    capped.offer(Buffer.alloc(10, 3), false); // over budget: skipped...
    now = 5000;
    capped.offer(Buffer.alloc(10, 4), false); // ...and so is the rest of that GOP, budget or not
    capped.offer(Buffer.alloc(10, 5), true);
    assert.deepStrictEqual(
      res2.written.map((s) => s.length),
      [900, 900, 10],
    );
    assert.strictEqual(capped.framesSkipped, 2);
  });

  it("JPEG parts (all keys) keep one pending part, newest wins, as before", function () {
    const res = fakeRes();
    const v = new StreamViewer(res, "mjpeg", "a", 0, totals(), 0, () => 0);
    res.free = false;
    v.offer(pkt("J1"));
    v.offer(pkt("J2"));
    v.offer(pkt("J3"));
    v.offer(pkt("J4"));
    res.drain();
    assert.deepStrictEqual(res.written, ["J1", "J4"]);
    assert.strictEqual(v.framesSkipped, 2);
  });
});
