import diagnostics from "diagnostics_channel";
import fs from "fs";
import http from "http";
import https from "https";
import net from "net";
import os from "os";
import path from "path";
import type { Duplex } from "stream";
import tls from "tls";
import { networkError } from "./http-client";
import { SourceError } from "./source";

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
export function watchPeerCertificate(
  url: string,
): { get: () => CertificateInfo | undefined; stop: () => void } | undefined {
  let host: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:") return undefined;
    host = parsed.hostname;
  } catch {
    return undefined;
  }
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

/** The certificate `host:port` presents (no request is sent), and why `settings` refuse it, if they do. */
export function fetchCertificate(
  host: string,
  port: number,
  settings: TlsSettings,
  timeoutMs = 10000,
): Promise<{ cert: tls.DetailedPeerCertificate; problem?: CertificateError }> {
  const where = `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const servername = net.isIP(host) ? undefined : host;
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false });
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(
        new SourceError("network", `no TLS handshake with ${where} within ${Math.round(timeoutMs / 1000)} s`),
      ),
    );
    socket.once("error", (err: NodeJS.ErrnoException) => reject(networkError(err, where)));
    socket.once("secureConnect", () => {
      const cert = socket.getPeerCertificate(true);
      const problem = checkPeer(socket, settings, where);
      socket.destroy();
      resolve({ cert, problem });
    });
  });
}

let privateDir: string | undefined;

/** A 0700 folder of this process for the CA files ffmpeg reads (removed when the process exits). */
function tlsDir(): string {
  if (privateDir && fs.existsSync(privateDir)) return privateDir;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-tls-"));
  privateDir = dir;
  process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writePrivate(name: string, text: string): string {
  const file = path.join(tlsDir(), name);
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

let caFile: string | undefined;

/** Node's trusted CAs (its bundled roots plus NODE_EXTRA_CA_CERTS) as a PEM file, for ffmpeg's -ca_file. */
function trustedCaFile(): string {
  if (caFile && fs.existsSync(caFile)) return caFile;
  let extra = "";
  const extraFile = process.env.NODE_EXTRA_CA_CERTS;
  try {
    if (extraFile) extra = fs.readFileSync(extraFile, "utf8");
  } catch {
    extra = ""; // Node itself warns about an unreadable NODE_EXTRA_CA_CERTS
  }
  caFile = writePrivate("trusted-ca.pem", [...tls.rootCertificates, extra].join("\n"));
  return caFile;
}

function pem(cert: tls.PeerCertificate): string {
  const b64 = cert.raw.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`.replace(/\n\n/g, "\n");
}

/** A name the certificate was issued for, for ffmpeg's -verifyhost (the pin already says which certificate). */
function nameIn(cert: tls.PeerCertificate, host: string): string {
  const names = (cert.subjectaltname ?? "")
    .split(/,\s*/)
    .map((n) => /^(?:DNS|IP Address):(.*)$/.exec(n)?.[1])
    .filter((n): n is string => !!n);
  if (names.includes(host)) return host;
  return names[0] ?? [cert.subject?.CN].flat()[0] ?? host;
}

/**
 * ffmpeg input options that make its TLS check what camrelay's own https connections check: `https://` and
 * `rtmps://` inputs get `-tls_verify 1` with Node's trusted CAs as `-ca_file`, or, with a pin, the pinned
 * certificate (fetched and compared before ffmpeg starts) as the only CA, so ffmpeg itself accepts no other.
 * ffmpeg's `rtsps://` ignores these options (it cannot verify); other inputs get none.
 * Rejects with the same CertificateError as the HTTP protocols when the certificate is not trusted.
 */
export async function ffmpegTlsArgs(input: string, settings: TlsSettings | undefined): Promise<string[]> {
  const m = /^(https|rtmps):\/\/([^/?#]*)/i.exec(input.trim());
  if (!m) return [];
  const fingerprint = normalizeFingerprint(settings?.fingerprint);
  if (settings?.verify === false && !fingerprint) return [];
  const url = new URL(`https://${m[2].replace(/^[^@]*@/, "")}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port) || 443;
  const { cert, problem } = await fetchCertificate(host, port, { verify: true, fingerprint });
  if (problem) throw problem;
  if (!fingerprint) return ["-tls_verify", "1", "-ca_file", trustedCaFile()];
  const file = writePrivate(`pinned-${fingerprint.replace(/:/g, "")}.pem`, pem(cert));
  return ["-tls_verify", "1", "-ca_file", file, "-verifyhost", nameIn(cert, host)];
}

/** Why a camera's TLS goes unchecked, as a `camera-source.warn` key: verification off without a pin, or rtsps. */
export function uncheckedTls(
  protocol: string,
  url: string,
  settings: TlsSettings | undefined,
): "tlsOff" | "rtspsUnverified" | undefined {
  const scheme = /^(https|rtmps|rtsps):\/\//i.exec(url)?.[1].toLowerCase();
  const ffmpeg = protocol === "ffmpeg";
  if (ffmpeg && scheme === "rtsps") return "rtspsUnverified";
  const checked = ffmpeg
    ? scheme === "https" || scheme === "rtmps"
    : scheme === "https" && protocol !== "canon-vb";
  return checked && settings?.verify === false && !settings.fingerprint ? "tlsOff" : undefined;
}
