import fs from "fs";
import path from "path";

/** Marker in every sidecar camrelay writes; retention deletes only recordings that carry it. */
export const SIDECAR_MARK = "camrelay-recording";

export interface RetentionOptions {
  directory: string;
  /** Delete recordings that started more than this many days ago; 0 = keep forever. */
  keepDays: number;
  /** Delete the oldest recordings while all of them together take more than this; 0 = no limit. */
  keepGB: number;
  /** Files that must never be deleted now (recordings in progress). */
  isProtected?: (file: string) => boolean;
  now?: () => number;
  /** A sidecar or file that is skipped, with the reason (once per file and reason). */
  warn?: (message: string) => void;
}

export interface RetentionResult {
  deleted: string[];
  freedBytes: number;
  keptBytes: number;
  /** What this sweep skipped, and why. */
  warnings: string[];
}

interface Entry {
  sidecar: string;
  video: string;
  start: number;
  bytes: number;
}

/**
 * How many folders deep below the directory recordings may be: the recorder refuses a msg.filename deeper
 * than this, and retention looks exactly this deep.
 */
export const MAX_FOLDER_DEPTH = 16;

/**
 * Deletes old recordings, oldest first, by age and by total size. A recording is a video file with a sidecar
 * `.json` beside it that camrelay wrote (it carries SIDECAR_MARK); other files are never touched.
 */
export class RetentionSweeper {
  private running?: Promise<RetentionResult>;
  /** Warnings already given (a bad sidecar is reported once, not at every sweep); bounded. */
  private readonly warned = new Set<string>();

  constructor(private readonly opts: RetentionOptions) {}

  get enabled(): boolean {
    return this.opts.keepDays > 0 || this.opts.keepGB > 0;
  }

  /** One sweep at a time; a call during a sweep gets that sweep's result. */
  sweep(): Promise<RetentionResult> {
    if (!this.running) {
      this.running = this.run().finally(() => (this.running = undefined));
    }
    return this.running;
  }

  private async run(): Promise<RetentionResult> {
    const result: RetentionResult = { deleted: [], freedBytes: 0, keptBytes: 0, warnings: [] };
    if (!this.enabled) return result;
    const warn = (message: string) => {
      result.warnings.push(message);
      if (this.warned.has(message)) return;
      if (this.warned.size >= 1000) this.warned.clear();
      this.warned.add(message);
      this.opts.warn?.(message);
    };
    const entries: Entry[] = [];
    await this.collect(path.resolve(this.opts.directory), 0, entries, warn);
    entries.sort((a, b) => a.start - b.start);
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const now = (this.opts.now ?? Date.now)();
    const oldest = this.opts.keepDays > 0 ? now - this.opts.keepDays * 86400000 : -Infinity;
    const maxBytes = this.opts.keepGB > 0 ? this.opts.keepGB * 1024 ** 3 : Infinity;
    for (const e of entries) {
      if (e.start >= oldest && total <= maxBytes) break;
      if (this.opts.isProtected?.(e.video)) continue;
      try {
        await fs.promises.rm(e.video, { force: true });
        await fs.promises.rm(e.sidecar, { force: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        warn(`retention: could not delete ${e.video}: ${code}`);
        continue;
      }
      total -= e.bytes;
      result.deleted.push(e.video);
      result.freedBytes += e.bytes;
    }
    result.keptBytes = total;
    return result;
  }

  private async collect(
    dir: string,
    depth: number,
    out: Entry[],
    warn: (message: string) => void,
  ): Promise<void> {
    let names: fs.Dirent[];
    try {
      names = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const full = path.join(dir, d.name);
      if (d.isDirectory() && depth < MAX_FOLDER_DEPTH) {
        await this.collect(full, depth + 1, out, warn);
      } else if (d.isFile() && d.name.endsWith(".json")) {
        const entry = await readSidecar(full, warn);
        if (entry) out.push(entry);
      }
    }
  }
}

/**
 * A sidecar's recording: only `<name>.mp4` beside `<name>.json`, as the recorder writes them; whatever the
 * sidecar's `file` says, it can name no other file. A marked sidecar that does not fit is skipped with a warning.
 */
async function readSidecar(file: string, warn: (message: string) => void): Promise<Entry | undefined> {
  let data: Record<string, unknown>;
  try {
    const stat = await fs.promises.stat(file);
    if (stat.size > 1024 * 1024) return undefined;
    data = JSON.parse(await fs.promises.readFile(file, "utf8")) as Record<string, unknown>;
  } catch {
    return undefined; // not JSON, or gone: not ours
  }
  if (data === null || typeof data !== "object" || data[SIDECAR_MARK] !== 1) return undefined;
  const skip = (why: string) => {
    warn(`retention: skipped ${file}: ${why}`);
    return undefined;
  };
  if (typeof data.file !== "string" || typeof data.start !== "number" || !Number.isFinite(data.start))
    return skip("it has no file name or start time");
  const own = path.basename(file).replace(/\.json$/, "");
  const named = path.basename(data.file);
  if (!/\.mp4$/i.test(named) || named.slice(0, -4) !== own)
    return skip(`it names "${named.slice(0, 80)}", not its own recording ${own}.mp4`);
  const video = path.join(path.dirname(file), named);
  let bytes = 0;
  try {
    const stat = await fs.promises.lstat(video);
    if (!stat.isFile()) return skip(`${named} is not a regular file`);
    bytes = stat.size;
  } catch (err) {
    // video already gone: the stale sidecar is still cleaned up
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      return skip(`${named}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return { sidecar: file, video, start: data.start, bytes };
}
