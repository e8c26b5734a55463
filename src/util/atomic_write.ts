/**
 * Writes a file so that readers see either the old or the new content, never a part: a temporary
 * file in the same folder, fsync, rename over the target, fsync of the folder (what flannel gets
 * from google/renameio).
 *
 * Synchronous: the files are small and written rarely (subnet.env, the CNI plugin's saved
 * delegate config, a conflist, a key), and the CNI plugin, one process per call, then never
 * starts libuv's thread pool for them. The temporary file's name needs to be unique, not secret
 * (it is created with O_EXCL, in the target's folder), so it does not load node:crypto, which
 * cost the plugin about 3 ms a call (docs/cni.md).
 */
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/** Options of writeFileAtomic. */
export interface AtomicWriteOptions {
  /** Mode of the file, applied regardless of the umask. */
  readonly mode: number;
  /** Mode of the folders created on the way. */
  readonly dirMode?: number;
}

/**
 * A temporary name beside `path` that no other writer uses at the same time (the process and a
 * random number), hidden by its dot; what was left of a crash is recognisable by its `.tmp`.
 */
export function temporaryPathFor(path: string): string {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  return join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
}

/** Atomically replaces `path` with `data`, creating its folder when missing. */
export function writeFileAtomic(path: string, data: string, options: AtomicWriteOptions): void {
  const dir = dirname(path);
  makeFolder(dir, options.dirMode ?? 0o755);
  const temp = temporaryPathFor(path);
  try {
    const fd = openSync(temp, "wx", options.mode);
    try {
      fchmodSync(fd, options.mode);
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  const folder = openSync(dir, "r");
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

/**
 * Creates `dir` and its missing parents, one level at a time. Node's `mkdir(…, { recursive })`
 * never returns where the kernel answers ENOENT for a folder whose parent exists (under /proc or
 * /sys): it retries forever. Here each level is tried once, so such a path fails at once with the
 * errno and the folder that could not be made.
 */
export function makeFolder(dir: string, mode: number): void {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    const found = statSync(at, { throwIfNoEntry: false });
    if (found !== undefined) {
      if (!found.isDirectory())
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${at}'`), {
          code: "ENOTDIR",
          path: at,
        });
      break;
    }
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const folder of missing) {
    try {
      mkdirSync(folder, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}
