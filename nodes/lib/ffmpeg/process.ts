/**
 * One supervised ffmpeg run: spawning it with our exact arguments and stdio, reading its progress, keeping
 * the last stderr lines (credentials redacted), and a graceful-then-forceful stop.
 */
import { spawn, type ChildProcess } from "child_process";
import { EventEmitter } from "events";
import path from "path";
import type { Readable, Writable } from "stream";
import { redactCredentials } from "../credentials";
import { isProgressPairLine, parseProgressLine, type FfmpegProgress } from "./progress";

export interface FfmpegProcessOptions {
  ffmpegPath: string;
  /** Full argument list after the binary; built only by camrelay code, never from messages. */
  args: string[];
  /** Strings to redact from stderr and the command line (passwords, user names). */
  secrets?: (string | undefined)[];
  /** Open a pipe to ffmpeg's stdin (for feeding frames, or for `q`). */
  stdin?: boolean;
  /** How many stderr lines to keep for error messages. */
  stderrLines?: number;
}

/** What one burst of a batched stdout should hold at most (see batchStdout); the socket pair holds 128-256 kB. */
const BURST_TARGET_BYTES = 64 * 1024;
/** Bursts closer than this: stdout is read as it comes instead. */
const BURST_MIN_MS = 40;

/** Lines ffmpeg prints at error level about things that are not errors; they would only hide the real cause. */
const HARMLESS_STDERR = /Cannot use rename on non file protocol/;

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** How an ffmpeg run ended: both null when the binary could not be started (see `spawnError`). */
export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface FfmpegProcessEvents {
  /** The binary started. */
  spawn: [];
  /** One progress report (a stats line, or one whole `-progress` block). */
  progress: [FfmpegProgress];
  /** Exactly once after start(), also when the binary could not be started. */
  exit: [FfmpegExit];
}

/**
 * One ffmpeg run. Events: `spawn`, `progress` (FfmpegProgress), `exit` ({code, signal}) exactly once after
 * start(), also when the binary could not be started (then `spawnError` is set and code/signal are null).
 * Spawned with child_process directly (not fluent-ffmpeg's runner) because we need the exact argument order,
 * our own stdio (frames on stdin, media on stdout) and our own SIGTERM-then-SIGKILL shutdown.
 */
export class FfmpegProcess extends EventEmitter<FfmpegProcessEvents> {
  private child?: ChildProcess;
  private readonly ring: string[] = [];
  private readonly ringSize: number;
  private partial = "";
  private pending: Partial<FfmpegProgress> = {};
  private exited = false;
  private exitPromise?: Promise<void>;
  private resolveExit?: () => void;
  private batchMs = 0;
  private batchTimer?: NodeJS.Timeout;
  private readPaused = false;
  private intervalBytes = 0;
  private burstAt = 0;
  private burstRate = 0;
  spawnError?: Error;
  exitCode: number | null = null;
  exitSignal: string | null = null;

  constructor(private readonly opts: FfmpegProcessOptions) {
    super();
    this.ringSize = Math.max(1, opts.stderrLines ?? 20);
  }

  /**
   * Reads ffmpeg's stdout in bursts every `ms` instead of as it comes (0 = as it comes, the default). Each
   * wake-up of Node for a few kB costs more than reading them (measured here: ~0.2 ms of CPU a wake-up, so a
   * camera cut into a fragment a picture cost Node-RED 15-30 wake-ups a second); in bursts the socket pair
   * (about 128-256 kB) holds what comes meanwhile. The bursts come sooner for a stream that brings more
   * than BURST_TARGET_BYTES in `ms` (so ffmpeg never waits on a full socket), and a stream that would need
   * them closer than BURST_MIN_MS is read as it comes until it slows down. Reading goes back to continuous
   * when the process exits, so its end is seen.
   */
  batchStdout(ms: number): void {
    const want = this.exited ? 0 : Math.max(0, Math.round(ms) || 0);
    if (want === this.batchMs) return;
    this.batchMs = want;
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    if (want === 0) {
      this.readOn();
      return;
    }
    this.readOff();
    this.intervalBytes = 0;
    this.burstRate = 0;
    this.burstAt = performance.now();
    this.scheduleBurst(want);
  }

