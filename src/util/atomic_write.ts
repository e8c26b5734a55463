/**
 * Writes a file so that readers see either the old or the new content, never a part: a temporary
 * file in the same folder, fsync, rename over the target, fsync of the folder (what flannel gets
 * from google/renameio).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Options of writeFileAtomic. */
export interface AtomicWriteOptions {
  /** Mode of the file, applied regardless of the umask. */
  readonly mode: number;
  /** Mode of the folders created on the way. */
  readonly dirMode?: number;
}

/** Atomically replaces `path` with `data`, creating its folder when missing. */
export async function writeFileAtomic(
  path: string,
  data: string,
  options: AtomicWriteOptions,
): Promise<void> {
  const dir = dirname(path);
  await makeFolder(dir, options.dirMode ?? 0o755);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const file = await open(temp, "wx", options.mode);
    try {
      await file.chmod(options.mode);
      await file.writeFile(data);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const folder = await open(dir, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/**
 * Creates `dir` and its missing parents, one level at a time. Node's `mkdir(…, { recursive })`
 * never returns where the kernel answers ENOENT for a folder whose parent exists (under /proc or
 * /sys): it retries in its worker threads forever. Here each level is tried once, so such a path
 * fails at once with the errno and the folder that could not be made.
 */
export async function makeFolder(dir: string, mode: number): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    const found = await stat(at).then(
      (s) => s,
      (err: unknown) => {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      },
    );
    if (found !== null) {
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
      await mkdir(folder, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}
