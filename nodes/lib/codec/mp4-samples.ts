/**
 * Samples out of fragmented MP4: the tracks of an init segment (ftyp+moov: track ids, timescales, the
 * H.264 parameter sets) and, for each fragment (moof+mdat), every sample of every track with its decode
 * and presentation time, duration, keyframe flag and bytes. WebRTC needs pictures, not fragments.
 */

export interface Mp4AvcConfig {
  /** Sequence and picture parameter sets, as NAL units without start codes. */
  sps: Buffer[];
  pps: Buffer[];
  /** Bytes of each NAL unit's length prefix in a sample (1, 2 or 4). */
  lengthSize: number;
  /** profile_idc, constraint flags and level_idc as six hex digits, e.g. "64001f" (SDP profile-level-id). */
  profileLevelId: string;
}

export interface Mp4Track {
  id: number;
  kind: "video" | "audio" | "other";
  /** Ticks per second of this track's times. */
  timescale: number;
  /** The sample entry's four-character code: "avc1", "avc3", "hvc1", "hev1", "mp4a", "Opus"... */
  format: string;
  width?: number;
  height?: number;
  /** From the movie's trex box: used when a fragment says nothing. */
  defaultDuration: number;
  defaultSize: number;
  defaultFlags: number;
  /** H.264 only. */
  avc?: Mp4AvcConfig;
}

export interface Mp4Tracks {
  tracks: Mp4Track[];
  /** The first video track, if any. */
  video?: Mp4Track;
  /** The first audio track, if any. */
  audio?: Mp4Track;
}

export interface Mp4Sample {
  trackId: number;
  /** Decode and presentation time in the track's timescale. */
  dts: number;
  pts: number;
  duration: number;
  keyframe: boolean;
  /** A view into the fragment's mdat (not copied). */
  data: Buffer;
}

interface Box {
  type: string;
  /** First byte of the payload (after the header). */
  body: number;
  start: number;
  end: number;
}

function* children(buf: Buffer, start: number, end: number): Generator<Box> {
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString("latin1", pos + 4, pos + 8);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > end) throw new Error(`mp4: the ${type} box is cut short`);
      size = Number(buf.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) size = end - pos;
    if (size < header || pos + size > end) throw new Error(`mp4: the ${type} box has a bad size (${size})`);
    yield { type, body: pos + header, start: pos, end: pos + size };
    pos += size;
  }
}

function child(buf: Buffer, parent: Box, type: string): Box | undefined {
  for (const box of children(buf, parent.body, parent.end)) if (box.type === type) return box;
  return undefined;
}

function all(buf: Buffer, parent: Box, type: string): Box[] {
  return [...children(buf, parent.body, parent.end)].filter((b) => b.type === type);
}

/** Reads `bytes` at `pos`, or throws in words when the box is shorter than its fields. */
function need(box: Box, pos: number, bytes: number): void {
  if (pos + bytes > box.end) throw new Error(`mp4: the ${box.type} box is too short`);
}

function parseAvcC(buf: Buffer, box: Box): Mp4AvcConfig {
  let p = box.body;
  need(box, p, 6);
  const profileLevelId = buf.toString("hex", p + 1, p + 4);
  const lengthSize = (buf[p + 4] & 3) + 1;
  const readSets = (count: number): Buffer[] => {
    const sets: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      need(box, p, 2);
      const len = buf.readUInt16BE(p);
      need(box, p + 2, len);
      sets.push(Buffer.from(buf.subarray(p + 2, p + 2 + len)));
      p += 2 + len;
    }
    return sets;
  };
  const spsCount = buf[p + 5] & 0x1f;
  p += 6;
  const sps = readSets(spsCount);
  need(box, p, 1);
  const ppsCount = buf[p];
  p += 1;
  const pps = readSets(ppsCount);
  if (lengthSize === 3) throw new Error("mp4: avcC says NAL lengths of 3 bytes, which H.264 does not allow");
  return { sps, pps, lengthSize, profileLevelId };
}

/** Size of the fixed part of a visual / audio sample entry before its child boxes. */
const VISUAL_ENTRY = 78;
const AUDIO_ENTRY = 28;

