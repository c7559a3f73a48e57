import { createHash, timingSafeEqual } from "crypto";
import { ServerResponse, STATUS_CODES, type IncomingMessage } from "http";
import { createRequire } from "module";
import type { Duplex } from "stream";

/**
 * What Node-RED runs before a request reaches RED.httpNode, for a WebSocket upgrade (which never passes
 * through express): httpNodeAuth (Basic with a bcrypt or legacy md5 password, as node-red/red.js checks
 * it, or the user's own middleware), then httpNodeMiddleware. A middleware gets a ServerResponse bound to
 * the upgrade's socket; if it answers, that answer goes out and the socket closes.
 */

type Next = (err?: unknown) => void;
export type GateMiddleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** The express app whose request/response prototypes middleware may expect (res.status, res.send). */
export interface ExpressLike {
  request?: object;
  response?: object;
}

/** What the gate decided: go on, or the socket has been answered and closed. */
export type GateResult = "pass" | "answered";

/** A middleware that has neither answered nor called next after this long: the socket is dropped. */
export const GATE_TIMEOUT_MS = 10_000;

interface Bcrypt {
  compare(password: string, hash: string): Promise<boolean>;
}

let bcryptModule: Bcrypt | null | undefined;

/** Node-RED's own bcrypt (@node-rs/bcrypt or bcryptjs), found from Node-RED's folder, then from ours. */
function loadBcrypt(): Bcrypt | null {
  if (bcryptModule !== undefined) return bcryptModule;
  const bases = [require.main?.filename, __filename].filter((f): f is string => typeof f === "string");
  for (const base of bases) {
    const req = createRequire(base);
    for (const name of ["@node-rs/bcrypt", "bcryptjs"]) {
      try {
        const m = req(name) as Partial<Bcrypt>;
        if (typeof m.compare === "function") return (bcryptModule = m as Bcrypt);
      } catch {
        // not there: try the next
      }
    }
  }
  return (bcryptModule = null);
}

/** `Authorization: Basic` user and password, or undefined. */
export function basicCredentials(req: IncomingMessage): { user: string; pass: string } | undefined {
  const auth = req.headers.authorization;
  const m = typeof auth === "string" ? /^Basic\s+([A-Za-z0-9+/=._~-]+)\s*$/i.exec(auth) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1], "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { user: text.slice(0, colon), pass: text.slice(colon + 1) };
}

