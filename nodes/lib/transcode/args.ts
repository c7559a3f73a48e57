/**
 * ffmpeg arguments for every ffmpeg-transcode preset. Everything here comes from the node's settings; a
 * message can never reach this file (it only picks start/stop, a duration and a confined file name).
 */
import { execFile, execFileSync } from "child_process";
import type { EncoderProfile } from "../ffmpeg/encoders";

export const PRESETS = ["mp4", "hls", "fmp4", "flv", "push", "custom"] as const;
export type Preset = (typeof PRESETS)[number];

// The encoders live with ffmpeg (../ffmpeg/encoders); re-exported so `args.ENCODERS` and friends still work.
export {
  ENCODERS,
  HARDWARE_ENCODERS,
  chooseEncoder,
  h264Level,
  trialEncode,
  type EncoderProfile,
} from "../ffmpeg/encoders";

export interface VideoSettings {
  /** Output size; undefined = the first frame's size, made to fit maxSize. */
  width?: number;
  height?: number;
  /**
   * The largest size a frame's own size is encoded at (either orientation: 1920x1080 also admits 1080x1920);
   * bigger frames are scaled down keeping their aspect. Undefined = DEFAULT_MAX_SIZE. An explicit width and
   * height are the user's own choice and are not capped.
   */
  maxSize?: { width: number; height: number };
  /** CRF-style quality, 0 (best) .. 51; used unless bitrate > 0. */
  quality: number;
  /** kb/s; 0 = use quality. */
  bitrate: number;
  /** Seconds between keyframes (fragments and HLS segments are cut at each). */
  keyframeInterval: number;
  encoder: EncoderProfile;
}

/** The size parser every setting uses (`640x480`, also `X`, `*` and spaces; sides 1..16384). */
export { parseSize } from "../settings";

const even = (n: number): number => Math.max(2, Math.floor(n / 2) * 2);

/** Encoded size when the node sets none: frames bigger than this are scaled down (8000x8000 took 860 MB). */
export const DEFAULT_MAX_SIZE = { width: 1920, height: 1080 };

/**
 * The size to encode frames of inputWidth x inputHeight at: the node's fixed size, else the input size scaled
 * down (aspect kept, even numbers) to fit maxSize in the input's orientation.
 */
export function outputSize(
  v: Pick<VideoSettings, "width" | "height" | "maxSize">,
  inputWidth: number,
  inputHeight: number,
): { width: number; height: number } {
  if (v.width && v.height) return { width: even(v.width), height: even(v.height) };
  const max = v.maxSize ?? DEFAULT_MAX_SIZE;
  const long = Math.max(max.width, max.height);
  const short = Math.min(max.width, max.height);
  const [boxW, boxH] = inputWidth >= inputHeight ? [long, short] : [short, long];
  const w = Math.max(1, inputWidth);
  const h = Math.max(1, inputHeight);
  const scale = Math.min(1, boxW / w, boxH / h);
  return { width: even(Math.round(w * scale)), height: even(Math.round(h * scale)) };
}

/** Frame rate assumed before any has been measured. */
export const DEFAULT_FPS = 10;

/** Frames per second of a run of receive times, or DEFAULT_FPS when too few to tell. */
export function estimateFps(times: readonly number[]): number {
  if (times.length < 3) return DEFAULT_FPS;
  const span = times[times.length - 1] - times[0];
  return span >= 300 ? ((times.length - 1) * 1000) / span : DEFAULT_FPS;
}

/**
 * Input: our Matroska stream on stdin (see transcode-mkv.ts for why), read without probing delays.
 * Not `-fflags +nobuffer`: with it ffmpeg 4.x drops frames from a pipe.
 */
export function inputArgs(encoder: Pick<EncoderProfile, "globalArgs">, progress = true): string[] {
  return [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    ...(progress ? ["-nostats", "-progress", "pipe:2"] : []),
    ...encoder.globalArgs,
    "-probesize",
    "32",
    "-analyzeduration",
    "0",
    "-f",
    "matroska",
    "-i",
    "pipe:0",
  ];
}

/**
 * H.264 encoding with real frame times kept (`-vsync vfr -enc_time_base -1`) and keyframes forced every
 * keyframeInterval seconds of those times, so fragments and segments are cut on time, whatever the frame rate.
 */
