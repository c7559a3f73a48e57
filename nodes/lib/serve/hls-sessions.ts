import type { Admission } from "./access";
import { addressGroup } from "./access";
import type { ViewerInfo } from "./viewer";

/** Distinct User-Agents one address may turn into HLS sessions; more share one session of that address. */
export const HLS_SESSIONS_PER_ADDRESS = 16;

/** Blocking requests (playlist reloads, hinted parts) one HLS session may have waiting at once. */
export const HLS_HELD_PER_SESSION = 4;

/** An HLS client, known by address and user agent, alive while it keeps requesting. */
export class HlsSession {
  framesSent = 0;
  bytesSent = 0;
  kbps = 0;
  private kbpsBytes = 0;
  private kbpsAt: number;
  lastSeen: number;
  /** Requests of this client held open until the part they ask for exists (low-latency HLS). */
  held = 0;

  constructor(
    readonly address: string,
    readonly group: string,
    readonly since: number,
    now = performance.now(),
  ) {
    this.kbpsAt = now;
    this.lastSeen = now;
  }

  /** One segment handed to this client. */
  sent(bytes: number): void {
    this.framesSent++;
    this.bytesSent += bytes;
  }

  sampleKbps(now = performance.now()): void {
    if (now <= this.kbpsAt) return;
    this.kbps = Math.round(((this.bytesSent - this.kbpsBytes) * 8) / (now - this.kbpsAt));
    this.kbpsBytes = this.bytesSent;
    this.kbpsAt = now;
  }

  info(): ViewerInfo {
    const { address, since, framesSent, bytesSent, kbps } = this;
    return {
      address,
      since,
      kind: "hls",
      framesSent,
      framesSkipped: 0,
      bytesSent,
      kbps,
      pending: false,
      buffered: 0,
    };
  }
}

/**
 * The HLS clients of one stream. HLS has no connection to count, so a client is a session, found by
 * address and User-Agent, held in the admission counts while it keeps asking and let go after `idleMs`.
 */
export class HlsSessions {
  private readonly sessions = new Map<string, HlsSession>();

  constructor(
    private readonly admission: Admission,
    private readonly idleMs: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  values(): IterableIterator<HlsSession> {
    return this.sessions.values();
  }

  /**
   * The session of this client, made when new if `admit(group)` agrees; `created` says it was made.
   * Undefined when it is new and was refused.
   */
  touch(
    address: string,
    userAgent: unknown,
    admit: (group: string) => boolean,
    now = performance.now(),
  ): { session: HlsSession; created: boolean } | undefined {
    const group = addressGroup(address);
    // Players behind one address (a household's NAT) told apart by User-Agent, of which 64 characters do:
    // a client cannot make the key (kept 15 s) as large as its header.
    let key = `${address}|${String(userAgent ?? "").slice(0, 64)}`;
    let session = this.sessions.get(key);
    if (!session && this.admission.hlsHeld(group) >= HLS_SESSIONS_PER_ADDRESS) {
      // Made-up User-Agents must not turn one address into thousands of viewers: the rest share one.
      key = `${group}|*`;
      session = this.sessions.get(key);
    }
    let created = false;
    if (!session) {
      if (!admit(group)) return undefined;
      session = new HlsSession(address, group, Date.now(), now);
      this.sessions.set(key, session);
      this.admission.hold(group, true);
      created = true;
    }
    session.lastSeen = now;
    return { session, created };
  }

  /** Lets go of the sessions that asked for nothing for `idleMs`, calling `left` for each. */
  expire(left: (session: HlsSession) => void, now = performance.now()): void {
    for (const [key, s] of this.sessions) {
      if (s.held === 0 && now - s.lastSeen > this.idleMs) {
        this.sessions.delete(key);
        this.admission.release(s.group, true);
        left(s);
      }
    }
  }

  clear(): void {
    this.sessions.clear();
  }
}
