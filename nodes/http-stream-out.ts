import { createHash } from "crypto";
import { readFile } from "fs";
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "http";
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import { cameraIdFromMessage, frameFromMessage, readMp4Info, viewerMessage } from "./lib/messages";
import { numberSetting } from "./lib/settings";
import { StreamServer, type MetricRow } from "./lib/serve/stream-server";
import type { CameraSourceNode } from "./support/config-node";
import { StatusReporter } from "./support/status-reporter";

interface HttpStreamOutDef extends NodeDef {
  path: string;
  maxClients: number | string;
  maxPerAddress?: number | string;
  maxKbps: number | string;
  cors: string;
  offlineAfter: number | string;
  stallTimeout: number | string;
}

type HttpStreamOutCredentials = { token: unknown };

type Next = (err?: unknown) => void;
type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
interface Layer {
  handle?: unknown;
}
/** The part of an express app the node uses (RED.httpNode); `_router` is express 4, `router` express 5. */
interface HttpApp {
  use(path: string, fn: Middleware): unknown;
  _router?: { stack: Layer[] };
  router?: { stack: Layer[] };
}

/** The URL, below httpNodeRoot, where hls.js is served for pages without internet access. */
const HLS_JS_PATH = "/camrelay/hls.min.js";

/** The hls.js route of each RED.httpNode app and how many http stream out nodes keep it. */
const hlsJsRoutes = new WeakMap<object, { users: number; handler: Middleware }>();

/** Paths in use, per RED.httpNode app (each test-helper load has its own), lower case as express matches. */
const claimedPaths = new WeakMap<object, Map<string, string>>();

/** "/camera/front" from "camera/front/"; undefined for "/" or characters express would read as a pattern. */
function normalizePath(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  let p = raw.trim().replace(/\/+/g, "/");
  if (!p.startsWith("/")) p = "/" + p;
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return /^(\/[A-Za-z0-9._~-]+)+$/.test(p) ? p : undefined;
}

/** A setting of this node that cannot be below `min`: the shared rule (lib/settings.ts), with its floor. */
function num(value: unknown, fallback: number, min = 0): number {
  return numberSetting(value, fallback, { min });
}

/** RED.httpNode when Node-RED serves node HTTP endpoints (httpNodeRoot is not false). */
function isHttpApp(app: unknown): app is HttpApp {
  return (
    (typeof app === "function" || (typeof app === "object" && app !== null)) &&
    "use" in app &&
    typeof app.use === "function"
  );
}

function isCameraSource(node: Node | null): node is CameraSourceNode {
  return node !== null && node.type === "camera-source" && "camera" in node;
}

/** The camera's own counters for `<path>/metrics`. */
function cameraRows(source: CameraSourceNode): MetricRow[] {
  const labels = { camera: source.camera.name };
  return [
    {
      name: "camrelay_camera_reconnects_total",
      type: "counter",
      help: "Reconnects of the camera feeding this stream.",
      value: source.camera.stats.reconnects,
      labels,
    },
    {
      name: "camrelay_camera_up",
      type: "gauge",
      help: "1 while the camera is streaming.",
      value: source.camera.state.state === "streaming" ? 1 : 0,
      labels,
    },
  ];
}

/** httpNodeMiddleware (a function or a nested array of them), as the core http in node applies it. */
function middlewareList(setting: unknown): Middleware[] {
  if (typeof setting === "function") return [setting as Middleware];
  if (Array.isArray(setting)) return setting.flatMap((s) => middlewareList(s));
  return [];
}

/** Removes CORS headers set before camrelay saw the request (Node-RED's admin app sets `*` when it shares "/"). */
function dropForeignCors(res: ServerResponse): void {
  for (const name of res.getHeaderNames()) if (name.startsWith("access-control-")) res.removeHeader(name);
}

/** A 500 with the status text alone (Express's own handler would show the client the stack). */
function answerServerError(res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
  res.end(`${STATUS_CODES[500]}\n`);
}

/** Removes the layer whose handle is `handler` from an express app. */
function removeLayer(app: HttpApp, handler: Middleware): void {
  const stack = (app._router ?? app.router)?.stack ?? [];
  const i = stack.findIndex((layer) => layer.handle === handler);
  if (i >= 0) stack.splice(i, 1);
}

