import { credentialSecrets, redactCredentials, splitUserinfo } from "../credentials";
import { FfmpegProcess, ffmpegInput, resolveFfmpegPath } from "../ffmpeg";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { CertificateError, ffmpegTlsArgs } from "./tls";
import { FrameSource, SourceConfig, SourceError, SourceErrorKind, SourceErrorReason } from "./source";

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** True when ffmpeg's stderr says the server refused the RTSP transport (VLC answers 461 to TCP). */
export function isTransportRefusal(stderr: string[]): boolean {
  return /461 Unsupported transport|Nonmatching transport/i.test(stderr.join("\n"));
}

/** The short reason for the node status of a refusal that retrying cannot fix, if stderr names one. */
export function failureReason(stderr: string[]): SourceErrorReason | undefined {
  const text = stderr.join("\n");
  if (/401 Unauthorized|403 Forbidden|authorization failed/i.test(text)) return "auth";
  if (/404 Not Found|No such file or directory/i.test(text)) return "notFound";
  if (isTransportRefusal(stderr)) return "transport";
  if (/Protocol not on whitelist|not on (the )?whitelist/i.test(text)) return "protocol";
  return undefined;
}

/** What ffmpeg's stderr says about a failed input, as a source error kind. */
export function classifyFfmpegFailure(
  stderr: string[],
  code: number | null,
  isFile: boolean,
): SourceErrorKind {
  const text = stderr.join("\n");
  if (/401 Unauthorized|403 Forbidden|authorization failed/i.test(text)) return "auth";
  if (isTransportRefusal(stderr)) return "config";
  // Retrying cannot fix a wrong path, scheme, format or option.
  if (
    /No such file or directory|Protocol not found|Unknown input format|Unrecognized option|Option not found|404 Not Found|Permission denied|Error opening filters|No such device|Peer certificate failed verification|certificate's owner does not match/i.test(
      text,
    )
  ) {
    return "config";
  }
  if (/Invalid data found when processing input|does not contain any stream|Invalid argument/i.test(text)) {
    // A bad file stays bad; a camera sending garbage may recover after a restart.
    return isFile ? "config" : "protocol";
  }
  if (code === 0) return "ended";
  if (isFile && !/Connection|timed out|network/i.test(text)) return "ended";
  return "network";
}

/**
 * The `ffmpeg` camera protocol: anything ffmpeg opens (RTSP, RTMP, HLS, http, files, V4L2 devices) decoded
 * once and re-encoded to JPEG frames on stdout, split by the MJPEG parser.
 */
export class FfmpegSource extends FrameSource {
  private proc?: FfmpegProcess;
  private parser?: JpegStreamSplitter;
  private gotBytes = false;
  private saidTlsOnlyBefore = false;
  /** The RTSP transport of this attempt; `auto` starts with TCP and falls back to UDP on a refusal. */
  private transport: string;

  constructor(config: SourceConfig) {
    super(config);
    const wanted = config.options?.rtspTransport;
    this.transport = typeof wanted === "string" && wanted && wanted !== "auto" ? wanted : "tcp";
  }

  private get autoTransport(): boolean {
    const wanted = this.config.options?.rtspTransport;
    return wanted === undefined || wanted === "" || wanted === "auto";
  }

  private get secrets(): string[] {
    const inUrl = splitUserinfo(this.config.url.trim());
    return [
      ...credentialSecrets(this.config.user, this.config.password),
      ...credentialSecrets(inUrl.user, inUrl.password),
    ];
  }

  /** The input as people may see it: no credentials. */
  private get displayInput(): string {
    return redactCredentials(this.config.url, this.secrets);
  }

  start(): void {
    let ffmpegPath: string;
    try {
      ffmpegPath = this.config.ffmpegPath || resolveFfmpegPath();
    } catch (err) {
      setImmediate(() => this.finish(new SourceError("config", (err as Error).message)));
      return;
    }
    this.launch(ffmpegPath);
  }

  private launch(ffmpegPath: string): void {
    this.buildCommand(ffmpegPath).then(
      (command) => {
        if (!this.stopped) this.spawn(ffmpegPath, command.args, command.stdin);
      },
      (err: Error) =>
        this.finish(
          err instanceof CertificateError
            ? err
            : new SourceError(
                err instanceof SourceError ? err.kind : "config",
                redactCredentials(err.message, this.secrets),
              ),
        ),
    );
  }

  /** ffmpeg arguments (no credentials in them); exported shape for tests. */
  async buildArgs(ffmpegPath: string): Promise<string[]> {
    return (await this.buildCommand(ffmpegPath)).args;
  }

