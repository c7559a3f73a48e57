// Issue 10, secrets and the Test endpoint, and RTSP at default settings:
// - no ffmpeg or ffprobe camrelay starts holds a camera password in its command line (read from /proc),
//   while the camera really streams: a GStreamer RTSP server with Basic auth, and an HTTP camera read by
//   ffmpeg; with both ffmpeg builds (Debian 5.1 and the bundled 4.x);
// - ffmpeg inputs get a protocol whitelist for their scheme: a network URL never reaches a local file;
// - the camera dialog's Test endpoint (a real Node-RED with adminAuth) lends stored credentials only to the
//   camera they belong to and only for its own host, and never runs an ffmpegPath from the request;
// - RTSP `auto` (the default) plays from a UDP-only server (VLC's kind) and a TCP-only one; a 401, 404 or
//   refused transport shows its reason in the camera-connect status.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const net = require("net");
const { spawn, execFileSync } = require("child_process");
const { FfmpegSource } = require("../dist/nodes/lib/sources/ffmpeg-source");
const { concatHasOptionDirective } = require("../dist/nodes/lib/ffmpeg");
const { probeCamera } = require("../dist/nodes/lib/camera/probe");
const { cameraOptions } = require("../dist/nodes/lib/camera/options");
const cams = require("./lib/fake-cameras");
const { freePort, waitGone } = require("./lib/transcode-helpers");
const { startNodeRed } = require("./lib/soak-nodered");

const BUILDS = require("./lib/toolkit").ffmpegBuilds();
const USER = "camadmin";
const PASSWORD = "Rtsp:S3cret@9917/x";
const ADMIN = { user: "admin", password: "Admin-Pa55-4471" };

// GStreamer's RTSP server (Debian's gir1.2-gst-rtsp-server-1.0) with Basic auth, serving H.264 on /live.
// Settings come in the environment so that no password sits in this helper's own command line either.
const RTSP_SERVER = `
import os, sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0"); gi.require_version("GstRtsp", "1.0")
from gi.repository import Gst, GstRtspServer, GstRtsp, GLib
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1"); server.set_service(os.environ["RTSP_PORT"])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch("( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=10/1 ! "
  "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 config-interval=1 )")
factory.set_shared(True)
only = os.environ.get("RTSP_ONLY", "")
if only == "udp": factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
if only == "tcp": factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
user = os.environ.get("RTSP_USER", "")
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, os.environ["RTSP_PASS"]), token)
    server.set_auth(auth)
    perm = GstRtspServer.RTSPPermissions()
    perm.add_permission_for_role("viewer", "media.factory.access", True)
    perm.add_permission_for_role("viewer", "media.factory.construct", True)
    factory.set_permissions(perm)
server.get_mount_points().add_factory("/live", factory)
if server.attach(None) == 0: sys.exit("could not listen")
print("ready", flush=True)
GLib.MainLoop().run()
`;

/** Starts a GStreamer RTSP server: { url, port, stop() }. `only` = "udp" | "tcp" | "" (both). */
async function rtspServer({ user, password, only = "" } = {}) {
  const port = await freePort();
  const env = { ...process.env, RTSP_PORT: String(port), RTSP_ONLY: only };
  if (user) Object.assign(env, { RTSP_USER: user, RTSP_PASS: password });
  const child = spawn("/usr/bin/python3", ["-c", RTSP_SERVER], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`RTSP server did not start: ${output}`)), 20000);
    const onData = (d) => {
      output += d;
      if (/ready/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`RTSP server exited (${code}): ${output}`));
    });
  });
  return {
    port,
    url: `rtsp://127.0.0.1:${port}/live`,
    stop: async () => {
      child.kill("SIGKILL");
      await waitGone(child.pid);
    },
  };
}

/** Command lines of every ffmpeg/ffprobe whose parent is `ppid`, collected every 10 ms until stop(). */
function watchCommandLines(ppid = process.pid) {
  const seen = new Map();
  const poll = () => {
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry) || seen.has(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== ppid) continue;
        const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
        if (/ff(mpeg|probe)/.test(path.basename(cmd[0] || ""))) seen.set(entry, cmd.join(" "));
      } catch {
        // gone meanwhile
      }
    }
  };
  const timer = setInterval(poll, 10);
  poll();
  return {
    lines: () => [...seen.values()],
    stop: () => {
      clearInterval(timer);
      poll();
      return [...seen.values()];
    },
  };
}

