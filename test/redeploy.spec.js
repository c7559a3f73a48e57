// Redeploys, in a real Node-RED process: full deploys of a flow with a camera, 20 MJPEG viewers, an mp4
// recording running and an HLS output. After them: no extra ffmpeg (children of Node-RED, and any process
// that inherited its environment, so orphans count too), no extra socket or file descriptor in Node-RED,
// no stale HTTP route, RSS within 20 MB of where it started, and every viewer back on the new flow.
// `npm test` deploys 8 times; `npm run test:soak` 50 times.
"use strict";
const assert = require("assert");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");
const cams = require("./lib/fake-cameras");
const { Viewer } = require("./lib/soak-viewer");
const { startNodeRed, recordingAndHls } = require("./lib/soak-nodered");
const { pick, MB } = require("./lib/soak-env");
const { wait, processesWithEnv } = require("./lib/toolkit");

const FRAMES = cams.makeFrames(10, "320x240");
const VIEWERS = 20;
const DEPLOYS = pick(8, 50);

/** Every process that inherited `marker` in its environment (Node-RED's descendants, orphans included). */
const processesWithMarker = (marker) => processesWithEnv(marker);

describe("redeploys in a real Node-RED", function () {
  this.timeout(pick(240000, 1800000));
  let nr;
  let cam;
  let dir;
  let viewers = [];
  const marker = `CAMRELAY_REDEPLOY_RUN=${crypto.randomBytes(6).toString("hex")}`;

  before(async () => {
    cam = await cams.mjpegCamera({ fps: 10, frames: FRAMES });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-redeploy-"));
    nr = await startNodeRed({
      env: { [marker.split("=")[0]]: marker.split("=")[1] },
      settings: { logging: { console: { level: "info", metrics: false, audit: false } } },
    });
  });
  after(async () => {
    viewers.forEach((v) => v.close());
    await nr?.cleanup();
    await cam?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The flow of generation `g`: one fixed stream path and one that changes with every deploy. */
  function flow(g) {
    return [
      { id: "tab", type: "tab", label: `redeploy ${g}` },
      {
        id: "cam",
        type: "camera-source",
        name: `yard ${g}`,
        protocol: "mjpeg",
        url: cam.url,
        fps: 0,
        linger: 0,
      },
      {
        id: "conn",
        z: "tab",
        type: "camera-connect",
        camera: "cam",
        wires: [["view", "gen", "rec", "live"], []],
      },
      { id: "view", z: "tab", type: "http-stream-out", path: "/rd/cam", wires: [[]] },
      { id: "gen", z: "tab", type: "http-stream-out", path: `/rd/gen${g}`, wires: [[]] },
      ...recordingAndHls(dir),
    ];
  }

  /** Deploys generation g and waits until the flow is whole again: viewers watching, recording, HLS live. */
  async function deploy(g) {
    await nr.deploy(flow(g), "full");
    for (const v of viewers) v.close();
    viewers = [];
    for (let i = 0; i < VIEWERS; i++) viewers.push(new Viewer(`${nr.base}/rd/cam`, FRAMES));
    await Promise.all(viewers.map((v) => v.ready.then(() => v.waitFor("live", 0, 15000))));
    await nr.until(() => nr.ffmpegs().length === 2, "the recording and the HLS ffmpeg", 20000);
    await nr.until(
      async () => (await nr.request("GET", "/rd/cam/index.m3u8")).status === 200,
      "an HLS playlist",
      20000,
    );
  }

  function snapshot() {
    const fds = nr.fds();
    return {
      rss: nr.rss(),
      fds: fds.total,
      sockets: fds.socket,
      pipes: fds.pipe,
      files: fds.file,
      ffmpegs: nr.ffmpegs().length,
      descendants: processesWithMarker(marker).filter((p) => p.pid !== nr.pid).length,
    };
  }

  it(`${DEPLOYS} full deploys leave no extra ffmpeg, descriptor or route, and RSS within 20 MB`, async () => {
    await deploy(0);
    await wait(3000);
    const start = snapshot();
    const samples = [start];
    const t0 = Date.now();
    for (let g = 1; g <= DEPLOYS; g++) {
      await deploy(g);
      const old = await nr.request("GET", `/rd/gen${g - 1}/status.json`);
      assert.strictEqual(old.status, 404, `the previous generation's route /rd/gen${g - 1} is gone`);
      const now = await nr.request("GET", `/rd/gen${g}/status.json`);
      assert.strictEqual(now.status, 200, `the new route /rd/gen${g} answers`);
      if (g % 5 === 0 || g === DEPLOYS) samples.push(snapshot());
    }
    const perDeploy = (Date.now() - t0) / DEPLOYS;
    await wait(3000);
    const end = snapshot();
    const rows = [...samples, end].map(
      (s) =>
        `rss ${(s.rss / MB).toFixed(1)} MB, fds ${s.fds} (sockets ${s.sockets}, pipes ${s.pipes}, files ${s.files}), ffmpeg ${s.ffmpegs}`,
    );
    console.log(
      `      ${DEPLOYS} deploys, ${(perDeploy / 1000).toFixed(1)} s each:\n        ${rows.join("\n        ")}`,
    );
    assert.strictEqual(end.ffmpegs, start.ffmpegs, "ffmpeg children of Node-RED");
    assert.strictEqual(
      end.descendants,
      start.descendants,
      "processes that inherited Node-RED's environment (orphans too)",
    );
    assert.ok(end.sockets <= start.sockets + 2, `sockets ${start.sockets} -> ${end.sockets}`);
    assert.ok(end.pipes <= start.pipes, `pipes ${start.pipes} -> ${end.pipes}`);
    assert.ok(end.files <= start.files, `files ${start.files} -> ${end.files}`);
    assert.ok(
      end.rss - start.rss < 20 * MB,
      `rss ${(start.rss / MB).toFixed(1)} -> ${(end.rss / MB).toFixed(1)} MB`,
    );
    // One camera connection at a time, and the recordings the deploys closed are all there.
    assert.strictEqual(cam.open, 1, "one camera connection");
    const clips = fs.readdirSync(dir).filter((f) => f.endsWith(".mp4"));
    assert.ok(clips.length >= DEPLOYS, `${clips.length} recordings closed by ${DEPLOYS} deploys`);
  });

  it("stopping Node-RED leaves no ffmpeg and no camera connection behind", async () => {
    const pids = processesWithMarker(marker).map((p) => p.pid);
    assert.ok(pids.length >= 3, "Node-RED and its two ffmpeg run");
    viewers.forEach((v) => v.close());
    await nr.stop();
    await wait(500);
    assert.deepStrictEqual(processesWithMarker(marker), [], "nothing survives Node-RED");
    assert.strictEqual(cam.open, 0, "the camera connection is closed");
  });
});
