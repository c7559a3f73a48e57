// A real Node-RED for the browser test: its own process, user directory, settings and free port, with
// this package linked into <userDir>/node_modules so Node-RED loads it through package.json, as a user's
// `npm install` would. CAMRELAY_NODE_RED (or the `nodeRedDir` option) picks another Node-RED install
// (a node_modules/node-red directory) than the project's devDependency: .ci/run runs test/compat against
// Node-RED 5 and 3.1 that way, each under the Node that runs mocha.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawn } = require("child_process");
const { freePort } = require("./transcode-helpers");

const root = path.join(__dirname, "..", "..");

/** Settings for an offline, quiet editor: no tours, no palette catalogue, no telemetry prompt. */
function settingsFile(userDir, flows) {
  const file = path.join(userDir, "settings.js");
  const settings = {
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    credentialSecret: "camrelay-browser-test",
    logging: { console: { level: "info", metrics: false, audit: false } },
    editorTheme: {
      tours: false,
      projects: { enabled: false },
      palette: { catalogues: [] },
    },
    externalModules: { palette: { allowInstall: false } },
    telemetry: { enabled: false },
  };
  fs.writeFileSync(file, `module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows || []));
  return file;
}

/** The Node-RED install the tests start: CAMRELAY_NODE_RED or the project's devDependency. */
function nodeRedDir() {
  return path.resolve(process.env.CAMRELAY_NODE_RED || path.join(root, "node_modules", "node-red"));
}

/**
 * Starts `node node_modules/node-red/red.js -u <tmp> -p <port> --settings <tmp>/settings.js` and resolves
 * once it serves the editor. `stop()` ends it (SIGTERM, then SIGKILL) and removes the directory.
 */
async function startNodeRed({ flows, timeoutMs = 30000, dir = nodeRedDir() } = {}) {
  if (!fs.existsSync(path.join(root, "dist", "nodes", "camera-source.js"))) {
    throw new Error("dist/nodes is missing: run `npm run build` first (npm test does)");
  }
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-browser-"));
  fs.mkdirSync(path.join(userDir, "node_modules", "@camrelay"), { recursive: true });
  fs.symlinkSync(root, path.join(userDir, "node_modules", "@camrelay", "node-red-camrelay"), "dir");
  const settings = settingsFile(userDir, flows);
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [path.join(dir, "red.js"), "-u", userDir, "-p", String(port), "--settings", settings],
    { cwd: userDir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Node-RED exited at start:\n${log}`);
    if (/Started flows|Server now running/.test(log)) {
      try {
        if ((await fetch(`${base}/settings`)).ok) break;
      } catch {
        // not listening yet
      }
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`Node-RED did not start within ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 8000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(userDir, { recursive: true, force: true });
  }

  return { base, port, userDir, child, stop, log: () => log };
}

module.exports = { startNodeRed, nodeRedDir };
