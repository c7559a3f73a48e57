// The RTSP camera fixture itself (test/lib/rtsp-server.js): Debian's GStreamer RTSP server, seen by ffprobe
// with the codecs and size asked for; /switch changes size in-band; restart comes back on the same port;
// stop leaves no process.
"use strict";
// ffprobe on PATH, else the bundled one (the bare CI run hides /usr/bin/ffprobe).
const FFPROBE = require("../dist/nodes/lib/ffmpeg").resolveFfprobePath();
const assert = require("assert");
const { execFileSync } = require("child_process");
const { rtspServer, probeRtsp, rtspOptions } = require("./lib/rtsp-server");
const { alive, until } = require("./lib/toolkit");

const kinds = (streams) => streams.map((s) => s.codec_name).sort();
const videoOf = (streams) => streams.find((s) => s.codec_type === "video");

describe("test RTSP server fixture (GStreamer RTSP server)", function () {
  this.timeout(60000);
  let server;
  before(async () => {
    server = await rtspServer({ width: 320, height: 240, fps: 10 });
  });
  after(async () => server && server.stop());

  it("serves H.264 + AAC at the size asked for", () => {
    const streams = probeRtsp(server.url("h264aac"));
    assert.deepStrictEqual(kinds(streams), ["aac", "h264"]);
    assert.strictEqual(videoOf(streams).width, 320);
    assert.strictEqual(videoOf(streams).height, 240);
  });

  it("serves H.264 without audio", () => {
    assert.deepStrictEqual(kinds(probeRtsp(server.url("h264"))), ["h264"]);
  });

  it("serves H.265 + AAC", function () {
    if (server.backend !== "gstreamer") this.skip();
    const streams = probeRtsp(server.url("h265aac"));
    assert.deepStrictEqual(kinds(streams), ["aac", "hevc"]);
    assert.strictEqual(videoOf(streams).width, 320);
  });

  it("keyframes every gop frames (decoded by ffmpeg over TCP)", () => {
    const out = execFileSync(
      FFPROBE,
      [
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-read_intervals",
        "%+3",
        "-select_streams",
        "v",
        "-show_entries",
        "packet=flags",
        "-of",
        "csv=p=0",
        server.url("h264"),
      ],
      { encoding: "utf8", timeout: 20000 },
    );
    const flags = out.trim().split("\n");
    const keys = flags.map((f, i) => (f.startsWith("K") ? i : -1)).filter((i) => i >= 0);
    assert(keys.length >= 2, `keyframes in ${flags.length} packets: ${keys}`);
    assert.strictEqual(keys[1] - keys[0], 10, `keyframe spacing ${keys}`);
  });

  it("/switch changes size for clients after resize()", async function () {
    if (server.backend !== "gstreamer") this.skip();
    assert.strictEqual(videoOf(probeRtsp(server.url("switch"))).width, 320);
    await server.resize(160, 120);
    const v = videoOf(probeRtsp(server.url("switch")));
    assert.deepStrictEqual([v.width, v.height], [160, 120]);
  });

  it("an unknown mount is a 404 in ffprobe's words, not a hang", () => {
    assert.throws(() => probeRtsp(server.url("nothing-here")), /404|Not Found/i);
  });

  it("restart comes back on the same port with another size; stop leaves no process", async () => {
    const [before] = server.pids();
    await server.restart({ downMs: 300, width: 480, height: 272 });
    assert(!alive(before), "the old server process is gone");
    assert.strictEqual(videoOf(probeRtsp(server.url("h264"))).width, 480);
    const pids = server.pids();
    await server.stop();
    for (const pid of pids) assert(!alive(pid), `process ${pid} left`);
    await until(async () => (await rtspOptions(server.port)) === 0, { what: "port closed", ms: 5000 });
    server = null;
  });
});