/** httpNodeCors as a default for the node's own cors property. */
function corsFromSettings(setting: unknown): string | string[] {
  if (typeof setting !== "object" || setting === null) return "";
  const origin = (setting as { origin?: unknown }).origin;
  if (origin === true || origin === undefined) return "*";
  if (typeof origin === "string") return origin;
  if (Array.isArray(origin)) return origin.filter((o): o is string => typeof o === "string");
  return "";
}

/** Runs httpNodeMiddleware (as the core http in node applies it), then `last`. */
function runMiddleware(
  middleware: Middleware[],
  req: IncomingMessage,
  res: ServerResponse,
  next: Next,
  last: () => void,
): void {
  let i = 0;
  const step: Next = (err) => {
    if (err !== undefined) return next(err);
    const mw = middleware[i++];
    if (!mw) return last();
    try {
      // A middleware may call step later, outside Express's own try: nothing may escape from here.
      mw(req, res, step);
    } catch (e) {
      next(e);
    }
  };
  step();
}

/** hls.js's minified build, read once when first asked for. */
let hlsJs: Promise<{ data: Buffer; etag: string }> | undefined;

function loadHlsJs(): Promise<{ data: Buffer; etag: string }> {
  hlsJs ??= new Promise((resolve, reject) => {
    let file: string;
    try {
      file = require.resolve("hls.js/dist/hls.min.js");
    } catch (err) {
      reject(err as Error);
      return;
    }
    readFile(file, (err, data) => {
      if (err) reject(err);
      else resolve({ data, etag: `"${createHash("sha1").update(data).digest("hex").slice(0, 20)}"` });
    });
  });
  hlsJs.catch(() => (hlsJs = undefined));
  return hlsJs;
}

/** Answers GET/HEAD for hls.min.js (Node-RED hosts often have no internet to load it from a CDN). */
function serveHlsJs(req: IncomingMessage, res: ServerResponse, onError: (err: Error) => void): void {
  loadHlsJs().then(
    ({ data, etag }) => {
      const headers = {
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": "max-age=3600",
        ETag: etag,
      };
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, "Content-Length": data.length });
      res.end(req.method === "HEAD" ? undefined : data);
    },
    (err: Error) => {
      onError(err);
      if (!res.headersSent) res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("hls.js is not installed\n");
    },
  );
}

/**
 * The camera-source behind the frames: by the id the frame messages carry (msg.frame.cameraId), else
 * by the camera name they carry, but only when exactly one camera has that name (two unnamed cameras
 * are both "test pattern" or "camera": guessing would show one camera's counters for the other).
 */
function findCamera(RED: NodeAPI, cameraId: string | undefined, name: string): CameraSourceNode | undefined {
  if (cameraId !== undefined) {
    const node = RED.nodes.getNode(cameraId);
    return isCameraSource(node) ? node : undefined;
  }
  if (!name) return undefined;
  const named: CameraSourceNode[] = [];
  RED.nodes.eachNode((def) => {
    if (def.type !== "camera-source") return;
    const node = RED.nodes.getNode(def.id);
    if (isCameraSource(node) && node.camera?.name === name) named.push(node);
  });
  return named.length === 1 ? named[0] : undefined;
}

/** A setting from settings.js (RED.settings has getters only for what Node-RED itself knows). */
function setting(RED: NodeAPI, name: string): unknown {
  const settings: object = RED.settings;
  return Reflect.get(settings, name);
}

/** Serves hls.js under <httpNodeRoot>/camrelay/hls.min.js while at least one http stream out runs. */
function useHlsJs(RED: NodeAPI, app: HttpApp, middleware: Middleware[]): void {
  const route = hlsJsRoutes.get(app);
  if (route) {
    route.users++;
    return;
  }
  const handler: Middleware = (req, res, next) => {
    const bare = (req.url ?? "/").split("?")[0];
    if ((bare !== "/" && bare !== "") || (req.method !== "GET" && req.method !== "HEAD")) return next();
    dropForeignCors(res);
    runMiddleware(middleware, req, res, next, () =>
      serveHlsJs(req, res, (err) =>
        RED.log.warn(RED._("http-stream-out.errors.hlsJs", { error: err.message })),
      ),
    );
  };
  app.use(HLS_JS_PATH, handler);
  hlsJsRoutes.set(app, { users: 1, handler });
}

