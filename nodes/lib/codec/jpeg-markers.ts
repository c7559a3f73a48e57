/** JPEG marker helpers: image size from the SOF segment, and COM segments (used for timestamps). */

export interface JpegSize {
  width: number;
  height: number;
}

/** SOF0..SOF15 carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not. */
export function isSofMarker(m: number): boolean {
  return m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;
}

/** Walks the header segments of a JPEG and returns its size, or undefined when there is no SOF. */
export function readJpegSize(jpeg: Buffer): JpegSize | undefined {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return undefined;
  let pos = 2;
  while (pos + 3 < jpeg.length) {
    if (jpeg[pos] !== 0xff) return undefined;
    const m = jpeg[pos + 1];
    if (m === 0xff) {
      pos++;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return undefined;
    if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      pos += 2;
      continue;
    }
    const len = jpeg.readUInt16BE(pos + 2);
    if (isSofMarker(m)) {
      if (pos + 9 > jpeg.length) return undefined;
      return { height: jpeg.readUInt16BE(pos + 5), width: jpeg.readUInt16BE(pos + 7) };
    }
    if (len < 2) return undefined;
    pos += 2 + len;
  }
  return undefined;
}

/** Returns a copy of `jpeg` with a COM segment holding `text` right after SOI. */
export function insertJpegComment(jpeg: Buffer, text: string): Buffer {
  const body = Buffer.from(text, "latin1").subarray(0, 65533);
  const seg = Buffer.allocUnsafe(4 + body.length);
  seg[0] = 0xff;
  seg[1] = 0xfe;
  seg.writeUInt16BE(body.length + 2, 2);
  body.copy(seg, 4);
  return Buffer.concat([jpeg.subarray(0, 2), seg, jpeg.subarray(2)]);
}

/** The text of the first COM segment before SOS, if any. */
export function readJpegComment(jpeg: Buffer): string | undefined {
  let pos = 2;
  while (pos + 3 < jpeg.length && jpeg[pos] === 0xff) {
    const m = jpeg[pos + 1];
    if (m === 0xda || m === 0xd9) return undefined;
    const len = jpeg.readUInt16BE(pos + 2);
    if (len < 2) return undefined;
    if (m === 0xfe) return jpeg.toString("latin1", pos + 4, Math.min(jpeg.length, pos + 2 + len));
    pos += 2 + len;
  }
  return undefined;
}
