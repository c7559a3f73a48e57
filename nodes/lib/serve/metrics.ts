import type { ViewerInfo, ViewerKind } from "./viewer";

/** The stream's counters as `<path>/status.json` and `<path>/metrics` show them. */

export type Upstream = "live" | "offline";

/** One sample for `<path>/metrics`; the `path` label is added. */
export interface MetricRow {
  name: string;
  type: "gauge" | "counter";
  help: string;
  value: number;
  labels?: Record<string, string>;
}

export interface StreamStats {
  path: string;
  camera: string;
  upstream: Upstream;
  lastFrame: { seq: number; time: number; width: number; height: number; bytes: number } | null;
  framesIn: number;
  fpsIn: number;
  framesSent: number;
  framesSkipped: number;
  bytesOut: number;
  viewerCount: number;
  viewersDropped: number;
  maxClients: number;
  maxPerAddress: number;
  /** `snapshot.jpg?wait=1` requests waiting for the next frame (they count against maxClients). */
  snapshotWaiters: number;
  maxKbps: number;
  pendingFrames: number;
  viewers: ViewerInfo[];
  fmp4: { init: boolean; segments: number; bytes: number; mediaSequence: number | null; restarts: number };
  /** The compressed video on the wire (null before its first init). */
  video: VideoStats | null;
}

export interface VideoStats {
  /** RFC 6381 codec string of all tracks, e.g. "avc1.64001f,mp4a.40.2". */
  codec: string;
  /** "H.264", "H.265" or the sample entry as it came. */
  format: string;
  width: number;
  height: number;
  /** The video came from `camera connect` as the camera sent it (msg.mp4.cameraId), not from a transcode node. */
  passthrough: boolean;
  fragmentsIn: number;
  keyframesIn: number;
  /** Fragments of the GOP being collected (what a `stream.mp4` joiner starts with). */
  gopFragments: number;
  /** Where snapshots and MJPEG pictures come from: JPEG frames on the wire, or the video decoded. */
  jpegSource: "frames" | "decoded" | "none";
  /** The live decoder for MJPEG viewers runs now. */
  decoderRunning: boolean;
}

/** "H.264" for avc1/avc3, "H.265" for hvc1/hev1, else the codec's first part. */
export function videoFormat(codec: string): string {
  const first = codec.split(",")[0].trim().toLowerCase();
  if (/^avc[13]/.test(first)) return "H.264";
  if (/^(hvc1|hev1)/.test(first)) return "H.265";
  return first.split(".")[0];
}

function promLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** The stream's own rows, in the order `<path>/metrics` has always listed them. */
export function streamMetricRows(s: StreamStats): MetricRow[] {
  const m = (name: string, type: MetricRow["type"], help: string, value: number): MetricRow => ({
    name,
    type,
    help,
    value,
  });
  return [
    m("camrelay_viewers", "gauge", "Viewers connected now.", s.viewerCount),
    m(
      "camrelay_upstream_up",
      "gauge",
      "1 while frames arrive, 0 while the placeholder shows.",
      s.upstream === "offline" ? 0 : 1,
    ),
    m("camrelay_frames_in_total", "counter", "Frames received from the flow.", s.framesIn),
    m("camrelay_frames_sent_total", "counter", "Frames (or fMP4 parts) written to viewers.", s.framesSent),
    m(
      "camrelay_frames_skipped_total",
      "counter",
      "Frames skipped for slow or capped viewers.",
      s.framesSkipped,
    ),
    m("camrelay_bytes_out_total", "counter", "Bytes written to viewers.", s.bytesOut),
    m("camrelay_viewers_dropped_total", "counter", "Viewers dropped for not reading.", s.viewersDropped),
    m(
      "camrelay_ffmpeg_restarts_total",
      "counter",
      "New fMP4 init segments after the first one.",
      s.fmp4.restarts,
    ),
    ...videoMetricRows(s.video),
  ];
}

/** Every viewer kind, in the order `camrelay_viewers_by_kind` lists them. */
export const VIEWER_KINDS: readonly ViewerKind[] = ["mjpeg", "mp4", "hls", "ws", "webrtc"];

/** Viewers now by kind (MJPEG, stream.mp4, HLS, the shared WebSocket, WebRTC), one labelled row each. */
export function viewerKindRows(viewers: readonly ViewerInfo[]): MetricRow[] {
  return VIEWER_KINDS.map((kind) => ({
    name: "camrelay_viewers_by_kind",
    type: "gauge",
    help: "Viewers connected now, by transport.",
    value: viewers.filter((v) => v.kind === kind).length,
    labels: { kind },
  }));
}

/** The video's rows: what it is (an info gauge with labels), fragments in, whether a decoder runs. */
function videoMetricRows(v: VideoStats | null | undefined): MetricRow[] {
  if (!v) return [];
  return [
    {
      name: "camrelay_video_info",
      type: "gauge",
      help: "The compressed video on the wire (value 1; codec, size and passthrough as labels).",
      value: 1,
      labels: {
        codec: v.codec,
        format: v.format,
        width: String(v.width),
        height: String(v.height),
        passthrough: v.passthrough ? "true" : "false",
      },
    },
    {
      name: "camrelay_video_fragments_in_total",
      type: "counter",
      help: "fMP4 fragments received from the flow.",
      value: v.fragmentsIn,
    },
    {
      name: "camrelay_video_keyframes_in_total",
      type: "counter",
      help: "fMP4 fragments received that start with a keyframe.",
      value: v.keyframesIn,
    },
    {
      name: "camrelay_video_decoder_running",
      type: "gauge",
      help: "1 while video is decoded to JPEG for MJPEG viewers.",
      value: v.decoderRunning ? 1 : 0,
    },
  ];
}

/** Prometheus text format (0.0.4): HELP, TYPE and one sample per row, each labelled with the path. */
export function renderMetrics(path: string, rows: MetricRow[]): string {
  const pathLabel = `path="${promLabel(path)}"`;
  // HELP and TYPE once per metric: rows of one name with different labels follow each other.
  return rows
    .map((r, i) => {
      const labels = [pathLabel, ...Object.entries(r.labels ?? {}).map(([k, v]) => `${k}="${promLabel(v)}"`)];
      const sample = `${r.name}{${labels.join(",")}} ${r.value}\n`;
      if (i > 0 && rows[i - 1].name === r.name) return sample;
      return `# HELP ${r.name} ${r.help}\n# TYPE ${r.name} ${r.type}\n${sample}`;
    })
    .join("");
}