function parseTrak(
  buf: Buffer,
  trak: Box,
): Omit<Mp4Track, "defaultDuration" | "defaultSize" | "defaultFlags"> {
  const tkhd = child(buf, trak, "tkhd");
  const mdia = child(buf, trak, "mdia");
  if (!tkhd || !mdia) throw new Error("mp4: a track has no tkhd or mdia box");
  need(tkhd, tkhd.body, 24);
  const id = buf.readUInt32BE(tkhd.body + (buf[tkhd.body] === 1 ? 20 : 12));
  const mdhd = child(buf, mdia, "mdhd");
  const hdlr = child(buf, mdia, "hdlr");
  if (!mdhd || !hdlr) throw new Error(`mp4: track ${id} has no mdhd or hdlr box`);
  need(mdhd, mdhd.body, 24);
  const timescale = buf.readUInt32BE(mdhd.body + (buf[mdhd.body] === 1 ? 20 : 12));
  if (timescale === 0) throw new Error(`mp4: track ${id} has a timescale of 0`);
  need(hdlr, hdlr.body, 12);
  const handler = buf.toString("latin1", hdlr.body + 8, hdlr.body + 12);
  const kind = handler === "vide" ? "video" : handler === "soun" ? "audio" : "other";
  const stbl = (() => {
    const minf = child(buf, mdia, "minf");
    return minf && child(buf, minf, "stbl");
  })();
  const stsd = stbl && child(buf, stbl, "stsd");
  let format = "";
  let width: number | undefined;
  let height: number | undefined;
  let avc: Mp4AvcConfig | undefined;
  if (stsd) {
    const entries = [...children(buf, stsd.body + 8, stsd.end)];
    const entry = entries[0];
    if (entry) {
      format = entry.type;
      if (kind === "video" && entry.body + VISUAL_ENTRY <= entry.end) {
        width = buf.readUInt16BE(entry.body + 24);
        height = buf.readUInt16BE(entry.body + 26);
        for (const box of children(buf, entry.body + VISUAL_ENTRY, entry.end))
          if (box.type === "avcC") avc = parseAvcC(buf, box);
      } else if (kind === "audio" && entry.body + AUDIO_ENTRY > entry.end) {
        throw new Error(`mp4: the ${entry.type} sample entry of track ${id} is too short`);
      }
    }
  }
  return { id, kind, timescale, format, width, height, avc };
}

/** The tracks of an init segment (ftyp+moov); throws an Error in words when it cannot be read. */
export function parseInitTracks(buf: Buffer): Mp4Tracks {
  const top = { type: "file", body: 0, start: 0, end: buf.length };
  const moov = child(buf, top, "moov");
  if (!moov) throw new Error("mp4: the init segment has no moov box");
  const defaults = new Map<number, { duration: number; size: number; flags: number }>();
  const mvex = child(buf, moov, "mvex");
  if (mvex)
    for (const trex of all(buf, mvex, "trex")) {
      need(trex, trex.body, 24);
      defaults.set(buf.readUInt32BE(trex.body + 4), {
        duration: buf.readUInt32BE(trex.body + 12),
        size: buf.readUInt32BE(trex.body + 16),
        flags: buf.readUInt32BE(trex.body + 20),
      });
    }
  const tracks = all(buf, moov, "trak").map((trak): Mp4Track => {
    const t = parseTrak(buf, trak);
    const d = defaults.get(t.id) ?? { duration: 0, size: 0, flags: 0 };
    return { ...t, defaultDuration: d.duration, defaultSize: d.size, defaultFlags: d.flags };
  });
  if (tracks.length === 0) throw new Error("mp4: the init segment has no tracks");
  return {
    tracks,
    video: tracks.find((t) => t.kind === "video"),
    audio: tracks.find((t) => t.kind === "audio"),
  };
}

/** sample_is_non_sync_sample in the ISO BMFF sample flags. */
const NON_SYNC = 0x10000;

/**
 * Every sample of a fragment (moof followed by its mdat, as one Buffer; or several such pairs, as when the
 * splitter puts an audio-only moof in front of the next video one), in file order per track.
 * Throws an Error in words for boxes that lie (sizes and offsets outside the fragment).
 */
