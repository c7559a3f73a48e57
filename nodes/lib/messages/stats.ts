import type { NodeMessage } from "node-red";
import type { CameraState, CameraStateName, CameraStats } from "../camera/camera";

/** `msg.payload` of a stats message: the camera's counters with its state and measured fps. */
export interface StatsPayload extends CameraStats {
  state: CameraStateName;
  fps: number;
}

/** A stats message as `camera connect` sends it on its second output every `stats` seconds. */
export interface StatsMessage extends NodeMessage {
  topic: string;
  payload: StatsPayload;
}

/** Writes a stats message for the camera called `camera` (a copy of the counters at this moment). */
export function statsMessage(camera: string, stats: CameraStats, state: CameraState): StatsMessage {
  return { topic: `${camera}/stats`, payload: { ...stats, state: state.state, fps: state.fps } };
}

const COUNTERS: (keyof CameraStats)[] = [
  "framesIn",
  "framesEmitted",
  "framesDropped",
  "bytesIn",
  "reconnects",
  "warnings",
  "users",
];

/** Reads a stats message back, or undefined when msg is not one. */
export function statsFromMessage(msg: { topic?: unknown; payload?: unknown }): StatsPayload | undefined {
  const p = msg.payload;
  if (typeof msg.topic !== "string" || !msg.topic.endsWith("/stats")) return undefined;
  if (typeof p !== "object" || p === null) return undefined;
  const v = p as Partial<Record<keyof StatsPayload, unknown>>;
  if (!COUNTERS.every((k) => typeof v[k] === "number")) return undefined;
  if (typeof v.state !== "string" || typeof v.fps !== "number") return undefined;
  return p as StatsPayload;
}
