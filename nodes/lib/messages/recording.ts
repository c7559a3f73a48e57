import type { NodeMessage } from "node-red";

/** The `msg.recording` field of a closed recording (see `ffmpeg transcode`, mp4 preset). */
export interface RecordingInfo {
  file: string;
  camera: string;
  /** Epoch ms of the first frame and of the end of the last one. */
  start: number;
  end: number;
  /** Seconds. */
  duration: number;
  /** Epoch ms of the start message that began the recording (same clock as start and end). */
  triggerTime: number;
  frames: number;
  bytes: number;
  trigger: { topic?: unknown; payload?: unknown };
  /** Why the file was closed: duration, stop, maxDuration, close, error. */
  reason: string;
  error?: string;
}

/** A closed recording: the file's path in `payload`, the camera in `topic`, the details in `recording`. */
export interface RecordingMessage extends NodeMessage {
  payload: string;
  topic: string;
  recording: RecordingInfo;
}

/** Writes the message `ffmpeg transcode` sends when a recording's file is closed. */
export function recordingMessage(info: RecordingInfo): RecordingMessage {
  return { payload: info.file, topic: info.camera, recording: info };
}

/** Reads `msg.recording` back; undefined when msg is not a recording message (no file name). */
export function recordingFromMessage(msg: { recording?: unknown }): RecordingInfo | undefined {
  const r = msg.recording;
  if (typeof r !== "object" || r === null) return undefined;
  const info = r as Partial<RecordingInfo>;
  return typeof info.file === "string" && typeof info.start === "number" && typeof info.end === "number"
    ? (r as RecordingInfo)
    : undefined;
}
