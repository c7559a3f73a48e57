/** ffprobe of a file or URL, with a timeout, as a small typed result. */
import { execFile } from "child_process";
import { redactCredentials } from "../credentials";
import { resolveFfmpegPath, resolveFfprobePath } from "./binary";

export interface ProbedStream {
  codecType?: string;
  codecName?: string;
  profile?: string;
  width?: number;
  height?: number;
  /** Nominal frames per second (ffprobe's avg_frame_rate, else r_frame_rate). */
  fps?: number;
  frames?: number;
  durationSec?: number;
}

export interface ProbeResult {
  formatName?: string;
  durationSec?: number;
  streams: ProbedStream[];
}

function num(value: unknown): number | undefined {
  const n = typeof value === "number" ? value : typeof value === "string" ? parseFloat(value) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

/** "30000/1001" or "25/1" as a number rounded to 0.01; undefined for "0/0" and junk. */
export function parseFrameRate(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const [n, d] = value.split("/").map(Number);
  const rate = d === undefined ? n : n / d;
  return Number.isFinite(rate) && rate > 0 ? Math.round(rate * 100) / 100 : undefined;
}

interface FfprobeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<Record<string, unknown>>;
}

/** ffprobe's JSON as a ProbeResult: only fields of the right type, numbers parsed. */
function probeResult(data: FfprobeJson): ProbeResult {
  return {
    formatName: data.format?.format_name,
    durationSec: num(data.format?.duration),
    streams: (data.streams ?? []).map((s) => ({
      codecType: typeof s.codec_type === "string" ? s.codec_type : undefined,
      codecName: typeof s.codec_name === "string" ? s.codec_name : undefined,
      profile: s.profile === undefined ? undefined : String(s.profile),
      width: num(s.width),
      height: num(s.height),
      fps: parseFrameRate(s.avg_frame_rate) ?? parseFrameRate(s.r_frame_rate),
      frames: num(s.nb_read_frames) ?? num(s.nb_frames),
      durationSec: num(s.duration),
    })),
  };
}

/** Runs `bin` with a kill timeout, `stdin` written and closed; the callback gets execFile's result. */
function runWithStdin(
  bin: string,
  args: string[],
  timeoutMs: number,
  stdin: string | undefined,
  done: (
    err: (Error & { killed?: boolean; signal?: string | null }) | null,
    stdout: string,
    stderr: string,
  ) => void,
): void {
  const child = execFile(
    bin,
    args,
    { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, windowsHide: true },
    (err, stdout, stderr) => done(err, String(stdout), String(stderr)),
  );
  child.stdin?.on("error", () => undefined);
  child.stdin?.end(stdin ?? "");
}

/** "00:01:02.50" as seconds; undefined for "N/A" and junk. */
function clockSeconds(value: string): number | undefined {
  const m = /^(\d+):(\d\d):(\d\d(?:\.\d+)?)$/.exec(value);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
}

/**
 * The facts of a probe read from `ffmpeg -i`'s banner instead of ffprobe's JSON: the input format, the
 * duration and, per stream, type, codec, profile, size and frame rate. Exported for its spec.
 */
export function probeFromFfmpegBanner(stderr: string): ProbeResult | undefined {
  const result: ProbeResult = { streams: [] };
  for (const line of stderr.split("\n")) {
    const input = /^Input #0, ([^ ]+), from /.exec(line);
    if (input) result.formatName = input[1].replace(/,$/, "");
    const duration = /^\s*Duration: ([^,]+),/.exec(line);
    if (duration) result.durationSec = clockSeconds(duration[1].trim());
    const stream = /^\s*Stream #0:\d+\S*: (Video|Audio|Data|Subtitle): (\w+)(?: \(([^)]+)\))?(.*)$/.exec(
      line,
    );
    if (!stream) continue;
    const s: ProbedStream = { codecType: stream[1].toLowerCase(), codecName: stream[2] };
    // "(High)" is a profile; "(avc1 / 0x31637661)" and "([27][0][0][0] / 0x001B)" are codec tags.
    if (stream[3] && !stream[3].includes("/")) s.profile = stream[3];
    const size = /, (\d+)x(\d+)/.exec(stream[4]);
    if (size && s.codecType === "video") [s.width, s.height] = [Number(size[1]), Number(size[2])];
    const fps = /, ([\d.]+) fps/.exec(stream[4]) ?? /, ([\d.]+) tbr/.exec(stream[4]);
    if (fps && s.codecType === "video") s.fps = parseFrameRate(fps[1]);
    result.streams.push(s);
  }
  return result.streams.length ? result : undefined;
}

