/**
 * Pictures out of compressed video, for the consumers that need pixels (MJPEG viewers, snapshots, frame
 * messages): fMP4 (an init segment and fragments, as sources and `ffmpeg transcode` emit them) decoded by
 * ffmpeg to JPEG. Nothing here runs unless asked: `decodeKeyframe` is one short ffmpeg per call, and an
 * `Mp4Decoder` runs its ffmpeg only between `start` and `stop`.
 */
import { EventEmitter } from "events";
import { FfmpegProcess } from "../ffmpeg/process";
import type { Fmp4Fragment } from "../media";
import { parseMoov } from "./fmp4-splitter";
import { JpegStreamSplitter } from "./jpeg-stream-splitter";

export interface DecodedPicture {
  data: Buffer;
  width: number;
  height: number;
}

export interface DecodeOptions {
  /** Scale to this width (height follows, even); 0 or missing = the stream's size. */
  width?: number;
  /** JPEG quality, ffmpeg's 2 (best) .. 31; default 5. */
  quality?: number;
}

/**
 * Input options of every decoder here: a quick start on our own fMP4, and one decoding thread (a few
 * pictures a second need no frame threads: measured 17 % less CPU for a 720p camera at 2 fps, no frame
 * delay, less memory).
 */
const FAST_START = ["-threads", "1", "-probesize", "32768", "-analyzeduration", "0", "-f", "mp4"];

/** 16-235 (chroma 16-240) stretched to 0-255, as swscale's range conversion does it, in one table pass. */
const TO_FULL_RANGE =
  "lutyuv=y='clip((val-16)*255/219,0,255)':u='clip((val-128)*255/224+128,0,255)':v='clip((val-128)*255/224+128,0,255)'";

function scaleFilter(width?: number): string | undefined {
  const w = Math.round(Number(width) || 0);
  return w > 0 ? `scale=${Math.min(w, 8192)}:-2` : undefined;
}

function quality(q?: number): string {
  const n = Math.round(Number(q) || 5);
  return String(Math.min(31, Math.max(2, n)));
}

/**
 * The first picture of `fragments` (the first should start with a keyframe) as JPEG. One ffmpeg, killed after
 * `timeoutMs` (default 5 s); rejects in words when no picture comes out.
 */
export function decodeKeyframe(
  ffmpegPath: string,
  init: Buffer,
  fragments: Buffer[],
  options: DecodeOptions & { timeoutMs?: number } = {},
): Promise<DecodedPicture> {
  const filters = [scaleFilter(options.width)].filter(Boolean) as string[];
  const args = ["-hide_banner", "-loglevel", "error", ...FAST_START, "-i", "pipe:0", "-an", "-frames:v", "1"];
  if (filters.length) args.push("-vf", filters.join(","));
  args.push("-f", "image2pipe", "-c:v", "mjpeg", "-q:v", quality(options.quality), "pipe:1");
  return new Promise((resolve, reject) => {
    let picture: DecodedPicture | undefined;
    const splitter = new JpegStreamSplitter((data, width, height) => {
      picture ??= { data, width, height };
    });
    const proc = new FfmpegProcess({ ffmpegPath, args, stdin: true, stderrLines: 6 });
    const timer = setTimeout(() => proc.kill(), Math.max(500, options.timeoutMs ?? 5000));
    proc.on("exit", ({ signal }) => {
      clearTimeout(timer);
      if (picture) return resolve(picture);
      const why = proc.lastStderr().slice(-2).join(" | ");
      const how = signal ? `was stopped (${signal}) before it decoded a picture` : "decoded no picture";
      reject(new Error(`ffmpeg ${how}${why ? `: ${why}` : ""}`));
    });
    proc.start();
    proc.stdout?.on("data", (chunk: Buffer) => splitter.push(chunk));
    const stdin = proc.stdin;
    if (!stdin) return;
    stdin.write(init);
    for (const fragment of fragments) stdin.write(fragment);
    stdin.end();
  });
}

