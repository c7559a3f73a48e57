import { EventEmitter } from "events";
import fs from "fs";
import path from "path";
import type { FfmpegProgress } from "../ffmpeg";
import type { Frame } from "../media";
import type { RecordingInfo } from "../messages/recording";
import { PreRollBuffer } from "./preroll";
import type { RetentionSweeper } from "./retention";
import {
  RecorderError,
  confineFilename,
  ensureWritableDirectory,
  prepareRequestedFolder,
  sanitizeCameraName,
  sidecarOf,
  stamp,
  uniquePath,
} from "./filenames";
import { safeTrigger, writeSidecar } from "./sidecar";
import { ClosingFiles } from "./closing-files";
import {
  estimateFps,
  inputArgs,
  mp4FileArgs,
  mp4FileOptionsNow,
  videoArgs,
  type VideoSettings,
} from "./args";
import { describeExit, frameSize, TranscodeSession } from "./session";
import { Backoff } from "../backoff";

export interface RecorderOptions {
  ffmpegPath: string;
  directory: string;
  /** Camera name for default file names when frames do not carry one. */
  camera: string;
  preRollSec: number;
  preRollMaxBytes: number;
  postRollSec: number;
  /** Length of a recording whose start message has no duration; 0 = until `stop`. */
  defaultDurationSec: number;
  /** A recording longer than this continues in a new file; 0 = no limit. */
  maxDurationSec: number;
  video: VideoSettings;
  secrets?: (string | undefined)[];
  retention?: RetentionSweeper;
  /** An ffmpeg that ran at least this long before it died resets the restart backoff (default 10 s). */
  healthyMs?: number;
}

export interface StartRequest {
  /** Trigger time, epoch ms (same clock as frame.time). */
  time: number;
  /** Seconds after the trigger; undefined = the default duration. */
  duration?: number;
  /** Relative to the directory; confined to it. */
  filename?: string;
  trigger?: { topic?: unknown; payload?: unknown };
}

export type { RecordingInfo };
// Where they were before the split: callers and specs import them from here.
export {
  MAX_BASE_NAME_BYTES,
  MAX_NAME_SUFFIX,
  NAME_MAX_BYTES,
  NAME_SUFFIX_ROOM,
  PATH_MAX_BYTES,
  RecorderError,
  confineFilename,
  ensureWritableDirectory,
  sanitizeCameraName,
  sidecarOf,
  stamp,
} from "./filenames";

interface Active {
  file: string;
  sidecar: string;
  trigger: { topic?: unknown; payload?: unknown };
  triggerTime: number;
  /** The name before a `-N` was added: a continuation after a crash is named from it, never from `file`. */
  base: string;
  /** User's file name (for split parts), or undefined for the default pattern. */
  filename?: string;
  part: number;
  endTime: number;
  /** What set endTime: a duration or a stop. */
  endReason: "duration" | "stop";
  splitAt: number;
  session?: TranscodeSession;
  closing: boolean;
  camera: string;
}

/** The continuation of a recording in a new file (after maxDuration or an ffmpeg restart). */
function nextPart(active: Active): Active {
  return { ...active, part: active.part + 1, session: undefined, closing: false, splitAt: Infinity };
}

/** What a recording is so far: its sidecar and, once closed, msg.recording. */
function recordingInfo(active: Active, reason: string, error?: string): RecordingInfo {
  const s = active.session;
  const start = s?.baseTime ?? 0;
  const end = s?.stats.endTime ?? s?.lastTime ?? start;
  let bytes = 0;
  try {
    bytes = fs.statSync(active.file).size;
  } catch {
    // not written (yet)
  }
  return {
    file: active.file,
    camera: active.camera,
    start,
    end,
    duration: Math.max(0, (end - start) / 1000),
    triggerTime: active.triggerTime,
    frames: s?.stats.framesWritten ?? 0,
    bytes,
    trigger: active.trigger,
    reason,
    ...(error ? { error } : {}),
  };
}

