import type { NodeMessage } from "node-red";
import type { CameraState, CameraStateName } from "../camera/camera";

/** A state message as `camera connect` sends it on its second output: the state name in `payload`. */
export interface StateMessage extends NodeMessage {
  topic: string;
  payload: CameraStateName;
  state: CameraState;
}

const STATE_NAMES: readonly string[] = [
  "idle",
  "connecting",
  "streaming",
  "stalled",
  "retrying",
  "auth-failed",
  "failed",
] satisfies CameraStateName[];

/**
 * Writes a state message for the camera called `camera`. `redact` removes credentials from the error text
 * (the state carries `error: undefined` when there is none, as it always has).
 */
export function stateMessage(
  camera: string,
  state: CameraState,
  redact: (text: string) => string,
): StateMessage {
  return {
    topic: `${camera}/state`,
    payload: state.state,
    state: { ...state, error: state.error ? redact(state.error) : undefined },
  };
}

/** Reads a state message back, or undefined when msg is not one. */
export function stateFromMessage(msg: { payload?: unknown; state?: unknown }): CameraState | undefined {
  const state = msg.state;
  if (typeof state !== "object" || state === null) return undefined;
  const s = state as Partial<Record<keyof CameraState, unknown>>;
  if (typeof s.state !== "string" || !STATE_NAMES.includes(s.state) || msg.payload !== s.state)
    return undefined;
  if (typeof s.fps !== "number" || typeof s.since !== "number") return undefined;
  return state as CameraState;
}
