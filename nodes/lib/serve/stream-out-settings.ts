import { numberSetting } from "../settings";
import type { StreamServerOptions } from "./stream-server";
import type { WhepConfig } from "./whep";

/** The http stream out settings as the editor saves them (strings or numbers, or absent in old flows). */
export interface StreamOutSettings {
  name?: string;
  path?: unknown;
  maxClients?: unknown;
  maxPerAddress?: unknown;
  maxKbps?: unknown;
  cors?: unknown;
  offlineAfter?: unknown;
  stallTimeout?: unknown;
  mjpegFps?: unknown;
  /** WebRTC (WHEP): STUN/TURN URLs, one per line; the TURN user; a UDP port range "min-max"; ICE over TCP. */
  iceServers?: unknown;
  turnUser?: unknown;
  udpPorts?: unknown;
  iceTcp?: unknown;
}

/**
 * What a missing or non-numeric setting means, in the editor's units (seconds). The viewer limits are 0
 * (unlimited) for a missing value, as they always were; the editor gives new nodes a limit (issue 10).
 */
export const HTTP_STREAM_OUT_DEFAULTS = {
  maxClients: 0,
  maxPerAddress: 0,
  maxKbps: 0,
  offlineAfter: 10,
  stallTimeout: 10,
  mjpegFps: 5,
} as const;

/** The lowest value each number setting can take (a lower one is clamped to it). */
const MINIMUMS: Record<keyof typeof HTTP_STREAM_OUT_DEFAULTS, number> = {
  maxClients: 0,
  maxPerAddress: 0,
  maxKbps: 0,
  offlineAfter: 0,
  stallTimeout: 0.5,
  mjpegFps: 0,
};

/** "/camera/front" from "camera/front/"; undefined for "/" or characters express would read as a pattern. */
export function normalizePath(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  let p = raw.trim().replace(/\/+/g, "/");
  if (!p.startsWith("/")) p = "/" + p;
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return /^(\/[A-Za-z0-9._~-]+)+$/.test(p) ? p : undefined;
}

/** httpNodeCors (settings.js) as a default for the node's own cors property. */
export function corsFromSettings(setting: unknown): string | string[] {
  if (typeof setting !== "object" || setting === null) return "";
  const origin = (setting as { origin?: unknown }).origin;
  if (origin === true || origin === undefined) return "*";
  if (typeof origin === "string") return origin;
  if (Array.isArray(origin)) return origin.filter((o): o is string => typeof o === "string");
  return "";
}

/** One number setting by the shared rule (lib/settings.ts), with its default and floor. */
function num(value: unknown, key: keyof typeof HTTP_STREAM_OUT_DEFAULTS): number {
  return numberSetting(value, HTTP_STREAM_OUT_DEFAULTS[key], { min: MINIMUMS[key] });
}

/** The node's own cors property when it has one (a list only from a hand-written flow). */
function ownCors(cors: unknown): string | string[] | undefined {
  if (typeof cors === "string") return cors || undefined;
  if (Array.isArray(cors) && cors.length > 0) return cors.filter((o): o is string => typeof o === "string");
  return undefined;
}

/** What the node adds from outside its settings: its token credential, httpNodeCors, translated texts. */
export interface StreamOutContext {
  token?: unknown;
  /** settings.js's httpNodeCors, used when the node has no cors of its own. */
  httpNodeCors?: unknown;
  texts?: StreamServerOptions["texts"];
  /** The TURN password credential. */
  turnPassword?: unknown;
}

const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/i;

/** "40000-40100" -> [40000, 40100]; "" -> undefined; anything else -> an Error in words. */
export function parseUdpPorts(value: unknown): [number, number] | undefined | Error {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : "";
  if (text === "") return undefined;
  const m = /^(\d{1,5})\s*-\s*(\d{1,5})$/.exec(text);
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!m || min < 1024 || max > 65535 || min >= max)
    return new Error(
      `UDP ports "${text}" is not a range min-max with 1024 <= min < max <= 65535: any port is used`,
    );
  return [min, max];
}

/**
 * The WebRTC settings as werift takes them, and what was wrong with them in words (each ignored): a line of
 * iceServers that is no stun:/turn: URL, a UDP port range that cannot be used.
 */
export function webrtcConfig(
  config: StreamOutSettings,
  turnPassword: unknown,
): { config: WhepConfig; problems: string[] } {
  const problems: string[] = [];
  const user = typeof config.turnUser === "string" ? config.turnUser.trim() : "";
  const password = typeof turnPassword === "string" ? turnPassword : "";
  const lines = typeof config.iceServers === "string" ? config.iceServers.split(/[\r\n]+/) : [];
  const iceServers: WhepConfig["iceServers"] = [];
  for (const raw of lines) {
    const url = raw.trim();
    if (url === "" || url.startsWith("#")) continue;
    if (!ICE_URL.test(url)) {
      problems.push(`ICE server "${url.slice(0, 80)}" is not a stun: or turn: URL: left out`);
      continue;
    }
    const turn = /^turns?:/i.test(url);
    iceServers.push(
      turn && (user || password) ? { urls: url, username: user, credential: password } : { urls: url },
    );
  }
  const ports = parseUdpPorts(config.udpPorts);
  if (ports instanceof Error) problems.push(ports.message);
  const iceTcp = config.iceTcp === true || config.iceTcp === "true";
  return { config: { iceServers, portRange: ports instanceof Error ? undefined : ports, iceTcp }, problems };
}

/** The StreamServer options for one node's settings (without the node's callbacks). */
export function streamServerOptions(
  config: StreamOutSettings,
  context: StreamOutContext,
): StreamServerOptions {
  const path = normalizePath(config.path);
  const { token, texts } = context;
  return {
    path: path ?? "/",
    title: config.name || path,
    maxClients: num(config.maxClients, "maxClients"),
    maxPerAddress: num(config.maxPerAddress, "maxPerAddress"),
    maxKbps: num(config.maxKbps, "maxKbps"),
    token: typeof token === "string" && token ? token : undefined,
    cors: ownCors(config.cors) ?? corsFromSettings(context.httpNodeCors),
    offlineAfterMs: num(config.offlineAfter, "offlineAfter") * 1000,
    stallTimeoutMs: num(config.stallTimeout, "stallTimeout") * 1000,
    mjpegFps: Math.min(30, num(config.mjpegFps, "mjpegFps")),
    texts,
    webrtc: webrtcConfig(config, context.turnPassword),
  };
}
