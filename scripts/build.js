// Build: compile TypeScript, then put editor HTML, icons and locales beside each compiled node,
// because Node-RED looks for icons/ and locales/ only in the folder of each registered .js file.
//
// Every build starts from nothing (a deleted or moved module must not keep shipping or passing tests):
// it compiles into a fresh dist.<pid>/ and then swaps it in for dist/, so a Node-RED or test that is
// reading dist/ meanwhile (CI runs the compat suite beside `npm test`, whose pretest builds) never finds
// it missing or half written.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");
const next = path.join(root, `dist.${process.pid}`);
const out = path.join(next, "nodes");
const nextResources = path.join(root, `resources.${process.pid}`);
fs.rmSync(next, { recursive: true, force: true });

try {
  execFileSync(
    process.execPath,
    [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.json"), "--outDir", out],
    { stdio: "inherit" },
  );
  for (const f of fs.readdirSync(path.join(root, "nodes"))) {
    if (f.endsWith(".html")) fs.copyFileSync(path.join(root, "nodes", f), path.join(out, f));
  }
  fs.cpSync(path.join(root, "icons"), path.join(out, "icons"), { recursive: true });
  fs.cpSync(path.join(root, "locales"), path.join(out, "locales"), { recursive: true });
  // The browser's <camrelay-player> (plain JS, no build step), served from beside player-route.js.
  fs.cpSync(path.join(root, "nodes", "lib", "serve", "player"), path.join(out, "lib", "serve", "player"), {
    recursive: true,
  });
  // The ui-camera widget: ui/ (Vue) built by vite into the UMD bundle Dashboard 2 loads from resources/.
  execFileSync(
    process.execPath,
    [path.join(path.dirname(require.resolve("vite/package.json")), "bin", "vite.js"), "build"].concat([
      "--config",
      path.join(root, "ui", "vite.config.mjs"),
    ]),
    { stdio: "inherit", env: { ...process.env, CAMRELAY_UI_OUT: nextResources } },
  );
} catch (err) {
  fs.rmSync(next, { recursive: true, force: true });
  fs.rmSync(nextResources, { recursive: true, force: true });
  throw err;
}
// Swap: the old tree moves aside in one rename and the new one takes its name in the next.
const old = path.join(root, `dist.old.${process.pid}`);
if (fs.existsSync(dist)) fs.renameSync(dist, old);
fs.renameSync(next, dist);
fs.rmSync(old, { recursive: true, force: true });
// resources/ (served by Node-RED at /resources/<package>/) is swapped in the same way.
const resources = path.join(root, "resources");
const oldResources = path.join(root, `resources.old.${process.pid}`);
if (fs.existsSync(resources)) fs.renameSync(resources, oldResources);
fs.renameSync(nextResources, resources);
fs.rmSync(oldResources, { recursive: true, force: true });
console.log("built dist/nodes and resources/ui-camera.umd.js");
