/**
 * The core of one `ffmpeg transcode` node, without Node-RED: owns the Recorder (mp4) or LiveTranscoder
 * (every other preset), takes frames and control messages, meters what goes in and out, and says what
 * it is doing as a TranscodeStatus. Everything it reports is an i18n key with parameters (or a lower
 * layer's own words); the adapter translates, redacts and logs.
 */
import { EventEmitter } from "events";
import type { NodeMessage } from "node-red";
import {
  ENCODERS,
  chooseEncoder,
  rtspTimeoutOption,
  type EncoderProfile,
  type FfmpegProgress,
} from "../ffmpeg";
import { monotonicEpochMs, type Frame } from "../media";
import { mp4Message, recordingMessage, type RecordingInfo } from "../messages";
import { RateMeter } from "../meters";
import { readAction, readStart, type ControlMessage } from "./control";
import { RecorderError } from "./filenames";
import { FrameClock } from "./frame-clock";
import { LiveTranscoder, failureCause, hlsSweeper, type LiveState } from "./live";
import { compressedLiveOutput, liveOutput } from "./outputs";
import { CopyLive } from "./copy-live";
import { Recorder } from "./recorder";
import { CopyRecorder } from "./copy-recorder";
import type { Mp4Unit } from "./mp4-input";
import { readMp4Info } from "../messages/mp4";
import { RetentionSweeper } from "./retention";
import { MAX_FRAME_SIDE, oversizeFrame } from "./session";
import type { Message, SettingsProblem, TranscodeSettings } from "./settings";
import { transcodeStatus, type TranscodeStatus } from "./status";

/** How long an error shows in the status, and how often "not keeping up" is logged at most. */
const ERROR_SHOWN_MS = 5000;
const DROP_WARN_MS = 10000;

export interface TranscoderEvents {
  /** A message to send on the node's output. */
  message: [message: NodeMessage];
  error: [problem: SettingsProblem];
  warn: [problem: SettingsProblem];
  log: [problem: SettingsProblem];
  /** Something changed that the status shows. */
  status: [];
}

export interface TranscoderOptions {
  settings: TranscodeSettings;
  ffmpegPath: string;
  user?: string;
  password?: string;
  secrets: (string | undefined)[];
  /** The node's name: frames without a camera of their own are named after it. */
  camera: string;
}

export class Transcoder extends EventEmitter<TranscoderEvents> {
  private jpegRecorder?: Recorder;
  /** Recordings of compressed input (msg.mp4): copied, no encoder. */
  private copyRecorder?: CopyRecorder;
  /** The last input was msg.mp4: recordings and control go to the copy recorder. */
  private compressed = false;
  /** Live passthrough of msg.mp4 (hls/fmp4 with no size or bitrate change): the next seq sent. */
  private passSeq = 0;
  private passInitSent?: number;
  private latestInit?: Mp4Unit;
  private compressedRefused = false;
  private live?: LiveTranscoder;
  /** flv, push and hls with a directory fed with msg.mp4: an ffmpeg that copies (or encodes, saying why). */
  private copyLive?: CopyLive;
  private closed = false;
  private lastProgress?: FfmpegProgress;
  private error = { key: "", until: 0 };
  private camera: string;
  private lastDropWarn = 0;
  /** The cause of the failure last logged; cleared when ffmpeg runs again (one log line per outage). */
  private reportedCause?: string;
  private oversizeReported = false;
  private readonly inputRate = new RateMeter(5000);
  /** Bytes of fMP4 sent: the rate ffmpeg cannot report for its tee output. */
  private readonly sentRate = new RateMeter(5000);
  private readonly clock = new FrameClock();
  private readonly sweepHls?: () => void;
  private readonly s: TranscodeSettings;

  /** A setup failure that stops the node for good: its status key (the adapter sets it). */
  fatalKey?: string;

  constructor(private readonly opts: TranscoderOptions) {
    super();
    this.s = opts.settings;
    this.camera = opts.camera;
    // Earlier runs' segments the playlist no longer lists (ffmpeg deletes only its own run's). */
    if (this.s.preset === "hls" && this.s.directory) {
      this.sweepHls = hlsSweeper(this.s.directory, this.s.video.keyframeInterval);
      this.sweepHls();
    }
  }

  /** Chooses the encoder (and for push the RTSP timeout option), then sets the recorder or live run up. */
  start(): void {
    const { preset } = this.s;
    Promise.all([
      // The custom preset's arguments are the user's own: no encoder is chosen (or tried) for them.
      preset === "custom" ? ENCODERS.libx264 : chooseEncoder(this.opts.ffmpegPath, this.s.encoder),
      preset === "push" ? rtspTimeoutOption(this.opts.ffmpegPath) : undefined,
    ]).then(
      ([encoder, rtspTimeout]) => {
        if (this.closed) return;
        if (preset === "mp4") this.setupRecorder(encoder);
        else this.setupLive(encoder, rtspTimeout);
        this.emit("status");
      },
      (err: Error) => this.failure(err.message),
    );
  }

