/**
 * The ffmpeg argument list of each live preset (hls, fmp4, flv, push, custom), built at every (re)start of
 * ffmpeg from the node's settings and the frames' size and rate.
 */
import path from "path";
import {
  ENCODERS,
  HLS_PLAYLIST_FILE,
  HLS_SEGMENT_NAME,
  flvArgs,
  fmp4PipeArgs,
  inputArgs,
  pushArgs,
  splitArgs,
  urlWithCredentials,
  videoArgs,
  type EncoderProfile,
} from "./args";
import type { CopyLiveOutput } from "./copy-live";
import type { LiveOutput } from "./live";
import type { Mp4Unit } from "./mp4-input";
import { ensureWritableDirectory, sanitizeCameraName, stamp } from "./filenames";
import type { TranscodeSettings } from "./settings";

export interface LiveOutputContext {
  encoder: EncoderProfile;
  /** The RTSP socket timeout option of this ffmpeg (push). */
  rtspTimeout?: string;
  user?: string;
  password?: string;
  /** The camera's name now (flv file names). */
  camera: () => string;
  /** The HLS directory cannot be written: the live fMP4 output carries on without it. */
  onDirectoryError: (err: Error) => void;
}

/** Where stdout goes for custom arguments: ffmpeg writes to it when the last argument names it. */
export function customStdout(args: readonly string[]): LiveOutput["stdout"] {
  const last = args[args.length - 1];
  return last === "-" || last === "pipe:1" || last === "pipe:" ? "raw" : "none";
}

/** A new FLV file name in `directory` for each run (a restart never appends to a file). */
export function uniqueFlvFile(directory: string, camera: string, now = Date.now()): string {
  ensureWritableDirectory(directory);
  return path.join(directory, `${sanitizeCameraName(camera)}-${stamp(now)}-${now % 1000}.flv`);
}

/** The argument builder LiveTranscoder calls at each start of ffmpeg. */
export function liveOutput(
  s: TranscodeSettings,
  ctx: LiveOutputContext,
): (width: number, height: number, fps: number) => LiveOutput {
  const video = { ...s.video, encoder: ctx.encoder };
  const encode = (w: number, h: number, fps: number) => [
    ...inputArgs(ctx.encoder),
    ...videoArgs(video, w, h, true, fps),
  ];
  switch (s.preset) {
    case "hls":
    case "fmp4": {
      const hlsDir = s.preset === "hls" && s.directory ? s.directory : undefined;
      return (w, h, fps) => {
        let dir = hlsDir;
        if (dir) {
          try {
            ensureWritableDirectory(dir);
          } catch (err) {
            ctx.onDirectoryError(err as Error);
            dir = undefined;
          }
        }
        return {
          args: [...encode(w, h, fps), ...fmp4PipeArgs(dir, s.video.keyframeInterval)],
          stdout: "fmp4",
        };
      };
    }
    case "flv":
      return (w, h, fps) => {
        const target = s.url
          ? urlWithCredentials(s.url, ctx.user, ctx.password)
          : uniqueFlvFile(s.directory, ctx.camera());
        return { args: [...encode(w, h, fps), ...flvArgs(target)], stdout: "none" };
      };
    case "push":
      return (w, h, fps) => ({
        args: [
          ...encode(w, h, fps),
          ...pushArgs(urlWithCredentials(s.url, ctx.user, ctx.password), ctx.rtspTimeout),
        ],
        stdout: "none",
      });
    default: {
      // The custom arguments are the user's own: no encoder options of a hidden encoder setting before them.
      const custom = splitArgs(s.customArgs);
      return () => ({ args: [...inputArgs({ globalArgs: [] }), ...custom], stdout: customStdout(custom) });
    }
  }
}

/** H.265 by its MP4 sample entry (the first codec of msg.mp4.codec). */
export function isH265(codec: string | undefined): boolean {
  return /^(hvc1|hev1)/i.test((codec ?? "").trim());
}

