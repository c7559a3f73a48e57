import type { Node } from "node-red";
import type { Camera } from "../lib/camera/camera";
import type { CameraCredentials } from "../lib/camera/options";

/** What a camera-source config node offers the nodes that use it. */
export interface CameraSourceNode extends Node<CameraCredentials> {
  camera: Camera;
  /** Removes credentials from any text before it is shown or logged. */
  redact(text: string): string;
}
