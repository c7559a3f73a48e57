import { MAX_EPOCH_MS, MAX_FRAGMENT_SECONDS, type Mp4Info } from "../messages/mp4";

export { MAX_EPOCH_MS, MAX_FRAGMENT_SECONDS, mp4InfoFromMessage, readMp4Info } from "../messages/mp4";
export type { Mp4Info, Mp4Problem } from "../messages/mp4";

export interface Mp4Init {
  id: number;
  data: Buffer;
  codec: string;
  width: number;
  height: number;
}

export interface Mp4Segment {
  /** Media sequence number given by the store: keeps rising across inits, so URIs never repeat. */
  seq: number;
  data: Buffer;
  duration: number;
  time: number;
  initId: number;
  /** First segment after a new init that replaced an earlier one. */
  discontinuity: boolean;
}

/**
 * A fragment as the store takes it: `keyframe` true = starts a GOP that the next keyframe fragment ends,
 * false = continues the open GOP, undefined = a whole GOP by itself (ffmpeg transcode's `frag_keyframe`
 * output, which has no flag): it is a segment at once, as it always was.
 */
export type StoreFragment = Mp4Info & { keyframe?: boolean };

/** What became of one fragment. */
export interface StoredFragment {
  /** A player can start with it (it begins a GOP). */
  key: boolean;
  /** Kept for HLS and late joiners (false: a fragment of a GOP whose start the store never had). */
  kept: boolean;
  /** The segment this fragment closed or was, when one was completed. */
  closed?: Mp4Segment;
}

/** The GOP being collected: the fragments since its keyframe fragment. */
interface OpenSegment {
  parts: Buffer[];
  bytes: number;
  duration: number;
  time: number;
  initId: number;
}

export interface Fmp4StoreOptions {
  maxSegments?: number;
  maxBytes?: number;
}

/**
 * The current init segment and a ring of the last segments, bounded in count and bytes, with the
 * HLS (v7, fMP4) media playlist over them. A segment is one GOP: the fragments from a keyframe fragment
 * up to the next one, concatenated as they came (byte for byte); it is listed once complete. The
 * fragments of the GOP being collected are the current GOP a late `stream.mp4` joiner starts with. Each init gets its own URI (`init.mp4?v=<id>`) because
 * players cache the map by URI; segments that outlive a new init keep pointing at theirs.
 */
export class Fmp4Store {
  readonly maxSegments: number;
  readonly maxBytes: number;
  init: Mp4Init | undefined;
  readonly segments: Mp4Segment[] = [];
  private readonly inits = new Map<number, Mp4Init>();
  private nextSeq = 0;
  private nextInitId = 1;
  private bytes = 0;
  private discontinuitySeq = 0;
  private targetDuration = 1;
  private pendingDiscontinuity = false;
  private open: OpenSegment | undefined;
  /** Fragments since the latest keyframe fragment of the current init (what a joiner gets). */
  private gopParts: Buffer[] = [];

  constructor(options: Fmp4StoreOptions = {}) {
    this.maxSegments = Math.max(3, options.maxSegments ?? 6);
    this.maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
  }

  /** A new init replaces the current one; the next fragment starts a discontinuity. */
  pushInit(data: Buffer, info: Mp4Info): Mp4Init {
    this.pendingDiscontinuity = this.init !== undefined;
    const init: Mp4Init = {
      id: this.nextInitId++,
      data,
      codec: info.codec,
      width: info.width,
      height: info.height,
    };
    this.init = init;
    this.inits.set(init.id, init);
    // The GOP of the old init can neither be finished nor played with the new one.
    this.open = undefined;
    this.gopParts = [];
    this.dropUnusedInits();
    return init;
  }

  /**
   * Adds a fragment of the current init; undefined when no init has arrived yet. A keyframe fragment
   * completes the open GOP into a segment and opens the next; a fragment without the flag is a segment
   * by itself; a non-keyframe fragment joins the open GOP (or, with none open, is not kept).
   */
  pushFragment(data: Buffer, info: StoreFragment, previousTime?: number): StoredFragment | undefined {
    if (this.init === undefined) return undefined;
    const fits = (d: number): boolean => d > 0 && d <= MAX_FRAGMENT_SECONDS;
    let duration = info.duration;
    if (!fits(duration)) {
      const gap = previousTime === undefined ? NaN : (info.time - previousTime) / 1000;
      duration = fits(gap) ? gap : 1;
    }
    const key = info.keyframe !== false;
    let closed: Mp4Segment | undefined;
    if (key) {
      closed = this.closeOpen();
      this.open = { parts: [], bytes: 0, duration: 0, time: info.time, initId: this.init.id };
      this.gopParts = [];
    }
    const open = this.open;
    if (open === undefined) return { key, kept: false };
    open.parts.push(data);
    open.bytes += data.length;
    open.duration += duration;
    this.gopParts.push(data);
    if (info.keyframe === undefined) closed = this.closeOpen();
    else if (open.bytes > this.maxBytes) {
      // A GOP larger than the whole store: give it up and start again at the next keyframe.
      this.open = undefined;
      this.gopParts = [];
      this.pendingDiscontinuity = true;
      return { key, kept: false };
    } else this.trim();
    return { key, kept: true, closed };
  }

