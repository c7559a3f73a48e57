import diagnostics from "diagnostics_channel";
import type { ClientRequest, IncomingMessage } from "http";
import { CameraOptions } from "./camera";
import { credentialSecrets, redactCredentials, splitUserinfo } from "../credentials";
import {
  FfmpegInput,
  ffmpegInput,
  probeMedia,
  ProbeResult as MediaProbe,
  resolveFfprobePath,
} from "../ffmpeg";
import { createSource } from "../sources";
import { planVideo, videoMode } from "../sources/ffmpeg-copy";
import { decodeKeyframe } from "../codec/mp4-decoder";
import { SourceError } from "../sources/source";
import { ffmpegTlsArgs } from "../sources/tls";

/** The video stream of an `ffmpeg` input as ffprobe describes it. */
export interface ProbedVideo {
  /** Container or transport as ffprobe names it, e.g. "rtsp", "mov,mp4,m4a,3gp,3g2,mj2". */
  container?: string;
  /** Codec name, e.g. "h264", "hevc", "mjpeg". */
  codec?: string;
  profile?: string;
  width?: number;
  height?: number;
  /** The stream's nominal frame rate, when ffprobe reports one. */
  fps?: number;
  /** Seconds between keyframes, measured on the passed-through stream (two keyframes seen). */
  keyframeInterval?: number;
}

export interface ProbeResult {
  /** The first frame as a data: URL, for an <img> in the editor. */
  image: string;
  width: number;
  height: number;
  bytes: number;
  /** Frames per second measured over the probe window (0 when only one frame came). */
  fps: number;
  frames: number;
  protocol: string;
  /**
   * What the camera turned out to speak, as a fact the user can check against the camera's manual: the
   * Content-Type an HTTP camera answered (`multipart/x-mixed-replace; boundary=...`, `image/jpeg`), or
   * for `ffmpeg` the container and codec (`rtsp, h264 (Main)`). Absent when there is nothing to detect.
   */
  detected?: string;
  /** For `ffmpeg` inputs: the video stream as ffprobe reports it. */
  video?: ProbedVideo;
  /** For `ffmpeg` inputs whose ffprobe failed or timed out: why, in words (the frame still came). */
  videoError?: string;
  /** For `ffmpeg` inputs: the audio codec and what happens to it ("aac, copied"), or "none". */
  audio?: string;
  /** For `ffmpeg` inputs: "will be passed through (...)" or why not, in words. */
  passthrough?: string;
  /** Seconds between keyframes of a passed-through stream, when two came during the test. */
  keyframeInterval?: number;
}

const HTTP_PROTOCOLS = new Set(["mjpeg", "jpeg", "canon-webview"]);
const FFPROBE_TIMEOUT_MS = 6000;

/**
 * Watches the HTTP responses this process receives from `host` (through Node's diagnostics channel, so the
 * probe reads the headers of the source's own connection instead of opening a second one to the camera).
 * Keeps the first image or multipart Content-Type, else the last one seen.
 */
