import type { NodeMessage } from "node-red";

/** The `msg.mp4` field of an fMP4 message (see `ffmpeg transcode`). */
export interface Mp4Info {
  type: "init" | "fragment";
  seq: number;
  /** Seconds (fragments). */
  duration: number;
  /** Epoch ms of the fragment's first frame. */
  time: number;
  /** RFC 6381, e.g. "avc1.64001f". */
  codec: string;
  width: number;
  height: number;
  /** Fragments: starts with a keyframe (IDR), where a consumer that fell behind may resume. Missing = true. */
  keyframe?: boolean;
  /** Changes whenever the init (and so the stream's parameters) changes; fragments name the init they belong to. */
  initId?: number;
  /** The camera-source node id, when the video came straight from camera connect. */
  cameraId?: string;
}

/** What is wrong with one `msg.mp4` field: its name, the value given and the rule it breaks. */
export interface Mp4Problem {
  field: keyof Mp4Info;
  value: unknown;
  rule: "count" | "seconds" | "epoch" | "pixels" | "codec" | "boolean" | "id";
}

/** Latest epoch ms an HLS date can show (RFC 3339 has four-digit years): 9999-12-31T23:59:59.999Z. */
export const MAX_EPOCH_MS = 253402300799999;
/** Longest fragment accepted, in seconds (ffmpeg transcode cuts at most 60 s between keyframes). */
export const MAX_FRAGMENT_SECONDS = 3600;

const RULES: Record<Mp4Problem["rule"], (x: unknown) => boolean> = {
  count: (x) => Number.isSafeInteger(x) && (x as number) >= 0,
  seconds: (x) => typeof x === "number" && x >= 0 && x <= MAX_FRAGMENT_SECONDS,
  epoch: (x) => typeof x === "number" && x >= 0 && x <= MAX_EPOCH_MS,
  pixels: (x) => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 65535,
  codec: (x) => typeof x === "string" && x.length <= 100,
  boolean: (x) => typeof x === "boolean",
  id: (x) => typeof x === "string" && x.length <= 100,
};

/**
 * Reads `msg.mp4`: undefined when it is not an fMP4 description (no type "init" or "fragment"), the
 * first field that breaks its rule, or the info with defaults for the fields left out.
 */
export function readMp4Info(value: unknown): Mp4Info | Mp4Problem | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Partial<Record<keyof Mp4Info, unknown>>;
  if (v.type !== "init" && v.type !== "fragment") return undefined;
  const fields: [keyof Mp4Info, Mp4Problem["rule"]][] = [
    ["seq", "count"],
    ["duration", "seconds"],
    ["time", "epoch"],
    ["codec", "codec"],
    ["width", "pixels"],
    ["height", "pixels"],
    ["keyframe", "boolean"],
    ["initId", "count"],
    ["cameraId", "id"],
  ];
  for (const [field, rule] of fields) {
    if (v[field] !== undefined && !RULES[rule](v[field])) return { field, value: v[field], rule };
  }
  const n = (x: unknown, d: number): number => (x === undefined ? d : (x as number));
  const info: Mp4Info = {
    type: v.type,
    seq: n(v.seq, 0),
    duration: n(v.duration, 0),
    time: n(v.time, Date.now()),
    codec: typeof v.codec === "string" ? v.codec : "",
    width: n(v.width, 0),
    height: n(v.height, 0),
  };
  if (v.keyframe !== undefined) info.keyframe = v.keyframe as boolean;
  if (v.initId !== undefined) info.initId = v.initId as number;
  if (v.cameraId !== undefined) info.cameraId = v.cameraId as string;
  return info;
}

/** Reads `msg.mp4`; undefined when it is not an fMP4 description or a field is out of range. */
export function mp4InfoFromMessage(value: unknown): Mp4Info | undefined {
  const info = readMp4Info(value);
  return info && "type" in info ? info : undefined;
}

/** An fMP4 message: an init segment or a fragment in `payload`, the camera in `topic`, its description in `mp4`. */
export interface Mp4Message extends NodeMessage {
  payload: Buffer;
  topic: string;
  mp4: Mp4Info;
}

/** Writes an fMP4 message as `ffmpeg transcode` sends it (the data is shared, never copied). */
export function mp4Message(data: Buffer, info: Mp4Info, topic: string): Mp4Message {
  return { payload: data, topic, mp4: info };
}
