import type { NodeMessage } from "node-red";

export type ViewerEvent = "connect" | "disconnect";
export type ViewerMessageKind = "mjpeg" | "mp4" | "hls" | "ws" | "webrtc";

/** The viewer a `viewers` message is about. */
export interface ViewerRef {
  address: string;
  kind: ViewerMessageKind;
}

/** What `http stream out` sends when a viewer comes or goes: the viewer count in `payload`. */
export interface ViewerMessage extends NodeMessage {
  topic: "viewers";
  payload: number;
  event: ViewerEvent;
  viewer: ViewerRef;
  /** The stream's path (undefined only on a node that failed to mount). */
  path: string | undefined;
}

/** Writes a viewer connect/disconnect message. */
export function viewerMessage(e: {
  event: ViewerEvent;
  viewer: ViewerRef;
  count: number;
  path: string | undefined;
}): ViewerMessage {
  return {
    topic: "viewers",
    payload: e.count,
    event: e.event,
    viewer: { address: e.viewer.address, kind: e.viewer.kind },
    path: e.path,
  };
}

const KINDS: readonly string[] = ["mjpeg", "mp4", "hls", "ws", "webrtc"];

/** Reads a viewer message back; undefined when msg is not one. */
export function viewerFromMessage(msg: {
  topic?: unknown;
  payload?: unknown;
  event?: unknown;
  viewer?: unknown;
  path?: unknown;
}): { event: ViewerEvent; viewer: ViewerRef; count: number; path: string | undefined } | undefined {
  if (msg.topic !== "viewers" || typeof msg.payload !== "number") return undefined;
  if (msg.event !== "connect" && msg.event !== "disconnect") return undefined;
  const v = msg.viewer as { address?: unknown; kind?: unknown } | null | undefined;
  if (typeof v !== "object" || v === null || typeof v.address !== "string") return undefined;
  if (typeof v.kind !== "string" || !KINDS.includes(v.kind)) return undefined;
  return {
    event: msg.event,
    viewer: { address: v.address, kind: v.kind as ViewerMessageKind },
    count: msg.payload,
    path: typeof msg.path === "string" ? msg.path : undefined,
  };
}