/** Segments of HLS on disk from copied input: ffmpeg's hls muxer, the same names and rules as fmp4PipeArgs. */
export function hlsCopyArgs(directory: string, segmentSeconds = 1): string[] {
  const dir = directory.replace(/\/+$/, "");
  return [
    "-f",
    "hls",
    "-hls_time",
    String(Math.max(0.2, segmentSeconds || 1)),
    "-hls_list_size",
    "6",
    "-hls_flags",
    "delete_segments+independent_segments+program_date_time",
    "-hls_start_number_source",
    "epoch",
    "-hls_segment_filename",
    `${dir}/${HLS_SEGMENT_NAME}`,
    `${dir}/${HLS_PLAYLIST_FILE}`,
  ];
}

/**
 * The stream arguments for compressed input: `-map 0 -c copy`, or with `why` an encode of the video (the
 * node's encoder, size, bitrate or quality, keyframes every keyframeInterval) with the audio copied.
 */
export function compressedStreamArgs(s: TranscodeSettings, encoder: EncoderProfile, why?: string): string[] {
  if (!why) return ["-map", "0", "-c", "copy"];
  const v = s.video;
  const k = Math.max(0.2, v.keyframeInterval || 1);
  const scale = v.width && v.height ? `scale=${even(v.width)}:${even(v.height)},` : "";
  return [
    "-map",
    "0:v:0",
    "-map",
    "0:a?",
    "-vf",
    `${scale}${encoder.filter}`,
    "-c:v",
    encoder.name,
    ...encoder.tuning(true),
    ...(v.bitrate > 0 ? encoder.bitrate(Math.round(v.bitrate)) : encoder.quality(Math.round(v.quality))),
    "-force_key_frames",
    `expr:gte(t,n_forced*${k})`,
    "-g",
    String(Math.round(k * 60)),
    "-c:a",
    "copy",
  ];
}

const even = (n: number): number => Math.max(2, Math.floor(n / 2) * 2);

/** Why compressed input is encoded for this preset and target: a size or bitrate asked for, or a codec FLV lacks. */
export function compressedEncodeReason(
  s: TranscodeSettings,
  codec: string | undefined,
  asked: string | undefined,
): string | undefined {
  if (asked) return asked;
  const rtmp = s.preset === "push" && /^rtmps?:\/\//i.test(s.url);
  if ((s.preset === "flv" || rtmp) && isH265(codec)) return "FLV/RTMP cannot carry H.265: libx264";
  return undefined;
}

/**
 * The output builder for compressed input on flv, push and hls with a directory (CopyLive calls it at each
 * start, with that run's init): copy where the target can carry the codec, else encode and say why.
 */
export function compressedLiveOutput(
  s: TranscodeSettings,
  ctx: LiveOutputContext & { encodeReason?: string },
): (init: Mp4Unit) => CopyLiveOutput {
  return (init) => {
    const why = compressedEncodeReason(s, init.info.codec, ctx.encodeReason);
    // H.265 into FLV: always libx264 (a hardware H.264 encoder may not be there for the camera's size).
    const encoder = why && !ctx.encodeReason ? ENCODERS.libx264 : ctx.encoder;
    const streams = compressedStreamArgs(s, encoder, why);
    switch (s.preset) {
      case "flv": {
        const target = s.url
          ? urlWithCredentials(s.url, ctx.user, ctx.password)
          : uniqueFlvFile(s.directory, ctx.camera());
        return { args: [...streams, ...flvArgs(target)], encode: why };
      }
      case "push":
        return {
          args: [...streams, ...pushArgs(urlWithCredentials(s.url, ctx.user, ctx.password), ctx.rtspTimeout)],
          encode: why,
        };
      case "hls":
        ensureWritableDirectory(s.directory);
        return { args: [...streams, ...hlsCopyArgs(s.directory, s.video.keyframeInterval)], encode: why };
      default:
        throw new Error(`compressed input has no ffmpeg run for the ${s.preset} preset`);
    }
  };
}
