import type { OutgoingHttpHeaders, ServerResponse } from "http";

/** What every non-streaming answer of the stream server sends as Cache-Control. */
export const NO_STORE = "no-store, no-cache, must-revalidate, max-age=0";

/**
 * Answers a request in one go: status, `Cache-Control: no-store` unless overridden, Content-Type and
 * Content-Length when there is a type, and the body unless it is a HEAD request.
 */
export function reply(
  res: ServerResponse,
  status: number,
  type: string | undefined,
  body: string | Buffer,
  head: boolean,
  headers: OutgoingHttpHeaders = {},
): void {
  const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  const h: OutgoingHttpHeaders = { "Cache-Control": NO_STORE, ...headers };
  if (type !== undefined) {
    h["Content-Type"] = type;
    h["Content-Length"] = data.length;
  }
  res.writeHead(status, h);
  res.end(head ? undefined : data);
}

/** 503 for a connection that would pass a viewer limit; closing it gives the file descriptor back at once. */
export function replyBusy(res: ServerResponse, head: boolean, text: string): void {
  reply(res, 503, "text/plain", text, head, { "Retry-After": "10", Connection: "close" });
}
