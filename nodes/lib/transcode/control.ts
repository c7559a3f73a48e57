/**
 * The control messages of `ffmpeg transcode`: `msg.action` start or stop, with `msg.duration` (seconds)
 * and `msg.filename` for a recording. A message only picks these; it never reaches ffmpeg's arguments.
 */
import type { Message } from "./settings";

export interface ControlMessage {
  action?: unknown;
  duration?: unknown;
  filename?: unknown;
  topic?: unknown;
  payload?: unknown;
}

export interface StartRequestFields {
  duration?: number;
  filename?: string;
  trigger: { topic?: unknown; payload?: unknown };
}

/** The longest recording a message may ask for, in seconds. */
export const MAX_REQUEST_SECONDS = 86400;

/** `msg.action`, or (as an i18n key) why it is neither start nor stop. */
export function readAction(msg: ControlMessage): "start" | "stop" | { error: Message } {
  const action = msg.action;
  if (action === "start" || action === "stop") return action;
  return { error: { key: "errors.badAction", params: { action: String(action) } } };
}

/** What a start message asks of a recording, or (as an i18n key) why its duration cannot be followed. */
export function readStart(msg: ControlMessage): StartRequestFields | { error: Message } {
  let duration: number | undefined;
  if (msg.duration !== undefined && msg.duration !== null && msg.duration !== "") {
    duration = Number(msg.duration);
    if (!Number.isFinite(duration) || duration <= 0 || duration > MAX_REQUEST_SECONDS) {
      return { error: { key: "errors.badDuration" } };
    }
  }
  return {
    duration,
    // Checked by the recorder (confineFilename), which refuses anything but a relative path in its directory.
    filename: msg.filename === undefined ? undefined : (msg.filename as string),
    trigger: { topic: msg.topic, payload: msg.payload },
  };
}
