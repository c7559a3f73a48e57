// Every Node-RED we claim, through a real Node-RED process: camrelay installed in its user directory as a
// user's `npm install` would, the quick-start example deployed with a recorder beside it, MJPEG, snapshot
// and HLS fetched over HTTP, a recording that plays, a redeploy and an undeploy that leave no ffmpeg behind.
//
// `npm test` runs it against the project's Node-RED (4.1) on the Node that runs mocha. .ci/run runs it
// again against Node-RED 5 on Node 22 and Node-RED 3.1 on Node 18, installed in their own prefixes:
//   CAMRELAY_NODE_RED=<prefix>/node_modules/node-red <node> node_modules/.bin/mocha test/compat
"use strict";
const assert = require("assert");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const { startNodeRed, nodeRedDir } = require("../lib/browser-nodered");
const { ffmpegRead, until, wait } = require("../lib/transcode-helpers");

const root = path.join(__dirname, "..", "..");
const nodeRedVersion = JSON.parse(fs.readFileSync(path.join(nodeRedDir(), "package.json"), "utf8")).version;
const TYPES = [
  "camera-source",
  "camera-connect",
  "frame-throttle",
  "http-stream-out",
  "ffmpeg-transcode",
  "ui-camera",
];
const CONNECT = "c0a1e5f0d1a20003";

/** examples/01 plus an mp4 recorder fed by the same camera connect, started once by an inject after deploy. */
function flows(recordDir, doneFile) {
  const flow = JSON.parse(fs.readFileSync(path.join(root, "examples", "01-quick-start.json"), "utf8"));
  const z = flow.find((n) => n.type === "tab").id;
  flow.find((n) => n.id === CONNECT).wires[0].push("compat-rec");
  flow.push(
    {
      id: "compat-start",
      type: "inject",
      z,
      name: "record 3 s",
      props: [
        { p: "action", v: "start", vt: "str" },
        { p: "duration", v: "3", vt: "num" },
      ],
      repeat: "",
      crontab: "",
      once: true,
      onceDelay: 1,
      topic: "",
      x: 150,
      y: 300,
      wires: [["compat-rec"]],
    },
    {
      id: "compat-rec",
      type: "ffmpeg-transcode",
      z,
      name: "",
      preset: "mp4",
      directory: recordDir,
      preRoll: 0,
      postRoll: 0,
      duration: 0,
      maxDuration: 60,
      quality: 30,
      keyframeInterval: 1,
      encoder: "libx264",
      x: 360,
      y: 300,
      wires: [["compat-done"]],
    },
    {
      // a core node: each finished recording's path, one per line
      id: "compat-done",
      type: "file",
      z,
      name: "",
      filename: doneFile,
      filenameType: "str",
      appendNewline: true,
      createDir: true,
      overwriteFile: "false",
      encoding: "utf8",
      x: 560,
      y: 300,
      wires: [[]],
    },
  );
  return flow;
}

