// One MPEG-TS byte stream (an ffmpeg's stdout) to many HTTP clients: each joins at a TS packet boundary (so
// its first byte is a sync byte) and gets every byte after; a client more than 8 MiB behind is dropped (the
// stream cannot skip bytes without breaking it).
"use strict";

const TS_PACKET = 188;
const MAX_BACKLOG = 8 * 1024 * 1024;

class TsFanout {
  constructor(readable) {
    this.clients = new Map(); // res -> joined (at a packet boundary)
    this.offset = 0;
    readable.on("data", (chunk) => this.write(chunk));
  }

  write(chunk) {
    for (const [res, joined] of this.clients) {
      let data = chunk;
      if (!joined) {
        const skip = (TS_PACKET - (this.offset % TS_PACKET)) % TS_PACKET;
        if (skip >= chunk.length) continue;
        data = chunk.subarray(skip);
        this.clients.set(res, true);
      }
      if (res.writableLength > MAX_BACKLOG) res.destroy();
      else res.write(data);
    }
    this.offset += chunk.length;
  }

  /** Answers one GET with the stream from now on. */
  serve(req, res) {
    res.writeHead(200, { "Content-Type": "video/mp2t", "Cache-Control": "no-store", Connection: "close" });
    res.socket.setNoDelay(true);
    this.clients.set(res, false);
    req.on("close", () => this.clients.delete(res));
  }

  closeAll() {
    for (const res of this.clients.keys()) res.destroy();
    this.clients.clear();
  }
}

module.exports = { TsFanout };