/**
 * The bundled ffprobe (@ffprobe-installer, a 2018 build) dies of SIGSEGV on every MPEG-TS input, files and
 * live streams alike, where the bundled ffmpeg reads them well. When ffprobe dies of a signal (not of our
 * timeout), the same input goes to ffmpeg, whose banner says the same facts.
 */
function probeWithFfmpeg(
  args: string[],
  opts: { ffmpegPath?: string; timeoutMs: number; stdin?: string; secrets?: string[] },
): Promise<ProbeResult> {
  const ffmpegPath = opts.ffmpegPath ?? resolveFfmpegPath();
  return new Promise((resolve, reject) => {
    runWithStdin(
      ffmpegPath,
      ["-hide_banner", ...args],
      opts.timeoutMs,
      opts.stdin,
      (err, _stdout, stderr) => {
        // With no output named ffmpeg prints the input's streams and exits 1: that is the answer.
        const result = probeFromFfmpegBanner(String(stderr));
        if (result) return resolve(result);
        const killed = (err as { killed?: boolean } | null)?.killed;
        const why = killed
          ? `no answer within ${Math.round(opts.timeoutMs / 1000)} s`
          : String(stderr).trim().split("\n").slice(-3).join(" ") || String(err?.message);
        reject(
          new Error(
            redactCredentials(`ffprobe crashed and ffmpeg could not read it either: ${why}`, opts.secrets),
          ),
        );
      },
    );
  });
}

/**
 * ffprobe a file or URL; `countFrames` decodes it all to count video frames. ffprobe gets `timeoutMs`
 * (20 s by default, a camera that accepts and never answers must not hold the probe) and is then killed.
 * fluent-ffmpeg's ffprobe has no timeout, so this runs the binary itself with JSON output.
 */
export function probeMedia(
  input: string,
  opts: {
    ffprobePath?: string;
    countFrames?: boolean;
    timeoutMs?: number;
    /** Input options and `-i ...` in place of `input` (a whitelist; a concat script on stdin). */
    inputArgs?: string[];
    /** Written to ffprobe's stdin, which is then closed (the script naming a URL with credentials). */
    stdin?: string;
    /** Strings to take out of error messages. */
    secrets?: string[];
    /** The ffmpeg that reads the input when ffprobe crashes (the resolved one by default). */
    ffmpegPath?: string;
  } = {},
): Promise<ProbeResult> {
  const ffprobePath = opts.ffprobePath ?? resolveFfprobePath();
  const timeoutMs = opts.timeoutMs ?? 20000;
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"];
  if (opts.countFrames) args.push("-count_frames");
  const inputArgs = opts.inputArgs ?? ["-i", input];
  if (opts.inputArgs) args.push(...opts.inputArgs);
  else args.push(input);
  return new Promise((resolve, reject) => {
    runWithStdin(ffprobePath, args, timeoutMs, opts.stdin, (err, stdout, stderr) => {
      if (err) {
        const killed = (err as { killed?: boolean }).killed;
        const signal = (err as { signal?: string | null }).signal;
        if (signal && !killed && !opts.countFrames) {
          probeWithFfmpeg(inputArgs, { ...opts, timeoutMs }).then(resolve, reject);
          return;
        }
        const why = killed
          ? `no answer within ${Math.round(timeoutMs / 1000)} s`
          : String(stderr || err.message)
              .trim()
              .split("\n")
              .slice(-3)
              .join(" ");
        reject(new Error(redactCredentials(`ffprobe failed: ${why}`, opts.secrets)));
        return;
      }
      let data: FfprobeJson;
      try {
        data = JSON.parse(String(stdout)) as FfprobeJson;
      } catch {
        reject(new Error("ffprobe failed: its output was not JSON"));
        return;
      }
      resolve(probeResult(data));
    });
  });
}
