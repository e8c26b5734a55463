/**
 * deploy/: the kube-flannel counterpart. Rendered with the real `kubectl kustomize`, each object
 * validated against the Kubernetes schemas (kubernetes-models), the DaemonSet checked against
 * what flanneld and the CNI install step read, and the ClusterRole checked against the calls
 * three flanneld hosts really make to the API double, which enforces it.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { loadAll } from "js-yaml";
import { ConfigMap, Namespace, ServiceAccount } from "kubernetes-models/v1";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { ClusterRole, ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { parseFlanneldFlags } from "../../src/cli/flanneld_flags.js";
import { FLANNEL_CONFLIST } from "../../src/cni/install.js";
import { FLANNEL_SERVICE_ACCOUNT, REPO_ROOT, labKube, listPods } from "../../lab/cluster.js";
import { pingAll } from "../../lab/lab_check.js";
import type { PolicyRule } from "../../lab/kubeapi/rbac.js";
import { run } from "../../src/util/exec.js";
import { withLab } from "../helpers/lab_fixture.js";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

interface Container {
  name: string;
  command: string[];
  args: string[];
  env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  volumeMounts: { name: string; mountPath: string }[];
  securityContext?: { capabilities?: { add?: string[] } };
  livenessProbe?: { httpGet: { path: string; port: number } };
  readinessProbe?: { httpGet: { path: string; port: number } };
}

interface DaemonSetJson {
  spec: {
    template: {
      spec: {
        hostNetwork: boolean;
        serviceAccountName: string;
        initContainers: Container[];
        containers: Container[];
        volumes: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[];
      };
    };
  };
}

async function render(variant = "deploy"): Promise<K8sObject[]> {
  return loadAll(await run("kubectl", ["kustomize", join(REPO_ROOT, variant)])) as K8sObject[];
}

const find = (objects: K8sObject[], kind: string) => {
  const found = objects.find((o) => o.kind === kind);
  assert.ok(found, `the manifests hold a ${kind}`);
  return found;
};

test("kubectl kustomize deploy/ renders kube-flannel's objects, each valid against the Kubernetes schemas", async () => {
  const objects = await render();
  assert.deepEqual(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    "ClusterRole/flannel",
    "ClusterRoleBinding/flannel",
    "ConfigMap/kube-flannel-cfg",
    "DaemonSet/kube-flannel-ds",
    "Namespace/kube-flannel",
    "ServiceAccount/flannel",
  ]);
  const models: Record<string, (o: K8sObject) => { validate(): void }> = {
    Namespace: (o) => new Namespace(o as never),
    ServiceAccount: (o) => new ServiceAccount(o as never),
    ClusterRole: (o) => new ClusterRole(o as never),
    ClusterRoleBinding: (o) => new ClusterRoleBinding(o as never),
    ConfigMap: (o) => new ConfigMap(o as never),
    DaemonSet: (o) => new DaemonSet(o as never),
  };
  for (const o of objects) {
    const model = models[o.kind];
    assert.ok(model, `a schema for ${o.kind}`);
    assert.doesNotThrow(() => {
      model(o).validate();
    }, `${o.kind}/${o.metadata.name} is valid`);
  }
  // The validation is not a rubber stamp: a broken DaemonSet fails it.
  const broken = structuredClone(find(objects, "DaemonSet")) as unknown as DaemonSetJson;
  (broken.spec.template.spec.containers[0] as unknown as { name: number }).name = 7;
  assert.throws(() => {
    new DaemonSet(broken as never).validate();
  });
});

test("the ClusterRole is flannel's, rule for rule, bound to the DaemonSet's ServiceAccount", async () => {
  const objects = await render();
  const role = find(objects, "ClusterRole") as unknown as { rules: PolicyRule[] };
  assert.deepEqual(role.rules, [
    { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
    { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
    { apiGroups: [""], resources: ["nodes/status"], verbs: ["patch"] },
  ]);
  const binding = find(objects, "ClusterRoleBinding") as unknown as {
    subjects: { name: string; namespace: string }[];
  };
  const ds = find(objects, "DaemonSet") as unknown as DaemonSetJson & K8sObject;
  assert.deepEqual(
    binding.subjects.map((s) => `${s.namespace}/${s.name}`),
    [`${ds.metadata.namespace ?? ""}/${ds.spec.template.spec.serviceAccountName}`],
  );
});

test("the DaemonSet's command, env and mounts match what flanneld and the CNI install step read", async () => {
  const objects = await render();
  const ds = (find(objects, "DaemonSet") as unknown as DaemonSetJson).spec.template.spec;
  const config = find(objects, "ConfigMap") as unknown as {
    metadata: { name: string };
    data: Record<string, string>;
  };
  assert.equal(ds.hostNetwork, true);
  const flanneld = ds.containers.find((c) => c.name === "kube-flannel");
  assert.ok(flanneld);
  // The image puts the repository at /opt/flannel-ts (deploy/Dockerfile).
  const dockerfile = await readFile(join(REPO_ROOT, "deploy/Dockerfile"), "utf8");
  assert.match(dockerfile, /^WORKDIR \/opt\/flannel-ts$/m);
  assert.match(dockerfile, /^COPY bin \.\/bin$/m);
  assert.deepEqual(flanneld.command, ["/opt/flannel-ts/bin/flanneld"]);
  const parsed = parseFlanneldFlags(flanneld.args, {});
  assert.equal(parsed.kind, "run", "flanneld accepts the DaemonSet's arguments");
  if (parsed.kind !== "run") return;
  const options = parsed.options;
  assert.deepEqual(
    [options.kubeSubnetMgr, options.ipMasq, options.healthzPort],
    [true, true, 8081],
  );
  assert.deepEqual(
    [flanneld.livenessProbe?.httpGet.path, flanneld.livenessProbe?.httpGet.port],
    ["/healthz", options.healthzPort],
  );
  assert.deepEqual(
    [flanneld.readinessProbe?.httpGet.path, flanneld.readinessProbe?.httpGet.port],
    ["/readyz", options.healthzPort],
  );
  assert.deepEqual(flanneld.securityContext?.capabilities?.add, ["NET_ADMIN", "NET_RAW"]);
  const env = Object.fromEntries(
    (flanneld.env ?? []).map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
  );
  assert.deepEqual(
    [env.POD_NAME, env.POD_NAMESPACE, env.NODE_NAME],
    ["metadata.name", "metadata.namespace", "spec.nodeName"],
  );
  const mounts = new Map(
    flanneld.volumeMounts.map((m) => [m.mountPath.replace(/\/$/, ""), m.name]),
  );
  const volume = (name: string | undefined) => ds.volumes.find((v) => v.name === name);
  // subnet.env goes where the host's CNI plugin reads it; net-conf.json comes from the ConfigMap.
  assert.equal(volume(mounts.get(dirname(options.subnetFile)))?.hostPath?.path, "/run/flannel");
  assert.equal(
    volume(mounts.get(dirname(options.netConfigPath)))?.configMap?.name,
    config.metadata.name,
  );
  assert.ok(
    config.data["net-conf.json"] !== undefined && JSON.parse(config.data["net-conf.json"]) !== null,
  );
  assert.equal(volume(mounts.get("/run/xtables.lock"))?.hostPath?.path, "/run/xtables.lock");
  // wireguard-go and the udp backend open the host's TUN device.
  assert.equal(volume(mounts.get("/dev/net/tun"))?.hostPath?.path, "/dev/net/tun");

  // The install step: flannelctl's own arguments, run for real into a scratch root.
  const install = ds.initContainers.find((c) => c.name === "install-cni-plugin");
  assert.ok(install);
  assert.deepEqual(install.command, ["/opt/flannel-ts/bin/flannelctl"]);
  const root = await mkdtemp(join(tmpdir(), "flannel-ts-install-"));
  try {
    const args = install.args.map((a) => a.replace(/=\//, `=${root}/`));
    await run(join(REPO_ROOT, "bin/flannelctl"), args);
    for (const m of install.volumeMounts) {
      assert.ok(
        volume(m.name)?.hostPath?.path === m.mountPath,
        `${m.mountPath} is the host's own folder`,
      );
    }
    await stat(join(root, "opt/cni/bin/flannel"));
    await stat(join(root, "etc/cni/net.d/10-flannel.conflist"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  // The conflist the ConfigMap ships is the one flannelctl cni install writes.
  assert.deepEqual(JSON.parse(config.data["cni-conf.json"] ?? ""), FLANNEL_CONFLIST);
  const copy = ds.initContainers.find((c) => c.name === "install-cni");
  assert.deepEqual(copy?.args, [
    "-f",
    "/etc/kube-flannel/cni-conf.json",
    "/etc/cni/net.d/10-flannel.conflist",
  ]);
});

/**
 * Three flanneld hosts run as the ServiceAccount of a rendered variant, with its DaemonSet's
 * flags: every call they make is allowed, and every rule of its ClusterRole is used.
 */
