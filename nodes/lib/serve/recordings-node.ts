/** The Node-RED side of an `http stream out` node's recordings: its wired sources, RED.auth, adminAuth. */
import type { Node, NodeAPI } from "node-red";
import { nodeRedSetting } from "../../support/http-mount";
import { Recordings, wiredRecordingSources, type RecordingsOptions } from "./recordings";

type NeedsPermission = (permission: string) => NonNullable<RecordingsOptions["needsPermission"]>;

export function recordingsFor(
  RED: NodeAPI,
  node: Node,
  server: { token?: string; cors?: string | string[] },
): Recordings {
  const auth = (RED as unknown as { auth?: { needsPermission?: NeedsPermission } }).auth;
  const needs = typeof auth?.needsPermission === "function" ? auth.needsPermission("flows.write") : undefined;
  return new Recordings({
    sources: () => wiredRecordingSources(RED, node.id),
    token: server.token,
    cors: server.cors,
    needsPermission: needs,
    adminAuth: Boolean(nodeRedSetting(RED, "adminAuth")),
    warn: (message) => node.warn(message),
  });
}
