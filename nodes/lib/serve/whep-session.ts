/**
 * One WebRTC viewer (WHEP): a werift RTCPeerConnection with one sendonly H.264 track, fed with the
 * pictures of the path's fMP4 (init + fragments from the live feed), packetized by codec/h264-rtp.ts.
 * Starts at the current GOP's keyframe; a viewer that falls behind skips to the next keyframe.
 */
import type { RTCPeerConnection, RTCRtpSender } from "werift";
import { H264_CLOCK_RATE, H264Packetizer, splitAvcc } from "../codec/h264-rtp";
import { parseFragmentSamples, parseInitTracks, type Mp4Track, type Mp4Tracks } from "../codec/mp4-samples";
import { OPUS_CLOCK_RATE } from "./whep-audio";
import type { OfferedH264 } from "./whep-sdp";

export type Werift = typeof import("werift");

/** The node's WebRTC settings, as werift takes them. */
export interface WhepConfig {
  iceServers: { urls: string; username?: string; credential?: string }[];
  /** UDP ports [min, max] (min < max), or undefined for any. */
  portRange?: [number, number];
  /** Also gather ICE-TCP (passive) host candidates. */
  iceTcp: boolean;
}

/** What the live feed hands a viewer (the live contract's LiveSink video event). */
export type LiveVideoEvent =
  | { type: "init"; data: Buffer; codec: string; width: number; height: number; initId?: number | string }
  | { type: "fragment"; data: Buffer; keyframe: boolean; time: number; duration: number };

/** The live feed's handle on this viewer (the live contract's LiveViewer). */
export interface LiveViewerHandle {
  close(): void;
  countSent(bytes: number): void;
  countSkipped?(): void;
  readonly kbpsBudget: number;
}

export interface WhepSessionOptions {
  werift: Werift;
  config: WhepConfig;
  offer: string;
  h264: OfferedH264;
  /** Also send Opus (the stream has AAC, the offer receives Opus, the endpoint converts it). */
  audio?: boolean;
  /** Time allowed for ICE candidate gathering before the answer goes out with what it has. */
  gatherTimeoutMs?: number;
  /** Time allowed from the answer to a connected peer. */
  connectTimeoutMs?: number;
  /** A disconnected peer that does not come back within this long has left. */
  disconnectTimeoutMs?: number;
  /** Called once when the session ends, with why (in words). */
  onEnd(reason: string): void;
}

interface Picture {
  nals: Buffer[];
  pts: number;
  timescale: number;
  keyframe: boolean;
  bytes: number;
}

/** Queued pictures at most, by bytes: past this the viewer skips to the next keyframe. */
const MAX_QUEUE_BYTES = 8 * 1024 * 1024;
/** Behind by more than this (ms of media waiting) when a keyframe arrives: skip to it. */
const MAX_LAG_MS = 1000;

export class WhepSession {
  readonly id: string;
  readonly createdAt = Date.now();
  /** Set by the endpoint after the live feed accepted the viewer. */
  viewer: LiveViewerHandle | undefined;
  private readonly pc: RTCPeerConnection;
  private readonly options: WhepSessionOptions;
  private sender: RTCRtpSender | undefined;
  private audioSender: RTCRtpSender | undefined;
  private readonly packetizer = new H264Packetizer({ mtu: 1200 });
  private tracks: Mp4Tracks | undefined;
  private video: Mp4Track | undefined;
  private queue: Picture[] = [];
  private queueBytes = 0;
  private waitKey = true;
  private connected = false;
  private pumping = false;
  private ended = false;
  /** RTP time of a picture = anchor.rtp + (pts - anchor.pts) at 90 kHz; reset on jumps and skips. */
  private anchor: { pts: number; rtp: number; timescale: number } | undefined;
  private lastRtp = Math.floor(Math.random() * 0x7fffffff);
  private connectTimer: NodeJS.Timeout | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;
  private budget = { tokens: 0, at: performance.now() };
  /** Counters for status and tests. */
  readonly counts = { pictures: 0, packets: 0, bytes: 0, skipped: 0, pli: 0 };