export interface Mp4DecoderOptions extends DecodeOptions {
  ffmpegPath: string;
  /** At most this many pictures per second of stream time; 0 or missing = every frame. */
  fps?: number;
  /** Decode only keyframes (cheapest: a picture per GOP). */
  keyframesOnly?: boolean;
  /** Largest JPEG accepted from ffmpeg. */
  maxFrameBytes?: number;
}

export interface Mp4DecoderEvents {
  frame: [DecodedPicture];
  /** Something went wrong in words (ffmpeg died, damaged output); the decoder restarts on the next start(). */
  problem: [string];
}

/**
 * What the decoder is told of a fragment besides its bytes (a camera's Fmp4Fragment is one): keyframe missing
 * = yes, startSec missing = time unknown, frames 0 = audio only.
 */
export type FragmentTiming = Partial<Pick<Fmp4Fragment, "keyframe" | "startSec" | "frames">>;

/**
 * Pictures fed after the one that should become a JPEG, in case ffmpeg's clock (its pts) puts the rate's
 * boundary a picture later than the fragment's decode time does.
 */
const FEED_MARGIN = 1;
/** GOP lengths remembered to foresee the next keyframe (the longest counts). */
const GOP_HISTORY = 4;

/** GopFeed's answers: leave the fragment out; feed it, but it may wait for the next; feed it now. */
export const FEED_LEAVE = 0;
export const FEED_LATER = 1;
export const FEED_NOW = 2;
export type FeedDecision = typeof FEED_LEAVE | typeof FEED_LATER | typeof FEED_NOW;

/**
 * Which fragments a decoder capped at `fps` pictures a second needs, and when. A P-frame needs every picture before it in
 * its GOP, so a GOP is fed from its keyframe on, but only up to the last picture that will become a JPEG: at
 * 2 fps from a camera with a keyframe every second, 9 or 10 of 15 pictures, not 15. The rest of the GOP is
 * left out (the next keyframe starts clean). When the GOP is not known yet, or the time of a fragment is not,
 * everything is fed. The rule copies the decoder's own select filter (a picture whose floor(t * fps) is past
 * the last chosen one), so what it leaves out is what ffmpeg would have decoded and thrown away.
 * Only a picture that may become a JPEG (and the keyframe) must reach ffmpeg at once; the ones between are
 * needed only with the next such picture, so they can go in one write with it (FEED_LATER).
 */
export class GopFeed {
  private feeding = true;
  private chosen = -Infinity;
  private keyAt?: number;
  private gops: number[] = [];
  private margin = 0;

  constructor(
    private readonly fps: number,
    private readonly keyframesOnly = false,
  ) {}

  /** Whether (and how soon) the decoder needs this fragment; 0 = not at all. Call for every fragment, in order. */
  take(t: FragmentTiming): FeedDecision {
    const keyframe = t.keyframe !== false;
    if (this.keyframesOnly) return keyframe ? FEED_NOW : FEED_LEAVE;
    if (!(this.fps > 0)) return FEED_NOW;
    const at = t.frames === 0 ? undefined : t.startSec;
    if (at === undefined || !Number.isFinite(at)) {
      if (!this.feeding) return FEED_LEAVE;
      return t.frames === 0 ? FEED_LATER : FEED_NOW; // audio waits for the next picture; untimed goes at once
    }
    if (keyframe) {
      if (this.keyAt !== undefined && at > this.keyAt) {
        this.gops.push(at - this.keyAt);
        if (this.gops.length > GOP_HISTORY) this.gops.shift();
      } else if (this.keyAt !== undefined) {
        this.gops = []; // time went back: a new stream, nothing foreseen
        this.chosen = -Infinity;
      }
      this.keyAt = at;
      this.feeding = true;
      this.margin = 0;
    } else if (!this.feeding) {
      return FEED_LEAVE;
    }
    const bucket = Math.floor(at * this.fps + 1e-6);
    let decision: FeedDecision = FEED_LATER;
    if (bucket > this.chosen || keyframe) {
      if (bucket > this.chosen) this.chosen = bucket;
      this.margin = FEED_MARGIN;
      decision = FEED_NOW;
    } else if (this.margin > 0) {
      this.margin--;
      decision = FEED_NOW;
    }
    // No later picture of this GOP becomes a JPEG when the next boundary is at or past the next keyframe.
    if (this.margin === 0 && this.gops.length > 0 && this.keyAt !== undefined) {
      const nextKey = this.keyAt + Math.max(...this.gops);
      const frame = 1 / Math.max(this.fps, 1);
      if ((this.chosen + 1) / this.fps >= nextKey - Math.min(0.02, frame / 4)) this.feeding = false;
    }
    return decision;
  }
}

