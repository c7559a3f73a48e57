/**
 * Thumbnails of recordings: one JPEG frame made by ffmpeg from the clip, kept beside it (thumbnailFile),
 * made when the recording's message arrives or when first asked for. At most THUMB_JOBS ffmpegs run at
 * once in the whole process; the rest wait in a bounded queue. close() kills what one owner started.
 */
import { spawn, type ChildProcess } from "child_process";
import fs from "fs";
import path from "path";
import { thumbnailFile } from "./recordings-index";

export const THUMB_JOBS = 2;
/** Waiting thumbnails at most; more are refused (a 503, asked again later). */
const MAX_QUEUE = 200;
const TIMEOUT_MS = 20_000;

let running = 0;
const queue: Array<() => void> = [];

function slot(): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const take = () => {
      running++;
      let done = false;
      resolve(() => {
        if (done) return;
        done = true;
        running--;
        queue.shift()?.();
      });
    };
    if (running < THUMB_JOBS) take();
    else if (queue.length >= MAX_QUEUE) reject(new Error("too many thumbnails are being made"));
    else queue.push(take);
  });
}

export class Thumbnailer {
  private readonly pending = new Map<string, Promise<string>>();
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  constructor(private readonly ffmpegPath: () => string) {}

  /** The thumbnail file of `<dir>/<base>.mp4`, made first when missing. Rejects with the reason. */
  get(dir: string, base: string): Promise<string> {
    const out = thumbnailFile(dir, base);
    const running = this.pending.get(out);
    if (running) return running;
    const job = (async () => {
      try {
        const st = await fs.promises.lstat(out);
        const clip = await fs.promises.lstat(path.join(dir, `${base}.mp4`));
        if (st.isFile() && st.size > 0 && st.mtimeMs >= clip.mtimeMs) return out;
        await fs.promises.rm(out, { force: true });
      } catch {
        // not made yet
      }
      const release = await slot();
      try {
        await this.make(path.join(dir, `${base}.mp4`), out);
      } finally {
        release();
      }
      return out;
    })();
    this.pending.set(out, job);
    job.then(
      () => this.pending.delete(out),
      () => this.pending.delete(out),
    );
    return job;
  }

  private make(clip: string, out: string): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    const temp = path.join(path.dirname(out), `${path.basename(out)}.${process.pid}.tmp.jpg`);
    return new Promise<void>((resolve, reject) => {
      let ffmpeg: string;
      try {
        ffmpeg = this.ffmpegPath();
      } catch (err) {
        reject(err as Error);
        return;
      }
      // The frame a second in (the first is often the pre-roll's dark start), else the first one.
      const args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", clip];
      args.push("-vf", "select=lte(t\\,1),scale=320:-2", "-vsync", "vfr", "-update", "1");
      args.push("-q:v", "5", "-f", "image2", temp);
      const child = spawn(ffmpeg, args, { stdio: ["ignore", "ignore", "pipe"] });
      this.children.add(child);
      let err = "";
      child.stderr?.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-400)));
      const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
      child.on("error", (e) => {
        clearTimeout(timer);
        this.children.delete(child);
        reject(e);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        this.children.delete(child);
        let ok = false;
        try {
          ok = code === 0 && fs.statSync(temp).size > 0;
          if (ok) fs.renameSync(temp, out);
        } catch {
          ok = false;
        }
        if (ok) return resolve();
        fs.rmSync(temp, { force: true });
        reject(new Error(`ffmpeg made no thumbnail (exit ${code}): ${err.trim().slice(0, 200)}`));
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.children) c.kill("SIGKILL");
    this.children.clear();
  }
}
