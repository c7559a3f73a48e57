/**
 * Compressed input (msg.mp4): the GOP ring that keeps the latest init and the last seconds of whole GOPs,
 * and an ffmpeg run fed with fMP4 on stdin (`-f mp4 -i pipe:0`) that copies (or, when asked, encodes).
 * Timestamps come from the fragments themselves (tfdt), so a clip plays as long as the camera's timeline.
 */
import { EventEmitter } from "events";
import { FfmpegProcess, type FfmpegProgress } from "../ffmpeg";
import type { Mp4Info } from "../messages/mp4";

/** One msg.mp4 message as the transcode node keeps it. */
export interface Mp4Unit {
  data: Buffer;
  info: Mp4Info;
  /** Epoch ms of the first frame (msg.mp4.time). */
  time: number;
  /** Seconds. */
  duration: number;
  /** True for an init; for fragments: starts with an IDR (missing = true). */
  keyframe: boolean;
  initId: number;
}

/** A keyframe fragment and the fragments after it, with the init they belong to. */
export interface Gop {
  init: Mp4Unit;
  fragments: Mp4Unit[];
  time: number;
  bytes: number;
}

/**
 * The pre-roll of compressed input: whole GOPs, the oldest dropped while the next one still starts at or before
 * newest - maxMs (so the ring holds maxMs plus at most one GOP) or while over maxBytes (never the newest GOP).
 */
export class GopRing {
  private gops: Gop[] = [];
  private byteCount = 0;
  init?: Mp4Unit;

  constructor(
    private readonly maxMs: number,
    private readonly maxBytes: number,
  ) {}

  /** An init: a different initId starts a new stream, older GOPs cannot be played with it. */
  pushInit(init: Mp4Unit): void {
    if (this.init && this.init.initId !== init.initId) this.clear();
    this.init = init;
  }

  /** A fragment: a keyframe opens a GOP; a non-keyframe without a GOP to join is dropped (no P-frame alone). */
  pushFragment(f: Mp4Unit): Gop | undefined {
    const init = this.init;
    if (!init || f.initId !== init.initId) return undefined;
    let gop = this.gops[this.gops.length - 1];
    if (f.keyframe || !gop) {
      if (!f.keyframe) return undefined;
      gop = { init, fragments: [], time: f.time, bytes: 0 };
      this.gops.push(gop);
    }
    gop.fragments.push(f);
    gop.bytes += f.data.length;
    this.byteCount += f.data.length;
    this.trim(f.time);
    return gop;
  }

  private trim(newest: number): void {
    while (
      this.gops.length > 1 &&
      (this.gops[1].time <= newest - this.maxMs || this.byteCount > this.maxBytes)
    ) {
      this.byteCount -= this.gops.shift()?.bytes ?? 0;
    }
  }

  /** The GOPs from the one starting at or before `time` on (all of them when the oldest starts later). */
  from(time: number): Gop[] {
    let i = 0;
    for (let k = 0; k < this.gops.length; k++) if (this.gops[k].time <= time) i = k;
    return this.gops.slice(i);
  }

  /** Fragments after `time` (their start), oldest first: what came while a part was being replaced. */
  after(time: number): Mp4Unit[] {
    return this.gops.flatMap((g) => g.fragments).filter((f) => f.time > time);
  }

  clear(): void {
    this.gops = [];
    this.byteCount = 0;
  }

  get bytes(): number {
    return this.byteCount;
  }

  get spanMs(): number {
    if (!this.gops.length) return 0;
    const last = this.gops[this.gops.length - 1];
    const end = last.fragments[last.fragments.length - 1];
    return end.time + end.duration * 1000 - this.gops[0].time;
  }
}

export interface Mp4InputSessionOptions {
  ffmpegPath: string;
  /** Everything after the input (`-f mp4 -i pipe:0` is put in front). */
  outputArgs: string[];
  secrets?: (string | undefined)[];
  /** Bytes waiting for ffmpeg's stdin before whole GOPs are dropped. */
  maxQueueBytes: number;
}

/** The input arguments of a run fed with fMP4 on stdin. */
export function mp4InputArgs(): string[] {
  return [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-nostats",
    "-progress",
    "pipe:2",
    "-f",
    "mp4",
    "-i",
    "pipe:0",
  ];
}

