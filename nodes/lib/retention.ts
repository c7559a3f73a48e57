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
}

export interface RetentionResult {
  deleted: string[];
  freedBytes: number;
  keptBytes: number;
}

interface Entry {
  sidecar: string;
  video: string;
  start: number;
  bytes: number;
}

/** How deep below the directory recordings are looked for (msg.filename may use subfolders). */
const MAX_DEPTH = 4;

/**
 * Deletes old recordings, oldest first, by age and by total size. A recording is a video file with a sidecar
 * `.json` beside it that camrelay wrote (it carries SIDECAR_MARK); other files are never touched.
 */
export class RetentionSweeper {
  private running?: Promise<RetentionResult>;

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
    const result: RetentionResult = { deleted: [], freedBytes: 0, keptBytes: 0 };
    if (!this.enabled) return result;
    const entries: Entry[] = [];
    await this.collect(path.resolve(this.opts.directory), 0, entries);
    entries.sort((a, b) => a.start - b.start);
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    const now = (this.opts.now ?? Date.now)();
    const oldest = this.opts.keepDays > 0 ? now - this.opts.keepDays * 86400000 : -Infinity;
    const maxBytes = this.opts.keepGB > 0 ? this.opts.keepGB * 1024 ** 3 : Infinity;
    for (const e of entries) {
      if (e.start >= oldest && total <= maxBytes) break;
      if (this.opts.isProtected?.(e.video)) continue;
      await fs.promises.rm(e.video, { force: true });
      await fs.promises.rm(e.sidecar, { force: true });
      total -= e.bytes;
      result.deleted.push(e.video);
      result.freedBytes += e.bytes;
    }
    result.keptBytes = total;
    return result;
  }

  private async collect(dir: string, depth: number, out: Entry[]): Promise<void> {
    let names: fs.Dirent[];
    try {
      names = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const full = path.join(dir, d.name);
      if (d.isDirectory() && depth < MAX_DEPTH) {
        await this.collect(full, depth + 1, out);
      } else if (d.isFile() && d.name.endsWith(".json")) {
        const entry = await readSidecar(full);
        if (entry) out.push(entry);
      }
    }
  }
}

async function readSidecar(file: string): Promise<Entry | undefined> {
  try {
    const stat = await fs.promises.stat(file);
    if (stat.size > 1024 * 1024) return undefined;
    const data = JSON.parse(await fs.promises.readFile(file, "utf8")) as Record<string, unknown>;
    if (data[SIDECAR_MARK] !== 1 || typeof data.file !== "string" || typeof data.start !== "number")
      return undefined;
    // The video is looked for beside its sidecar, by name only: a sidecar can never point elsewhere.
    const video = path.join(path.dirname(file), path.basename(data.file));
    let bytes = 0;
    try {
      bytes = (await fs.promises.stat(video)).size;
    } catch {
      // video already gone: the stale sidecar is still cleaned up
    }
    return { sidecar: file, video, start: data.start, bytes };
  } catch {
    return undefined;
  }
}
