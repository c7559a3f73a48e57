/**
 * The recordings of the `ffmpeg transcode` (mp4) directories one `http stream out` serves: found from the
 * sidecars on disk (so they are found again after a restart), newest first, paged. A directory is read
 * again only when its mtime changes (a recording added, closed, deleted: the recorder renames sidecars into
 * place), and a sidecar is parsed again only when its own mtime or size changes.
 */
import fs from "fs";
import path from "path";
import { SIDECAR_MARK } from "../transcode/retention";

/** A recording's base name (without `.mp4`) as camrelay makes them: sanitised camera names, stamps, `-N`. */
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,228})$/;

/** True for a base name camrelay could have made that cannot leave its directory. */
export function isRecordingName(name: string): boolean {
  return NAME.test(name) && !name.includes("..") && !name.endsWith(".");
}

/** The thumbnail camrelay keeps beside `<base>.mp4` (hidden, so nothing else lists it). */
export function thumbnailFile(dir: string, base: string): string {
  return path.join(dir, `.${base}.camrelay-thumb.jpg`);
}

const THUMB = /^\.(.+)\.camrelay-thumb\.jpg$/;

/** What the list says of one recording. */
export interface Recording {
  name: string;
  dir: string;
  start: number;
  end: number;
  duration: number;
  camera: string;
  trigger: { topic?: unknown; payload?: unknown };
  reason: string;
  /** Bytes in the sidecar (updated from the file when a page is answered). */
  bytes: number;
}

interface Cached {
  mtimeMs: number;
  size: number;
  rec: Recording | undefined;
}

interface DirState {
  mtimeMs: number;
  entries: Recording[];
}

/** Longest sidecar read (camrelay's are a few kB; the trigger payload is capped at 8 kB). */
const MAX_SIDECAR_BYTES = 256 * 1024;

function parseSidecar(dir: string, base: string, text: string): Recording | undefined {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (data === null || typeof data !== "object" || data[SIDECAR_MARK] !== 1) return undefined;
  if (typeof data.file !== "string" || path.basename(data.file) !== `${base}.mp4`) return undefined;
  const num = (v: unknown, d = 0) => (typeof v === "number" && Number.isFinite(v) ? v : d);
  const start = num(data.start, NaN);
  if (!Number.isFinite(start)) return undefined;
  const end = num(data.end, start);
  const trigger =
    typeof data.trigger === "object" && data.trigger !== null
      ? (data.trigger as { topic?: unknown; payload?: unknown })
      : {};
  return {
    name: base,
    dir,
    start,
    end,
    duration: num(data.duration, Math.max(0, (end - start) / 1000)),
    camera: typeof data.camera === "string" ? data.camera : "",
    trigger: { topic: trigger.topic, payload: trigger.payload },
    reason: typeof data.reason === "string" ? data.reason : "",
    bytes: num(data.bytes),
  };
}

export interface ListQuery {
  limit: number;
  offset: number;
  /** Only recordings that started before this (epoch ms): the cursor of the next page. */
  before?: number;
  /** Only recordings that started in [from, to). */
  from?: number;
  to?: number;
}

export interface ListPage {
  recordings: Recording[];
  /** Recordings that match the query (all pages). */
  total: number;
  /** The `before` of the next page, when there is one. */
  nextBefore?: number;
  nextOffset?: number;
}

export class RecordingIndex {
  private readonly dirs = new Map<string, DirState>();
  private readonly sidecars = new Map<string, Cached>();

  /** The recordings of `directories`, newest first (a name in two directories: the first one's). */
  async all(directories: string[]): Promise<Recording[]> {
    const lists = await Promise.all(directories.map((d) => this.readDir(d)));
    for (const d of [...this.dirs.keys()]) if (!directories.includes(d)) this.forget(d);
    const seen = new Set<string>();
    const out: Recording[] = [];
    for (const list of lists)
      for (const r of list) {
        if (seen.has(r.name)) continue;
        seen.add(r.name);
        out.push(r);
      }
    if (lists.length > 1) out.sort(newestFirst);
    return out;
  }

