/**
 * `<path>/recordings` (JSON, paged), `<path>/recordings/<name>.mp4` (Range requests), `<path>/recordings/
 * <name>.jpg` (a thumbnail), `<path>/recordings.html` (a day's clips) and DELETE `<path>/recordings/
 * <name>.mp4`: the recordings of every `ffmpeg transcode` mp4 node wired into one `http stream out` node.
 *
 * Reading needs what the live stream needs (httpNodeAuth and httpNodeMiddleware run before this, in the
 * node's layer; the node's token is checked here). Deleting needs the node's token when it has one, or
 * Node-RED's own `flows.write` permission (RED.auth.needsPermission: with adminAuth an admin bearer token,
 * `Authorization: Bearer` or `?access_token=`; without adminAuth Node-RED lets anyone change the flows,
 * so it lets anyone who may read delete). Only regular files whose names camrelay makes, with a sidecar
 * camrelay wrote, directly in a recording directory, are ever served or deleted; anything else is a 404.
 */
import fs from "fs";
import type { IncomingMessage, ServerResponse } from "http";
import path from "path";
import type { NodeAPI } from "node-red";
import { recordingFromMessage } from "../messages/recording";
import { resolveFfmpegPath } from "../ffmpeg";
import { Access } from "./access";
import { NO_STORE, reply } from "./reply";
import { parseRequestUrl } from "./routes";
import {
  RecordingIndex,
  isRecordingName,
  thumbnailFile,
  type ListQuery,
  type Recording,
} from "./recordings-index";
import { recordingsPage } from "./recordings-page";
import { Thumbnailer } from "./recordings-thumbs";

export interface RecordingSource {
  dir: string;
  ffmpegPath: string;
}

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** The mp4 `ffmpeg transcode` nodes whose output is wired into node `id`, and their directories. */
export function wiredRecordingSources(RED: NodeAPI, id: string): RecordingSource[] {
  const out: RecordingSource[] = [];
  RED.nodes.eachNode((def) => {
    const d = def as unknown as Record<string, unknown>;
    if (d.type !== "ffmpeg-transcode" || d.d === true) return;
    const preset = typeof d.preset === "string" && d.preset ? d.preset : "mp4";
    const dir = typeof d.directory === "string" ? d.directory.trim() : "";
    if (preset !== "mp4" || !dir) return;
    const wires = Array.isArray(d.wires) ? (d.wires as unknown[]).flat() : [];
    if (!wires.includes(id)) return;
    const abs = path.resolve(dir);
    if (out.some((s) => s.dir === abs)) return;
    out.push({ dir: abs, ffmpegPath: typeof d.ffmpegPath === "string" ? d.ffmpegPath.trim() : "" });
  });
  return out;
}

export interface RecordingsOptions {
  /** The directories to serve, asked at each request (the flow may change without this node). */
  sources: () => RecordingSource[];
  token?: string;
  cors?: string | string[];
  /** Node-RED's `flows.write` check (RED.auth.needsPermission); calls next when allowed, else answers. */
  needsPermission?: Middleware;
  /** True when Node-RED has adminAuth set. */
  adminAuth: boolean;
  warn?: (message: string) => void;
}

const ROUTE = /^\/recordings(?:\.html|\/.*)?$/;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function numberParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : NaN;
}

