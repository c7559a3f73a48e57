/**
 * H.264 and H.265 sequence parameter sets: the picture size, profile and level a camera's stream says it
 * has, read from an SPS NAL unit (ITU-T H.264 7.3.2.1.1, H.265 7.3.2.2), from an avcC/hvcC box (the init's)
 * and from the NAL units of a sample (the in-band SPS a camera repeats before each IDR). Enough to tell that a camera switched
 * resolution or profile while `-c:v copy` kept the old init. Of the VUI only the H.264 full-range flag is read
 * (a JPEG decoder's colour conversion depends on it); two SPS that differ only after the frame cropping
 * describe the same picture.
 */

export interface SpsInfo {
  profile: number;
  level: number;
  width: number;
  height: number;
  /** "h265" for an H.265 SPS; missing for H.264 (what every SPS was before H.265 was read). */
  codec?: "h265";
  /**
   * H.264: the VUI's video_full_range_flag (true: 0-255 "JPEG" range; false: 16-235, also when the VUI says
   * nothing); missing when the SPS could not be read that far, and for H.265. Not part of spsChanged.
   */
  fullRange?: boolean;
}

/** The RBSP of a NAL unit (header byte included): emulation prevention bytes (00 00 03) taken out. */
function unescape(nal: Buffer): Buffer {
  if (nal.indexOf(Buffer.from([0, 0, 3])) < 0) return nal;
  const out = Buffer.alloc(nal.length);
  let n = 0;
  let zeros = 0;
  for (const b of nal) {
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

/** Exp-Golomb bit reader; reading past the end throws. */
class Bits {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  bit(): number {
    const byte = this.pos >> 3;
    if (byte >= this.buf.length) throw new RangeError("SPS ends early");
    const b = (this.buf[byte] >> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }

  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) if (++zeros > 31) throw new RangeError("bad exp-Golomb code in SPS");
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  se(): number {
    const k = this.ue();
    return k % 2 ? (k + 1) / 2 : -(k / 2);
  }
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(r: Bits, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** The VUI's video_full_range_flag, read from where the frame cropping ended (H.264 E.1.1); undefined if cut short. */
function videoFullRange(r: Bits): boolean | undefined {
  try {
    if (!r.bit()) return false; // no VUI: limited range
    if (r.bit() && r.bits(8) === 255) r.bits(32); // aspect_ratio_idc, Extended_SAR: sar_width, sar_height
    if (r.bit()) r.bit(); // overscan_info_present_flag, overscan_appropriate_flag
    if (!r.bit()) return false; // no video_signal_type: limited range
    r.bits(3); // video_format
    return r.bit() === 1;
  } catch {
    return undefined;
  }
}

/** Size, profile and level of an SPS NAL unit (starting with its header byte), or undefined when it is not one. */
export function parseH264Sps(nal: Buffer): SpsInfo | undefined {
  if (nal.length < 4 || (nal[0] & 0x1f) !== 7) return undefined;
  try {
    const r = new Bits(unescape(nal).subarray(1));
    const profile = r.bits(8);
    r.bits(8); // constraint flags
    const level = r.bits(8);
    r.ue(); // seq_parameter_set_id
    let chroma = 1;
    if (HIGH_PROFILES.has(profile)) {
      chroma = r.ue();
      if (chroma === 3) r.bit(); // separate_colour_plane_flag
      r.ue(); // bit_depth_luma_minus8
      r.ue(); // bit_depth_chroma_minus8
      r.bit(); // qpprime_y_zero_transform_bypass_flag
      if (r.bit()) {
        for (let i = 0; i < (chroma !== 3 ? 8 : 12); i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.bit();
      r.se();
      r.se();
      const cycle = r.ue();
      if (cycle > 255) return undefined;
      for (let i = 0; i < cycle; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bit(); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.bit();
    if (!frameMbsOnly) r.bit(); // mb_adaptive_frame_field_flag
    r.bit(); // direct_8x8_inference_flag
    let [left, right, top, bottom] = [0, 0, 0, 0];
    if (r.bit()) [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const cropX = chroma === 1 || chroma === 2 ? 2 : 1;
    const cropY = (chroma === 1 ? 2 : 1) * (2 - frameMbsOnly);
    const width = widthMbs * 16 - cropX * (left + right);
    const height = (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (top + bottom);
    if (width <= 0 || height <= 0) return undefined;
    return { profile, level, width, height, fullRange: videoFullRange(r) };
  } catch {
    return undefined;
  }
}

/** The first SPS of an avcC body (AVCDecoderConfigurationRecord), and its NAL length size. */
export function parseAvcC(body: Buffer): { sps?: SpsInfo; lengthSize: number } | undefined {
  if (body.length < 7 || body[0] !== 1) return undefined;
  const lengthSize = (body[4] & 3) + 1;
  const count = body[5] & 0x1f;
  if (count < 1 || body.length < 8) return { lengthSize };
  const len = body.readUInt16BE(6);
  if (8 + len > body.length) return { lengthSize };
  return { sps: parseH264Sps(body.subarray(8, 8 + len)), lengthSize };
}

/**
 * Size, profile and level of an H.265 SPS NAL unit (its two header bytes first; ITU-T H.265 7.3.2.2), or
 * undefined when it is not one. The conformance window (cropping) is applied.
 */
export function parseH265Sps(nal: Buffer): SpsInfo | undefined {
  if (nal.length < 6 || ((nal[0] >> 1) & 0x3f) !== 33) return undefined;
  try {
    const r = new Bits(unescape(nal).subarray(2));
    r.bits(4); // sps_video_parameter_set_id
    const subLayers = r.bits(3); // sps_max_sub_layers_minus1
    r.bit(); // sps_temporal_id_nesting_flag
    // profile_tier_level(1, sps_max_sub_layers_minus1)
    r.bits(3); // general_profile_space, general_tier_flag
    const profile = r.bits(5);
    r.bits(32); // compatibility flags
    for (let i = 0; i < 48; i++) r.bit(); // progressive..frame_only flags, 43 reserved bits, inbld
    const level = r.bits(8);
    const present: Array<[number, number]> = [];
    for (let i = 0; i < subLayers; i++) present.push([r.bit(), r.bit()]);
    if (subLayers > 0) for (let i = subLayers; i < 8; i++) r.bits(2);
    for (const [profilePresent, levelPresent] of present) {
      for (let i = 0; i < (profilePresent ? 88 : 0) + (levelPresent ? 8 : 0); i++) r.bit();
    }
    r.ue(); // sps_seq_parameter_set_id
    const chroma = r.ue();
    if (chroma === 3) r.bit(); // separate_colour_plane_flag
    let width = r.ue();
    let height = r.ue();
    if (r.bit()) {
      const [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
      width -= (chroma === 1 || chroma === 2 ? 2 : 1) * (left + right);
      height -= (chroma === 1 ? 2 : 1) * (top + bottom);
    }
    if (width <= 0 || height <= 0) return undefined;
    return { profile, level, width, height, codec: "h265" };
  } catch {
    return undefined;
  }
}

/** The first SPS of an hvcC body (HEVCDecoderConfigurationRecord), and its NAL length size. */
export function parseHvcC(body: Buffer): { sps?: SpsInfo; lengthSize: number } | undefined {
  if (body.length < 23 || body[0] !== 1) return undefined;
  const lengthSize = (body[21] & 3) + 1;
  let pos = 23;
  for (let a = 0; a < body[22] && pos + 3 <= body.length; a++) {
    const type = body[pos] & 0x3f;
    const count = body.readUInt16BE(pos + 1);
    pos += 3;
    for (let n = 0; n < count && pos + 2 <= body.length; n++) {
      const len = body.readUInt16BE(pos);
      pos += 2;
      if (pos + len > body.length) return { lengthSize };
      if (type === 33) return { sps: parseH265Sps(body.subarray(pos, pos + len)), lengthSize };
      pos += len;
    }
  }
  return { lengthSize };
}

/**
 * The SPS among the NAL units of one sample (length-prefixed), read up to the first slice; else undefined.
 * `hevc`: the NAL units are H.265 (two-byte headers, SPS type 33, slices below 32).
 */
export function sampleSps(sample: Buffer, lengthSize = 4, hevc = false): SpsInfo | undefined {
  let pos = 0;
  while (pos + lengthSize < sample.length) {
    const len = sample.readUIntBE(pos, lengthSize);
    pos += lengthSize;
    if (len < 1 || pos + len > sample.length) return undefined;
    const nal = sample.subarray(pos, pos + len);
    if (hevc) {
      const type = (sample[pos] >> 1) & 0x3f;
      if (type === 33) return parseH265Sps(nal);
      if (type < 32) return undefined; // a slice: the parameter sets come before it
    } else {
      const type = sample[pos] & 0x1f;
      if (type === 7) return parseH264Sps(nal);
      if (type === 1 || type === 5) return undefined;
    }
    pos += len;
  }
  return undefined;
}

/** True when two SPS describe another picture: size or profile differ (the level and VUI may change freely). */
export function spsChanged(a: SpsInfo, b: SpsInfo): boolean {
  return a.width !== b.width || a.height !== b.height || a.profile !== b.profile || a.codec !== b.codec;
}