/** GET `url`, keeping at most `limit` bytes; resolves { status, type, body } (the request ends at `limit`). */
function get(url, limit = 4 << 20, ms = 15000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks = [];
      let size = 0;
      const finish = () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode,
          type: res.headers["content-type"] || "",
          body: Buffer.concat(chunks),
        });
      };
      res.on("data", (d) => {
        chunks.push(d);
        size += d.length;
        if (size >= limit) {
          finish();
          req.destroy();
        }
      });
      res.on("end", finish);
      res.on("error", () => {});
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer from ${url} within ${ms} ms`)), ms);
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** pids of `pid`'s descendants whose command is ffmpeg (from /proc). */
function ffmpegDescendants(pid) {
  const children = new Map();
  const comm = new Map();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
      comm.set(Number(entry), stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
    } catch {
      // gone meanwhile
    }
  }
  const found = [];
  const walk = (p) => {
    for (const c of children.get(p) || []) {
      if (/ffmpeg/.test(comm.get(c))) found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found.sort((a, b) => a - b);
}

async function deploy(base, flow) {
  const res = await fetch(`${base}/flows`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
    body: JSON.stringify(flow),
  });
  assert.strictEqual(res.status, 204, `deploy answered ${res.status}: ${await res.text()}`);
}

describe(`Node-RED ${nodeRedVersion} on Node ${process.version}: camrelay in a real Node-RED process`, function () {
  this.timeout(60000);
  let nodeRed;
  let tmp;
  let recordDir;
  let doneFile;
  let flow;

  before(async function () {
    this.timeout(90000);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-compat-"));
    recordDir = path.join(tmp, "recordings");
    doneFile = path.join(tmp, "recorded.txt");
    flow = flows(recordDir, doneFile);
    nodeRed = await startNodeRed({ flows: flow, timeoutMs: 60000 });
  });

  after(async function () {
    this.timeout(30000);
    if (nodeRed) await nodeRed.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("loads the six camrelay nodes (ui-camera too, with or without Dashboard 2) with no error", async function () {
    const settings = await (await fetch(`${nodeRed.base}/settings`)).json();
    // a Node-RED started from a git checkout or linked install says "4.1.8-git"
    assert.strictEqual(
      settings.version.replace(/-git$/, ""),
      nodeRedVersion,
      "the Node-RED we meant to start",
    );
    const sets = await (
      await fetch(`${nodeRed.base}/nodes`, { headers: { Accept: "application/json" } })
    ).json();
    const ours = sets.filter((s) => s.module === "@camrelay/node-red-camrelay");
    assert.deepStrictEqual(ours.flatMap((s) => s.types).sort(), [...TYPES].sort(), JSON.stringify(ours));
    for (const set of ours) {
      assert.strictEqual(set.err, undefined, `${set.name}: ${set.err}`);
      assert.strictEqual(set.enabled, true, `${set.name} enabled: ${JSON.stringify(set)}`);
    }
    assert.doesNotMatch(nodeRed.log(), /\[error\]/, "no error in Node-RED's log");
  });

  it("deploys the quick-start flow and serves MJPEG, a snapshot and HLS", async function () {
    const snap = await get(`${nodeRed.base}/camera/demo/snapshot.jpg?wait=1`);
    assert.strictEqual(snap.status, 200);
    assert.strictEqual(snap.type, "image/jpeg");
    assert.strictEqual(snap.body.readUInt16BE(0), 0xffd8, "a JPEG");

    const mjpeg = await get(`${nodeRed.base}/camera/demo`, 200 << 10);
    assert.strictEqual(mjpeg.status, 200);
    assert.match(mjpeg.type, /^multipart\/x-mixed-replace/);
    const jpegs = mjpeg.body.toString("latin1").split("\xff\xd8").length - 1;
    assert.ok(jpegs >= 2, `${jpegs} JPEG frames in the MJPEG stream`);

    // HLS: the playlist names fMP4 segments once ffmpeg has written one (1 s fragments)
    let playlist = "";
    const deadline = Date.now() + 30000;
    while (!/\.m4s/.test(playlist) && Date.now() < deadline) {
      const res = await get(`${nodeRed.base}/camera/demo/index.m3u8`).catch(() => undefined);
      if (res?.status === 200) playlist = res.body.toString("utf8");
      else await wait(200);
      if (!/\.m4s/.test(playlist)) await wait(200);
    }
    assert.match(playlist, /^#EXTM3U/);
    const lines = playlist.split("\n").map((l) => l.trim());
    const segment = lines.filter((l) => l && !l.startsWith("#")).pop();
    const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(playlist)?.[1];
    assert.ok(init, `an init segment in ${playlist}`);
    const initRes = await get(new URL(init, `${nodeRed.base}/camera/demo/index.m3u8`).href);
    const segRes = await get(new URL(segment, `${nodeRed.base}/camera/demo/index.m3u8`).href);
    assert.strictEqual(initRes.status, 200);
    assert.strictEqual(segRes.status, 200);
    assert.ok(initRes.body.includes("moov"), "the init segment has a moov box");
    assert.ok(segRes.body.includes("moof"), "the media segment has a moof box");
  });

  it("records a file that plays (H.264, every frame decodes)", async function () {
    const done = await until(
      () => fs.existsSync(doneFile) && fs.readFileSync(doneFile, "utf8").trim(),
      40000,
      "the recorder's message with the file's path",
    );
    const file = done.split("\n")[0];
    assert.ok(file.startsWith(recordDir), `${file} in ${recordDir}`);
    const read = ffmpegRead(file);
    assert.strictEqual(read.codec, "h264");
    assert.strictEqual(read.width, 640);
    assert.ok(read.frames >= 10, `${read.frames} frames in a 3 s recording at 10 fps`);
  });

  it("a redeploy replaces the ffmpeg processes, an undeploy leaves none and no route", async function () {
    const before = await until(
      () => ffmpegDescendants(nodeRed.child.pid).length > 0 && ffmpegDescendants(nodeRed.child.pid),
      20000,
      "the HLS ffmpeg",
    );
    // change a setting so that a full deploy restarts the flow with new settings
    flow.find((n) => n.type === "frame-throttle").fps = 5;
    await deploy(nodeRed.base, flow);
    await until(
      () => {
        const now = ffmpegDescendants(nodeRed.child.pid);
        return now.length > 0 && now.every((p) => !before.includes(p));
      },
      30000,
      `new ffmpeg processes in place of ${before.join(", ")}`,
    );
    const snap = await get(`${nodeRed.base}/camera/demo/snapshot.jpg?wait=1`);
    assert.strictEqual(snap.status, 200, "serving again after the redeploy");

    await deploy(nodeRed.base, []);
    await until(
      () => ffmpegDescendants(nodeRed.child.pid).length === 0,
      20000,
      "no ffmpeg after the undeploy",
    );
    const gone = await get(`${nodeRed.base}/camera/demo/snapshot.jpg`);
    assert.strictEqual(gone.status, 404, "the route is gone");
    assert.doesNotMatch(nodeRed.log(), /\[error\]/, "no error in Node-RED's log");
  });
});
