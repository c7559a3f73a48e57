import { EventEmitter } from "events";
import { FfmpegProcess, type FfmpegProgress } from "../ffmpeg";
import type { Frame } from "../media";
import { readJpegSize } from "../codec/jpeg-markers";
import { Mp4FragmentSplitter, type Mp4FragmentInfo, type Mp4InitInfo } from "../codec/fmp4-splitter";
import { MatroskaFrameWriter } from "../codec/matroska-writer";

export interface TranscodeSessionOptions {
  ffmpegPath: string;
  /** Full ffmpeg argument list (input on pipe:0 as Matroska). */
  args: string[];
  width: number;
  height: number;
  secrets?: (string | undefined)[];
  /** What stdout carries: fragmented MP4 to split, raw bytes to pass on, or nothing. */
  stdout: "fmp4" | "raw" | "none";
  /** Frames kept while ffmpeg's stdin is not draining, in ms of frame time; older ones are dropped. */
  maxQueueMs?: number;
  /** ... and at most this many bytes (default: no byte limit beyond maxQueueMs). */
  maxQueueBytes?: number;
  /** An ffmpeg that is given frames but shows no sign of life (progress, output, reading) this long is killed. */
  stallMs?: number;
  /** The typical time between frames, given to ffmpeg as each frame's duration (see MatroskaFrameWriter). */
  frameDurationMs?: number;
}

/** One piece of ffmpeg's fMP4 output (an init segment or a fragment) and what it holds. */
export interface Mp4Piece<Info> {
  data: Buffer;
  info: Info;
}

/** How an ffmpeg run ended: `expected` when it was asked to finish (not a crash). */
export interface SessionExit {
  code: number | null;
  signal: string | null;
  /** ffmpeg's last stderr lines. */
  stderr: string[];
  expected: boolean;
}

/** An fMP4 piece with the epoch time of its first frame. */
export interface SessionFragment extends Mp4FragmentInfo {
  time: number;
}

export interface SessionStats {
  framesIn: number;
  framesWritten: number;
  framesDropped: number;
  lastTime?: number;
  /** After finish(endTime): where the file ends (epoch ms). */
  endTime?: number;
}

