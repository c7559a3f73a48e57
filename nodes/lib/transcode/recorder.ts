import { EventEmitter } from "events";
import path from "path";
import type { FfmpegProgress } from "../ffmpeg";
import type { Frame } from "../media";
import type { RecordingInfo } from "../messages/recording";
import { PreRollBuffer } from "./preroll";
import type { RetentionSweeper } from "./retention";
import { RecorderError, confineFilename, ensureWritableDirectory, prepareRequestedFolder } from "./filenames";
import { safeTrigger, writeSidecar } from "./sidecar";
import { ClosingFiles } from "./closing-files";
import type { VideoSettings } from "./args";
import { describeExit, type SessionExit, type TranscodeSession } from "./session";
import {
  closedPartInfo,
  defaultBase,
  firstPart,
  nextPart,
  partSession,
  recordingInfo,
  renamePart,
  splitPart,
  type RecordingPart,
} from "./recording-part";
import { RecorderRestarts } from "./recorder-restarts";
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
  private active?: RecordingPart;
  /** Files whose ffmpeg is still finishing them. */
  private readonly closingFiles = new ClosingFiles();
  private latestTime = -Infinity;
  /** Restarts of a dead ffmpeg: 1 s doubling to 30 s, as for live presets. */
  private readonly backoff = new Backoff({ firstMs: 1000, maxMs: 30000 });
  private readonly restarts: RecorderRestarts;
  private closed = false;
  dropped = 0;

  constructor(private readonly opts: RecorderOptions) {
    super();
    // Always keep a couple of seconds, so a restarted ffmpeg can carry on where the dead one stopped.
    // One second more than the pre-roll: the frame shown at the clip's start time is older than that time.
    this.preRollMs = Math.max(opts.preRollSec + 1, 2) * 1000;
    this.preRoll = new PreRollBuffer(this.preRollMs, opts.preRollMaxBytes);
    this.restarts = new RecorderRestarts(opts.healthyMs ?? 10000, this.backoff);
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
    this.restarts.clear(); // a restart pending for an earlier recording must not hold this one back
    if (requested) prepareRequestedFolder(this.opts.directory, requested, req.filename);
    // The frame on screen at the clip's start time begins the clip, stamped with that time.
    const first = this.preRoll.clipFrom(req.time - this.opts.preRollSec * 1000);
    const camera = first[0]?.camera || this.opts.camera;
    const base = requested ?? defaultBase(this.opts.directory, camera, req.time);
    const trigger = safeTrigger(req.trigger);
    const part = firstPart(base, { trigger, triggerTime: req.time, filename: requested, endTime, camera });
    this.active = part;
    this.restarts.reset();
    for (const frame of first) this.feed(frame);
    return { file: part.file, extended: false };
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
    if (this.restarts.pending) return; // ffmpeg died and waits for its restart: the pre-roll ring keeps the frames
    if (active.session && frame.time >= active.splitAt) {
      try {
        const next = splitPart(active, this.opts.directory, frame.time);
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

  private openSession(active: RecordingPart, frame: Frame): boolean {
    const times = this.preRoll.since().map((f) => f.time);
    const session = partSession({ ...this.opts, preRollMs: this.preRollMs }, active, frame, times);
    active.session = session;
    if (this.opts.maxDurationSec > 0) active.splitAt = frame.time + this.opts.maxDurationSec * 1000;
    session.on("progress", (p: FfmpegProgress) => {
      if (this.active?.session === session) this.emit("progress", p);
    });
    session.on("dropped", () => this.emit("dropped", ++this.dropped));
    session.on("exit", (exit) => {
      if (exit.expected || active.closing) return;
      this.onSessionDied(active, session, exit);
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
    active: RecordingPart,
    session: TranscodeSession,
    { code, signal, stderr }: SessionExit,
  ): void {
    const how = describeExit(session, code, signal);
    this.restarts.died(session);
    const error = `ffmpeg ${how} while recording ${path.basename(active.file)}${stderr.length ? `: ${stderr.slice(-3).join(" | ")}` : ""}`;
    this.emit("failure", error);
    const lastTime = session.lastTime ?? -Infinity;
    const endTime = active.endTime;
    this.closeActive("error", session.lastTime ?? active.endTime, error);
    if (this.closed || endTime <= this.latestTime) return;
    const next = nextPart(active);
    this.active = next;
    this.restarts.schedule(() => this.resume(next, lastTime));
  }

  /** The backoff after a crash is over: the recording carries on in `next` from the frames after `lastTime`. */
  private resume(next: RecordingPart, lastTime: number): void {
    if (this.active !== next || next.closing) return;
    try {
      ensureWritableDirectory(path.dirname(next.base));
    } catch (err) {
      this.emit("failure", (err as Error).message); // ffmpeg will fail too, and be retried with backoff
    }
    try {
      // From the base name: a file that restarts many times is name-2, name-3, ..., never name-2-2-2.
      renamePart(next);
    } catch (err) {
      this.emit("failure", (err as Error).message);
      next.closing = true;
      if (this.active === next) this.active = undefined;
      return;
    }
    // Frames that came while ffmpeg was down are still in the ring.
    for (const frame of this.preRoll.after(lastTime)) this.feed(frame);
  }

  private writeSidecar(active: RecordingPart, info: RecordingInfo, first = false): void {
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
    this.restarts.clear(); // the part a pending restart would continue is over
    const session = active.session;
    if (!session) return; // no frame arrived: nothing was written
    this.closingFiles.add(
      active.file,
      session.finish(endTime),
      (release) => {
        const info = closedPartInfo(active, reason, error);
        if (!info) return;
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

  /** Finishes the current recording (reason `close`, ending at `now`) and waits for every file to be closed. */
  async close(now = this.latestTime): Promise<void> {
    this.restarts.clear();
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