  /** The fragments since the latest keyframe of the current init (empty while there is none). */
  get gop(): readonly Buffer[] {
    return this.gopParts;
  }

  /** The open GOP becomes a listed segment; returns it. */
  private closeOpen(): Mp4Segment | undefined {
    const open = this.open;
    this.open = undefined;
    if (open === undefined || open.parts.length === 0) return undefined;
    const data = open.parts.length === 1 ? open.parts[0] : Buffer.concat(open.parts, open.bytes);
    const seg: Mp4Segment = {
      seq: this.nextSeq++,
      data,
      duration: open.duration,
      time: open.time,
      initId: open.initId,
      discontinuity: this.pendingDiscontinuity,
    };
    this.pendingDiscontinuity = false;
    this.targetDuration = Math.max(this.targetDuration, Math.ceil(seg.duration - 0.001));
    this.segments.push(seg);
    this.bytes += data.length;
    this.trim();
    this.dropUnusedInits();
    return seg;
  }

  /** Drops the oldest segments past the count or the bytes (the open GOP's bytes count too). */
  private trim(): void {
    const openBytes = this.open?.bytes ?? 0;
    while (
      this.segments.length > 1 &&
      (this.segments.length > this.maxSegments || this.bytes + openBytes > this.maxBytes)
    ) {
      const old = this.segments.shift() as Mp4Segment;
      this.bytes -= old.data.length;
      if (old.discontinuity) this.discontinuitySeq++;
    }
  }

  get latest(): Mp4Segment | undefined {
    return this.segments[this.segments.length - 1];
  }

  /** Bytes held: the listed segments and the GOP being collected. */
  get byteLength(): number {
    return this.bytes + (this.open?.bytes ?? 0);
  }

  segment(seq: number): Mp4Segment | undefined {
    const first = this.segments[0];
    if (first === undefined) return undefined;
    return this.segments[seq - first.seq];
  }

  /** The current init without a version, or the one a playlist named. */
  initById(id: number | undefined): Mp4Init | undefined {
    return id === undefined ? this.init : this.inits.get(id);
  }

  /** The live media playlist; `query` (e.g. "token=abc") is appended to every URI. */
  playlist(query = ""): string {
    const q = query === "" ? "" : `?${query}`;
    const first = this.segments[0];
    const lines = [
      "#EXTM3U",
      "#EXT-X-VERSION:7",
      `#EXT-X-TARGETDURATION:${this.targetDuration}`,
      `#EXT-X-MEDIA-SEQUENCE:${first ? first.seq : this.nextSeq}`,
    ];
    if (this.discontinuitySeq > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${this.discontinuitySeq}`);
    let initId = -1;
    for (const seg of this.segments) {
      if (seg.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
      if (seg.initId !== initId) {
        initId = seg.initId;
        lines.push(`#EXT-X-MAP:URI="init.mp4?v=${initId}${query === "" ? "" : `&${query}`}"`);
      }
      // Only a date RFC 3339 can write (a time from outside readMp4Info must not make the playlist throw).
      if (Number.isFinite(seg.time) && seg.time >= 0 && seg.time <= MAX_EPOCH_MS)
        lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(seg.time).toISOString()}`);
      lines.push(`#EXTINF:${seg.duration.toFixed(3)},`);
      lines.push(`seg-${seg.seq}.m4s${q}`);
    }
    return lines.join("\n") + "\n";
  }

  clear(): void {
    this.segments.length = 0;
    this.inits.clear();
    this.init = undefined;
    this.bytes = 0;
    this.open = undefined;
    this.gopParts = [];
  }

  private dropUnusedInits(): void {
    for (const id of this.inits.keys()) {
      if (id !== this.init?.id && !this.segments.some((s) => s.initId === id)) this.inits.delete(id);
    }
  }
}
