import type { NodeAPI, NodeDef } from "node-red";
import { Camera, CameraState } from "./lib/camera";
import { cameraOptions, CameraCredentials, CameraSourceSettings } from "./lib/camera-options";
import { redactCredentials } from "./lib/ffmpeg";
import type { CameraSourceNode } from "./shared";
import { createSource } from "./lib/sources";
import { probeCamera } from "./lib/camera-probe";

export = (RED: NodeAPI) => {
  function CameraSource(this: CameraSourceNode, config: CameraSourceSettings & NodeDef) {
    RED.nodes.createNode(this, config);
    const options = cameraOptions(config, this.credentials);
    const secrets = [
      options.password,
      options.user && options.password ? `${options.user}:${options.password}` : "",
    ];
    this.redact = (text: string) =>
      redactCredentials(
        text,
        secrets.filter((s): s is string => !!s),
      );
    this.camera = new Camera(options, createSource);

    let lastLogged = "";
    this.camera.on("state", (state: CameraState) => {
      // One log line per distinct problem, on the config node, not one per consumer.
      if (state.error && state.error !== lastLogged) {
        lastLogged = state.error;
        this.warn(this.redact(state.error));
      }
      if (state.state === "streaming") lastLogged = "";
    });
    // Damaged or dropped data is worth a warning, but not one per frame: each kind once a minute.
    const warnedAt = new Map<string, number>();
    this.camera.on("warning", (message: string) => {
      const kind = message.replace(/[\d.]+/g, "#");
      const now = Date.now();
      if (now - (warnedAt.get(kind) ?? 0) < 60000) return this.debug(this.redact(message));
      warnedAt.set(kind, now);
      this.warn(this.redact(message));
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      this.camera.close();
      done();
    });
  }

  RED.nodes.registerType("camera-source", CameraSource as any, {
    credentials: { user: { type: "text" }, password: { type: "password" } },
  });

  // The editor's "test" button: one frame and the measured rate, through the settings in the dialog.
  RED.httpAdmin.post(
    "/camrelay/camera-source/test",
    RED.auth.needsPermission("camera-source.write"),
    (req: any, res: any) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const stored =
        typeof body.id === "string" ? (RED.nodes.getCredentials(body.id) as CameraCredentials) : undefined;
      const password =
        body.password === "__PWRD__" || body.password === undefined
          ? stored?.password
          : String(body.password);
      const user = typeof body.user === "string" && body.user ? body.user : stored?.user;
      const def = {
        ...(body as object),
        name: String(body.name ?? "test"),
      } as unknown as CameraSourceSettings;
      const options = cameraOptions(def, { user, password });
      const secrets = [password ?? ""].filter(Boolean);
      probeCamera(options, 8000).then(
        (result) => res.json(result),
        (err: Error) => res.json({ error: redactCredentials(err.message, secrets) }),
      );
    },
  );
};