function dropHlsJs(RED: NodeAPI, app: HttpApp): void {
  const route = hlsJsRoutes.get(app);
  if (!route || --route.users > 0) return;
  removeLayer(app, route.handler);
  hlsJsRoutes.delete(app);
}

/** What the node shows under itself for the server's state. */
function statusOf(RED: NodeAPI, server: StreamServer): NodeStatus {
  const count = server.viewerCount;
  const fps = Math.round(server.fpsIn);
  const one = count === 1 ? "One" : ""; // "1 viewer", "2 viewers"
  if (!server.hasHadFrames)
    return { fill: "yellow", shape: "ring", text: RED._("http-stream-out.status.waiting", { count }) };
  if (server.upstream === "offline")
    return { fill: "red", shape: "ring", text: RED._(`http-stream-out.status.offline${one}`, { count }) };
  const fill = count > 0 ? "green" : "grey";
  return { fill, shape: "dot", text: RED._(`http-stream-out.status.viewers${one}`, { count, fps }) };
}

/** Why the node cannot serve (a status key and the error), or undefined when it can. */
function mountProblem(
  RED: NodeAPI,
  app: HttpApp | undefined,
  path: string | undefined,
  raw: unknown,
  claims: Map<string, string> | undefined,
): { key: string; message: string } | undefined {
  if (!app) return { key: "disabled", message: RED._("http-stream-out.errors.disabled") };
  if (!path)
    return {
      key: "badPath",
      message: RED._("http-stream-out.errors.badPath", { path: String(raw ?? "") }),
    };
  const id = claims?.get(path.toLowerCase());
  if (id !== undefined)
    return { key: "pathInUse", message: RED._("http-stream-out.errors.pathInUse", { path, id }) };
  return undefined;
}

/** The StreamServer for one node's settings. */
function createServer(
  RED: NodeAPI,
  node: Node<HttpStreamOutCredentials>,
  config: HttpStreamOutDef,
  path: string | undefined,
  hooks: {
    onViewer: ConstructorParameters<typeof StreamServer>[0]["onViewer"];
    onChange: () => void;
    extraMetrics: () => MetricRow[];
  },
): StreamServer {
  const token = node.credentials?.token;
  return new StreamServer({
    path: path ?? "/",
    title: config.name || path,
    // An old flow without the property, or 0, means unlimited, as it always did (new nodes get 100).
    maxClients: num(config.maxClients, 0),
    maxPerAddress: num(config.maxPerAddress, 0),
    maxKbps: num(config.maxKbps, 0),
    token: typeof token === "string" && token ? token : undefined,
    cors: config.cors ? config.cors : corsFromSettings(setting(RED, "httpNodeCors")),
    offlineAfterMs: num(config.offlineAfter, 10) * 1000,
    stallTimeoutMs: num(config.stallTimeout, 10, 0.5) * 1000,
    texts: {
      waiting: RED._("http-stream-out.placeholder.waiting"),
      offline: RED._("http-stream-out.placeholder.offline"),
    },
    ...hooks,
  });
}

/** One input message: offline, an fMP4 part or a JPEG frame; returns the error to report, if any. */
function takeInput(
  RED: NodeAPI,
  server: StreamServer,
  msg: NodeMessageInFlow & { action?: unknown; mp4?: unknown },
  /** Called for a JPEG frame, before it is served. */
  framed: () => void,
): Error | undefined {
  if (msg.action === "offline") {
    server.setOffline();
    return undefined;
  }
  const payload = msg.payload;
  const mp4 = msg.mp4 === undefined ? undefined : readMp4Info(msg.mp4);
  if (mp4 && !("type" in mp4)) {
    const value = typeof mp4.value === "string" ? JSON.stringify(mp4.value) : String(mp4.value);
    const rule = RED._(`http-stream-out.mp4rules.${mp4.rule}`);
    return new Error(
      RED._("http-stream-out.errors.badMp4", { field: mp4.field, value: value.slice(0, 40), rule }),
    );
  }
  if (mp4 && Buffer.isBuffer(payload)) {
    server.pushMp4(payload, mp4);
    return undefined;
  }
  const frame = frameFromMessage(msg);
  if (!frame || frame.data.length < 4 || frame.data[0] !== 0xff || frame.data[1] !== 0xd8)
    return new Error(RED._("http-stream-out.errors.notJpeg"));
  framed();
  server.pushFrame(frame);
  return undefined;
}

