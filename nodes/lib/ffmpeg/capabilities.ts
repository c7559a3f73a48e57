/**
 * Asking an ffmpeg binary what it supports (encoders, option names that changed between versions, the
 * concat demuxer's `option` lines), each answer cached per binary. Encoders go through fluent-ffmpeg, which is
 * archived upstream and may have to be replaced: it is used nowhere else.
 */
import { execFile } from "child_process";
import fluent from "fluent-ffmpeg";

const encoderCache = new Map<string, Promise<Set<string>>>();

/**
 * Names of the encoders an ffmpeg binary has (`ffmpeg -encoders`), cached per path. fluent-ffmpeg keeps one
 * process-wide capability cache, so a process using two different binaries gets the first one's list; the
 * hardware-encoder trial encode guards against that.
 */
export function listEncoders(ffmpegPath: string): Promise<Set<string>> {
  let cached = encoderCache.get(ffmpegPath);
  if (!cached) {
    cached = new Promise<Set<string>>((resolve, reject) => {
      fluent.setFfmpegPath(ffmpegPath);
      fluent.getAvailableEncoders((err: Error | null, encoders: Record<string, unknown>) => {
        if (err) reject(new Error(`could not list ffmpeg encoders: ${err.message}`));
        else resolve(new Set(Object.keys(encoders ?? {})));
      });
    });
    cached.catch(() => encoderCache.delete(ffmpegPath));
    encoderCache.set(ffmpegPath, cached);
  }
  return cached;
}

const helpCache = new Map<string, Promise<string>>();

/** `ffmpeg -h <topic>` text, cached per binary (used to pick option names that changed between versions). */
export function ffmpegHelp(ffmpegPath: string, topic: string): Promise<string> {
  const key = `${ffmpegPath}\0${topic}`;
  let cached = helpCache.get(key);
  if (!cached) {
    cached = new Promise((resolve) => {
      execFile(
        ffmpegPath,
        ["-hide_banner", "-h", topic],
        { timeout: 10000, maxBuffer: 4 << 20 },
        (_err, stdout) => resolve(String(stdout ?? "")),
      );
    });
    helpCache.set(key, cached);
  }
  return cached;
}

const concatOptionCache = new Map<string, Promise<boolean>>();

/**
 * Whether a binary's concat demuxer reads `option` lines: asked of the binary itself with a script that has an
 * `option` line and no file (ffmpeg 5 answers "option without file", 4.x "unknown keyword 'option'"). Cached
 * per path once the binary gave either answer; anything else (a timeout under load) counts as no, uncached.
 */
export function concatHasOptionDirective(binaryPath: string): Promise<boolean> {
  let cached = concatOptionCache.get(binaryPath);
  if (!cached) {
    cached = new Promise<boolean>((resolve) => {
      const child = execFile(
        binaryPath,
        ["-hide_banner", "-loglevel", "error", "-f", "concat", "-safe", "0"].concat([
          "-protocol_whitelist",
          "pipe",
          "-i",
          "pipe:0",
        ]),
        { timeout: 10000, maxBuffer: 1 << 20 },
        (_err, _stdout, stderr) => {
          const text = String(stderr ?? "");
          const known = /option without file/.test(text);
          if (!known && !/unknown keyword 'option'/.test(text)) concatOptionCache.delete(binaryPath);
          resolve(known);
        },
      );
      child.stdin?.on("error", () => undefined);
      child.stdin?.end("ffconcat version 1.0\noption probesize 32\n");
    });
    concatOptionCache.set(binaryPath, cached);
  }
  return cached;
}

/** The RTSP demuxer's socket-timeout option: `-stimeout` up to ffmpeg 4.x, `-timeout` (microseconds) after. */
export async function rtspTimeoutOption(ffmpegPath: string): Promise<string> {
  const help = await ffmpegHelp(ffmpegPath, "demuxer=rtsp");
  return /^\s*-stimeout\b/m.test(help) ? "-stimeout" : "-timeout";
}