/** Forms of a secret that must not appear anywhere a local user can read. */
function leaksIn(text, password = PASSWORD, user = USER) {
  const forms = [password, encodeURIComponent(password), `${user}:`, `${encodeURIComponent(user)}:`];
  return forms.filter((f) => text.includes(f));
}

function source(build, config) {
  return new FfmpegSource({
    name: "cam",
    fps: 0,
    maxFrameBytes: 4 << 20,
    options: {},
    ffmpegPath: build.ffmpeg,
    ...config,
  });
}

/** Runs a source until `frames` frames came (resolves { frames, pid, cmdline }) or it closed (rejects). */
function framesFrom(src, frames = 3, ms = 20000) {
  return new Promise((resolve, reject) => {
    let n = 0;
    const timer = setTimeout(() => {
      src.stop();
      reject(new Error("no frames in time"));
    }, ms);
    src.on("frame", () => {
      if (++n !== frames) return;
      clearTimeout(timer);
      let cmdline = "";
      try {
        cmdline = fs.readFileSync(`/proc/${src.pid}/cmdline`, "utf8").replace(/\0/g, " ");
      } catch {
        // gone
      }
      const pid = src.pid;
      src.stop();
      resolve({ frames: n, pid, cmdline });
    });
    src.on("close", (err) => {
      clearTimeout(timer);
      reject(err || new Error("closed without an error"));
    });
    src.start();
  });
}

/** Runs a source to its close; resolves the SourceError (or undefined) and the frames seen. */
function closeOf(src, ms = 20000) {
  return new Promise((resolve, reject) => {
    let frames = 0;
    const timer = setTimeout(() => {
      src.stop();
      reject(new Error("source did not close in time"));
    }, ms);
    src.on("frame", () => frames++);
    src.on("close", (err) => {
      clearTimeout(timer);
      resolve({ err, frames });
    });
    src.start();
  });
}

