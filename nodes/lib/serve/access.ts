import { createHash, timingSafeEqual } from "crypto";
import type { IncomingMessage, ServerResponse } from "http";

/** Who may ask (the token), which pages may read the answers (CORS), and who a client is (its address). */

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** The client's address: express's `req.ip` when set (trust proxy), else the socket's; IPv4-mapped unwrapped. */
export function clientAddress(req: IncomingMessage): string {
  const ip = (req as IncomingMessage & { ip?: unknown }).ip;
  const addr = typeof ip === "string" && ip !== "" ? ip : (req.socket.remoteAddress ?? "");
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/**
 * The client an address stands for, for per-address limits: an IPv4 address itself, an IPv6 address by
 * its /64 (a host picks addresses inside its /64 at will).
 */
export function addressGroup(address: string): string {
  if (!address.includes(":")) return address;
  const a = address.split("%")[0].toLowerCase();
  const halves = a.split("::");
  if (halves.length > 2) return a;
  const left = halves[0] ? halves[0].split(":") : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  // A trailing dotted IPv4 part fills two groups.
  const rightGroups = right.length + (right.length > 0 && right[right.length - 1].includes(".") ? 1 : 0);
  const zeros =
    halves.length === 2 ? Array<string>(Math.max(0, 8 - left.length - rightGroups)).fill("0") : [];
  const groups = [...left, ...zeros, ...right].slice(0, 4);
  if (groups.length < 4 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return a;
  return `${groups.map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/** The token check and the CORS headers of one stream. */
export class Access {
  private readonly tokenHash: Buffer | undefined;

  constructor(
    token: string | undefined,
    private readonly cors: string | string[],
  ) {
    this.tokenHash = token ? sha256(token) : undefined;
  }

  /** Access-Control-Allow-Origin for this request: the setting, or the request's Origin when listed. */
  setCors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    const allow = Array.isArray(this.cors) ? (origin && this.cors.includes(origin) ? origin : "") : this.cors;
    if (allow === "") return;
    res.setHeader("Access-Control-Allow-Origin", allow);
    if (allow !== "*") res.setHeader("Vary", "Origin");
  }

  /** True without a token, or when `?token=` (first) or `Authorization: Bearer` matches it. */
  authorized(req: IncomingMessage, queryToken: string | null): boolean {
    if (!this.tokenHash) return true;
    let given = queryToken;
    const auth = req.headers.authorization;
    if (given === null && typeof auth === "string") {
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (m) given = m[1];
    }
    // Hashing first makes both sides the same length, so the comparison time says nothing.
    return given !== null && timingSafeEqual(sha256(given), this.tokenHash);
  }
}

/**
 * Admission of connections that stay open (viewers, HLS sessions, snapshot waiters): at most
 * `maxClients` in all and `maxPerAddress` per address group (0 = unlimited), counted as they are held
 * and released.
 */
export class Admission {
  /** Per address group: connections held now (all), and of those HLS sessions (hls). */
  private readonly perAddress = new Map<string, { all: number; hls: number }>();

  constructor(
    readonly maxClients: number,
    readonly maxPerAddress: number,
  ) {}

  /** Why one more connection from `group` is refused (the 503 text), or undefined when it may come. */
  refusal(heldInAll: number, group: string): string | undefined {
    if (this.maxClients > 0 && heldInAll >= this.maxClients) return "Too many viewers\n";
    if (this.maxPerAddress > 0 && (this.perAddress.get(group)?.all ?? 0) >= this.maxPerAddress)
      return "Too many viewers from your address\n";
    return undefined;
  }

  /** HLS sessions the group holds now. */
  hlsHeld(group: string): number {
    return this.perAddress.get(group)?.hls ?? 0;
  }

  hold(group: string, hls: boolean): void {
    const held = this.perAddress.get(group) ?? { all: 0, hls: 0 };
    held.all++;
    if (hls) held.hls++;
    this.perAddress.set(group, held);
  }

  release(group: string, hls: boolean): void {
    const held = this.perAddress.get(group);
    if (!held) return;
    held.all--;
    if (hls) held.hls--;
    if (held.all <= 0) this.perAddress.delete(group);
  }

  clear(): void {
    this.perAddress.clear();
  }
}
