// Debian's chromium driven by playwright-core: never a browser download. CI installs the package
// (`apt-get install -y chromium`); without it the test fails and says so.
/* global document, Image */ // used inside page.evaluate()
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");

const CHROMIUM = process.env.CAMRELAY_CHROMIUM || "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
];

/** A fresh persistent context in a temporary user-data-dir; `close()` removes it again. */
async function launchChromium({ viewport = { width: 1280, height: 720 } } = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM}: install it with \`apt-get update && apt-get install -y chromium\` ` +
        "(.ci/run does), or point CAMRELAY_CHROMIUM at a Chromium binary.",
    );
  }
  const { chromium } = require("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
    locale: "en-US",
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Fraction of bytes that differ between two same-sized PNG screenshots, decoded to RGBA by the page. */
async function pixelDifference(page, a, b) {
  return page.evaluate(
    async ([pa, pb]) => {
      const load = (b64) =>
        new Promise((resolve, reject) => {
          const img = new Image();
          img.onload = () => resolve(img);
          img.onerror = reject;
          img.src = "data:image/png;base64," + b64;
        });
      const [ia, ib] = await Promise.all([load(pa), load(pb)]);
      const pixels = (img) => {
        const c = document.createElement("canvas");
        c.width = img.width;
        c.height = img.height;
        const g = c.getContext("2d");
        g.drawImage(img, 0, 0);
        return g.getImageData(0, 0, img.width, img.height).data;
      };
      const da = pixels(ia);
      const db = pixels(ib);
      if (da.length !== db.length) return 1;
      let diff = 0;
      for (let i = 0; i < da.length; i += 4) {
        if (Math.abs(da[i] - db[i]) + Math.abs(da[i + 1] - db[i + 1]) + Math.abs(da[i + 2] - db[i + 2]) > 30)
          diff++;
      }
      return diff / (da.length / 4);
    },
    [a.toString("base64"), b.toString("base64")],
  );
}

module.exports = { launchChromium, pixelDifference, CHROMIUM, ARGS };
