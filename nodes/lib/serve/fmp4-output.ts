import type { IncomingMessage, ServerResponse } from "http";
import type { Mp4Info } from "../messages/mp4";
import { clientAddress } from "./access";
import { Fmp4Store } from "./fmp4-store";
import { HLS_HELD_PER_SESSION, HlsSessions, type HlsSession } from "./hls-sessions";
import { writeMp4Head } from "./mjpeg-fanout";
import { reply } from "./reply";
import { parseRequestUrl, partOfUrl } from "./routes";
import { ViewerGroup } from "./viewer-group";
import type { StreamViewer } from "./viewer";

/** One input: `keyframe` as StoreFragment reads it, `initId` as the sender numbered the init. */
export type Fmp4Input = Mp4Info & { keyframe?: boolean; initId?: number };

/** What became of one input: a new init, the same init again, a fragment (starting a GOP or not), or dropped. */
export type PushResult = "init" | "same init" | "keyframe" | "fragment" | "no init";

/** What the fMP4 endpoints need from the server: admission, new viewers and the shared totals. */
export interface Fmp4Host {
  /** Answers 503 and returns true when a new connection from `group` would pass a limit. */
  busy(res: ServerResponse, head: boolean, group: string): boolean;
  /** A new streaming viewer of `stream.mp4`, added to `group`. */
  addViewer(req: IncomingMessage, res: ServerResponse, group: ViewerGroup): StreamViewer;
  /** An HLS client arrived (it is in the sessions already). */
  hlsJoined(session: HlsSession): void;
  /** One segment went out to an HLS client. */
  countSent(bytes: number): void;
}

/** A request held open until what it asks for exists (blocking playlist reload, hinted part). */
interface HeldRequest {
  res: ServerResponse;
  session: HlsSession;
  /** Whether it can be answered now (with what it asked for, or a refusal). */
  ready(): boolean;
  answer(): void;
  /** Answers it when the wait is over. */
  timeout(): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Segments past the newest one a blocking reload may wait for (RFC 8216bis 6.2.5.2). */
const MSN_ADVANCE_LIMIT = 2;

/**
 * The fMP4 side of a stream: what `ffmpeg transcode` sends in (init segments and fragments, kept in the
 * store) and the endpoints that serve it: `stream.mp4` (progressive), `index.m3u8`, `init.mp4` and
 * `seg-<n>.m4s` (HLS, whose clients are sessions), with low-latency HLS: `part-<n>.<part>.m4s` and
 * blocking playlist reloads (`_HLS_msn`, `_HLS_part`) held until that part exists.
 */
export class Fmp4Output {
  readonly store: Fmp4Store;
  readonly viewers = new ViewerGroup();
  readonly hls: HlsSessions;
  /** Inits that replaced an earlier one: the encoder feeding this stream restarted. */
  restarts = 0;
  /** Fragments and keyframe fragments taken in (status.json). */
  fragmentsIn = 0;
  keyframesIn = 0;
  /** Codec and size of the video, from the latest init (and fragments, which may say more). */
  video: { codec: string; width: number; height: number } = { codec: "", width: 0, height: 0 };
  private lastFragmentTime: number | undefined;
  /** The `initId` the current init came with (undefined: the sender numbers none). */
  private inputInitId: number | undefined;
  /** Blocking reloads and hinted parts waiting for a fragment. */
  private readonly held = new Set<HeldRequest>();
  private readonly holdMs: number | undefined;

  constructor(
    private readonly host: Fmp4Host,
    hls: HlsSessions,
    options: { maxSegments?: number; maxSegmentBytes?: number; holdMs?: number },
  ) {
    this.hls = hls;
    this.store = new Fmp4Store({ maxSegments: options.maxSegments, maxBytes: options.maxSegmentBytes });
    this.holdMs = options.holdMs;
  }

  /** Requests held open now (blocking reloads and hinted parts). */
  get heldRequests(): number {
    return this.held.size;
  }

