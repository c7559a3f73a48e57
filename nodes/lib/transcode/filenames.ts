/**
 * Recording file names: the default `<camera>-<date>-<time>.mp4`, a message's `msg.filename` confined to
 * the recording directory within the file system's byte limits, and the first free `-N` name.
 */
import fs from "fs";
import path from "path";
import { MAX_FOLDER_DEPTH } from "./retention";

export class RecorderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecorderError";
  }
}

/** Frames without a camera of their own are named after the node. */
export function sanitizeCameraName(name: string): string {
  const clean = name
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._-]+|[._-]+$/g, "")
    .slice(0, 64);
  return clean || "camera";
}

/** Local date and time for file names: 20240501-140000. */
export function stamp(time: number): string {
  const d = new Date(time);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Longest name the file system takes for one path component, in bytes (NAME_MAX on Linux, macOS, Windows). */
export const NAME_MAX_BYTES = 255;
/** Longest path, in bytes (PATH_MAX on Linux less its NUL). */
export const PATH_MAX_BYTES = 4095;
/** The highest `-N` a name gets before the recorder gives up on finding a free one. */
export const MAX_NAME_SUFFIX = 9999;
/**
 * Bytes the recorder adds to a recording's base name in the longest file it makes of it, the temporary sidecar
 * `.<base>-9999.json.<pid>.tmp`: 1 + 5 + 5 + 1 + up to 10 + 4.
 */
export const NAME_SUFFIX_ROOM = 26;

/** The longest base name (without `.mp4`) that leaves room for every suffix, in bytes. */
export const MAX_BASE_NAME_BYTES = NAME_MAX_BYTES - NAME_SUFFIX_ROOM;

/**
 * Resolves `filename` inside `directory`, refusing absolute paths and `..`. Adds `.mp4` when missing.
 * Lengths are counted in bytes, with room for the `-N`, `.json` and temporary names made of it; at most
 * MAX_FOLDER_DEPTH folders deep (as deep as retention looks). Throws a RecorderError that says why.
 */
export function confineFilename(directory: string, filename: unknown): string {
  if (typeof filename !== "string" || !filename.trim())
    throw new RecorderError("msg.filename must be a non-empty string");
  const name = filename.trim();
  const refuse = (why: string) =>
    new RecorderError(
      `msg.filename "${name.slice(0, 80)}" refused: ${why}; it must be a relative path inside the recording directory`,
    );
  if (name.includes("\0")) throw refuse("it contains a NUL byte");
  if (name.length > 255) throw refuse("it is longer than 255 characters");
  if (path.isAbsolute(name) || /^[A-Za-z]:/.test(name) || name.startsWith("\\"))
    throw refuse("it is an absolute path");
  if (name.split(/[\\/]+/).some((s) => s === "..")) throw refuse("it contains ..");
  const root = path.resolve(directory);
  let full = path.resolve(root, name);
  if (!full.startsWith(root + path.sep)) throw refuse("it leaves the directory");
  if (path.extname(full).toLowerCase() !== ".mp4") full += ".mp4";
  const parts = path.relative(root, full).split(path.sep);
  if (parts.length - 1 > MAX_FOLDER_DEPTH)
    throw refuse(`it is ${parts.length - 1} folders deep, more than ${MAX_FOLDER_DEPTH}`);
  for (const part of parts.slice(0, -1)) {
    const bytes = Buffer.byteLength(part);
    if (bytes > NAME_MAX_BYTES)
      throw refuse(`its folder name "${part.slice(0, 40)}" is ${bytes} bytes, more than ${NAME_MAX_BYTES}`);
  }
  const baseBytes = Buffer.byteLength(parts[parts.length - 1].replace(/\.mp4$/i, ""));
  if (baseBytes > MAX_BASE_NAME_BYTES)
    throw refuse(
      `its file name is ${baseBytes} bytes (in UTF-8), more than the ${MAX_BASE_NAME_BYTES} that leave room for -N, .json and a temporary name within the file system's ${NAME_MAX_BYTES}`,
    );
  const pathBytes = Buffer.byteLength(full.replace(/\.mp4$/i, "")) + NAME_SUFFIX_ROOM;
  if (pathBytes > PATH_MAX_BYTES)
    throw refuse(`the whole path would be ${pathBytes} bytes, more than ${PATH_MAX_BYTES}`);
  return full;
}

/** Creates the directory if needed and checks it is writable; throws a RecorderError with the reason. */
export function ensureWritableDirectory(dir: string): void {
  if (!dir) throw new RecorderError("no recording directory set");
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    if (!fs.statSync(dir).isDirectory()) throw new Error("not a directory");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new RecorderError(`recording directory "${dir}" is not writable: ${e.code ?? e.message}`);
  }
}

/**
 * True when anything is at `file`, a dangling symlink included (existsSync follows links). Any error but
 * "does not exist" (a name too long, no permission, a file where a folder should be) refuses the name.
 */
function taken(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT") return false;
    throw new RecorderError(`cannot record to "${path.basename(file).slice(0, 80)}": ${e.code ?? e.message}`);
  }
}

/** A name not yet taken by a video or its sidecar: `name.mp4`, `name-2.mp4`, ... up to MAX_NAME_SUFFIX. */
export function uniquePath(file: string): string {
  const base = file.replace(/\.mp4$/i, "");
  for (let i = 1; i <= MAX_NAME_SUFFIX; i++) {
    const candidate = i === 1 ? `${base}.mp4` : `${base}-${i}.mp4`;
    if (!taken(candidate) && !taken(sidecarOf(candidate))) return candidate;
  }
  throw new RecorderError(
    `cannot record to "${path.basename(base).slice(0, 80)}.mp4": it and ${MAX_NAME_SUFFIX - 1} numbered names are taken`,
  );
}

/** The nearest folder above `file` that exists (for the symlink check before creating folders); bounded. */
export function existingParent(file: string): string {
  let dir = path.dirname(file);
  for (let i = 0; i <= MAX_FOLDER_DEPTH + 64; i++) {
    try {
      fs.lstatSync(dir);
      return dir;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== "ENOENT" || path.dirname(dir) === dir)
        throw new RecorderError(
          `cannot record to "${path.basename(file).slice(0, 80)}": ${e.code ?? e.message}`,
        );
    }
    dir = path.dirname(dir);
  }
  throw new RecorderError(
    `cannot record to "${path.basename(file).slice(0, 80)}": no folder above it exists`,
  );
}

export function sidecarOf(file: string): string {
  return file.replace(/\.mp4$/i, "") + ".json";
}

/**
 * Before recording to a confined `msg.filename`: a symlinked folder inside the directory must not lead
 * outside it (checked before creating anything), then its folders are created. Throws a RecorderError.
 */
export function prepareRequestedFolder(directory: string, requested: string, filename: unknown): void {
  const existing = existingParent(requested);
  let root: string;
  let real: string;
  try {
    root = fs.realpathSync(directory);
    real = fs.realpathSync(existing);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new RecorderError(
      `msg.filename "${String(filename).slice(0, 80)}" refused: ${e.code ?? e.message}`,
    );
  }
  if (real !== root && !real.startsWith(root + path.sep)) {
    throw new RecorderError(
      `msg.filename "${String(filename).slice(0, 80)}" refused: it leads outside the recording directory`,
    );
  }
  ensureWritableDirectory(path.dirname(requested));
}
