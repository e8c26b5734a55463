/**
 * One CNI ADD through a flannel plugin executable, as a container runtime calls it: run in the
 * host's namespace with flannel's cbr0 config (this host's subnet.env and folders), a PATH with
 * no Node.js, and Debian's delegate plugins.
 */
import { join } from "node:path";
import { runCapture } from "../../src/util/exec.js";
import type { RunResult } from "../../src/util/exec.js";

export function cniAdd(options: {
  readonly plugin: string;
  readonly hostNetns: string;
  readonly podNetns: string;
  readonly containerId: string;
  readonly subnetFile: string;
  /** Where the plugin and host-local keep their state. */
  readonly stateDir: string;
}): Promise<RunResult> {
  return runCapture("/usr/sbin/ip", ["netns", "exec", options.hostNetns, options.plugin], {
    input: JSON.stringify({
      cniVersion: "0.3.1",
      name: "cbr0",
      type: "flannel",
      subnetFile: options.subnetFile,
      dataDir: join(options.stateDir, "cni"),
      ipam: { dataDir: join(options.stateDir, "ipam") },
      delegate: { hairpinMode: true, isDefaultGateway: true },
    }),
    env: {
      PATH: "/usr/sbin:/sbin",
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: options.containerId,
      CNI_NETNS: `/var/run/netns/${options.podNetns}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/usr/lib/cni",
    },
  });
}
