import { createHash } from "crypto";
import { readFile } from "fs";
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "http";
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import { frameFromMessage } from "./lib/messages";
import { readMp4Info } from "./lib/serve/fmp4-store";
import { StreamServer, type MetricRow } from "./lib/serve/stream-server";
import type { CameraSourceNode } from "./support/config-node";

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

function num(v: unknown, fallback: number): number {
  const n = Number(v);
  return v === "" || v === undefined || !Number.isFinite(n) || n < 0 ? fallback : n;
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

export = (RED: NodeAPI) => {
  /** The camera's own counters, from the camera-source whose name the frames carry (if there is one). */
  function cameraMetrics(name: string): MetricRow[] {
    if (!name) return [];
    let source: CameraSourceNode | undefined;
    RED.nodes.eachNode((def) => {
      if (source || def.type !== "camera-source") return;
      const n = RED.nodes.getNode(def.id) as CameraSourceNode | null;
      if (n?.camera?.name === name) source = n;
    });
    if (!source) return [];
    const labels = { camera: name };
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

  /** Serves hls.js under <httpNodeRoot>/camrelay/hls.min.js while at least one http stream out runs. */
  function useHlsJs(app: HttpApp, middleware: Middleware[]): void {
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

  function dropHlsJs(app: HttpApp): void {
    const route = hlsJsRoutes.get(app);
    if (!route || --route.users > 0) return;
    removeLayer(app, route.handler);
    hlsJsRoutes.delete(app);
  }

  function HttpStreamOut(this: Node<HttpStreamOutCredentials>, config: HttpStreamOutDef) {
    RED.nodes.createNode(this, config);
    const app = (RED as unknown as { httpNode?: HttpApp }).httpNode;
    const path = normalizePath(config.path);
    let failed = false;

    const fail = (statusKey: string, message: string): void => {
      failed = true;
      this.status({ fill: "red", shape: "ring", text: RED._(`http-stream-out.status.${statusKey}`) });
      this.error(message);
    };

    if (!app) {
      fail("disabled", RED._("http-stream-out.errors.disabled"));
    } else if (!path) {
      fail("badPath", RED._("http-stream-out.errors.badPath", { path: String(config.path ?? "") }));
    }
    let claims = app ? claimedPaths.get(app) : undefined;
    if (app && !claims) claimedPaths.set(app, (claims = new Map()));
    const key = path?.toLowerCase() ?? "";
    if (!failed && claims?.has(key)) {
      fail(
        "pathInUse",
        RED._("http-stream-out.errors.pathInUse", { path: path ?? "", id: claims.get(key) ?? "" }),
      );
    }

    const settings = RED.settings as unknown as Record<string, unknown>;
    let lastStatus = "";
    let statusTimer: NodeJS.Timeout | undefined;
    let renderErrorShown = false;

    const showStatus = (): void => {
      statusTimer = undefined;
      if (failed) return;
      if (server.renderError && !renderErrorShown) {
        renderErrorShown = true;
        this.warn(RED._("http-stream-out.errors.placeholder", { error: server.renderError.message }));
      }
      const count = server.viewerCount;
      const fps = Math.round(server.fpsIn);
      const one = count === 1 ? "One" : ""; // "1 viewer", "2 viewers"
      let status: NodeStatus;
      if (!server.hasHadFrames) {
        status = { fill: "yellow", shape: "ring", text: RED._("http-stream-out.status.waiting", { count }) };
      } else if (server.upstream === "offline") {
        status = {
          fill: "red",
          shape: "ring",
          text: RED._(`http-stream-out.status.offline${one}`, { count }),
        };
      } else {
        const fill = count > 0 ? "green" : "grey";
        status = { fill, shape: "dot", text: RED._(`http-stream-out.status.viewers${one}`, { count, fps }) };
      }
      const text = JSON.stringify(status);
      if (text === lastStatus) return;
      lastStatus = text;
      this.status(status);
    };

    /** At most two status updates per second, however busy the viewers are. */
    const scheduleStatus = (): void => {
      statusTimer ??= setTimeout(showStatus, 500);
    };

    const server: StreamServer = new StreamServer({
      path: path ?? "/",
      title: config.name || path,
      // An old flow without the property, or 0, means unlimited, as it always did (new nodes get 100).
      maxClients: num(config.maxClients, 0),
      maxPerAddress: num(config.maxPerAddress, 0),
      maxKbps: num(config.maxKbps, 0),
      token:
        typeof this.credentials?.token === "string" && this.credentials.token
          ? this.credentials.token
          : undefined,
      cors: config.cors ? config.cors : corsFromSettings(settings.httpNodeCors),
      offlineAfterMs: num(config.offlineAfter, 10) * 1000,
      stallTimeoutMs: Math.max(0.5, num(config.stallTimeout, 10)) * 1000,
      texts: {
        waiting: RED._("http-stream-out.placeholder.waiting"),
        offline: RED._("http-stream-out.placeholder.offline"),
      },
      onViewer: (event, viewer, count) => {
        this.send({ topic: "viewers", payload: count, event, viewer, path } as unknown as NodeMessageInFlow);
        scheduleStatus();
      },
      onChange: scheduleStatus,
      extraMetrics: (): MetricRow[] => cameraMetrics(server.cameraName),
    });

    let handler: Middleware | undefined;
    if (!failed && app && claims && path) {
      claims.set(key, this.id);
      const middleware = middlewareList(settings.httpNodeMiddleware);
      useHlsJs(app, middleware);
      // One layer per node (httpNodeMiddleware runs inside it), so close removes exactly what was added.
      const h: Middleware = (req, res, next) => {
        dropForeignCors(res);
        runMiddleware(middleware, req, res, next, () => {
          try {
            server.handle(req, res);
          } catch (e) {
            answerServerError(res);
            this.error(RED._("http-stream-out.errors.request", { error: String(e) }));
          }
        });
      };
      handler = h;
      app.use(path, h);
      showStatus();
    }

    this.on("input", (msg, _send, done) => {
      const m = msg as NodeMessageInFlow & { action?: unknown; mp4?: unknown };
      if (m.action === "offline") {
        server.setOffline();
        done();
        return;
      }
      const payload = m.payload;
      const mp4 = m.mp4 === undefined ? undefined : readMp4Info(m.mp4);
      if (mp4 && !("type" in mp4)) {
        const value = typeof mp4.value === "string" ? JSON.stringify(mp4.value) : String(mp4.value);
        const rule = RED._(`http-stream-out.mp4rules.${mp4.rule}`);
        done(
          new Error(
            RED._("http-stream-out.errors.badMp4", { field: mp4.field, value: value.slice(0, 40), rule }),
          ),
        );
        return;
      }
      if (mp4 && Buffer.isBuffer(payload)) {
        server.pushMp4(payload, mp4);
        done();
        return;
      }
      const frame = frameFromMessage(m);
      if (!frame || frame.data.length < 4 || frame.data[0] !== 0xff || frame.data[1] !== 0xd8) {
        done(new Error(RED._("http-stream-out.errors.notJpeg")));
        return;
      }
      server.pushFrame(frame);
      done();
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      if (statusTimer) clearTimeout(statusTimer);
      server.close();
      if (app && handler) {
        removeLayer(app, handler);
        if (claims?.get(key) === this.id) claims.delete(key);
        dropHlsJs(app);
      }
      this.status({});
      done();
    });
  }

  RED.nodes.registerType("http-stream-out", HttpStreamOut, {
    credentials: { token: { type: "password" } },
  });
};