  /**
   * An init segment or a fragment. An init that carries the same `initId` as the current one is the
   * same stream announced again (a second `camera connect` starting): kept, nothing restarts.
   */
  push(data: Buffer, info: Fmp4Input): PushResult {
    if (info.type === "init") {
      if (this.store.init !== undefined && info.initId !== undefined && info.initId === this.inputInitId)
        return "same init";
      this.inputInitId = info.initId;
      const replaced = this.store.init !== undefined;
      if (replaced) this.restarts++;
      this.store.pushInit(data, info);
      this.lastFragmentTime = undefined;
      this.video = { codec: info.codec, width: info.width, height: info.height };
      // A progressive MP4 cannot switch init mid-stream: end it, the player reconnects to the new one.
      if (replaced) this.viewers.endAll();
      this.wake();
      return "init";
    }
    const stored = this.store.pushFragment(data, info, this.lastFragmentTime);
    if (!stored) return "no init";
    this.fragmentsIn++;
    if (stored.key) this.keyframesIn++;
    this.lastFragmentTime = info.time;
    if (info.codec) this.video.codec = info.codec;
    this.viewers.offer(data, stored.key);
    this.wake();
    return stored.key ? "keyframe" : "fragment";
  }

  serveMp4(req: IncomingMessage, res: ServerResponse, head: boolean, group: string): void {
    const init = this.store.init;
    if (!init) {
      reply(res, 503, "text/plain", "No fMP4 input yet\n", head, { "Retry-After": "2" });
      return;
    }
    if (!head && this.host.busy(res, head, group)) return;
    writeMp4Head(res);
    if (head) {
      res.end();
      return;
    }
    const viewer = this.host.addViewer(req, res, this.viewers);
    viewer.force(init.data);
    // The current GOP at once, so the player starts now and on a keyframe; none yet: the next keyframe.
    const gop = this.store.gop;
    for (const part of gop) viewer.force(part);
    if (gop.length === 0) viewer.waitForKey();
  }

  servePlaylist(req: IncomingMessage, res: ServerResponse, head: boolean, queryToken: string | null): void {
    if (!this.store.init || this.store.segments.length === 0) {
      reply(res, 503, "text/plain", "No fMP4 input yet\n", head, { "Retry-After": "2" });
      return;
    }
    const query = queryToken === null ? "" : `token=${encodeURIComponent(queryToken)}`;
    const send = (): void =>
      reply(res, 200, "application/vnd.apple.mpegurl", this.store.playlist(query), head);
    const params = parseRequestUrl(req.url ?? "/")?.searchParams;
    const directive = readDirectives(params?.get("_HLS_msn") ?? null, params?.get("_HLS_part") ?? null);
    if (typeof directive === "string") {
      reply(res, 400, "text/plain", `Bad Request: ${directive}\n`, head);
      return;
    }
    if (head) {
      send();
      return;
    }
    const session = this.touch(req, res);
    if (!session) return;
    // Too far ahead is answered at once (RFC 8216bis says 400): after a redeploy the numbers start again at
    // 0, and hls.js gives up on a 400 but takes the new playlist and asks for its next part.
    const tooFar = directive !== undefined && directive.msn > this.store.openSeq + MSN_ADVANCE_LIMIT;
    if (!directive || tooFar || this.store.reached(directive.msn, directive.part)) {
      send();
      return;
    }
    // Blocking reload: answered when the segment or part exists, with the playlist as it is on timeout.
    this.hold(res, session, () => this.store.reached(directive.msn, directive.part), send, send);
  }

  serveInit(req: IncomingMessage, res: ServerResponse, head: boolean, version: string | null): void {
    const init = this.store.initById(version === null ? undefined : Number(version));
    if (!init) {
      reply(res, 404, "text/plain", "Not Found\n", head);
      return;
    }
    if (!head && !this.touch(req, res)) return;
    reply(res, 200, "video/mp4", init.data, head, { "Cache-Control": "no-cache" });
  }

  /** `seg-<seq>.m4s`, or with `part` (read from the URL when not given) `part-<seq>.<part>.m4s`. */
  serveSegment(
    req: IncomingMessage,
    res: ServerResponse,
    head: boolean,
    seq: number,
    part: number | undefined = partOfUrl(req.url),
  ): void {
    if (part !== undefined) {
      this.servePart(req, res, head, seq, part);
      return;
    }
    const seg = this.store.segment(seq);
    if (!seg) {
      reply(res, 404, "text/plain", "Segment expired\n", head);
      return;
    }
    if (!head) {
      const session = this.touch(req, res);
      if (!session) return;
      session.sent(seg.data.length);
      this.host.countSent(seg.data.length);
    }
    reply(res, 200, "video/iso.segment", seg.data, head, { "Cache-Control": "no-cache" });
  }