function sameText(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * A checker for httpNodeAuth `{ user, pass }`: true when the request's Basic credentials match. A
 * password that passed once is remembered (by hash), as Node-RED does, so bcrypt runs once per password.
 */
export function basicAuthChecker(setting: {
  user?: unknown;
  pass?: unknown;
}): (req: IncomingMessage) => Promise<boolean> {
  const user = typeof setting.user === "string" ? setting.user : "";
  const hash = typeof setting.pass === "string" ? setting.pass : "";
  let accepted: Buffer | undefined;
  const digest = (p: string): Buffer => createHash("sha256").update(p).digest();
  return async (req) => {
    const given = basicCredentials(req);
    if (!given || user === "" || hash === "" || !sameText(given.user, user)) return false;
    const d = digest(given.pass);
    if (accepted && timingSafeEqual(d, accepted)) return true;
    let ok: boolean;
    if (hash.length === 32) ok = sameText(createHash("md5").update(given.pass, "utf8").digest("hex"), hash);
    else {
      const bcrypt = loadBcrypt();
      if (!bcrypt) throw new Error("no bcrypt module to check httpNodeAuth with");
      ok = await bcrypt.compare(given.pass, hash);
    }
    if (ok) accepted = d;
    return ok;
  };
}

/** Middleware functions from a setting (a function or a nested array of them). */
export function middlewareList(setting: unknown): GateMiddleware[] {
  if (typeof setting === "function") return [setting as GateMiddleware];
  if (Array.isArray(setting)) return setting.flatMap((s) => middlewareList(s));
  return [];
}

/** Writes a plain HTTP answer on an upgrade socket and closes it. */
export function refuseUpgrade(
  socket: Duplex,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed) return;
  const body = Buffer.from(text.endsWith("\n") ? text : `${text}\n`, "utf8");
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}`,
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${body.length}`,
    "Cache-Control: no-store",
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v.replace(/[\r\n]/g, " ")}`),
  ];
  socket.end(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1"), body]));
  setTimeout(() => socket.destroy(), 1000).unref();
}

export interface GateSettings {
  /** settings.httpNodeAuth: `{ user, pass }`, a middleware or a list of them, or absent. */
  httpNodeAuth?: unknown;
  /** settings.httpNodeMiddleware. */
  httpNodeMiddleware?: unknown;
  /** RED.httpNode, whose request/response prototypes express middleware may rely on. */
  app?: ExpressLike;
}

/**
 * The gate for one upgrade: resolves "pass" when httpNodeAuth and every httpNodeMiddleware let the
 * request through, "answered" when one of them answered (sent on the socket, which closes) or failed.
 */
export function makeGate(
  settings: GateSettings,
): (req: IncomingMessage, socket: Duplex) => Promise<GateResult> {
  const auth = settings.httpNodeAuth;
  const basic =
    typeof auth === "object" && auth !== null && !Array.isArray(auth)
      ? basicAuthChecker(auth as { user?: unknown; pass?: unknown })
      : undefined;
  const chain = [...middlewareList(auth), ...middlewareList(settings.httpNodeMiddleware)];
  return async (req, socket) => {
    if (basic) {
      let ok = false;
      try {
        ok = await basic(req);
      } catch (err) {
        refuseUpgrade(socket, 500, `httpNodeAuth could not be checked: ${(err as Error).message}`);
        return "answered";
      }
      if (!ok) {
        refuseUpgrade(socket, 401, "Unauthorized", {
          "WWW-Authenticate": 'Basic realm="Authorization Required"',
        });
        return "answered";
      }
    }
    if (chain.length === 0) return "pass";
    return runChain(chain, req, socket, settings.app);
  };
}

/** Runs the middleware with a response bound to the socket; "pass" once the last one calls next(). */
function runChain(
  chain: GateMiddleware[],
  req: IncomingMessage,
  socket: Duplex,
  app: ExpressLike | undefined,
): Promise<GateResult> {
  return new Promise((resolve) => {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    if (app?.request) Object.setPrototypeOf(req, app.request);
    if (app?.response) Object.setPrototypeOf(res, app.response);
    Object.assign(res, { req, locals: {} });
    Object.assign(req, { res });
    res.assignSocket(socket as unknown as import("net").Socket);
    let settled = false;
    const finish = (result: GateResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result === "pass") {
        res.detachSocket(socket as unknown as import("net").Socket);
        Object.assign(req, { res: undefined });
      } else if (res.writableFinished) socket.end();
      else if (res.writableEnded) res.once("finish", () => socket.end());
      else socket.destroy();
      if (result === "answered") setTimeout(() => socket.destroy(), 1000).unref();
      resolve(result);
    };
    const timer = setTimeout(() => finish("answered"), GATE_TIMEOUT_MS);
    timer.unref();
    res.on("finish", () => finish("answered"));
    socket.on("close", () => finish("answered"));
    let i = 0;
    const step: Next = (err) => {
      if (settled) return;
      if (err !== undefined && err !== null && err !== "route" && err !== "router") {
        if (!res.headersSent) {
          res.writeHead(500, { "Content-Type": "text/plain; charset=utf-8" });
          res.end(`${STATUS_CODES[500]}\n`);
        } else finish("answered");
        return;
      }
      const mw = chain[i++];
      if (!mw) return finish(res.headersSent ? "answered" : "pass");
      try {
        mw(req, res, step);
      } catch (e) {
        step(e ?? new Error("middleware threw"));
      }
    };
    step();
  });
}
