"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const { FfmpegSource, classifyFfmpegFailure } = require("../dist/nodes/lib/sources/ffmpeg-source");
const { urlWithCredentials } = require("../dist/nodes/lib/credentials");

const { FFMPEG, alive, waitGone, freePort } = require("./lib/transcode-helpers");
const { wait } = require("./lib/toolkit");

function makeSource(overrides) {
  return new FfmpegSource({
    name: "cam",
    url: "",
    fps: 0,
    maxFrameBytes: 4 << 20,
    options: {},
    ...overrides,
  });
}

/** Runs a source until it closes; resolves with what it saw. */
function runToClose(source, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const seen = { frames: [], connectedBeforeFrame: false, connected: false, warnings: [] };
    const timer = setTimeout(() => {
      source.stop();
      reject(new Error("source did not close in time"));
    }, timeoutMs);
    source.on("connected", () => {
      seen.connected = true;
      seen.connectedBeforeFrame = seen.frames.length === 0;
    });
    source.on("frame", ({ data: jpeg, width, height }) => seen.frames.push({ jpeg, width, height }));
    source.on("warning", (m) => seen.warnings.push(m));
    source.on("close", (err) => {
      clearTimeout(timer);
      seen.error = err;
      resolve(seen);
    });
    source.start();
  });
}

