/**
 * Pictures out of compressed video, for the consumers that need pixels (MJPEG viewers, snapshots, frame
 * messages): fMP4 (an init segment and fragments, as sources and `ffmpeg transcode` emit them) decoded by
 * ffmpeg to JPEG. Nothing here runs unless asked: `decodeKeyframe` is one short ffmpeg per call, and an
 * `Mp4Decoder` runs its ffmpeg only between `start` and `stop`.
 */
import { EventEmitter } from "events";
import { FfmpegProcess } from "../ffmpeg/process";
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

/** Input options that let ffmpeg start on the first fragment instead of analysing seconds of it. */
/**
 * Input options of every decoder here: a quick start on our own fMP4, and one decoding thread (a few
 * pictures a second need no frame threads: measured 17 % less CPU for a 720p camera at 2 fps, no frame
 * delay, less memory).
 */
const FAST_START = ["-threads", "1", "-probesize", "32768", "-analyzeduration", "0", "-f", "mp4"];

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

/** Bytes of fMP4 waiting for ffmpeg's stdin before whole fragments are dropped (a decoder that cannot keep up). */
const MAX_PENDING_BYTES = 8 * 1024 * 1024;

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

  constructor(private readonly options: Mp4DecoderOptions) {
    super();
  }

  get running(): boolean {
    return this.proc?.running === true;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  args(): string[] {
    const o = this.options;
    const args = ["-hide_banner", "-loglevel", "error"];
    if (o.keyframesOnly) args.push("-skip_frame", "nokey");
    args.push(...FAST_START, "-i", "pipe:0", "-an", "-sn", "-dn");
    const filters: string[] = [];
    const fps = Number(o.fps) || 0;
    if (fps > 0 && !o.keyframesOnly) {
      filters.push(`select='isnan(prev_selected_t)+gte(floor(t*${fps})-floor(prev_selected_t*${fps}),1)'`);
    }
    const scale = scaleFilter(o.width);
    if (scale) filters.push(scale);
    if (filters.length) args.push("-vf", filters.join(","));
    args.push("-vsync", "vfr", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", quality(o.quality), "pipe:1");
    return args;
  }

  /** (Re)starts ffmpeg for `init`, fed first with `gop` (fragments from the latest keyframe). */
  start(init: Buffer, gop: Buffer[] = []): void {
    this.stop();
    const proc = new FfmpegProcess({ ffmpegPath: this.options.ffmpegPath, args: this.args(), stdin: true });
    const splitter = new JpegStreamSplitter(
      (data, width, height) => this.emit("frame", { data, width, height }),
      (problem) => this.emit("problem", problem.message),
      { maxFrameBytes: this.options.maxFrameBytes },
    );
    this.proc = proc;
    this.splitter = splitter;
    this.pending = 0;
    this.skipping = false;
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

  /** A live fragment; `keyframe` says whether it starts with one (missing = yes). */
  push(fragment: Buffer, keyframe = true): void {
    if (!this.proc?.running) return;
    if (this.skipping && !keyframe) return;
    if (this.pending + fragment.length > MAX_PENDING_BYTES) {
      this.skipping = true; // behind: drop this GOP's rest, resume at the next keyframe
      return;
    }
    this.skipping = false;
    this.write(fragment);
  }

  stop(): void {
    const proc = this.proc;
    this.proc = undefined;
    this.splitter = undefined;
    if (!proc) return;
    proc.removeAllListeners("exit");
    proc.kill();
  }

  private write(data: Buffer): void {
    const stdin = this.proc?.stdin;
    if (!stdin || stdin.destroyed) return;
    this.pending += data.length;
    stdin.write(data, () => {
      this.pending -= data.length;
    });
  }
}
