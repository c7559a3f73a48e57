"use strict";
// ffmpeg-transcode `push` to a real RTMP server: Debian's nginx with libnginx-mod-rtmp, started by this test.
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const { spawn, execFile } = require("child_process");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/frame");
const { FFPROBE, freePort, testJpegs, waitGone } = require("./lib/transcode-helpers");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

function findNginx() {
  for (const dir of (process.env.PATH || "").split(path.delimiter).concat(["/usr/sbin", "/usr/local/sbin"])) {
    const candidate = path.join(dir, "nginx");
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

function findRtmpModule() {
  for (const dir of ["/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"]) {
    const candidate = path.join(dir, "ngx_rtmp_module.so");
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

function get(url) {
  return new Promise((resolve) => {
    http
      .get(url, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(body));
      })
      .on("error", () => resolve(""));
  });
}

function probe(url) {
  return new Promise((resolve) => {
    execFile(
      FFPROBE,
      ["-v", "error", "-rw_timeout", "5000000", "-show_streams", "-of", "json", url],
      { timeout: 15000 },
      (err, stdout, stderr) => {
        try {
          if (err) console.log("      ffprobe:", err.message, stderr);
          resolve(err ? undefined : JSON.parse(stdout));
        } catch {
          resolve(undefined);
        }
      },
    );
  });
}

describe("ffmpeg-transcode node: push to an RTMP server (nginx-rtmp)", function () {
  this.timeout(60000);
  const nginxBin = findNginx();
  const rtmpModule = findRtmpModule();
  let tmp;
  let nginx;
  let rtmpPort;
  let httpPort;
  let feeder;

  function startNginx() {
    nginx = spawn(nginxBin, ["-p", tmp, "-c", path.join(tmp, "nginx.conf")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    nginx.stderr.setEncoding("utf8");
    nginx.stderr.on("data", (d) => process.stderr.write(`nginx: ${d}`));
    return nginx;
  }

  async function stopNginx() {
    const proc = nginx;
    nginx = undefined;
    if (!proc || proc.exitCode !== null) return;
    proc.kill("SIGKILL");
    await waitGone(proc.pid, 5000);
  }

  async function publishing(key, ms) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const stat = await get(`http://127.0.0.1:${httpPort}/stat`);
      if (new RegExp(`<name>${key}</name>[\\s\\S]*?<publishing/>`).test(stat)) return true;
      await wait(200);
    }
    return false;
  }

  before(async function () {
    if (!nginxBin || !rtmpModule) {
      console.log(
        `      skipped: ${!nginxBin ? "nginx is not installed" : "the nginx RTMP module is missing"}` +
          " (apt-get install nginx libnginx-mod-rtmp)",
      );
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-rtmp-"));
    rtmpPort = await freePort();
    httpPort = await freePort();
    fs.writeFileSync(
      path.join(tmp, "nginx.conf"),
      [
        `load_module ${rtmpModule};`,
        "daemon off;",
        "master_process off;",
        "worker_processes 1;",
        `error_log ${tmp}/error.log warn;`,
        `pid ${tmp}/nginx.pid;`,
        "events { worker_connections 64; }",
        "rtmp {",
        "  server {",
        `    listen 127.0.0.1:${rtmpPort};`,
        "    application live { live on; record off; }",
        "  }",
        "}",
        "http {",
        "  access_log off;",
        ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${tmp}/${t};`),
        "  server {",
        `    listen 127.0.0.1:${httpPort};`,
        "    location /stat { rtmp_stat all; }",
        "  }",
        "}",
      ].join("\n"),
    );
    startNginx();
    const ready = Date.now() + 5000;
    while (!(await get(`http://127.0.0.1:${httpPort}/stat`)) && Date.now() < ready) await wait(100);
    await helper.startServer();
  });

  after(async function () {
    feeder?.stop();
    await helper.unload();
    await helper.stopServer();
    await stopNginx();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("publishes H.264 that a player can read back, and reconnects after the server restarts", async function () {
    const url = `rtmp://127.0.0.1:${rtmpPort}/live/cam1`;
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

    assert.ok(await publishing("cam1", 10000), "nginx sees the stream published");
    const first = await probe(url);
    assert.ok(first, "ffprobe read the stream back");
    assert.strictEqual(first.streams[0].codec_name, "h264");
    assert.strictEqual(first.streams[0].width, 320);

    // the media server goes away mid-push ...
    await stopNginx();
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
    startNginx();
    assert.ok(await publishing("cam1", 20000), "published again after the restart");
    const again = await probe(url);
    assert.ok(again, "readable after the reconnect");
    assert.strictEqual(again.streams[0].codec_name, "h264");
    for (const s of said) {
      assert.ok(!s.includes("pu5h-s3cret"), `password in "${s}"`);
      assert.ok(!s.includes("publisher:"), `user in "${s}"`);
    }
  });
});
