/**
 * Splits ffmpeg's fragmented MP4 output (`-movflags empty_moov+default_base_moof+frag_keyframe`) into the
 * init segment (ftyp+moov) and fragments (moof+mdat), reading just enough of the boxes to describe them:
 * codec string, size, timescale, each fragment's decode time, duration and whether it starts on a keyframe.
 * For H.264 and H.265 also the SPS: the init's (avcC/hvcC) and an in-band one in a keyframe fragment's first sample, so a
 * camera that changed size or profile under `-c:v copy` (which keeps the old init) can be told.
 */
import { parseAvcC, parseHvcC, sampleSps, type SpsInfo } from "./h264-sps";

export interface Mp4InitInfo {
  /**
   * RFC 6381 codec string of every track, video first, comma-joined: "avc1.64001f", "avc1.64001f,mp4a.40.2",
   * "hvc1.1.6.L93.B0".
   */
  codec: string;
  width: number;
  height: number;
  /** Timescale of the video track (the first track when there is no video). */
  timescale: number;
  /** The video track's codec string alone, when there is a video track. */
  videoCodec?: string;
  /** The audio track's codec string, when there is one (e.g. "mp4a.40.2"). */
  audioCodec?: string;
  /** track_ID of the video track (0 when none was found). */
  videoTrackId?: number;
  /** H.264/H.265: the init's SPS (avcC/hvcC), when it could be read. */
  sps?: SpsInfo;
}

export interface Mp4FragmentInfo {
  /** Decode time of the first sample, in seconds from the start of the stream. */
  startSec: number;
  durationSec: number;
  samples: number;
  keyframe: boolean;
  /** H.264 keyframe fragments: the SPS sent in-band before the IDR, when there is one. */
  sps?: SpsInfo;
}

export interface Mp4FragmentHandlers {
  init(data: Buffer, info: Mp4InitInfo): void;
  fragment(data: Buffer, info: Mp4FragmentInfo): void;
  problem?(message: string): void;
}

interface Box {
  type: string;
  start: number;
  headerSize: number;
  end: number;
}

const CONTAINERS = new Set(["moov", "trak", "mdia", "minf", "stbl", "mvex", "moof", "traf", "edts", "dinf"]);
/** Bigger top-level boxes are not something ffmpeg makes from camera frames: treat as corrupt. */
const MAX_BOX_BYTES = 256 * 1024 * 1024;

function* children(buf: Buffer, start: number, end: number): Generator<Box> {
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    let headerSize = 8;
    if (size === 1) {
      if (pos + 16 > end) return;
      size = Number(buf.readBigUInt64BE(pos + 8));
      headerSize = 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < headerSize || pos + size > end) return;
    yield { type, start: pos, headerSize, end: pos + size };
    pos += size;
  }
}

/** Depth-first search for the first box of `type` under [start, end). */
function find(buf: Buffer, start: number, end: number, type: string): Box | undefined {
  for (const box of children(buf, start, end)) {
    if (box.type === type) return box;
    if (CONTAINERS.has(box.type)) {
      const inner = find(buf, box.start + box.headerSize, box.end, type);
      if (inner) return inner;
    }
  }
  return undefined;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function fullBoxBody(box: Box): number {
  return box.start + box.headerSize + 4;
}

/** The bits of a 32-bit number in reverse order (hvcC's compatibility flags are written that way in codec strings). */
function reverseBits32(n: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) r = r * 2 + ((n >>> i) & 1);
  return r;
}

/** ISO/IEC 14496-15 E.3: "hvc1.1.6.L93.B0" from an hvcC box body. */
export function hevcCodecString(type: string, buf: Buffer, p: number, end: number): string {
  if (p + 13 > end) return type;
  const b1 = buf[p + 1];
  const space = ["", "A", "B", "C"][b1 >> 6];
  const tier = b1 & 0x20 ? "H" : "L";
  const profile = b1 & 0x1f;
  const compat = reverseBits32(buf.readUInt32BE(p + 2));
  const constraints: number[] = [];
  for (let i = 0; i < 6; i++) constraints.push(buf[p + 6 + i]);
  while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
  const level = buf[p + 12];
  const parts = [type, `${space}${profile}`, compat.toString(16).toUpperCase(), `${tier}${level}`];
  for (const c of constraints) parts.push(c.toString(16).toUpperCase().padStart(2, "0"));
  return parts.join(".");
}

