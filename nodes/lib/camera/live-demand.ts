/**
 * Which cameras have live viewers that want every picture at once (WebSocket MSE and WebRTC, through an
 * http stream out). A passthrough camera's ffmpeg cuts a fragment a picture; with no such viewer the Camera
 * groups them into ~0.25 s units before they reach the wires, so Node-RED routes four messages a second
 * instead of fifteen (about a point of a core per camera at 15 fps). A hint only: the data still goes through
 * the wires, and a camera without any holder behaves as before issue 14 (0.25 s fragments).
 */
export class LiveDemand {
  private readonly holders = new Map<string, Set<object>>();

  /** `holder` (an http stream out's server) has live video viewers of `cameraId`, or no longer has. */
  set(cameraId: string, holder: object, wants: boolean): void {
    let set = this.holders.get(cameraId);
    if (wants) {
      if (!set) this.holders.set(cameraId, (set = new Set()));
      set.add(holder);
    } else if (set) {
      set.delete(holder);
      if (set.size === 0) this.holders.delete(cameraId);
    }
  }

  /** Drops `holder` from every camera (its node closed). */
  release(holder: object): void {
    for (const [id, set] of this.holders) {
      set.delete(holder);
      if (set.size === 0) this.holders.delete(id);
    }
  }

  wanted(cameraId: string): boolean {
    return this.holders.has(cameraId);
  }

  /** Cameras with a holder (status and tests). */
  get cameras(): string[] {
    return [...this.holders.keys()];
  }
}

export const liveDemand = new LiveDemand();
