import { createHash, randomBytes } from "crypto";
import http, { IncomingMessage } from "http";
import https from "https";
import { SourceError } from "./source";
import { cameraAgent } from "./tls";

/** Answers the camera's 401 challenges: Basic, or Digest (MD5, MD5-sess, SHA-256; qop auth) with nonce reuse. */
export class HttpAuth {
  private scheme: "none" | "basic" | "digest" = "none";
  private digest: Record<string, string> = {};
  private nc = 0;

  constructor(
    private readonly user?: string,
    private readonly password?: string,
  ) {}

  get hasCredentials(): boolean {
    return !!this.user;
  }

  /** The Authorization header for a request, once a challenge said which scheme. */
  header(method: string, uri: string): string | undefined {
    if (!this.user || this.scheme === "none") return undefined;
    if (this.scheme === "basic") {
      return "Basic " + Buffer.from(`${this.user}:${this.password ?? ""}`).toString("base64");
    }
    const d = this.digest;
    const algorithm = (d.algorithm ?? "MD5").toUpperCase();
    const hash = (s: string) =>
      createHash(algorithm.startsWith("SHA-256") ? "sha256" : "md5")
        .update(s)
        .digest("hex");
    const cnonce = randomBytes(8).toString("hex");
    const nc = (++this.nc).toString(16).padStart(8, "0");
    let ha1 = hash(`${this.user}:${d.realm ?? ""}:${this.password ?? ""}`);
    if (algorithm.endsWith("-SESS")) ha1 = hash(`${ha1}:${d.nonce}:${cnonce}`);
    const ha2 = hash(`${method}:${uri}`);
    const qop = d.qop
      ?.split(",")
      .map((q) => q.trim())
      .find((q) => q === "auth");
    const response = qop
      ? hash(`${ha1}:${d.nonce}:${nc}:${cnonce}:${qop}:${ha2}`)
      : hash(`${ha1}:${d.nonce}:${ha2}`);
    const parts = [
      `username="${this.user}"`,
      `realm="${d.realm ?? ""}"`,
      `nonce="${d.nonce ?? ""}"`,
      `uri="${uri}"`,
      `response="${response}"`,
    ];
    if (d.algorithm) parts.push(`algorithm=${d.algorithm}`);
    if (d.opaque !== undefined) parts.push(`opaque="${d.opaque}"`);
    if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce="${cnonce}"`);
    return "Digest " + parts.join(", ");
  }

  /**
   * Takes a 401's WWW-Authenticate header. True when a retry with credentials may succeed:
   * the first challenge, or a Digest nonce that went stale. False when the credentials were refused.
   */
  challenge(header: string | string[] | undefined): boolean {
    if (!this.user) return false;
    const values = Array.isArray(header) ? header : header ? [header] : [];
    const digest = values.find((v) => /^\s*digest\b/i.test(v));
    const basic = values.find((v) => /^\s*basic\b/i.test(v));
    if (digest) {
      const params = parseAuthParams(digest.replace(/^\s*digest\s*/i, ""));
      const stale = /^true$/i.test(params.stale ?? "");
      const wasDigest = this.scheme === "digest";
      this.scheme = "digest";
      this.digest = params;
      this.nc = 0;
      return !wasDigest || stale;
    }
    if (basic || values.length === 0) {
      // A Basic challenge after a Digest one is a downgrade (a man in the middle asking for the password in
      // clear): never answer it.
      if (this.scheme === "digest") {
        throw new SourceError(
          "auth",
          "camera asked for Basic authentication after Digest: refused to send the password in clear (a downgrade)",
        );
      }
      const first = this.scheme !== "basic";
      this.scheme = "basic";
      return first;
    }
    return false;
  }
}

export function parseAuthParams(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([a-zA-Z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : m[3];
  }
  return out;
}

export interface CameraRequest {
  url: URL;
  auth: HttpAuth;
  /** Time allowed for the connection and the response headers. */
  timeoutMs: number;
  agent?: http.Agent;
  headers?: Record<string, string>;
}

/** Where a URL points, for messages: never its credentials. */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/**
 * GET with the camera's auth: answers one challenge (or a stale Digest nonce) and resolves with a
 * 2xx response. Everything else rejects with a SourceError in words, without credentials.
 */
export async function cameraGet(req: CameraRequest): Promise<IncomingMessage> {
  for (let attempt = 0; ; attempt++) {
    const res = await getOnce(req);
    if (res.statusCode === 401) {
      res.resume();
      if (attempt < 2 && req.auth.challenge(res.headers["www-authenticate"])) continue;
      throw new SourceError(
        "auth",
        req.auth.hasCredentials
          ? `camera refused the user name or password (HTTP 401) at ${describeUrl(req.url)}`
          : `camera needs a user name and password (HTTP 401) at ${describeUrl(req.url)}`,
      );
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    res.resume();
    if (status === 403)
      throw new SourceError("auth", `camera forbids access (HTTP 403) at ${describeUrl(req.url)}`);
    if (status === 404)
      throw new SourceError("config", `no such page on the camera (HTTP 404): ${describeUrl(req.url)}`);
    throw new SourceError("protocol", `camera answered HTTP ${status} ${res.statusMessage ?? ""}`.trim());
  }
}

function getOnce(req: CameraRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const url = req.url;
    const mod = url.protocol === "https:" ? https : http;
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      reject(new SourceError("config", `not an http(s) URL: ${url.protocol}`));
      return;
    }
    const path = url.pathname + url.search;
    const headers: Record<string, string> = { "User-Agent": "camrelay", ...req.headers };
    const authorization = req.auth.header("GET", path);
    if (authorization) headers.Authorization = authorization;
    // https: certificates are checked by the agent (cameraAgent) before a request byte is sent.
    const agent = req.agent ?? (url.protocol === "https:" ? cameraAgent(url, undefined, {}) : undefined);
    const r = mod.get(url, { headers, agent }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => {
      r.destroy(
        new SourceError("network", `no answer from ${url.host} within ${Math.round(req.timeoutMs / 1000)} s`),
      );
    }, req.timeoutMs);
    r.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(networkError(err, url.host));
    });
  });
}

/** Node's socket errors in words a user can act on. */
export function networkError(err: NodeJS.ErrnoException, host: string): SourceError {
  if (err instanceof SourceError) return err;
  switch (err.code) {
    case "ECONNREFUSED":
      return new SourceError(
        "network",
        `connection refused by ${host} (is the camera on and the port right?)`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new SourceError("network", `camera host not found: ${host.replace(/:\d+$/, "")} (DNS)`);
    case "ETIMEDOUT":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new SourceError("network", `camera unreachable: ${host}`);
    case "EPROTO":
    case "ERR_SSL_WRONG_VERSION_NUMBER":
      return new SourceError("config", `${host} does not speak TLS on this port (is it an http:// camera?)`);
    case "ECONNRESET":
    case "EPIPE":
      return new SourceError("network", `camera closed the connection (${host})`);
    default:
      return new SourceError("network", `${host}: ${err.message}`);
  }
}

/** A 200 that is an HTML or text page (a login or error page) instead of images: the page's title, in words. */
export async function describeTextBody(res: IncomingMessage, limit = 4096): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  res.destroy();
  const text = Buffer.concat(chunks).toString("utf8", 0, limit);
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1] ?? text.replace(/<[^>]*>/g, " ");
  return title.replace(/\s+/g, " ").trim().slice(0, 80);
}
