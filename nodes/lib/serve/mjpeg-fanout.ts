import type { ServerResponse } from "http";
import type { Frame } from "../media";
import { NO_STORE } from "./reply";

/** The multipart boundary of every MJPEG stream camrelay serves. */
export const MJPEG_BOUNDARY = "camrelay";

const CRLF = Buffer.from("\r\n");

/** Builds the MJPEG part for one frame: boundary, headers, JPEG and CRLF in one shared Buffer. */
export function mjpegPart(frame: Frame): Buffer {
  const header = Buffer.from(
    `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.data.length}\r\n` +
      `X-Timestamp: ${(frame.time / 1000).toFixed(3)}\r\n\r\n`,
    "latin1",
  );
  return Buffer.concat([header, frame.data, CRLF], header.length + frame.data.length + 2);
}

/** The head of an MJPEG response; the body is the raw multipart stream, ended by closing the connection. */
export function writeMjpegHead(res: ServerResponse): void {
  res.useChunkedEncodingByDefault = false;
  res.writeHead(200, {
    "Content-Type": `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
    "Cache-Control": NO_STORE,
    Pragma: "no-cache",
    Connection: "close",
    "X-Content-Type-Options": "nosniff",
  });
}

/** The head of a progressive fMP4 response (`stream.mp4`), also ended by closing the connection. */
export function writeMp4Head(res: ServerResponse): void {
  res.useChunkedEncodingByDefault = false;
  res.writeHead(200, { "Content-Type": "video/mp4", "Cache-Control": NO_STORE, Connection: "close" });
}

/** The latest frame and its MJPEG part, built once when first needed and shared by every viewer. */
export class LatestFrame {
  frame: Frame | undefined;
  private part: Buffer | undefined;

  set(frame: Frame): void {
    this.frame = frame;
    this.part = undefined;
  }

  /** The part of the latest frame; undefined before the first frame. */
  mjpeg(): Buffer | undefined {
    if (!this.frame) return undefined;
    return (this.part ??= mjpegPart(this.frame));
  }
}
