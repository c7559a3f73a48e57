/**
 * Every credential helper in one place: taking `user:password@` out of a URL typed by the user, putting
 * url-encoded credentials into a URL for ffmpeg's arguments, and redacting logins from any text people see.
 * One userinfo splitter and one decode rule for every caller.
 */

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>]*@/gi;
const ENCODED_URL_USERINFO = /\b([a-z][a-z0-9+.-]*%3A%2F%2F)(?:(?!%2F)[^\s/?#&"'<>])*%40/gi;

/**
 * Replaces credentials in any URL inside text: rtsp://user:pass@host -> rtsp://***@host, user-only forms and
 * url-encoded URLs alike; then replaces each given secret (raw and url-encoded) with ***.
 */
export function redactCredentials(text: string, secrets?: readonly (string | undefined)[]): string {
  let out = String(text).replace(URL_USERINFO, "$1***@").replace(ENCODED_URL_USERINFO, "$1***%40");
  for (const secret of secrets ?? []) {
    if (!secret) continue;
    for (const form of new Set([secret, encodeURIComponent(secret)])) out = out.split(form).join("***");
  }
  return out;
}

/**
 * The strings to redact for a login: the password, "user:password" (Basic auth's clear text), and the user
 * name when it is long enough not to blank ordinary words (a user "a" or "cam" would mask half a sentence).
 */
export function credentialSecrets(user?: string, password?: string): string[] {
  const out: string[] = [];
  if (password) out.push(password);
  if (user && password) out.push(`${user}:${password}`);
  if (user && user.length >= 3) out.push(user);
  return out;
}

/** Puts url-encoded credentials into a URL (replacing any it had); only ever used for ffmpeg's arguments. */
export function urlWithCredentials(url: string, user?: string, password?: string): string {
  if (!user && !password) return url;
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#]*@)?/i.exec(url);
  if (!m) return url;
  const userinfo = encodeURIComponent(user ?? "") + (password ? `:${encodeURIComponent(password)}` : "");
  return m[1] + userinfo + "@" + url.slice(m[0].length);
}

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/** The decode rule for a user name or password from a URL: url-decoded; a malformed escape stays as typed. */
function decodeUserinfo(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Splits `user:pass@` out of a URL string (text up to the first `:` is the user); values are decoded by
 * decodeUserinfo, empty ones are undefined. A string without `scheme://...@` comes back unchanged.
 */
export function splitUserinfo(url: string): { url: string; user?: string; password?: string } {
  const m = USERINFO.exec(url);
  if (!m) return { url };
  const colon = m[2].indexOf(":");
  const user = decodeUserinfo(colon < 0 ? m[2] : m[2].slice(0, colon));
  const password = colon < 0 ? undefined : decodeUserinfo(m[2].slice(colon + 1));
  return { url: m[1] + url.slice(m[0].length), user: user || undefined, password: password || undefined };
}

/**
 * The same split for an http(s) URL typed by the user, parsed with WHATWG URL (throws on a URL that is not
 * one), so the credentials never travel with the URL object. The user and password come from splitUserinfo.
 */
export function splitUrlCredentials(raw: string): { url: URL; user?: string; password?: string } {
  const url = new URL(raw);
  const { user, password } = splitUserinfo(url.href);
  url.username = "";
  url.password = "";
  return { url, user, password };
}
