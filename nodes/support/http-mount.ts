import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "http";
import type { Node, NodeAPI } from "node-red";
import { HLS_JS_PATH, serveHlsJs } from "../lib/serve/hls-js";
import { normalizePath } from "../lib/serve/stream-out-settings";

export type Next = (err?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
interface Layer {
  handle?: unknown;
}
/** The part of an express app the node uses (RED.httpNode); `_router` is express 4, `router` express 5. */
export interface HttpApp {
  use(path: string, fn: Middleware): unknown;
  _router?: { stack: Layer[] };
  router?: { stack: Layer[] };
}

/** Why a node cannot serve: the key of its status text and the error to log. */
export interface MountProblem {
  key: "disabled" | "badPath" | "pathInUse";
  message: string;
}

/** The hls.js route of each RED.httpNode app and how many http stream out nodes keep it. */
const hlsJsRoutes = new WeakMap<object, { users: number; handler: Middleware }>();

/** Paths in use, per RED.httpNode app (each test-helper load has its own), lower case as express matches. */
const claimedPaths = new WeakMap<object, Map<string, string>>();

/** A setting from settings.js (RED.settings has getters only for what Node-RED itself knows). */
export function nodeRedSetting(RED: NodeAPI, name: string): unknown {
  const settings: object = RED.settings;
  return Reflect.get(settings, name);
}

/** RED.httpNode when Node-RED serves node HTTP endpoints (httpNodeRoot is not false). */
export function isHttpApp(app: unknown): app is HttpApp {
  return (
    (typeof app === "function" || (typeof app === "object" && app !== null)) &&
    "use" in app &&
    typeof app.use === "function"
  );
}

/** httpNodeMiddleware (a function or a nested array of them), as the core http in node applies it. */
export function middlewareList(setting: unknown): Middleware[] {
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

/** Runs httpNodeMiddleware (as the core http in node applies it), then `last`. */
export function runMiddleware(
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

/** A layer on `app` under `path` that strips foreign CORS headers and runs httpNodeMiddleware first. */
function layer(app: HttpApp, path: string, middleware: Middleware[], serve: Middleware): Middleware {
  const handler: Middleware = (req, res, next) => {
    dropForeignCors(res);
    runMiddleware(middleware, req, res, next, () => serve(req, res, next));
  };
  app.use(path, handler);
  return handler;
}

/** Serves hls.js under <httpNodeRoot>/camrelay/hls.min.js while at least one http stream out runs. */
function useHlsJs(RED: NodeAPI, app: HttpApp, middleware: Middleware[]): void {
  const route = hlsJsRoutes.get(app);
  if (route) {
    route.users++;
    return;
  }
  const onError = (err: Error): void =>
    RED.log.warn(RED._("http-stream-out.errors.hlsJs", { error: err.message }));
  const handler: Middleware = (req, res, next) => {
    const bare = (req.url ?? "/").split("?")[0];
    if ((bare !== "/" && bare !== "") || (req.method !== "GET" && req.method !== "HEAD")) return next();
    dropForeignCors(res);
    runMiddleware(middleware, req, res, next, () => serveHlsJs(req, res, onError));
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

/** The paths claimed on this RED.httpNode app. */
function claimsOf(app: HttpApp): Map<string, string> {
  let claims = claimedPaths.get(app);
  if (!claims) claimedPaths.set(app, (claims = new Map()));
  return claims;
}

/**
 * One http stream out node's place on RED.httpNode: its path (normalised, claimed by the node's id so
 * a second node cannot take it), one layer with httpNodeMiddleware inside it (so close removes exactly
 * what was added), and a share of the hls.min.js route.
 */
export class HttpMount {
  /** The normalised path; undefined when the configured one is not usable. */
  readonly path: string | undefined;
  /** Why the node cannot serve; undefined when it can. */
  readonly problem: MountProblem | undefined;
  private readonly app: HttpApp | undefined;
  private handler: Middleware | undefined;

  constructor(
    private readonly RED: NodeAPI,
    private readonly node: Node,
    rawPath: unknown,
  ) {
    const httpNode: unknown = RED.httpNode;
    this.app = isHttpApp(httpNode) ? httpNode : undefined;
    this.path = normalizePath(rawPath);
    this.problem = this.findProblem(rawPath);
  }

  private findProblem(raw: unknown): MountProblem | undefined {
    const { RED, app, path } = this;
    if (!app) return { key: "disabled", message: RED._("http-stream-out.errors.disabled") };
    if (!path)
      return {
        key: "badPath",
        message: RED._("http-stream-out.errors.badPath", { path: String(raw ?? "") }),
      };
    const id = claimsOf(app).get(path.toLowerCase());
    if (id !== undefined)
      return { key: "pathInUse", message: RED._("http-stream-out.errors.pathInUse", { path, id }) };
    return undefined;
  }

  /** Claims the path and mounts `handle` under it; nothing when there is a problem. */
  open(handle: (req: IncomingMessage, res: ServerResponse) => void): void {
    const { RED, node, app, path } = this;
    if (this.problem || !app || !path || this.handler) return;
    claimsOf(app).set(path.toLowerCase(), node.id);
    const middleware = middlewareList(nodeRedSetting(RED, "httpNodeMiddleware"));
    useHlsJs(RED, app, middleware);
    this.handler = layer(app, path, middleware, (req, res) => {
      try {
        handle(req, res);
      } catch (e) {
        answerServerError(res);
        node.error(RED._("http-stream-out.errors.request", { error: String(e) }));
      }
    });
  }

  /** Undoes `open`: removes the layer, gives the path back while this node holds it, drops hls.js. */
  close(): void {
    const { app, path, handler } = this;
    if (!app || !path || !handler) return;
    this.handler = undefined;
    removeLayer(app, handler);
    const claims = claimsOf(app);
    const key = path.toLowerCase();
    if (claims.get(key) === this.node.id) claims.delete(key);
    dropHlsJs(app);
  }
}