/** How an ffmpeg run ended, for error messages. */
export function describeExit(session: TranscodeSession, code: number | null, signal: string | null): string {
  if (session.stalled) return "stopped responding (no progress while given frames) and was killed";
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * A frame's size, read from the JPEG itself: it decides what ffmpeg decodes and encodes, so msg.frame.width and
 * height (anyone can write them into a message) are never believed here. 640x480 when the JPEG has no size.
 */
export function frameSize(frame: Frame): { width: number; height: number } {
  return readJpegSize(frame.data) ?? { width: 640, height: 480 };
}

/** The largest JPEG side ffmpeg is given: decoding alone takes width x height x 1.5 bytes per frame. */
export const MAX_FRAME_SIDE = 8192;

/** The size of a frame too big to give ffmpeg (a side over MAX_FRAME_SIDE), or undefined when it is fine. */
export function oversizeFrame(frame: Frame): { width: number; height: number } | undefined {
  const size = readJpegSize(frame.data);
  return size && (size.width > MAX_FRAME_SIDE || size.height > MAX_FRAME_SIDE) ? size : undefined;
}

export { FrameClock } from "./frame-clock";

/** The longest a last frame is shown when frames stopped coming before the end (a dead camera). */
const MAX_LAST_FRAME_MS = 1000;

/**
 * One ffmpeg run fed with frames: Matroska on stdin with each frame's receive time, bounded queueing when
 * ffmpeg does not keep up, fMP4 on stdout split into init and fragments. Events: `init` ({ data,
 * info: Mp4InitInfo }), `fragment` ({ data, info: SessionFragment }), `data` (Buffer, raw stdout),
 * `progress` (FfmpegProgress), `dropped` (count so far), `exit` ({ code, signal, stderr lines, expected }).
 */
export interface TranscodeSessionEvents {
  init: [piece: Mp4Piece<Mp4InitInfo>];
  fragment: [piece: Mp4Piece<SessionFragment>];
  data: [chunk: Buffer];
  progress: [progress: FfmpegProgress];
  dropped: [count: number];
  exit: [exit: SessionExit];
  /** ffmpeg's output cannot be split any more. */
  warning: [message: string];
  /** Every queued frame was handed to ffmpeg. */
  flushed: [];
}

export class TranscodeSession extends EventEmitter<TranscodeSessionEvents> {
  readonly proc: FfmpegProcess;
  readonly stats: SessionStats = { framesIn: 0, framesWritten: 0, framesDropped: 0 };
  private readonly mkv: MatroskaFrameWriter;
  private readonly queue: { chunks: Buffer[]; time: number; bytes: number }[] = [];
  private queuedBytes = 0;
  private last?: Frame;
  private finishing = false;
  private exited = false;
  private lastLife = Date.now();
  private lastFeed = 0;
  private watchdog?: NodeJS.Timeout;
  /** Set when the watchdog killed a stuck ffmpeg (the exit that follows is not a crash of its own). */
  stalled = false;
  readonly startedAt = Date.now();

  constructor(private readonly opts: TranscodeSessionOptions) {
    super();
    this.mkv = new MatroskaFrameWriter(opts.width, opts.height, opts.frameDurationMs);
    this.proc = new FfmpegProcess({
      ffmpegPath: opts.ffmpegPath,
      args: opts.args,
      secrets: opts.secrets,
      stdin: true,
    });
  }

  start(): void {
    const proc = this.proc;
    const alive = () => (this.lastLife = Date.now());
    proc.on("progress", (p: FfmpegProgress) => {
      alive();
      this.emit("progress", p);
    });
    proc.on("exit", ({ code, signal }) => {
      this.exited = true;
      if (this.watchdog) clearInterval(this.watchdog);
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.emit("exit", { code, signal, stderr: proc.lastStderr(), expected: this.finishing });
    });
    proc.start();
    proc.stdout?.on("data", alive);
    const stallMs = this.opts.stallMs ?? 10000;
    this.watchdog = setInterval(() => this.checkStall(stallMs), Math.min(1000, stallMs / 2));
    this.watchdog.unref?.();
    if (this.opts.stdout === "fmp4") {
      const splitter = new Mp4FragmentSplitter({
        init: (data: Buffer, info: Mp4InitInfo) => this.emit("init", { data, info }),
        fragment: (data: Buffer, info: Mp4FragmentInfo) =>
          this.emit("fragment", {
            data,
            info: { ...info, time: (this.mkv.baseTime ?? 0) + info.startSec * 1000 },
          }),
        problem: (message: string) => this.emit("warning", message),
      });
      proc.stdout?.on("data", (chunk: Buffer) => splitter.push(chunk));
    } else if (this.opts.stdout === "raw") {
      proc.stdout?.on("data", (chunk: Buffer) => this.emit("data", chunk));
    } else {
      proc.stdout?.resume();
    }
    proc.stdin?.on("drain", () => {
      alive();
      this.flush();
    });
    this.enqueue([this.mkv.header()], -Infinity);
  }

  /** Frames went in since ffmpeg last showed life, and that was stallMs ago: it is stuck, kill it. */
  private checkStall(stallMs: number): void {
    if (this.exited || this.finishing || this.lastFeed <= this.lastLife) return;
    if (Date.now() - this.lastLife < stallMs) return;
    this.stalled = true;
    this.proc.kill();
  }

  /** Epoch time of the first frame written (the stream's time 0). */
  get baseTime(): number | undefined {
    return this.mkv.baseTime;
  }

  /** Frame time of the last frame accepted. */
  get lastTime(): number | undefined {
    return this.stats.lastTime;
  }

  /** Queues a frame for ffmpeg; frames older than the last one are ignored. Returns false when not taken. */
  write(frame: Frame): boolean {
    if (this.exited || this.finishing || !Number.isFinite(frame.time)) return false;
    if (this.stats.lastTime !== undefined && frame.time <= this.stats.lastTime) return false;
    this.stats.framesIn++;
    this.stats.lastTime = frame.time;
    this.last = frame;
    this.enqueue(this.mkv.frame(frame.data, frame.time), frame.time);
    return true;
  }

  /**
   * Ends the stream: with `endTime` the file is made to end exactly then (see below), stdin is closed so
   * ffmpeg finishes the file, and SIGTERM/SIGKILL follow if it does not. Resolves when ffmpeg is gone.
   */
  finish(endTime?: number, graceMs = 5000, repeats: 1 | 2 = 2): Promise<void> {
    if (!this.finishing && !this.exited) {
      this.finishing = true;
      const last = this.last;
      if (last && endTime !== undefined) {
        // ffmpeg 4.x gives the last sample of an MP4 fragment the duration of the one before it and ignores
        // packet durations. Two repeats of the last picture 0.2 and 0.1 ms before the end make the last real
        // frame last until then and the file end exactly at `end` (at most a second after the last frame).
        const end = Math.max(Math.min(endTime, last.time + MAX_LAST_FRAME_MS), last.time + 0.3);
        // (Live streams, `repeats` 1: one repeat is enough to give the last segment its length.)
        for (const t of repeats === 2 ? [end - 0.2, end - 0.1] : [end - 0.1]) {
          this.enqueue(this.mkv.frame(last.data, t), t);
        }
        this.stats.endTime = end;
      }
    }
    return this.whenQueueFlushed(graceMs).then(() => this.proc.stop(graceMs));
  }

  /** Resolves once every queued frame was handed to ffmpeg (for callers that can wait, like benchmarks). */
  drained(): Promise<void> {
    return this.whenQueueFlushed(60000);
  }

  /** Immediate SIGKILL, for crash tests and last-resort shutdown. */
  kill(): void {
    this.proc.kill();
  }

  private enqueue(chunks: Buffer[], time: number): void {
    if (this.exited) return;
    if (time !== -Infinity) this.lastFeed = Date.now();
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    this.queue.push({ chunks, time, bytes });
    this.queuedBytes += bytes;
    const maxMs = this.opts.maxQueueMs ?? 2000;
    const maxBytes = this.opts.maxQueueBytes ?? Infinity;
    // Keep at most maxMs (and maxBytes) of frames waiting (never the header); drop the oldest beyond that.
    while (
      this.queue.length > 2 &&
      (this.queue[this.queue.length - 1].time - this.firstQueuedFrameTime() > maxMs ||
        this.queuedBytes > maxBytes)
    ) {
      const i = this.queue[0].time === -Infinity ? 1 : 0;
      this.queuedBytes -= this.queue.splice(i, 1)[0].bytes;
      this.stats.framesDropped++;
      this.emit("dropped", this.stats.framesDropped);
    }
    this.flush();
  }

  private firstQueuedFrameTime(): number {
    return this.queue[0].time === -Infinity ? this.queue[1].time : this.queue[0].time;
  }

  private flush(): void {
    const stdin = this.proc.stdin;
    if (!stdin || this.exited) return;
    while (this.queue.length > 0 && !stdin.writableNeedDrain) {
      const item = this.queue.shift();
      if (!item) break;
      this.queuedBytes -= item.bytes;
      for (const chunk of item.chunks) stdin.write(chunk);
      if (item.time !== -Infinity) this.stats.framesWritten++;
    }
    if (this.queue.length === 0) this.emit("flushed");
  }

  private whenQueueFlushed(timeoutMs: number): Promise<void> {
    if (this.queue.length === 0 || this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.off("flushed", done);
        this.proc.off("exit", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.on("flushed", done);
      this.proc.on("exit", done);
    });
  }
}
