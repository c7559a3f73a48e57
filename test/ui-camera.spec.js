// The ui-camera widget (issue 15) in a real Node-RED process with the real @flowfuse/node-red-dashboard
// from node_modules, driven in real Chromium: the palette, a live picture, the snapshot and record buttons
// (recording through a flow into ffmpeg transcode mp4 and back into the widget's list, played there), eight
// widgets live on one page, delete refused without permission, and example 04 rebuilt on the widget, with
// no horizontal overflow at 1280x1100 and its screenshot for the README (CAMRELAY_SCREENSHOT_DIR=docs).
/* global document, window */
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const bcrypt = require("bcryptjs");
const { startNodeRed } = require("./lib/soak-nodered");
const { launchChromium, pixelDifference } = require("./lib/browser-chromium");
const { dashboardBase, dashboardPage, dashboardGroup, uiCamera } = require("./lib/dashboard-flow");
const { until, wait } = require("./lib/toolkit");

const root = path.join(__dirname, "..");
const shots = path.resolve(
  root,
  process.env.CAMRELAY_SCREENSHOT_DIR || path.join(os.tmpdir(), "camrelay-screenshots"),
);
const ADMIN = { user: "admin", password: "Admin-Pa55-1515" };
const TAB = "tab";
const WALL = 8;

/** The widget test flow: one camera, its stream with an mp4 recorder wired in, and two dashboard pages. */
function testFlow(dir) {
  const flow = [
    { id: TAB, type: "tab", label: "ui-camera test" },
    ...dashboardBase(),
    dashboardPage({ id: "page-front", name: "Front", path: "/front", order: 1 }),
    dashboardPage({ id: "page-wall", name: "Wall", path: "/wall", order: 2 }),
    dashboardGroup({ id: "grp-front", page: "page-front", name: "Front door", width: 6 }),
    dashboardGroup({ id: "grp-wall", page: "page-wall", name: "Wall", width: 12 }),
    dashboardPage({ id: "page-off", name: "Offline", path: "/off", order: 3 }),
    dashboardGroup({ id: "grp-off", page: "page-off", name: "Garage", width: 6 }),
    {
      id: "cam",
      type: "camera-source",
      name: "pattern",
      protocol: "test",
      url: "320x240",
      fps: 10,
      linger: 10,
      alwaysOn: true,
      watchdog: 10,
      maxFrameKB: 4096,
      mode: "stream",
      imageSize: "320x240",
    },
    {
      id: "connect",
      z: TAB,
      type: "camera-connect",
      camera: "cam",
      autoStart: true,
      stats: 0,
      wires: [["out", "rec", ...Array.from({ length: WALL }, (_, i) => `wall-out-${i}`)], []],
    },
    { id: "out", z: TAB, type: "http-stream-out", path: "/cam/front", maxClients: 100, wires: [[]] },
    {
      id: "rec",
      z: TAB,
      type: "ffmpeg-transcode",
      preset: "mp4",
      directory: dir,
      preRoll: 0,
      postRoll: 0,
      duration: 0,
      maxDuration: 60,
      quality: 32,
      keyframeInterval: 1,
      encoder: "libx264",
      wires: [["out"]],
    },
    uiCamera({
      id: "widget",
      z: TAB,
      group: "grp-front",
      stream: "out",
      label: "Front door",
      x: 400,
      y: 200,
      wires: [["route"]],
    }),
    {
      // record -> a 2 s recording; snapshot -> what the test checks (through the debug sidebar)
      id: "route",
      z: TAB,
      type: "function",
      name: "record or report",
      func:
        'if (msg.action === "record") return [{ action: "start", duration: 2, topic: "dashboard", payload: msg.path }, null];\n' +
        "const p = msg.payload;\n" +
        "return [null, { payload: { action: msg.action, path: msg.path, jpeg: Buffer.isBuffer(p) && p[0] === 0xff && p[1] === 0xd8, bytes: Buffer.isBuffer(p) ? p.length : 0, client: !!(msg._client && msg._client.socketId) } }];",
      outputs: 2,
      wires: [["rec"], ["dbg-report"]],
    },
    {
      id: "dbg-report",
      z: TAB,
      type: "debug",
      active: true,
      tosidebar: true,
      complete: "payload",
      wires: [],
    },
    // an inject that shows another path in the widget (msg.payload), kept for pages opened later
    {
      id: "show-wall0",
      z: TAB,
      type: "inject",
      props: [{ p: "payload", v: "/cam/wall0", vt: "str" }],
      wires: [["widget"]],
    },
    // an inject that asks the widget's node for a snapshot (msg.action), the node takes it itself
    {
      id: "ask-snapshot",
      z: TAB,
      type: "inject",
      props: [{ p: "action", v: "snapshot", vt: "str" }],
      wires: [["widget"]],
    },
  ];
  // A camera that goes offline and comes back: GET /ctl/stop or /ctl/start sends that action to its own
  // camera connect, whose http stream out says offline 1.5 s after the last picture.
  flow.push(
    {
      id: "cc-off",
      z: TAB,
      type: "camera-connect",
      camera: "cam",
      autoStart: true,
      stats: 0,
      wires: [["out-off"], []],
    },
    { id: "out-off", z: TAB, type: "http-stream-out", path: "/cam/off", offlineAfter: 1.5, wires: [[]] },
    uiCamera({ id: "widget-off", z: TAB, group: "grp-off", stream: "out-off", label: "Garage" }),
    { id: "ctl", type: "http in", z: TAB, url: "/ctl/:action", method: "get", wires: [["ctlfn"]] },
    {
      id: "ctlfn",
      type: "function",
      z: TAB,
      func: "msg.payload = 'ok';\nreturn [{ action: msg.req.params.action }, msg];",
      outputs: 2,
      wires: [["cc-off"], ["ctlres"]],
    },
    { id: "ctlres", type: "http response", z: TAB, statusCode: "", wires: [] },
  );
  for (let i = 0; i < WALL; i++) {
    flow.push({ id: `wall-out-${i}`, z: TAB, type: "http-stream-out", path: `/cam/wall${i}`, wires: [[]] });
    flow.push(
      uiCamera({
        id: `wall-${i}`,
        z: TAB,
        group: "grp-wall",
        stream: `wall-out-${i}`,
        order: i + 1,
        width: 3,
      }),
    );
  }
  return flow;
}

