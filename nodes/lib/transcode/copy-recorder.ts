/**
 * Recordings of compressed input (msg.mp4): no encoder, ffmpeg reads the camera's fMP4 on stdin and copies
 * video and audio into a fragmented MP4 file (a killed ffmpeg leaves every finished fragment playable, as
 * for JPEG recordings). The pre-roll is a ring of GOPs; a clip starts at the keyframe at or before
 * trigger - preRoll. postRoll, retrigger, maxDuration, retention, sidecar and msg.recording as Recorder.
 * A new initId (camera restart, resolution change) closes the running part and continues in a new one.
 * An ffmpeg that dies closes its part (reason `error`) and the recording carries on in a new part after a
 * backoff (1 s doubling to 30 s, as the JPEG Recorder), from the GOP the dead one was writing.
 */
import { EventEmitter } from "events";
import path from "path";
import type { FfmpegProgress } from "../ffmpeg";
import { mp4FileArgs, mp4FileOptionsNow } from "./args";
import { ClosingFiles } from "./closing-files";
import { RecorderError, confineFilename, ensureWritableDirectory, prepareRequestedFolder } from "./filenames";
import { GopRing, Mp4InputSession, type Mp4Unit } from "./mp4-input";
import type { RecorderEvents, RecorderOptions, StartRequest } from "./recorder";
import { RecorderRestarts } from "./recorder-restarts";
import {
  closedPartInfo,
  defaultBase,
  firstPart,
  nextPart,
  recordingInfo,
  renamePart,
  splitPart,
  type RecordingPart,
} from "./recording-part";
import { safeTrigger, writeSidecar } from "./sidecar";

type CopyPart = RecordingPart<Mp4InputSession>;

export class CopyRecorder extends EventEmitter<RecorderEvents> {
  readonly preRoll: GopRing;
  private active?: CopyPart;
  private readonly closingFiles = new ClosingFiles();
  private latestTime = -Infinity;
  private closed = false;
  /** Restarts of a dead ffmpeg: 1 s doubling to 30 s, as for the JPEG recorder. */
  private readonly restarts: RecorderRestarts;
  dropped = 0;

  constructor(private readonly opts: Omit<RecorderOptions, "video">) {
    super();
    // At least 2 s: a restarted ffmpeg carries on from the GOP the dead one was writing.
    this.preRoll = new GopRing(Math.max(opts.preRollSec, 2) * 1000, opts.preRollMaxBytes);
    this.restarts = new RecorderRestarts(opts.healthyMs ?? 10000);
  }

  get recording(): boolean {
    return this.active !== undefined && !this.active.closing;
  }

  get currentFile(): string | undefined {
    return this.active?.file;
  }

  isInProgress(file: string): boolean {
    return file === this.active?.file || this.closingFiles.has(file);
  }

  get elapsedSec(): number {
    const s = this.active?.session;
    if (!s || s.baseTime === undefined || s.lastTime === undefined) return 0;
    return (s.lastTime - s.baseTime) / 1000;
  }