/** The single byte range asked for: [start, end] inclusive, "none" (serve all) or "bad" (416). */
export function parseRange(header: string | undefined, size: number): [number, number] | "none" | "bad" {
  if (!header) return "none";
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return "none"; // another unit: ignored, as RFC 9110 says
  const specs = m[1].split(",").map((s) => s.trim());
  if (specs.length !== 1) return "none"; // several ranges: the whole file instead
  const r = /^(\d*)-(\d*)$/.exec(specs[0]);
  if (!r || (r[1] === "" && r[2] === "")) return "bad";
  if (r[1] === "") {
    const n = Number(r[2]);
    if (n === 0 || size === 0) return "bad";
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(r[1]);
  const end = r[2] === "" ? size - 1 : Math.min(Number(r[2]), size - 1);
  if (start >= size || end < start) return "bad";
  return [start, end];
}

export class Recordings {
  private readonly index = new RecordingIndex();
  private readonly access: Access;
  private readonly thumbs: Thumbnailer;
  private readonly open = new Set<fs.ReadStream>();
  private closed = false;
  private ffmpegPath = "";

  constructor(private readonly opts: RecordingsOptions) {
    this.access = new Access(opts.token, opts.cors ?? "");
    this.thumbs = new Thumbnailer(() => resolveFfmpegPath(this.ffmpegPath || undefined));
  }

  /** Answers the request when it is one of the recordings routes; false for every other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const parsed = parseRequestUrl(req.url ?? "/");
    if (!parsed || !ROUTE.test(parsed.pathname)) return false;
    this.access.setCors(req, res);
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      reply(res, 204, undefined, "", false, {
        Allow: "GET, HEAD, DELETE, OPTIONS",
        "Access-Control-Allow-Methods": "GET, HEAD, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Range",
        "Access-Control-Max-Age": "600",
      });
      return true;
    }
    const head = method === "HEAD";
    if (method !== "GET" && !head && method !== "DELETE") {
      reply(res, 405, "text/plain", "Method Not Allowed\n", false, { Allow: "GET, HEAD, DELETE, OPTIONS" });
      return true;
    }
    const query = parsed.searchParams;
    const run = (p: Promise<void>) =>
      p.catch((err: Error) => {
        if (!res.headersSent) reply(res, 500, "text/plain", "Internal Server Error\n", head);
        else res.destroy();
        this.opts.warn?.(`recordings: ${err.message}`);
      });
    if (method === "DELETE") {
      this.authorizeDelete(req, res, query, () => run(this.remove(req, res, parsed.pathname)));
      return true;
    }
    if (!this.access.authorized(req, query.get("token"))) {
      reply(res, 401, "text/plain", "Unauthorized\n", head, {
        "WWW-Authenticate": 'Bearer realm="camrelay"',
      });
      return true;
    }
    const p = parsed.pathname;
    if (p === "/recordings.html") {
      reply(res, 200, "text/html; charset=utf-8", recordingsPage(), head, {
        "Content-Security-Policy":
          "default-src 'none'; img-src 'self' blob:; media-src 'self' blob:; connect-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
      });
    } else if (p === "/recordings" || p === "/recordings/") run(this.list(req, res, query, head));
    else run(this.file(req, res, p, query, head));
    return true;
  }

  /** A recording message from a wired `ffmpeg transcode`: its file is closed; true when msg was one. */
  take(msg: object): boolean {
    const info = recordingFromMessage(msg as { recording?: unknown });
    if (!info) return false;
    const dir = path.dirname(path.resolve(info.file));
    const source = this.opts.sources().find((s) => s.dir === dir);
    const base = path.basename(info.file).replace(/\.mp4$/i, "");
    if (source && isRecordingName(base) && !this.closed) {
      this.index.invalidate(dir, base);
      this.ffmpegPath = source.ffmpegPath;
      this.thumbs
        .get(dir, base)
        .catch((err: Error) => this.opts.warn?.(`recordings: ${base}: ${err.message}`));
    }
    return true;
  }

  close(): void {
    this.closed = true;
    this.thumbs.close();
    for (const s of this.open) s.destroy();
    this.open.clear();
  }

  private dirs(): string[] {
    const sources = this.opts.sources();
    if (sources[0]) this.ffmpegPath = sources[0].ffmpegPath;
    return sources.map((s) => s.dir);
  }

  /** Where the recordings are mounted, as the client asked (httpNodeRoot and the node's path). */
  private base(req: IncomingMessage): string {
    const b = (req as IncomingMessage & { baseUrl?: unknown }).baseUrl;
    return typeof b === "string" ? b : "";
  }

  private async list(req: IncomingMessage, res: ServerResponse, q: URLSearchParams, head: boolean) {
    const limit = numberParam(q, "limit") ?? DEFAULT_LIMIT;
    const offset = numberParam(q, "offset") ?? 0;
    const query: ListQuery = {
      limit: Math.floor(limit),
      offset: Math.floor(offset),
      before: numberParam(q, "before"),
      from: numberParam(q, "from"),
      to: numberParam(q, "to"),
    };
    const bad = Object.entries(query).find(([, v]) => v !== undefined && Number.isNaN(v));
    if (bad || query.limit < 1 || query.offset < 0) {
      const why = bad ? `${bad[0]} must be a number` : "limit must be 1 or more and offset 0 or more";
      reply(res, 400, "application/json", JSON.stringify({ error: why }) + "\n", head);
      return;
    }
    query.limit = Math.min(MAX_LIMIT, query.limit);
    const page = await this.index.page(this.dirs(), query);
    const token = q.get("token");
    const suffix = token !== null ? `?token=${encodeURIComponent(token)}` : "";
    const root = `${this.base(req)}/recordings`;
    const recordings = await Promise.all(page.recordings.map(async (r) => this.entry(r, root, suffix)));
    const next = (k: string, v: number) => {
      const p = new URLSearchParams(q);
      p.delete("offset");
      p.delete("before");
      p.set(k, String(v));
      return `${root}?${p.toString()}`;
    };
    const body = {
      recordings,
      total: page.total,
      next:
        page.nextBefore !== undefined
          ? next("before", page.nextBefore)
          : page.nextOffset !== undefined
            ? next("offset", page.nextOffset)
            : null,
    };
    reply(res, 200, "application/json; charset=utf-8", JSON.stringify(body), head);
  }

  private async entry(r: Recording, root: string, suffix: string) {
    let bytes = r.bytes;
    try {
      bytes = (await fs.promises.lstat(path.join(r.dir, `${r.name}.mp4`))).size;
    } catch {
      // gone meanwhile: the sidecar's number
    }
    const enc = encodeURIComponent(r.name);
    return {
      name: r.name,
      file: `${r.name}.mp4`,
      url: `${root}/${enc}.mp4${suffix}`,
      thumbnail: `${root}/${enc}.jpg${suffix}`,
      camera: r.camera,
      start: r.start,
      end: r.end,
      duration: r.duration,
      trigger: r.trigger,
      reason: r.reason,
      inProgress: r.reason === "recording",
      bytes,
    };
  }

  /** The recording a `/recordings/<name>.<ext>` path names, or undefined (a 404). */
  private async target(p: string, ext: "mp4" | "jpg"): Promise<Recording | undefined> {
    const m = /^\/recordings\/([^/]+)$/.exec(p);
    if (!m) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(m[1]);
    } catch {
      return undefined;
    }
    if (!name.endsWith(`.${ext}`)) return undefined;
    const base = name.slice(0, -(ext.length + 1));
    if (!isRecordingName(base)) return undefined;
    return this.index.find(this.dirs(), base);
  }

  private async file(
    req: IncomingMessage,
    res: ServerResponse,
    p: string,
    q: URLSearchParams,
    head: boolean,
  ) {
    const notFound = () => reply(res, 404, "text/plain", "Not Found\n", head);
    const ext = p.endsWith(".jpg") ? "jpg" : "mp4";
    const rec = await this.target(p, ext);
    if (!rec) return notFound();
    if (ext === "jpg") {
      let file: string;
      try {
        file = await this.thumbs.get(rec.dir, rec.name);
      } catch (err) {
        reply(res, 404, "text/plain", `No thumbnail: ${(err as Error).message}\n`, head);
        return;
      }
      if (file !== thumbnailFile(rec.dir, rec.name)) return notFound();
      return this.send(req, res, file, "image/jpeg", head, false, "private, max-age=300");
    }
    const download = q.get("download") !== null && q.get("download") !== "0";
    return this.send(req, res, path.join(rec.dir, `${rec.name}.mp4`), "video/mp4", head, download, NO_STORE);
  }

  /** Streams a regular file (never through a symlink), honouring one byte range. */
  private async send(
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    type: string,
    head: boolean,
    download: boolean,
    cache: string,
  ): Promise<void> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch {
      reply(res, 404, "text/plain", "Not Found\n", head);
      return;
    }
    let st: fs.Stats;
    try {
      st = await handle.stat();
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (!st.isFile() || this.closed) {
      await handle.close();
      reply(res, 404, "text/plain", "Not Found\n", head);
      return;
    }
    const size = st.size;
    const headers: Record<string, string | number> = {
      "Content-Type": type,
      "Accept-Ranges": "bytes",
      "Cache-Control": cache,
      "Last-Modified": st.mtime.toUTCString(),
      "X-Content-Type-Options": "nosniff",
    };
    if (download) headers["Content-Disposition"] = `attachment; filename="${path.basename(file)}"`;
    const rangeHeader = req.headers.range;
    const range = parseRange(typeof rangeHeader === "string" ? rangeHeader : undefined, size);
    if (range === "bad") {
      await handle.close();
      reply(res, 416, "text/plain", "Range Not Satisfiable\n", head, {
        "Content-Range": `bytes */${size}`,
        "Accept-Ranges": "bytes",
      });
      return;
    }
    const [start, end] = range === "none" ? [0, size - 1] : range;
    const length = size === 0 ? 0 : end - start + 1;
    headers["Content-Length"] = length;
    if (range !== "none") headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    res.writeHead(range === "none" ? 200 : 206, headers);
    if (head || length === 0) {
      await handle.close();
      res.end();
      return;
    }
    const stream = handle.createReadStream({ start, end, autoClose: true });
    this.open.add(stream);
    const done = () => this.open.delete(stream);
    stream.on("close", done);
    stream.on("error", () => res.destroy());
    res.on("close", () => stream.destroy());
    stream.pipe(res);
  }

  /** DELETE: the node's token, else Node-RED's flows.write permission (see the top of this file). */
  private authorizeDelete(
    req: IncomingMessage,
    res: ServerResponse,
    q: URLSearchParams,
    go: () => void,
  ): void {
    const hasToken = Boolean(this.opts.token);
    if (hasToken && this.access.authorized(req, q.get("token"))) return go();
    if (hasToken && !this.opts.adminAuth) {
      reply(res, 401, "text/plain", "Unauthorized\n", false, {
        "WWW-Authenticate": 'Bearer realm="camrelay"',
      });
      return;
    }
    const check = this.opts.needsPermission;
    if (!check) {
      reply(res, 403, "text/plain", "Forbidden: deleting needs the Node-RED admin permission\n", false);
      return;
    }
    let called = false;
    try {
      check(req, res, (err?: unknown) => {
        if (called) return;
        called = true;
        if (err !== undefined || res.headersSent) {
          if (!res.headersSent) reply(res, 401, "text/plain", "Unauthorized\n", false);
          return;
        }
        go();
      });
    } catch {
      if (!res.headersSent) reply(res, 401, "text/plain", "Unauthorized\n", false);
    }
  }

  private async remove(_req: IncomingMessage, res: ServerResponse, p: string): Promise<void> {
    const rec = await this.target(p, "mp4");
    if (!rec) {
      reply(res, 404, "text/plain", "Not Found\n", false);
      return;
    }
    if (rec.reason === "recording") {
      // Still being written (or left by a crash): the sidecar decides; a live one is not deleted under ffmpeg.
      const st = await fs.promises.lstat(path.join(rec.dir, `${rec.name}.mp4`)).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs < 60_000) {
        reply(res, 409, "text/plain", "Conflict: the recording is still being written\n", false);
        return;
      }
    }
    const video = path.join(rec.dir, `${rec.name}.mp4`);
    const st = await fs.promises.lstat(video).catch(() => undefined);
    if (!st || !st.isFile()) {
      reply(res, 404, "text/plain", "Not Found\n", false);
      return;
    }
    await fs.promises.rm(video, { force: true });
    await fs.promises.rm(path.join(rec.dir, `${rec.name}.json`), { force: true });
    await fs.promises.rm(thumbnailFile(rec.dir, rec.name), { force: true });
    this.index.invalidate(rec.dir, rec.name);
    reply(res, 204, undefined, "", false);
  }
}