/**
 * Mounts the server under `path` on RED.httpNode: one layer per node (httpNodeMiddleware runs inside
 * it), so close removes exactly what was added. Returns the layer's handler.
 */
function mount(RED: NodeAPI, node: Node, app: HttpApp, path: string, server: StreamServer): Middleware {
  const middleware = middlewareList(setting(RED, "httpNodeMiddleware"));
  useHlsJs(RED, app, middleware);
  const handler: Middleware = (req, res, next) => {
    dropForeignCors(res);
    runMiddleware(middleware, req, res, next, () => {
      try {
        server.handle(req, res);
      } catch (e) {
        answerServerError(res);
        node.error(RED._("http-stream-out.errors.request", { error: String(e) }));
      }
    });
  };
  app.use(path, handler);
  return handler;
}

/** Undoes `mount`; `release` gives the path back when this node still holds it. */
function unmount(RED: NodeAPI, app: HttpApp, handler: Middleware, release: (() => void) | undefined): void {
  removeLayer(app, handler);
  release?.();
  dropHlsJs(RED, app);
}

/** The paths claimed on this RED.httpNode app. */
function claimsOf(app: HttpApp | undefined): Map<string, string> | undefined {
  if (!app) return undefined;
  let claims = claimedPaths.get(app);
  if (!claims) claimedPaths.set(app, (claims = new Map()));
  return claims;
}

export = (RED: NodeAPI) => {
  function HttpStreamOut(this: Node<HttpStreamOutCredentials>, config: HttpStreamOutDef) {
    RED.nodes.createNode(this, config);
    const httpNode: unknown = RED.httpNode;
    const app = isHttpApp(httpNode) ? httpNode : undefined;
    const path = normalizePath(config.path);
    const claims = claimsOf(app);
    const key = path?.toLowerCase() ?? "";
    // At most two status updates per second, however busy the viewers are.
    const reporter = new StatusReporter(this, 500);
    const problem = mountProblem(RED, app, path, config.path, claims);
    if (problem) {
      reporter.show({ fill: "red", shape: "ring", text: RED._(`http-stream-out.status.${problem.key}`) });
      this.error(problem.message);
    }
    let renderErrorShown = false;
    /** The camera-source id the latest frame named (msg.frame.cameraId). */
    let cameraId: string | undefined;

    const showStatus = (): void => {
      if (problem) return;
      if (server.renderError && !renderErrorShown) {
        renderErrorShown = true;
        this.warn(RED._("http-stream-out.errors.placeholder", { error: server.renderError.message }));
      }
      reporter.show(statusOf(RED, server));
    };
    const server: StreamServer = createServer(RED, this, config, path, {
      onViewer: (event, viewer, count) => {
        this.send(viewerMessage({ event, viewer, count, path }));
        showStatus();
      },
      onChange: showStatus,
      extraMetrics: (): MetricRow[] => {
        const source = findCamera(RED, cameraId, server.cameraName);
        return source ? cameraRows(source) : [];
      },
    });

    let handler: Middleware | undefined;
    if (!problem && app && claims && path) {
      claims.set(key, this.id);
      handler = mount(RED, this, app, path, server);
      showStatus();
    }

    this.on("input", (msg, _send, done) => {
      const err = takeInput(RED, server, msg, () => (cameraId = cameraIdFromMessage(msg)));
      return err ? done(err) : done();
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      server.close();
      if (app && handler)
        unmount(RED, app, handler, claims?.get(key) === this.id ? () => claims?.delete(key) : undefined);
      reporter.clear();
      done();
    });
  }

  RED.nodes.registerType("http-stream-out", HttpStreamOut, {
    credentials: { token: { type: "password" } },
  });
};