/** Bytes of fMP4 waiting for ffmpeg's stdin before whole fragments are dropped (a decoder that cannot keep up). */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** Bytes held for one write before they go anyway. */
const MAX_HELD_BYTES = 1024 * 1024;

/**
 * A running decode of one fMP4 stream to JPEG pictures. `start(init, gop)` (re)starts ffmpeg for that init,
 * first feeding the GOP so far (so the first picture comes at once); `push` feeds live fragments. When ffmpeg
 * cannot keep up, fragments are dropped up to the next keyframe, never one alone. `stop` ends ffmpeg.
 */
export class Mp4Decoder extends EventEmitter<Mp4DecoderEvents> {
  private proc?: FfmpegProcess;
  private splitter?: JpegStreamSplitter;
  private pending = 0;
  /** Dropping fragments until a keyframe: ffmpeg's input would otherwise miss a reference frame. */
  private skipping = false;
  private feed = new GopFeed(0);
  /** stdin is corked until the end of this turn of the event loop (see write). */
  private corked = false;
  /** Fed fragments waiting to go to ffmpeg with the next one it needs at once (one pipe write, not several). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /**
   * How the running decoder brings the pictures to the JPEG range: "limited" = the look-up table (an H.264
   * SPS that says 16-235), "ffmpeg" = ffmpeg's own conversion (full range, H.265, an SPS not read).
   */
  range: "limited" | "ffmpeg" = "ffmpeg";

  constructor(private readonly options: Mp4DecoderOptions) {
    super();
  }

