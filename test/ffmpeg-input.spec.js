"use strict";
const assert = require("assert");
const {
  ffmpegInput,
  protocolWhitelist,
  concatHasOptionDirective,
  rtspTimeoutOption,
} = require("../dist/nodes/lib/ffmpeg");
const { ffmpegBuilds } = require("./lib/toolkit");

describe("ffmpeg input builder (lib/ffmpeg/input)", function () {
  this.timeout(30000);
  const builds = ffmpegBuilds();
  const FFMPEG = builds[0].ffmpeg;

  describe("protocolWhitelist", function () {
    it("keeps each network scheme family on the network", function () {
      assert.deepStrictEqual(protocolWhitelist("rtsp"), protocolWhitelist("RTSPS"));
      assert.deepStrictEqual(protocolWhitelist("https"), [
        "http",
        "https",
        "tcp",
        "tls",
        "httpproxy",
        "crypto",
      ]);
      assert.deepStrictEqual(protocolWhitelist("hls"), protocolWhitelist("http"));
      assert.deepStrictEqual(protocolWhitelist("rtmps"), protocolWhitelist("rtmp"));
      assert.deepStrictEqual(protocolWhitelist("srtp"), ["rtp", "srtp", "udp"]);
      assert.deepStrictEqual(protocolWhitelist("gopher"), ["gopher", "tcp", "udp", "tls"]);
      for (const scheme of ["rtsp", "http", "rtmp", "srt", "rtp", "udp"]) {
        for (const local of ["file", "concat", "subfile", "data", "pipe"]) {
          assert.ok(!protocolWhitelist(scheme).includes(local), `${scheme} -> ${local}`);
        }
      }
    });
  });

  describe("ffmpegInput", function () {
    it("a URL without credentials goes into argv behind the whitelist and its options", async function () {
      const input = await ffmpegInput(FFMPEG, " rtsp://cam:554/s ", { rtspTransport: "udp" });
      assert.deepStrictEqual(input.args, [
        "-protocol_whitelist",
        protocolWhitelist("rtsp").join(","),
        "-rtsp_transport",
        "udp",
        "-i",
        "rtsp://cam:554/s",
      ]);
      assert.strictEqual(input.stdin, undefined);
      assert.strictEqual(input.scheme, "rtsp");
      assert.strictEqual(input.isFile, false);
      assert.strictEqual(input.isDevice, false);
    });

    it("RTSP defaults to TCP; socket timeouts only when asked, in the binary's option name", async function () {
      const plain = await ffmpegInput(FFMPEG, "rtsp://cam/s");
      assert.strictEqual(plain.args[plain.args.indexOf("-rtsp_transport") + 1], "tcp");
      assert.ok(!plain.args.includes("-timeout") && !plain.args.includes("-stimeout"));
      const timed = await ffmpegInput(FFMPEG, "rtsp://cam/s", { ioTimeout: true });
      const name = await rtspTimeoutOption(FFMPEG);
      assert.strictEqual(timed.args[timed.args.indexOf(name) + 1], "5000000");
      const rtmp = await ffmpegInput(FFMPEG, "rtmp://server/live/key", { ioTimeout: true });
      assert.strictEqual(rtmp.args[rtmp.args.indexOf("-rw_timeout") + 1], "5000000");
      const srt = await ffmpegInput(FFMPEG, "srt://server:9000", { ioTimeout: true });
      assert.ok(!srt.args.includes("-rw_timeout"));
    });

    it("files and devices keep ffmpeg's defaults (no whitelist)", async function () {
      const file = await ffmpegInput(FFMPEG, "/videos/a@b.mp4", { user: "u", password: "p" });
      assert.deepStrictEqual(file.args, ["-i", "/videos/a@b.mp4"]);
      assert.strictEqual(file.isFile, true);
      assert.strictEqual(file.isDevice, false);
      const url = await ffmpegInput(FFMPEG, "file:///videos/a.mp4");
      assert.deepStrictEqual(url.args, ["-i", "file:///videos/a.mp4"]);
      assert.strictEqual(url.isFile, true);
      const dev = await ffmpegInput(FFMPEG, "/dev/video0");
      assert.strictEqual(dev.isDevice, true);
    });

    it("refuses ffmpeg protocols that read local files, and control characters", async function () {
      for (const raw of [
        "concat:/etc/passwd|x",
        "subfile:,,start,0,end,0,,:/etc/shadow",
        "data:abc",
        "pipe:0",
      ]) {
        await assert.rejects(ffmpegInput(FFMPEG, raw), /inputs are not supported/, raw);
      }
      await assert.rejects(ffmpegInput(FFMPEG, "rtsp://cam/s\n-i /etc/passwd"), /control characters/);
    });

    for (const build of builds) {
      it(`credentials never reach argv: a concat script on stdin (${build.name})`, async function () {
        const options = await concatHasOptionDirective(build.ffmpeg);
        const input = await ffmpegInput(build.ffmpeg, "rtsp://inurl:x@cam/s", {
          user: "bob",
          password: "it's a \\ secret",
          rtspTransport: "tcp",
        });
        assert.deepStrictEqual(input.args, [
          "-protocol_whitelist",
          ["pipe", ...protocolWhitelist("rtsp")].join(","),
          "-f",
          "concat",
          "-safe",
          "0",
          "-i",
          "pipe:0",
        ]);
        assert.ok(!input.args.join(" ").includes("secret") && !input.args.join(" ").includes("bob"));
        const lines = input.stdin.trimEnd().split("\n");
        assert.strictEqual(lines[0], "ffconcat version 1.0");
        // url-encoded credentials, the option given wins over the URL's, av_get_token quoting
        assert.strictEqual(
          lines[1],
          "file 'rtsp://bob:it's%20a%20%5C%20secret@cam/s'".replace("it's", "it'\\''s"),
        );
        assert.deepStrictEqual(lines.slice(2), options ? ["option rtsp_transport 'tcp'"] : []);
      });
    }

    it("credentials in the URL alone are used too", async function () {
      const input = await ffmpegInput(FFMPEG, "http://u%40x:p%3Aw@cam/video.mjpg");
      assert.match(input.stdin, /^file 'http:\/\/u%40x:p%3Aw@cam\/video\.mjpg'$/m);
    });

    it("a binary without concat option lines keeps the password off argv and says camrelay alone checked the certificate", async function () {
      // The bundled build is always in the list and has no option lines; a build that has them marks nothing.
      for (const build of builds) {
        const input = await ffmpegInput(build.ffmpeg, "https://u:p@cam/video", {
          tlsArgs: ["-tls_verify", "1", "-ca_file", "/x.pem"],
        });
        assert.ok(!input.args.join(" ").includes("u:p@"), input.args.join(" "));
        if (await concatHasOptionDirective(build.ffmpeg)) {
          assert.match(input.stdin, /^option tls_verify '1'$/m, build.name);
          assert.strictEqual(input.tlsCheckedOnlyBefore, undefined, build.name);
        } else {
          assert.doesNotMatch(input.stdin, /^option /m, build.name);
          assert.strictEqual(input.tlsCheckedOnlyBefore, true, build.name);
        }
      }
    });
  });
});