describe("FfmpegSource", function () {
  this.timeout(20000);
  let tmp;
  let clip;

  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ffsrc-"));
    clip = path.join(tmp, "clip.mp4");
    execFileSync(
      FFMPEG,
      ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"].concat([
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-y",
        clip,
      ]),
    );
  });

  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("decodes a file to JPEG frames of the right size, at the file's speed", async function () {
    const t0 = Date.now();
    const seen = await runToClose(makeSource({ url: clip }));
    const elapsed = Date.now() - t0;
    assert.ok(seen.connectedBeforeFrame, "connected comes before the first frame");
    assert.strictEqual(seen.frames.length, 50);
    for (const f of seen.frames) {
      assert.strictEqual(f.width, 320);
      assert.strictEqual(f.height, 240);
      assert.strictEqual(f.jpeg[0], 0xff);
      assert.strictEqual(f.jpeg[1], 0xd8);
      assert.strictEqual(f.jpeg[f.jpeg.length - 1], 0xd9);
    }
    assert.ok(elapsed >= 1500, `-re plays a 2 s file in real time (took ${elapsed} ms)`);
    assert.strictEqual(seen.error.kind, "ended");
  });

  it("caps the frame rate without duplicating frames", async function () {
    const seen = await runToClose(makeSource({ url: clip, fps: 5 }));
    assert.ok(
      seen.frames.length >= 9 && seen.frames.length <= 11,
      `${seen.frames.length} frames for 2 s at 5 fps`,
    );
    const slow = await runToClose(makeSource({ url: clip, fps: 50 }));
    assert.strictEqual(slow.frames.length, 50, "a cap above the input rate adds no frames");
  });

  it("gives a clear config error for a missing file, without credentials", async function () {
    const seen = await runToClose(
      makeSource({ url: path.join(tmp, "missing.mp4"), user: "viewer", password: "pa55word!" }),
    );
    assert.strictEqual(seen.frames.length, 0);
    assert.strictEqual(seen.connected, false);
    assert.strictEqual(seen.error.name, "SourceError");
    assert.strictEqual(seen.error.kind, "config");
    assert.match(seen.error.message, /missing\.mp4: No such file or directory/);
    assert.ok(!seen.error.message.includes("pa55word"));
  });

  it("reports a closed RTSP port as a network error with no password in it", async function () {
    const port = await freePort();
    for (const config of [
      { url: `rtsp://127.0.0.1:${port}/live`, user: "admin", password: "Sup3r:S@cret/" },
      { url: `rtsp://admin:Sup3rSecret@127.0.0.1:${port}/live` },
    ]) {
      const seen = await runToClose(makeSource(config));
      assert.strictEqual(seen.error.kind, "network", seen.error.message);
      assert.match(seen.error.message, /Connection refused/);
      for (const secret of ["Sup3r", "S%40cret", "S@cret", "admin:"]) {
        assert.ok(!seen.error.message.includes(secret), `"${secret}" in ${seen.error.message}`);
      }
      assert.match(seen.error.message, new RegExp(`rtsp://(\\*\\*\\*@)?127\\.0\\.0\\.1:${port}/live`));
    }
  });

  it("stop() leaves no ffmpeg process and fires no close", async function () {
    const source = makeSource({ url: clip, options: { loop: true } });
    let closed = false;
    let frames = 0;
    source.on("close", () => (closed = true));
    source.on("frame", () => frames++);
    await new Promise((resolve) => {
      source.on("connected", resolve);
      source.start();
    });
    await wait(2500);
    assert.ok(frames > 50, `looping file goes past its end (${frames} frames)`);
    const pid = source.pid;
    assert.ok(alive(pid));
    source.stop();
    assert.ok(await waitGone(pid), "ffmpeg is gone after stop()");
    await wait(100);
    assert.strictEqual(closed, false);
  });

  it("stop() right after start() leaves nothing running", async function () {
    const source = makeSource({ url: clip, options: { loop: true } });
    source.start();
    source.stop();
    await wait(500);
    assert.strictEqual(source.pid, undefined, "ffmpeg was never spawned");
  });

  it("builds the arguments the protocol needs", async function () {
    const rtsp = await makeSource({ url: "rtsp://cam/s", fps: 2 }).buildArgs(FFMPEG);
    const at = (flag) => rtsp[rtsp.indexOf(flag) + 1];
    assert.strictEqual(at("-rtsp_transport"), "tcp");
    assert.strictEqual(at("-stimeout"), "5000000");
    assert.strictEqual(at("-i"), "rtsp://cam/s");
    // With credentials the URL goes to ffmpeg's stdin as a concat script, never into argv.
    const withLogin = await makeSource({
      url: "rtsp://cam/s",
      user: "a b",
      password: "p@ss:w/rd",
      fps: 2,
    }).buildCommand(FFMPEG);
    assert.strictEqual(withLogin.args[withLogin.args.indexOf("-i") + 1], "pipe:0");
    assert.ok(!withLogin.args.join(" ").includes("p%40ss"), withLogin.args.join(" "));
    assert.match(withLogin.stdin, /^file 'rtsp:\/\/a%20b:p%40ss%3Aw%2Frd@cam\/s'$/m);
    assert.ok(!rtsp.includes("-re"), "live input is not slowed down");
    assert.match(at("-vf"), /select=/);
    assert.strictEqual(at("-f"), "image2pipe");
    assert.strictEqual(at("-q:v"), "5");
    assert.ok(rtsp.includes("-an"));
    const udp = await makeSource({
      url: "rtsp://cam/s",
      options: { rtspTransport: "udp", keyframesOnly: true, quality: 3 },
    }).buildArgs(FFMPEG);
    assert.strictEqual(udp[udp.indexOf("-rtsp_transport") + 1], "udp");
    assert.ok(udp.indexOf("-skip_frame") < udp.indexOf("-i"), "skip_frame is an input option");
    assert.strictEqual(udp[udp.indexOf("-q:v") + 1], "3");
    assert.ok(!udp.includes("-vf"));
    const file = await makeSource({ url: "/videos/a.mp4", options: { loop: true } }).buildArgs(FFMPEG);
    assert.ok(file.includes("-re") && file.indexOf("-re") < file.indexOf("-i"));
    assert.strictEqual(file[file.indexOf("-stream_loop") + 1], "-1");
    const dev = await makeSource({ url: "/dev/video0" }).buildArgs(FFMPEG);
    assert.ok(!dev.includes("-re"));
    const rtmp = await makeSource({ url: "rtmp://server/live/key" }).buildArgs(FFMPEG);
    assert.strictEqual(rtmp[rtmp.indexOf("-rw_timeout") + 1], "5000000");
  });

  it("puts url-encoded credentials into the URL and classifies failures", function () {
    assert.strictEqual(urlWithCredentials("rtsp://old:x@cam/s", "u", "p w"), "rtsp://u:p%20w@cam/s");
    assert.strictEqual(urlWithCredentials("rtsp://cam/s", "u"), "rtsp://u@cam/s");
    assert.strictEqual(urlWithCredentials("/file.mp4", "u", "p"), "/file.mp4");
    assert.strictEqual(urlWithCredentials("rtsp://cam/s"), "rtsp://cam/s");
    assert.strictEqual(classifyFfmpegFailure(["method DESCRIBE failed: 401 Unauthorized"], 1, false), "auth");
    assert.strictEqual(classifyFfmpegFailure(["x: Protocol not found"], 1, false), "config");
    assert.strictEqual(
      classifyFfmpegFailure(["Invalid data found when processing input"], 1, true),
      "config",
    );
    assert.strictEqual(
      classifyFfmpegFailure(["Invalid data found when processing input"], 1, false),
      "protocol",
    );
    assert.strictEqual(classifyFfmpegFailure(["Connection timed out"], 1, false), "network");
    assert.strictEqual(classifyFfmpegFailure([], 0, true), "ended");
  });

  it("reports a missing ffmpeg binary as a config error", async function () {
    const seen = await runToClose(makeSource({ url: clip, ffmpegPath: path.join(tmp, "no-ffmpeg") }));
    assert.strictEqual(seen.error.kind, "config");
    assert.match(seen.error.message, /ffmpeg could not be started: could not start no-ffmpeg/);
  });
});
