import type { NodeMessage } from "node-red";
import { monotonicEpochMs, type Frame, type FrameInfo, type JpegFrame } from "../media";
import { MAX_SIDE } from "../settings";

/**
 * `msg.frame`: the frame's description, and the id of the `camera-source` node it came from, so that a
 * consumer finds that camera by identity (two unnamed cameras share a name).
 */
export interface FrameMessageInfo extends FrameInfo {
  cameraId?: string;
}

/** A frame message as `camera connect` sends it: the JPEG in `payload`, its description in `frame`. */
export interface FrameMessage extends NodeMessage {
  payload: Buffer;
  topic: string;
  frame: FrameMessageInfo;
}

/**
 * Writes a frame message (the JPEG is shared, never copied). `cameraId` (the camera-source node's id) goes
 * into `msg.frame.cameraId` when given: it tells two cameras apart even when they share a name.
 */
export function frameMessage(frame: Frame, cameraId?: string): FrameMessage {
  const info: FrameMessageInfo = {
    seq: frame.seq,
    time: frame.time,
    camera: frame.camera,
    width: frame.width,
    height: frame.height,
  };
  if (cameraId !== undefined) info.cameraId = cameraId;
  return { payload: frame.data, topic: frame.camera, frame: info };
}

/** The camera-source id a frame message names (`msg.frame.cameraId`), or undefined. */
export function cameraIdFromMessage(msg: object): string | undefined {
  const info: unknown = "frame" in msg ? msg.frame : undefined;
  if (typeof info !== "object" || info === null || !("cameraId" in info)) return undefined;
  const id = info.cameraId;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** How far msg.frame.time may be from now before it is taken for a lie (a bad clock, a hand-made message). */
const MAX_TIME_SKEW_MS = 86400000;
const side = (v: unknown): number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_SIDE ? (v as number) : 0;

/** Reads a frame message back into a Frame, or undefined when msg is not one. Fields that lie are replaced. */
export function frameFromMessage(msg: {
  payload?: unknown;
  frame?: unknown;
  topic?: unknown;
}): JpegFrame | undefined {
  if (!Buffer.isBuffer(msg.payload)) return undefined;
  const info = (typeof msg.frame === "object" && msg.frame !== null ? msg.frame : {}) as Partial<FrameInfo>;
  const now = monotonicEpochMs();
  const time = info.time;
  return {
    kind: "jpeg",
    data: msg.payload,
    seq: typeof info.seq === "number" ? info.seq : 0,
    time:
      typeof time === "number" && Number.isFinite(time) && Math.abs(time - now) <= MAX_TIME_SKEW_MS
        ? time
        : now,
    camera: typeof info.camera === "string" ? info.camera : typeof msg.topic === "string" ? msg.topic : "",
    width: side(info.width),
    height: side(info.height),
  };
}
