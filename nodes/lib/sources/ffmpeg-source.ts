import { credentialSecrets, redactCredentials, splitUserinfo } from "../credentials";
import { FfmpegProcess, ffmpegInput, resolveFfmpegPath, resolveFfprobePath } from "../ffmpeg";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { Mp4FragmentSplitter } from "../codec/fmp4-splitter";
import { spsChanged, type SpsInfo } from "../codec/h264-sps";
import { copyOutputArgs, planVideo, probeCameraInput, videoMode, type VideoPlan } from "./ffmpeg-copy";
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

/** How long the per-connection ffprobe may take before the connection attempt counts as failed. */
const PROBE_TIMEOUT_MS = 8000;
/** The JPEG pipeline, as `video: jpeg` runs it. */
const JPEG_PLAN: VideoPlan = { pipeline: "jpeg", audio: "none" };

/** At most one restart of ffmpeg for an in-band SPS change in this long. */
const SPS_RESTART_MS = 10000;

/** "640x360 H.264 profile 100", for words and comparisons. */
function spsKey(sps: SpsInfo): string {
  return `${sps.width}x${sps.height} ${sps.codec === "h265" ? "H.265" : "H.264"} profile ${sps.profile}`;
}

/**
 * The `ffmpeg` camera protocol: anything ffmpeg opens (RTSP, RTMP, HLS, http, files, V4L2 devices). H.264 and
 * H.265 are passed through (`video` auto or copy: one ffmpeg copying to fragmented MP4, audio as AAC), anything
 * else (or `video: jpeg`) is decoded once and re-encoded to JPEG frames on stdout, split by the JPEG splitter.
 * Both pipelines share the input handling: credentials on stdin, the RTSP transport fallback, TLS, the
 * classification of failures.
 */
export class FfmpegSource extends FrameSource {
  private proc?: FfmpegProcess;
  private parser?: JpegStreamSplitter;
  /** What this connection runs, once decided (the probe in auto/copy mode). */
  plan?: VideoPlan;
  private gotBytes = false;
  private saidTlsOnlyBefore = false;
  /** The RTSP transport of this attempt; `auto` starts with TCP and falls back to UDP on a refusal. */
  private transport: string;
  /** H.264 copy: the SPS of the init this run wrote (ffmpeg's copy keeps it when the camera changes). */
  private initSps?: SpsInfo;
  /** The run being ended because the camera's in-band SPS says another size or profile. */
  private spsRestarting?: FfmpegProcess;
  private lastSpsRestart = -Infinity;
  /** The in-band SPS (size/profile) the last restart was for, and one a restart did not bring into the init. */
  private spsRestartFor?: string;
  private spsGaveUp?: string;
  /** The Camera's wish for reading the copied video in bursts (ms; 0 = as it comes). */
  private readBatchMs = 0;

  constructor(config: SourceConfig) {
    super(config);
    const wanted = config.options?.rtspTransport;
    this.transport = typeof wanted === "string" && wanted && wanted !== "auto" ? wanted : "tcp";
  }

  override setReadBatching(ms: number): void {
    this.readBatchMs = Math.max(0, ms);
    if (this.plan?.pipeline === "copy") this.proc?.batchStdout(this.readBatchMs);
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
    // A source made without the setting (tests, old callers) decodes to JPEG as before; camera-source nodes
    // pass the editor's value ("auto" by default, see cameraOptions).
    const mode = videoMode(this.config.options?.video ?? "jpeg");
    if (mode === "jpeg") {
      this.plan = JPEG_PLAN;
      this.launch(ffmpegPath);
      return;
    }
    this.probeThenLaunch(ffmpegPath, mode);
  }

  /** auto/copy: ffprobe the input once for this connection, then run the pipeline its codec allows. */
  private probeThenLaunch(ffmpegPath: string, mode: "auto" | "copy"): void {
    let ffprobePath: string;
    try {
      ffprobePath = resolveFfprobePath();
    } catch (err) {
      if (mode === "copy") {
        const why = `video "copy" needs ffprobe to read the camera's codec: ${(err as Error).message}`;
        setImmediate(() => this.finish(new SourceError("config", why)));
        return;
      }
      this.warnOnce(
        "noProbe",
        `no ffprobe found, so the video is decoded to JPEG: ${(err as Error).message}`,
      );
      this.plan = JPEG_PLAN;
      this.launch(ffmpegPath);
      return;
    }
    const audio = this.config.options?.audio !== false;
    probeCameraInput({
      url: this.config.url,
      user: this.config.user,
      password: this.config.password,
      tls: this.config.tls,
      rtspTransport: this.autoTransport ? "auto" : this.transport,
      ffprobePath,
      ffmpegPath,
      timeoutMs: PROBE_TIMEOUT_MS,
    }).then(
      ({ media, transport }) => {
        if (this.stopped) return;
        if (transport && this.autoTransport) this.transport = transport;
        let plan: VideoPlan;
        try {
          plan = planVideo(mode, audio, media);
        } catch (err) {
          this.finish(new SourceError("config", (err as Error).message));
          return;
        }
        if (plan.why) this.warnOnce(`jpeg:${plan.videoCodec}`, plan.why);
        this.plan = plan;
        this.launch(ffmpegPath);
      },
      (err: Error) => {
        if (this.stopped) return;
        // An untrusted https certificate is reported as itself (the dialog offers to trust it), as without a probe.
        if (err instanceof CertificateError) {
          this.finish(err);
          return;
        }
        // ffprobe met what ffmpeg would have met: the same words decide the kind (auth, config, network...).
        const lines = [err.message];
        const isFile = !SCHEME.test(this.config.url.trim()) || /^file:/i.test(this.config.url.trim());
        const kind = /no answer within/.test(err.message)
          ? "network"
          : classifyFfmpegFailure(lines, 1, isFile);
        this.finish(
          new SourceError(
            kind === "ended" ? "network" : kind,
            redactCredentials(`${err.message} (${this.displayInput})`, this.secrets),
            failureReason(lines),
          ),
        );
      },
    );
  }