/**
 * Sensor-triggered recordings: a pre-roll ring, start/stop with post-roll, a start during a recording
 * extends it, maxDuration continues in a new file, one fragmented MP4 per recording with a sidecar JSON.
 * Time is frame time (msg.frame.time): a recording ends when a frame past its end arrives, or on tick()
 * when frames stopped. Events: `recording` (RecordingInfo), `progress` (FfmpegProgress), `failure`
 * (message), `dropped` (count).
 */
export interface RecorderEvents {
  recording: [info: RecordingInfo];
  progress: [progress: FfmpegProgress];
  failure: [message: string];
  dropped: [count: number];
}

export class Recorder extends EventEmitter<RecorderEvents> {
  readonly preRoll: PreRollBuffer;
  private readonly preRollMs: number;
  private active?: Active;
  /** Files whose ffmpeg is still finishing them. */
  private readonly closingFiles = new ClosingFiles();
  private latestTime = -Infinity;
  /** Restarts of a dead ffmpeg: 1 s doubling to 30 s, as for live presets. */
  private readonly backoff = new Backoff({ firstMs: 1000, maxMs: 30000 });
  private restartTimer?: NodeJS.Timeout;
  private closed = false;
  dropped = 0;

  constructor(private readonly opts: RecorderOptions) {
    super();
    // Always keep a couple of seconds, so a restarted ffmpeg can carry on where the dead one stopped.
    // One second more than the pre-roll: the frame shown at the clip's start time is older than that time.
    this.preRollMs = Math.max(opts.preRollSec + 1, 2) * 1000;
    this.preRoll = new PreRollBuffer(this.preRollMs, opts.preRollMaxBytes);
  }

  get recording(): boolean {
    return this.active !== undefined && !this.active.closing;
  }

  get currentFile(): string | undefined {
    return this.active?.file;
  }

  /** True for the file being recorded and for files still being closed (retention must leave them alone). */
  isInProgress(file: string): boolean {
    return file === this.active?.file || this.closingFiles.has(file);
  }

  /** Seconds recorded so far in the current file. */
  get elapsedSec(): number {
    const s = this.active?.session;
    if (!s || s.baseTime === undefined || s.lastTime === undefined) return 0;
    return (s.lastTime - s.baseTime) / 1000;
  }

  /** Starts a recording, or extends the running one. Returns the file and whether it was an extension. */
  start(req: StartRequest): { file: string; extended: boolean } {
    if (this.closed) throw new RecorderError("the recorder is closed");
    const durationSec =
      req.duration !== undefined && req.duration > 0 ? req.duration : this.opts.defaultDurationSec;
    const endTime = durationSec > 0 ? req.time + (durationSec + this.opts.postRollSec) * 1000 : Infinity;
    const requested =
      req.filename !== undefined ? confineFilename(this.opts.directory, req.filename) : undefined;
    const active = this.active;
    if (active && !active.closing) {
      if (endTime > active.endTime) {
        active.endTime = endTime;
        active.endReason = "duration";
      }
      return { file: active.file, extended: true };
    }
    ensureWritableDirectory(this.opts.directory);
    this.clearRestart(); // a restart pending for an earlier recording must not hold this one back
    if (requested) prepareRequestedFolder(this.opts.directory, requested, req.filename);
    const from = req.time - this.opts.preRollSec * 1000;
    const first = this.preRoll.since(from);
    // The frame on screen at the clip's start time begins the clip, stamped with that time.
    const before = this.preRoll.lastBefore(from);
    if (before) first.unshift({ ...before, time: from });
    const camera = first[0]?.camera || this.opts.camera;
    const base =
      requested ?? path.join(this.opts.directory, `${sanitizeCameraName(camera)}-${stamp(req.time)}.mp4`);
    const file = uniquePath(base);
    this.active = {
      file,
      base,
      sidecar: sidecarOf(file),
      trigger: safeTrigger(req.trigger),
      triggerTime: req.time,
      filename: requested,
      part: 1,
      endTime,
      endReason: "duration",
      splitAt: Infinity,
      closing: false,
      camera,
    };
    this.backoff.reset();
    for (const frame of first) this.feed(frame);
    return { file, extended: false };
  }

