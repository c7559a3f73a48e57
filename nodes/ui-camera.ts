/**
 * `ui-camera`: a FlowFuse Dashboard 2 widget that shows one camrelay stream live (the <camrelay-player>
 * that camrelay serves, or MJPEG when the player is not there), with snapshot, fullscreen, audio and record
 * buttons and the stream's recordings. The Vue component is built into resources/ui-camera.umd.js
 * (ui/, scripts/build.js); this adapter registers the widget with its Dashboard 2 group, turns button
 * presses into messages and takes `msg.payload` (another path) and `msg.action = "snapshot"` in.
 *
 * @flowfuse/node-red-dashboard is an optional peer: without it camrelay loads as before and this node
 * only says, in its status and log, what to install.
 */
import http from "http";
import https from "https";
import type { AddressInfo } from "net";
import nodePath from "path";
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";

interface UICameraDef extends NodeDef {
  group: string;
  order?: number | string;
  width?: number | string;
  height?: number | string;
  /** The id of an `http stream out` node; wins over `path`. */
  stream?: string;
  /** A stream path typed by hand (`/camera/front`), used when `stream` is empty. */
  path?: string;
  transport?: string;
  fit?: string;
  /** Which buttons to show: a comma-separated subset of snapshot, fullscreen, audio, record. */
  controls?: string;
  label?: string;
}

/** What a Dashboard 2 `ui-base` node offers a widget (the parts used here). */
interface DashboardBase {
  stores?: { data?: { save(base: DashboardBase, node: Node, msg: NodeMessage): void } };
  uiShared?: { contribs?: Record<string, unknown> };
}

/** What a Dashboard 2 `ui-group` config node offers a widget. */
interface DashboardGroup {
  register(node: Node, config: Record<string, unknown>, events: Record<string, unknown>): void;
  getBase?(): DashboardBase;
}

const TRANSPORTS = ["auto", "webrtc", "mse", "hls", "mjpeg"] as const;
const FITS = ["contain", "cover"] as const;
const CONTROLS = ["snapshot", "fullscreen", "audio", "record"] as const;
const DEFAULT_CONTROLS = "snapshot,fullscreen,record";
const PACKAGE = "@camrelay/node-red-camrelay";
const BUNDLE = "ui-camera.umd.js";
/** A stream path: one or more /segments of URL-safe characters, no dot segments. */
const PATH_RE = /^(\/[A-Za-z0-9_~!$&'()*+,;=:@%-][A-Za-z0-9._~!$&'()*+,;=:@%-]*)+$/;
const SNAPSHOT_TIMEOUT_MS = 12_000;
const MAX_SNAPSHOT_BYTES = 32 * 1024 * 1024;

/** A stream path as the widget uses it, or undefined when `raw` is not one. */
function streamPath(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  let p = raw.trim();
  if (!p) return undefined;
  if (!p.startsWith("/")) p = "/" + p;
  p = p.replace(/\/+$/, "");
  if (!PATH_RE.test(p) || p.split("/").some((s) => s === "." || s === "..")) return undefined;
  return p;
}

/** The buttons to show, in a fixed order, from the saved comma-separated list. */
function readControls(raw: unknown): string[] {
  const text = typeof raw === "string" ? raw : DEFAULT_CONTROLS;
  const picked = new Set(text.split(",").map((s) => s.trim()));
  return CONTROLS.filter((c) => picked.has(c));
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[]): T {
  return allowed.includes(value as T) ? (value as T) : allowed[0];
}

/** Node-RED's httpNodeRoot as a prefix that starts and ends with "/". */
function nodeRoot(RED: NodeAPI): string {
  const root = (RED.settings as { httpNodeRoot?: string | false }).httpNodeRoot;
  let r = typeof root === "string" ? root : "/";
  if (!r.startsWith("/")) r = "/" + r;
  return r.endsWith("/") ? r : r + "/";
}