  /** ffmpeg arguments and what to write to its stdin (the input URL when it carries credentials). */
  async buildCommand(ffmpegPath: string): Promise<{ args: string[]; stdin?: string }> {
    const opts = this.config.options ?? {};
    const input = await ffmpegInput(ffmpegPath, this.config.url, {
      user: this.config.user,
      password: this.config.password,
      rtspTransport: this.transport,
      ioTimeout: true,
      // https/rtmps: ffmpeg verifies the certificate (or the pinned one) itself.
      tlsArgs: await ffmpegTlsArgs(this.config.url, this.config.tls),
    });
    if (input.tlsCheckedOnlyBefore && !this.saidTlsOnlyBefore) {
      this.saidTlsOnlyBefore = true;
      this.warn(
        "this ffmpeg (older than 5) cannot check the camera's certificate itself while the password stays " +
          "off its command line: camrelay checks it just before each connection instead (install ffmpeg 5 " +
          "or later to have both)",
      );
    }
    const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats"];
    if (input.isFile && !input.isDevice) {
      args.push("-re"); // a file plays at its real speed, like a camera
      if (opts.loop === true) args.push("-stream_loop", "-1");
    }
    if (opts.keyframesOnly === true) args.push("-skip_frame", "nokey");
    args.push(...input.args);
    const quality =
      typeof opts.quality === "number" && opts.quality >= 1 && opts.quality <= 31 ? opts.quality : 5;
    args.push("-an", "-sn", "-dn");
    const fps = this.config.fps;
    if (fps > 0) {
      // At most one frame per 1/fps slot of stream time; unlike the fps filter it never duplicates frames
      // when the input is slower than the cap.
      args.push(
        "-vf",
        `select='isnan(prev_selected_t)+gte(floor(t*${fps})-floor(prev_selected_t*${fps}),1)'`,
      );
      args.push("-vsync", "vfr");
    }
    args.push("-f", "image2pipe", "-c:v", "mjpeg", "-q:v", String(Math.round(quality)), "pipe:1");
    return { args, stdin: input.stdin };
  }

  private spawn(ffmpegPath: string, args: string[], stdin?: string): void {
    const isFile = !SCHEME.test(this.config.url.trim()) || /^file:/i.test(this.config.url.trim());
    const parser = new JpegStreamSplitter(
      (jpeg, width, height) => this.emitFrame(jpeg, width, height),
      (problem) => this.warn(problem.message),
      { maxFrameBytes: this.config.maxFrameBytes },
    );
    this.parser = parser;
    const proc = new FfmpegProcess({
      ffmpegPath,
      args,
      secrets: this.secrets,
      stderrLines: 12,
      stdin: stdin !== undefined,
    });
    this.proc = proc;
    proc.on("exit", ({ code, signal }) => {
      if (this.stopped) return;
      parser.reset();
      const lines = proc.lastStderr();
      if (isTransportRefusal(lines) && this.autoTransport && this.transport === "tcp" && !this.gotBytes) {
        // `auto`: the server refused RTP over TCP (VLC speaks only UDP); try UDP at once, as ffmpeg would.
        this.transport = "udp";
        this.proc = undefined;
        this.launch(ffmpegPath);
        return;
      }
      const detail = lines.length ? `: ${lines.slice(-4).join(" | ")}` : "";
      if (proc.spawnError) {
        this.finish(new SourceError("config", `ffmpeg could not be started${detail}`));
        return;
      }
      const kind = classifyFfmpegFailure(lines, code, isFile);
      const reason = failureReason(lines);
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const what = kind === "ended" && code === 0 ? "input ended" : `ffmpeg ${how}`;
      this.finish(
        new SourceError(
          kind,
          redactCredentials(`${what} (${this.displayInput})${detail}`, this.secrets),
          reason,
        ),
      );
    });
    proc.start();
    if (stdin !== undefined) proc.stdin?.end(stdin);
    proc.stdout?.on("data", (chunk: Buffer) => {
      if (!this.gotBytes) {
        this.gotBytes = true;
        this.emit("connected");
      }
      parser.push(chunk);
    });
  }

  /** The running ffmpeg's pid, for tests and diagnostics. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The ffmpeg command, credentials redacted. */
  commandLine(): string | undefined {
    return this.proc?.commandLine();
  }

  protected release(): void {
    const proc = this.proc;
    this.proc = undefined;
    if (proc) void proc.stop(3000);
  }
}