  private constructor(id: string, pc: RTCPeerConnection, options: WhepSessionOptions) {
    this.id = id;
    this.pc = pc;
    this.options = options;
  }

  /**
   * Creates the peer connection for `offer` and resolves the answer SDP once ICE gathering completes
   * (or its time is up). Rejects with an Error in words when the offer cannot be answered.
   */
  static async create(
    id: string,
    options: WhepSessionOptions,
  ): Promise<{ session: WhepSession; answer: string }> {
    const w = options.werift;
    const { config, h264 } = options;
    const pc = new w.RTCPeerConnection({
      codecs: {
        video: [
          new w.RTCRtpCodecParameters({
            mimeType: "video/H264",
            clockRate: H264_CLOCK_RATE,
            rtcpFeedback: [{ type: "nack" }, { type: "nack", parameter: "pli" }],
            parameters: `profile-level-id=${h264.profileLevelId};packetization-mode=1;level-asymmetry-allowed=1`,
          }),
        ],
        audio: options.audio
          ? [
              new w.RTCRtpCodecParameters({
                mimeType: "audio/opus",
                clockRate: OPUS_CLOCK_RATE,
                channels: 2,
                payloadType: 111,
                parameters: "minptime=10;useinbandfec=1",
              }),
            ]
          : [],
      },
      iceServers: config.iceServers,
      icePortRange: config.portRange,
      iceUseTcp: config.iceTcp,
      iceTcpPassive: config.iceTcp,
    });
    const session = new WhepSession(id, pc, options);
    try {
      await pc.setRemoteDescription({ type: "offer", sdp: options.offer });
      const video = pc.getTransceivers().find((t) => t.kind === "video");
      if (!video) throw new Error("the offer has no video m-line");
      video.setDirection("sendonly");
      const audio = options.audio ? pc.getTransceivers().find((t) => t.kind === "audio") : undefined;
      for (const t of pc.getTransceivers()) if (t !== video && t !== audio) t.setDirection("inactive");
      if (audio) {
        audio.setDirection("sendonly");
        // One stream id for both tracks: the browser plays them in one MediaStream, lip-synced by RTCP.
        audio.sender.streamId = video.sender.streamId;
        session.audioSender = audio.sender;
      }
      session.sender = video.sender;
      video.sender.onPictureLossIndication.subscribe(() => session.counts.pli++);
      pc.connectionStateChange.subscribe((state) => session.connectionState(state));
      await pc.setLocalDescription(await pc.createAnswer());
      // A browser that closes its RTCPeerConnection sends a DTLS close alert: end now, not at the ICE timeout.
      video.sender.dtlsTransport?.onStateChange.subscribe((state) => {
        if (state === "closed") session.end("the viewer closed the connection");
        else if (state === "failed") session.end("DTLS failed");
      });
      await session.gathered(options.gatherTimeoutMs ?? 5000);
      const sdp = pc.localDescription?.sdp;
      if (!sdp) throw new Error("werift made no answer");
      if (!/^m=video [1-9]/m.test(sdp)) throw new Error("no H.264 variant of the offer could be agreed on");
      session.connectTimer = setTimeout(
        () => session.end("the viewer did not connect in time"),
        options.connectTimeoutMs ?? 30_000,
      );
      return { session, answer: sdp };
    } catch (err) {
      session.ended = true;
      await pc.close().catch(() => undefined);
      throw err;
    }
  }

