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

/** One fragment as a low-latency HLS part (`part-<seq>.<n>.m4s`): a piece of a segment, playable as it arrives. */
export interface Mp4Part {
  data: Buffer;
  duration: number;
  /** Starts with a keyframe (the first part of every segment): INDEPENDENT=YES. */
  independent: boolean;
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
  /**
   * The fragments it was made of, as views into `data` (no copy), while the input says which fragments
   * start a GOP; undefined for whole-GOP fragments (no parts: the segment is one piece anyway).
   */
  parts?: Mp4Part[];
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

/** The GOP being collected: the fragments since its keyframe fragment (the parts of the next segment). */
interface OpenSegment {
  /** Complete parts, listed in the playlist while the GOP is open. */
  parts: Mp4Part[];
  /** Fragments of the part being filled (short fragments, one a picture, are grouped into parts). */
  filling: Buffer[];
  fillingDuration: number;
  bytes: number;
  duration: number;
  time: number;
  initId: number;
  discontinuity: boolean;
  /** The input flags keyframes: the fragments are published as parts while the GOP is open. */
  partial: boolean;
}

/** Where a low-latency part is or will be: listed now, the next one (the preload hint), or neither. */
export type PartState = "listed" | "next" | "none";

/** Seconds a segment may run over a whole number before the target duration rises to the next one. */
const TARGET_SLACK = 0.1;

/** Parts are listed for the segments of the last this many target durations (RFC 8216bis 4.4.4.9). */
const PART_WINDOW_TARGETS = 3;

/**
 * Shortest low-latency part (s): fragments shorter than this (a camera passed through comes one picture a
 * fragment, for WebRTC and MSE) are grouped until a part is this long. A part a picture would mean 15-30
 * playlist lines a second and as many requests from every player; ~0.2 s is what Apple's examples use.
 */
export const PART_MIN_SECONDS = 0.2;

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
  /** EXT-X-TARGETDURATION: the longest segment so far, whole seconds rounded up (TARGET_SLACK aside). */
  targetDuration = 1;
  /** Longest part so far (PART-TARGET); 0 while the input has sent no part (no low-latency tags then). */
  private partTarget = 0;
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
    // The GOP of the old init cannot be continued with the new one; listed as far as it came (its parts
    // may have been published already, so its sequence number must not be given to another GOP).
    this.closeOpen();
    this.init = init;
    this.inits.set(init.id, init);
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
      const partial = info.keyframe !== undefined;
      const discontinuity = this.pendingDiscontinuity;
      this.open = {
        parts: [],
        filling: [],
        fillingDuration: 0,
        bytes: 0,
        duration: 0,
        time: info.time,
        initId: this.init.id,
        discontinuity,
        partial,
      };
      this.pendingDiscontinuity = false;
      this.gopParts = [];
    }
    const open = this.open;
    if (open === undefined) return { key, kept: false };
    open.filling.push(data);
    open.fillingDuration += duration;
    open.bytes += data.length;
    open.duration += duration;
    // (a hair under the minimum still counts: 3 x 1/15 s is 0.19999 in floating point)
    if (open.fillingDuration >= PART_MIN_SECONDS - 0.005) this.completePart(open);
    this.gopParts.push(data);
    if (info.keyframe === undefined) closed = this.closeOpen();
    else if (open.bytes > this.maxBytes) {
      // A GOP larger than the whole store: listed as far as it came, the rest skipped up to the next keyframe.
      closed = this.closeOpen();
      this.gopParts = [];
      this.pendingDiscontinuity = true;
      return { key, kept: true, closed };
    } else this.trim();
    return { key, kept: true, closed };
  }

  /** The fragments since the latest keyframe of the current init (empty while there is none). */
  get gop(): readonly Buffer[] {
    return this.gopParts;
  }

  /** The fragments being filled become one complete part of the open GOP. */
  private completePart(open: OpenSegment): void {
    if (open.filling.length === 0) return;
    const data = open.filling.length === 1 ? open.filling[0] : Buffer.concat(open.filling);
    const duration = open.fillingDuration;
    open.parts.push({ data, duration, independent: open.parts.length === 0 });
    open.filling = [];
    open.fillingDuration = 0;
    if (open.partial) this.partTarget = Math.max(this.partTarget, Math.ceil(duration * 1000) / 1000);
  }

  /** The open GOP becomes a listed segment; returns it. */
  private closeOpen(): Mp4Segment | undefined {
    const open = this.open;
    this.open = undefined;
    if (open !== undefined) this.completePart(open);
    if (open === undefined || open.parts.length === 0) return undefined;
    const data =
      open.parts.length === 1
        ? open.parts[0].data
        : Buffer.concat(
            open.parts.map((p) => p.data),
            open.bytes,
          );
    const seg: Mp4Segment = {
      seq: this.nextSeq++,
      data,
      duration: open.duration,
      time: open.time,
      initId: open.initId,
      discontinuity: open.discontinuity,
    };
    if (open.partial) {
      // The parts become views into the segment, so the fragments' own buffers can go.
      let at = 0;
      seg.parts = open.parts.map((p) => {
        const view = data.subarray(at, at + p.data.length);
        at += p.data.length;
        return { ...p, data: view };
      });
    }
    // Whole seconds up, but a GOP a frame or two over a second (camera clocks, a first GOP of 1.024 s) stays
    // at 1: the spec rounds to the nearest, and a doubled target doubles every classic player's hold-back.
    this.targetDuration = Math.max(this.targetDuration, Math.ceil(seg.duration - TARGET_SLACK));
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

  /** Sequence number the GOP being collected gets when it is complete (its parts are listed under it). */
  get openSeq(): number {
    return this.nextSeq;
  }

  /** Parts of the GOP being collected so far (none while no GOP is open or the input has no keyframe flags). */
  get openParts(): readonly Mp4Part[] {
    return this.open?.partial ? this.open.parts : [];
  }

  /** The input sends fragments flagged as GOP starts or not: the playlist carries low-latency parts. */
  get lowLatency(): boolean {
    return this.partTarget > 0;
  }

  /** Part `n` of segment `seq`, listed or open; undefined when gone or not there yet. */
  part(seq: number, n: number): Mp4Part | undefined {
    if (seq === this.nextSeq) return this.openParts[n];
    return this.segment(seq)?.parts?.[n];
  }

  /**
   * Where part `n` of segment `seq` stands: "listed" (it can be served), "next" (the one the preload hint
   * names: it comes with the next fragment unless that one starts a GOP) or "none".
   */
  partState(seq: number, n: number): PartState {
    if (this.part(seq, n) !== undefined) return "listed";
    return this.lowLatency && seq === this.nextSeq && n === this.openParts.length ? "next" : "none";
  }

  /**
   * Whether a playlist now holds segment `seq` complete (`part` undefined) or its part `part`, or anything
   * later: what a blocking reload (`_HLS_msn`, `_HLS_part`) waits for.
   */
  reached(seq: number, part?: number): boolean {
    if (part === undefined) return seq < this.nextSeq;
    if (seq < this.nextSeq) return true;
    return seq === this.nextSeq && part < this.openParts.length;
  }

  /** The live media playlist; `query` (e.g. "token=abc") is appended to every URI. */
  playlist(query = ""): string {
    const q = query === "" ? "" : `?${query}`;
    const first = this.segments[0];
    const lines = ["#EXTM3U", "#EXT-X-VERSION:7", `#EXT-X-TARGETDURATION:${this.targetDuration}`];
    const ll = this.lowLatency;
    if (ll) {
      // hls.js and Apple players in low-latency mode stay PART-HOLD-BACK behind the newest part.
      const holdBack = (this.partTarget * 3).toFixed(3);
      lines.push(`#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${holdBack}`);
      lines.push(`#EXT-X-PART-INF:PART-TARGET=${this.partTarget.toFixed(3)}`);
    }
    lines.push(`#EXT-X-MEDIA-SEQUENCE:${first ? first.seq : this.nextSeq}`);
    if (this.discontinuitySeq > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${this.discontinuitySeq}`);
    const partLine = (seq: number, n: number, p: Mp4Part): string =>
      `#EXT-X-PART:DURATION=${p.duration.toFixed(3)},URI="part-${seq}.${n}.m4s${q}"` +
      (p.independent ? ",INDEPENDENT=YES" : "");
    // Parts only near the live edge: the segments that end within PART_WINDOW_TARGETS target durations.
    const openParts = this.openParts;
    let edge = openParts.reduce((sum, p) => sum + p.duration, 0);
    let partsFrom = this.segments.length;
    while (partsFrom > 0 && edge < PART_WINDOW_TARGETS * this.targetDuration) {
      partsFrom--;
      edge += this.segments[partsFrom].duration;
    }
    let initId = -1;
    const head = (s: { discontinuity: boolean; initId: number; time: number }): void => {
      if (s.discontinuity) lines.push("#EXT-X-DISCONTINUITY");
      if (s.initId !== initId) {
        initId = s.initId;
        lines.push(`#EXT-X-MAP:URI="init.mp4?v=${initId}${query === "" ? "" : `&${query}`}"`);
      }
      // Only a date RFC 3339 can write (a time from outside readMp4Info must not make the playlist throw).
      if (Number.isFinite(s.time) && s.time >= 0 && s.time <= MAX_EPOCH_MS)
        lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.time).toISOString()}`);
    };
    this.segments.forEach((seg, i) => {
      head(seg);
      if (ll && i >= partsFrom) seg.parts?.forEach((p, n) => lines.push(partLine(seg.seq, n, p)));
      lines.push(`#EXTINF:${seg.duration.toFixed(3)},`);
      lines.push(`seg-${seg.seq}.m4s${q}`);
    });
    if (ll) {
      // The open GOP: its parts so far (no EXTINF yet, classic players skip them), then the next one's name.
      const open = this.open;
      if (open?.partial && openParts.length > 0) {
        head(open);
        openParts.forEach((p, n) => lines.push(partLine(this.nextSeq, n, p)));
      }
      lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-${this.nextSeq}.${openParts.length}.m4s${q}"`);
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
    this.partTarget = 0;
  }

  private dropUnusedInits(): void {
    for (const id of this.inits.keys()) {
      if (id !== this.init?.id && !this.segments.some((s) => s.initId === id)) this.inits.delete(id);
    }
  }
}