  /** Ends the recording `postRoll` seconds after `time` (frame clock). */
  stop(time: number): void {
    const active = this.active;
    if (!active || active.closing) return;
    const end = time + this.opts.postRollSec * 1000;
    if (end < active.endTime) {
      active.endTime = end;
      active.endReason = "stop";
    }
    // `time` is now on the frame clock: with no post-roll left the file can be closed at once.
    if (active.endTime <= Math.max(this.latestTime, time)) this.closeActive(active.endReason, active.endTime);
  }

  push(frame: Frame): void {
    if (this.closed) return;
    this.latestTime = Math.max(this.latestTime, frame.time);
    this.preRoll.push(frame);
    if (this.active && !this.active.closing) this.feed(frame);
  }

  /** Wall-clock check: ends a recording whose end passed while no frames came. */
  tick(now: number): void {
    const active = this.active;
    if (active && !active.closing && now > active.endTime + 1000) {
      this.closeActive(active.endReason, active.endTime);
    }
  }

  private feed(frame: Frame): void {
    const active = this.active;
    if (!active || active.closing) return;
    if (frame.time > active.endTime) {
      this.closeActive(active.endReason, active.endTime);
      return;
    }
    if (this.restartTimer) return; // ffmpeg died and waits for its restart: the pre-roll ring keeps the frames
    if (active.session && frame.time >= active.splitAt) {
      const next = nextPart(active);
      next.base =
        next.filename ??
        path.join(this.opts.directory, `${sanitizeCameraName(next.camera)}-${stamp(frame.time)}.mp4`);
      try {
        next.file = uniquePath(next.base);
        next.sidecar = sidecarOf(next.file);
        this.closeActive("maxDuration", frame.time);
        this.active = next;
      } catch (err) {
        // No name for the next part: better a longer file than none.
        this.emit("failure", (err as Error).message);
        active.splitAt = frame.time + this.opts.maxDurationSec * 1000;
      }
    }
    const current = this.active;
    if (!current) return;
    if (!current.session) {
      if (!this.openSession(current, frame)) return;
    }
    current.session?.write(frame);
  }

  private openSession(active: Active, frame: Frame): boolean {
    const { width, height } = frameSize(frame);
    const args = [
      ...inputArgs(this.opts.video.encoder),
      ...videoArgs(
        this.opts.video,
        width,
        height,
        false,
        estimateFps(this.preRoll.since().map((f) => f.time)),
      ),
      ...mp4FileArgs(active.file, mp4FileOptionsNow(this.opts.ffmpegPath)),
    ];
    const session = new TranscodeSession({
      ffmpegPath: this.opts.ffmpegPath,
      args,
      width,
      height,
      secrets: this.opts.secrets,
      stdout: "none",
      // The pre-roll (and, after a restart, what came meanwhile) arrives in one burst: keep as much as the ring.
      maxQueueMs: this.preRollMs + 2000,
      maxQueueBytes: this.opts.preRollMaxBytes + 16 * 1024 * 1024,
    });
    active.session = session;
    if (this.opts.maxDurationSec > 0) active.splitAt = frame.time + this.opts.maxDurationSec * 1000;
    session.on("progress", (p: FfmpegProgress) => {
      if (this.active?.session === session) this.emit("progress", p);
    });
    session.on("dropped", () => this.emit("dropped", ++this.dropped));
    session.on("exit", ({ code, signal, stderr, expected }) => {
      if (expected || active.closing) return;
      this.onSessionDied(active, session, code, signal, stderr);
    });
    // Until ffmpeg has the first frame the sidecar says when it is: a crash leaves the right start behind.
    this.writeSidecar(
      active,
      { ...recordingInfo(active, "recording"), start: frame.time, end: frame.time },
      true,
    );
    session.start();
    return true;
  }