export function videoArgs(
  v: VideoSettings,
  inputWidth: number,
  inputHeight: number,
  live: boolean,
  fps = DEFAULT_FPS,
): string[] {
  const { width, height } = outputSize(v, inputWidth, inputHeight);
  const k = Math.max(0.2, v.keyframeInterval || 1);
  return [
    "-map",
    "0:v:0",
    "-an",
    "-vf",
    `scale=${width}:${height},${v.encoder.filter}`,
    "-c:v",
    v.encoder.name,
    ...v.encoder.tuning(live),
    ...(v.encoder.stream?.(width, height, Math.round(Math.min(60, Math.max(1, fps)) * 100) / 100) ?? []),
    ...(v.bitrate > 0 ? v.encoder.bitrate(Math.round(v.bitrate)) : v.encoder.quality(Math.round(v.quality))),
    "-force_key_frames",
    `expr:gte(t,n_forced*${k})`,
    // A cap in frames as well, for encoders that ignore forced keyframes; 60 fps is more than cameras send.
    "-g",
    String(Math.round(k * 60)),
    "-keyint_min",
    "1",
    "-sc_threshold",
    "0",
    "-vsync",
    "vfr",
    "-enc_time_base",
    "-1",
  ];
}

export const FMP4_FLAGS = "+frag_keyframe+empty_moov+default_base_moof";

/** Fragment length of recordings: a killed ffmpeg loses at most this much (plus the frame being encoded). */
export const RECORDING_FRAGMENT_US = 1000000;

/**
 * Fragmented MP4 to a file: a crash or SIGKILL leaves every finished fragment playable. `-n`: never overwrite.
 * `extra` comes from mp4FileOptions (what this ffmpeg supports to put each fragment on disk at once).
 */
export function mp4FileArgs(file: string, extra: readonly string[] = []): string[] {
  return ["-movflags", FMP4_FLAGS, ...extra, "-f", "mp4", "-n", `file:${file}`];
}

const mp4OptionsCache = new Map<string, Promise<string[]>>();
const mp4OptionsKnown = new Map<string, string[]>();

/** The options of mp4FileOptions that `ffmpeg -h full` lists. */
function mp4OptionsFromHelp(help: string): string[] {
  const out: string[] = [];
  if (/^\s*-flush_packets\s/m.test(help)) out.push("-flush_packets", "1");
  // The mov muxer's option takes an int of microseconds (others of the same name take seconds).
  if (/^\s*-frag_duration\s+<int>/m.test(help)) out.push("-frag_duration", String(RECORDING_FRAGMENT_US));
  return out;
}

/**
 * Options that put every fragment of a recording on disk as soon as it is cut, from what `ffmpeg -h full`
 * reports: `-flush_packets 1` (ffmpeg 5.x otherwise holds the file's first 256 KiB, the moov included, in
 * its write buffer, so a killed ffmpeg left a 28-byte file) and the mov muxer's `-frag_duration` in
 * microseconds (a fragment at least every second even when keyframes are further apart). Cached per binary.
 */
export function mp4FileOptions(ffmpegPath: string): Promise<string[]> {
  const known = mp4OptionsKnown.get(ffmpegPath);
  if (known) return Promise.resolve(known);
  let cached = mp4OptionsCache.get(ffmpegPath);
  if (!cached) {
    cached = new Promise((resolve) => {
      execFile(
        ffmpegPath,
        ["-hide_banner", "-h", "full"],
        { timeout: 10000, maxBuffer: 16 << 20 },
        (err, stdout) => {
          const help = String(stdout ?? "");
          const options = mp4OptionsFromHelp(help);
          if (err && !help)
            mp4OptionsCache.delete(ffmpegPath); // ask again next time
          else mp4OptionsKnown.set(ffmpegPath, options);
          resolve(options);
        },
      );
    });
    mp4OptionsCache.set(ffmpegPath, cached);
  }
  return cached;
}

/**
 * mp4FileOptions for a recording that starts now: the cached answer, else `ffmpeg -h full` run at once, once
 * per binary and process (25 ms for the bundled 4.x, 140 ms for Debian's 5.1 here), when the first recording
 * starts: asking earlier would start an ffmpeg before anything is recorded, and later would write the first
 * file without the options.
 */
