import { createHash } from "crypto";
import { readFile } from "fs";
import type { IncomingMessage, ServerResponse } from "http";
import { join } from "path";
import { isHttpApp, middlewareList, runMiddleware, type Middleware } from "../../support/http-mount";

/** The URL, below httpNodeRoot, where the <camrelay-player> element is served. */
export const PLAYER_JS_PATH = "/camrelay/player.js";

/** The player's source file: copied beside this module's compiled .js by scripts/build.js. */
export const PLAYER_JS_FILE = join(__dirname, "player", "player.js");

/** The file, read once when first asked for (kept while the route is mounted). */
let playerJs: Promise<{ data: Buffer; etag: string }> | undefined;

function loadPlayerJs(): Promise<{ data: Buffer; etag: string }> {
  playerJs ??= new Promise((resolve, reject) => {
    readFile(PLAYER_JS_FILE, (err, data) => {
      if (err) reject(err);
      else resolve({ data, etag: `"${createHash("sha1").update(data).digest("hex").slice(0, 20)}"` });
    });
  });
  playerJs.catch(() => (playerJs = undefined));
  return playerJs;
}

/** Answers GET/HEAD for player.js: no-cache with an ETag, so a new camrelay version reaches pages at once. */
export function servePlayerJs(
  req: IncomingMessage,
  res: ServerResponse,
  onError: (err: Error) => void,
): void {
  loadPlayerJs().then(
    ({ data, etag }) => {
      const headers = {
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": "no-cache",
        ETag: etag,
        // A classic <script> needs no CORS; this lets a page on another origin load it as a module too.
        "Access-Control-Allow-Origin": "*",
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
      res.end("camrelay's player.js is missing from this install\n");
    },
  );
}

/** The player.js route of each RED.httpNode app and how many http stream out nodes keep it. */
const routes = new WeakMap<object, { users: number; handler: Middleware }>();

/**
 * Serves player.js under <httpNodeRoot>camrelay/player.js while at least one http stream out runs: one
 * layer per app (httpNodeAuth applies to the app itself; httpNodeMiddleware runs inside the layer).
 */
export function usePlayerRoute(
  app: unknown,
  middlewareSetting: unknown,
  onError: (err: Error) => void,
): void {
  if (!isHttpApp(app)) return;
  const route = routes.get(app);
  if (route) {
    route.users++;
    return;
  }
  const middleware = middlewareList(middlewareSetting);
  const handler: Middleware = (req, res, next) => {
    const bare = (req.url ?? "/").split("?")[0];
    if ((bare !== "/" && bare !== "") || (req.method !== "GET" && req.method !== "HEAD")) return next();
    for (const name of res.getHeaderNames()) if (name.startsWith("access-control-")) res.removeHeader(name);
    runMiddleware(middleware, req, res, next, () => servePlayerJs(req, res, onError));
  };
  app.use(PLAYER_JS_PATH, handler);
  routes.set(app, { users: 1, handler });
}

/** Gives back one share of the route; the last one removes the layer and forgets the cached file. */
export function dropPlayerRoute(app: unknown): void {
  if (!isHttpApp(app)) return;
  const route = routes.get(app);
  if (!route || --route.users > 0) return;
  const stack = (app._router ?? app.router)?.stack ?? [];
  const i = stack.findIndex((layer) => layer.handle === route.handler);
  if (i >= 0) stack.splice(i, 1);
  routes.delete(app);
  playerJs = undefined;
}
