"use strict";
// ffmpeg-transcode `push` to real RTMP servers started by this test: node-media-server (pure JavaScript, a
// devDependency: runs wherever `npm install` ran) and Debian's nginx with libnginx-mod-rtmp where that is
// installed. Without nginx its case is left out (not skipped) with a note, unless CAMRELAY_REQUIRE_NGINX=1
// (.ci/run's main run) makes a missing nginx a failure.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFile } = require("child_process");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const { FFPROBE, findNginxRtmp, startNginxRtmp, testJpegs } = require("./lib/transcode-helpers");
const { startNodeMediaServer } = require("./lib/rtmp-node-media-server");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const { wait } = require("./lib/toolkit");

/** ffprobe of a live URL, or undefined (the reason is printed). */
function probe(url) {
  return new Promise((resolve) => {
    execFile(
      FFPROBE,
      ["-v", "error", "-rw_timeout", "5000000", "-show_streams", "-of", "json", url],
      { timeout: 15000 },
      (err, stdout, stderr) => {
        if (err) console.log("      ffprobe:", err.message, stderr);
        try {
          resolve(err ? undefined : JSON.parse(stdout));
        } catch {
          resolve(undefined);
        }
      },
    );
  });
}

const SERVERS = [{ name: "node-media-server", start: startNodeMediaServer }];
const nginx = findNginxRtmp();
if (!nginx.missing || process.env.CAMRELAY_REQUIRE_NGINX === "1") {
  SERVERS.push({
    name: "nginx-rtmp",
    start: (dir) => {
      if (nginx.missing) throw new Error(`CAMRELAY_REQUIRE_NGINX=1 but ${nginx.missing}`);
      return startNginxRtmp(dir);
    },
  });
} else {
  console.log(`transcode-push: the nginx-rtmp case is left out: ${nginx.missing}`);
}

for (const { name, start } of SERVERS) describePush(name, start);

function describePush(serverName, startServer) {
  describe(`ffmpeg-transcode node: push to an RTMP server (${serverName})`, function () {
    this.timeout(60000);
    let tmp;
    let server;
    let feeder;

    before(async function () {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rtmp-"));
      server = await startServer(tmp);
      await helper.startServer();
    });

    after(async function () {
      feeder?.stop();
      await helper.unload();
      await helper.stopServer();
      await server?.stop();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    it("publishes H.264 that a player can read back, and reconnects after the server restarts", async function () {
      const url = `rtmp://127.0.0.1:${server.rtmpPort}/live/cam1`;
      await helper.load(
        transcodeNode,
        [
          { id: "t1", type: "tab" },
          {
            id: "pusher",
            z: "t1",
            type: "ffmpeg-transcode",
            preset: "push",
            url,
            quality: 30,
            keyframeInterval: 1,
            wires: [[]],
          },
        ],
        { pusher: { user: "publisher", password: "pu5h-s3cret" } },
      );
      const node = helper.getNode("pusher");
      const said = [];
      node.on("call:error", (c) => said.push(String(c.args[0])));
      node.on("call:warn", (c) => said.push(String(c.args[0])));
      node.on("call:status", (c) => said.push(JSON.stringify(c.args[0])));
      const jpegs = testJpegs(20, "320x240", 8);
      let seq = 0;
      const timer = setInterval(() => {
        seq++;
        node.receive({
          payload: jpegs[seq % jpegs.length],
          frame: { seq, time: monotonicEpochMs(), camera: "cam1", width: 320, height: 240 },
        });
      }, 100);
      feeder = { stop: () => clearInterval(timer) };

      assert.ok(await server.publishing("cam1", 10000), `${serverName} sees the stream published`);
      const first = await probe(url);
      assert.ok(first, "ffprobe read the stream back");
      assert.strictEqual(first.streams[0].codec_name, "h264");
      assert.strictEqual(first.streams[0].width, 320);

      // the media server goes away mid-push ...
      await server.stop();
      const errorsBefore = said.length;
      const deadline = Date.now() + 10000;
      while (
        !said.slice(errorsBefore).some((s) => /ffmpeg (exited|was killed)/.test(s)) &&
        Date.now() < deadline
      ) {
        await wait(100);
      }
      assert.ok(
        said.some((s) => /ffmpeg (exited|was killed)/.test(s)),
        `the node reported it: ${said.join(" / ")}`,
      );
      // ... and comes back: the node reconnects by itself (backoff 1 s, 2 s, 4 s ...)
      await wait(1500);
      await server.restart();
      assert.ok(await server.publishing("cam1", 20000), "published again after the restart");
      const again = await probe(url);
      assert.ok(again, "readable after the reconnect");
      assert.strictEqual(again.streams[0].codec_name, "h264");
      for (const s of said) {
        assert.ok(!s.includes("pu5h-s3cret"), `password in "${s}"`);
        assert.ok(!s.includes("publisher:"), `user in "${s}"`);
      }
    });
  });
}
