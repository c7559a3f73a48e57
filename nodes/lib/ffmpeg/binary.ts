/**
 * Finding the ffmpeg and ffprobe binaries, in the documented order: the node's setting, an environment
 * variable, the PATH, the bundled npm package.
 */
import fs from "fs";
import path from "path";

/** Where to look for one binary, in order: setting, environment variable, PATH, bundled npm package. */
export interface BinaryLookup {
  /** `ffmpeg` or `ffprobe`, for PATH lookup and messages. */
  name: string;
  setting?: string;
  envVar: string;
  /** npm package exporting `{ path }` of a bundled binary (an optional dependency). */
  bundledPackage: string;
  /** Environment to read `envVar` and PATH from; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function searchPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const exts = process.platform === "win32" ? ["", ".exe", ".cmd"] : [""];
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** A setting may be a path or a bare command name looked up on PATH. */
function resolveConfigured(value: string, env: NodeJS.ProcessEnv): string | undefined {
  if (value.includes("/") || value.includes("\\"))
    return isExecutableFile(value) ? path.resolve(value) : undefined;
  return searchPath(value, env);
}

function bundledBinary(pkg: string): string | undefined {
  let file: string | undefined;
  try {
    // Guarded: the package is an optional dependency and may be absent.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(pkg) as { path?: unknown };
    file = typeof mod.path === "string" ? mod.path : undefined;
  } catch {
    return undefined;
  }
  if (!file || !fs.existsSync(file)) return undefined;
  if (!isExecutableFile(file)) {
    // npm may skip install scripts (--ignore-scripts), leaving the shipped binary without its x bit.
    try {
      fs.chmodSync(file, fs.statSync(file).mode | 0o100);
    } catch {
      return undefined;
    }
  }
  return isExecutableFile(file) ? file : undefined;
}

/**
 * Finds a binary in the documented order. A setting or environment variable that names something that is not
 * an executable is an error (a typo must not silently run another ffmpeg).
 */
export function findBinary(lookup: BinaryLookup): string {
  const env = lookup.env ?? process.env;
  const setting = lookup.setting?.trim();
  if (setting) {
    const found = resolveConfigured(setting, env);
    if (!found)
      throw new Error(`${lookup.name} not found at "${setting}" (the node's ${lookup.name} setting).`);
    return found;
  }
  const fromEnv = env[lookup.envVar]?.trim();
  if (fromEnv) {
    const found = resolveConfigured(fromEnv, env);
    if (!found)
      throw new Error(`${lookup.name} not found at "${fromEnv}" (environment variable ${lookup.envVar}).`);
    return found;
  }
  const onPath = searchPath(lookup.name, env);
  if (onPath) return onPath;
  const bundled = bundledBinary(lookup.bundledPackage);
  if (bundled) return bundled;
  throw new Error(
    `${lookup.name} was not found: set the node's ${lookup.name} path, set ${lookup.envVar}, put ${lookup.name} ` +
      `on the PATH, or install ${lookup.bundledPackage}.`,
  );
}

/** Order: explicit setting, env FFMPEG_PATH, `ffmpeg` on PATH, the bundled @ffmpeg-installer binary. */
export function resolveFfmpegPath(setting?: string): string {
  return findBinary({
    name: "ffmpeg",
    setting,
    envVar: "FFMPEG_PATH",
    bundledPackage: "@ffmpeg-installer/ffmpeg",
  });
}

/** Order: explicit setting, env FFPROBE_PATH, `ffprobe` on PATH, the bundled @ffprobe-installer binary. */
export function resolveFfprobePath(setting?: string): string {
  return findBinary({
    name: "ffprobe",
    setting,
    envVar: "FFPROBE_PATH",
    bundledPackage: "@ffprobe-installer/ffprobe",
  });
}