export interface Mp4InputSessionEvents {
  progress: [progress: FfmpegProgress];
  dropped: [count: number];
  exit: [exit: { code: number | null; signal: string | null; stderr: string[]; expected: boolean }];
}

/**
 * One ffmpeg fed with one init and its fragments. Behind by more than maxQueueBytes: the waiting fragments
 * are dropped and writing resumes at the next keyframe. Never given a second init (a new initId is a new run).
 */
export class Mp4InputSession extends EventEmitter<Mp4InputSessionEvents> {
  readonly proc: FfmpegProcess;
  readonly stats: { framesIn: number; framesWritten: number; framesDropped: number; endTime?: number } = {
    framesIn: 0,
    framesWritten: 0,
    framesDropped: 0,
  };
  /** Epoch ms of the first fragment written, and the end of the last (time + duration). */
  baseTime?: number;
  lastTime?: number;
  initId?: number;
  readonly startedAt = Date.now();
  stalled = false;
  private queue: Mp4Unit[] = [];
  private queuedBytes = 0;
  private skipping = false;
  private finishing = false;
  private exited = false;

  constructor(private readonly opts: Mp4InputSessionOptions) {
    super();
    this.proc = new FfmpegProcess({
      ffmpegPath: opts.ffmpegPath,
      args: [...mp4InputArgs(), ...opts.outputArgs],
      secrets: opts.secrets,
      stdin: true,
    });
  }

  start(init: Mp4Unit): void {
    this.initId = init.initId;
    this.proc.on("progress", (p: FfmpegProgress) => this.emit("progress", p));
    this.proc.on("exit", ({ code, signal }) => {
      this.exited = true;
      this.queue = [];
      this.queuedBytes = 0;
      this.emit("exit", { code, signal, stderr: this.proc.lastStderr(), expected: this.finishing });
    });
    this.proc.start();
    this.proc.stdout?.resume();
    this.proc.stdin?.on("error", () => undefined); // EPIPE when ffmpeg died: its exit says why
    this.proc.stdin?.on("drain", () => this.flush());
    this.proc.stdin?.write(init.data);
  }

  /** Queues a fragment of this run's init; false when not taken (other init, finished, out of order). */
  write(f: Mp4Unit): boolean {
    if (this.exited || this.finishing || f.initId !== this.initId) return false;
    if (this.lastTime !== undefined && f.time < this.lastTime - 1000 * f.duration - 1) return false;
    if (this.baseTime === undefined && !f.keyframe) return false;
    this.stats.framesIn++;
    if (this.skipping) {
      if (!f.keyframe) {
        this.stats.framesDropped++;
        return false;
      }
      this.skipping = false;
    }
    this.baseTime ??= f.time;
    this.lastTime = f.time + f.duration * 1000;
    this.queue.push(f);
    this.queuedBytes += f.data.length;
    if (this.queuedBytes > this.opts.maxQueueBytes && this.queue.length > 1) {
      // Behind: drop what waits (whole GOPs, the newest fragment's GOP included) and resume at a keyframe.
      this.stats.framesDropped += this.queue.length;
      this.queue = [];
      this.queuedBytes = 0;
      this.skipping = !f.keyframe;
      if (f.keyframe) {
        this.queue.push(f);
        this.queuedBytes = f.data.length;
      }
      this.emit("dropped", this.stats.framesDropped);
    }
    this.flush();
    return true;
  }

  private flush(): void {
    const stdin = this.proc.stdin;
    if (!stdin || this.exited) return;
    while (this.queue.length && !stdin.writableNeedDrain) {
      const f = this.queue.shift() as Mp4Unit;
      this.queuedBytes -= f.data.length;
      stdin.write(f.data);
      this.stats.framesWritten++;
    }
    if (!this.queue.length && this.finishing) this.proc.stop(5000).catch(() => undefined);
  }

  /** Ends the run once every queued fragment is written (EOF: ffmpeg finishes the file). */
  finish(graceMs = 5000): Promise<void> {
    if (!this.finishing && !this.exited) {
      this.finishing = true;
      this.stats.endTime = this.lastTime;
    }
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.proc.kill(), graceMs + 5000);
      this.proc.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      if (!this.queue.length) void this.proc.stop(graceMs);
    });
  }

  kill(): void {
    this.proc.kill();
  }
}