async function assertRoleExactlyUsed(objects: K8sObject[], tag: string): Promise<void> {
  const role = find(objects, "ClusterRole") as unknown as { rules: PolicyRule[] };
  const ds = (find(objects, "DaemonSet") as unknown as DaemonSetJson).spec.template.spec;
  // The lab sets the API, health port and node flags itself; the rest are the DaemonSet's.
  const args = (ds.containers[0]?.args ?? []).filter(
    (a) => a !== "--kube-subnet-mgr" && !a.startsWith("--healthz-port"),
  );
  await withLab(
    tag,
    // h1 finds its node by NODE_NAME, h2 and h3 by their pod, as a DaemonSet pod without NODE_NAME does.
    {
      nodes: 3,
      pods: 1,
      backend: "vxlan",
      datastore: "kube",
      flanneldArgs: args,
      kubeServiceAccount: { rules: role.rules, podIdentity: ["h2", "h3"] },
    },
    async (lab) => {
      const results = await pingAll(await listPods(lab));
      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
      );
      const calls = (await labKube(lab).audit()).filter((r) => r.user === FLANNEL_SERVICE_ACCOUNT);
      assert.deepEqual(
        calls.filter((c) => c.code >= 400),
        [],
        "no call was refused",
      );
      const used = new Set(
        calls.map(
          (c) =>
            `${c.verb} ${c.subresource === "" ? c.resource : `${c.resource}/${c.subresource}`}`,
        ),
      );
      const granted = new Set(
        role.rules.flatMap((r) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${res}`))),
      );
      assert.deepEqual([...used].sort(), [...granted].sort());
    },
  );
}

test("three flanneld hosts as the manifest's ServiceAccount: every call is allowed, and every rule is used", async () => {
  await assertRoleExactlyUsed(await render(), "ftrb");
});

test("deploy/network-policy: flanneld gets --network-policy and the ClusterRole exactly the reads it makes", async () => {
  const objects = await render("deploy/network-policy");
  const role = find(objects, "ClusterRole") as unknown as { rules: PolicyRule[] };
  new ClusterRole(role as never).validate();
  assert.deepEqual(role.rules.slice(3), [
    { apiGroups: [""], resources: ["pods", "namespaces"], verbs: ["list", "watch"] },
    { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: ["list", "watch"] },
  ]);
  const ds = find(objects, "DaemonSet") as unknown as DaemonSetJson;
  new DaemonSet(ds as never).validate();
  const parsed = parseFlanneldFlags(ds.spec.template.spec.containers[0]?.args ?? [], {});
  assert.ok(parsed.kind === "run" && parsed.options.networkPolicy && parsed.options.ipMasq);
  // Without the variant, nothing of it: no flag, no extra rule.
  const plain = await render();
  const plainArgs = (find(plain, "DaemonSet") as unknown as DaemonSetJson).spec.template.spec
    .containers[0]?.args;
  assert.ok(!(plainArgs ?? []).includes("--network-policy"));
  await assertRoleExactlyUsed(objects, "ftrp");
});