  /** The recorder of the input now coming: copy for compressed input, the JPEG encoder otherwise. */
  private get recorder(): Recorder | CopyRecorder | undefined {
    return this.compressed ? this.copyRecorder : this.jpegRecorder;
  }

  /** Why compressed input has to be encoded here (a size or bitrate was set), or undefined: copy. */
  private encodeReason(): string | undefined {
    const v = this.s.video;
    if (v.width && v.height) return `size ${v.width}x${v.height}`;
    if (v.bitrate > 0) return `bitrate ${v.bitrate} kb/s`;
    return undefined;
  }

  /** A msg.mp4 message (init or fragment of compressed video): undefined when taken, else why not. */
  mp4(msg: { payload?: unknown; mp4?: unknown }): Message | undefined {
    const info = readMp4Info(msg.mp4);
    if (!info || !("type" in info) || !Buffer.isBuffer(msg.payload))
      return {
        key: "errors.notMp4",
        params: { why: info && "field" in info ? `msg.mp4.${info.field}` : "msg.payload" },
      };
    const raw = msg.mp4 as { initId?: unknown; keyframe?: unknown };
    const unit: Mp4Unit = {
      data: msg.payload,
      info,
      time: this.clock.correct(info.time, monotonicEpochMs()),
      duration: info.duration,
      keyframe: info.type === "init" || raw.keyframe !== false,
      initId: typeof raw.initId === "number" ? raw.initId : 0,
    };
    this.compressed = true;
    if (info.type === "init") this.latestInit = unit;
    else this.inputRate.add();
    if (this.s.preset === "mp4") {
      this.copyRecorder?.push(unit);
      return undefined;
    }
    if ((this.s.preset === "hls" || this.s.preset === "fmp4") && !this.encodeReason()) {
      this.passThrough(unit);
      // hls with a directory: the segments on disk come from an ffmpeg that copies.
      if (this.s.preset === "hls" && this.s.directory) this.copyLive?.push(unit);
      return undefined;
    }
    if (this.s.preset === "flv" || this.s.preset === "push") {
      this.closeJpegRun();
      this.copyLive?.push(unit);
      return undefined;
    }
    // custom, and hls/fmp4 with a size or bitrate (an encode into msg.mp4), are not built: say so once per run.
    if (this.compressedRefused) return undefined;
    this.compressedRefused = true;
    return {
      key: "errors.compressedNotSupported",
      params: { preset: this.s.preset, why: this.encodeReason() ?? "" },
    };
  }

  /** hls/fmp4 with compressed input and nothing to change: the messages go out as they are, seq renumbered. */
  private passThrough(unit: Mp4Unit): void {
    this.closeJpegRun();
    const init = this.latestInit;
    if (!init) return;
    if (unit.info.type === "init" || this.passInitSent !== init.initId) {
      if (unit.info.type !== "init" && !unit.keyframe) return; // a new stream starts at a keyframe
      this.passInitSent = init.initId;
      this.emit(
        "message",
        mp4Message(init.data, { ...init.info, seq: this.passSeq, initId: init.initId }, this.camera),
      );
      if (unit.info.type === "init") return;
    }
    if (unit.initId !== init.initId) return;
    this.sentRate.add(unit.data.length);
    const info = {
      ...unit.info,
      time: unit.time,
      seq: this.passSeq++,
      keyframe: unit.keyframe,
      initId: unit.initId,
    };
    this.emit("message", mp4Message(unit.data, info, this.camera));
    this.emit("status");
  }

  /** The encoder run for JPEG input is not needed for compressed input. */
  private closeJpegRun(): void {
    if (!this.live) return;
    void this.live.close();
    this.live = undefined;
  }

  /** Every second: ends a recording whose frames stopped, sweeps HLS leftovers. */
  tick(): void {
    this.jpegRecorder?.tick(monotonicEpochMs());
    this.copyRecorder?.tick(monotonicEpochMs());
    this.sweepHls?.();
  }

  /** Hourly retention, also when nothing is recorded. */
  sweep(): void {
    if (this.jpegRecorder && !this.closed)
      this.jpegRecorder.sweep().catch((err: Error) => this.emit("warn", { text: err.message }));
  }

