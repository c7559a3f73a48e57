import diagnostics from "diagnostics_channel";
import http from "http";
import https from "https";
import net from "net";
import type { Duplex } from "stream";
import tls from "tls";
import { SourceError } from "./sources/source";

/** How a camera's https:// certificate is checked. */
export interface TlsSettings {
  /** Verify the chain against Node's trusted CAs (and NODE_EXTRA_CA_CERTS) and the host name. */
  verify: boolean;
  /** SHA-256 of the camera's own certificate ("AB:CD:..."): when set, exactly that certificate is accepted. */
  fingerprint?: string;
}

/** The certificate a camera presented, for the error and the editor's Test. */
export interface CertificateInfo {
  fingerprint256: string;
  subject: string;
  issuer: string;
  validTo: string;
  selfSigned: boolean;
}

/** The camera's certificate was not accepted: retrying cannot help, the user has to decide. */
export class CertificateError extends SourceError {
  constructor(
    message: string,
    readonly certificate?: CertificateInfo,
  ) {
    super("config", message);
    this.name = "CertificateError";
  }
}

/** "ab cd ..." / "sha256:abcd..." / "AB:CD:..." as Node writes it ("AB:CD:..."); "" when empty. */
export function normalizeFingerprint(text: unknown): string {
  const hex = String(text ?? "")
    .trim()
    .replace(/^sha-?256\s*[:=]?\s*/i, "")
    .replace(/[\s:-]/g, "")
    .toUpperCase();
  if (!hex) return "";
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new SourceError(
      "config",
      "the trusted certificate fingerprint is not a SHA-256 (64 hex digits): press Test and trust the certificate again",
    );
  }
  return hex.match(/../g)!.join(":");
}

function names(part: tls.Certificate | undefined): string {
  if (!part) return "";
  return (["CN", "O", "OU"] as const)
    .filter((k) => part[k])
    .map((k) => `${k}=${[part[k]].flat().join("+")}`)
    .join(", ");
}

export function certificateInfo(cert: tls.DetailedPeerCertificate): CertificateInfo {
  return {
    fingerprint256: cert.fingerprint256,
    subject: names(cert.subject) || "(no subject)",
    issuer: names(cert.issuer) || "(no issuer)",
    validTo: cert.valid_to,
    selfSigned: !cert.issuerCertificate || cert.issuerCertificate.fingerprint256 === cert.fingerprint256,
  };
}

/** OpenSSL's verification codes in words. */
function reasonText(code: string | Error | null | undefined, info: CertificateInfo): string {
  switch (String(code ?? "")) {
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
      return "self-signed";
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
      return `issued by ${info.issuer}, which is not a trusted CA`;
    case "CERT_HAS_EXPIRED":
      return `expired ${info.validTo}`;
    case "CERT_NOT_YET_VALID":
      return "not valid yet";
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `issued for ${info.subject}, not for this host name`;
    default:
      return String(code ?? "unknown reason");
  }
}

/** Whether the TLS connection to `where` may carry requests; a CertificateError in words when not. */
export function checkPeer(
  socket: tls.TLSSocket,
  settings: TlsSettings,
  where: string,
): CertificateError | undefined {
  const cert = socket.getPeerCertificate(true);
  if (!cert || !cert.raw) return new CertificateError(`${where} presented no TLS certificate`);
  const info = certificateInfo(cert);
  if (settings.fingerprint) {
    if (info.fingerprint256 === settings.fingerprint) return undefined;
    return new CertificateError(
      `certificate of ${where} is not the trusted one (presented SHA-256 ${info.fingerprint256}, ${info.subject}; ` +
        `trusted ${settings.fingerprint}): if the camera has a new certificate, press Test in the camera dialog and trust it`,
      info,
    );
  }
  if (!settings.verify || socket.authorized) return undefined;
  return new CertificateError(
    `certificate of ${where} not trusted (${reasonText(socket.authorizationError, info)}): press Test in the camera ` +
      `dialog to trust this camera's certificate, SHA-256 ${info.fingerprint256}`,
    info,
  );
}

type ConnectCallback = (err: Error | null, socket: Duplex) => void;

/**
 * An https.Agent that hands a socket to a request only after the camera's certificate passed `checkPeer`,
 * so not one byte of a request (nor its Authorization header) reaches a camera that failed the check.
 */
class CheckedHttpsAgent extends https.Agent {
  private readonly handshaking = new Set<tls.TLSSocket>();

  constructor(
    private readonly tlsSettings: TlsSettings,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(requestOptions: http.ClientRequestArgs, callback?: ConnectCallback): undefined {
    const options = requestOptions as tls.ConnectionOptions;
    const where = `${options.host ?? "camera"}:${options.port ?? 443}`;
    const servername = options.servername || (net.isIP(options.host ?? "") ? undefined : options.host);
    const socket = tls.connect({ ...options, servername, rejectUnauthorized: false });
    this.handshaking.add(socket);
    let done = false;
    const settle = (err: Error | null) => {
      if (done) return;
      done = true;
      this.handshaking.delete(socket);
      socket.setTimeout(0);
      socket.off("error", onError);
      if (err) socket.destroy();
      callback?.(err, socket);
    };
    const onError = (err: Error) => settle(err);
    socket.on("error", onError);
    socket.setTimeout(10000, () =>
      settle(new SourceError("network", `no TLS handshake with ${where} within 10 s`)),
    );
    socket.once("secureConnect", () => settle(checkPeer(socket, this.tlsSettings, where) ?? null));
    return undefined;
  }

  override destroy(): void {
    for (const socket of this.handshaking) socket.destroy();
    this.handshaking.clear();
    super.destroy();
  }
}

/** The agent for a camera URL: plain for http:, certificate-checked for https:. */
export function cameraAgent(
  url: URL,
  settings: TlsSettings | undefined,
  options: http.AgentOptions,
): http.Agent {
  if (url.protocol !== "https:") return new http.Agent(options);
  const checked = {
    verify: settings?.verify !== false,
    fingerprint: normalizeFingerprint(settings?.fingerprint),
  };
  return new CheckedHttpsAgent(checked, { ...options, rejectUnauthorized: false });
}

/**
 * The certificate of the first https response from `host` this process receives (through Node's diagnostics
 * channel, so the editor's Test reports the certificate of the probe's own connection).
 */
export function watchPeerCertificate(host: string): {
  get: () => CertificateInfo | undefined;
  stop: () => void;
} {
  let found: CertificateInfo | undefined;
  const onResponse = (message: unknown) => {
    const { request } = message as { request: http.ClientRequest };
    if (found || request?.host !== host || !(request.socket instanceof tls.TLSSocket)) return;
    const cert = request.socket.getPeerCertificate(true);
    if (cert?.raw) found = certificateInfo(cert);
  };
  const channel = diagnostics.channel("http.client.response.finish");
  channel.subscribe(onResponse);
  return { get: () => found, stop: () => channel.unsubscribe(onResponse) };
}
