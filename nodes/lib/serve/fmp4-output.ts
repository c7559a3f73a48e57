import type { IncomingMessage, ServerResponse } from "http";
import type { Mp4Info } from "../messages/mp4";
import { clientAddress } from "./access";
import { Fmp4Store } from "./fmp4-store";
import { HlsSessions, type HlsSession } from "./hls-sessions";
import { writeMp4Head } from "./mjpeg-fanout";
import { reply } from "./reply";
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

/**
 * The fMP4 side of a stream: what `ffmpeg transcode` sends in (init segments and fragments, kept in the
 * store) and the endpoints that serve it: `stream.mp4` (progressive), `index.m3u8`, `init.mp4` and
 * `seg-<n>.m4s` (HLS, whose clients are sessions).
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

  constructor(
    private readonly host: Fmp4Host,
    hls: HlsSessions,
    options: { maxSegments?: number; maxSegmentBytes?: number },
  ) {
    this.hls = hls;
    this.store = new Fmp4Store({ maxSegments: options.maxSegments, maxBytes: options.maxSegmentBytes });
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
      return "init";
    }
    const stored = this.store.pushFragment(data, info, this.lastFragmentTime);
    if (!stored) return "no init";
    this.fragmentsIn++;
    if (stored.key) this.keyframesIn++;
    this.lastFragmentTime = info.time;
    if (info.codec) this.video.codec = info.codec;
    this.viewers.offer(data, stored.key);
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
    if (!head && !this.touch(req, res)) return;
    const query = queryToken === null ? "" : `token=${encodeURIComponent(queryToken)}`;
    reply(res, 200, "application/vnd.apple.mpegurl", this.store.playlist(query), head);
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

  serveSegment(req: IncomingMessage, res: ServerResponse, head: boolean, seq: number): void {
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

  clear(): void {
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