/** One MPEG-4 descriptor header (tag, length) at p: the body's start and end. */
function descriptor(
  buf: Buffer,
  p: number,
  end: number,
): { tag: number; body: number; end: number } | undefined {
  if (p + 2 > end) return undefined;
  const tag = buf[p++];
  let len = 0;
  for (let i = 0; i < 4 && p < end; i++) {
    const b = buf[p++];
    len = (len << 7) | (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  return { tag, body: p, end: Math.min(end, p + len) };
}

/** "mp4a.40.2" from an esds box: object type indication, then the AudioSpecificConfig's object type. */
export function mp4aCodecString(buf: Buffer, esds: Box): string {
  const es = descriptor(buf, fullBoxBody(esds), esds.end);
  if (!es || es.tag !== 0x03 || es.body + 3 > es.end) return "mp4a.40.2";
  let p = es.body + 2;
  const flags = buf[p++];
  if (flags & 0x80) p += 2;
  if (flags & 0x40) p += 1 + (buf[p] ?? 0);
  if (flags & 0x20) p += 2;
  const dc = descriptor(buf, p, es.end);
  if (!dc || dc.tag !== 0x04 || dc.body + 13 > dc.end) return "mp4a.40.2";
  const oti = buf[dc.body];
  const otiHex = oti.toString(16).padStart(2, "0");
  if (oti !== 0x40) return `mp4a.${otiHex}`;
  const dsi = descriptor(buf, dc.body + 13, dc.end);
  if (!dsi || dsi.tag !== 0x05 || dsi.body >= dsi.end) return "mp4a.40.2";
  let aot = buf[dsi.body] >> 3;
  if (aot === 31 && dsi.body + 1 < dsi.end)
    aot = 32 + (((buf[dsi.body] & 0x07) << 3) | (buf[dsi.body + 1] >> 5));
  return `mp4a.40.${aot}`;
}

interface TrackInfo {
  id: number;
  handler: string;
  timescale: number;
  codec?: string;
  width: number;
  height: number;
  /** The parameter sets of the avcC (or, `hevc`, the hvcC) box. */
  avc?: { sps?: SpsInfo; lengthSize: number; hevc?: boolean };
}

function parseTrak(buf: Buffer, trak: Box): TrackInfo {
  const info: TrackInfo = { id: 0, handler: "", timescale: 0, width: 0, height: 0 };
  const inner = trak.start + trak.headerSize;
  const tkhd = find(buf, inner, trak.end, "tkhd");
  if (tkhd && fullBoxBody(tkhd) + 16 <= tkhd.end) {
    const p = fullBoxBody(tkhd);
    info.id = buf[tkhd.start + tkhd.headerSize] === 1 ? buf.readUInt32BE(p + 16) : buf.readUInt32BE(p + 8);
  }
  const mdhd = find(buf, inner, trak.end, "mdhd");
  if (mdhd) {
    const p = mdhd.start + mdhd.headerSize;
    if (p + 24 <= mdhd.end)
      info.timescale = buf[p] === 1 ? buf.readUInt32BE(p + 20) : buf.readUInt32BE(p + 12);
  }
  const hdlr = find(buf, inner, trak.end, "hdlr");
  if (hdlr && fullBoxBody(hdlr) + 8 <= hdlr.end)
    info.handler = buf.toString("latin1", fullBoxBody(hdlr) + 4, fullBoxBody(hdlr) + 8);
  const stsd = find(buf, inner, trak.end, "stsd");
  if (!stsd) return info;
  // stsd: version/flags(4) entry_count(4), then sample entries.
  for (const entry of children(buf, stsd.start + stsd.headerSize + 8, stsd.end)) {
    const body = entry.start + entry.headerSize;
    if (entry.type === "mp4a") {
      // Audio sample entry: 28 bytes before its children (QuickTime version 1 entries: 16 more).
      const esds =
        (body + 28 <= entry.end ? find(buf, body + 28, entry.end, "esds") : undefined) ??
        (body + 44 <= entry.end ? find(buf, body + 44, entry.end, "esds") : undefined);
      info.codec = esds ? mp4aCodecString(buf, esds) : "mp4a.40.2";
      if (!info.handler) info.handler = "soun";
      break;
    }
    // Visual sample entry: 6 reserved + 2 index + 16 predefined, then width/height; 78 bytes before children.
    if (info.handler === "vide" || /^(avc|hvc|hev|mp4v|vp0|av01)/.test(entry.type)) {
      if (body + 28 <= entry.end) {
        info.width = buf.readUInt16BE(body + 24);
        info.height = buf.readUInt16BE(body + 26);
      }
      if (!info.handler) info.handler = "vide";
    }
    const hevc = entry.type === "hvc1" || entry.type === "hev1";
    const cfg = body + 78 <= entry.end ? find(buf, body + 78, entry.end, hevc ? "hvcC" : "avcC") : undefined;
    if (cfg && entry.type.startsWith("avc") && cfg.start + cfg.headerSize + 4 <= cfg.end) {
      const c = cfg.start + cfg.headerSize;
      info.codec = `${entry.type}.${hex2(buf[c + 1])}${hex2(buf[c + 2])}${hex2(buf[c + 3])}`;
      info.avc = parseAvcC(buf.subarray(c, cfg.end));
    } else if (cfg && hevc) {
      info.codec = hevcCodecString(entry.type, buf, cfg.start + cfg.headerSize, cfg.end);
      const params = parseHvcC(buf.subarray(cfg.start + cfg.headerSize, cfg.end));
      if (params) info.avc = { ...params, hevc: true };
    } else {
      info.codec = entry.type;
    }
    break;
  }
  return info;
}

/**
 * Reads codec strings, size and timescale from a moov box: every track's codec (video first), the video
 * track's size, timescale and id, and its default sample duration from trex.
 */
export function parseMoov(
  buf: Buffer,
): Mp4InitInfo & { defaultSampleDuration: number; nalLengthSize?: number; hevc?: boolean } {
  const info: Mp4InitInfo & { defaultSampleDuration: number; nalLengthSize?: number; hevc?: boolean } = {
    codec: "avc1.640028",
    width: 0,
    height: 0,
    timescale: 1000,
    defaultSampleDuration: 0,
  };
  const moov = find(buf, 0, buf.length, "moov");
  const start = moov ? moov.start + moov.headerSize : 0;
  const end = moov ? moov.end : buf.length;
  const tracks: TrackInfo[] = [];
  for (const box of children(buf, start, end)) if (box.type === "trak") tracks.push(parseTrak(buf, box));
  const video = tracks.find((t) => t.handler === "vide") ?? tracks.find((t) => t.handler !== "soun");
  const audio = tracks.find((t) => t.handler === "soun");
  const main = video ?? tracks[0];
  if (main) {
    info.width = main.width;
    info.height = main.height;
    if (main.timescale) info.timescale = main.timescale;
    info.videoTrackId = video?.id ?? 0;
  }
  if (video?.codec) info.videoCodec = video.codec;
  if (video?.avc) {
    info.sps = video.avc.sps;
    info.nalLengthSize = video.avc.lengthSize;
    info.hevc = video.avc.hevc === true;
  }
  if (audio?.codec) info.audioCodec = audio.codec;
  const codecs = [video?.codec, audio?.codec].filter((c): c is string => !!c);
  if (codecs.length) info.codec = codecs.join(",");
  if (!video && audio) info.codec = audio.codec ?? info.codec;
  const mvex = find(buf, start, end, "mvex");
  if (mvex) {
    for (const trex of children(buf, mvex.start + mvex.headerSize, mvex.end)) {
      if (trex.type !== "trex" || trex.start + trex.headerSize + 16 > trex.end) continue;
      const p = trex.start + trex.headerSize;
      const id = buf.readUInt32BE(p + 4);
      if (!info.videoTrackId || id === info.videoTrackId) {
        info.defaultSampleDuration = buf.readUInt32BE(p + 12);
        break;
      }
    }
  }
  return info;
}

/**
 * Decode time, duration and first-sample keyframe flag of one moof, read from the traf of `trackId` (the
 * video track: audio may come first), or from the first traf when no id is given or none matches.
 */
export function parseMoof(
  buf: Buffer,
  start: number,
  end: number,
  defaultDuration: number,
  trackId = 0,
): MoofInfo {
  const trafs = [...children(buf, start, end)].filter((b) => b.type === "traf");
  let chosen = trafs[0];
  if (trackId) {
    for (const traf of trafs) {
      const tfhd = find(buf, traf.start + traf.headerSize, traf.end, "tfhd");
      if (
        tfhd &&
        tfhd.start + tfhd.headerSize + 8 <= tfhd.end &&
        buf.readUInt32BE(tfhd.start + tfhd.headerSize + 4) === trackId
      ) {
        chosen = traf;
        break;
      }
    }
  }
  const out: MoofInfo = { decodeTime: 0, duration: 0, samples: 0, keyframe: false, hasTrack: !trackId };
  if (trackId && chosen) {
    const tfhd = find(buf, chosen.start + chosen.headerSize, chosen.end, "tfhd");
    out.hasTrack = !!tfhd && tfhd.start + tfhd.headerSize + 8 <= tfhd.end;
    out.hasTrack &&= buf.readUInt32BE(tfhd!.start + tfhd!.headerSize + 4) === trackId;
  }
  if (!chosen) return out;
  parseTraf(buf, chosen, defaultDuration, out);
  return out;
}

export interface MoofInfo {
  decodeTime: number;
  duration: number;
  samples: number;
  keyframe: boolean;
  /** The moof has a traf of the track asked for (always true when no track was named). */
  hasTrack: boolean;
  /** The first trun's data offset (from the moof's start with default_base_moof) and first sample size. */
  dataOffset?: number;
  firstSize?: number;
}

function parseTraf(buf: Buffer, traf: Box, defaultDuration: number, out: MoofInfo): void {
  let tfhdDuration = defaultDuration;
  let tfhdFlags = -1;
  let tfhdSize = 0;
  for (const box of children(buf, traf.start + traf.headerSize, traf.end)) {
    const p = box.start + box.headerSize;
    if (p + 8 > box.end) continue;
    const version = buf[p];
    const flags = buf.readUInt32BE(p) & 0xffffff;
    if (box.type === "tfhd") {
      let q = p + 8;
      if (flags & 0x01) q += 8;
      if (flags & 0x02) q += 4;
      if (flags & 0x08 && q + 4 <= box.end) tfhdDuration = buf.readUInt32BE(q);
      if (flags & 0x08) q += 4;
      if (flags & 0x10 && q + 4 <= box.end) tfhdSize = buf.readUInt32BE(q);
      if (flags & 0x10) q += 4;
      if (flags & 0x20 && q + 4 <= box.end) tfhdFlags = buf.readUInt32BE(q);
    } else if (box.type === "tfdt") {
      if (version === 1 && p + 12 <= box.end) out.decodeTime = Number(buf.readBigUInt64BE(p + 4));
      else out.decodeTime = buf.readUInt32BE(p + 4);
    } else if (box.type === "trun") {
      const count = buf.readUInt32BE(p + 4);
      let q = p + 8;
      const first = out.samples === 0;
      if (flags & 0x01 && first && q + 4 <= box.end) out.dataOffset = buf.readInt32BE(q);
      if (flags & 0x01) q += 4;
      if (first) out.firstSize = tfhdSize;
      let firstFlags = tfhdFlags;
      if (flags & 0x04) {
        if (q + 4 <= box.end) firstFlags = buf.readUInt32BE(q);
        q += 4;
      }
      const perSample =
        ((flags & 0x100) >> 8) + ((flags & 0x200) >> 9) + ((flags & 0x400) >> 10) + ((flags & 0x800) >> 11);
      for (let i = 0; i < count && q + perSample * 4 <= box.end; i++) {
        let duration = tfhdDuration;
        if (flags & 0x100) {
          duration = buf.readUInt32BE(q);
          q += 4;
        }
        if (flags & 0x200 && i === 0 && first) out.firstSize = buf.readUInt32BE(q);
        if (flags & 0x200) q += 4;
        if (flags & 0x400) {
          if (i === 0 && !(flags & 0x04)) firstFlags = buf.readUInt32BE(q);
          q += 4;
        }
        if (flags & 0x800) q += 4;
        out.duration += duration;
      }
      if (out.samples === 0 && firstFlags >= 0) {
        // sample_is_non_sync_sample is bit 16; sample_depends_on == 2 means an I-frame.
        out.keyframe = (firstFlags & 0x10000) === 0 || ((firstFlags >> 24) & 0x3) === 2;
      }
      out.samples += count;
    }
  }
}

/** Audio-only fragments held for the next video fragment at most (then sent as they are). */
const HELD_AUDIO_MAX = 32;

/** Incremental splitter for ffmpeg's fMP4 stdout. Memory is bounded by the largest box. */
export class Mp4FragmentSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pendingInit: Buffer[] = [];
  private pendingMoof?: Buffer;
  private timescale = 1000;
  private defaultDuration = 0;
  private videoTrackId = 0;
  /** H.264/H.265: the NAL length size of the current init (0: neither, no SPS looked for). */
  private nalLengthSize = 0;
  private hevc = false;
  private broken = false;
  /** Audio-only fragments waiting for the next video fragment, which carries them in front of its moof. */
  private heldAudio: Buffer[] = [];
  inits = 0;
  fragments = 0;

  private readonly maxBoxBytes: number;

  /** `maxBoxBytes`: a bigger box is treated as damage (default 256 MB; a camera's source sets less). */
  constructor(
    private readonly handlers: Mp4FragmentHandlers,
    options: { maxBoxBytes?: number } = {},
  ) {
    this.maxBoxBytes = options.maxBoxBytes ?? MAX_BOX_BYTES;
  }

  push(chunk: Buffer): void {
    if (this.broken) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      const head = this.head();
      if (!head) return;
      let size = head.readUInt32BE(0);
      if (size === 1) {
        if (head.length < 16) return;
        size = Number(head.readBigUInt64BE(8));
      }
      if (size < 8 || size > this.maxBoxBytes) {
        this.broken = true;
        this.handlers.problem?.(`unexpected MP4 box size ${size} from ffmpeg; ignoring the rest of this run`);
        return;
      }
      if (this.buffered < size) return;
      if (head.toString("latin1", 4, 8) === "moof" && !this.pendingMoof) {
        // moof + mdat taken in one piece: the fragment is one buffer, copied at most once.
        if (this.buffered < size + 8) return;
        const next = this.peek(size, 8);
        if (next.toString("latin1", 4, 8) === "mdat") {
          const mdatSize = next.readUInt32BE(0);
          if (mdatSize >= 8 && mdatSize <= this.maxBoxBytes) {
            if (this.buffered < size + mdatSize) return;
            this.onFragment(this.take(size + mdatSize), size);
            continue;
          }
        }
      }
      this.onBox(this.take(size));
    }
  }

  /** `n` bytes at `offset` of what is buffered (the caller checked they are there). */
  private peek(offset: number, n: number): Buffer {
    const out = Buffer.alloc(n);
    let skip = offset;
    let got = 0;
    for (const c of this.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      got += c.copy(out, got, skip, Math.min(c.length, skip + n - got));
      skip = 0;
      if (got >= n) break;
    }
    return out;
  }

  /** The first chunk, holding at least the 16 bytes of a box header when that much is buffered. */
  private head(): Buffer | undefined {
    if (this.buffered < 8) return undefined;
    // A header split over chunks: join just the first few (not everything buffered).
    if (this.chunks[0].length < 16 && this.chunks.length > 1) {
      let k = 1;
      let len = this.chunks[0].length;
      while (len < 16 && k < this.chunks.length) len += this.chunks[k++].length;
      this.chunks.splice(0, k, Buffer.concat(this.chunks.slice(0, k)));
    }
    return this.chunks[0];
  }

  /** The first `n` buffered bytes: a view when they are in one chunk, else one copy of just those bytes. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let box: Buffer;
    if (first.length >= n) {
      box = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      box = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n) {
        const c = this.chunks[0];
        const want = n - got;
        if (c.length <= want) {
          c.copy(box, got);
          got += c.length;
          this.chunks.shift();
        } else {
          c.copy(box, got, 0, want);
          got += want;
          this.chunks[0] = c.subarray(want);
        }
      }
    }
    this.buffered -= n;
    return box;
  }

  /** One fragment: `data` = moof (its first `moofSize` bytes) + mdat. */
  private onFragment(data: Buffer, moofSize: number): void {
    const m = parseMoof(data, 8, moofSize, this.defaultDuration, this.videoTrackId);
    if (!m.hasTrack) {
      // ffmpeg cutting short fragments (one a picture) cuts at audio packets too: a moof with audio alone
      // would read as a keyframe (audio samples are all sync samples) and split a GOP. It rides in front of
      // the next video fragment instead (a frame's wait for the sound); a stream of audio alone, no video for
      // 32 fragments, goes out as it is, flagged as no keyframe.
      this.heldAudio.push(data);
      if (this.heldAudio.length < HELD_AUDIO_MAX) return;
      const audio = this.takeHeldAudio(Buffer.alloc(0));
      this.fragments++;
      this.handlers.fragment(audio, { startSec: 0, durationSec: 0, samples: 0, keyframe: false });
      return;
    }
    this.fragments++;
    let sps: SpsInfo | undefined;
    if (m.keyframe && this.nalLengthSize && m.dataOffset !== undefined && m.firstSize) {
      const at = m.dataOffset;
      if (at >= moofSize && at + m.firstSize <= data.length)
        sps = sampleSps(data.subarray(at, at + m.firstSize), this.nalLengthSize, this.hevc);
    }
    if (this.heldAudio.length) data = this.takeHeldAudio(data);
    this.handlers.fragment(data, {
      startSec: m.decodeTime / this.timescale,
      durationSec: m.duration / this.timescale,
      samples: m.samples,
      keyframe: m.keyframe,
      ...(sps ? { sps } : {}),
    });
  }

  /** The held audio fragments, then `data`, as one buffer; nothing held afterwards. */
  private takeHeldAudio(data: Buffer): Buffer {
    const all = Buffer.concat([...this.heldAudio, data]);
    this.heldAudio = [];
    return all;
  }

  private onBox(box: Buffer): void {
    const type = box.toString("latin1", 4, 8);
    switch (type) {
      case "ftyp":
        this.pendingInit = [box];
        break;
      case "moov": {
        this.heldAudio = []; // the old init's: a few ms of sound the new init cannot carry
        const info = parseMoov(box);
        this.timescale = info.timescale || 1000;
        this.defaultDuration = info.defaultSampleDuration;
        this.videoTrackId = info.videoTrackId ?? 0;
        this.nalLengthSize = info.nalLengthSize ?? 0;
        this.hevc = info.hevc === true;
        const init = Buffer.concat([...this.pendingInit, box]);
        this.pendingInit = [];
        this.inits++;
        this.handlers.init(init, {
          codec: info.codec,
          width: info.width,
          height: info.height,
          timescale: info.timescale,
          videoCodec: info.videoCodec,
          audioCodec: info.audioCodec,
          videoTrackId: info.videoTrackId,
          ...(info.sps ? { sps: info.sps } : {}),
        });
        break;
      }
      case "moof":
        this.pendingMoof = box;
        break;
      case "mdat": {
        if (!this.pendingMoof) break;
        const moof = this.pendingMoof;
        this.pendingMoof = undefined;
        this.onFragment(Buffer.concat([moof, box]), moof.length);
        break;
      }
      default:
        // styp, sidx, free, mfra: not needed by viewers of a live stream.
        break;
    }
  }
}
