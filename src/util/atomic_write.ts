/**
 * Writes a file so that readers see either the old or the new content, never a part: a temporary
 * file in the same folder, fsync, rename over the target, fsync of the folder (what flannel gets
 * from google/renameio).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
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
  await mkdir(dir, { recursive: true, mode: options.dirMode ?? 0o755 });
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
