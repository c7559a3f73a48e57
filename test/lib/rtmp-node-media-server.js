// An RTMP server from npm for the push test where Debian's nginx-rtmp is not installed: node-media-server
// (pure JavaScript, a devDependency), run as our own child process on 127.0.0.1 so that stop() can kill it
// as abruptly as the nginx test kills nginx. The same interface as startNginxRtmp() in transcode-helpers.js:
// { rtmpPort, restart(), stop(), publishing(key, ms) }.
//
// As a child (`node rtmp-node-media-server.js <port> <dir>`) it prints one line per event on stdout:
// "camrelay-rtmp listening", "camrelay-rtmp publish <app>/<key>", "camrelay-rtmp unpublish <app>/<key>".
"use strict";
const fs = require("fs");
const path = require("path");
const { spawn } = require("child_process");

const PREFIX = "camrelay-rtmp";

if (require.main === module) {
  const [port, dir] = process.argv.slice(2);
  const NodeMediaServer = require("node-media-server");
  const nms = new NodeMediaServer({
    bind: "127.0.0.1",
    rtmp: { port: Number(port) },
    store: { path: path.join(dir, "nms-data") },
    webadmin: { enable: false },
    auth: { play: false, publish: false },
    record: { auto: false, path: path.join(dir, "nms-record") },
  });
  require("node-media-server/src/core/logger.js").level = process.env.CAMRELAY_RTMP_LOG || "warn";
  const say = (what, session) =>
    process.stdout.write(`${PREFIX} ${what} ${session.streamPath.replace(/^\//, "")}\n`);
  nms.on("postPublish", (session) => say("publish", session));
  nms.on("donePublish", (session) => say("unpublish", session));
  nms.run().then(() => {
    // run() starts listening without a callback: say so once the port answers
    const net = require("net");
    const probe = () => {
      const s = net.connect(Number(port), "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        process.stdout.write(`${PREFIX} listening\n`);
      });
      s.once("error", () => setTimeout(probe, 50));
    };
    probe();
  });
  process.on("SIGTERM", () => nms.stop().finally(() => process.exit(0)));
} else {
  module.exports = { startNodeMediaServer };
}

/** Starts node-media-server on a free loopback port as a child process; resolves once it listens. */
async function startNodeMediaServer(dir) {
  const { freePort, waitGone } = require("./transcode-helpers");
  const rtmpPort = await freePort();
  fs.mkdirSync(dir, { recursive: true });
  let proc;
  let published = new Set();
  const server = {
    rtmpPort,
    name: "node-media-server",
    async restart() {
      published = new Set();
      const child = spawn(
        process.execPath,
        [path.join(__dirname, "rtmp-node-media-server.js"), String(rtmpPort), dir],
        {
          stdio: ["ignore", "pipe", "inherit"],
        },
      );
      proc = child;
      let buffered = "";
      const listening = new Promise((resolve, reject) => {
        child.once("exit", (code, signal) =>
          reject(new Error(`node-media-server exited (${code ?? signal})`)),
        );
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (chunk) => {
          buffered += chunk;
          let nl;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            const [prefix, what, key] = line.split(" ");
            if (prefix !== PREFIX) continue;
            if (what === "listening") resolve();
            else if (what === "publish") published.add(key);
            else if (what === "unpublish") published.delete(key);
          }
        });
      });
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error("node-media-server did not listen within 10 s")), 10000).unref(),
      );
      await Promise.race([listening, timeout]);
    },
    async stop() {
      const p = proc;
      proc = undefined;
      published = new Set();
      if (!p || p.exitCode !== null) return;
      p.kill("SIGKILL");
      await waitGone(p.pid, 5000);
    },
    /** Resolves true once the server reports `key` (in application "live") as published, false after `ms`. */
    async publishing(key, ms) {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        if (published.has(`live/${key}`)) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    },
  };
  await server.restart();
  return server;
}