/** Example 04 as shipped, with its recordings in `dir`. */
function example04(dir) {
  const flow = JSON.parse(fs.readFileSync(path.join(root, "examples", "04-dashboard.json"), "utf8"));
  for (const n of flow) if (n.type === "ffmpeg-transcode" && n.preset === "mp4") n.directory = dir;
  return flow;
}

/**
 * Per widget on the page: its state, transport and whether its picture moves within `ms` (a <video>'s
 * currentTime advances, or the pixels of the <img> change: an MJPEG <img> keeps one src).
 */
function widgetsLive(page, ms = 1500) {
  return page.evaluate(async (ms) => {
    const canvas = document.createElement("canvas");
    canvas.width = 64;
    canvas.height = 48;
    const g = canvas.getContext("2d", { willReadFrequently: true });
    const pixels = (img) => {
      g.drawImage(img, 0, 0, 64, 48);
      return Array.from(g.getImageData(0, 0, 64, 48).data);
    };
    const probe = () =>
      [...document.querySelectorAll(".camrelay-ui-camera")].map((el) => {
        // camrelay's player keeps its <video>/<img> in an open shadow root; the MJPEG fallback an <img>
        const player = el.querySelector("camrelay-player");
        const shadow = player && player.shadowRoot;
        const video = shadow && shadow.querySelector("video:not([hidden])");
        const img = shadow
          ? shadow.querySelector("img.live:not([hidden])")
          : el.querySelector("img.camrelay-ui-camera-img");
        const shown = img && img.complete && img.naturalWidth > 0;
        return {
          state: el.dataset.state,
          transport: el.dataset.transport,
          source: el.dataset.source,
          player: player ? player.transport : null,
          video: video ? video.currentTime : null,
          pixels: !video && shown ? pixels(img) : null,
        };
      });
    const a = probe();
    await new Promise((r) => setTimeout(r, ms));
    const b = probe();
    return a.map((x, i) => {
      const y = b[i];
      let moving = false;
      if (x.video !== null && y.video !== null) moving = y.video > x.video;
      else if (x.pixels && y.pixels) moving = x.pixels.some((v, j) => Math.abs(v - y.pixels[j]) > 8);
      return {
        state: y.state,
        transport: y.transport,
        source: y.source,
        player: y.player,
        video: y.video,
        moving,
      };
    });
  }, ms);
}

