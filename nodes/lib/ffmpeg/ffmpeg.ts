/**
 * The one place camrelay talks to ffmpeg: finding the binaries, running a process under supervision-friendly
 * control, reading its progress, and keeping credentials out of everything it prints. Built on fluent-ffmpeg
 * (path configuration, ffprobe, capability listing) behind this small interface, because fluent-ffmpeg is
 * archived upstream and may have to be replaced.
 */
import { execFile, spawn, type ChildProcess } from "child_process";
import { EventEmitter } from "events";
import fs from "fs";
import path from "path";
import type { Readable, Writable } from "stream";
import fluent from "fluent-ffmpeg";

// ---------------------------------------------------------------------------------------------------------
// Finding the binaries

/** Where to look for one binary, in order: setting, environment variable, PATH, bundled npm package. */
export interface BinaryLookup {
  /** `ffmpeg` or `ffprobe`, for PATH lookup and messages. */
  name: string;
  setting?: string;
  envVar: string;
  /** npm package exporting `{ path }` of a bundled binary (an optional dependency). */
  bundledPackage: string;
  /** Environment to read `envVar` and PATH from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const exts = process.platform === "win32" ? ["", ".exe", ".cmd"] : [""];
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** A setting may be a path or a bare command name looked up on PATH. */
function resolveConfigured(value: string, env: NodeJS.ProcessEnv): string | undefined {
  if (value.includes("/") || value.includes("\\"))
    return isExecutableFile(value) ? path.resolve(value) : undefined;
  return searchPath(value, env);
}

function bundledBinary(pkg: string): string | undefined {
  let file: string | undefined;
  try {
    // Guarded: the package is an optional dependency and may be absent.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(pkg) as { path?: unknown };
    file = typeof mod.path === "string" ? mod.path : undefined;
  } catch {
    return undefined;
  }
  if (!file || !fs.existsSync(file)) return undefined;
  if (!isExecutableFile(file)) {
    // npm may skip install scripts (--ignore-scripts), leaving the shipped binary without its x bit.
    try {
      fs.chmodSync(file, fs.statSync(file).mode | 0o100);
    } catch {
      return undefined;
    }
  }
  return isExecutableFile(file) ? file : undefined;
}

/**
 * Finds a binary in the documented order. A setting or environment variable that names something that is not
 * an executable is an error (a typo must not silently run another ffmpeg).
 */
export function findBinary(lookup: BinaryLookup): string {
  const env = lookup.env ?? process.env;
  const setting = lookup.setting?.trim();
  if (setting) {
    const found = resolveConfigured(setting, env);
    if (!found)
      throw new Error(`${lookup.name} not found at "${setting}" (the node's ${lookup.name} setting).`);
    return found;
  }
  const fromEnv = env[lookup.envVar]?.trim();
  if (fromEnv) {
    const found = resolveConfigured(fromEnv, env);
    if (!found)
      throw new Error(`${lookup.name} not found at "${fromEnv}" (environment variable ${lookup.envVar}).`);
    return found;
  }
  const onPath = searchPath(lookup.name, env);
  if (onPath) return onPath;
  const bundled = bundledBinary(lookup.bundledPackage);
  if (bundled) return bundled;
  throw new Error(
    `${lookup.name} was not found: set the node's ${lookup.name} path, set ${lookup.envVar}, put ${lookup.name} ` +
      `on the PATH, or install ${lookup.bundledPackage}.`,
  );
}

/** Order: explicit setting, env FFMPEG_PATH, `ffmpeg` on PATH, the bundled @ffmpeg-installer binary. */
export function resolveFfmpegPath(setting?: string): string {
  return findBinary({
    name: "ffmpeg",
    setting,
    envVar: "FFMPEG_PATH",
    bundledPackage: "@ffmpeg-installer/ffmpeg",
  });
}

/** Order: explicit setting, env FFPROBE_PATH, `ffprobe` on PATH, the bundled @ffprobe-installer binary. */
export function resolveFfprobePath(setting?: string): string {
  return findBinary({
    name: "ffprobe",
    setting,
    envVar: "FFPROBE_PATH",
    bundledPackage: "@ffprobe-installer/ffprobe",
  });
}

// ---------------------------------------------------------------------------------------------------------
// Redaction

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;
const ENCODED_URL_USERINFO = /\b([a-z][a-z0-9+.-]*%3A%2F%2F)(?:(?!%2F)[^\s/?#&"'<>])*%40/gi;

/**
 * Replaces credentials in any URL inside text: rtsp://user:pass@host -> rtsp://***@host, user-only forms and
 * url-encoded URLs alike; then replaces each given secret (raw and url-encoded) with ***.
 */
export function redactCredentials(text: string, secrets?: readonly (string | undefined)[]): string {
  let out = String(text).replace(URL_USERINFO, "$1***@").replace(ENCODED_URL_USERINFO, "$1***%40");
  for (const secret of secrets ?? []) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  return out;
}

/**
 * The strings to redact for a login: the password, "user:password" (Basic auth's clear text), and the user
 * name when it is long enough not to blank ordinary words (a user "a" or "cam" would mask half a sentence).
 */
export function credentialSecrets(user?: string, password?: string): string[] {
  const out: string[] = [];
  if (password) out.push(password);
  if (user && password) out.push(`${user}:${password}`);
  if (user && user.length >= 3) out.push(user);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Progress

export interface FfmpegProgress {
  frame: number;
  fps: number;
  kbps: number;
  outTimeMs: number;
  speed: number;
}

const PROGRESS_KEYS = new Set([
  "frame",
  "fps",
  "bitrate",
  "total_size",
  "out_time_us",
  "out_time_ms",
  "out_time",
  "dup_frames",
  "drop_frames",
  "speed",
  "progress",
  "size",
  "time",
  "q",
  "dup",
  "drop",
  "Lsize",
]);
const PAIR = /([A-Za-z_][A-Za-z0-9_]*)=\s*(\S+)/g;
/** One `-progress` line: `key=value` (values may be padded, e.g. `bitrate= 800.0kbits/s`). */
const KV_LINE = /^\s*[A-Za-z_][A-Za-z0-9_]*=\s*\S*\s*$/;

function clockToMs(value: string): number | undefined {
  const m = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value);
  if (!m) return undefined;
  const ms = (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])) * 1000;
  return m[1] ? -ms : ms;
}

function finite(value: number): number | undefined {
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Reads one line of ffmpeg progress: a `-progress` key=value line (`out_time_ms` is in microseconds, an
 * ffmpeg quirk) or a classic stats line `frame= 12 fps=10 ... time=00:00:01.20 bitrate= 800.0kbits/s
 * speed=1x`. Returns undefined for anything else. Never throws.
 */
export function parseProgressLine(line: string): Partial<FfmpegProgress> | undefined {
  if (typeof line !== "string" || line.length > 1000) return undefined;
  const out: Partial<FfmpegProgress> = {};
  let known = 0;
  PAIR.lastIndex = 0;
  for (let m = PAIR.exec(line); m; m = PAIR.exec(line)) {
    const key = m[1];
    const value = m[2];
    if (!PROGRESS_KEYS.has(key)) continue;
    known++;
    let v: number | undefined;
    switch (key) {
      case "frame":
        v = finite(parseInt(value, 10));
        if (v !== undefined) out.frame = v;
        break;
      case "fps":
        v = finite(parseFloat(value));
        if (v !== undefined) out.fps = v;
        break;
      case "bitrate": {
        const b = /^([\d.]+)(k|M)?bits\/s$/.exec(value);
        if (b) {
          v = finite(parseFloat(b[1]) * (b[2] === "M" ? 1000 : b[2] === "k" ? 1 : 0.001));
          if (v !== undefined) out.kbps = v;
        }
        break;
      }
      case "out_time_us":
      case "out_time_ms":
        v = finite(parseInt(value, 10) / 1000);
        if (v !== undefined) out.outTimeMs = Math.round(v);
        break;
      case "out_time":
      case "time":
        v = clockToMs(value);
        if (v !== undefined) out.outTimeMs = Math.round(v);
        break;
      case "speed": {
        const s = /^([\d.]+)x$/.exec(value);
        if (s) {
          v = finite(parseFloat(s[1]));
          if (v !== undefined) out.speed = v;
        }
        break;
      }
    }
  }
  if (known === 0) return undefined;
  // A lone key=value line is only progress output when the whole line is that pair.
  if (known === 1 && !KV_LINE.test(line)) return undefined;
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Process

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

/** Lines ffmpeg prints at error level about things that are not errors; they would only hide the real cause. */
const HARMLESS_STDERR = /Cannot use rename on non file protocol/;

function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * One ffmpeg run. Events: `spawn`, `progress` (FfmpegProgress), `exit` (code, signal) exactly once after
 * start(), also when the binary could not be started (then `spawnError` is set and code/signal are null).
 * Spawned with child_process directly (not fluent-ffmpeg's runner) because we need the exact argument order,
 * our own stdio (frames on stdin, media on stdout) and our own SIGTERM-then-SIGKILL shutdown.
 */
export class FfmpegProcess extends EventEmitter {
  private child?: ChildProcess;
  private readonly ring: string[] = [];
  private readonly ringSize: number;
  private partial = "";
  private pending: Partial<FfmpegProgress> = {};
  private exited = false;
  private exitPromise?: Promise<void>;
  private resolveExit?: () => void;
  spawnError?: Error;
  exitCode: number | null = null;
  exitSignal: string | null = null;

  constructor(private readonly opts: FfmpegProcessOptions) {
    super();
    this.ringSize = Math.max(1, opts.stderrLines ?? 20);
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
    this.exited = true;
    if (this.partial) this.onLine(this.partial);
    this.partial = "";
    this.exitCode = code;
    this.exitSignal = signal;
    this.resolveExit?.();
    this.emit("exit", code, signal);
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
    if (KV_LINE.test(line)) {
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

// ---------------------------------------------------------------------------------------------------------
// Capabilities and probing (through fluent-ffmpeg)

const encoderCache = new Map<string, Promise<Set<string>>>();

/**
 * Names of the encoders an ffmpeg binary has (`ffmpeg -encoders`), cached per path. fluent-ffmpeg keeps one
 * process-wide capability cache, so a process using two different binaries gets the first one's list; the
 * hardware-encoder trial encode guards against that.
 */
export function listEncoders(ffmpegPath: string): Promise<Set<string>> {
  let cached = encoderCache.get(ffmpegPath);
  if (!cached) {
    cached = new Promise<Set<string>>((resolve, reject) => {
      fluent.setFfmpegPath(ffmpegPath);
      fluent.getAvailableEncoders((err: Error | null, encoders: Record<string, unknown>) => {
        if (err) reject(new Error(`could not list ffmpeg encoders: ${err.message}`));
        else resolve(new Set(Object.keys(encoders ?? {})));
      });
    });
    cached.catch(() => encoderCache.delete(ffmpegPath));
    encoderCache.set(ffmpegPath, cached);
  }
  return cached;
}

export interface ProbedStream {
  codecType?: string;
  codecName?: string;
  profile?: string;
  width?: number;
  height?: number;
  /** Nominal frames per second (ffprobe's avg_frame_rate, else r_frame_rate). */
  fps?: number;
  frames?: number;
  durationSec?: number;
}

export interface ProbeResult {
  formatName?: string;
  durationSec?: number;
  streams: ProbedStream[];
}

function num(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? parseFloat(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** "30000/1001" or "25/1" as a number rounded to 0.01; undefined for "0/0" and junk. */
export function parseFrameRate(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const [n, d] = value.split("/").map(Number);
  const rate = d === undefined ? n : n / d;
  return Number.isFinite(rate) && rate > 0 ? Math.round(rate * 100) / 100 : undefined;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<Record<string, unknown>>;
}

/**
 * ffprobe a file or URL; `countFrames` decodes it all to count video frames. ffprobe gets `timeoutMs`
 * (20 s by default, a camera that accepts and never answers must not hold the probe) and is then killed.
 * fluent-ffmpeg's ffprobe has no timeout, so this runs the binary itself with JSON output.
 */
export function probeMedia(
  input: string,
  opts: {
    ffprobePath?: string;
    countFrames?: boolean;
    timeoutMs?: number;
    /** Input options and `-i ...` in place of `input` (a whitelist; a concat script on stdin). */
    inputArgs?: string[];
    /** Written to ffprobe's stdin, which is then closed (the script naming a URL with credentials). */
    stdin?: string;
    /** Strings to take out of error messages. */
    secrets?: string[];
  } = {},
): Promise<ProbeResult> {
  const ffprobePath = opts.ffprobePath ?? resolveFfprobePath();
  const timeoutMs = opts.timeoutMs ?? 20000;
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"];
  if (opts.countFrames) args.push("-count_frames");
  if (opts.inputArgs) args.push(...opts.inputArgs);
  else args.push(input);
  return new Promise((resolve, reject) => {
    const child = execFile(
      ffprobePath,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const killed = (err as { killed?: boolean }).killed;
          const why = killed
            ? `no answer within ${Math.round(timeoutMs / 1000)} s`
            : String(stderr || err.message)
                .trim()
                .split("\n")
                .slice(-3)
                .join(" ");
          reject(new Error(redactCredentials(`ffprobe failed: ${why}`, opts.secrets)));
          return;
        }
        let data: FfprobeJson;
        try {
          data = JSON.parse(String(stdout)) as FfprobeJson;
        } catch {
          reject(new Error("ffprobe failed: its output was not JSON"));
          return;
        }
        resolve({
          formatName: data.format?.format_name,
          durationSec: num(data.format?.duration),
          streams: (data.streams ?? []).map((s) => ({
            codecType: typeof s.codec_type === "string" ? s.codec_type : undefined,
            codecName: typeof s.codec_name === "string" ? s.codec_name : undefined,
            profile: s.profile === undefined ? undefined : String(s.profile),
            width: num(s.width),
            height: num(s.height),
            fps: parseFrameRate(s.avg_frame_rate) ?? parseFrameRate(s.r_frame_rate),
            frames: num(s.nb_read_frames) ?? num(s.nb_frames),
            durationSec: num(s.duration),
          })),
        });
      },
    );
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.stdin ?? "");
  });
}

const helpCache = new Map<string, Promise<string>>();

/** `ffmpeg -h <topic>` text, cached per binary (used to pick option names that changed between versions). */
export function ffmpegHelp(ffmpegPath: string, topic: string): Promise<string> {
  const key = `${ffmpegPath}\0${topic}`;
  let cached = helpCache.get(key);
  if (!cached) {
    cached = new Promise((resolve) => {
      execFile(
        ffmpegPath,
        ["-hide_banner", "-h", topic],
        { timeout: 10000, maxBuffer: 4 << 20 },
        (_err, stdout) => resolve(String(stdout ?? "")),
      );
    });
    helpCache.set(key, cached);
  }
  return cached;
}

const concatOptionCache = new Map<string, Promise<boolean>>();

/**
 * Whether a binary's concat demuxer reads `option` lines: asked of the binary itself with a script that has an
 * `option` line and no file (ffmpeg 5 answers "option without file", 4.x "unknown keyword 'option'"). Cached
 * per path once the binary gave either answer; anything else (a timeout under load) counts as no, uncached.
 */
export function concatHasOptionDirective(binaryPath: string): Promise<boolean> {
  let cached = concatOptionCache.get(binaryPath);
  if (!cached) {
    cached = new Promise<boolean>((resolve) => {
      const child = execFile(
        binaryPath,
        ["-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0"].concat([
          "-protocol_whitelist",
          "pipe",
          "-i",
          "pipe:0",
        ]),
        { timeout: 10000, maxBuffer: 1 << 20 },
        (_err, _stdout, stderr) => {
          const text = String(stderr ?? "");
          const known = /option without file/.test(text);
          if (!known && !/unknown keyword 'option'/.test(text)) concatOptionCache.delete(binaryPath);
          resolve(known);
        },
      );
      child.stdin?.on("error", () => undefined);
      child.stdin?.end("ffconcat version 1.0\noption probesize 32\n");
    });
    concatOptionCache.set(binaryPath, cached);
  }
  return cached;
}

/** The RTSP demuxer's socket-timeout option: `-stimeout` up to ffmpeg 4.x, `-timeout` (microseconds) after. */
export async function rtspTimeoutOption(ffmpegPath: string): Promise<string> {
  const help = await ffmpegHelp(ffmpegPath, "demuxer=rtsp");
  return /^\s*-stimeout\b/m.test(help) ? "-stimeout" : "-timeout";
}
