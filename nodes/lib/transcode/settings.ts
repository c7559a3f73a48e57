/**
 * The settings of an `ffmpeg transcode` node, from its editor config (strings, numbers or nothing) into
 * numbers and sizes, and the check that tells at deploy when they cannot work. No Node-RED here: problems
 * come back as i18n keys (under `ffmpeg-transcode.`) with their parameters, and the adapter translates them.
 */
import path from "path";
import { numberSetting, parseSize, type Size } from "../settings";
import { DEFAULT_MAX_SIZE, PRESETS, pushArgs, splitArgs, type Preset } from "./args";

/** What the editor saves (ffmpeg-transcode.html); anything may be missing in a flow written by hand. */
export interface TranscodeConfig {
  name?: string;
  preset?: string;
  directory?: string;
  url?: string;
  size?: string;
  maxSize?: string;
  quality?: number | string;
  bitrate?: number | string;
  keyframeInterval?: number | string;
  encoder?: string;
  preRoll?: number | string;
  postRoll?: number | string;
  duration?: number | string;
  maxDuration?: number | string;
  keepDays?: number | string;
  keepGB?: number | string;
  preRollMaxMB?: number | string;
  customArgs?: string;
  ffmpegPath?: string;
}

/** The defaults of the number settings, as the editor has them: a missing or bad value runs as these. */
export const TRANSCODE_DEFAULTS = {
  preRoll: 5,
  postRoll: 5,
  duration: 0,
  maxDuration: 300,
  keepDays: 0,
  keepGB: 0,
  preRollMaxMB: 64,
  quality: 23,
  bitrate: 0,
  keyframeInterval: 1,
} as const;

/** The range each number setting is clamped to. */
export const TRANSCODE_LIMITS: Record<keyof typeof TRANSCODE_DEFAULTS, { min: number; max?: number }> = {
  preRoll: { min: 0, max: 600 },
  postRoll: { min: 0, max: 3600 },
  duration: { min: 0, max: 86400 },
  maxDuration: { min: 0, max: 86400 },
  keepDays: { min: 0 },
  keepGB: { min: 0 },
  preRollMaxMB: { min: 1, max: 4096 },
  quality: { min: 0, max: 51 },
  bitrate: { min: 0, max: 100000 },
  keyframeInterval: { min: 0.2, max: 60 },
};

/** A translatable message: `ffmpeg-transcode.<key>` with its parameters. */
export interface Message {
  key: string;
  params?: Record<string, string | number>;
}

/** Why settings cannot work: a translatable message, or the words of a lower layer (ffmpeg arguments). */
export type SettingsProblem = Message | { text: string };

export interface TranscodeSettings {
  preset: Preset;
  /** Absolute, or "" when none is set. */
  directory: string;
  /** Trimmed; "" when none is set. */
  url: string;
  customArgs: string;
  /** "auto" or an encoder name (nothing set: libx264); see chooseEncoder. */
  encoder: string;
  /** The path set, or "" to look for ffmpeg (see resolveFfmpegPath). */
  ffmpegPath: string;
  preRollSec: number;
  postRollSec: number;
  durationSec: number;
  maxDurationSec: number;
  keepDays: number;
  keepGB: number;
  preRollMaxBytes: number;
  /** The encoding settings every preset but custom uses (VideoSettings without the encoder). */
  video: {
    width?: number;
    height?: number;
    maxSize: Size;
    quality: number;
    bitrate: number;
    keyframeInterval: number;
  };
  /** Set when a largest size was given that is not a size (the default is used): for a warning. */
  maxSizeWarning?: Message;
}

function setting(value: unknown, key: keyof typeof TRANSCODE_DEFAULTS): number {
  return numberSetting(value, TRANSCODE_DEFAULTS[key], TRANSCODE_LIMITS[key]);
}

/** The node's settings: one rule for bad values (missing, empty, not a number: default; out of range: clamped). */
export function readTranscodeSettings(config: TranscodeConfig): TranscodeSettings {
  const preset = (PRESETS as readonly string[]).includes(config.preset ?? "")
    ? (config.preset as Preset)
    : "mp4";
  const directory = (config.directory ?? "").trim();
  const size = parseSize(config.size);
  // The cap on a frame's own size (a camera or message cannot make ffmpeg encode 8000x8000).
  const maxSizeText = (config.maxSize ?? "").trim();
  const maxSize = parseSize(maxSizeText) ?? DEFAULT_MAX_SIZE;
  return {
    preset,
    directory: directory ? path.resolve(directory) : "",
    url: (config.url ?? "").trim(),
    customArgs: config.customArgs ?? "",
    encoder: (config.encoder ?? "").trim() || "libx264",
    ffmpegPath: (config.ffmpegPath ?? "").trim(),
    preRollSec: setting(config.preRoll, "preRoll"),
    postRollSec: setting(config.postRoll, "postRoll"),
    durationSec: setting(config.duration, "duration"),
    maxDurationSec: setting(config.maxDuration, "maxDuration"),
    keepDays: setting(config.keepDays, "keepDays"),
    keepGB: setting(config.keepGB, "keepGB"),
    preRollMaxBytes: setting(config.preRollMaxMB, "preRollMaxMB") * 1024 * 1024,
    video: {
      width: size?.width,
      height: size?.height,
      maxSize,
      quality: setting(config.quality, "quality"),
      bitrate: setting(config.bitrate, "bitrate"),
      keyframeInterval: setting(config.keyframeInterval, "keyframeInterval"),
    },
    maxSizeWarning:
      maxSizeText && !parseSize(maxSizeText)
        ? {
            key: "errors.badMaxSize",
            params: { size: maxSizeText, max: `${maxSize.width}x${maxSize.height}` },
          }
        : undefined,
  };
}

/** Settings that cannot work, reported at deploy rather than at the first frame; undefined when they can. */
export function settingsProblem(s: TranscodeSettings): SettingsProblem | undefined {
  switch (s.preset) {
    case "mp4":
      return s.directory ? undefined : { key: "errors.noDirectory" };
    case "flv":
      return s.directory || s.url ? undefined : { key: "errors.noTarget" };
    case "push":
      try {
        pushArgs(s.url);
        return undefined;
      } catch (err) {
        return { text: (err as Error).message };
      }
    case "custom":
      try {
        return splitArgs(s.customArgs).length ? undefined : { key: "errors.noCustomArgs" };
      } catch (err) {
        return { text: (err as Error).message };
      }
    default:
      return undefined;
  }
}

/** True when the preset sends to `url` (its stream key and query values are secrets). */
export function sendsToUrl(preset: Preset): boolean {
  return preset === "push" || preset === "flv";
}