describe("ui-camera: the Dashboard 2 widget in a real Node-RED and Chromium", function () {
  this.timeout(60000);
  let nr;
  let browser;
  let page;
  let comms;
  let dir;
  const pageErrors = [];

  before(async function () {
    this.timeout(90000);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-ui-camera-"));
    nr = await startNodeRed({
      settings: {
        // Anyone may look at the editor (read); changing flows or deleting clips needs the admin.
        adminAuth: {
          type: "credentials",
          users: [{ username: ADMIN.user, password: bcrypt.hashSync(ADMIN.password, 8), permissions: "*" }],
          default: { permissions: "read" },
        },
        logging: { console: { level: "info", metrics: false, audit: false } },
        telemetry: { enabled: false }, // no update-notification prompt over the editor
      },
    });
    const r = await nr.request("POST", "/auth/token", {
      body: {
        client_id: "node-red-admin",
        grant_type: "password",
        scope: "*",
        username: ADMIN.user,
        password: ADMIN.password,
      },
    });
    assert.strictEqual(r.status, 200, `admin login: ${r.body}`);
    nr.token = JSON.parse(r.body).access_token;
    await nr.deploy(testFlow(dir));
    comms = await nr.comms(["debug"]);
    browser = await launchChromium({ viewport: { width: 1280, height: 1100 } });
    page = await browser.context.newPage();
    page.on("pageerror", (err) => pageErrors.push(err.message));
  });

  after(async function () {
    this.timeout(30000);
    comms?.close();
    if (browser) await browser.close();
    if (nr) await nr.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The debug messages of the test flow's "debug" node, payloads only. */
  const debugPayloads = () =>
    comms.messages
      .filter((m) => m.topic === "debug" && m.data && m.data.id === "dbg-report")
      .map((m) => {
        try {
          return JSON.parse(m.data.msg);
        } catch {
          return m.data.msg;
        }
      });

  it("is in the editor's palette under Dashboard 2's category, and its bundle is served", async function () {
    // The editor as the admin (anonymous users may only look): the token where the editor keeps it.
    await page.goto(`${nr.base}/`);
    await page.evaluate(
      (token) =>
        window.localStorage.setItem(
          "auth-tokens",
          JSON.stringify({ access_token: token, expires_in: 3600, token_type: "Bearer" }),
        ),
      nr.token,
    );
    await page.reload();
    await page.waitForSelector('.red-ui-palette-node[data-palette-type="ui-camera"]', { timeout: 45000 });
    const categoryOf = (type) =>
      page
        .locator(`.red-ui-palette-node[data-palette-type="${type}"]`)
        .evaluate((el) => el.closest(".red-ui-palette-category").id);
    const ours = await categoryOf("ui-camera");
    assert.strictEqual(ours, await categoryOf("ui-button"), "the same category as the dashboard's button");
    assert.match(ours, /dashboard/i);
    const label = await page.locator('.red-ui-palette-node[data-palette-type="ui-camera"]').innerText();
    assert.strictEqual(label.trim(), "camera");
    // Its dialog lists the http stream out nodes to pick from, with the deployed one chosen.
    await page.click(`#red-ui-tab-${TAB} a`);
    const node = page.locator('g.red-ui-flow-node-group[id="widget"] rect.red-ui-flow-node');
    await node.click();
    await page.waitForTimeout(150);
    await node.click();
    await page.waitForSelector("#node-input-stream", { state: "visible", timeout: 10000 });
    const options = await page.locator("#node-input-stream option").allTextContents();
    assert.ok(options.includes("/cam/front") && options.includes("/cam/wall7"), `stream list: ${options}`);
    assert.strictEqual(await page.inputValue("#node-input-stream"), "out");
    assert.strictEqual(await page.locator(".ui-camera-path-row").isVisible(), false, "no path field then");
    assert.deepStrictEqual(
      await page.locator(".ui-camera-control:checked").evaluateAll((els) => els.map((e) => e.value)),
      ["snapshot", "fullscreen", "audio", "record"],
    );
    const res = await fetch(`${nr.base}/resources/@camrelay/node-red-camrelay/ui-camera.umd.js`);
    assert.strictEqual(res.status, 200);
    assert.match(await res.text(), /UICamera/);
  });

  it("shows a live, changing picture on a deployed dashboard page", async function () {
    await page.goto(`${nr.base}/dashboard/front`);
    const widget = page.locator(".camrelay-ui-camera").first();
    await widget.waitFor({ timeout: 30000 });
    await page.waitForSelector('.camrelay-ui-camera[data-state="live"]', { timeout: 20000 });
    assert.strictEqual(await widget.locator(".camrelay-ui-camera-label").innerText(), "Front door");
    const stage = widget.locator(".camrelay-ui-camera-stage");
    const a = await stage.screenshot();
    await wait(800);
    const b = await stage.screenshot();
    const diff = await pixelDifference(page, a, b);
    assert.ok(diff > 0.001, `the picture changes (${(diff * 100).toFixed(2)} % of pixels differ)`);
    const [live] = await widgetsLive(page);
    assert.ok(live.moving, `the widget's picture moves: ${JSON.stringify(live)}`);
  });

  it("the snapshot button sends a message with a JPEG and the dashboard client", async function () {
    const before = debugPayloads().length;
    await page.click('.camrelay-ui-camera [data-action="snapshot"]');
    const got = await until(
      () =>
        debugPayloads()
          .slice(before)
          .find((p) => p.action === "snapshot"),
      {
        what: "the snapshot message",
        ms: 10000,
        detail: () => JSON.stringify(comms.messages.slice(-5)).slice(0, 3000) + "\n" + nr.output.slice(-2000),
      },
    );
    assert.strictEqual(got.path, "/cam/front");
    assert.ok(got.jpeg, `payload is a JPEG: ${JSON.stringify(got)}`);
    assert.ok(got.bytes > 1000, `${got.bytes} bytes`);
    assert.ok(got.client, "msg._client from the dashboard");
  });

  it("msg.action snapshot makes the node send the stream's latest picture", async function () {
    const before = debugPayloads().length;
    const r = await nr.request("POST", "/inject/ask-snapshot");
    assert.strictEqual(r.status, 200);
    const got = await until(
      () =>
        debugPayloads()
          .slice(before)
          .find((p) => p.action === "snapshot"),
      {
        what: "the snapshot message",
        ms: 10000,
        detail: () => JSON.stringify(comms.messages.slice(-5)).slice(0, 3000) + "\n" + nr.output.slice(-2000),
      },
    );
    assert.ok(got.jpeg && got.bytes > 1000, JSON.stringify(got));
    assert.strictEqual(got.path, "/cam/front");
  });

  let clip;
  it("the record button starts a recording through the flow; the clip appears in the list and plays", async function () {
    this.timeout(60000);
    await page.click('.camrelay-ui-camera [data-action="record"]');
    // recorded for 2 s, then the file is closed and its sidecar written
    clip = await until(
      async () => {
        const res = await fetch(`${nr.base}/cam/front/recordings`);
        if (res.status !== 200) return false;
        const body = await res.json();
        return body.recordings.find((x) => !x.inProgress);
      },
      {
        what: "the recording in /cam/front/recordings",
        ms: 30000,
        every: 250,
        detail: () => nr.output.slice(-2000),
      },
    );
    assert.strictEqual(clip.trigger.topic, "dashboard");
    await page.click('.camrelay-ui-camera [data-action="recordings"]');
    const item = page.locator(`.camrelay-ui-camera-rec[data-name="${clip.name}"]`);
    await item.waitFor({ timeout: 10000 });
    await item.click();
    const video = page.locator("video.camrelay-ui-camera-clip");
    await video.waitFor({ timeout: 10000 });
    await page.waitForFunction(
      () => {
        const v = document.querySelector("video.camrelay-ui-camera-clip");
        return v && v.currentTime > 0.5;
      },
      null,
      { timeout: 15000 },
    );
    await page.click('.camrelay-ui-camera [data-action="live"]');
    await page.waitForSelector('.camrelay-ui-camera[data-view="live"][data-state="live"]', {
      timeout: 10000,
    });
  });

  it("deleting a clip is refused without permission", async function () {
    assert.ok(clip, "a clip was recorded");
    const url = `${nr.base}/cam/front/recordings/${encodeURIComponent(clip.name)}.mp4`;
    const refused = await fetch(url, { method: "DELETE" });
    assert.ok([401, 403].includes(refused.status), `DELETE without permission: ${refused.status}`);
    assert.strictEqual((await fetch(url, { method: "HEAD" })).status, 200, "the clip is still there");
  });

  it("msg.payload shows another path, on the open page and on one opened later", async function () {
    const widget = page.locator(".camrelay-ui-camera").first();
    assert.strictEqual(await widget.getAttribute("data-path"), "/cam/front");
    assert.strictEqual((await nr.request("POST", "/inject/show-wall0")).status, 200);
    await page.waitForSelector('.camrelay-ui-camera[data-path="/cam/wall0"][data-state="live"]', {
      timeout: 15000,
    });
    await page.reload();
    await page.waitForSelector('.camrelay-ui-camera[data-path="/cam/wall0"][data-state="live"]', {
      timeout: 30000,
    });
  });

  it("an offline camera: the widget shows the placeholder, then is live again by itself", async function () {
    await page.goto(`${nr.base}/dashboard/off`);
    await page.waitForSelector('.camrelay-ui-camera[data-state="live"]', { timeout: 30000 });
    assert.strictEqual((await fetch(`${nr.base}/ctl/stop`)).status, 200);
    await page.waitForSelector('.camrelay-ui-camera[data-state="offline"]', { timeout: 20000 });
    const shown = await page.evaluate(() => {
      const el = document.querySelector(".camrelay-ui-camera");
      const card = el.querySelector("camrelay-player")?.shadowRoot?.querySelector("img.card");
      return {
        overlay: el.querySelector(".camrelay-ui-camera-overlay")?.textContent.trim(),
        card: !!card && !card.hidden,
      };
    });
    assert.ok(shown.card, `the offline card is shown: ${JSON.stringify(shown)}`);
    assert.match(shown.overlay, /offline/i);
    assert.strictEqual((await fetch(`${nr.base}/ctl/start`)).status, 200);
    await page.waitForSelector('.camrelay-ui-camera[data-state="live"]', { timeout: 30000 });
    const [live] = await widgetsLive(page, 1500);
    assert.ok(live.moving, `live again and moving, no reload: ${JSON.stringify(live)}`);
  });

  it("eight widgets on one page are all live", async function () {
    await page.goto(`${nr.base}/dashboard/wall`);
    await until(async () => (await page.locator(".camrelay-ui-camera").count()) === WALL, {
      what: "eight widgets",
      ms: 20000,
    });
    await page
      .waitForFunction(
        (n) => document.querySelectorAll('.camrelay-ui-camera[data-state="live"]').length === n,
        WALL,
        { timeout: 30000 },
      )
      .catch(async (err) => {
        const states = await page.evaluate(() =>
          [...document.querySelectorAll(".camrelay-ui-camera")].map((el) => ({
            state: el.dataset.state,
            transport: el.dataset.transport,
            player: el.querySelector("camrelay-player")?.transport ?? null,
          })),
        );
        throw new Error(`${err.message}\n${JSON.stringify(states)}`);
      });
    const widgets = await widgetsLive(page, 2000);
    assert.strictEqual(widgets.length, WALL);
    const how = {};
    for (const w of widgets)
      how[`${w.source}:${w.player || w.transport}`] =
        (how[`${w.source}:${w.player || w.transport}`] || 0) + 1;
    console.log(`      (eight widgets play as ${JSON.stringify(how)})`);
    widgets.forEach((w, i) => assert.ok(w.moving && w.state === "live", `widget ${i}: ${JSON.stringify(w)}`));
  });

  it("example 04, rebuilt on the widget, fits 1280x1100 without horizontal overflow (README screenshot)", async function () {
    this.timeout(60000);
    await nr.deploy(example04(dir));
    await page.goto(`${nr.base}/dashboard/camera`);
    await page.waitForSelector('.camrelay-ui-camera[data-state="live"]', { timeout: 30000 });
    const box = await page.evaluate(() => {
      const groups = [...document.querySelectorAll(".nrdb-ui-group")].map((g) => g.getBoundingClientRect());
      return {
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
        left: Math.min(...groups.map((g) => g.left)),
        right: Math.max(...groups.map((g) => g.right)),
        groups: groups.length,
        width: window.innerWidth,
      };
    });
    assert.ok(box.groups >= 2, JSON.stringify(box));
    assert.ok(box.scrollWidth <= box.clientWidth, `no horizontal overflow: ${JSON.stringify(box)}`);
    assert.ok(
      box.left >= 0 && box.right <= box.width,
      `every group inside the window: ${JSON.stringify(box)}`,
    );
    // the day's recordings are in the widget's list
    await page.click('.camrelay-ui-camera [data-action="snapshot"]');
    await wait(1500);
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, "dashboard.png") });
    assert.deepStrictEqual(pageErrors, [], "no page errors");
  });
});

