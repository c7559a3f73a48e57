/**
 * Opus for the WebRTC viewers of one path: the path's fMP4 (init + fragments, AAC inside) goes into one
 * ffmpeg (`-i pipe:0 ... -c:a libopus -f ogg pipe:1`) that runs only while a WebRTC viewer takes audio;
 * its Ogg pages are cut into Opus packets and made RTP packets (RFC 7587: 48 kHz clock, one packet = 20 ms)
 * that every such viewer sends. Video never goes through here.
 */
import { FfmpegProcess } from "../ffmpeg/process";
import type { LiveVideoEvent } from "./whep-session";

export const OPUS_CLOCK_RATE = 48000;
/** Samples in one 20 ms Opus packet at 48 kHz (ffmpeg is asked for 20 ms frames). */
const SAMPLES_PER_PACKET = 960;
/** Bytes written to ffmpeg and not taken yet, at most: past this, fragments are skipped. */
const MAX_PENDING_BYTES = 2 * 1024 * 1024;
/** Recent fragments fed (every viewer's sink hands in the same Buffers: each goes to ffmpeg once). */
const RECENT = 64;

/** Opus packets out of an Ogg stream (RFC 7845), skipping the OpusHead and OpusTags headers. */
export class OggOpusReader {
  private buf: Buffer = Buffer.alloc(0);
  private partial: Buffer[] = [];
  private headers = 0;

  constructor(private readonly onPacket: (packet: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 27) return;
      if (this.buf.toString("latin1", 0, 4) !== "OggS") {
        // Out of step: look for the next page.
        const next = this.buf.indexOf("OggS", 1, "latin1");
        this.buf = next < 0 ? Buffer.alloc(0) : this.buf.subarray(next);
        this.partial = [];
        continue;
      }
      const segments = this.buf[26];
      if (this.buf.length < 27 + segments) return;
      const table = this.buf.subarray(27, 27 + segments);
      let size = 0;
      for (const s of table) size += s;
      const end = 27 + segments + size;
      if (this.buf.length < end) return;
      let pos = 27 + segments;
      for (const s of table) {
        this.partial.push(this.buf.subarray(pos, pos + s));
        pos += s;
        // A lacing value under 255 ends a packet.
        if (s < 255) this.packet(Buffer.concat(this.partial));
      }
      this.buf = this.buf.subarray(end);
    }
  }

  private packet(packet: Buffer): void {
    this.partial = [];
    if (this.headers < 2 && /^Opus(Head|Tags)/.test(packet.toString("latin1", 0, 8))) {
      this.headers++;
      return;
    }
    if (packet.length > 0) this.onPacket(packet);
  }
}

export interface OpusFeedOptions {
  ffmpegPath: string;
  /** One RTP packet of Opus (header + payload; the sender sets its SSRC and payload type). */
  onRtp(packet: Buffer): void;
  /** ffmpeg failed or ended, in words (the viewers carry on video only). */
  onProblem?(message: string): void;
}

/** The ffmpeg arguments: fMP4 on stdin, its first audio track as 20 ms Opus frames in Ogg on stdout. */
export function opusArgs(): string[] {
  return [
    ...["-hide_banner", "-loglevel", "error", "-nostdin"],
    ...["-fflags", "+nobuffer", "-probesize", "32", "-analyzeduration", "0"],
    ...["-f", "mp4", "-i", "pipe:0"],
    ...["-map", "0:a:0", "-vn", "-c:a", "libopus", "-b:a", "48k", "-ar", "48000", "-ac", "2"],
    ...["-application", "lowdelay", "-frame_duration", "20"],
    ...["-f", "ogg", "-page_duration", "20000", "-flush_packets", "1", "pipe:1"],
  ];
}

/**
 * The one audio converter of a path. `feed()` takes the live feed's events (from any viewer's sink: each
 * Buffer is written once); `stop()` ends ffmpeg. A new init restarts ffmpeg (a new stream).
 */
export class OpusFeed {
  private proc: FfmpegProcess | undefined;
  private init: Buffer | undefined;
  private readonly recent: Buffer[] = [];
  private sequence = Math.floor(Math.random() * 0x10000);
  private timestamp = Math.floor(Math.random() * 0x7fffffff);
  private stopped = false;
  /** Counters for status and tests. */
  readonly counts = { packets: 0, fragments: 0, skipped: 0, restarts: 0 };

  constructor(private readonly options: OpusFeedOptions) {}

  get running(): boolean {
    return this.proc?.running ?? false;
  }

  /** Events of the path's video; `replay` = the GOP a new viewer is given at once (old audio: left out). */
  feed(ev: LiveVideoEvent, replay: boolean): void {
    if (this.stopped) return;
    if (ev.type === "init") {
      if (this.init === ev.data || (this.init && this.init.equals(ev.data))) return;
      this.init = ev.data;
      this.restart();
      return;
    }
    if (replay || this.recent.includes(ev.data)) return;
    this.recent.push(ev.data);
    if (this.recent.length > RECENT) this.recent.shift();
    const stdin = this.proc?.stdin;
    if (!stdin || !stdin.writable) return;
    if (stdin.writableLength > MAX_PENDING_BYTES) {
      this.counts.skipped++;
      return;
    }
    this.counts.fragments++;
    stdin.write(ev.data);
  }

  private restart(): void {
    const old = this.proc;
    this.proc = undefined;
    if (old) {
      this.counts.restarts++;
      void old.stop(1000);
    }
    if (!this.init || this.stopped) return;
    const proc = new FfmpegProcess({ ffmpegPath: this.options.ffmpegPath, args: opusArgs(), stdin: true });
    const reader = new OggOpusReader((packet) => this.packet(packet));
    proc.on("exit", (exit) => {
      if (this.proc !== proc || this.stopped) return;
      this.proc = undefined;
      const why = proc.spawnError?.message ?? proc.lastStderr().slice(-2).join(" ").trim();
      this.options.onProblem?.(
        `the audio converter (ffmpeg, AAC to Opus) ended (${exit.code ?? exit.signal}${why ? `: ${why}` : ""})`,
      );
    });
    proc.start();
    proc.stdout?.on("data", (chunk: Buffer) => reader.push(chunk));
    this.proc = proc;
    proc.stdin?.write(this.init);
  }

  private packet(payload: Buffer): void {
    const packet = Buffer.allocUnsafe(12 + payload.length);
    packet[0] = 0x80;
    packet[1] = 111;
    packet.writeUInt16BE(this.sequence, 2);
    packet.writeUInt32BE(this.timestamp >>> 0, 4);
    packet.writeUInt32BE(0, 8);
    payload.copy(packet, 12);
    this.sequence = (this.sequence + 1) & 0xffff;
    this.timestamp = (this.timestamp + SAMPLES_PER_PACKET) % 0x100000000;
    this.counts.packets++;
    this.options.onRtp(packet);
  }

  /** Ends ffmpeg (SIGTERM, then SIGKILL); resolves once it is gone. */
  stop(): Promise<void> {
    this.stopped = true;
    const proc = this.proc;
    this.proc = undefined;
    return proc ? proc.stop(1000) : Promise.resolve();
  }
}