  /** A low-latency part: at once when listed; the hinted next one when it comes; else 404. */
  private servePart(req: IncomingMessage, res: ServerResponse, head: boolean, seq: number, n: number): void {
    const notThere = (): void => reply(res, 404, "text/plain", "Part expired or never made\n", head);
    const state = this.store.partState(seq, n);
    if (state === "none" || (state === "next" && head)) {
      notThere();
      return;
    }
    const session = head ? undefined : this.touch(req, res);
    if (!head && !session) return;
    const send = (): void => {
      const p = this.store.part(seq, n);
      if (!p) {
        // The fragment after the hint started a new GOP: this part never comes.
        notThere();
        return;
      }
      if (session) {
        session.sent(p.data.length);
        this.host.countSent(p.data.length);
      }
      reply(res, 200, "video/iso.segment", p.data, head, { "Cache-Control": "no-cache" });
    };
    if (state === "listed" || !session) send();
    else this.hold(res, session, () => this.store.partState(seq, n) !== "next", send, notThere);
  }

  /**
   * Holds a request until `ready()` (checked after every input) or the wait is over: three target
   * durations (RFC 8216bis 6.2.5.2), then `timeout` answers it. A client past its share of held requests
   * is answered at once.
   */
  private hold(
    res: ServerResponse,
    session: HlsSession,
    ready: () => boolean,
    answer: () => void,
    timeout: () => void,
  ): void {
    if (session.held >= HLS_HELD_PER_SESSION) {
      timeout();
      return;
    }
    const ms = this.holdMs ?? Math.min(10_000, 3000 * this.store.targetDuration);
    const request: HeldRequest = {
      res,
      session,
      ready,
      answer,
      timeout,
      timer: setTimeout(() => this.release(request, "timeout"), ms),
    };
    session.held++;
    this.held.add(request);
    res.once("close", () => this.release(request, "gone"));
  }

  /** Lets go of a held request, answering it unless the client left. */
  private release(request: HeldRequest, why: "ready" | "timeout" | "gone" | "closed"): void {
    if (!this.held.delete(request)) return;
    clearTimeout(request.timer);
    request.session.held--;
    request.session.lastSeen = performance.now();
    if (why === "gone" || request.res.writableEnded || request.res.destroyed) return;
    if (why === "ready") request.answer();
    else if (why === "timeout") request.timeout();
    else reply(request.res, 503, "text/plain", "Stream closed\n", false, { "Retry-After": "2" });
  }

  /** Answers the held requests that can be answered after an input. */
  private wake(): void {
    for (const request of this.held) if (request.ready()) this.release(request, "ready");
  }

  clear(): void {
    for (const request of this.held) this.release(request, "closed");
    this.viewers.clear();
    this.hls.clear();
    this.store.clear();
    this.inputInitId = undefined;
  }

  /** Finds or starts the HLS session of this client; answers 503 and returns undefined when full. */
  private touch(req: IncomingMessage, res: ServerResponse): HlsSession | undefined {
    const found = this.hls.touch(
      clientAddress(req),
      req.headers["user-agent"],
      (group) => !this.host.busy(res, false, group),
    );
    if (found?.created) this.host.hlsJoined(found.session);
    return found?.session;
  }
}

/**
 * The delivery directives of a blocking playlist reload: undefined when there are none, the problem in
 * words when they cannot be read.
 */
function readDirectives(
  msn: string | null,
  part: string | null,
): { msn: number; part: number | undefined } | string | undefined {
  if (msn === null) return part === null ? undefined : "_HLS_part needs _HLS_msn";
  const whole = (v: string): number | undefined => (/^\d{1,15}$/.test(v) ? Number(v) : undefined);
  const m = whole(msn);
  if (m === undefined) return `_HLS_msn must be a whole number, not "${msn.slice(0, 20)}"`;
  if (part === null) return { msn: m, part: undefined };
  const p = whole(part);
  if (p === undefined) return `_HLS_part must be a whole number, not "${part.slice(0, 20)}"`;
  return { msn: m, part: p };
}
