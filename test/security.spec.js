// Security, against a real Node-RED (node-red/red.js in a child process, as users run it) with
// httpNodeAuth and adminAuth set: every stream endpoint needs the httpNodeAuth login AND the node's token;
// every editor endpoint camrelay adds needs an admin login; camera and media-server credentials appear in
// no status, log line (at trace level), error, message, status page, metrics, exported flow or flow file.
// In-process: msg.filename cannot leave the recording directory and no message field becomes an ffmpeg
// argument (checked on the command lines of the ffmpeg processes really started).
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const helper = require("node-red-node-test-helper");
const transcodeNode = require("../dist/nodes/ffmpeg-transcode.js");
const { monotonicEpochMs } = require("../dist/nodes/lib/media");
const cams = require("./lib/fake-cameras");
const h = require("./lib/stream-out-helpers");
const { startNodeRed, hash, childrenOf } = require("./lib/soak-nodered");
const { recorderConfig } = require("./lib/transcode-helpers");
const { wait } = require("./lib/toolkit");

helper.init(require.resolve("node-red"));

const ROOT = path.join(__dirname, "..");

const VIEWER = { user: "viewer", password: "View-Pa55-2207" };
const ADMIN = { user: "admin", password: "Admin-Pa55-8812" };
const TOKEN = "Tok-Stream-6160";
const CAM_USER = "camuser";
const SECRETS = {
  camera: "Cam-Pa55-right-3391",
  wrongCamera: "Wrong-Pa55-7731",
  rtsp: "Rtsp-Pa55-9924",
  push: "Push-Pa55-5150",
};

const basic = (u, p) => "Basic " + Buffer.from(`${u}:${p}`).toString("base64");

/** Status code of a GET, resolved at the response headers (streams never end by themselves). */
function statusOf(url, headers = {}) {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.get(url, { headers, agent: false }, (res) => {
      answered = true;
      resolve(res.statusCode);
      req.destroy();
    });
    req.setTimeout(10000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
  });
}

