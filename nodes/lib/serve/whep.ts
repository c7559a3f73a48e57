/**
 * WHEP (WebRTC-HTTP egress) under a stream path: POST `<path>/whep` with an SDP offer answers 201 with
 * the SDP answer (every ICE candidate gathered, no trickle) and `Location: <path>/whep/<id>`; DELETE
 * that resource ends the session; PATCH (trickle ICE) is not offered (405). werift does ICE, DTLS and
 * SRTP; it is loaded on the first POST, so a Node.js it does not run on still loads camrelay.
 */
import { randomBytes } from "crypto";
import type { IncomingMessage, ServerResponse } from "http";
import { clientAddress } from "./access";
import { reply } from "./reply";
import { whepRoute } from "./routes";
import { resolveFfmpegPath } from "../ffmpeg";
import { OpusFeed } from "./whep-audio";
import { chooseH264, h264ProfileOf, readOffer } from "./whep-sdp";
import {
  WhepSession,
  type LiveVideoEvent,
  type LiveViewerHandle,
  type Werift,
  type WhepConfig,
} from "./whep-session";

export type { WhepConfig } from "./whep-session";

/** What the endpoint needs of its stream server (the live contract's liveAccess/openLive, plus a peek). */
export interface WhepHost {
  /** The node token alone (DELETE/PATCH need it, not a free viewer slot). */
  authorized(req: IncomingMessage, token: string | null): boolean;
  liveAccess(
    req: IncomingMessage,
    token: string | null,
  ): { ok: true } | { ok: false; status: number; error: string };
  openLive(
    kind: "webrtc",
    address: string,
    sink: { video(ev: LiveVideoEvent): void; end(reason: string): void; buffered(): number },
  ): LiveViewerHandle | { error: string; status: number };
  /** The codec string of the path's current init ("avc1.64001f,mp4a.40.2"), or undefined before one. */
  videoCodec(): string | undefined;
  /** True once anything (JPEG or video) has arrived. */
  hasHadFrames(): boolean;
  /** Closed servers answer 503. */
  closed(): boolean;
}

export interface WhepEndpointOptions {
  config: WhepConfig;
  /** Loads werift (tests give another loader); default: `import("werift")` once. */
  loadWerift?: () => Promise<Werift>;
  gatherTimeoutMs?: number;
  connectTimeoutMs?: number;
  disconnectTimeoutMs?: number;
  /** A session ended, with why (for a log line). */
  onSessionEnd?: (id: string, reason: string) => void;
  /** Opus from the stream's AAC for viewers that take audio (default true); needs ffmpeg. */
  audio?: boolean;
  /** The ffmpeg that converts AAC to Opus (default: the one camrelay finds). */
  ffmpegPath?: () => string;
  /** Audio problems, in words (the sessions carry on with video only). */
  onProblem?: (message: string) => void;
}

/** Sessions per path at most, whatever maxClients says (each holds sockets and a DTLS state). */
export const MAX_WHEP_SESSIONS = 64;
/** An SDP offer larger than this is refused (413): Chromium's are about 5 KB. */
const MAX_OFFER_BYTES = 64 * 1024;

let weriftLoad: Promise<Werift> | undefined;
/** werift, required once on first use (engines say Node >= 22; it runs on 20). */
export function loadWerift(): Promise<Werift> {
  weriftLoad ??= import("werift");
  return weriftLoad;
}

const CORS_HEADERS = {
  "Access-Control-Allow-Methods": "POST, DELETE, PATCH, OPTIONS",
  "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
  "Access-Control-Expose-Headers": "Location, ETag",
  "Access-Control-Max-Age": "600",
};
const ALLOW_COLLECTION = "POST, OPTIONS";
const ALLOW_RESOURCE = "DELETE, PATCH, OPTIONS";

function text(
  res: ServerResponse,
  status: number,
  words: string,
  headers: Record<string, string> = {},
): void {
  reply(res, status, "text/plain; charset=utf-8", `${words}\n`, false, { ...CORS_HEADERS, ...headers });
}