function watchContentType(host: string): { get: () => string | undefined; stop: () => void } {
  let found: string | undefined;
  let settled = false;
  const onResponse = (message: unknown) => {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage };
    if (settled || request?.host !== host) return;
    const type = response?.headers?.["content-type"];
    if (typeof type !== "string" || !type) return;
    found = type;
    settled = /^(image|multipart)\//i.test(type);
  };
  const channel = diagnostics.channel("http.client.response.finish");
  channel.subscribe(onResponse);
  return { get: () => found, stop: () => channel.unsubscribe(onResponse) };
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`).hostname;
  } catch {
    return undefined;
  }
}

/** The first video stream of an ffprobe result, in the probe's terms. */
export function describeVideo(media: MediaProbe): ProbedVideo | undefined {
  const stream = media.streams.find((s) => s.codecType === "video");
  if (!stream) return undefined;
  return {
    container: media.formatName,
    codec: stream.codecName,
    profile: stream.profile,
    width: stream.width,
    height: stream.height,
    fps: stream.fps,
  };
}

/** "rtsp, h264 (Main)": the container and codec as one short phrase. */
export function describeDetected(video: ProbedVideo): string {
  const codec = video.codec ? video.codec + (video.profile ? ` (${video.profile})` : "") : undefined;
  return [video.container, codec].filter(Boolean).join(", ");
}

/** ffprobe the ffmpeg source's input (after the source let go of it: devices and cameras allow one reader). */
async function probeFfmpegInput(
  options: CameraOptions,
): Promise<Pick<ProbeResult, "video" | "videoError" | "detected" | "audio" | "passthrough">> {
  const inUrl = splitUserinfo(options.url);
  const secrets = [
    ...credentialSecrets(options.user, options.password),
    ...credentialSecrets(inUrl.user, inUrl.password),
  ];
  const wanted = options.options?.rtspTransport;
  const transports = typeof wanted === "string" && wanted && wanted !== "auto" ? [wanted] : ["tcp", "udp"];
  try {
    const ffprobePath = resolveFfprobePath();
    let media: MediaProbe | undefined;
    let input: FfmpegInput | undefined;
    for (const rtspTransport of transports) {
      // Credentials reach ffprobe on stdin (a concat script), never in its argv.
      input = await ffmpegInput(ffprobePath, options.url, {
        user: options.user,
        password: options.password,
        rtspTransport,
        tlsArgs: await ffmpegTlsArgs(options.url, options.tls), // https: ffprobe verifies as ffmpeg does
      });
      try {
        media = await probeMedia(options.url, {
          ffprobePath,
          timeoutMs: FFPROBE_TIMEOUT_MS,
          inputArgs: input.args,
          stdin: input.stdin,
          secrets,
        });
        break;
      } catch (err) {
        if (!/461 Unsupported transport|Nonmatching transport/i.test((err as Error).message)) throw err;
      }
    }
    if (!media) return { videoError: "the RTSP server refused every transport" };
    // Through the concat script ffprobe names its own demuxer; the URL's scheme says what the camera speaks.
    if (input?.stdin && media.formatName === "concat") {
      media.formatName = input.scheme === "rtsp" || input.scheme === "rtsps" ? "rtsp" : undefined;
    }
    const video = describeVideo(media);
    const audioCodec = media.streams.find((st) => st.codecType === "audio")?.codecName;
    const audioWanted = options.options?.audio !== false;
    const mode = videoMode(options.options?.video ?? "auto");
    let passthrough: string;
    let audio = audioCodec ? audioCodec : "none";
    try {
      const plan = planVideo(mode, audioWanted, media);
      if (plan.pipeline === "copy") {
        passthrough = `will be passed through (${plan.videoCodec}, no re-encoding)`;
        if (audioCodec)
          audio += !audioWanted
            ? ", left out (audio off)"
            : plan.audio === "copy"
              ? ", copied"
              : ", converted to AAC";
      } else {
        passthrough =
          mode === "jpeg"
            ? 'not passed through: "video" is set to jpeg'
            : `not passed through: ${plan.why ?? ""}`;
        if (audioCodec) audio += ", left out (JPEG has no sound)";
      }
    } catch (err) {
      passthrough = (err as Error).message;
    }
    if (!video) return { videoError: "ffprobe found no video stream", audio, passthrough };
    return { video, detected: describeDetected(video) || undefined, audio, passthrough };
  } catch (err) {
    return { videoError: redactCredentials((err as Error).message, secrets) };
  }
}

/** Connects once, takes the first frame and counts frames for up to `measureMs` more, then disconnects. */
function probeFrames(
  options: CameraOptions,
  timeoutMs: number,
  measureMs: number,
): Promise<Omit<ProbeResult, "detected" | "video" | "videoError">> {
  return new Promise((resolve, reject) => {
    let source: ReturnType<typeof createSource>;
    try {
      source = createSource(options);
    } catch (err) {
      reject(err);
      return;
    }
    let first: { jpeg: Buffer; width: number; height: number; at: number } | undefined;
    let keyframeInterval: number | undefined;
    let frames = 0;
    let lastAt = 0;
    const finish = (err?: Error) => {
      clearTimeout(timeout);
      clearTimeout(measure);
      source.stop();
      if (!first) {
        reject(err ?? new Error(`no frame within ${Math.round(timeoutMs / 1000)} s`));
        return;
      }
      const span = lastAt - first.at;
      resolve({
        image: "data:image/jpeg;base64," + first.jpeg.toString("base64"),
        width: first.width,
        height: first.height,
        bytes: first.jpeg.length,
        fps: frames > 1 && span > 0 ? Math.round(((frames - 1) * 10000) / span) / 10 : 0,
        frames,
        protocol: options.protocol,
        ...(keyframeInterval ? { keyframeInterval } : {}),
      });
    };
    let measure: NodeJS.Timeout | undefined;
    const timeout = setTimeout(() => finish(), timeoutMs);
    source.on("frame", ({ data: jpeg, width, height }) => {
      frames++;
      lastAt = performance.now();
      if (!first) {
        first = { jpeg, width, height, at: lastAt };
        measure = setTimeout(() => finish(), measureMs);
      }
    });
    // Compressed video: the first keyframe decoded for the picture, frames counted from the fragments, and
    // the keyframe interval from two keyframe fragments (measured a little longer, up to 3x measureMs).
    let init: Buffer | undefined;
    let decoding = false;
    let keyAt: number[] = [];
    let videoFrames = 0;
    let firstFragAt = 0;
    source.on("init", (i) => {
      init = i.data;
      keyAt = [];
    });
    source.on("fragment", (fragment) => {
      if (!init) return;
      const now = performance.now();
      if (!firstFragAt) firstFragAt = now;
      else videoFrames += fragment.frames ?? 0;
      if (fragment.keyframe && fragment.startSec !== undefined) keyAt.push(fragment.startSec);
      if (keyAt.length >= 2) keyframeInterval = Math.round((keyAt[1] - keyAt[0]) * 100) / 100;
      if (!decoding && fragment.keyframe && options.ffmpegPath) {
        decoding = true;
        decodeKeyframe(options.ffmpegPath, init, [fragment.data], { timeoutMs: 5000 }).then(
          ({ data: jpeg, width, height }) => {
            first = { jpeg, width, height, at: performance.now() };
            measure = setTimeout(() => finish(), measureMs);
          },
          (err: Error) => finish(err),
        );
      }
      if (first && keyAt.length < 2 && measure && now - first.at < measureMs * 3) {
        clearTimeout(measure);
        measure = setTimeout(() => finish(), measureMs);
      }
      frames = videoFrames;
      if (firstFragAt) {
        lastAt = now;
        if (first) first.at = Math.min(first.at, firstFragAt);
      }
    });
    source.on("close", (err?: SourceError) => finish(err));
    source.start();
  });
}

/**
 * The editor's "test": one frame, the measured frame rate and what the camera turned out to speak (the
 * Content-Type for HTTP cameras; container, codec, size and rate from ffprobe for `ffmpeg` inputs).
 * Rejects with the camera's error in words when no frame came.
 */
export async function probeCamera(
  options: CameraOptions,
  timeoutMs: number,
  measureMs = 2000,
): Promise<ProbeResult> {
  const host = HTTP_PROTOCOLS.has(options.protocol) ? hostOf(options.url) : undefined;
  const watch = host ? watchContentType(host) : undefined;
  try {
    const result: ProbeResult = await probeFrames(options, timeoutMs, measureMs);
    const contentType = watch?.get();
    if (contentType) result.detected = contentType;
    if (options.protocol === "ffmpeg") {
      Object.assign(result, await probeFfmpegInput(options));
      if (result.video && result.keyframeInterval) result.video.keyframeInterval = result.keyframeInterval;
    }
    return result;
  } finally {
    watch?.stop();
  }
}