/** Every httpAdmin route the nodes register, read from their source: [method, path]. */
function adminRoutes() {
  const routes = [];
  for (const f of fs.readdirSync(path.join(ROOT, "nodes")).filter((n) => n.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(ROOT, "nodes", f), "utf8");
    for (const m of text.matchAll(/RED\.httpAdmin\.(get|post|put|delete)\(\s*["'`]([^"'`]+)["'`]/g)) {
      routes.push([m[1].toUpperCase(), m[2].replace(/:[A-Za-z]+/g, "x")]);
    }
  }
  return routes;
}

describe("security in a real Node-RED with httpNodeAuth and adminAuth", function () {
  this.timeout(90000);
  let nr;
  let ws;
  let camA;
  let camB;
  const base = () => nr.base;

  before(async function () {
    this.timeout(60000);
    const auth = { scheme: "digest", user: CAM_USER, password: SECRETS.camera };
    camA = await cams.mjpegCamera({ fps: 10, auth });
    camB = await cams.mjpegCamera({ fps: 10, auth });
    nr = await startNodeRed({
      admin: ADMIN,
      settings: { httpNodeAuth: { user: VIEWER.user, pass: hash(VIEWER.password) } },
    });
    ws = await nr.comms();
    const debug = (id, z = "tab") => ({
      id,
      z,
      type: "debug",
      active: true,
      tosidebar: true,
      console: true,
      complete: "true",
      targetType: "full",
      wires: [],
    });
    await nr.deploy([
      { id: "tab", type: "tab", label: "security" },
      {
        id: "camA",
        type: "camera-source",
        name: "right",
        protocol: "mjpeg",
        url: camA.url,
        fps: 0,
        linger: 0,
        credentials: { user: CAM_USER, password: SECRETS.camera },
      },
      {
        id: "camB",
        type: "camera-source",
        name: "wrong",
        protocol: "mjpeg",
        url: camB.url,
        fps: 0,
        linger: 0,
        credentials: { user: CAM_USER, password: SECRETS.wrongCamera },
      },
      {
        id: "camC",
        type: "camera-source",
        name: "rtsp",
        protocol: "ffmpeg",
        url: `rtsp://127.0.0.1:1/stream`,
        fps: 0,
        linger: 0,
        credentials: { user: CAM_USER, password: SECRETS.rtsp },
      },
      {
        id: "cA",
        z: "tab",
        type: "camera-connect",
        camera: "camA",
        stats: 1,
        wires: [["sA", "hlsA", "pushA"], ["dA"]],
      },
      { id: "cB", z: "tab", type: "camera-connect", camera: "camB", stats: 1, wires: [["dB"], ["dB"]] },
      { id: "cC", z: "tab", type: "camera-connect", camera: "camC", stats: 1, wires: [["dC"], ["dC"]] },
      {
        id: "sA",
        z: "tab",
        type: "http-stream-out",
        path: "/sec/a",
        credentials: { token: TOKEN },
        wires: [["dS"]],
      },
      {
        id: "hlsA",
        z: "tab",
        type: "ffmpeg-transcode",
        preset: "hls",
        directory: "",
        quality: 30,
        keyframeInterval: 1,
        encoder: "libx264",
        wires: [["sA"]],
      },
      {
        id: "pushA",
        z: "tab",
        type: "ffmpeg-transcode",
        preset: "push",
        url: "rtmp://127.0.0.1:1/live/key",
        encoder: "libx264",
        credentials: { user: "pushuser", password: SECRETS.push },
        wires: [["dP"]],
      },
      debug("dA"),
      debug("dB"),
      debug("dC"),
      debug("dS"),
      debug("dP"),
      { id: "errW", z: "tab", type: "catch", scope: null, uncaught: false, wires: [["dE"]] },
      debug("dE"),
      { id: "statusW", z: "tab", type: "status", scope: null, wires: [["dT"]] },
      debug("dT"),
    ]);
    // Node ids must not equal a property value ("hls", "push"): Node-RED reads those as config references.
    // Let the wrong password trip the breaker, ffmpeg fail on the dead RTSP and push URLs, and HLS start.
    const viewer = { Authorization: basic(VIEWER.user, VIEWER.password) };
    await nr.until(
      async () =>
        (await nr.request("GET", `/sec/a/index.m3u8?token=${TOKEN}`, { auth: viewer.Authorization }))
          .status === 200,
      "an HLS playlist",
      30000,
    );
    await nr.until(
      () => /auth failed/.test(nr.output) || ws.messages.some((m) => /auth failed/.test(m.raw)),
      "the auth breaker",
      15000,
    );
    await wait(2000);
  });

  after(async () => {
    ws?.close();
    await nr?.cleanup();
    await camA?.close();
    await camB?.close();
  });

  it("every stream endpoint needs the httpNodeAuth login and the node's token (401 without either)", async () => {
    const good = basic(VIEWER.user, VIEWER.password);
    const playlist = (
      await nr.request("GET", `/sec/a/index.m3u8?token=${TOKEN}`, { auth: good })
    ).body.toString();
    // The newest segment, tried first: the store keeps a few, and a loaded machine takes seconds for the rest.
    const seg = playlist
      .split("\n")
      .filter((l) => /^seg-\d+\.m4s/.test(l))
      .pop()
      .split("?")[0];
    const init = /init\.mp4\?v=(\d+)/.exec(playlist)[1];
    const endpoints = [`/${seg}`, `/init.mp4?v=${init}`, ...h.ENDPOINTS];
    const q = (p, token) =>
      `${base()}/sec/a${p}${token === undefined ? "" : `${p.includes("?") ? "&" : "?"}token=${token}`}`;
    for (const p of endpoints) {
      const cases = [
        ["nothing", q(p), {}, 401],
        ["login without token", q(p), { Authorization: good }, 401],
        ["token without login", q(p, TOKEN), {}, 401],
        ["bearer token without login", q(p), { Authorization: `Bearer ${TOKEN}` }, 401],
        ["wrong login with token", q(p, TOKEN), { Authorization: basic(VIEWER.user, "nope") }, 401],
        ["login with wrong token", q(p, "Tok-wrong"), { Authorization: good }, 401],
      ];
      for (const [what, url, headers, expected] of cases) {
        assert.strictEqual(await statusOf(url, headers), expected, `${p || "(stream)"}: ${what}`);
      }
      const ok = await statusOf(q(p, TOKEN), { Authorization: good });
      assert.ok(ok === 200 || ok === 503, `${p || "(stream)"} with login and token: ${ok}`);
    }
    // The playlist carries the token into its URIs so a player with only the login can follow them.
    assert.match(playlist, new RegExp(`seg-\\d+\\.m4s\\?token=${TOKEN}`));
  });

  it("every editor endpoint camrelay adds needs an admin login", async () => {
    const routes = adminRoutes();
    assert.ok(routes.length > 0, "found the editor endpoints in nodes/*.ts");
    for (const [method, route] of routes) {
      const anon = await nr.request(method, route, { body: {}, auth: "" });
      assert.strictEqual(anon.status, 401, `${method} ${route} without a login: ${anon.status}`);
      const viewer = await nr.request(method, route, { body: {}, auth: basic(VIEWER.user, VIEWER.password) });
      assert.strictEqual(viewer.status, 401, `${method} ${route} with the stream login: ${viewer.status}`);
      const admin = await nr.request(method, route, { body: { id: "camB" } });
      assert.notStrictEqual(admin.status, 401, `${method} ${route} with an admin login`);
    }
  });

  it("camera and media-server credentials appear in no status, log, error, message, page or flow", async () => {
    // The editor's camera test, run on the node whose stored password is wrong: its answer is checked too.
    const probe = await nr.request("POST", "/camrelay/camera-source/test", {
      body: { id: "camB", protocol: "mjpeg", url: camB.url, password: "__PWRD__" },
    });
    const good = basic(VIEWER.user, VIEWER.password);
    const pages = [];
    for (const p of ["/status.json", "/status", "/metrics"]) {
      pages.push((await nr.request("GET", `/sec/a${p}?token=${TOKEN}`, { auth: good })).body.toString());
    }
    const exported = (await nr.request("GET", "/flows")).body.toString();
    const files = ["flows.json", "flows_cred.json"].map((f) =>
      fs.readFileSync(path.join(nr.userDir, f), "utf8"),
    );
    const places = {
      "comms (status, debug messages, notifications)": ws.messages.map((m) => m.raw).join("\n"),
      "Node-RED log (trace)": nr.output,
      "camera test answer": probe.body.toString(),
      "status page, status.json, metrics": pages.join("\n"),
      "exported flow (GET /flows)": exported,
      "flow files on disk": files.join("\n"),
    };
    // Make sure the places hold what they should, so an empty capture cannot pass.
    assert.ok(
      ws.messages.some((m) => m.topic === "debug" && /"right\/stats"|right\/stats/.test(m.raw)),
      "debug messages",
    );
    assert.ok(
      ws.messages.some((m) => /status\/cB/.test(m.topic) && /auth failed/.test(m.raw)),
      "camB's status",
    );
    assert.match(nr.output, /refused the user name or password/, "the auth failure is logged");
    assert.match(nr.output, /ffmpeg|rtsp/i, "the RTSP failure is logged");
    assert.ok(
      ws.messages.some((m) => /push/.test(m.raw) && /error/i.test(m.raw)),
      "the push failure reaches the flow",
    );
    const leaks = [];
    for (const [where, text] of Object.entries(places)) {
      for (const [name, secret] of Object.entries(SECRETS)) {
        if (text.includes(secret) || text.includes(encodeURIComponent(secret)))
          leaks.push(`${name} password in ${where}`);
      }
      for (const user of [CAM_USER, "pushuser"])
        if (text.includes(`${user}:`)) leaks.push(`${user}:... in ${where}`);
      if (text.includes(TOKEN)) leaks.push(`the stream token in ${where}`);
    }
    assert.deepStrictEqual(leaks, []);
    const flows = JSON.parse(exported);
    assert.ok(
      flows.some((n) => n.id === "camB" && n.type === "camera-source"),
      "the export holds the cameras",
    );
    assert.ok(
      !flows.some((n) => n.credentials && (n.credentials.password || n.credentials.token)),
      "no credentials in the export",
    );
  });
});

