/**
 * wireguard-go for tests: one device in a namespace, its socket in a folder of the test's own
 * (bound over /run/wireguard in the mount namespace `ip netns exec` makes), so that tests never
 * share /run/wireguard with each other or with the machine.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "../../lab/poll.js";
import { spawnIn } from "../../lab/netns.js";
import { UapiControl } from "../../src/backend/wireguard/uapi.js";

/** Runs `cmd` with `dir` as /run/wireguard (inside `ip netns exec`). */
export const withSocketDir = (dir: string, cmd: readonly string[]): string[] => [
  "sh",
  "-c",
  'mount --bind "$0" /run/wireguard && exec "$@"',
  dir,
  ...cmd,
];

/** A running wireguard-go. */
export interface TestWireguardGo {
  readonly socketDir: string;
  readonly control: UapiControl;
  /** `wg` in the device's namespace, seeing its socket. */
  readonly wgCommand: readonly string[];
  stop(): Promise<void>;
}

/** Starts wireguard-go for `device` in `netns`; resolves once its socket answers. */
export async function startWireguardGo(netns: string, device: string): Promise<TestWireguardGo> {
  mkdirSync("/run/wireguard", { recursive: true });
  const socketDir = mkdtempSync(join(tmpdir(), "fts-wg-"));
  const [sh = "sh", ...rest] = withSocketDir(socketDir, ["wireguard-go", "-f", device]);
  const child = spawnIn(netns, sh, rest, {
    stdio: "ignore",
    env: { ...process.env, WG_PROCESS_FOREGROUND: "1", LOG_LEVEL: "error" },
  });
  const control = new UapiControl(device, socketDir);
  await waitFor(`wireguard-go's socket for ${device}`, async () =>
    control.get({ signal: AbortSignal.timeout(1_000) }).then(
      () => true,
      () => false,
    ),
  );
  return {
    socketDir,
    control,
    wgCommand: ["ip", "netns", "exec", netns, ...withSocketDir(socketDir, ["wg"])],
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await gone;
      }
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