  private scheduleBurst(delay: number): void {
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined;
      if (this.batchMs === 0) return;
      const now = performance.now();
      // Bytes a millisecond: the last interval's, or the one before it fading (a stream that comes in lumps
      // must not look idle for one quiet interval).
      const rate = Math.max(this.intervalBytes / Math.max(1, now - this.burstAt), this.burstRate * 0.7);
      this.burstRate = rate;
      this.intervalBytes = 0;
      this.burstAt = now;
      this.readOn();
      const next = rate > 0 ? Math.min(this.batchMs, BURST_TARGET_BYTES / rate) : this.batchMs;
      if (next >= BURST_MIN_MS) {
        // This turn's poll phase reads what waits; then reading stops until the next burst.
        setImmediate(() => {
          if (this.batchMs > 0) this.readOff();
        });
      }
      this.scheduleBurst(Math.max(BURST_MIN_MS, next));
    }, delay);
  }

  /** The libuv handle of stdout, when it has the read controls (Node's Pipe); else batching does nothing. */
  private stdoutHandle(): { readStart(): number; readStop(): number } | undefined {
    const handle = (
      this.child?.stdout as unknown as { _handle?: { readStart?: unknown; readStop?: unknown } }
    )?._handle;
    if (!handle || typeof handle.readStart !== "function" || typeof handle.readStop !== "function")
      return undefined;
    return handle as { readStart(): number; readStop(): number };
  }

  private readOn(): void {
    if (!this.readPaused) return;
    this.readPaused = false;
    this.stdoutHandle()?.readStart();
  }

  private readOff(): void {
    if (this.readPaused || this.exited) return;
    const handle = this.stdoutHandle();
    if (!handle) return;
    this.readPaused = true;
    // Node's own `reading` flag stays as it is: it would otherwise restart reading on its next _read().
    handle.readStop();
  }

  get stdout(): Readable | null {
    return this.child?.stdout ?? null;
  }

  get stdin(): Writable | null {
    return this.child?.stdin ?? null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** True from start() until the process is gone. */
  get running(): boolean {
    return this.child !== undefined && !this.exited;
  }

  start(): void {
    if (this.child) throw new Error("ffmpeg process already started");
    this.exitPromise = new Promise((resolve) => (this.resolveExit = resolve));
    const child = spawn(this.opts.ffmpegPath, this.opts.args, {
      stdio: [this.opts.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      windowsHide: true,
    });
    this.child = child;
    // A write after ffmpeg died (EPIPE) must not crash Node-RED; the exit event reports the death.
    child.stdin?.on("error", () => undefined);
    child.stdout?.on("error", () => undefined);
    child.stdout?.on("data", (d: Buffer) => (this.intervalBytes += d.length));
    // The process ended: read on to the end of its output (the close event waits for it).
    child.on("exit", () => this.batchStdout(0));
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => this.onStderr(text));
    child.on("spawn", () => this.emit("spawn"));
    child.on("error", (err) => {
      if (child.pid !== undefined && !this.exited) return; // kill() failures: the exit event still comes
      this.spawnError = err;
      this.pushLine(`could not start ${path.basename(this.opts.ffmpegPath)}: ${err.message}`);
      this.onExit(null, null);
    });
    child.on("close", (code, signal) => this.onExit(code, signal));
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.batchStdout(0);
    this.exited = true;
    if (this.partial) this.onLine(this.partial);
    this.partial = "";
    this.exitCode = code;
    this.exitSignal = signal;
    this.resolveExit?.();
    this.emit("exit", { code, signal });
  }

  /**
   * Graceful first: end stdin (EOF finishes a file properly) or send `q` when stdin is ffmpeg's console,
   * else SIGTERM; SIGTERM at half the grace time if still alive; SIGKILL after graceMs. Resolves when gone.
   */
  stop(graceMs = 3000): Promise<void> {
    const child = this.child;
    if (!child || this.exited || !this.exitPromise) return Promise.resolve();
    const stdinOpen = child.stdin && !child.stdin.destroyed && child.stdin.writable;
    if (stdinOpen && child.stdin) {
      const stdinIsInput = this.opts.args.some((a) => a === "-" || a === "pipe:0" || a === "pipe:");
      if (!stdinIsInput) child.stdin.write("q");
      child.stdin.end();
    } else {
      this.signal("SIGTERM");
    }
    const term = stdinOpen ? setTimeout(() => this.signal("SIGTERM"), graceMs / 2) : undefined;
    const kill = setTimeout(() => this.signal("SIGKILL"), graceMs);
    return this.exitPromise.then(() => {
      if (term) clearTimeout(term);
      clearTimeout(kill);
    });
  }

  /** Immediate SIGKILL (used when ffmpeg must die now, e.g. a crash test). */
  kill(): void {
    this.signal("SIGKILL");
  }

  private signal(sig: NodeJS.Signals): void {
    if (!this.child || this.exited) return;
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }

  /** Last stderr lines (progress lines excluded), credentials redacted. */
  lastStderr(): string[] {
    return this.ring.slice();
  }

  /** The command line for logs, credentials redacted. */
  commandLine(): string {
    const line = [this.opts.ffmpegPath, ...this.opts.args].map(quoteArg).join(" ");
    return redactCredentials(line, this.opts.secrets);
  }

  private onStderr(text: string): void {
    const parts = (this.partial + text).split(/\r\n|\r|\n/);
    this.partial = parts.pop() ?? "";
    // A single line without an end that grows forever is not ffmpeg output we need to keep whole.
    if (this.partial.length > 8192) this.partial = this.partial.slice(-8192);
    for (const line of parts) this.onLine(line);
  }

  private onLine(raw: string): void {
    const line = raw.trim();
    if (!line || HARMLESS_STDERR.test(line)) return;
    if (isProgressPairLine(line)) {
      // -progress output: a block of key=value lines (some, like stream_0_0_q, unused) ending with progress=.
      Object.assign(this.pending, parseProgressLine(line));
      if (line.startsWith("progress=")) this.flushProgress();
      return;
    }
    const progress = parseProgressLine(line);
    if (progress) {
      this.pending = progress;
      this.flushProgress();
      return;
    }
    this.pushLine(line);
  }

  private flushProgress(): void {
    const p = this.pending;
    this.pending = {};
    if (Object.keys(p).length === 0) return;
    const full: FfmpegProgress = {
      frame: p.frame ?? 0,
      fps: p.fps ?? 0,
      kbps: p.kbps ?? 0,
      outTimeMs: p.outTimeMs ?? 0,
      speed: p.speed ?? 0,
    };
    this.emit("progress", full);
  }

  private pushLine(line: string): void {
    this.ring.push(redactCredentials(line, this.opts.secrets).slice(0, 500));
    if (this.ring.length > this.ringSize) this.ring.shift();
  }
}
