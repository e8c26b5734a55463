/**
 * wireguard-go for tests: one device in a namespace, its socket in a folder of the test's own
 * (bound over /run/wireguard in the mount namespace `ip netns exec` makes), so that tests never
 * share /run/wireguard with each other or with the machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Lab } from "../../lab/cluster.js";
import { waitFor } from "../../lab/poll.js";
import { ip, run, spawnIn, withOwnWireguardDir } from "../../lab/netns.js";
import { UapiControl } from "../../src/backend/wireguard/uapi.js";
import { WgToolControl } from "../../src/backend/wireguard/wg_tool.js";
import { buildBareHost } from "./hand_host.js";
import type { BareHost } from "./hand_host.js";

/** A running wireguard-go. */
export interface TestWireguardGo {
  readonly socketDir: string;
  readonly control: UapiControl;
  /** The same device through `wg` (flanneld's path for a kernel device). */
  readonly wgTool: WgToolControl;
  /** `wg` in the device's namespace, seeing its socket. */
  readonly wgCommand: readonly string[];
  stop(): Promise<void>;
}

/** Starts wireguard-go for `device` in `netns`; resolves once its socket answers. */
export async function startWireguardGo(netns: string, device: string): Promise<TestWireguardGo> {
  const socketDir = mkdtempSync(join(tmpdir(), "fts-wg-"));
  const [sh = "sh", ...rest] = withOwnWireguardDir(socketDir, ["wireguard-go", "-f", device]);
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
  const wgCommand = ["ip", "netns", "exec", netns, ...withOwnWireguardDir(socketDir, ["wg"])];
  return {
    socketDir,
    control,
    wgTool: new WgToolControl(device, wgCommand),
    wgCommand,
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

/** A lab-bridge host whose wireguard-go is configured by hand with `wg`, as flannel's device.go does. */
export interface HandWireguardHost {
  readonly host: BareHost;
  readonly device: TestWireguardGo;
  readonly publicKey: string;
  /** Its lease, in flannel's bytes. */
  readonly leaseJSON: string;
  /** Adds peers with `wg`, as flannel adds them from leases: key, endpoint, AllowedIPs, no PSK. */
  addPeers(
    peers: readonly { subnet: string; publicIP: string; publicKey: string }[],
  ): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Builds host `h<index>` (buildBareHost) with flannel-wg as flannel configures it: a fresh key,
 * port 51820, `<subnet>/32`, MTU 1420, up, and the Network's link-scope route through it.
 */
export async function buildHandWireguardHost(
  lab: Lab,
  index: number,
  network = "10.244.0.0/16",
): Promise<HandWireguardHost> {
  const host = await buildBareHost(lab, index);
  const device = await startWireguardGo(host.netns, "flannel-wg");
  const control = device.wgTool;
  const opts = () => ({ signal: AbortSignal.timeout(10_000) });
  const privateKey = (await run("wg", ["genkey"])).trim();
  const publicKey = (await run("wg", ["pubkey"], { input: privateKey })).trim();
  await control.apply({ privateKey, listenPort: 51_820, upsert: [], remove: [] }, opts());
  await ip(["addr", "add", `${host.subnet}/32`, "dev", "flannel-wg"], host.netns);
  await ip(["link", "set", "flannel-wg", "mtu", "1420", "up"], host.netns);
  await ip(["route", "add", network, "dev", "flannel-wg", "scope", "link"], host.netns);
  return {
    host,
    device,
    publicKey,
    leaseJSON: `{"PublicIP":"${host.publicIP}","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${publicKey}"}}`,
    async addPeers(peers) {
      const upsert = peers.map((p) => ({
        publicKey: p.publicKey,
        presharedKey: null,
        endpoint: `${p.publicIP}:51820`,
        allowedIPs: [`${p.subnet}/24`],
        keepaliveSeconds: 0,
      }));
      await control.apply({ upsert, remove: [] }, opts());
    },
    stop: () => device.stop(),
  };
}