  private readonly warned = new Set<string>();

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
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

  /**
   * ffmpeg arguments and what to write to its stdin (the input URL when it carries credentials), for `plan`
   * (default: this connection's plan, else the JPEG pipeline).
   */
  async buildCommand(
    ffmpegPath: string,
    plan: VideoPlan = this.plan ?? JPEG_PLAN,
  ): Promise<{ args: string[]; stdin?: string }> {
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
    if (opts.keyframesOnly === true && plan.pipeline === "jpeg") args.push("-skip_frame", "nokey");
    args.push(...input.args);
    if (plan.pipeline === "copy") {
      args.push(...copyOutputArgs(plan));
      return { args, stdin: input.stdin };
    }
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
    const copy = this.plan?.pipeline === "copy";
    const parser = new JpegStreamSplitter(
      (jpeg, width, height) => this.emitFrame(jpeg, width, height),
      (problem) => this.warn(problem.message),
      { maxFrameBytes: this.config.maxFrameBytes },
    );
    this.parser = parser;
    const mp4 = copy ? this.mp4Splitter() : undefined;
    const proc = new FfmpegProcess({
      ffmpegPath,
      args,
      secrets: this.secrets,
      stderrLines: 12,
      stdin: stdin !== undefined,
    });
    this.proc = proc;
    if (copy) proc.on("spawn", () => proc.batchStdout(this.readBatchMs));
    proc.on("exit", ({ code, signal }) => {
      if (this.stopped) return;
      parser.reset();
      if (this.spsRestarting === proc) {
        // Ended on purpose for a new init: the next run starts at once (the camera is fine).
        this.spsRestarting = undefined;
        this.proc = undefined;
        this.launch(ffmpegPath);
        return;
      }
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
      if (mp4) mp4.push(chunk);
      else parser.push(chunk);
    });
  }

  /** Init and fragments out of the copying ffmpeg's stdout; a box beyond 8x maxFrameBytes counts as damage. */
  private mp4Splitter(): Mp4FragmentSplitter {
    return new Mp4FragmentSplitter(
      {
        init: (data, info) => {
          this.onInitSps(info.sps);
          this.emitInit({
            data,
            codec: info.codec,
            width: info.width,
            height: info.height,
            timescale: info.timescale,
            videoCodec: info.videoCodec,
            audioCodec: info.audioCodec,
          });
        },
        fragment: (data, info) => {
          if (info.sps) this.onInbandSps(info.sps);
          this.emitFragment({
            data,
            duration: info.durationSec,
            keyframe: info.keyframe,
            startSec: info.startSec,
            frames: info.samples,
          });
        },
        problem: (message) => this.warn(message),
      },
      { maxBoxBytes: Math.max(16 << 20, this.config.maxFrameBytes * 8) },
    );
  }

  /** A new init of this connection: its SPS is what in-band ones are compared with. */
  private onInitSps(sps: SpsInfo | undefined): void {
    this.initSps = sps;
    const key = sps && spsKey(sps);
    // A restart that did not bring the camera's new SPS into the init (the server's SDP still says the old
    // one): no more restarts for that SPS, the stream goes on as it is.
    if (this.spsRestartFor !== undefined && key !== this.spsRestartFor) {
      this.spsGaveUp = this.spsRestartFor;
      this.warn(
        `the camera sends ${this.spsRestartFor} video but a new connection still announces ${key ?? "another"}: ` +
          "going on with the old init (players may show the picture wrongly until the camera restarts)",
      );
    }
    this.spsRestartFor = undefined;
  }

  /**
   * An SPS sent in-band before a keyframe: another size or profile than the init's (a camera that switched
   * resolution) restarts ffmpeg so that it writes a new init (a new initId downstream: HLS, stream.mp4 and
   * recordings follow). Size and profile only are compared (SDP and in-band SPS often differ in their VUI),
   * at most one restart every 10 s, and none for an SPS a restart did not help with.
   */
  private onInbandSps(sps: SpsInfo): void {
    const init = this.initSps;
    if (!init || !spsChanged(init, sps) || this.spsRestarting) return;
    const key = spsKey(sps);
    if (key === this.spsGaveUp || Date.now() - this.lastSpsRestart < SPS_RESTART_MS) return;
    const proc = this.proc;
    if (!proc) return;
    this.lastSpsRestart = Date.now();
    this.spsRestartFor = key;
    this.spsRestarts++;
    this.warn(`the camera switched from ${spsKey(init)} to ${key}: restarting ffmpeg for a new init`);
    this.spsRestarting = proc;
    void proc.stop(3000);
  }

  /** Restarts of ffmpeg for an in-band SPS change (tests and diagnostics). */
  spsRestarts = 0;

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
