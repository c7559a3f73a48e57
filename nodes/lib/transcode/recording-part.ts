/**
 * One part of a recording: the file it is written to, its sidecar, the ffmpeg session that writes it, and
 * what it holds (msg.recording). A recording is one part, or several after maxDuration or an ffmpeg restart.
 */
import fs from "fs";
import path from "path";
import type { Frame } from "../media";
import type { RecordingInfo } from "../messages/recording";
import {
  estimateFps,
  inputArgs,
  mp4FileArgs,
  mp4FileOptionsNow,
  videoArgs,
  type VideoSettings,
} from "./args";
import { sanitizeCameraName, sidecarOf, stamp, uniquePath } from "./filenames";
import { frameSize, TranscodeSession } from "./session";

/** What recordingInfo reads of the ffmpeg run writing a part (a TranscodeSession or an Mp4InputSession). */
export interface PartSessionView {
  baseTime?: number;
  lastTime?: number;
  stats: { framesWritten: number; endTime?: number };
}

export interface RecordingPart<S extends PartSessionView = TranscodeSession> {
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
  session?: S;
  closing: boolean;
  camera: string;
}

/** The file name of a recording without a name of its own: `<camera>-<stamp>.mp4` in the directory. */
export function defaultBase(directory: string, camera: string, time: number): string {
  return path.join(directory, `${sanitizeCameraName(camera)}-${stamp(time)}.mp4`);
}

/** The first part of a recording, in a free file name made from `base`. */
export function firstPart<S extends PartSessionView = TranscodeSession>(
  base: string,
  fields: Pick<RecordingPart, "trigger" | "triggerTime" | "filename" | "endTime" | "camera">,
): RecordingPart<S> {
  const file = uniquePath(base);
  const part = { file, base, sidecar: sidecarOf(file), part: 1, splitAt: Infinity, closing: false };
  return { ...part, ...fields, endReason: "duration" };
}

/** Gives `part` the first free file name made from its base (name-2, name-3, ...; never name-2-2). */
export function renamePart<S extends PartSessionView>(part: RecordingPart<S>): void {
  part.file = uniquePath(part.base);
  part.sidecar = sidecarOf(part.file);
}

/** The continuation of a recording in a new file (after maxDuration or an ffmpeg restart). */
export function nextPart<S extends PartSessionView>(part: RecordingPart<S>): RecordingPart<S> {
  return { ...part, part: part.part + 1, session: undefined, closing: false, splitAt: Infinity };
}

/** The part after maxDuration, named from `time` (or the user's name); throws when no name is free. */
export function splitPart<S extends PartSessionView>(
  part: RecordingPart<S>,
  directory: string,
  time: number,
): RecordingPart<S> {
  const next = nextPart(part);
  next.base = next.filename ?? defaultBase(directory, next.camera, time);
  renamePart(next);
  return next;
}

/** What a recording is so far: its sidecar and, once closed, msg.recording. */
export function recordingInfo(
  part: RecordingPart<PartSessionView>,
  reason: string,
  error?: string,
): RecordingInfo {
  const s = part.session;
  const start = s?.baseTime ?? 0;
  const end = s?.stats.endTime ?? s?.lastTime ?? start;
  let bytes = 0;
  try {
    bytes = fs.statSync(part.file).size;
  } catch {
    // not written (yet)
  }
  return {
    file: part.file,
    camera: part.camera,
    start,
    end,
    duration: Math.max(0, (end - start) / 1000),
    triggerTime: part.triggerTime,
    frames: s?.stats.framesWritten ?? 0,
    bytes,
    trigger: part.trigger,
    reason,
    ...(error ? { error } : {}),
  };
}

/**
 * What a closed part holds; undefined (and no file or sidecar left behind) when ffmpeg could not write
 * anything (disk full, directory gone).
 */
export function closedPartInfo(
  part: RecordingPart<PartSessionView>,
  reason: string,
  error?: string,
): RecordingInfo | undefined {
  const info = recordingInfo(part, reason, error);
  if (info.bytes > 0) return info;
  fs.rmSync(part.file, { force: true });
  fs.rmSync(part.sidecar, { force: true });
  return undefined;
}

export interface PartSessionOptions {
  ffmpegPath: string;
  video: VideoSettings;
  secrets?: (string | undefined)[];
  /** The pre-roll ring's span and byte limit: the burst a (re)started ffmpeg is given at once. */
  preRollMs: number;
  preRollMaxBytes: number;
}

/** The ffmpeg session (not started) that writes `part` as a fragmented MP4, sized from its first frame. */
export function partSession(
  opts: PartSessionOptions,
  part: RecordingPart,
  frame: Frame,
  recentTimes: number[],
): TranscodeSession {
  const { width, height } = frameSize(frame);
  const args = [
    ...inputArgs(opts.video.encoder),
    ...videoArgs(opts.video, width, height, false, estimateFps(recentTimes)),
    ...mp4FileArgs(part.file, mp4FileOptionsNow(opts.ffmpegPath)),
  ];
  return new TranscodeSession({
    ffmpegPath: opts.ffmpegPath,
    args,
    width,
    height,
    secrets: opts.secrets,
    stdout: "none",
    // The pre-roll (and, after a restart, what came meanwhile) arrives in one burst: keep as much as the ring.
    maxQueueMs: opts.preRollMs + 2000,
    maxQueueBytes: opts.preRollMaxBytes + 16 * 1024 * 1024,
  });
}
