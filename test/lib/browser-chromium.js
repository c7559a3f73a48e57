// The Chromium the browser test drives with playwright-core; never a browser download. In this order:
//   1. CAMRELAY_CHROMIUM, when set (a Chromium binary of your choice);
//   2. the system's Chromium, /usr/bin/chromium (Debian's `chromium` package; .ci/run installs it);
//   3. the headless Chromium shipped inside the npm devDependency @sparticuz/chromium: its brotli-packed
//      binary, the few shared libraries it needs (NSS, NSPR, expat) and a font are unpacked once into
//      <tmpdir>/camrelay-chromium-<version>-<uid>/ (about 2 s) and run from there. It is built with H.264,
//      so MSE plays camrelay's fMP4/HLS as Debian's does.
/* global document, Image */ // used inside page.evaluate()
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const zlib = require("zlib");
const { pipeline } = require("stream/promises");

const SYSTEM_CHROMIUM = "/usr/bin/chromium";
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

/** A non-empty regular file we may execute (an empty file or /dev/null bound over a binary does not count). */
function usable(file) {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size === 0) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Unpacks @sparticuz/chromium once; resolves { executablePath, env } for the unpacked copy. */
async function npmChromium() {
  let pkgDir;
  try {
    // its "exports" hide package.json: main is build/cjs/index.cjs
    pkgDir = path.join(path.dirname(require.resolve("@sparticuz/chromium")), "..", "..");
  } catch {
    throw new Error(
      `No Chromium: ${SYSTEM_CHROMIUM} is not installed and the devDependency @sparticuz/chromium is missing ` +
        "(run `npm install`), or point CAMRELAY_CHROMIUM at a Chromium binary.",
    );
  }
  const { version } = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
  const bin = path.join(pkgDir, "bin");
  const uid = typeof process.getuid === "function" ? process.getuid() : "user";
  const dir = path.join(os.tmpdir(), `camrelay-chromium-${version}-${uid}`);
  const executablePath = path.join(dir, "chromium");
  if (!usable(executablePath) || !fs.existsSync(path.join(dir, "complete"))) {
    // unpack into a private directory, then rename it into place: parallel runs never see half a binary
    const tmp = fs.mkdtempSync(`${dir}.unpack-`);
    try {
      await pipeline(
        fs.createReadStream(path.join(bin, "chromium.br")),
        zlib.createBrotliDecompress(),
        fs.createWriteStream(path.join(tmp, "chromium"), { mode: 0o755 }),
      );
      const tar = require(require.resolve("tar-fs", { paths: [pkgDir] }));
      for (const [archive, into] of [
        ["al2023.tar.br", "."], // lib/: libnss3, libnspr4, libexpat ... for a machine without them
        ["fonts.tar.br", "."], // fonts/: Open Sans, for a machine without any font
        ["swiftshader.tar.br", "."],
      ]) {
        await pipeline(
          fs.createReadStream(path.join(bin, archive)),
          zlib.createBrotliDecompress(),
          tar.extract(path.join(tmp, into)),
        );
      }
      fs.writeFileSync(
        path.join(tmp, "fonts", "fonts.conf"),
        `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n` +
          `  <dir>${path.join(dir, "fonts")}</dir>\n  <dir>/usr/share/fonts</dir>\n` +
          `  <cachedir>${path.join(dir, "fonts-cache")}</cachedir>\n</fontconfig>\n`,
      );
      fs.writeFileSync(path.join(tmp, "complete"), `${version}\n`);
      fs.rmSync(dir, { recursive: true, force: true });
      try {
        fs.renameSync(tmp, dir);
      } catch (err) {
        if (!usable(executablePath)) throw err; // another run won the race: use its copy
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  // Its own libraries first, as @sparticuz/chromium itself sets them up: the same on every machine.
  const libs = [path.join(dir, "lib"), process.env.LD_LIBRARY_PATH].filter(Boolean);
  return {
    executablePath,
    env: {
      LD_LIBRARY_PATH: libs.join(":"),
      FONTCONFIG_PATH: path.join(dir, "fonts"),
    },
    args: ["--no-zygote", "--use-gl=angle", "--use-angle=swiftshader"],
  };
}

/** The Chromium to run: { executablePath, source, env, args }; see the order at the top of this file. */
async function findChromium() {
  const chosen = process.env.CAMRELAY_CHROMIUM;
  if (chosen) {
    if (!usable(chosen)) throw new Error(`CAMRELAY_CHROMIUM=${chosen} is not an executable file`);
    return { executablePath: chosen, source: "CAMRELAY_CHROMIUM", env: {}, args: [] };
  }
  if (usable(SYSTEM_CHROMIUM))
    return { executablePath: SYSTEM_CHROMIUM, source: "system", env: {}, args: [] };
  return { ...(await npmChromium()), source: "@sparticuz/chromium" };
}

/** A fresh persistent context in a temporary user-data-dir; `close()` removes it again. */
async function launchChromium({ viewport = { width: 1280, height: 720 } } = {}) {
  const found = await findChromium();
  if (!launchChromium.said) console.log(`      chromium: ${found.executablePath} (${found.source})`);
  launchChromium.said = true;
  const { chromium } = require("playwright-core");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-chromium-profile-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: found.executablePath,
    headless: true,
    args: ARGS.concat(found.args),
    env: { ...process.env, ...found.env },
    viewport,
    locale: "en-US",
  });
  return {
    context,
    chromium: found,
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

module.exports = { launchChromium, findChromium, pixelDifference, SYSTEM_CHROMIUM, ARGS };
