// The Node-RED user's experience, in a real browser: a real Node-RED process with this package installed,
// Debian's chromium driven by playwright-core. Palette and icons, the camera dialog's Test button, the
// quick-start example imported through Import > Examples and deployed, the MJPEG stream painting a live
// picture in an <img>, the status page, and the HLS output playing in a <video> through hls.js.
// Screenshots of the editor and the status page are saved for the README (docs/, see below).
// Functions passed to page.evaluate() run in the browser, where these exist.
/* global document, window */
"use strict";
const assert = require("assert");
const { execFileSync } = require("child_process");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { startNodeRed } = require("./lib/browser-nodered");
const { launchChromium, pixelDifference } = require("./lib/browser-chromium");
const { mjpegCamera } = require("./lib/fake-cameras");
const { until } = require("./lib/toolkit");

const root = path.join(__dirname, "..");
// `CAMRELAY_SCREENSHOT_DIR=docs` refreshes the README's pictures; by default they go to a temporary folder
// so a test run leaves the working tree clean.
const shots = path.resolve(
  root,
  process.env.CAMRELAY_SCREENSHOT_DIR || path.join(os.tmpdir(), "camrelay-screenshots"),
);
const TAB = "c0a1e5f0d1a20001";
const CAMERA_CONNECT = "c0a1e5f0d1a20003";
const STREAM_PATH = "/camera/demo";
const NODE_TYPES = {
  "camera-connect": "camrelay-camera.svg",
  "frame-throttle": "camrelay-throttle.svg",
  "http-stream-out": "camrelay-out.svg",
  "ffmpeg-transcode": "camrelay-transcode.svg",
};
const LOCALE_NODES = [
  "camera-source",
  "camera-connect",
  "frame-throttle",
  "http-stream-out",
  "ffmpeg-transcode",
];

