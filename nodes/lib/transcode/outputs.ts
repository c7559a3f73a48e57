/**
 * The ffmpeg argument list of each live preset (hls, fmp4, flv, push, custom), built at every (re)start of
 * ffmpeg from the node's settings and the frames' size and rate.
 */
import path from "path";
import {
  flvArgs,
  fmp4PipeArgs,
  inputArgs,
  pushArgs,
  splitArgs,
  urlWithCredentials,
  videoArgs,
  type EncoderProfile,
} from "./args";
import type { LiveOutput } from "./live";
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
