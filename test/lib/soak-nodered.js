// A real Node-RED for the security and redeploy suites: `node-red/red.js` in a child process with its own
// user directory (camrelay linked into its node_modules, as `npm start` does), settings of the test's
// choosing (httpNodeAuth and adminAuth are applied by red.js itself, so this is what users run), the admin
// HTTP API for deploys, the comms websocket for statuses and debug messages, and /proc for the process's
// file descriptors, memory and ffmpeg children.
"use strict";
const path = require("path");
const http = require("http");
const bcrypt = require("bcryptjs");
const WebSocket = require("ws");
// The process, its /proc readings and waiting are the toolkit's (childrenOf, fdsOf, rssOf re-exported).
const { startNodeRedProcess, until, childrenOf, fdsOf, rssOf } = require("./toolkit");

function hash(password) {
  return bcrypt.hashSync(password, 8);
}

function request(base, method, urlPath, { body, headers = {}, auth } = {}) {
  return new Promise((resolve, reject) => {
    const data =
      body === undefined ? undefined : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
    const h = { ...headers };
    if (data) {
      h["Content-Type"] ??= "application/json";
      h["Content-Length"] = data.length;
    }
    if (auth) h.Authorization = auth;
    const req = http.request(`${base}${urlPath}`, { method, headers: h, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on("error", reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on("error", reject);
    req.end(data);
  });
}

/**
 * Starts Node-RED. Options: settings (merged over quiet defaults), admin ({ user, password }: turns on
 * adminAuth), env. Resolves once "Started flows" is logged (with an empty flow file).
 */
async function startNodeRed({ settings = {}, admin, env = {} } = {}) {
  const all = {
    credentialSecret: "camrelay-test-secret",
    logging: { console: { level: "trace", metrics: false, audit: false } },
    editorTheme: { tours: false, projects: { enabled: false } },
    ...settings,
  };
  if (admin) {
    all.adminAuth = {
      type: "credentials",
      users: [{ username: admin.user, password: hash(admin.password), permissions: "*" }],
    };
  }
  // CAMRELAY_NODE_ARGS (say "--cpu-prof --cpu-prof-dir=/tmp/prof"): options for the Node-RED process's node,
  // for profiling a bench; NODE_OPTIONS refuses --cpu-prof.
  const nodeArgs = (process.env.CAMRELAY_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const nr = await startNodeRedProcess({ settings: all, env, nodeArgs });
  nr.token = undefined;

  nr.until = (test, what, ms = 20000) =>
    until(test, {
      what,
      ms,
      every: 50,
      stop: () => nr.exited && "Node-RED exited",
      detail: () => nr.output.slice(-3000),
    });
  /** Waits for the n-th "Started flows" line (counted from 1). */
  nr.started = (n = 1) =>
    nr.until(() => (nr.output.match(/Started flows/g) || []).length >= n, `flows started (${n})`, 30000);
  nr.request = (method, urlPath, opts = {}) =>
    request(nr.base, method, urlPath, {
      ...opts,
      auth: opts.auth ?? (nr.token ? `Bearer ${nr.token}` : undefined),
    });
  nr.login = async () => {
    const r = await request(nr.base, "POST", "/auth/token", {
      body: {
        client_id: "node-red-admin",
        grant_type: "password",
        scope: "*",
        username: admin.user,
        password: admin.password,
      },
    });
    if (r.status !== 200) throw new Error(`admin login failed: ${r.status} ${r.body}`);
    nr.token = JSON.parse(r.body).access_token;
  };
  let deploys = 1;
  /** Deploys flows (credentials inside nodes, as the editor sends them) and waits until they started. */
  nr.deploy = async (flows, type = "full") => {
    const r = await nr.request("POST", "/flows", {
      body: flows,
      headers: { "Node-RED-Deployment-Type": type },
    });
    if (r.status !== 204 && r.status !== 200) throw new Error(`deploy failed: ${r.status} ${r.body}`);
    deploys++;
    await nr.started(deploys);
  };
  nr.flows = async () => JSON.parse((await nr.request("GET", "/flows")).body);
  nr.children = () => childrenOf(nr.pid);
  nr.ffmpegs = () => childrenOf(nr.pid).filter((c) => /ffmpeg/.test(path.basename(c.cmd[0] || "")));
  nr.fds = () => fdsOf(nr.pid);
  nr.rss = () => rssOf(nr.pid);
  /** Subscribes to comms topics (status/#, debug, notification/#); messages land in `ws.messages`. */
  nr.comms = (topics = ["status/#", "debug", "notification/#"]) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${nr.port}/comms`);
      ws.messages = [];
      ws.on("error", reject);
      ws.on("message", (data) => {
        const text = data.toString();
        let parsed;
        try {
          parsed = JSON.parse(text);
        } catch {
          return;
        }
        for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
          if (m.auth === "ok") {
            topics.forEach((t) => ws.send(JSON.stringify({ subscribe: t })));
            resolve(ws);
          }
          ws.messages.push({ ...m, raw: JSON.stringify(m) });
        }
      });
      ws.on("open", () => {
        if (nr.token) ws.send(JSON.stringify({ auth: nr.token }));
        else {
          topics.forEach((t) => ws.send(JSON.stringify({ subscribe: t })));
          resolve(ws);
        }
      });
    });
  if (admin) await nr.login();
  return nr;
}

/**
 * The part of a full camrelay flow on tab "tab" that keeps ffmpeg busy: "rec" (mp4 into `dir`, `rec`
 * overrides), "live" (HLS into the http stream out "view") and an inject "trigger" that starts the
 * recording (`trigger` overrides: repeat, onceDelay).
 */
function recordingAndHls(dir, { rec = {}, trigger = {} } = {}) {
  const encoder = { quality: 32, keyframeInterval: 1, encoder: "libx264" };
  return [
    {
      id: "rec",
      z: "tab",
      type: "ffmpeg-transcode",
      preset: "mp4",
      directory: dir,
      preRoll: 1,
      postRoll: 0,
      duration: 0,
      maxDuration: 300,
      ...encoder,
      wires: [[]],
      ...rec,
    },
    {
      id: "live",
      z: "tab",
      type: "ffmpeg-transcode",
      preset: "hls",
      directory: "",
      ...encoder,
      wires: [["view"]],
    },
    {
      id: "trigger",
      z: "tab",
      type: "inject",
      props: [{ p: "action", v: "start", vt: "str" }],
      repeat: "",
      once: true,
      onceDelay: 1.5,
      wires: [["rec"]],
      ...trigger,
    },
  ];
}

module.exports = { startNodeRed, childrenOf, fdsOf, rssOf, hash, recordingAndHls };