/** The request body as text, at most `limit` bytes (undefined when it is larger). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  if (typeof parsed === "string") return Promise.resolve(parsed.length <= limit ? parsed : undefined);
  if (Buffer.isBuffer(parsed))
    return Promise.resolve(parsed.length <= limit ? parsed.toString("utf8") : undefined);
  // A middleware that read the body without keeping it: answer (400) rather than wait forever.
  if (req.readableEnded) return Promise.resolve("");
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on("end", () => resolve(size <= limit ? Buffer.concat(chunks).toString("utf8") : undefined));
    req.on("error", reject);
  });
}

export class WhepEndpoint {
  readonly sessions = new Map<string, WhepSession>();
  private readonly host: WhepHost;
  private readonly options: WhepEndpointOptions;
  private closed = false;
  /** Sessions being answered (not in `sessions` yet). */
  private pending = 0;
  /** The path's one AAC -> Opus converter, while a session takes audio. */
  private opus: OpusFeed | undefined;
  /** The live feed is handing a new viewer the current GOP (old audio: not converted). */
  private replaying = false;

  constructor(host: WhepHost, options: WhepEndpointOptions) {
    this.host = host;
    this.options = options;
  }

  /** Answers a request whose path (below the mount point) routes.ts whepRoute() matched. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const route = whepRoute(url.pathname);
    if (!route) return text(res, 404, "Not Found");
    const method = req.method ?? "GET";
    const allow = route.id === undefined ? ALLOW_COLLECTION : ALLOW_RESOURCE;
    if (method === "OPTIONS") {
      reply(res, 204, undefined, "", false, { ...CORS_HEADERS, Allow: allow });
      return;
    }
    const token = url.searchParams.get("token");
    if (route.id === undefined && method === "POST") {
      this.post(req, res, token).catch((err: Error) => {
        if (!res.headersSent) text(res, 500, `WebRTC session failed: ${err.message}`);
      });
      return;
    }
    if (route.id !== undefined && (method === "DELETE" || method === "PATCH")) {
      if (!this.host.authorized(req, token)) return this.unauthorized(res);
      const session = this.sessions.get(route.id);
      if (!session) return text(res, 404, "No such WebRTC session (it has ended)");
      if (method === "PATCH")
        return text(res, 405, "Trickle ICE is not supported: the answer carries every candidate", {
          Allow: "DELETE, OPTIONS",
        });
      session.end("the viewer left (DELETE)");
      return text(res, 200, "Session ended");
    }
    text(res, 405, `Method Not Allowed: ${method} here; allowed: ${allow}`, { Allow: allow });
  }

  private unauthorized(res: ServerResponse): void {
    text(res, 401, "Unauthorized: this stream needs its token (?token= or Authorization: Bearer)", {
      "WWW-Authenticate": 'Bearer realm="camrelay"',
    });
  }

  private async post(req: IncomingMessage, res: ServerResponse, token: string | null): Promise<void> {
    if (this.closed || this.host.closed()) return text(res, 503, "Stream closed", { "Retry-After": "2" });
    const access = this.host.liveAccess(req, token);
    if (!access.ok) {
      if (access.status === 401) return this.unauthorized(res);
      return text(res, access.status, access.error, access.status === 503 ? { "Retry-After": "10" } : {});
    }
    const codec = this.host.videoCodec();
    if (codec === undefined) {
      if (this.host.hasHadFrames())
        return text(
          res,
          415,
          "This path carries JPEG only: WebRTC needs H.264 video (use MJPEG or HLS here)",
        );
      return text(res, 503, "No video has arrived on this path yet", { "Retry-After": "2" });
    }
    const profile = h264ProfileOf(codec);
    if (!profile)
      return text(
        res,
        415,
        `This path carries ${codec.split(",")[0]}, not H.264: WebRTC plays H.264 only here`,
      );
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/sdp")
      return text(
        res,
        415,
        `The offer must be sent as Content-Type: application/sdp (got "${type || "none"}")`,
      );
    if (this.sessions.size + this.pending >= MAX_WHEP_SESSIONS)
      return text(res, 503, `Too many WebRTC sessions on this path (${MAX_WHEP_SESSIONS})`, {
        "Retry-After": "10",
      });
    const offer = await readBody(req, MAX_OFFER_BYTES);
    if (offer === undefined) return text(res, 413, `The SDP offer is larger than ${MAX_OFFER_BYTES} bytes`);
    if (!/^v=0/m.test(offer) || !/^m=/m.test(offer)) return text(res, 400, "The body is not an SDP offer");
    const summary = readOffer(offer);
    if (!summary.video) return text(res, 400, "The offer has no video m-line to receive the camera on");
    const h264 = chooseH264(summary.h264, profile);
    if (!h264)
      return text(res, 415, "The offer has no H.264 with packetization-mode=1, which this stream is sent as");
    let werift: Werift;
    try {
      werift = await (this.options.loadWerift ?? loadWerift)();
    } catch (err) {
      return text(
        res,
        501,
        `WebRTC is not available on this Node-RED: werift could not be loaded (${(err as Error).message})`,
      );
    }
    const id = randomBytes(16).toString("hex");
    const audio = this.options.audio !== false && summary.opus && /(^|,)\s*mp4a\./.test(codec);
    let created: { session: WhepSession; answer: string };
    this.pending++;
    try {
      created = await WhepSession.create(id, {
        werift,
        config: this.options.config,
        offer,
        h264,
        audio,
        gatherTimeoutMs: this.options.gatherTimeoutMs,
        connectTimeoutMs: this.options.connectTimeoutMs,
        disconnectTimeoutMs: this.options.disconnectTimeoutMs,
        onEnd: (reason) => {
          this.sessions.delete(id);
          this.updateAudio();
          this.options.onSessionEnd?.(id, reason);
        },
      });
    } catch (err) {
      return text(res, 400, `The offer could not be answered: ${(err as Error).message}`);
    } finally {
      this.pending--;
    }
    const { session, answer } = created;
    if (this.closed || res.destroyed) {
      session.end(this.closed ? "the stream closed" : "the viewer went away before the answer");
      return;
    }
    this.sessions.set(id, session);
    this.updateAudio();
    this.replaying = true;
    const viewer = this.host.openLive("webrtc", clientAddress(req), {
      video: (ev) => {
        session.feed(ev);
        if (session.hasAudio) this.opus?.feed(ev, this.replaying);
      },
      end: (reason) => session.end(reason),
      buffered: () => session.queuedBytes,
    });
    this.replaying = false;
    if ("error" in viewer) {
      session.end(viewer.error);
      return text(res, viewer.status, viewer.error, viewer.status === 503 ? { "Retry-After": "10" } : {});
    }
    session.viewer = viewer;
    const base = ((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? "").split(
      "?",
    )[0];
    const location = `${base.replace(/\/+$/, "")}/${id}`;
    reply(res, 201, "application/sdp", answer, false, {
      ...CORS_HEADERS,
      Location: location,
      ETag: `"${id}"`,
    });
  }

  /** The Opus converter runs while a session takes audio, and never otherwise. */
  private updateAudio(): void {
    const wanted = !this.closed && [...this.sessions.values()].some((s) => s.hasAudio && !s.isEnded);
    if (wanted && !this.opus) {
      let ffmpegPath: string;
      try {
        ffmpegPath = (this.options.ffmpegPath ?? resolveFfmpegPath)();
      } catch (err) {
        this.options.onProblem?.(`WebRTC audio needs ffmpeg: ${(err as Error).message}`);
        return;
      }
      this.opus = new OpusFeed({
        ffmpegPath,
        onRtp: (packet) => {
          for (const s of this.sessions.values()) s.sendAudio(packet);
        },
        onProblem: (message) => this.options.onProblem?.(message),
      });
    } else if (!wanted && this.opus) {
      void this.opus.stop();
      this.opus = undefined;
    }
  }

  /** The audio converter, while it runs (for tests and status). */
  get audioFeed(): OpusFeed | undefined {
    return this.opus;
  }

  /** WebRTC viewers now (connected or connecting). */
  get size(): number {
    return this.sessions.size;
  }

  /** Ends every session (node close / redeploy); later POSTs get 503. */
  close(): void {
    this.closed = true;
    for (const session of [...this.sessions.values()]) session.end("the stream closed");
    this.sessions.clear();
    this.updateAudio();
  }
}