  get sessionPid(): number | undefined {
    return this.active?.session?.proc.pid;
  }

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
    this.restarts.reset();
    if (requested) prepareRequestedFolder(this.opts.directory, requested, req.filename);
    const camera = this.opts.camera;
    const base = requested ?? defaultBase(this.opts.directory, camera, req.time);
    const trigger = safeTrigger(req.trigger);
    const part: CopyPart = firstPart(base, {
      trigger,
      triggerTime: req.time,
      filename: requested,
      endTime,
      camera,
    });
    this.active = part;
    for (const gop of this.preRoll.from(req.time - this.opts.preRollSec * 1000))
      for (const f of gop.fragments) this.feed(f, gop.init);
    return { file: part.file, extended: false };
  }

  stop(time: number): void {
    const active = this.active;
    if (!active || active.closing) return;
    const end = time + this.opts.postRollSec * 1000;
    if (end < active.endTime) {
      active.endTime = end;
      active.endReason = "stop";
    }
    if (active.endTime <= Math.max(this.latestTime, time)) this.closeActive(active.endReason);
  }

  /** An init or fragment of compressed input. */
  push(unit: Mp4Unit): void {
    if (this.closed) return;
    if (unit.info.type === "init") {
      this.preRoll.pushInit(unit);
      return;
    }
    this.latestTime = Math.max(this.latestTime, unit.time);
    const gop = this.preRoll.pushFragment(unit);
    if (gop && this.active && !this.active.closing) this.feed(unit, gop.init);
  }

  tick(now: number): void {
    const active = this.active;
    if (active && !active.closing && now > active.endTime + 1000) this.closeActive(active.endReason);
  }

  private feed(f: Mp4Unit, init: Mp4Unit): void {
    const active = this.active;
    if (!active || active.closing) return;
    if (f.time >= active.endTime) return this.closeActive(active.endReason);
    if (this.restarts.pending) return; // ffmpeg died and waits for its restart: the GOP ring keeps the input
    const s = active.session;
    // A new stream (initId) or maxDuration: close this part at a keyframe and go on in the next one.
    const newInit = s !== undefined && s.initId !== init.initId;
    if (s && f.keyframe && (newInit || f.time >= active.splitAt)) {
      try {
        const next = splitPart(active, this.opts.directory, f.time) as CopyPart;
        this.closeActive(newInit ? "newStream" : "maxDuration");
        this.active = next;
      } catch (err) {
        this.emit("failure", (err as Error).message);
        if (newInit) return;
        active.splitAt = f.time + this.opts.maxDurationSec * 1000;
      }
    }
    const current = this.active;
    if (!current) return;
    if (!current.session) {
      if (!f.keyframe) return;
      this.openSession(current, init, f);
    }
    current.session?.write(f);
  }

  private openSession(part: CopyPart, init: Mp4Unit, first: Mp4Unit): void {
    const session = new Mp4InputSession({
      ffmpegPath: this.opts.ffmpegPath,
      outputArgs: [
        "-map",
        "0",
        "-c",
        "copy",
        ...mp4FileArgs(part.file, mp4FileOptionsNow(this.opts.ffmpegPath)),
      ],
      secrets: this.opts.secrets,
      maxQueueBytes: this.opts.preRollMaxBytes + 16 * 1024 * 1024,
    });
    part.session = session;
    if (this.opts.maxDurationSec > 0) part.splitAt = first.time + this.opts.maxDurationSec * 1000;
    session.on("progress", (p: FfmpegProgress) => {
      if (this.active?.session === session) this.emit("progress", p);
    });
    session.on("dropped", () => this.emit("dropped", ++this.dropped));
    session.on("exit", ({ code, signal, stderr, expected }) => {
      if (expected || part.closing) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const error = `ffmpeg ${how} while recording ${path.basename(part.file)}${stderr.length ? `: ${stderr.slice(-3).join(" | ")}` : ""}`;
      this.onSessionDied(part, session, error);
    });
    this.sidecar(part, { ...recordingInfo(part, "recording"), start: first.time, end: first.time }, true);
    session.start(init);
  }

  /** ffmpeg died while it should run: close the file as it is and carry on in a new part after a backoff. */
  private onSessionDied(part: CopyPart, session: Mp4InputSession, error: string): void {
    this.restarts.died(session);
    this.emit("failure", error);
    const lastTime = session.lastTime ?? -Infinity;
    const endTime = part.endTime;
    this.closeActive("error", error);
    if (this.closed || endTime <= this.latestTime) return;
    const next = nextPart(part);
    this.active = next;
    this.restarts.schedule(() => this.resume(next, lastTime));
  }

  /**
   * The backoff after a crash is over: the recording carries on in `next` from the GOP at or before the last
   * fragment the dead ffmpeg was given (it may not have written that GOP: better a second twice than a gap).
   */
  private resume(next: CopyPart, lastTime: number): void {
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
    for (const gop of this.preRoll.from(lastTime - 1)) for (const f of gop.fragments) this.feed(f, gop.init);
  }

  private sidecar(part: CopyPart, info: ReturnType<typeof recordingInfo>, first = false): void {
    try {
      writeSidecar(part.sidecar, info, first);
    } catch (err) {
      this.emit("failure", `could not write ${path.basename(part.sidecar)}: ${(err as Error).message}`);
    }
  }

  private closeActive(reason: string, error?: string): void {
    const active = this.active;
    if (!active || active.closing) return;
    active.closing = true;
    this.active = undefined;
    this.restarts.clear(); // the part a pending restart would continue is over
    const session = active.session;
    if (!session) return;
    this.closingFiles.add(
      active.file,
      session.finish(),
      (release) => {
        const info = closedPartInfo(active, reason, error);
        if (!info) return;
        this.sidecar(active, info);
        release();
        this.emit("recording", info);
        return this.sweep();
      },
      (err) => this.emit("failure", err.message),
    );
  }

  async sweep(): Promise<void> {
    const retention = this.opts.retention;
    if (!retention?.enabled) return;
    await retention.sweep();
  }

  async close(): Promise<void> {
    this.restarts.clear();
    const active = this.active;
    if (active && !active.closing) this.closeActive("close");
    this.closed = true;
    await this.closingFiles.all();
  }

  killFfmpeg(): number | undefined {
    const session = this.active?.session;
    const pid = session?.proc.pid;
    session?.kill();
    return pid;
  }
}
