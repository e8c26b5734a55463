/** The lab's pid files: one per process it starts detached (flanneld, etcd, containerd). */
import { readFile } from "node:fs/promises";

/** The pid in a pid file, when that process is alive; null otherwise. */
export async function livePid(pidFile: string): Promise<number | null> {
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
  if (!(pid > 0)) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}
