/**
 * What the add and remove commands last did, per remote lease, kept in a file beside subnet.env
 * (`extension-hooks.json`), so that a restarted flanneld runs the remove command of a lease that
 * vanished while it was down: the operator's state converges, where flannel forgets. doctor
 * reads the same file.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

export const HOOK_STATE_FILE = "extension-hooks.json";

/** One command's last run for one lease. */
export interface HookRunSeen {
  readonly hook: "SubnetAddCommand" | "SubnetRemoveCommand";
  readonly ok: boolean;
  /** How it ended ("exit 0", "killed after the 60 s timeout"). */
  readonly end: string;
  /** When it ended (ms since the epoch) and how long it took. */
  readonly at: number;
  readonly ms: number;
  /** The end of its output. */
  readonly output: string;
}

/** A remote lease as the add command was given it, with its last runs. */
export interface LeaseHooks {
  readonly subnet: string;
  readonly publicIP: string;
  /** The BackendData string the commands got on stdin. */
  readonly backendData: string;
  /** Whether an add command ever succeeded for it (since it was last added). */
  readonly added: boolean;
  readonly last: readonly HookRunSeen[];
}

/** The leases the add command was run for, by lease key. */
export type HookState = Map<string, LeaseHooks>;

const TAIL = 500;

/** A run as kept: its output's last 500 characters. */
export function seen(run: Omit<HookRunSeen, "output"> & { output: string }): HookRunSeen {
  return { ...run, output: run.output.slice(-TAIL) };
}

/** The kept state; empty when there is none or it cannot be read (said by `onUnreadable`). */
export async function readHookState(
  dir: string,
  onUnreadable: (reason: string) => void = () => undefined,
): Promise<HookState> {
  let text: string;
  try {
    text = await readFile(join(dir, HOOK_STATE_FILE), "utf8");
  } catch {
    return new Map();
  }
  try {
    const parsed = JSON.parse(text) as { leases?: Record<string, LeaseHooks> };
    return new Map(Object.entries(parsed.leases ?? {}));
  } catch (err) {
    onUnreadable((err as Error).message);
    return new Map();
  }
}

/** Writes the state whole (a temporary file, then a rename). */
export async function writeHookState(dir: string, state: HookState): Promise<void> {
  const path = join(dir, HOOK_STATE_FILE);
  const text = `${JSON.stringify({ leases: Object.fromEntries(state) }, null, 1)}\n`;
  await writeFile(`${path}.tmp`, text, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
