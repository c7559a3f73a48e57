// A real Node-RED for the browser test: its own process, user directory, settings and free port, with
// this package linked into <userDir>/node_modules so Node-RED loads it through package.json, as a user's
// `npm install` would. CAMRELAY_NODE_RED (or the `nodeRedDir` option) picks another Node-RED install
// (a node_modules/node-red directory) than the project's devDependency: .ci/run runs test/compat against
// Node-RED 5 and 3.1 that way, each under the Node that runs mocha.
"use strict";
const fs = require("fs");
const path = require("path");

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
  const nr = await require("./toolkit").startNodeRedProcess({
    prefix: "camrelay-browser-",
    redJs: path.join(dir, "red.js"),
    settings: (userDir) => settingsFile(userDir, flows),
    cwd: (userDir) => userDir,
    timeoutMs,
    killAfterMs: 8000,
    ready: async ({ output, base }) =>
      /Started flows|Server now running/.test(output) && (await fetch(`${base}/settings`)).ok,
  });
  const { base, port, userDir, child } = nr;
  return { base, port, userDir, child, stop: nr.cleanup, log: () => nr.output };
}

module.exports = { startNodeRed, nodeRedDir };