describe("ui-camera without a dashboard group (test helper, no dashboard loaded)", function () {
  const helper = require("node-red-node-test-helper");
  const uiCameraNode = require("../dist/nodes/ui-camera.js");
  const streamOutNode = require("../dist/nodes/http-stream-out.js");
  helper.init(require.resolve("node-red"));
  require("./lib/i18n").useCatalogs(helper);

  before(() => helper.startServer());
  after(() => helper.stopServer());
  afterEach(() => helper.unload());

  it("loads beside camrelay's other nodes, says what is missing, and refuses input with that reason", async function () {
    await helper.load(
      [uiCameraNode, streamOutNode],
      [
        { id: "w", type: "ui-camera", group: "", stream: "", path: "/cam/x", wires: [[]] },
        { id: "o", type: "http-stream-out", path: "/cam/x", wires: [[]] },
      ],
    );
    const w = helper.getNode("w");
    assert.ok(helper.getNode("o"), "http stream out runs");
    const statuses = w.status.args.map((a) => a[0]);
    assert.deepStrictEqual(
      statuses[0],
      { fill: "red", shape: "ring", text: "no group" },
      JSON.stringify(statuses),
    );
    assert.match(String(w.warn.args[0]?.[0]), /no dashboard group: pick one/);
    const err = await new Promise((resolve) => {
      w.on("call:error", (call) => resolve(call.args[0]));
      w.receive({ payload: "/cam/y" });
    });
    // The dashboard is installed in this repository, so the reason is the missing group.
    assert.match(String(err), /no dashboard group/);
  });
});

