/**
 * The implementations flanneld runs with: the etcd or Kubernetes subnet manager (each loaded
 * only in its mode), the rtnetlink socket, the iptables or nftables traffic manager, and glibc's
 * heap trim.
 */
import { readPreviousSubnets } from "../config/subnet_env.js";
import type { FlanneldDeps } from "../daemon/run_flanneld.js";
import type { Logger } from "../log/logger.js";
import { kernelSockets } from "../native/index.js";
import { RtNetlink } from "../net/rtnetlink.js";
import { IPTablesManager } from "../trafficmngr/iptables.js";
import { NFTablesManager } from "../trafficmngr/nftables.js";
import { etcdConfigOf } from "./etcd_flags.js";
import type { FlanneldOptions } from "../daemon/run_flanneld.js";

/** Chooses flanneld's implementations from its flags. */
export function flanneldDeps(
  options: FlanneldOptions,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
): FlanneldDeps {
  let nodeName: string | null = null;
  const kube = { apiUrl: options.kubeApiUrl, kubeconfigFile: options.kubeconfigFile };
  return {
    async newSubnetManager(opts) {
      if (options.kubeSubnetMgr) {
        // Loaded only in Kubernetes mode: etcd hosts never pay for the Kubernetes client.
        const { KubeSubnetManager } = await import("../subnet/kube/kube_manager.js");
        const manager = await KubeSubnetManager.connect(
          {
            apiUrl: options.kubeApiUrl,
            kubeconfigFile: options.kubeconfigFile,
            annotationPrefix: options.kubeAnnotationPrefix,
            netConfigPath: options.netConfigPath,
            setNodeNetworkUnavailable: options.setNodeNetworkUnavailable,
          },
          env,
          log,
          opts,
        );
        nodeName = manager.nodeName;
        return manager;
      }
      // Loaded only in etcd mode: Kubernetes hosts never load the etcd client.
      const previous = readPreviousSubnets(options.subnetFile);
      const { LocalManager } = await import("../subnet/etcd/local_manager.js");
      return LocalManager.connect(etcdConfigOf(options), {
        log,
        previous,
        renewMarginMs: options.subnetLeaseRenewMargin * 60_000,
      });
    },
    ...(options.kubeSubnetMgr && options.networkPolicy
      ? {
          async newPolicyEnforcer(families) {
            // Loaded only with --network-policy: without it nothing of it runs or is watched.
            const [{ newNetworkPolicyEnforcer }, { loadKubeConfig }] = await Promise.all([
              import("../netpol/network_policy.js"),
              import("../subnet/kube/kube_client.js"),
            ]);
            if (nodeName === null) throw new TypeError("newPolicyEnforcer before newSubnetManager");
            return newNetworkPolicyEnforcer(loadKubeConfig(kube, env), { nodeName, families }, log);
          },
        }
      : {}),
    newNetlink: () => new RtNetlink(),
    trimHeap: () => {
      kernelSockets().trimHeap();
    },
    newTrafficManager: (enableNFTables) =>
      enableNFTables ? new NFTablesManager() : new IPTablesManager(),
  };
}
