import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../errors.js";
import { loadKubeConfig } from "./kube_client.js";

test("loadKubeConfig() uses the in-cluster service account when neither URL nor kubeconfig is given", async () => {
  const root = await mkdtemp(join(tmpdir(), "flannel-ts-sa-"));
  try {
    const sa = join(root, "var/run/secrets/kubernetes.io/serviceaccount");
    await mkdir(sa, { recursive: true });
    await writeFile(join(sa, "token"), "sa-token");
    await writeFile(join(sa, "ca.crt"), "");
    await writeFile(join(sa, "namespace"), "kube-flannel");
    const kc = loadKubeConfig(
      { apiUrl: "", kubeconfigFile: "" },
      { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" },
      root,
    );
    assert.equal(kc.getCurrentCluster()?.server, "https://10.96.0.1:443");
    assert.equal(kc.getCurrentCluster()?.caFile, join(sa, "ca.crt"));
    assert.deepEqual(kc.getCurrentUser()?.authProvider, {
      name: "tokenFile",
      config: { tokenFile: join(sa, "token") },
    });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("loadKubeConfig() with --kube-api-url alone talks to that server without credentials", () => {
  const kc = loadKubeConfig({ apiUrl: "http://127.0.0.1:8080", kubeconfigFile: "" }, {});
  assert.equal(kc.getCurrentCluster()?.server, "http://127.0.0.1:8080");
  const user = kc.getCurrentUser();
  assert.equal(user?.token, undefined);
  assert.equal(user?.authProvider, undefined);
});

test("loadKubeConfig() with --kubeconfig-file and --kube-api-url: the URL overrides the file's server", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-kc-"));
  try {
    const file = join(dir, "kubeconfig");
    await writeFile(
      file,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://old:6443" } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    const kc = loadKubeConfig({ apiUrl: "https://new:6443", kubeconfigFile: file }, {});
    assert.equal(kc.getCurrentCluster()?.server, "https://new:6443");
    assert.equal(kc.getCurrentUser()?.token, "t");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loadKubeConfig() outside a pod, with no URL and no kubeconfig, says what to pass", () => {
  assert.throws(
    () => loadKubeConfig({ apiUrl: "", kubeconfigFile: "" }, {}),
    (err: unknown) =>
      err instanceof ConfigError && /pass --kube-api-url or --kubeconfig-file/.test(err.message),
  );
});
