// Build: compile TypeScript, then put editor HTML, icons and locales beside each compiled node,
// because Node-RED looks for icons/ and locales/ only in the folder of each registered .js file.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const root = path.join(__dirname, "..");
const out = path.join(root, "dist", "nodes");
// Start from an empty dist/: a deleted or moved module must not keep shipping or passing tests.
fs.rmSync(path.join(root, "dist"), { recursive: true, force: true });

execFileSync(
  process.execPath,
  [require.resolve("typescript/bin/tsc"), "-p", path.join(root, "tsconfig.json")],
  {
    stdio: "inherit",
  },
);
for (const f of fs.readdirSync(path.join(root, "nodes"))) {
  if (f.endsWith(".html")) fs.copyFileSync(path.join(root, "nodes", f), path.join(out, f));
}
fs.cpSync(path.join(root, "icons"), path.join(out, "icons"), { recursive: true });
fs.cpSync(path.join(root, "locales"), path.join(out, "locales"), { recursive: true });
console.log("built dist/nodes");
