/**
 * H.264 into RTP packets (RFC 6184, packetization-mode 1): a NAL unit that fits goes in one packet, a
 * bigger one is cut into FU-A fragments; SPS and PPS go before every IDR picture so a viewer that joins
 * (or lost packets) can decode from the next keyframe. Timestamps are 90 kHz; the marker bit ends a picture.
 */

/** NAL unit types this file cares about. */
export const NAL = { IDR: 5, SEI: 6, SPS: 7, PPS: 8, AUD: 9, FU_A: 28 } as const;

export const H264_CLOCK_RATE = 90000;

/** The NAL units of one AVCC sample (each behind a big-endian length of `lengthSize` bytes). */
export function splitAvcc(sample: Buffer, lengthSize: number): Buffer[] {
  const nals: Buffer[] = [];
  let p = 0;
  while (p < sample.length) {
    if (p + lengthSize > sample.length) throw new Error("h264: a NAL length is cut short");
    const len = sample.readUIntBE(p, lengthSize);
    p += lengthSize;
    if (len === 0) continue;
    if (p + len > sample.length) throw new Error(`h264: a NAL unit of ${len} bytes runs past its sample`);
    nals.push(sample.subarray(p, p + len));
    p += len;
  }
  return nals;
}

export function nalType(nal: Buffer): number {
  return nal[0] & 0x1f;
}

export interface H264PacketizerOptions {
  /** Largest RTP packet (header + payload) this makes; room for SRTP and header extensions is kept. */
  mtu?: number;
  payloadType?: number;
  ssrc?: number;
  /** First sequence number (random by default, as RFC 3550 asks). */
  sequence?: number;
}

/** Bytes kept free under the MTU for the RTP header extensions the sender adds (mid, abs-send-time, TWCC). */
const EXTENSION_ROOM = 32;
const RTP_HEADER = 12;

/** Turns pictures (their NAL units) into RTP packets; keeps the sequence number across pictures. */
export class H264Packetizer {
  readonly maxPayload: number;
  private readonly payloadType: number;
  private readonly ssrc: number;
  private sequence: number;
  private sps: Buffer[] = [];
  private pps: Buffer[] = [];

  constructor(options: H264PacketizerOptions = {}) {
    const mtu = options.mtu ?? 1200;
    this.maxPayload = mtu - RTP_HEADER - EXTENSION_ROOM;
    if (this.maxPayload < 100) throw new Error(`h264: an MTU of ${mtu} bytes is too small`);
    this.payloadType = options.payloadType ?? 96;
    this.ssrc = options.ssrc ?? 0;
    this.sequence = (options.sequence ?? Math.floor(Math.random() * 0x10000)) & 0xffff;
  }

  /** The parameter sets sent before each IDR picture that does not carry its own (from the init's avcC). */
  setParameterSets(sps: Buffer[], pps: Buffer[]): void {
    this.sps = sps;
    this.pps = pps;
  }

  /** The sequence number the next packet gets. */
  get nextSequence(): number {
    return this.sequence;
  }

  /**
   * The RTP packets of one picture at `timestamp` (90 kHz, wrapped to 32 bits). Access unit delimiters
   * are left out; in-band SPS/PPS are kept (and remembered for later IDR pictures).
   */
  packetize(nals: Buffer[], timestamp: number): Buffer[] {
    const units = nals.filter((n) => n.length > 0 && nalType(n) !== NAL.AUD);
    const inbandSps = units.filter((n) => nalType(n) === NAL.SPS);
    const inbandPps = units.filter((n) => nalType(n) === NAL.PPS);
    if (inbandSps.length > 0) this.sps = inbandSps;
    if (inbandPps.length > 0) this.pps = inbandPps;
    const idr = units.findIndex((n) => nalType(n) === NAL.IDR);
    if (idr >= 0 && (inbandSps.length === 0 || inbandPps.length === 0)) {
      const before = units.slice(0, idr).filter((n) => nalType(n) !== NAL.SPS && nalType(n) !== NAL.PPS);
      units.splice(0, idr, ...before, ...this.sps, ...this.pps);
    }
    const payloads: Buffer[] = [];
    for (const nal of units) {
      if (nal.length <= this.maxPayload) {
        payloads.push(nal);
        continue;
      }
      // FU-A: indicator keeps F and NRI with type 28; the header carries start/end bits and the real type.
      const indicator = (nal[0] & 0xe0) | NAL.FU_A;
      const type = nal[0] & 0x1f;
      const chunk = this.maxPayload - 2;
      for (let p = 1; p < nal.length; p += chunk) {
        const end = Math.min(nal.length, p + chunk);
        const header = (p === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
        payloads.push(Buffer.concat([Buffer.from([indicator, header]), nal.subarray(p, end)]));
      }
    }
    const ts = ((timestamp % 0x100000000) + 0x100000000) % 0x100000000;
    return payloads.map((payload, i) => this.packet(payload, ts, i === payloads.length - 1));
  }

  private packet(payload: Buffer, timestamp: number, marker: boolean): Buffer {
    const packet = Buffer.allocUnsafe(RTP_HEADER + payload.length);
    packet[0] = 0x80;
    packet[1] = (marker ? 0x80 : 0) | (this.payloadType & 0x7f);
    packet.writeUInt16BE(this.sequence, 2);
    packet.writeUInt32BE(timestamp, 4);
    packet.writeUInt32BE(this.ssrc >>> 0, 8);
    payload.copy(packet, RTP_HEADER);
    this.sequence = (this.sequence + 1) & 0xffff;
    return packet;
  }
}

/** The profile_idc of an SDP profile-level-id ("64001f" -> 0x64), or undefined when it is not six hex digits. */
export function profileIdc(profileLevelId: string | undefined): number | undefined {
  return profileLevelId && /^[0-9a-f]{6}$/i.test(profileLevelId)
    ? parseInt(profileLevelId.slice(0, 2), 16)
    : undefined;
}
