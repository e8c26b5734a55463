/**
 * The alloc backend (flannel's pkg/backend/alloc): leases a subnet and programs nothing, for
 * setups where something else routes the pod network. It writes BackendType "alloc" in its lease
 * (flannel writes none); flannel hosts ignore leases whose type is not their own either way.
 */
import { ConfigError } from "../../errors.js";
import type { NetworkConfig } from "../../config/network_config.js";
import type { CallOptions } from "../../util/call_options.js";
import type { Backend, BackendDeps, Network, PlaneInspector } from "../backend.js";

/** What flannelctl doctor sees of alloc's data plane: no device, no entry. */
export const inspectAlloc: PlaneInspector = (_config, extIface) => ({
  devices: [],
  podMtu: extIface.mtu,
  serves: (lease) => lease.attrs.backendType === "alloc",
  entries: () => Promise.resolve({ wanted: new Map(), owned: new Map(), skipped: [] }),
});

/** Makes the alloc backend. */
export function createAllocBackend(deps: BackendDeps): Backend {
  return {
    async registerNetwork(config: NetworkConfig, opts: CallOptions): Promise<Network> {
      const { extIface, subnetManager } = deps;
      if (config.enableIPv4 && extIface.extAddr === null) {
        throw new ConfigError(
          `Cannot register network: interface "${extIface.name}" has no IPv4 address to advertise`,
        );
      }
      const lease = await subnetManager.acquireLease(
        {
          publicIP: extIface.extAddr ?? "0.0.0.0",
          publicIPv6: config.enableIPv6 ? extIface.extV6Addr : null,
          backendType: "alloc",
        },
        opts,
      );
      return {
        lease,
        mtu: extIface.mtu,
        async run({ signal }: CallOptions) {
          if (signal.aborted) return;
          await new Promise<void>((resolve) => {
            signal.addEventListener(
              "abort",
              () => {
                resolve();
              },
              { once: true },
            );
          });
        },
      };
    },
  };
}
