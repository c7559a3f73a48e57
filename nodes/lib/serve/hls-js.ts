import { createHash } from "crypto";
import { readFile } from "fs";
import type { IncomingMessage, ServerResponse } from "http";

/** The URL, below httpNodeRoot, where hls.js is served for pages without internet access. */
export const HLS_JS_PATH = "/camrelay/hls.min.js";

/** hls.js's minified build, read once when first asked for. */
let hlsJs: Promise<{ data: Buffer; etag: string }> | undefined;

function loadHlsJs(): Promise<{ data: Buffer; etag: string }> {
  hlsJs ??= new Promise((resolve, reject) => {
    let file: string;
    try {
      file = require.resolve("hls.js/dist/hls.min.js");
    } catch (err) {
      reject(err as Error);
      return;
    }
    readFile(file, (err, data) => {
      if (err) reject(err);
      else resolve({ data, etag: `"${createHash("sha1").update(data).digest("hex").slice(0, 20)}"` });
    });
  });
  hlsJs.catch(() => (hlsJs = undefined));
  return hlsJs;
}

/** Answers GET/HEAD for hls.min.js (Node-RED hosts often have no internet to load it from a CDN). */
export function serveHlsJs(req: IncomingMessage, res: ServerResponse, onError: (err: Error) => void): void {
  loadHlsJs().then(
    ({ data, etag }) => {
      const headers = {
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": "max-age=3600",
        ETag: etag,
      };
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, "Content-Length": data.length });
      res.end(req.method === "HEAD" ? undefined : data);
    },
    (err: Error) => {
      onError(err);
      if (!res.headersSent) res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" });
      res.end("hls.js is not installed\n");
    },
  );
}