export function mp4FileOptionsNow(ffmpegPath: string): string[] {
  const known = mp4OptionsKnown.get(ffmpegPath);
  if (known) return known;
  let help = "";
  try {
    help = execFileSync(ffmpegPath, ["-hide_banner", "-h", "full"], {
      timeout: 5000,
      maxBuffer: 16 << 20,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch (err) {
    const e = err as { stdout?: unknown; signal?: unknown };
    help = String(e.stdout ?? "");
    // A binary that hangs on -h is not asked again (each recording would wait 5 s); a missing one is.
    if (e.signal) mp4OptionsKnown.set(ffmpegPath, mp4OptionsFromHelp(help));
  }
  const options = mp4OptionsFromHelp(help);
  if (help) mp4OptionsKnown.set(ffmpegPath, options);
  return options;
}

/** The names of the segments camrelay's HLS muxer writes; HLS_SEGMENT_FILE matches them and nothing else. */
export const HLS_SEGMENT_NAME = "seg-%d.ts";
export const HLS_SEGMENT_FILE = /^seg-\d+\.ts$/;
export const HLS_PLAYLIST_FILE = "index.m3u8";

/** Escapes a value for the tee muxer's option syntax. */
function teeEscape(value: string): string {
  return value.replace(/[\\:|[\]=]/g, (c) => `\\${c}`);
}

/** Fragment length inside a GOP of the live fMP4 (µs): each fragment is a low-latency HLS part. */
export const LIVE_PART_US = 250000;

/**
 * fMP4 on stdout (fragments cut at each keyframe, flushed at once), plus with `hlsDirectory` a standard HLS
 * directory written by ffmpeg's hls muxer through tee (1 s segments, old ones deleted; a failing directory
 * does not stop the live stream: onfail=ignore). With `segmentSeconds` (the live hls/fmp4 presets name it)
 * fragments are also cut every LIVE_PART_US inside a GOP, flagged keyframe or not by the splitter, so
 * http-stream-out publishes them as low-latency HLS parts; without, one fragment per GOP.
 */
export function fmp4PipeArgs(hlsDirectory?: string, segmentSeconds?: number): string[] {
  const parts = segmentSeconds === undefined ? [] : ["-frag_duration", String(LIVE_PART_US)];
  if (!hlsDirectory) return ["-movflags", FMP4_FLAGS, ...parts, "-flush_packets", "1", "-f", "mp4", "pipe:1"];
  const dir = hlsDirectory.replace(/\/+$/, "");
  const hls = [
    "f=hls",
    `hls_time=${segmentSeconds ?? 1}`,
    "hls_list_size=6",
    "bsfs/v=h264_mp4toannexb",
    "hls_flags=delete_segments+independent_segments+program_date_time",
    // Segment numbers from the clock: a restarted ffmpeg never reuses a name a CDN may have cached.
    "hls_start_number_source=epoch",
    `hls_segment_filename=${teeEscape(`${dir}/${HLS_SEGMENT_NAME}`)}`,
    "onfail=ignore",
  ].join(":");
  return [
    // tee does not ask the encoder for global headers; MP4 needs them (avcC), TS gets them back from the bsf.
    "-flags",
    "+global_header",
    "-flush_packets",
    "1",
    "-f",
    "tee",
    `[f=mp4:movflags=${FMP4_FLAGS}${parts.length ? `:frag_duration=${LIVE_PART_US}` : ""}]pipe:1|` +
      `[${hls}]${teeEscape(`${dir}/${HLS_PLAYLIST_FILE}`)}`,
  ];
}

export const PUSH_SCHEMES = ["rtmp", "rtmps", "rtsp", "rtsps", "srt"];

/** How long a push ffmpeg waits for a media server that stopped answering before it gives up (µs). */
export const PUSH_IO_TIMEOUT_US = 10000000;

/**
 * Output for `push`: the container each protocol wants, with an I/O timeout so that a media server that accepts
 * and never answers cannot hold ffmpeg for ever (it would outlive a killed Node-RED). RTMP and SRT take the
 * generic `-rw_timeout`; the RTSP muxer ignores that and needs its own socket timeout, whose name differs by
 * version (`rtspTimeout`, from rtspTimeoutOption: `-stimeout` in 4.x, `-timeout` after). Throws for other schemes.
 */
export function pushArgs(url: string, rtspTimeout = "-timeout"): string[] {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1].toLowerCase();
  const timeout = String(PUSH_IO_TIMEOUT_US);
  switch (scheme) {
    case "rtmp":
    case "rtmps":
      return ["-f", "flv", "-flvflags", "no_duration_filesize", "-rw_timeout", timeout, url];
    case "rtsp":
    case "rtsps":
      return ["-f", "rtsp", "-rtsp_transport", "tcp", rtspTimeout, timeout, url];
    case "srt":
      return ["-f", "mpegts", "-rw_timeout", timeout, url];
    default:
      throw new Error(`push needs an rtmp://, rtsp:// or srt:// URL`);
  }
}

/** Output for `flv`: a URL (rtmp/http...) or a file. */
export function flvArgs(target: string): string[] {
  const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(target);
  return ["-f", "flv", "-flvflags", "no_duration_filesize", ...(isUrl ? [target] : ["-n", `file:${target}`])];
}

/** Splits the editor's custom output arguments like a shell would (quotes, backslashes), without a shell. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inArg = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inArg = true;
    } else if (c === "\\" && i + 1 < text.length) {
      cur += text[++i];
      inArg = true;
    } else if (/\s/.test(c)) {
      if (inArg) out.push(cur);
      cur = "";
      inArg = false;
    } else {
      cur += c;
      inArg = true;
    }
  }
  if (quote) throw new Error("unbalanced quote in the custom output arguments");
  if (inArg) out.push(cur);
  return out;
}

/**
 * Credentials (url-encoded) into a push/flv URL; only the spawned arguments ever hold them. ffmpeg reads an
 * output address from nowhere else, so `ps` shows them: the help says so.
 */
export { urlWithCredentials } from "../credentials";
