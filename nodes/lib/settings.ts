/**
 * Node settings from the editor arrive as strings, numbers or nothing. One rule for every numeric
 * setting: missing, empty or not a finite number means "use the default"; a number outside the allowed
 * range is clamped to it (so `-5` for a cap of at least 0 is 0, not the default).
 */
export interface NumberRule {
  min?: number;
  max?: number;
  /** Round to a whole number (after clamping). */
  integer?: boolean;
}

export function numberSetting(value: unknown, fallback: number, rule: NumberRule = {}): number {
  // Only numbers and strings are settings (Number([]) is 0, Number(true) is 1: not numbers typed by anyone).
  if (typeof value !== "number" && typeof value !== "string") return fallback;
  if (typeof value === "string" && value.trim() === "") return fallback;
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(n)) return fallback;
  const clamped = Math.min(rule.max ?? Infinity, Math.max(rule.min ?? -Infinity, n));
  return rule.integer ? Math.round(clamped) : clamped;
}

/** True when the setting was given but is not a number: for a warning, since the default is used. */
export function isBadNumber(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === "string" && value.trim() === "") return false;
  if (typeof value !== "number" && typeof value !== "string") return true;
  return !Number.isFinite(Number(value));
}

export interface Size {
  width: number;
  height: number;
}

/** The largest picture side camrelay believes anywhere (a setting, a JPEG header, a message). */
export const MAX_SIDE = 16384;

/** `"640x480"` (also `640X480`, `640*480`, spaces around) into a size, or undefined when it is not one. */
export function parseSize(text: unknown): Size | undefined {
  if (typeof text !== "string") return undefined;
  const m = /^\s*(\d{1,5})\s*[xX*]\s*(\d{1,5})\s*$/.exec(text);
  if (!m) return undefined;
  const width = Number(m[1]);
  const height = Number(m[2]);
  return width >= 1 && height >= 1 && width <= MAX_SIDE && height <= MAX_SIDE ? { width, height } : undefined;
}

/**
 * The two numbers of a size as typed (`640x480`, `640 × 480`, up to six digits each), without a range
 * check: for a setting that clamps a size instead of refusing it (the test pattern's). Others use parseSize.
 */
export function readSizeText(text: unknown): Size | undefined {
  if (typeof text !== "string") return undefined;
  const m = /^\s*(\d{1,6})\s*[xX×*]\s*(\d{1,6})\s*$/.exec(text);
  return m ? { width: Number(m[1]), height: Number(m[2]) } : undefined;
}
