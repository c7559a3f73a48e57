import type { IncomingMessage, ServerResponse } from "http";
import { reply } from "./reply";

/** The endpoints below a stream's mount point, and how a request URL is read into one. */

export type RouteName =
  "mjpeg" | "snapshot" | "statusJson" | "statusPage" | "metrics" | "mp4" | "playlist" | "init" | "segment";

export interface Route {
  name: RouteName;
  /** The number in `seg-<n>.m4s` or `part-<n>.<part>.m4s`. */
  seq?: number;
  /** The part in `part-<n>.<part>.m4s` (a low-latency HLS part, served by the segment handler). */
  part?: number;
}

const EXACT: Record<string, RouteName> = {
  "/": "mjpeg",
  "/snapshot.jpg": "snapshot",
  "/status.json": "statusJson",
  "/status": "statusPage",
  "/metrics": "metrics",
  "/stream.mp4": "mp4",
  "/index.m3u8": "playlist",
  "/init.mp4": "init",
};

/** The request URL relative to the mount point; undefined when it cannot be read. */
export function parseRequestUrl(url: string): URL | undefined {
  try {
    // A path such as "//[" reads as a host to URL: answer it, never throw out of a request handler.
    return new URL(url.startsWith("/") ? `http://camrelay.invalid${url}` : url, "http://camrelay.invalid");
  } catch {
    return undefined;
  }
}

const PART = /^\/part-(\d+)\.(\d+)\.m4s$/;

/** The route of a path (one trailing slash ignored), or undefined for 404. */
export function matchRoute(pathname: string): Route | undefined {
  const path = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  if (Object.prototype.hasOwnProperty.call(EXACT, path)) return { name: EXACT[path] };
  const seg = /^\/seg-(\d+)\.m4s$/.exec(path);
  if (seg) return { name: "segment", seq: Number(seg[1]) };
  const part = PART.exec(path);
  return part ? { name: "segment", seq: Number(part[1]), part: Number(part[2]) } : undefined;
}

/** The part number when `url` names `part-<n>.<part>.m4s` (below any mount point), else undefined. */
export function partOfUrl(url: string | undefined): number | undefined {
  const pathname = parseRequestUrl(url ?? "/")?.pathname ?? "";
  const m = /\/part-\d+\.(\d+)\.m4s\/?$/.exec(pathname);
  return m ? Number(m[1]) : undefined;
}

/** WHEP below the mount point: "/whep" -> {} (POST an offer), "/whep/<id>" -> { id } (DELETE), else undefined. */
export function whepRoute(pathname: string): { id?: string } | undefined {
  const p = pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  if (p === "/whep") return {};
  const m = /^\/whep\/([A-Za-z0-9_-]{1,64})$/.exec(p);
  return m ? { id: m[1] } : undefined;
}

/**
 * Answers what is not GET or HEAD (a CORS preflight 204, else 405) and returns undefined; for GET and
 * HEAD returns whether it is HEAD.
 */
export function answerMethod(req: IncomingMessage, res: ServerResponse): boolean | undefined {
  const method = req.method ?? "GET";
  if (method === "GET" || method === "HEAD") return method === "HEAD";
  if (method === "OPTIONS") {
    reply(res, 204, undefined, "", false, {
      Allow: "GET, HEAD, OPTIONS",
      "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
      "Access-Control-Allow-Headers": "Authorization",
      "Access-Control-Max-Age": "600",
    });
  } else reply(res, 405, "text/plain", "Method Not Allowed\n", false, { Allow: "GET, HEAD, OPTIONS" });
  return undefined;
}
