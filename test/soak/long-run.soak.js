// The long run (`npm run test:soak`, CAMRELAY_SOAK_MINUTES, 10 by default): a real Node-RED with a camera
// that misbehaves every so often (drops, silence, 500s, restarts, resolution changes, a never-ending frame),
// viewers that come and go, some never reading, HLS running, and a sensor that triggers a recording every
// 30 s. Every 10 s it samples Node-RED's RSS, descriptors and ffmpeg children. At the end: Node-RED is up,
// the camera came back after every fault, each recording plays, and memory and descriptors are flat.
"use strict";
const assert = require("assert");
const fs = require("fs");
const net = require("net");
const os = require("os");
const path = require("path");
const cams = require("../lib/fake-cameras");
const { Viewer } = require("../lib/soak-viewer");
const { startNodeRed, recordingAndHls } = require("../lib/soak-nodered");
const { ffprobe } = require("../lib/transcode-helpers");
const { MB } = require("../lib/soak-env");
const { wait } = require("../lib/toolkit");

const MINUTES = Number(process.env.CAMRELAY_SOAK_MINUTES || 10);
const SMALL = cams.makeFrames(10, "320x240");
const LARGE = cams.makeFrames(10, "640x480");

describe(`soak: ${MINUTES} minutes of a misbehaving camera, viewers and recordings`, function () {
  this.timeout((MINUTES + 5) * 60000);
  let nr;
  let cam;
  let dir;
  const viewers = new Set();
  const stuck = new Set();

  before(async () => {
    cam = await cams.mjpegCamera({ fps: 10, frames: SMALL });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-soak-"));
    nr = await startNodeRed({
      settings: { logging: { console: { level: "info", metrics: false, audit: false } } },
    });
    await nr.deploy([
      { id: "tab", type: "tab", label: "soak" },
      {
        id: "cam",
        type: "camera-source",
        name: "soak",
        protocol: "mjpeg",
        url: cam.url,
        fps: 0,
        linger: 0,
        watchdog: 3,
        maxFrameKB: 512,
      },
      { id: "conn", z: "tab", type: "camera-connect", camera: "cam", wires: [["view", "rec", "live"], []] },
      {
        id: "view",
        z: "tab",
        type: "http-stream-out",
        path: "/soak/cam",
        offlineAfter: 2,
        stallTimeout: 5,
        wires: [[]],
      },
      ...recordingAndHls(dir, {
        rec: { preRoll: 3, postRoll: 2, duration: 10, keepGB: 0.2 },
        trigger: { repeat: "30", onceDelay: 5 },
      }),
    ]);
  });

  after(async () => {
    for (const v of viewers) v.close();
    for (const s of stuck) s.destroy();
    await nr?.cleanup();
    await cam?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const faults = [
    ["drop mid-frame", async () => cam.cutNext()],
    [
      "silent 6 s",
      async () => {
        cam.silence(true);
        await wait(6000);
        cam.silence(false);
      },
    ],
    [
      "500 twice",
      async () => {
        cam.failNext(500, 2);
        cam.dropClients();
      },
    ],
    ["restart", async () => cam.restart(Math.round(Math.random() * 3000))],
    ["bigger frames", async () => cam.setFrames(LARGE)],
    ["smaller frames", async () => cam.setFrames(SMALL)],
    [
      "never-ending frame",
      async () => {
        cam.endlessNext(1);
        cam.dropClients();
      },
    ],
  ];

  it("stays up, recovers from every fault, keeps memory and descriptors flat", async () => {
    const port = nr.port;
    const samples = [];
    const sample = () => {
      const fds = nr.fds();
      samples.push({ t: Date.now(), rss: nr.rss(), fds: fds.total, ffmpegs: nr.ffmpegs().length });
    };
    const end = Date.now() + MINUTES * 60000;
    const sampler = setInterval(sample, 10000);
    let faultCount = 0;
    let recovered = 0;
    /** Viewers come and go (15 at a time, 5 new each round); a few never read (5 at a time). */
    const churn = () => {
      for (let i = 0; i < 5; i++) viewers.add(new Viewer(`${nr.base}/soak/cam`, [...SMALL, ...LARGE]));
      for (const v of [...viewers].slice(0, Math.max(0, viewers.size - 15))) {
        v.close();
        viewers.delete(v);
      }
      const s = net.connect(port, "127.0.0.1", () => {
        s.write("GET /soak/cam HTTP/1.1\r\nHost: x\r\n\r\n");
        s.pause();
      });
      s.on("error", () => undefined);
      stuck.add(s);
      if (stuck.size > 5) {
        const [old] = stuck;
        old.destroy();
        stuck.delete(old);
      }
    };
    try {
      // Reach the steady number of viewers before the first sample.
      for (let i = 0; i < 5; i++) churn();
      await wait(8000);
      sample();
      while (Date.now() < end) {
        churn();
        // One fault, then wait until a fresh viewer sees the live picture again.
        const [name, fault] = faults[faultCount % faults.length];
        faultCount++;
        await fault();
        const probe = new Viewer(`${nr.base}/soak/cam`, [...SMALL, ...LARGE]);
        try {
          await probe.ready;
          await probe.waitFor("live", 0, 60000);
          recovered++;
        } catch (err) {
          throw new Error(`no live picture after "${name}": ${err.message}`);
        } finally {
          probe.close();
        }
        await wait(15000);
      }
    } finally {
      clearInterval(sampler);
    }
    sample();
    assert.ok(!nr.exited, "Node-RED is still running");
    assert.strictEqual(recovered, faultCount, "the picture came back after every fault");
    // Memory and descriptors: compare the last third of the run with the first third.
    const third = Math.max(1, Math.floor(samples.length / 3));
    const avg = (list, key) => list.reduce((a, s) => a + s[key], 0) / list.length;
    const early = samples.slice(0, third);
    const late = samples.slice(-third);
    const rssGrowth = (avg(late, "rss") - avg(early, "rss")) / MB;
    const fdGrowth = avg(late, "fds") - avg(early, "fds");
    console.log(
      `      ${faultCount} faults, ${samples.length} samples; rss ${(avg(early, "rss") / MB).toFixed(1)} -> ` +
        `${(avg(late, "rss") / MB).toFixed(1)} MB; fds ${avg(early, "fds").toFixed(0)} -> ${avg(late, "fds").toFixed(0)}; ` +
        `max ffmpeg ${Math.max(...samples.map((s) => s.ffmpegs))}`,
    );
    assert.ok(rssGrowth < 20, `rss grew ${rssGrowth.toFixed(1)} MB from the first to the last third`);
    assert.ok(fdGrowth < 10, `descriptors grew by ${fdGrowth.toFixed(0)}`);
    assert.ok(
      Math.max(...samples.map((s) => s.ffmpegs)) <= 3,
      "never more than the recorder, HLS and one restarting",
    );
    const clips = fs.readdirSync(dir).filter((f) => f.endsWith(".mp4"));
    assert.ok(clips.length >= Math.floor(MINUTES * 2) - 2, `${clips.length} recordings in ${MINUTES} min`);
    for (const clip of clips.slice(0, -1)) {
      const probe = ffprobe(path.join(dir, clip));
      assert.ok(Number(probe.format.duration) > 1, `${clip} plays`);
    }
  });
});
