/**
 * What ffmpeg can encode H.264 with: one EncoderProfile per encoder (its filter, quality, bitrate and tuning
 * options), the hardware encoders `encoder: auto` tries, and the choice between them on this machine.
 */
import { execFile } from "child_process";
import { listEncoders } from "./capabilities";

export interface EncoderProfile {
  name: string;
  /** Options before `-i` (e.g. the VAAPI device). */
  globalArgs: string[];
  /** Filters after scaling, ending in the encoder's input format. */
  filter: string;
  quality(crf: number): string[];
  bitrate(kbps: number): string[];
  /** Speed/latency options; `live` asks for the lowest latency. */
  tuning(live: boolean): string[];
  /** Options that need the output size and the camera's frame rate. */
  stream?(width: number, height: number, fps: number): string[];
}

/**
 * H.264 level for a size at up to 30 fps. Set explicitly because x264 derives it from the time base, and with
 * the 0.1 ms time base of real frame times it would claim level 6, which some browsers refuse.
 */
export function h264Level(width: number, height: number): string {
  const macroblocks = Math.ceil(width / 16) * Math.ceil(height / 16);
  if (macroblocks <= 1620) return "3.0";
  if (macroblocks <= 3600) return "3.1";
  if (macroblocks <= 8192) return "4.1";
  if (macroblocks <= 22080) return "5.0";
  return "5.1";
}

const bitrateArgs = (kbps: number): string[] => [
  "-b:v",
  `${kbps}k`,
  "-maxrate",
  `${kbps}k`,
  "-bufsize",
  `${kbps * 2}k`,
];

export const ENCODERS: Record<string, EncoderProfile> = {
  libx264: {
    name: "libx264",
    globalArgs: [],
    filter: "format=yuv420p",
    quality: (crf) => ["-crf", String(crf)],
    bitrate: bitrateArgs,
    // zerolatency (no lookahead, no B-frames) also for files: a killed ffmpeg loses at most the open fragment.
    tuning: () => ["-preset", "veryfast", "-tune", "zerolatency", "-bf", "0"],
    // x264's rate control and VBV take the frame rate from the 0.1 ms time base (10000 fps) and starve every
    // frame of bits (6 kb/s instead of 800) unless told the real rate.
    stream: (width, height, fps) => ["-level:v", h264Level(width, height), "-x264-params", `fps=${fps}`],
  },
  h264_vaapi: {
    name: "h264_vaapi",
    globalArgs: ["-vaapi_device", "/dev/dri/renderD128"],
    filter: "format=nv12,hwupload",
    quality: (crf) => ["-qp", String(crf)],
    bitrate: bitrateArgs,
    tuning: () => ["-bf", "0"],
  },
  h264_v4l2m2m: {
    name: "h264_v4l2m2m",
    globalArgs: [],
    filter: "format=yuv420p",
    // No constant-quality mode: map CRF 18..35 onto a bitrate for 640x480-ish video.
    quality: (crf) => bitrateArgs(Math.round(3000 * Math.pow(0.85, crf - 18))),
    bitrate: bitrateArgs,
    tuning: () => [],
  },
  h264_nvenc: {
    name: "h264_nvenc",
    globalArgs: [],
    filter: "format=yuv420p",
    quality: (crf) => ["-rc", "vbr", "-cq", String(crf)],
    bitrate: bitrateArgs,
    tuning: (live) => [...(live ? ["-zerolatency", "1"] : []), "-bf", "0"],
  },
  h264_qsv: {
    name: "h264_qsv",
    globalArgs: [],
    filter: "format=nv12",
    quality: (crf) => ["-global_quality", String(crf)],
    bitrate: bitrateArgs,
    tuning: () => ["-bf", "0"],
  },
};

/** Hardware encoders tried by `encoder: auto`, in order. */
export const HARDWARE_ENCODERS = ["h264_vaapi", "h264_v4l2m2m", "h264_nvenc", "h264_qsv"];

/** Encodes one black frame with `profile`; resolves true when ffmpeg exits 0 within 10 s. */
export function trialEncode(ffmpegPath: string, profile: EncoderProfile): Promise<boolean> {
  const args = [
    "-hide_banner",
    "-loglevel",
    "error",
    ...profile.globalArgs,
    "-f",
    "lavfi",
    "-i",
    "color=c=black:s=320x240:r=1",
    "-frames:v",
    "1",
    "-vf",
    `scale=320:240,${profile.filter}`,
    "-c:v",
    profile.name,
    ...profile.quality(23),
    "-f",
    "null",
    "-",
  ];
  return new Promise((resolve) => {
    execFile(ffmpegPath, args, { timeout: 10000 }, (err) => resolve(!err));
  });
}

const encoderChoice = new Map<string, Promise<EncoderProfile>>();

/**
 * The encoder to use: a named one (unknown names fall back to libx264), or for `auto` the first hardware
 * encoder that ffmpeg lists AND that encodes a trial frame on this machine, else libx264. Cached per binary.
 */
export function chooseEncoder(ffmpegPath: string, setting: string | undefined): Promise<EncoderProfile> {
  const wanted = (setting ?? "").trim() || "libx264";
  if (wanted !== "auto") return Promise.resolve(ENCODERS[wanted] ?? ENCODERS.libx264);
  let choice = encoderChoice.get(ffmpegPath);
  if (!choice) {
    choice = (async () => {
      let available: Set<string>;
      try {
        available = await listEncoders(ffmpegPath);
      } catch {
        return ENCODERS.libx264;
      }
      for (const name of HARDWARE_ENCODERS) {
        if (available.has(name) && (await trialEncode(ffmpegPath, ENCODERS[name]))) return ENCODERS[name];
      }
      return ENCODERS.libx264;
    })();
    encoderChoice.set(ffmpegPath, choice);
  }
  return choice;
}
