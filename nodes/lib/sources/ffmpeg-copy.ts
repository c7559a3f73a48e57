/**
 * Compressed video passed through: what the `ffmpeg` source decides after probing its input (copy H.264/H.265,
 * or decode to JPEG), and the output half of the one ffmpeg that copies it to fragmented MP4 on stdout.
 */
import { credentialSecrets, redactCredentials, splitUserinfo } from "../credentials";
import { ffmpegInput, probeMedia, type FfmpegInput, type ProbeResult } from "../ffmpeg";
import { ffmpegTlsArgs, type TlsSettings } from "./tls";

/** The camera-source `video` property. */
export type VideoMode = "auto" | "jpeg" | "copy";

export function videoMode(value: unknown): VideoMode {
  return value === "jpeg" || value === "copy" ? value : "auto";
}

/** Video codecs (ffprobe's names) the source passes through untouched. */
const COPYABLE = new Set(["h264", "hevc"]);

/** What the source runs for one connection. */
export interface VideoPlan {
  pipeline: "copy" | "jpeg";
  /** ffprobe's video codec name ("h264", "hevc", "mjpeg"...), when probed. */
  videoCodec?: string;
  /** "copy": AAC as it is; "aac": converted (G.711, PCM, Opus...); "none": no audio track. */
  audio: "copy" | "aac" | "none";
  /** ffprobe's audio codec name, when there is audio. */
  audioCodec?: string;
  /** Why JPEG was chosen in auto mode, in words (for a log line); absent for copy. */
  why?: string;
}

/** The first video and audio stream of a probe. */
export function probedCodecs(media: ProbeResult): { video?: string; audio?: string } {
  return {
    video: media.streams.find((s) => s.codecType === "video")?.codecName,
    audio: media.streams.find((s) => s.codecType === "audio")?.codecName,
  };
}

/**
 * The pipeline for a probed input. Throws an Error in words when `copy` was asked for and the camera's video
 * cannot be passed through.
 */
export function planVideo(mode: VideoMode, audioWanted: boolean, media?: ProbeResult): VideoPlan {
  if (mode === "jpeg") return { pipeline: "jpeg", audio: "none" };
  const { video, audio } = media ? probedCodecs(media) : {};
  if (!video || !COPYABLE.has(video)) {
    const what = video
      ? `the camera sends ${video} video, which cannot be passed through (only H.264 and H.265 can)`
      : "the input has no video stream ffprobe could name";
    if (mode === "copy") throw new Error(`${what}: set "video" to auto or jpeg`);
    return { pipeline: "jpeg", audio: "none", videoCodec: video, why: `${what}: decoding it to JPEG` };
  }
  let plan: VideoPlan["audio"] = "none";
  if (audioWanted && audio) plan = audio === "aac" ? "copy" : "aac";
  return { pipeline: "copy", videoCodec: video, audio: plan, audioCodec: audio };
}

/**
 * Fragment length asked of ffmpeg (µs): shorter than any picture, so every picture is a fragment of its own
 * and leaves as soon as the next packet reaches the muxer (WebRTC and MSE viewers get pictures one by one,
 * not four at a time every 250 ms, which cost ~0.2 s of latency and a jitter buffer the size of the burst).
 * Audio packets cut fragments too; the splitter carries those in front of the next picture. HLS groups the
 * pictures into ~0.2 s parts (Fmp4Store's PART_MIN_SECONDS).
 */
export const FRAGMENT_US = 1000;

/**
 * The output half of the copying ffmpeg: video copied (H.265 tagged hvc1, which browsers play), AAC copied or
 * other audio converted, fragmented MP4 on stdout (`empty_moov` so the init comes first, a fragment a
 * picture).
 */
export function copyOutputArgs(plan: VideoPlan): string[] {
  const args = ["-map", "0:v:0"];
  if (plan.audio !== "none") args.push("-map", "0:a:0?");
  args.push("-c:v", "copy");
  if (plan.videoCodec === "hevc") args.push("-tag:v", "hvc1");
  // AAC from MPEG-TS (udp, srt, .ts over http) comes as ADTS, which the mp4 muxer refuses ("Malformed AAC
  // bitstream", ffmpeg 4.x and 5.1 alike); the filter passes RTSP's raw AAC through unchanged.
  if (plan.audio === "copy") args.push("-c:a", "copy", "-bsf:a", "aac_adtstoasc");
  else if (plan.audio === "aac") args.push("-c:a", "aac", "-b:a", "64k");
  else args.push("-an");
  args.push("-sn", "-dn");
  args.push(
    ...["-f", "mp4", "-movflags", "empty_moov+default_base_moof+frag_keyframe"],
    ...["-frag_duration", String(FRAGMENT_US), "pipe:1"],
  );
  return args;
}

export interface InputProbeOptions {
  url: string;
  user?: string;
  password?: string;
  tls?: TlsSettings;
  /** "tcp", "udp"... or "auto"/"" (TCP, then UDP when the server refuses TCP). */
  rtspTransport?: string;
  ffprobePath: string;
  /** The ffmpeg that reads the input when ffprobe crashes on it (the bundled ffprobe does on MPEG-TS). */
  ffmpegPath?: string;
  timeoutMs: number;
  /** Also ask for the first packets' keyframe flags and times (the Test button's keyframe interval). */
  packets?: boolean;
}

const REFUSED_TRANSPORT = /461 Unsupported transport|Nonmatching transport/i;

/**
 * ffprobe of a camera input with the same input handling as the source (credentials on stdin, the protocol
 * whitelist, TLS options, the RTSP transport with the `auto` fallback). Resolves the probe and the transport
 * that answered; rejects with ffprobe's error in words, credentials taken out.
 */
export async function probeCameraInput(
  opts: InputProbeOptions,
): Promise<{ media: ProbeResult; transport?: string; input: FfmpegInput }> {
  const inUrl = splitUserinfo(opts.url);
  const secrets = [
    ...credentialSecrets(opts.user, opts.password),
    ...credentialSecrets(inUrl.user, inUrl.password),
  ];
  const wanted = opts.rtspTransport;
  const transports = typeof wanted === "string" && wanted && wanted !== "auto" ? [wanted] : ["tcp", "udp"];
  const tlsArgs = await ffmpegTlsArgs(opts.url, opts.tls);
  let lastError: Error | undefined;
  for (const rtspTransport of transports) {
    // Credentials reach ffprobe on stdin (a concat script), never in its argv.
    const input = await ffmpegInput(opts.ffprobePath, opts.url, {
      user: opts.user,
      password: opts.password,
      rtspTransport,
      tlsArgs,
    });
    try {
      const media = await probeMedia(opts.url, {
        ffprobePath: opts.ffprobePath,
        ffmpegPath: opts.ffmpegPath,
        timeoutMs: opts.timeoutMs,
        inputArgs: input.args,
        stdin: input.stdin,
        secrets,
      });
      // Through the concat script ffprobe names its own demuxer; the URL's scheme says what the camera speaks.
      if (input.stdin && media.formatName === "concat") {
        media.formatName = input.scheme === "rtsp" || input.scheme === "rtsps" ? "rtsp" : undefined;
      }
      return { media, transport: input.scheme?.startsWith("rtsp") ? rtspTransport : undefined, input };
    } catch (err) {
      lastError = new Error(redactCredentials((err as Error).message, secrets));
      if (!REFUSED_TRANSPORT.test(lastError.message)) throw lastError;
    }
  }
  throw lastError ?? new Error("the RTSP server refused every transport");
}