describe("message fields and ffmpeg (in process)", function () {
  this.timeout(60000);
  let tmp;
  let jpegs;
  let feeder;
  let seen;
  let watcher;

  before(async () => {
    jpegs = await h.makeJpegs({ count: 10 });
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-sec-"));
    seen = new Map();
    // Every ffmpeg this process starts, with its full command line, however short-lived.
    watcher = setInterval(() => {
      for (const c of childrenOf(process.pid)) if (!seen.has(c.pid) && c.cmd.length) seen.set(c.pid, c.cmd);
    }, 5);
  });
  afterEach(async () => {
    clearInterval(watcher);
    clearInterval(feeder);
    await helper.unload();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function load(props) {
    await helper.load(transcodeNode, [
      recorderConfig({ directory: path.join(tmp, "rec"), ...props }),
      { id: "out", type: "helper" },
    ]);
    const rec = helper.getNode("rec");
    let seq = 0;
    feeder = setInterval(() => {
      seq++;
      rec.receive({
        payload: jpegs[seq % jpegs.length],
        topic: "-vf INJECT-TOPIC",
        frame: { seq, time: monotonicEpochMs(), camera: "cam", width: 320, height: 240 },
      });
    }, 100);
    await wait(300);
    return rec;
  }

  it("refuses every msg.filename that leaves the directory, writes nothing outside it", async () => {
    const rec = await load();
    const outside = path.join(tmp, "outside");
    fs.mkdirSync(outside);
    const bad = [
      "../outside/escape",
      "../../etc/cron.d/camrelay",
      "/tmp/absolute",
      `${outside}/absolute`,
      "a/../../outside/b",
      "x/./../../outside/y",
      "..\\outside\\win",
      "C:\\Windows\\x",
      "\\\\server\\share\\x",
      "ok\0.mp4",
      "..",
      "a/..",
    ];
    for (const filename of bad) {
      const err = new Promise((resolve) => rec.once("call:error", (call) => resolve(String(call.args[0]))));
      rec.receive({ action: "start", filename });
      assert.match(await err, /refused|msg\.filename/, `msg.filename ${JSON.stringify(filename)}`);
    }
    await wait(500);
    assert.deepStrictEqual(fs.readdirSync(outside), [], "nothing written outside");
    assert.ok(!fs.existsSync("/tmp/absolute.mp4") && !fs.existsSync("/etc/cron.d/camrelay.mp4"));
    const recDir = path.join(tmp, "rec");
    assert.deepStrictEqual(fs.existsSync(recDir) ? fs.readdirSync(recDir) : [], [], "nor inside");
    assert.deepStrictEqual(
      [...seen.values()].filter((c) => /ffmpeg$/.test(c[0])),
      [],
      "no ffmpeg started",
    );
  });

  it("no message field becomes an ffmpeg argument; msg.filename is one output path inside the directory", async () => {
    const rec = await load();
    const injected = {
      action: "start",
      duration: 1,
      filename: "clips/-y -f null",
      args: ["-f", "null", "INJECT-ARGS"],
      ffmpegArgs: "-i /etc/passwd INJECT-FFARGS",
      customArgs: "INJECT-CUSTOM",
      outputArgs: "INJECT-OUTPUT",
      options: { vf: "INJECT-VF" },
      preset: "custom",
      url: "rtmp://INJECT-URL/live",
      directory: "/tmp/INJECT-DIR",
      size: "1x1 -vf INJECT-SIZE",
      quality: "1 INJECT-QUALITY",
      bitrate: "9 INJECT-BITRATE",
      encoder: "INJECT-ENCODER",
      keyframeInterval: "INJECT-KEY",
      ffmpegPath: "/bin/INJECT-PATH",
      payload: "-vf INJECT-PAYLOAD",
      topic: "INJECT-TRIGGER",
    };
    const recs = [];
    helper.getNode("out").on("input", (m) => recs.push(m));
    rec.receive(injected);
    await h.until(() => recs.length === 1, "the recording", 15000);
    const cmds = [...seen.values()].filter((c) => c.some((a) => /ffmpeg/.test(path.basename(a))));
    const runs = cmds.filter((c) => c.includes("-f") && c.includes("matroska"));
    assert.strictEqual(runs.length, 1, `one recording ffmpeg: ${cmds.map((c) => c.join(" ")).join(" || ")}`);
    const args = runs[0];
    const outputs = args.filter((a) => a.startsWith("file:"));
    assert.deepStrictEqual(outputs, [`file:${path.join(tmp, "rec", "clips", "-y -f null.mp4")}`]);
    for (const a of args) {
      if (a.startsWith("file:")) continue;
      assert.ok(!/INJECT/.test(a), `argument ${JSON.stringify(a)} came from a message`);
    }
    assert.ok(!args.includes("null"), "no -f null from the filename");
    const r = recs[0].recording;
    assert.strictEqual(r.file, path.join(tmp, "rec", "clips", "-y -f null.mp4"));
    assert.strictEqual(r.trigger.topic, "INJECT-TRIGGER", "the trigger is recorded as data only");
    assert.ok(!fs.existsSync("/tmp/INJECT-DIR"));
  });
});
