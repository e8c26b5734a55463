/**
 * The kubelet's part in a lab with `--kube --network-policy`: each pod the lab wires gets a Pod
 * object (namespace, labels, node, its addresses in `status.podIPs`, and the container ports of
 * the Kubernetes NetworkPolicy e2e model, `serve-80-tcp` to `serve-81-sctp`), and a probe agent
 * (netpol_agent.py) listening on those ports inside the pod. The Pod object is deleted when the
 * pod goes.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../src/util/repo_root.js";
import { KubeAdmin } from "./kubeapi/admin_client.js";
import type { Json } from "./kubeapi/patch.js";
import type { Lab, LabPod, LabPodIdentity } from "./lab_model.js";
import { waitFor } from "./poll.js";

/** flanneld's flag that switches NetworkPolicy on. */
export const NETWORK_POLICY_FLAG = "--network-policy";

/** Whether the lab registers its pods: Kubernetes mode with flanneld enforcing NetworkPolicy. */
export function registersPods(lab: Lab): boolean {
  return lab.datastore === "kube" && lab.flanneldArgs.includes(NETWORK_POLICY_FLAG);
}

/** The ports every probe agent listens on, with the e2e model's port names. */
export const AGENT_PORTS: readonly {
  name: string;
  port: number;
  protocol: "TCP" | "UDP" | "SCTP";
}[] = [80, 81].flatMap((port) =>
  (["TCP", "UDP", "SCTP"] as const).map((protocol) => ({
    name: `serve-${port}-${protocol.toLowerCase()}`,
    port,
    protocol,
  })),
);

/** The agent's script. */
export const AGENT_SCRIPT = join(REPO_ROOT, "lab/netpol_agent.py");

/** The lab's Kubernetes API double, as an admin (Kubernetes mode). */
export function labKube(lab: Lab): KubeAdmin {
  return new KubeAdmin({ socketPath: lab.kubeApiSocket });
}

const podPath = (p: { namespace: string; name?: string }) =>
  `/api/v1/namespaces/${encodeURIComponent(p.namespace)}/pods${p.name === undefined ? "" : `/${encodeURIComponent(p.name)}`}`;

/** Creates the namespace when it does not exist yet. */
export async function ensureNamespace(lab: Lab, name: string): Promise<void> {
  await labKube(lab)
    .createNamespace(name, {})
    .catch((err: unknown) => {
      if (!String(err).includes("HTTP 409")) throw err;
    });
}

/** Registers the Pod object of a wired pod, as the kubelet reports a running pod. */
export async function registerPod(lab: Lab, pod: LabPod, identity: LabPodIdentity): Promise<void> {
  await ensureNamespace(lab, identity.namespace);
  const ips = [pod.ip, ...(pod.ip6 === undefined ? [] : [pod.ip6])];
  const object: Json = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: identity.name,
      namespace: identity.namespace,
      labels: { ...identity.labels },
    },
    spec: {
      nodeName: pod.node,
      containers: [
        {
          name: "agent",
          image: "flannel-ts-lab/netpol-agent",
          ports: AGENT_PORTS.map((p) => ({
            name: p.name,
            containerPort: p.port,
            protocol: p.protocol,
          })),
        },
      ],
    },
    status: { phase: "Running", podIP: pod.ip, podIPs: ips.map((ip) => ({ ip })) },
  };
  await labKube(lab).create(podPath({ namespace: identity.namespace }), object);
}

/** Deletes a pod's Pod object; one already gone is fine. */
export async function unregisterPod(lab: Lab, identity: LabPodIdentity): Promise<void> {
  await labKube(lab)
    .delete(podPath(identity))
    .catch((err: unknown) => {
      if (!String(err).includes("HTTP 404")) throw err;
    });
}

/** Sets (or with null removes) labels on a Pod, as `kubectl label` does. */
export async function labelPod(
  lab: Lab,
  identity: Pick<LabPodIdentity, "namespace" | "name">,
  labels: Readonly<Record<string, string | null>>,
): Promise<void> {
  await labKube(lab).mergePatch(podPath(identity), { metadata: { labels: { ...labels } } });
}

/** Starts the probe agent in a pod and waits until it listens. */
export async function startProbeAgent(
  lab: Lab,
  pod: Pick<LabPod, "netns" | "node">,
): Promise<void> {
  const log = join(lab.dir, pod.node, `${pod.netns}-agent.log`);
  const fd = openSync(log, "w");
  try {
    const child = spawn(
      "ip",
      ["netns", "exec", pod.netns, "/usr/bin/python3", AGENT_SCRIPT, "serve"],
      {
        detached: true,
        stdio: ["ignore", fd, fd],
      },
    );
    child.unref();
  } finally {
    closeSync(fd);
  }
  await waitFor(
    `the probe agent in ${pod.netns} to listen (log: ${log})`,
    async () => (await readFile(log, "utf8").catch(() => "")).includes("serving"),
    { timeoutMs: 10_000, intervalMs: 20 },
  );
}