  async page(directories: string[], q: ListQuery): Promise<ListPage> {
    let list = await this.all(directories);
    if (q.from !== undefined) list = list.filter((r) => r.start >= (q.from as number));
    if (q.to !== undefined) list = list.filter((r) => r.start < (q.to as number));
    if (q.before !== undefined) list = list.filter((r) => r.start < (q.before as number));
    const recordings = list.slice(q.offset, q.offset + q.limit);
    const more = q.offset + q.limit < list.length;
    const last = recordings[recordings.length - 1];
    // Several recordings may share a start: a `before` cursor would skip the rest, so offer offset then.
    const tie = more && last && list[q.offset + q.limit].start === last.start;
    return {
      recordings,
      total: list.length,
      nextBefore: more && last && !tie ? last.start : undefined,
      nextOffset: more ? q.offset + q.limit : undefined,
    };
  }

  /** The recording called `name` in one of `directories`. */
  async find(directories: string[], name: string): Promise<Recording | undefined> {
    if (!isRecordingName(name)) return undefined;
    for (const dir of directories) {
      const list = await this.readDir(dir);
      const r = list.find((x) => x.name === name);
      if (r) return r;
    }
    return undefined;
  }

  /** Drops what is known of one recording (after a delete, or a recording message said it closed). */
  invalidate(dir: string, name?: string): void {
    this.dirs.delete(dir);
    if (name) this.sidecars.delete(path.join(dir, `${name}.json`));
  }

  private forget(dir: string): void {
    this.dirs.delete(dir);
    for (const key of [...this.sidecars.keys()]) if (path.dirname(key) === dir) this.sidecars.delete(key);
  }

  private async readDir(dir: string): Promise<Recording[]> {
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(dir);
    } catch {
      this.forget(dir);
      return [];
    }
    const known = this.dirs.get(dir);
    // A directory changed within the last second may change again in the same mtime tick: read it again.
    if (known && known.mtimeMs === stat.mtimeMs && Date.now() - stat.mtimeMs > 1000) return known.entries;
    let names: fs.Dirent[];
    try {
      names = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      return [];
    }
    const videos = new Set<string>();
    const jsons: string[] = [];
    const thumbs: string[] = [];
    for (const d of names) {
      // Regular files only: a symlink (isFile() is false for it) is never a recording.
      if (!d.isFile()) continue;
      if (d.name.endsWith(".mp4")) videos.add(d.name.slice(0, -4));
      else if (d.name.endsWith(".json")) jsons.push(d.name.slice(0, -5));
      else if (THUMB.test(d.name)) thumbs.push(d.name);
    }
    const keep = new Set<string>();
    const entries: Recording[] = [];
    const work = jsons.filter((b) => videos.has(b) && isRecordingName(b));
    // Bounded parallel reads: a cold directory of 10,000 sidecars, 64 at a time.
    let next = 0;
    const worker = async () => {
      while (next < work.length) {
        const base = work[next++];
        const file = path.join(dir, `${base}.json`);
        keep.add(file);
        const rec = await this.readSidecar(dir, base, file);
        if (rec) entries.push(rec);
      }
    };
    await Promise.all(Array.from({ length: Math.min(64, work.length) }, worker));
    for (const key of [...this.sidecars.keys()])
      if (path.dirname(key) === dir && !keep.has(key)) this.sidecars.delete(key);
    // Thumbnails whose recording is gone (retention deleted it): camrelay's own files, removed.
    for (const t of thumbs) {
      const base = (THUMB.exec(t) as RegExpExecArray)[1];
      if (!videos.has(base)) fs.promises.rm(path.join(dir, t), { force: true }).catch(() => undefined);
    }
    entries.sort(newestFirst);
    this.dirs.set(dir, { mtimeMs: stat.mtimeMs, entries });
    return entries;
  }

  private async readSidecar(dir: string, base: string, file: string): Promise<Recording | undefined> {
    try {
      const st = await fs.promises.lstat(file);
      if (!st.isFile() || st.size > MAX_SIDECAR_BYTES) return undefined;
      const cached = this.sidecars.get(file);
      if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.rec;
      const rec = parseSidecar(dir, base, await fs.promises.readFile(file, "utf8"));
      this.sidecars.set(file, { mtimeMs: st.mtimeMs, size: st.size, rec });
      return rec;
    } catch {
      return undefined;
    }
  }
}

function newestFirst(a: Recording, b: Recording): number {
  return b.start - a.start || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}