describe("ui-camera where Dashboard 2 is not installed (a real Node-RED process)", function () {
  this.timeout(60000);
  const { ROOT, startNodeRedProcess } = require("./lib/toolkit");
  let tmp;
  let nr;

  /**
   * camrelay as a user without Dashboard 2 has it: its own copy of dist/ (so that resolving from the nodes'
   * folder cannot reach this repository's node_modules) beside a node_modules that links every installed
   * package except @flowfuse/node-red-dashboard (a devDependency here).
   */
  function packageWithoutDashboard() {
    const pkg = path.join(tmp, "camrelay");
    fs.mkdirSync(path.join(pkg, "node_modules"), { recursive: true });
    fs.cpSync(path.join(ROOT, "dist"), path.join(pkg, "dist"), { recursive: true });
    for (const f of ["package.json", "resources", "examples"]) {
      if (fs.existsSync(path.join(ROOT, f))) fs.symlinkSync(path.join(ROOT, f), path.join(pkg, f));
    }
    const modules = path.join(ROOT, "node_modules");
    for (const name of fs.readdirSync(modules)) {
      if (name === "@flowfuse") {
        fs.mkdirSync(path.join(pkg, "node_modules", name));
        for (const sub of fs.readdirSync(path.join(modules, name))) {
          if (sub === "node-red-dashboard") continue;
          fs.symlinkSync(path.join(modules, name, sub), path.join(pkg, "node_modules", name, sub));
        }
      } else fs.symlinkSync(path.join(modules, name), path.join(pkg, "node_modules", name));
    }
    return pkg;
  }

  before(async function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-nodash-"));
    const pkg = packageWithoutDashboard();
    const flows = [
      { id: "t", type: "tab", label: "no dashboard" },
      { id: "cam", type: "camera-source", name: "pattern", protocol: "test", url: "320x240", fps: 5 },
      {
        id: "c",
        z: "t",
        type: "camera-connect",
        camera: "cam",
        autoStart: true,
        wires: [["o"], []],
        x: 100,
        y: 100,
      },
      { id: "o", z: "t", type: "http-stream-out", path: "/cam/nodash", wires: [[]], x: 300, y: 100 },
      { id: "w", z: "t", type: "ui-camera", group: "", stream: "o", path: "", wires: [[]], x: 300, y: 200 },
    ];
    nr = await startNodeRedProcess({
      prefix: "camrelay-nodash-nr-",
      // Node-RED also loads the nodes installed beside itself: started from the linked node_modules (symlinks
      // kept), that is the one without the dashboard, as for a user who never installed it.
      redJs: path.join(pkg, "node_modules", "node-red", "red.js"),
      nodeArgs: ["--preserve-symlinks", "--preserve-symlinks-main"],
      // Point the user directory's camrelay at the copy (the helper linked this repository first).
      settings: (userDir) => {
        const link = path.join(userDir, "node_modules", "@camrelay", "node-red-camrelay");
        fs.unlinkSync(link);
        fs.symlinkSync(pkg, link, "dir");
        const file = path.join(userDir, "settings.js");
        fs.writeFileSync(
          file,
          `module.exports = ${JSON.stringify({ uiHost: "127.0.0.1", flowFile: "flows.json", credentialSecret: "x" })};\n`,
        );
        fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows));
        return file;
      },
    });
  });

  after(async function () {
    await nr?.stop();
    nr?.cleanup?.();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("camrelay loads and streams; ui-camera says to install @flowfuse/node-red-dashboard", async function () {
    const sets = await (await fetch(`${nr.base}/nodes`, { headers: { Accept: "application/json" } })).json();
    assert.ok(!sets.some((s) => s.module === "@flowfuse/node-red-dashboard"), "no dashboard loaded");
    const ours = sets.filter((s) => s.module === "@camrelay/node-red-camrelay");
    assert.ok(
      ours.some((s) => s.types.includes("ui-camera")),
      JSON.stringify(ours),
    );
    for (const set of ours) assert.strictEqual(set.err, undefined, `${set.name}: ${set.err}`);
    await until(
      () => /ui-camera needs FlowFuse Dashboard 2: install @flowfuse\/node-red-dashboard/.test(nr.output),
      10000,
      "the warning that says what to install",
    );
    assert.doesNotMatch(nr.output, /no dashboard group/, "not the message for a missing group");
    // The other nodes work: the test pattern reaches the stream.
    await until(
      async () => (await fetch(`${nr.base}/cam/nodash/snapshot.jpg`)).status === 200,
      15000,
      "a snapshot from http stream out",
    );
    const jpeg = Buffer.from(await (await fetch(`${nr.base}/cam/nodash/snapshot.jpg`)).arrayBuffer());
    assert.strictEqual(jpeg.readUInt16BE(0), 0xffd8);
  });
});