  /** ffmpeg died while it should run: close the file as it is and carry on in a new one after a backoff. */
  private onSessionDied(
    active: Active,
    session: TranscodeSession,
    code: number | null,
    signal: string | null,
    stderr: string[],
  ): void {
    const how = describeExit(session, code, signal);
    if (Date.now() - session.startedAt >= (this.opts.healthyMs ?? 10000)) this.backoff.reset();
    const error = `ffmpeg ${how} while recording ${path.basename(active.file)}${stderr.length ? `: ${stderr.slice(-3).join(" | ")}` : ""}`;
    this.emit("failure", error);
    const lastTime = session.lastTime ?? -Infinity;
    const endTime = active.endTime;
    this.closeActive("error", session.lastTime ?? active.endTime, error);
    if (this.closed || endTime <= this.latestTime) return;
    const next = nextPart(active);
    this.active = next;
    const wait = this.backoff.next();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.active !== next || next.closing) return;
      try {
        ensureWritableDirectory(path.dirname(next.base));
      } catch (err) {
        this.emit("failure", (err as Error).message); // ffmpeg will fail too, and be retried with backoff
      }
      try {
        // From the base name: a file that restarts many times is name-2, name-3, ..., never name-2-2-2.
        next.file = uniquePath(next.base);
        next.sidecar = sidecarOf(next.file);
      } catch (err) {
        this.emit("failure", (err as Error).message);
        next.closing = true;
        if (this.active === next) this.active = undefined;
        return;
      }
      // Frames that came while ffmpeg was down are still in the ring.
      for (const frame of this.preRoll.after(lastTime)) this.feed(frame);
    }, wait);
  }

  private writeSidecar(active: Active, info: RecordingInfo, first = false): void {
    try {
      writeSidecar(active.sidecar, info, first);
    } catch (err) {
      this.emit("failure", `could not write ${path.basename(active.sidecar)}: ${(err as Error).message}`);
    }
  }

  private closeActive(reason: string, endTime: number, error?: string): void {
    const active = this.active;
    if (!active || active.closing) return;
    active.closing = true;
    this.active = undefined;
    this.clearRestart(); // the part a pending restart would continue is over
    const session = active.session;
    if (!session) return; // no frame arrived: nothing was written
    this.closingFiles.add(
      active.file,
      session.finish(endTime),
      (release) => {
        const info = recordingInfo(active, reason, error);
        if (info.bytes === 0) {
          // ffmpeg could not write anything (disk full, directory gone): leave no empty file behind.
          fs.rmSync(active.file, { force: true });
          fs.rmSync(active.sidecar, { force: true });
          return;
        }
        this.writeSidecar(active, info);
        release();
        this.emit("recording", info);
        return this.sweep();
      },
      (err) => this.emit("failure", err.message),
    );
  }

  /** Applies retention now (also run after each closed recording). */
  async sweep(): Promise<void> {
    const retention = this.opts.retention;
    if (!retention?.enabled) return;
    await retention.sweep();
  }

  private clearRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
  }

  /** Finishes the current recording (reason `close`, ending at `now`) and waits for every file to be closed. */
  async close(now = this.latestTime): Promise<void> {
    this.clearRestart();
    const active = this.active;
    if (active && !active.closing) this.closeActive("close", Math.min(active.endTime, now));
    this.closed = true;
    await this.closingFiles.all();
  }

  /** Resolves when the current ffmpeg took every frame given so far (lets tests and benchmarks feed fast). */
  drained(): Promise<void> {
    return this.active?.session?.drained() ?? Promise.resolve();
  }

  /** Kills ffmpeg at once (tests: a crash must leave a playable file). */
  killFfmpeg(): number | undefined {
    const session = this.active?.session;
    const pid = session?.proc.pid;
    session?.kill();
    return pid;
  }

  /** The running ffmpeg pids (current and finishing), for tests and diagnostics. */
  get sessionPid(): number | undefined {
    return this.active?.session?.proc.pid;
  }
}