/** Pages served from Node-RED's own origin by the browser itself (no CORS, no extra server). */
function testPage(body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>camrelay browser test</title></head>
<body style="margin:0;background:#222">${body}</body></html>`;
}

/** Every key path of a catalog, e.g. "camera-source.label.name". */
function keyPaths(obj, prefix = "") {
  return Object.entries(obj).flatMap(([k, v]) =>
    v && typeof v === "object" ? keyPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

describe("in a browser: the Node-RED editor, the examples and the streams", function () {
  this.timeout(60000);
  let nodeRed;
  let browser;
  let editor;
  let viewer;
  const pageErrors = [];

  before(async function () {
    this.timeout(90000);
    nodeRed = await startNodeRed();
    browser = await launchChromium({ viewport: { width: 1280, height: 720 } });
    editor = await browser.context.newPage();
    editor.on("pageerror", (err) => pageErrors.push(err.message));
  });

  after(async function () {
    this.timeout(30000);
    if (browser) await browser.close();
    if (nodeRed) await nodeRed.stop();
  });

  it("shows the camera nodes in the palette with their own icons", async function () {
    await editor.goto(`${nodeRed.base}/`);
    await editor.waitForSelector('.red-ui-palette-node[data-palette-type="camera-connect"]', {
      timeout: 45000,
    });
    for (const [type, icon] of Object.entries(NODE_TYPES)) {
      const node = editor.locator(`.red-ui-palette-node[data-palette-type="${type}"]`);
      assert.strictEqual(await node.count(), 1, `${type} is missing from the palette:\n${nodeRed.log()}`);
      const background = await node
        .locator(".red-ui-palette-icon")
        .evaluate((el) => el.style.backgroundImage);
      assert.ok(background.includes(`@camrelay/node-red-camrelay/${icon}`), `${type} shows ${background}`);
      const res = await fetch(`${nodeRed.base}/icons/@camrelay/node-red-camrelay/${icon}`);
      assert.strictEqual(res.status, 200, `${icon} is not served`);
      assert.match(res.headers.get("content-type"), /image\/svg\+xml/);
      assert.match(await res.text(), /viewBox="0 0 40 60"/);
    }
    const labels = await editor
      .locator(
        '.red-ui-palette-node[data-palette-type^="camera-"], .red-ui-palette-node[data-palette-type$="-out"]',
      )
      .allTextContents();
    const normalized = labels.map((l) => l.replace(/\s+/g, " ").trim());
    assert.ok(normalized.includes("camera connect"), `palette labels: ${normalized}`);
  });

  it("imports example 1 through Import > Examples", async function () {
    await editor.click("#red-ui-header-button-sidemenu");
    await editor.click("#menu-item-import");
    await editor.click("#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a");
    const examples = editor.locator("#red-ui-clipboard-dialog-import-tab-examples");
    await examples.locator(".red-ui-treeList-label", { hasText: "@camrelay/node-red-camrelay" }).click();
    await examples.locator(".red-ui-treeList-label", { hasText: "01-quick-start" }).click();
    await editor.click("#red-ui-clipboard-dialog-ok");
    await editor.click(`#red-ui-tab-${TAB} a`);
    await editor.waitForSelector(`g.red-ui-flow-node-group[id="${CAMERA_CONNECT}"]`);
    const labels = await editor
      .locator("#red-ui-workspace-chart .red-ui-flow-node-label-text")
      .allTextContents();
    assert.ok(labels.includes("demo 10 fps"), `node labels on the tab: ${labels}`);
    assert.ok(labels.includes(STREAM_PATH), `node labels on the tab: ${labels}`);
  });

  it("opens the camera dialog, presses Test and shows a frame with its facts", async function () {
    // Node-RED counts a double click from two separate clicks with time between them.
    const node = editor.locator(`g.red-ui-flow-node-group[id="${CAMERA_CONNECT}"] rect.red-ui-flow-node`);
    await node.click();
    await editor.waitForTimeout(150);
    await node.click();
    await editor.click("#node-input-btn-camera-edit");
    await editor.waitForSelector("#camrelay-camera-test", { state: "visible" });
    assert.strictEqual(await editor.inputValue("#node-config-input-protocol"), "test");
    assert.strictEqual(await editor.innerText("#camrelay-camera-url-label"), "Size");
    await editor.click("#camrelay-camera-test");
    const image = editor.locator("#camrelay-camera-test-result img.camrelay-camera-test-image");
    await image.waitFor({ timeout: 20000 });
    await editor.waitForFunction(
      () => document.querySelector("img.camrelay-camera-test-image").naturalWidth > 0,
      null,
      { timeout: 5000 },
    );
    assert.strictEqual(await image.evaluate((img) => img.naturalWidth), 640);
    const facts = await editor.innerText(".camrelay-camera-test-facts");
    assert.match(facts, /640 × 480/);
    assert.match(facts, /\d+(\.\d)? fps measured/);
    assert.match(facts, /Test pattern/);
    await editor.locator("#camrelay-camera-advanced-toggle").click();
    assert.ok(await editor.isVisible("#node-config-input-watchdog"), "Advanced does not unfold");
    await editor.click("#node-config-dialog-cancel");
    await editor.click("#node-dialog-cancel");
    await editor.waitForSelector("#node-dialog-cancel", { state: "detached" });
  });

  it("deploys the example and the nodes show their state", async function () {
    await editor.click("#red-ui-header-button-deploy");
    await editor.waitForFunction(
      (id) => {
        const label = document.querySelector(`g[id="${id}"] .red-ui-flow-node-status-label`);
        return label && /fps/.test(label.textContent);
      },
      CAMERA_CONNECT,
      { timeout: 20000 },
    );
    const status = await editor
      .locator(`g[id="${CAMERA_CONNECT}"] .red-ui-flow-node-status-label`)
      .textContent();
    assert.match(status, /^\d+(\.\d)? fps$/);
  });

  it("paints a changing picture from the MJPEG stream in an <img>", async function () {
    viewer = await browser.context.newPage();
    await viewer.route(`${nodeRed.base}/camrelay-browser-test/mjpeg.html`, (route) =>
      route.fulfill({
        contentType: "text/html",
        body: testPage(`<img id="live" src="${STREAM_PATH}" width="640" height="480">`),
      }),
    );
    await viewer.goto(`${nodeRed.base}/camrelay-browser-test/mjpeg.html`);
    await viewer.waitForFunction(() => document.getElementById("live").naturalWidth > 0, null, {
      timeout: 15000,
    });
    const img = viewer.locator("#live");
    const first = await img.screenshot();
    await viewer.waitForTimeout(1500);
    const second = await img.screenshot();
    const changed = await pixelDifference(viewer, first, second);
    assert.ok(changed > 0.001, `the picture did not change (${(changed * 100).toFixed(3)}% of pixels)`);

    // The editor with the demo deployed and a viewer watching: the README's picture.
    await editor.waitForFunction(
      () =>
        [...document.querySelectorAll(".red-ui-flow-node-status-label")].some((l) =>
          /view/.test(l.textContent),
        ),
      null,
      { timeout: 10000 },
    );
    // Deselect, and let the "deployed" notification go, so the picture shows the flow and its status dots.
    await editor.mouse.click(700, 500);
    await editor
      .waitForSelector(".red-ui-notification", { state: "detached", timeout: 10000 })
      .catch(() => {});
    await editor.evaluate(() =>
      document
        .querySelector('.red-ui-palette-node[data-palette-type="camera-connect"]')
        .closest(".red-ui-palette-category")
        .scrollIntoView({ block: "start" }),
    );
    fs.mkdirSync(shots, { recursive: true });
    await editor.screenshot({ path: path.join(shots, "editor.png") });
  });

  it("opens the status page with the viewers and the numbers", async function () {
    const page = await browser.context.newPage();
    const res = await page.goto(`${nodeRed.base}${STREAM_PATH}/status`);
    assert.strictEqual(res.status(), 200);
    await page.waitForFunction(
      () => /\d/.test(document.getElementById("viewerCount")?.textContent ?? ""),
      null,
      {
        timeout: 10000,
      },
    );
    const text = await page.innerText("body");
    assert.match(text, /viewers/);
    assert.match(text, /fps in/);
    await page.waitForTimeout(1200);
    await page.waitForFunction(() => document.querySelectorAll("#viewers tr").length > 0, null, {
      timeout: 5000,
    });
    await page.screenshot({ path: path.join(shots, "status-page.png"), fullPage: true });
    await page.close();
    await viewer.close();
  });

  it("plays the HLS output in a <video> with hls.js", async function () {
    const page = await browser.context.newPage();
    const hlsJs = fs.readFileSync(require.resolve("hls.js/dist/hls.min.js"));
    await page.route(`${nodeRed.base}/camrelay-browser-test/**`, (route) => {
      if (route.request().url().endsWith("/hls.min.js")) {
        return route.fulfill({ contentType: "application/javascript", body: hlsJs });
      }
      return route.fulfill({
        contentType: "text/html",
        body: testPage(`<video id="video" muted autoplay playsinline width="640" height="480"></video>
<script src="/camrelay-browser-test/hls.min.js"></script>
<script>
  window.hlsErrors = [];
  var video = document.getElementById("video");
  var src = "${STREAM_PATH}/index.m3u8";
  if (window.Hls && Hls.isSupported()) {
    var hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, function (_e, d) { window.hlsErrors.push(d.type + ":" + d.details + (d.response ? " " + d.response.code : "")); });
    hls.loadSource(src);
    hls.attachMedia(video);
  } else {
    video.src = src;
  }
  video.play().catch(function () {});
</script>`),
      });
    });
    // The first fragment needs ffmpeg started and a keyframe: give it a few seconds after the deploy.
    let playlist;
    await until(
      async () => (playlist = await fetch(`${nodeRed.base}${STREAM_PATH}/index.m3u8`)).status === 200,
      { ms: 15000, every: 500 },
    ).catch(() => undefined);
    assert.strictEqual(
      playlist.status,
      200,
      `${STREAM_PATH}/index.m3u8 answered ${playlist.status}: example 1 needs an ffmpeg-transcode (hls) feeding the http stream out`,
    );
    assert.match(await playlist.text(), /^#EXTM3U/);
    await page.goto(`${nodeRed.base}/camrelay-browser-test/hls.html`);
    let first;
    try {
      await page.waitForFunction(() => document.getElementById("video").currentTime > 0.2, null, {
        timeout: 20000,
      });
      first = await page.evaluate(() => document.getElementById("video").currentTime);
      await page.waitForFunction((t) => document.getElementById("video").currentTime > t + 1, first, {
        timeout: 15000,
      });
    } catch (err) {
      const state = await page.evaluate(() => ({
        currentTime: document.getElementById("video").currentTime,
        readyState: document.getElementById("video").readyState,
        error: document.getElementById("video").error && document.getElementById("video").error.message,
        hlsErrors: window.hlsErrors,
      }));
      throw new Error(
        `the <video> did not advance: ${JSON.stringify(state)} (${err.message.split("\n")[0]})`,
      );
    }
    const later = await page.evaluate(() => document.getElementById("video").currentTime);
    assert.ok(later > first, `currentTime went from ${first} to ${later}`);
    await page.close();
  });

  it("the Test button's endpoint tells what an MJPEG camera and an ffmpeg input speak, and errors in words", async function () {
    const probe = async (settings) => {
      const res = await fetch(`${nodeRed.base}/camrelay/camera-source/test`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ fps: "0", ...settings }),
      });
      assert.strictEqual(res.status, 200);
      return res.json();
    };
    const camera = await mjpegCamera({ fps: 10, boundary: "myboundary" });
    try {
      const mjpeg = await probe({ protocol: "mjpeg", url: camera.url });
      assert.strictEqual(mjpeg.error, undefined, mjpeg.error);
      assert.strictEqual(mjpeg.detected, "multipart/x-mixed-replace; boundary=myboundary");
      assert.strictEqual(`${mjpeg.width}x${mjpeg.height}`, "320x240");
      assert.ok(mjpeg.frames > 1 && mjpeg.fps > 0, `measured ${mjpeg.frames} frames, ${mjpeg.fps} fps`);
    } finally {
      await camera.close();
    }

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-probe-"));
    try {
      const file = path.join(dir, "clip.mp4");
      execFileSync(require("@ffmpeg-installer/ffmpeg").path, [
        ...["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=352x288:rate=15", "-t", "4"],
        ...["-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", file],
      ]);
      const ffmpeg = await probe({ protocol: "ffmpeg", url: file });
      assert.strictEqual(ffmpeg.error, undefined, ffmpeg.error);
      assert.strictEqual(ffmpeg.video.codec, "h264");
      assert.strictEqual(ffmpeg.video.profile, "Main");
      assert.strictEqual(`${ffmpeg.video.width}x${ffmpeg.video.height}`, "352x288");
      assert.strictEqual(ffmpeg.video.fps, 15);
      assert.match(ffmpeg.detected, /mp4.*h264 \(Main\)/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    const refused = await probe({ protocol: "mjpeg", url: "http://cam:s3cret-pw@127.0.0.1:9/video.mjpg" });
    assert.match(refused.error, /refused|unreachable/i);
    assert.ok(!refused.error.includes("s3cret-pw"), refused.error);
  });

  it("serves every node's help and catalog in English and German", async function () {
    for (const node of LOCALE_NODES) {
      const en = JSON.parse(fs.readFileSync(path.join(root, "locales", "en-US", `${node}.json`), "utf8"));
      const res = await fetch(`${nodeRed.base}/locales/@camrelay/node-red-camrelay/${node}?lng=de`);
      assert.strictEqual(res.status, 200, `${node} catalog`);
      const de = await res.json();
      const missing = keyPaths(en).filter((k) => !keyPaths(de).includes(k));
      assert.deepStrictEqual(missing, [], `${node}: German catalog lacks keys`);
      assert.notDeepStrictEqual(de, en, `${node}: the German catalog is the English one`);
      assert.ok(fs.existsSync(path.join(root, "locales", "de", `${node}.html`)), `${node}: no German help`);
    }
    // The editor asks for node HTML with the browser's language; German help replaces the English one.
    const help = await fetch(`${nodeRed.base}/nodes`, {
      headers: { Accept: "text/html", "Accept-Language": "de" },
    });
    const html = await help.text();
    for (const node of LOCALE_NODES) {
      const de = fs.readFileSync(path.join(root, "locales", "de", `${node}.html`), "utf8");
      const summary = /<p>\s*([^<]{20,60})/.exec(de)[1].replace(/\s+/g, " ").trim();
      assert.ok(
        html.replace(/\s+/g, " ").includes(summary),
        `${node}: German help not served ("${summary}")`,
      );
    }
  });

  it("moves user:password pasted into a camera URL to the credential fields", async function () {
    const node = editor.locator(`g.red-ui-flow-node-group[id="${CAMERA_CONNECT}"] rect.red-ui-flow-node`);
    await node.click();
    await editor.waitForTimeout(150);
    await node.click();
    await editor.click("#node-input-btn-camera-add"); // Node-RED 4's "+"; 3.x offers "Add new" in the list
    await editor.waitForSelector("#node-config-input-url", { state: "visible" });
    await editor.selectOption("#node-config-input-protocol", "mjpeg");
    await editor.fill("#node-config-input-name", "pasted");
    await editor.fill("#node-config-input-url", "http://admin:s3cret%21pw@192.0.2.10/video.mjpg");
    await editor.click("#node-config-dialog-ok");
    await editor.waitForSelector("#node-config-dialog-ok", { state: "detached" });
    const saved = await editor.evaluate(() => {
      const RED = globalThis.RED; // the editor's global, in the page
      let found;
      RED.nodes.eachConfig((n) => {
        if (n.type === "camera-source" && n.name === "pasted") found = n;
      });
      return {
        url: found.url,
        credentials: found.credentials,
        exported: JSON.stringify(RED.nodes.createCompleteNodeSet({ credentials: false })),
      };
    });
    await editor.click("#node-dialog-cancel");
    assert.strictEqual(saved.url, "http://192.0.2.10/video.mjpg");
    assert.strictEqual(saved.credentials.user, "admin");
    assert.strictEqual(saved.credentials.password, "s3cret!pw");
    assert.ok(!saved.exported.includes("s3cret"), "the password is in the exported flow");
  });

  it("raised no script error in the editor", function () {
    assert.deepStrictEqual(pageErrors, []);
  });
});
