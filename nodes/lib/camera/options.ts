import { CAMERA_DEFAULTS, CameraOptions } from "./camera";
import { resolveFfmpegPath } from "../ffmpeg";
import { numberSetting } from "../settings";

/** The camera-source node's settings as the editor saves them. */
export interface CameraSourceSettings {
  name: string;
  protocol: string;
  url: string;
  fps: number | string;
  linger: number | string;
  alwaysOn: boolean;
  watchdog: number | string;
  maxFrameKB: number | string;
  mode: string;
  imageSize: string;
  ffmpegPath: string;
  rtspTransport: string;
  /** https:// cameras: verify the certificate (absent = true); a SHA-256 fingerprint pins one certificate. */
  tlsVerify?: boolean;
  tlsFingerprint?: string;
  /** `ffmpeg` only: "auto" (default: pass H.264/H.265 through), "jpeg" (decode everything), "copy". */
  video?: string;
  /** `ffmpeg` only, passed-through video: carry the camera's audio (absent = true). */
  audio?: boolean | string;
}

export interface CameraCredentials {
  user?: string;
  password?: string;
}

/** Turns the editor's settings and the credential store into the camera's options. */
export function cameraOptions(
  config: CameraSourceSettings,
  credentials: CameraCredentials | undefined,
): CameraOptions {
  const protocol = config.protocol || "test";
  let ffmpegPath: string | undefined;
  if (protocol === "ffmpeg") {
    try {
      ffmpegPath = resolveFfmpegPath(config.ffmpegPath || undefined);
    } catch {
      ffmpegPath = undefined; // the source reports the missing binary as its error
    }
  }
  return {
    name: config.name || (protocol === "test" ? "test pattern" : "camera"),
    protocol,
    url: (config.url ?? "").trim(),
    fps: numberSetting(config.fps, 0, { min: 0 }),
    user: credentials?.user || undefined,
    password: credentials?.password || undefined,
    maxFrameBytes: numberSetting(config.maxFrameKB, CAMERA_DEFAULTS.maxFrameBytes / 1024, { min: 64 }) * 1024,
    ffmpegPath,
    tls: { verify: config.tlsVerify !== false, fingerprint: config.tlsFingerprint || undefined },
    options: {
      mode: config.mode || "stream",
      imageSize: config.imageSize || "640x480",
      rtspTransport: config.rtspTransport || "auto",
      video: config.video === "jpeg" || config.video === "copy" ? config.video : "auto",
      audio: config.audio !== false && config.audio !== "false",
    },
    lingerMs: numberSetting(config.linger, CAMERA_DEFAULTS.lingerMs / 1000, { min: 0 }) * 1000,
    alwaysOn: config.alwaysOn === true,
    watchdogMs: numberSetting(config.watchdog, CAMERA_DEFAULTS.watchdogMs / 1000, { min: 1 }) * 1000,
    maxAuthFailures: CAMERA_DEFAULTS.maxAuthFailures,
    backoffFirstMs: CAMERA_DEFAULTS.backoffFirstMs,
    backoffMaxMs: CAMERA_DEFAULTS.backoffMaxMs,
  };
}

/** The host name a camera address points at (lower case, no brackets), or undefined for files and junk. */
export function cameraHost(url: string): string | undefined {
  const trimmed = (url ?? "").trim();
  if (!trimmed || trimmed.startsWith("/") || /^file:/i.test(trimmed)) return undefined;
  try {
    const parsed = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `http://${trimmed}`);
    return parsed.hostname.replace(/^\[|\]$/g, "").toLowerCase() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the editor's Test may lend a deployed camera's stored credentials to an address: only to the same
 * host the camera is deployed with (another host would receive the password).
 */
export function mayLendCredentials(deployedUrl: string, requestedUrl: string): boolean {
  const deployed = cameraHost(deployedUrl);
  return deployed !== undefined && deployed === cameraHost(requestedUrl);
}