  get running(): boolean {
    return this.proc?.running === true;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /**
   * ffmpeg's arguments. `range` "limited": the stream is H.264 in 16-235 (what cameras send unless their SPS
   * says full range), and the decoder stretches it to the JPEG range with a look-up table and hands the
   * encoder yuv420p as it is: ffmpeg's own conversion to yuvj420p (swscale) cost a third of the decoder's CPU
   * at 2 fps from 720p, the table about a tenth, for the same picture (PSNR 78 dB). Otherwise ffmpeg
   * converts as it always has.
   */
  args(range: "limited" | "ffmpeg" = "ffmpeg"): string[] {
    const o = this.options;
    const args = ["-hide_banner", "-loglevel", "error"];
    if (o.keyframesOnly) args.push("-skip_frame", "nokey");
    // One thread for the filters and the JPEG encoder too: two pictures a second need no thread pool, and
    // each of its threads is woken per picture (a decoder of 5 threads, now 2).
    args.push("-filter_threads", "1", ...FAST_START, "-i", "pipe:0", "-an", "-sn", "-dn");
    const filters: string[] = [];
    const fps = Number(o.fps) || 0;
    if (fps > 0 && !o.keyframesOnly) {
      filters.push(`select='isnan(prev_selected_t)+gte(floor(t*${fps})-floor(prev_selected_t*${fps}),1)'`);
    }
    const scale = scaleFilter(o.width);
    if (scale) filters.push(scale);
    if (range === "limited") filters.push(TO_FULL_RANGE);
    if (filters.length) args.push("-vf", filters.join(","));
    args.push("-vsync", "vfr");
    if (range === "limited") args.push("-strict", "-1", "-pix_fmt", "yuv420p", "-color_range", "pc");
    args.push("-threads", "1", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", quality(o.quality), "pipe:1");
    return args;
  }

  /** (Re)starts ffmpeg for `init`, fed first with `gop` (fragments from the latest keyframe). */
  start(init: Buffer, gop: Buffer[] = []): void {
    this.stop();
    const sps = parseMoov(init).sps;
    this.range = sps && sps.codec === undefined && sps.fullRange === false ? "limited" : "ffmpeg";
    const proc = new FfmpegProcess({
      ffmpegPath: this.options.ffmpegPath,
      args: this.args(this.range),
      stdin: true,
    });
    const splitter = new JpegStreamSplitter(
      (data, width, height) => this.emit("frame", { data, width, height }),
      (problem) => this.emit("problem", problem.message),
      { maxFrameBytes: this.options.maxFrameBytes },
    );
    this.proc = proc;
    this.splitter = splitter;
    this.pending = 0;
    this.skipping = false;
    this.feed = new GopFeed(Number(this.options.fps) || 0, this.options.keyframesOnly === true);
    proc.on("exit", ({ code, signal }) => {
      if (this.proc !== proc) return;
      this.proc = undefined;
      const why = proc.lastStderr().slice(-2).join(" | ");
      this.emit(
        "problem",
        `video decoder ffmpeg ended (${signal ?? `code ${code}`})${why ? `: ${why}` : ""}`,
      );
    });
    proc.start();
    proc.stdout?.on("data", (chunk: Buffer) => splitter.push(chunk));
    this.write(init);
    for (const fragment of gop) this.write(fragment);
  }

  /**
   * A live fragment; `timing` says whether it starts with a keyframe (a boolean alone: that; missing = yes)
   * and, with its decode time, lets a capped decoder leave out the pictures no JPEG needs (GopFeed).
   */
  push(fragment: Buffer, timing: boolean | FragmentTiming = true): void {
    if (!this.proc?.running) return;
    const t = typeof timing === "boolean" ? { keyframe: timing } : timing;
    const keyframe = t.keyframe !== false;
    const decision = this.feed.take(t);
    // Pictures held for a write with the next needed one: a keyframe means nothing later in their GOP needs them.
    if (keyframe) this.dropHeld();
    if (decision === FEED_LEAVE) return;
    if (this.skipping && !keyframe) return;
    if (this.pending + this.heldBytes + fragment.length > MAX_PENDING_BYTES) {
      this.skipping = true; // behind: drop this GOP's rest, resume at the next keyframe
      this.dropHeld();
      return;
    }
    this.skipping = false;
    if (decision === FEED_LATER && this.heldBytes + fragment.length <= MAX_HELD_BYTES) {
      this.held.push(fragment);
      this.heldBytes += fragment.length;
      return;
    }
    if (this.held.length === 0) return this.write(fragment);
    this.held.push(fragment);
    const data = Buffer.concat(this.held);
    this.dropHeld();
    this.write(data);
  }

  private dropHeld(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  stop(): void {
    const proc = this.proc;
    this.proc = undefined;
    this.splitter = undefined;
    this.dropHeld();
    if (!proc) return;
    proc.removeAllListeners("exit");
    proc.kill();
  }

  private write(data: Buffer): void {
    const stdin = this.proc?.stdin;
    if (!stdin || stdin.destroyed) return;
    this.pending += data.length;
    // Writes of one turn of the event loop (a burst read from the camera) leave in one system call, so
    // ffmpeg wakes once for them.
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      process.nextTick(() => {
        this.corked = false;
        stdin.uncork();
      });
    }
    stdin.write(data, () => {
      this.pending -= data.length;
    });
  }
}