  status(): TranscodeStatus {
    const r = this.recorder;
    return transcodeStatus({
      fatalKey: this.fatalKey,
      errorKey: this.error.key,
      errorUntil: this.error.until,
      now: Date.now(),
      recorder: r && {
        recording: r.recording,
        elapsedSec: r.elapsedSec,
        preRollSpanMs: r.preRoll.spanMs,
        preRollBytes: r.preRoll.bytes,
      },
      copy: this.compressed ? this.compressedMode() : undefined,
      preRollSec: this.s.preRollSec,
      live:
        this.live?.state ??
        (this.compressed && this.copyLive && !this.passesThrough() ? this.copyLive.state : undefined) ??
        (this.compressed && this.s.preset !== "mp4" && this.passInitSent !== undefined ? "live" : undefined),
      fps: this.inputRate.perSecond(),
      kbps: this.outputKbps(),
    });
  }

  /** hls/fmp4 whose msg.mp4 goes out as it came. */
  private passesThrough(): boolean {
    return (this.s.preset === "hls" || this.s.preset === "fmp4") && !this.encodeReason();
  }

  /** For the status: "copy", or why compressed input is encoded. */
  private compressedMode(): string | undefined {
    if (this.s.preset === "mp4" || this.passesThrough()) return "copy";
    if (this.copyLive && (this.s.preset === "flv" || this.s.preset === "push"))
      return this.copyLive.encode ?? "copy";
    return this.encodeReason();
  }

  /** A frame message: undefined when taken (or quietly dropped), else why it was refused. */
  frame(frame: Frame | undefined): Message | undefined {
    if (!frame) return { key: "errors.notFrame" };
    const tooBig = oversizeFrame(frame);
    if (tooBig) {
      // One error per run of oversized frames, not one per frame.
      if (this.oversizeReported) return undefined;
      this.oversizeReported = true;
      const size = `${tooBig.width}x${tooBig.height}`;
      return { key: "errors.frameTooBig", params: { size, max: `${MAX_FRAME_SIDE}x${MAX_FRAME_SIDE}` } };
    }
    this.oversizeReported = false;
    // Frame times from a clock that jumps (hours ahead or back) must not stop ffmpeg's output.
    frame.time = this.clock.correct(frame.time, monotonicEpochMs());
    if (frame.camera) this.camera = frame.camera;
    this.inputRate.add();
    this.compressed = false;
    if (this.jpegRecorder) this.jpegRecorder.push(frame);
    else this.live?.push(frame);
    return undefined;
  }

  /** A control message (msg.action): undefined when followed, else why not (a RecorderError as it is). */
  control(msg: ControlMessage): Message | RecorderError | undefined {
    const action = readAction(msg);
    if (typeof action !== "string") return action.error;
    if (this.fatalKey) return { key: this.fatalKey };
    if (this.live || (this.compressed && this.s.preset !== "mp4")) {
      if (!this.live && !this.copyLive) return undefined;
      if (action === "stop") {
        if (this.live) void this.live.pause();
        if (this.copyLive) void this.copyLive.pause();
      } else {
        this.live?.resume();
        this.copyLive?.resume();
      }
      this.emit("status");
      return undefined;
    }
    if (!this.recorder) return { key: "errors.notReady" };
    const now = monotonicEpochMs();
    if (action === "stop") {
      this.recorder.stop(now);
      return undefined;
    }
    const start = readStart(msg);
    if ("error" in start) return start.error;
    try {
      this.recorder.start({ time: now, ...start });
    } catch (err) {
      if (!(err instanceof RecorderError)) throw err;
      this.showError("status.refused");
      return err;
    }
    this.emit("status");
    return undefined;
  }

  /** Ends ffmpeg (the recording closes as `close`) and waits until every file is finished. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([
      this.jpegRecorder?.close(monotonicEpochMs()),
      this.copyRecorder?.close(),
      this.live?.close(),
      this.copyLive?.close(),
    ]);
  }

  /** ffmpeg's own bitrate, or for fMP4 on stdout (hls, fmp4: with a directory ffmpeg reports 0) what we sent. */
  private outputKbps(): number {
    const { preset } = this.s;
    if (preset === "hls" || preset === "fmp4") return (this.sentRate.perSecond() * 8) / 1000;
    return this.lastProgress?.kbps ?? 0;
  }

  private showError(key: string): void {
    this.error = { key, until: Date.now() + ERROR_SHOWN_MS };
    this.emit("status");
  }

  private failure(message: string): void {
    this.emit("error", { text: message });
    this.showError("status.error");
  }

  /** A live run failed: log its cause once per outage (every retry failing the same way stays quiet). */
  private liveFailure(message: string): void {
    const cause = failureCause(message);
    if (cause === this.reportedCause) return this.showError("status.error");
    this.reportedCause = cause;
    this.emit("error", { key: "errors.failedRetrying", params: { cause, detail: message } });
    this.showError("status.error");
  }