describe("issue 10: secrets out of argv, protocol whitelist, RTSP transport", function () {
  this.timeout(90000);
  let auth; // RTSP with Basic auth, TCP and UDP
  let authUdpOnly; // with Basic auth, UDP only: the transport must reach the input behind the concat script
  let udpOnly;
  let tcpOnly;
  let tmp;

  before(async function () {
    this.timeout(60000);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-secrets-"));
    [auth, authUdpOnly, udpOnly, tcpOnly] = await Promise.all([
      rtspServer({ user: USER, password: PASSWORD }),
      rtspServer({ user: USER, password: PASSWORD, only: "udp" }),
      rtspServer({ only: "udp" }),
      rtspServer({ only: "tcp" }),
    ]);
  });

  after(async function () {
    await Promise.all([auth, authUdpOnly, udpOnly, tcpOnly].filter(Boolean).map((s) => s.stop()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  for (const build of BUILDS) {
    describe(build.name, function () {
      it("streams from an RTSP camera with a password that no ffmpeg command line holds", async function () {
        for (const config of [
          { url: auth.url, user: USER, password: PASSWORD },
          // An imported flow with the password still in the URL.
          { url: `rtsp://${USER}:${encodeURIComponent(PASSWORD)}@127.0.0.1:${auth.port}/live` },
        ]) {
          const watch = watchCommandLines();
          const got = await framesFrom(source(build, config));
          const lines = watch.stop();
          assert.strictEqual(got.frames, 3);
          assert.match(got.cmdline, /ffmpeg/, "read the running ffmpeg's /proc/<pid>/cmdline");
          assert.ok(lines.length >= 1, "saw the ffmpeg processes");
          assert.deepStrictEqual(leaksIn(lines.join("\n") + got.cmdline), [], lines.join("\n"));
          assert.ok(await waitGone(got.pid), "ffmpeg is gone after stop()");
        }
      });

      it("streams from an HTTP camera read by ffmpeg, with no password in its command line", async function () {
        for (const scheme of ["basic", "digest"]) {
          const cam = await cams.mjpegCamera({ fps: 10, auth: { scheme, user: USER, password: PASSWORD } });
          try {
            const watch = watchCommandLines();
            const got = await framesFrom(source(build, { url: cam.url, user: USER, password: PASSWORD }));
            const lines = watch.stop();
            assert.strictEqual(got.frames, 3, scheme);
            assert.deepStrictEqual(leaksIn(lines.join("\n") + got.cmdline), [], lines.join("\n"));
          } finally {
            await cam.close();
          }
        }
      });

      it("the Test probe's ffmpeg and ffprobe carry no password, and ffprobe still describes the stream", async function () {
        const saved = process.env.FFPROBE_PATH;
        process.env.FFPROBE_PATH = build.ffprobe;
        const watch = watchCommandLines();
        try {
          const options = cameraOptions(
            { protocol: "ffmpeg", url: auth.url, name: "t", ffmpegPath: build.ffmpeg },
            { user: USER, password: PASSWORD },
          );
          const result = await probeCamera(options, 15000, 500);
          const lines = watch.stop();
          assert.ok(result.width > 0 && result.image.startsWith("data:image/jpeg"), "a frame came");
          assert.strictEqual(result.videoError, undefined, result.videoError);
          assert.strictEqual(result.video.codec, "h264");
          assert.match(result.detected, /^rtsp, h264/);
          assert.ok(
            lines.some((l) => /ffprobe/.test(l.split(" ")[0])),
            `ffprobe ran: ${lines.join("\n")}`,
          );
          assert.deepStrictEqual(leaksIn(lines.join("\n")), [], lines.join("\n"));
        } finally {
          watch.stop();
          if (saved === undefined) delete process.env.FFPROBE_PATH;
          else process.env.FFPROBE_PATH = saved;
        }
      });

      it("a network input never reaches a local file; a local file still plays", async function () {
        const secretFile = path.join(tmp, "secret.ts");
        execFileSync(build.ffmpeg, [
          "-hide_banner",
          "-loglevel",
          "error",
          "-y",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=160x120:rate=10",
          "-t",
          "2",
          "-c:v",
          "mpeg2video",
          "-f",
          "mpegts",
          secretFile,
        ]);
        // An HLS playlist on a "camera" that lists a local file as its segment.
        const server = http.createServer((req, res) => {
          res.writeHead(200, { "Content-Type": "application/vnd.apple.mpegurl" });
          res.end(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n" +
              `#EXTINF:2.0,\nfile://${secretFile}\n#EXT-X-ENDLIST\n`,
          );
        });
        await new Promise((r) => server.listen(0, "127.0.0.1", r));
        try {
          const hls = await closeOf(
            source(build, { url: `http://127.0.0.1:${server.address().port}/index.m3u8` }),
          );
          assert.strictEqual(hls.frames, 0, "no frame from the local file");
          for (const url of [`concat:${secretFile}|${secretFile}`, `subfile:,start,0,end,0,:${secretFile}`]) {
            const refused = await closeOf(source(build, { url }));
            assert.strictEqual(refused.frames, 0, url);
            assert.strictEqual(refused.err.kind, "config", url);
            assert.match(refused.err.message, /not supported/, url);
          }
          const local = await framesFrom(source(build, { url: secretFile }), 3);
          assert.strictEqual(local.frames, 3, "a camera that is a local file keeps working");
        } finally {
          server.close();
        }
      });

      it("RTSP auto plays from UDP-only and TCP-only servers; forced TCP on UDP-only says why", async function () {
        for (const server of [udpOnly, tcpOnly]) {
          const got = await framesFrom(
            source(build, { url: server.url, options: { rtspTransport: "auto" } }),
          );
          assert.strictEqual(got.frames, 3);
        }
        const defaulted = await framesFrom(source(build, { url: udpOnly.url }));
        assert.strictEqual(defaulted.frames, 3, "no transport set means auto");
        const forced = await closeOf(source(build, { url: udpOnly.url, options: { rtspTransport: "tcp" } }));
        assert.strictEqual(forced.err.kind, "config", forced.err.message);
        assert.strictEqual(forced.err.reason, "transport");
        assert.match(forced.err.message, /461 Unsupported transport/);
      });

      it("with credentials (through the concat script) the RTSP transport still reaches the input", async function () {
        const login = { user: USER, password: PASSWORD };
        const got = await framesFrom(source(build, { url: authUdpOnly.url, ...login }));
        assert.strictEqual(got.frames, 3, "auto falls back to UDP behind the script too");
        // ffmpeg 4.x reads no `option` lines: it picks the transport itself (UDP first), as the help says.
        if (!(await concatHasOptionDirective(build.ffmpeg))) return;
        const forced = await closeOf(
          source(build, { url: authUdpOnly.url, ...login, options: { rtspTransport: "tcp" } }),
        );
        assert.strictEqual(forced.err.reason, "transport", forced.err.message);
        assert.deepStrictEqual(leaksIn(forced.err.message), []);
      });

      it("with credentials a silent RTSP server is ended: by ffmpeg's socket timeout where the binary can, else by the camera's watchdog", async function () {
        if (!(await concatHasOptionDirective(build.ffmpeg))) {
          // ffmpeg 4.x reads no `option` lines, so no socket timeout reaches the input: the camera's watchdog
          // must end the silent connection instead (and kill that ffmpeg).
          const { Camera } = require("../dist/nodes/lib/camera/camera");
          const { createSource } = require("../dist/nodes/lib/sources");
          const silent = net.createServer(() => undefined);
          await new Promise((r) => silent.listen(0, "127.0.0.1", r));
          const opts = cameraOptions(
            {
              name: "silent",
              protocol: "ffmpeg",
              url: `rtsp://127.0.0.1:${silent.address().port}/live`,
              ffmpegPath: build.ffmpeg,
              watchdog: 3,
            },
            { user: USER, password: PASSWORD },
          );
          const camera = new Camera(opts, createSource);
          const states = [];
          camera.on("state", (s) => states.push(s.state));
          const t0 = Date.now();
          camera.addUser("t");
          try {
            for (let i = 0; i < 150 && !states.includes("stalled"); i++)
              await new Promise((r) => setTimeout(r, 100));
            console.log(`      silent RTSP server, ${build.name}: watchdog after ${Date.now() - t0} ms`);
            assert.ok(states.includes("stalled"), `states: ${states.join(",")}`);
          } finally {
            camera.removeUser("t");
            camera.close?.();
            silent.close();
          }
          return;
        }
        const silent = net.createServer(() => undefined);
        await new Promise((r) => silent.listen(0, "127.0.0.1", r));
        try {
          const url = `rtsp://127.0.0.1:${silent.address().port}/live`;
          const t0 = Date.now();
          const closed = await closeOf(source(build, { url, user: USER, password: PASSWORD }), 30000);
          console.log(`      silent RTSP server: ffmpeg ended after ${Date.now() - t0} ms (timeout 5 s)`);
          assert.strictEqual(closed.frames, 0);
          assert.ok(closed.err, "the source closed with an error");
        } finally {
          silent.close();
        }
      });

      it("an RTSP 401 and 404 come back as auth and not-found reasons, without the password", async function () {
        const wrong = await closeOf(
          source(build, { url: auth.url, user: USER, password: "nope-" + PASSWORD }),
        );
        assert.strictEqual(wrong.err.kind, "auth", wrong.err.message);
        assert.strictEqual(wrong.err.reason, "auth");
        assert.deepStrictEqual(leaksIn(wrong.err.message), []);
        const missing = await closeOf(
          source(build, {
            url: `rtsp://127.0.0.1:${auth.port}/nothing-here`,
            user: USER,
            password: PASSWORD,
          }),
        );
        assert.strictEqual(missing.err.reason, "notFound", missing.err.message);
        assert.deepStrictEqual(leaksIn(missing.err.message), []);
      });
    });
  }

  describe("in a real Node-RED with adminAuth", function () {
    let nr;
    let ws;
    let lure; // an HTTP "camera" on another host that asks for a password
    let rtspLure; // an RTSP port on another loopback address, recording what it is sent
    const rtspLureData = [];
    const marker = () => path.join(tmp, "ran-requested-ffmpeg");

    before(async function () {
      this.timeout(60000);
      lure = await cams.mjpegCamera({ fps: 5, auth: { scheme: "basic", user: "x", password: "y" } });
      rtspLure = net.createServer((sock) => sock.on("data", (d) => rtspLureData.push(d.toString("latin1"))));
      await new Promise((r) => rtspLure.listen(0, "127.0.0.2", r));
      const script = path.join(tmp, "evil-ffmpeg");
      fs.writeFileSync(script, `#!/bin/sh\ntouch '${marker()}'\nexec ${BUILDS[0].ffmpeg} "$@"\n`, {
        mode: 0o755,
      });
      nr = await startNodeRed({ admin: ADMIN });
      await nr.login();
      ws = await nr.comms();
      const connect = (id, camera) => ({
        id,
        z: "tab",
        type: "camera-connect",
        camera,
        autoStart: true,
        stats: 0,
        wires: [[], []],
      });
      const camera = (id, url, extra = {}) => ({
        id,
        type: "camera-source",
        name: `${id} camera`, // a property equal to a node id reads as a reference to it
        protocol: "ffmpeg",
        url,
        fps: 0,
        linger: 0,
        ...extra,
      });
      await nr.deploy([
        { id: "tab", type: "tab", label: "secrets" },
        camera("rtspCam", auth.url, { credentials: { user: USER, password: PASSWORD } }),
        camera("wrongCam", auth.url, { credentials: { user: USER, password: "wrong-" + PASSWORD } }),
        camera("missingCam", `rtsp://127.0.0.1:${auth.port}/nothing`, {
          credentials: { user: USER, password: PASSWORD },
        }),
        camera("tcpCam", udpOnly.url, { rtspTransport: "tcp" }),
        camera("autoCam", udpOnly.url, { rtspTransport: "auto" }),
        connect("cWrong", "wrongCam"),
        connect("cMissing", "missingCam"),
        connect("cTcp", "tcpCam"),
        connect("cAuto", "autoCam"),
        {
          // Another node type with a stored password: the Test must never lend it.
          id: "httpReq",
          z: "tab",
          type: "http request",
          method: "GET",
          url: "http://127.0.0.1:9/",
          authType: "basic",
          credentials: { user: "other", password: "Http-Req-Pa55-5521" },
          wires: [],
        },
      ]);
    });

    after(async function () {
      ws?.close();
      if (nr) await nr.cleanup();
      await lure?.close();
      rtspLure?.close();
    });

    const test = (body) => nr.request("POST", "/camrelay/camera-source/test", { body });

    it("the Test lends a camera's stored password to its own host, and no ffmpeg/ffprobe argv holds it", async function () {
      const watch = watchCommandLines(nr.pid);
      const res = await test({ id: "rtspCam", protocol: "ffmpeg", url: auth.url, password: "__PWRD__" });
      const lines = watch.stop();
      const answer = JSON.parse(res.body);
      assert.strictEqual(answer.error, undefined, answer.error);
      assert.ok(answer.width > 0, "a frame came through the stored password");
      assert.strictEqual(answer.video.codec, "h264");
      assert.ok(lines.length >= 2, `ffmpeg and ffprobe ran: ${lines.join("\n")}`);
      const running = nr.ffmpegs().map((c) => c.cmd.join(" "));
      assert.deepStrictEqual(leaksIn(lines.concat(running).join("\n") + res.body.toString()), []);
    });

    it("the Test never lends stored credentials to another host or from another node", async function () {
      const other = `rtsp://127.0.0.2:${rtspLure.address().port}/live`;
      const res = await test({ id: "rtspCam", protocol: "ffmpeg", url: other, password: "__PWRD__" });
      assert.match(JSON.parse(res.body).error, /not this camera's deployed host/);
      const fromHttpNode = await test({
        id: "httpReq",
        protocol: "mjpeg",
        url: lure.url,
        password: "__PWRD__",
      });
      assert.ok(JSON.parse(fromHttpNode.body).error, "no frame without a password");
      const sent = lure.requests.map((r) => r.headers.authorization || "").join("\n");
      const decoded = sent.replace(/Basic (\S+)/g, (_m, b) => Buffer.from(b, "base64").toString());
      assert.ok(
        !/Http-Req-Pa55-5521|other:/.test(decoded),
        `the http request node's login was sent: ${decoded}`,
      );
      assert.ok(!rtspLureData.join("").includes("Authorization"), "no login reached the other host");
      assert.deepStrictEqual(leaksIn(rtspLureData.join("")), []);
    });

    it("the Test does not run an ffmpegPath taken from the request; a local file still tests", async function () {
      const clip = path.join(tmp, "clip.mp4");
      execFileSync(BUILDS[0].ffmpeg, [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=10",
        "-t",
        "3",
        "-pix_fmt",
        "yuv420p",
        clip,
      ]);
      const res = await test({
        id: "new-camera",
        protocol: "ffmpeg",
        url: clip,
        ffmpegPath: path.join(tmp, "evil-ffmpeg"),
      });
      const answer = JSON.parse(res.body);
      assert.strictEqual(answer.error, undefined, answer.error);
      assert.strictEqual(answer.width, 160, "the local file camera works");
      assert.ok(!fs.existsSync(marker()), "the requested ffmpegPath was run");
      const refused = JSON.parse((await test({ protocol: "ffmpeg", url: `concat:${clip}|${clip}` })).body);
      assert.match(refused.error, /not supported/);
    });

    it("camera-connect shows why an RTSP camera is refused: auth failed, not found, transport refused", async function () {
      const statusOf = (id) => {
        const msgs = ws.messages.filter((m) => m.topic === `status/${id}`);
        return msgs.length ? msgs[msgs.length - 1].data?.text : undefined;
      };
      await nr.until(
        () =>
          statusOf("cWrong") === "auth failed" &&
          statusOf("cMissing") === "not found" &&
          statusOf("cTcp") === "transport refused" &&
          /fps/.test(statusOf("cAuto") || ""),
        "the refusal reasons in the status",
        40000,
      );
      assert.deepStrictEqual(leaksIn(nr.output + ws.messages.map((m) => m.raw).join("\n")), []);
    });
  });
});