  private gathered(timeoutMs: number): Promise<void> {
    if (this.pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const sub = this.pc.iceGatheringStateChange.subscribe((s) => s === "complete" && done());
      function done(): void {
        clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      }
    });
  }

  private connectionState(state: string): void {
    if (this.ended) return;
    if (state === "connected") {
      clearTimeout(this.connectTimer);
      clearTimeout(this.disconnectTimer);
      this.disconnectTimer = undefined;
      if (!this.connected) {
        this.connected = true;
        this.startBacklog();
      }
    } else if (state === "disconnected") {
      this.disconnectTimer ??= setTimeout(
        () => this.end("the viewer's connection was lost"),
        this.options.disconnectTimeoutMs ?? 10_000,
      );
    } else if (state === "failed") this.end("ICE failed");
    else if (state === "closed") this.end("the peer connection closed");
  }

  /** This session sends Opus (its answer has a sendonly audio m-line). */
  get hasAudio(): boolean {
    return this.audioSender !== undefined;
  }

  /** One Opus RTP packet of the path's audio converter; dropped until the peer is connected. */
  sendAudio(packet: Buffer): void {
    if (this.ended || !this.connected || !this.audioSender) return;
    this.audioSender.sendRtp(packet).catch(() => undefined);
  }

  /** Bytes of pictures waiting to be sent (status.json's `buffered`). */
  get queuedBytes(): number {
    return this.queueBytes;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  // ---- the live feed ---------------------------------------------------------------------------

  /** The live feed's video events (LiveSink.video). */
  feed(ev: LiveVideoEvent): void {
    if (this.ended) return;
    try {
      if (ev.type === "init") this.init(ev.data);
      else this.fragment(ev.data);
    } catch (err) {
      // A fragment that cannot be read: wait for the next keyframe rather than send a broken picture.
      this.waitKey = true;
      this.lastProblem = (err as Error).message;
    }
  }

  /** The last fragment that could not be read, in words (for status). */
  lastProblem: string | undefined;

  private init(data: Buffer): void {
    const tracks = parseInitTracks(data);
    const video = tracks.video;
    if (!video || !video.avc) {
      this.end(`the stream is no longer H.264 (${video ? video.format : "no video"})`);
      return;
    }
    this.tracks = tracks;
    this.video = video;
    this.packetizer.setParameterSets(video.avc.sps, video.avc.pps);
    this.queue = [];
    this.queueBytes = 0;
    this.waitKey = true;
    this.anchor = undefined;
    this.backlog = 0;
  }

  private fragment(data: Buffer): void {
    const { tracks, video } = this;
    if (!tracks || !video?.avc) return;
    for (const s of parseFragmentSamples(data, tracks)) {
      if (s.trackId !== video.id) continue;
      const picture: Picture = {
        nals: splitAvcc(s.data, video.avc.lengthSize),
        pts: s.pts,
        timescale: video.timescale,
        keyframe: s.keyframe,
        bytes: s.data.length,
      };
      this.offer(picture);
    }
  }

  /** One picture in: queued (newest wins by GOP), then sent when connected. */
  private offer(p: Picture): void {
    if (p.keyframe) {
      const lagMs = this.queueLagMs(p);
      // Not connected yet: keep only the newest GOP. Connected and behind: skip to this keyframe.
      if (!this.connected || lagMs > MAX_LAG_MS) {
        if (this.connected && this.queue.length > 0) this.skip();
        this.queue = [];
        this.queueBytes = 0;
      }
      this.waitKey = false;
      this.skipping = false;
    }
    if (this.waitKey) {
      // Pictures of a GOP that was cut short (not the wait for the first keyframe) count as skipped.
      if (this.skipping) this.countSkipped(1);
      return;
    }
    if (this.queueBytes + p.bytes > MAX_QUEUE_BYTES) {
      this.countSkipped(1);
      this.skip();
      return;
    }
    this.queue.push(p);
    this.queueBytes += p.bytes;
    if (this.connected) void this.pump();
  }

  private queueLagMs(p: Picture): number {
    const first = this.queue[0];
    return first ? ((p.pts - first.pts) * 1000) / p.timescale : 0;
  }

  /** Drops what is queued and waits for the next keyframe; the RTP clock is re-anchored there. */
  private skip(): void {
    this.countSkipped(this.queue.length);
    this.skipping = true;
    this.queue = [];
    this.queueBytes = 0;
    this.waitKey = true;
    this.anchor = undefined;
    this.backlog = 0;
  }

  private countSkipped(n: number): void {
    this.counts.skipped += n;
    for (let i = 0; i < n; i++) this.viewer?.countSkipped?.();
  }

  /** Pictures are being dropped up to the next keyframe (after a skip, not before the first keyframe). */
  private skipping = false;

  /** On connect: the queued GOP goes out at once, squeezed into a few RTP ticks so it shows now, not late. */
  private startBacklog(): void {
    const n = this.queue.length;
    const last = this.queue[n - 1];
    if (last) {
      this.anchor = { pts: last.pts, rtp: this.lastRtp + n, timescale: last.timescale };
      this.backlog = n;
    }
    void this.pump();
  }

  private backlog = 0;

  private rtpTime(p: Picture): number {
    if (this.backlog > 0 && this.anchor) {
      // Pictures that were waiting for the connection: one tick apart, ending at the anchor.
      this.backlog--;
      return this.anchor.rtp - this.backlog;
    }
    const scale = H264_CLOCK_RATE / p.timescale;
    let a = this.anchor;
    if (a && a.timescale === p.timescale) {
      const t = a.rtp + Math.round((p.pts - a.pts) * scale);
      // A jump (new ffmpeg, camera clock reset) of more than 10 s either way: carry on from the last time.
      if (Math.abs(t - this.lastRtp) <= 10 * H264_CLOCK_RATE) return t;
    }
    a = { pts: p.pts, rtp: this.lastRtp + 3000, timescale: p.timescale };
    this.anchor = a;
    return a.rtp;
  }

  /** Allowed by the viewer's kbit/s budget (maxKbps; 0 = none), a one-second bucket. */
  private withinBudget(bytes: number): boolean {
    const kbps = this.viewer?.kbpsBudget ?? 0;
    if (kbps <= 0) return true;
    const now = performance.now();
    const rate = (kbps * 1000) / 8;
    this.budget.tokens = Math.min(rate, this.budget.tokens + ((now - this.budget.at) / 1000) * rate);
    this.budget.at = now;
    if (this.budget.tokens < bytes && !(this.budget.tokens === rate && bytes > rate)) return false;
    this.budget.tokens -= bytes;
    return true;
  }

  /** Sends queued pictures in order, one at a time (each picture's packets together). */
  private async pump(): Promise<void> {
    if (this.pumping || !this.sender) return;
    this.pumping = true;
    try {
      while (!this.ended && this.queue.length > 0) {
        const p = this.queue.shift() as Picture;
        this.queueBytes -= p.bytes;
        if (!this.withinBudget(p.bytes)) {
          this.countSkipped(1);
          this.skip();
          break;
        }
        const ts = this.rtpTime(p);
        this.lastRtp = ts;
        const packets = this.packetizer.packetize(p.nals, ts >>> 0);
        const sender = this.sender;
        await Promise.all(packets.map((pkt) => sender.sendRtp(pkt)));
        let bytes = 0;
        for (const pkt of packets) bytes += pkt.length;
        this.counts.pictures++;
        this.counts.packets += packets.length;
        this.counts.bytes += bytes;
        this.viewer?.countSent(bytes);
      }
    } catch (err) {
      this.end(`sending failed: ${(err as Error).message}`);
    } finally {
      this.pumping = false;
    }
  }

  // ---- the end ---------------------------------------------------------------------------------

  /** Ends the session (idempotent): the peer connection closes, the live feed forgets the viewer. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.disconnectTimer);
    this.queue = [];
    this.queueBytes = 0;
    this.viewer?.close();
    this.pc.close().catch(() => undefined);
    this.options.onEnd(reason);
  }

  get isEnded(): boolean {
    return this.ended;
  }
}
