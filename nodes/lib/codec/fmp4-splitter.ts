/**
 * Splits ffmpeg's fragmented MP4 output (`-movflags empty_moov+default_base_moof+frag_keyframe`) into the
 * init segment (ftyp+moov) and fragments (moof+mdat), reading just enough of the boxes to describe them:
 * codec string, size, timescale, each fragment's decode time, duration and whether it starts on a keyframe.
 */

export interface Mp4InitInfo {
  /** RFC 6381 codec string, e.g. "avc1.64001f". */
  codec: string;
  width: number;
  height: number;
  timescale: number;
}

export interface Mp4FragmentInfo {
  /** Decode time of the first sample, in seconds from the start of the stream. */
  startSec: number;
  durationSec: number;
  samples: number;
  keyframe: boolean;
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

/** Reads codec, size and timescale from a moov box. */
export function parseMoov(buf: Buffer): Mp4InitInfo & { defaultSampleDuration: number } {
  const info = { codec: "avc1.640028", width: 0, height: 0, timescale: 1000, defaultSampleDuration: 0 };
  const mdhd = find(buf, 0, buf.length, "mdhd");
  if (mdhd) {
    const p = mdhd.start + mdhd.headerSize;
    info.timescale = buf[p] === 1 ? buf.readUInt32BE(p + 20) : buf.readUInt32BE(p + 12);
  }
  const stsd = find(buf, 0, buf.length, "stsd");
  if (stsd) {
    // stsd: version/flags(4) entry_count(4), then sample entries.
    for (const entry of children(buf, stsd.start + stsd.headerSize + 8, stsd.end)) {
      // Visual sample entry: 6 reserved + 2 index + 16 predefined, then width/height; 78 bytes before children.
      const body = entry.start + entry.headerSize;
      if (body + 28 <= entry.end) {
        info.width = buf.readUInt16BE(body + 24);
        info.height = buf.readUInt16BE(body + 26);
      }
      const cfg =
        body + 78 <= entry.end
          ? find(buf, body + 78, entry.end, entry.type === "hvc1" ? "hvcC" : "avcC")
          : undefined;
      if (cfg && entry.type.startsWith("avc") && cfg.start + cfg.headerSize + 4 <= cfg.end) {
        const c = cfg.start + cfg.headerSize;
        info.codec = `${entry.type}.${hex2(buf[c + 1])}${hex2(buf[c + 2])}${hex2(buf[c + 3])}`;
      } else {
        info.codec = entry.type;
      }
      break;
    }
  }
  const trex = find(buf, 0, buf.length, "trex");
  if (trex) info.defaultSampleDuration = buf.readUInt32BE(trex.start + trex.headerSize + 12);
  return info;
}

/** Decode time, duration and first-sample keyframe flag of one moof. */
export function parseMoof(
  buf: Buffer,
  start: number,
  end: number,
  defaultDuration: number,
): { decodeTime: number; duration: number; samples: number; keyframe: boolean } {
  const out = { decodeTime: 0, duration: 0, samples: 0, keyframe: false };
  let first = true;
  for (const traf of children(buf, start, end)) {
    if (traf.type !== "traf") continue;
    let tfhdDuration = defaultDuration;
    let tfhdFlags = -1;
    for (const box of children(buf, traf.start + traf.headerSize, traf.end)) {
      const p = box.start + box.headerSize;
      const version = buf[p];
      const flags = buf.readUInt32BE(p) & 0xffffff;
      if (box.type === "tfhd") {
        let q = p + 8;
        if (flags & 0x01) q += 8;
        if (flags & 0x02) q += 4;
        if (flags & 0x08) tfhdDuration = buf.readUInt32BE(q);
        if (flags & 0x08) q += 4;
        if (flags & 0x10) q += 4;
        if (flags & 0x20) tfhdFlags = buf.readUInt32BE(q);
      } else if (box.type === "tfdt" && first) {
        out.decodeTime = version === 1 ? Number(buf.readBigUInt64BE(p + 4)) : buf.readUInt32BE(p + 4);
      } else if (box.type === "trun") {
        const count = buf.readUInt32BE(p + 4);
        let q = p + 8;
        if (flags & 0x01) q += 4;
        let firstFlags = tfhdFlags;
        if (flags & 0x04) {
          firstFlags = buf.readUInt32BE(q);
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
    first = false;
    break; // one video track
  }
  return out;
}

/** Incremental splitter for ffmpeg's fMP4 stdout. Memory is bounded by the largest box. */
export class Mp4FragmentSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private pendingInit: Buffer[] = [];
  private pendingMoof?: Buffer;
  private timescale = 1000;
  private defaultDuration = 0;
  private broken = false;
  inits = 0;
  fragments = 0;

  constructor(private readonly handlers: Mp4FragmentHandlers) {}

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
      if (size < 8 || size > MAX_BOX_BYTES) {
        this.broken = true;
        this.handlers.problem?.(`unexpected MP4 box size ${size} from ffmpeg; ignoring the rest of this run`);
        return;
      }
      if (this.buffered < size) return;
      this.onBox(this.take(size));
    }
  }

  /** The first chunk, holding at least the 16 bytes of a box header when that much is buffered. */
  private head(): Buffer | undefined {
    if (this.buffered < 8) return undefined;
    if (this.chunks[0].length < 16 && this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const box = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return box;
  }

  private onBox(box: Buffer): void {
    const type = box.toString("latin1", 4, 8);
    switch (type) {
      case "ftyp":
        this.pendingInit = [box];
        break;
      case "moov": {
        const info = parseMoov(box);
        this.timescale = info.timescale || 1000;
        this.defaultDuration = info.defaultSampleDuration;
        const init = Buffer.concat([...this.pendingInit, box]);
        this.pendingInit = [];
        this.inits++;
        this.handlers.init(init, {
          codec: info.codec,
          width: info.width,
          height: info.height,
          timescale: info.timescale,
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
        const m = parseMoof(moof, 8, moof.length, this.defaultDuration);
        this.fragments++;
        this.handlers.fragment(Buffer.concat([moof, box]), {
          startSec: m.decodeTime / this.timescale,
          durationSec: m.duration / this.timescale,
          samples: m.samples,
          keyframe: m.keyframe,
        });
        break;
      }
      default:
        // styp, sidx, free, mfra: not needed by viewers of a live stream.
        break;
    }
  }
}
