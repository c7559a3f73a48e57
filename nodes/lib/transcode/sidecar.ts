/**
 * The JSON sidecar next to each recording (`name.json` for `name.mp4`): what the recording is, written
 * when it starts (so a crash leaves its start behind) and replaced whole when it closes.
 */
import fs from "fs";
import path from "path";
import type { RecordingInfo } from "../messages/recording";
import { SIDECAR_MARK } from "./retention";
import type { StartRequest } from "./recorder";

/** The trigger message's topic and payload as they go into JSON: bounded, Buffers summarised. */
export function safeTrigger(trigger: StartRequest["trigger"]): { topic?: unknown; payload?: unknown } {
  const out: { topic?: unknown; payload?: unknown } = {};
  if (trigger?.topic !== undefined)
    out.topic = typeof trigger.topic === "string" ? trigger.topic.slice(0, 256) : String(trigger.topic);
  const payload = trigger?.payload;
  if (Buffer.isBuffer(payload)) {
    out.payload = { type: "Buffer", length: payload.length };
  } else if (payload !== undefined) {
    try {
      const text = JSON.stringify(payload);
      out.payload =
        text !== undefined && text.length <= 8192 ? JSON.parse(text) : String(text).slice(0, 1024);
    } catch {
      out.payload = String(payload).slice(0, 1024);
    }
  }
  return out;
}

/**
 * Writes a recording's sidecar. The first write creates it (never through a link or over a file); later
 * ones replace it whole with a rename, which replaces a link put there meanwhile instead of following it.
 * Throws what the file system said.
 */
export function writeSidecar(sidecar: string, info: RecordingInfo, first = false): void {
  const text = JSON.stringify({ [SIDECAR_MARK]: 1, ...info }, null, 2);
  if (first) {
    fs.writeFileSync(sidecar, text, { flag: "wx" });
    return;
  }
  const temp = path.join(path.dirname(sidecar), `.${path.basename(sidecar)}.${process.pid}.tmp`);
  fs.rmSync(temp, { force: true });
  fs.writeFileSync(temp, text, { flag: "wx" });
  fs.renameSync(temp, sidecar);
}
