// `npm start`: a real Node-RED on http://127.0.0.1:1880 with camrelay loaded and the demo flow deployed.
// Needs no camera: the demo uses the built-in test pattern. Your edits to the flow are kept in
// .node-red-data/ between runs; delete that folder to get the demo back.
"use strict";
const fs = require("fs");
const path = require("path");
const { spawn } = require("child_process");

const root = path.join(__dirname, "..");
const port = Number(process.env.PORT) || 1880;
const host = process.env.HOST || "127.0.0.1";
const userDir = path.resolve(process.env.CAMRELAY_USER_DIR || path.join(root, ".node-red-data"));
const demo = path.join(root, "examples", "01-quick-start.json");

fs.mkdirSync(path.join(userDir, "node_modules", "@camrelay"), { recursive: true });
const link = path.join(userDir, "node_modules", "@camrelay", "node-red-camrelay");
if (!fs.existsSync(link)) fs.symlinkSync(root, link, "dir");

const flows = path.join(userDir, "flows.json");
if (!fs.existsSync(flows)) fs.copyFileSync(demo, flows);

const settings = path.join(userDir, "settings.js");
fs.writeFileSync(
  settings,
  `module.exports = ${JSON.stringify(
    {
      uiHost: host,
      uiPort: port,
      flowFile: "flows.json",
      flowFilePretty: true,
      logging: { console: { level: "info", metrics: false, audit: false } },
      editorTheme: { tours: false, projects: { enabled: false } },
    },
    null,
    2,
  )};\n`,
);

const base = `http://${host}:${port}`;
const child = spawn(
  process.execPath,
  [require.resolve("node-red/red.js"), "--userDir", userDir, "--settings", settings, "--port", String(port)],
  { stdio: ["ignore", "pipe", "inherit"] },
);
let announced = false;
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  if (!announced && /Started flows/.test(chunk.toString())) {
    announced = true;
    console.log(
      [
        "",
        "camrelay is running. Open:",
        `  Node-RED editor      ${base}/`,
        `  live MJPEG stream    ${base}/camera/demo`,
        `  snapshot             ${base}/camera/demo/snapshot.jpg`,
        `  status page          ${base}/camera/demo/status`,
        `  HLS for <video>      ${base}/camera/demo/index.m3u8`,
        "Press Ctrl+C to stop.",
        "",
      ].join("\n"),
    );
  }
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
