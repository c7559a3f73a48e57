import type { Camera } from "../camera/camera";
import type { MetricRow } from "./metrics";

/** How the lookup sees the cameras that exist: by id, and all of them (Node-RED's registry, or a test's list). */
export interface CameraRegistry<C> {
  byId(id: string): C | undefined;
  all(): Iterable<C>;
}

/**
 * The camera behind the frames: by the id the frame messages carry (msg.frame.cameraId), else by the
 * camera name they carry, but only when exactly one camera has that name (two unnamed cameras are both
 * "test pattern" or "camera": guessing would show one camera's counters for the other).
 */
export function findCamera<C extends Pick<Camera, "name">>(
  cameraId: string | undefined,
  name: string,
  registry: CameraRegistry<C>,
): C | undefined {
  if (cameraId !== undefined) return registry.byId(cameraId);
  if (!name) return undefined;
  const named = [...registry.all()].filter((c) => c.name === name);
  return named.length === 1 ? named[0] : undefined;
}

/** The camera's own counters for `<path>/metrics`. */
export function cameraMetricRows(camera: Pick<Camera, "name" | "stats" | "state">): MetricRow[] {
  const labels = { camera: camera.name };
  return [
    {
      name: "camrelay_camera_reconnects_total",
      type: "counter",
      help: "Reconnects of the camera feeding this stream.",
      value: camera.stats.reconnects,
      labels,
    },
    {
      name: "camrelay_camera_up",
      type: "gauge",
      help: "1 while the camera is streaming.",
      value: camera.state.state === "streaming" ? 1 : 0,
      labels,
    },
  ];
}
