/**
 * The one place camrelay talks to ffmpeg, by job: binary.ts finds the binaries, process.ts runs one
 * supervised process, progress.ts reads its progress, probe.ts runs ffprobe, capabilities.ts asks a binary
 * what it supports, encoders.ts knows the H.264 encoders, input.ts builds a camera's input arguments.
 * Import from `../ffmpeg`.
 */
export { findBinary, resolveFfmpegPath, resolveFfprobePath, type BinaryLookup } from "./binary";
export { concatHasOptionDirective, ffmpegHelp, listEncoders, rtspTimeoutOption } from "./capabilities";
export {
  ENCODERS,
  HARDWARE_ENCODERS,
  chooseEncoder,
  h264Level,
  trialEncode,
  type EncoderProfile,
} from "./encoders";
export { ffmpegInput, protocolWhitelist, type FfmpegInput, type FfmpegInputOptions } from "./input";
export { parseFrameRate, probeMedia, type ProbedStream, type ProbeResult } from "./probe";
export {
  FfmpegProcess,
  type FfmpegExit,
  type FfmpegProcessEvents,
  type FfmpegProcessOptions,
} from "./process";
export { isProgressPairLine, parseProgressLine, type FfmpegProgress } from "./progress";