  private onLiveState(state: LiveState): void {
    if (state === "live" && this.reportedCause !== undefined) {
      this.reportedCause = undefined;
      this.emit("log", { key: "errors.recovered" });
    }
    this.emit("status");
  }

  private onDropped(count: number): void {
    if (Date.now() - this.lastDropWarn < DROP_WARN_MS) return;
    this.lastDropWarn = Date.now();
    this.emit("warn", { key: "errors.dropping", params: { count } });
  }

  private setupRecorder(encoder: EncoderProfile): void {
    const s = this.s;
    const retention = new RetentionSweeper({
      directory: s.directory,
      keepDays: s.keepDays,
      keepGB: s.keepGB,
      isProtected: (file) =>
        (this.jpegRecorder?.isInProgress(file) ?? false) || (this.copyRecorder?.isInProgress(file) ?? false),
      // Recordings are stamped with frame times, which come from the monotonic clock.
      now: monotonicEpochMs,
      warn: (m) => this.emit("warn", { text: m }),
    });
    // What the JPEG recorder and the copy recorder (msg.mp4 input) share.
    const common = {
      ffmpegPath: this.opts.ffmpegPath,
      directory: s.directory,
      camera: this.camera,
      preRollSec: s.preRollSec,
      preRollMaxBytes: s.preRollMaxBytes,
      postRollSec: s.postRollSec,
      defaultDurationSec: s.durationSec,
      maxDurationSec: s.maxDurationSec,
      secrets: this.opts.secrets,
      retention,
    };
    const recorder = new Recorder({ ...common, video: { ...s.video, encoder } });
    this.jpegRecorder = recorder;
    const copy = new CopyRecorder(common);
    this.copyRecorder = copy;
    for (const r of [recorder, copy] as (Recorder | CopyRecorder)[]) {
      r.on("recording", (info: RecordingInfo) => {
        this.lastProgress = undefined;
        this.emit("message", recordingMessage(info));
      });
      r.on("progress", (p) => (this.lastProgress = p));
      r.on("failure", (m) => this.failure(m));
      r.on("dropped", (n) => this.onDropped(n));
    }
    if (retention.enabled) retention.sweep().catch((err: Error) => this.emit("warn", { text: err.message }));
    // An init that came while the encoder was being chosen (a camera deployed with this node sends it at
    // once): without it the fragments that follow could not be recorded until the camera sent another.
    if (this.latestInit) copy.push(this.latestInit);
  }

  private setupLive(encoder: EncoderProfile, rtspTimeout: string | undefined): void {
    const output = liveOutput(this.s, {
      encoder,
      rtspTimeout,
      user: this.opts.user,
      password: this.opts.password,
      camera: () => this.camera,
      // The live fMP4 output does not need the directory: keep it running and say why HLS files are missing.
      onDirectoryError: (err) => this.failure(err.message),
    });
    const live = new LiveTranscoder({
      ffmpegPath: this.opts.ffmpegPath,
      output,
      secrets: this.opts.secrets,
      keyframeInterval: this.s.video.keyframeInterval,
    });
    this.live = live;
    live.on("init", ({ data, info }) => this.emit("message", mp4Message(data, info, this.camera)));
    live.on("fragment", ({ data, info }) => {
      this.sentRate.add(data.length);
      this.emit("message", mp4Message(data, info, this.camera));
    });
    live.on("data", (data) => this.emit("message", { payload: data, topic: this.camera }));
    live.on("progress", (p) => (this.lastProgress = p));
    live.on("failure", (m) => this.liveFailure(m));
    live.on("state", (state) => this.onLiveState(state));
    live.on("dropped", (n) => this.onDropped(n));
    const s = this.s;
    if (s.preset === "flv" || s.preset === "push" || (s.preset === "hls" && s.directory)) {
      const copy = new CopyLive({
        ffmpegPath: this.opts.ffmpegPath,
        output: compressedLiveOutput(s, {
          encoder,
          rtspTimeout,
          user: this.opts.user,
          password: this.opts.password,
          camera: () => this.camera,
          onDirectoryError: (err) => this.failure(err.message),
          encodeReason: this.encodeReason(),
        }),
        secrets: this.opts.secrets,
      });
      this.copyLive = copy;
      copy.on("failure", (m) => this.liveFailure(m));
      copy.on("state", (state) => this.onLiveState(state));
      copy.on("dropped", (n) => this.onDropped(n));
      copy.on("progress", (p) => {
        if (s.preset !== "hls") this.lastProgress = p;
      });
      // An init that came while the encoder was being chosen: the next keyframe can start the run with it.
      if (this.latestInit) copy.push(this.latestInit);
    }
  }
}
