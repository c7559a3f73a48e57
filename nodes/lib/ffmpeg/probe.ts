/** ffprobe of a file or URL, with a timeout, as a small typed result. */
import { execFile } from "child_process";
import { redactCredentials } from "../credentials";
import { resolveFfprobePath } from "./binary";

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
  } = {},
): Promise<ProbeResult> {
  const ffprobePath = opts.ffprobePath ?? resolveFfprobePath();
  const timeoutMs = opts.timeoutMs ?? 20000;
  const args = ["-v", "error", "-print_format", "json", "-show_format", "-show_streams"];
  if (opts.countFrames) args.push("-count_frames");
  if (opts.inputArgs) args.push(...opts.inputArgs);
  else args.push(input);
  return new Promise((resolve, reject) => {
    const child = execFile(
      ffprobePath,
      args,
      { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 << 20, windowsHide: true },
      (err, stdout, stderr) => {
        if (err) {
          const killed = (err as { killed?: boolean }).killed;
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
      },
    );
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(opts.stdin ?? "");
  });
}