/** GET `url` into a Buffer: a JPEG answer, at most MAX_SNAPSHOT_BYTES, within SNAPSHOT_TIMEOUT_MS. */
function fetchJpeg(url: URL): Promise<Buffer> {
  const get = url.protocol === "https:" ? https.get : http.get;
  return new Promise((resolve, reject) => {
    // Node-RED's own server, reached over loopback: its certificate names the public host, not 127.0.0.1.
    const req = get(url, { rejectUnauthorized: false, agent: false }, (res) => {
      const type = String(res.headers["content-type"] || "");
      if (res.statusCode !== 200 || !type.startsWith("image/jpeg")) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode} (${type || "no content type"})`));
        return;
      }
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
        if (bytes > MAX_SNAPSHOT_BYTES) req.destroy(new Error("the picture is too large"));
        else chunks.push(c);
      });
      res.on("end", () => resolve(Buffer.concat(chunks)));
      res.on("error", reject);
    });
    req.setTimeout(SNAPSHOT_TIMEOUT_MS, () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

export = (RED: NodeAPI) => {
  /** The flow definition of node `id` (from the deployed flows, whether or not it has started yet). */
  function definition(id: string): Record<string, unknown> | undefined {
    let found: Record<string, unknown> | undefined;
    RED.nodes.eachNode((def) => {
      if (def.id === id) found = def as unknown as Record<string, unknown>;
    });
    return found;
  }

  /** Whether @flowfuse/node-red-dashboard is installed where Node-RED (or this package) would load it from. */
  function dashboardInstalled(): boolean {
    const userDir = (RED.settings as { userDir?: string }).userDir;
    try {
      require.resolve("@flowfuse/node-red-dashboard/package.json", {
        paths: [userDir || "", __dirname].filter(Boolean),
      });
      return true;
    } catch {
      return false;
    }
  }

  function UICamera(this: Node, config: UICameraDef) {
    RED.nodes.createNode(this, config);

    const group = RED.nodes.getNode(config.group) as unknown as DashboardGroup | null;
    if (!group || typeof group.register !== "function") {
      const key = dashboardInstalled() ? "ui-camera.errors.noGroup" : "ui-camera.errors.noDashboard";
      this.status({ fill: "red", shape: "ring", text: RED._(`${key}Status`) });
      this.warn(RED._(key));
      this.on("input", (_msg: NodeMessageInFlow, _send: unknown, done: (err?: Error) => void) =>
        done(new Error(RED._(key))),
      );
      return;
    }

    // The stream: an http stream out node's path, else the path typed in; its token goes to the page.
    let path: string | undefined;
    let token = "";
    if (config.stream) {
      const def = definition(config.stream);
      path = def && def.type === "http-stream-out" ? streamPath(def.path) : undefined;
      const creds = RED.nodes.getCredentials(config.stream) as { token?: string } | undefined;
      token = creds?.token || "";
      if (!path) {
        this.status({ fill: "red", shape: "ring", text: RED._("ui-camera.errors.noStreamStatus") });
        this.warn(RED._("ui-camera.errors.noStream", { id: config.stream }));
      }
    } else {
      path = streamPath(config.path);
      if (!path) {
        this.status({ fill: "red", shape: "ring", text: RED._("ui-camera.errors.badPathStatus") });
        this.warn(RED._("ui-camera.errors.badPath", { path: String(config.path ?? "") }));
      }
    }
    const root = nodeRoot(RED);
    const transport = oneOf(config.transport, TRANSPORTS);
    const fit = oneOf(config.fit, FITS);
    const controls = readControls(config.controls);
    const label = typeof config.label === "string" ? config.label : "";
    const base = group.getBase?.();
    /** The path shown now: the configured one until a message names another. */
    let current = path;

    // Dashboard 2 finds third-party widgets in packages named *node-red-dashboard-2-*; this package is
    // not, so the widget's bundle is named to the dashboard here (served by Node-RED from resources/).
    const contribs = base?.uiShared?.contribs;
    if (contribs && !contribs["ui-camera"]) {
      contribs["ui-camera"] = {
        package: PACKAGE,
        name: "ui-camera",
        src: BUNDLE,
        path: nodePath.join(__dirname, "..", ".."),
        component: "UICamera",
      };
    }

    /** The token of the http stream out node serving path `p` on this Node-RED, if it has one. */
    function tokenFor(p: string): string {
      if (p === path && token) return token;
      let id: string | undefined;
      RED.nodes.eachNode((def) => {
        const d = def as unknown as Record<string, unknown>;
        if (d.type === "http-stream-out" && streamPath(d.path) === p) id = def.id;
      });
      const creds = id ? (RED.nodes.getCredentials(id) as { token?: string } | undefined) : undefined;
      return creds?.token || "";
    }

    /** The latest picture of a stream path, from the stream's own snapshot.jpg on this Node-RED. */
    async function snapshotOf(p: string): Promise<Buffer> {
      const address = RED.server?.address() as AddressInfo | string | null;
      if (!address || typeof address === "string") throw new Error("Node-RED's HTTP server is not listening");
      const secure = "setSecureContext" in RED.server;
      const v6 = String(address.family) === "IPv6" || String(address.family) === "6";
      // Loopback when Node-RED listens on every address, else the one address it listens on.
      const any = address.address === "0.0.0.0" || address.address === "::";
      const ip = any ? (v6 ? "::1" : "127.0.0.1") : address.address;
      const host = ip.includes(":") ? `[${ip}]` : ip;
      const url = new URL(
        `${secure ? "https" : "http"}://${host}:${address.port}${root}${p.slice(1)}/snapshot.jpg`,
      );
      url.searchParams.set("wait", "1");
      const t = tokenFor(p);
      if (t) url.searchParams.set("token", t);
      return fetchJpeg(url);
    }

    const props: Record<string, unknown> = {
      ...config,
      type: "ui-camera",
      order: config.order,
      width: config.width,
      height: config.height,
      label,
      transport,
      fit,
      controls,
      // What the page needs, resolved here: the stream's URL path, the player's URL and the stream token.
      src: path ? root + path.slice(1) : "",
      playerUrl: `${root}camrelay/player.js`,
      token,
    };

    const events = {
      // Buttons on the page come in as widget-action messages; the dashboard adds msg._client and sends.
      onAction: true,
      onInput: async (msg: NodeMessageInFlow & { action?: unknown }, send: (m: NodeMessage) => void) => {
        if (msg.action === "snapshot") {
          const p = current;
          if (!p) throw new Error(RED._("ui-camera.errors.noPathToSnapshot"));
          let jpeg: Buffer;
          try {
            jpeg = await snapshotOf(p);
          } catch (err) {
            throw new Error(RED._("ui-camera.errors.snapshot", { path: p, error: (err as Error).message }));
          }
          const out = { ...msg, action: "snapshot", path: p, payload: jpeg } as NodeMessage;
          send(out);
          return;
        }
        if (msg.action !== undefined) {
          throw new Error(RED._("ui-camera.errors.badAction", { action: String(msg.action) }));
        }
        // enabled, visible, class, ui_update alone: the dashboard's own business
        if (msg.payload === undefined) return;
        const next = streamPath(msg.payload);
        if (!next) throw new Error(RED._("ui-camera.errors.badPayload"));
        current = next;
        // What the page needs for it, as for the configured path: URL path and token.
        Object.assign(msg, { payload: next, path: next, src: root + next.slice(1), token: tokenFor(next) });
        // Kept, so a page opened later (or reloaded) shows this path too.
        base?.stores?.data?.save(base, this, msg);
      },
    };
    group.register(this, props, events);
    if (path) this.status({});
  }

  RED.nodes.registerType("ui-camera", UICamera);
};