export function parseFragmentSamples(buf: Buffer, init: Mp4Tracks): Mp4Sample[] {
  const moofs = [...children(buf, 0, buf.length)].filter((b) => b.type === "moof");
  if (!moofs.length) throw new Error("mp4: the fragment has no moof box");
  const samples: Mp4Sample[] = [];
  for (const moof of moofs) moofSamples(buf, moof, init, samples);
  return samples;
}

function moofSamples(buf: Buffer, moof: Box, init: Mp4Tracks, samples: Mp4Sample[]): void {
  let nextDataStart = moof.start;
  for (const traf of all(buf, moof, "traf")) {
    const tfhd = child(buf, traf, "tfhd");
    if (!tfhd) throw new Error("mp4: a traf box has no tfhd");
    need(tfhd, tfhd.body, 8);
    const flags = buf.readUInt32BE(tfhd.body) & 0xffffff;
    const trackId = buf.readUInt32BE(tfhd.body + 4);
    const track = init.tracks.find((t) => t.id === trackId);
    if (!track) throw new Error(`mp4: the fragment names track ${trackId}, which the init does not have`);
    let p = tfhd.body + 8;
    let base = flags & 0x20000 ? moof.start : nextDataStart;
    if (flags & 0x1) {
      need(tfhd, p, 8);
      base = Number(buf.readBigUInt64BE(p));
      p += 8;
    }
    if (flags & 0x2) p += 4;
    let defDuration = track.defaultDuration;
    let defSize = track.defaultSize;
    let defFlags = track.defaultFlags;
    if (flags & 0x8) {
      need(tfhd, p, 4);
      defDuration = buf.readUInt32BE(p);
      p += 4;
    }
    if (flags & 0x10) {
      need(tfhd, p, 4);
      defSize = buf.readUInt32BE(p);
      p += 4;
    }
    if (flags & 0x20) {
      need(tfhd, p, 4);
      defFlags = buf.readUInt32BE(p);
    }
    const tfdt = child(buf, traf, "tfdt");
    let dts = 0;
    if (tfdt) {
      need(tfdt, tfdt.body, 8);
      dts =
        buf[tfdt.body] === 1 ? Number(buf.readBigUInt64BE(tfdt.body + 4)) : buf.readUInt32BE(tfdt.body + 4);
    }
    let dataPos = base;
    for (const trun of all(buf, traf, "trun")) {
      need(trun, trun.body, 8);
      const version = buf[trun.body];
      const tf = buf.readUInt32BE(trun.body) & 0xffffff;
      const count = buf.readUInt32BE(trun.body + 4);
      let q = trun.body + 8;
      if (tf & 0x1) {
        need(trun, q, 4);
        dataPos = base + buf.readInt32BE(q);
        q += 4;
      }
      let firstFlags: number | undefined;
      if (tf & 0x4) {
        need(trun, q, 4);
        firstFlags = buf.readUInt32BE(q);
        q += 4;
      }
      const perSample = [0x100, 0x200, 0x400, 0x800].filter((f) => tf & f).length * 4;
      need(trun, q, count * perSample);
      for (let i = 0; i < count; i++) {
        const duration = tf & 0x100 ? buf.readUInt32BE((q += 4) - 4) : defDuration;
        const size = tf & 0x200 ? buf.readUInt32BE((q += 4) - 4) : defSize;
        let sampleFlags = tf & 0x400 ? buf.readUInt32BE((q += 4) - 4) : defFlags;
        if (i === 0 && firstFlags !== undefined) sampleFlags = firstFlags;
        let cto = 0;
        if (tf & 0x800) cto = version === 0 ? buf.readUInt32BE((q += 4) - 4) : buf.readInt32BE((q += 4) - 4);
        if (dataPos < 0 || dataPos + size > buf.length)
          throw new Error(`mp4: a sample of track ${trackId} lies outside the fragment`);
        samples.push({
          trackId,
          dts,
          pts: dts + cto,
          duration,
          keyframe: (sampleFlags & NON_SYNC) === 0,
          data: buf.subarray(dataPos, dataPos + size),
        });
        dts += duration;
        dataPos += size;
      }
    }
    nextDataStart = dataPos;
  }
}
