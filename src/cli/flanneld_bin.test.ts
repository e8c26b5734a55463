/**
 * bin/flanneld as the build leaves it: started from its start-up snapshot
 * (dist/snapshot/flanneld.blob; flanneld-kube.blob in Kubernetes mode), found by doctor, ended
 * by SIGTERM; from its bundle where there
 * is no snapshot; and a clear error where there is neither. And the build's snapshot helpers
 * (scripts/build_helpers.mjs): Node's built-in modules that a snapshot cannot hold work after the
 * snapshot is read, and without the helpers' stand-ins the same script cannot be snapshotted.
 * No network is used but loopback: flanneld is given an etcd on a closed loopback port.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "node:test";
import { findFlanneld } from "../doctor/flanneld_process.js";
import { runCapture } from "../util/exec.js";

const REPO = resolve(import.meta.dirname, "../../..");
const BIN = join(REPO, "bin/flanneld");
const BLOB = join(REPO, "dist/snapshot/flanneld.blob");
const KUBE_BLOB = join(REPO, "dist/snapshot/flanneld-kube.blob");

interface SnapshotHelpers {
  readonly bundleSnapshotEntry: (entry: string, outfile: string, at: string) => Promise<void>;
  readonly bundleCommonJs: (entry: string, outfile: string) => Promise<void>;
  readonly buildSnapshot: (script: string, blob: string) => string;
}
const helpers = async (): Promise<SnapshotHelpers> =>
  (await import(pathToFileURL(join(REPO, "scripts/build_helpers.mjs")).href)) as SnapshotHelpers;

/** Resolves once `pattern` appears in what the child writes (stdout and stderr). */
function outputMatching(
  child: ReturnType<typeof spawn>,
  pattern: RegExp,
): { seen: Promise<void>; text: () => string } {
  let text = "";
  const seen = new Promise<void>((resolvePromise, reject) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8");
      if (pattern.test(text)) resolvePromise();
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`flanneld exited (${code}): ${text}`)));
  });
  return { seen, text: () => text };
}

/** The --snapshot-blob a running process was started with, from its command line. */
async function blobOf(pid: number | undefined): Promise<string> {
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
  const blob = cmdline.find((arg) => arg.startsWith("--snapshot-blob="));
  return resolve(blob?.slice("--snapshot-blob=".length) ?? "");
}

test("bin/flanneld runs from the build's snapshot; doctor finds it and SIGTERM ends it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-bin-"));
  const args = [
    "--etcd-endpoints=http://127.0.0.1:9",
    "--iface=lo",
    `--subnet-file=${join(dir, "subnet.env")}`,
  ];
  const child = spawn(BIN, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  try {
    const output = outputMatching(child, /Cannot read network config yet/);
    await output.seen;
    assert.equal(await blobOf(child.pid), BLOB);
    const found = (await findFlanneld()).find((p) => p.pid === child.pid);
    assert.deepEqual(found?.args, args);
    child.kill("SIGTERM");
    assert.equal(await exited, 0, output.text());
  } finally {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
});

test("Kubernetes mode starts from flanneld-kube.blob; etcd mode's snapshot has no Kubernetes client", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-bin-"));
  const netConf = join(dir, "net-conf.json");
  await writeFile(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');
  const kubeArgs = [
    "--kube-api-url=http://127.0.0.1:9",
    "--iface=lo",
    `--net-config-path=${netConf}`,
  ];
  const env = { ...process.env, NODE_OPTIONS: "", NODE_NAME: "bin-test-node" };
  try {
    // By the flag, and by its FLANNELD_* variable: each waits for the (closed) API server.
    for (const [args, extra] of [
      [["--kube-subnet-mgr", ...kubeArgs], {}],
      [kubeArgs, { FLANNELD_KUBE_SUBNET_MGR: "true" }],
    ] as const) {
      const child = spawn(BIN, args, {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...env, ...extra },
      });
      const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
      try {
        const output = outputMatching(child, /Cannot get this node from the Kubernetes API yet/);
        await output.seen;
        assert.equal(await blobOf(child.pid), KUBE_BLOB, output.text());
        child.kill("SIGTERM");
        assert.equal(await exited, 0, output.text());
      } finally {
        child.kill("SIGKILL");
      }
    }
    // The client's classes are in the Kubernetes snapshot's script and not in etcd mode's.
    const script = (name: string) => readFile(join(REPO, "dist/snapshot", name), "utf8");
    assert.match(await script("flanneld-kube.cjs"), /CoreV1Api/);
    assert.doesNotMatch(await script("flanneld.cjs"), /CoreV1Api/);
    // Kubernetes mode forced onto etcd mode's snapshot fails, saying why and what to do.
    const [node, , ...flags] = (await readFile(join(REPO, "dist/snapshot/flanneld.node"), "utf8"))
      .trim()
      .split(" ");
    const forced = await runCapture(
      node!,
      [...flags, `--snapshot-blob=${BLOB}`, BIN, "--kube-subnet-mgr", ...kubeArgs],
      { env },
    );
    assert.equal(forced.code, 1, forced.stderr);
    assert.match(forced.stderr, /"kind":"SnapshotModeError"/);
    assert.match(forced.stderr, /no Kubernetes client: .*picks flanneld-kube\.blob/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("bin/flanneld runs from the bundle when the snapshot cannot load, and says what to do without either", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-bin-"));
  const flanneld = join(dir, "bin/flanneld");
  const version = (env: Record<string, string> = {}) =>
    runCapture(flanneld, ["--version"], { env: { ...process.env, NODE_OPTIONS: "", ...env } });
  try {
    await mkdir(join(dir, "bin"));
    await mkdir(join(dir, "dist/snapshot"), { recursive: true });
    await copyFile(BIN, flanneld);
    const none = await version();
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no .*dist\/bundle\/flanneld\.js: run "npm ci && npm run build"/);
    await symlink(join(REPO, "dist/bundle"), join(dir, "dist/bundle"));
    assert.match((await version()).stderr, /^v\d+\.\d+\.\d+/);
    // A snapshot that cannot load, made (it says) by the Node installed: bin/flanneld uses it.
    await writeFile(join(dir, "dist/snapshot/flanneld.blob"), "not a snapshot");
    const made = await readFile(join(REPO, "dist/snapshot/flanneld.node"), "utf8");
    await writeFile(join(dir, "dist/snapshot/flanneld.node"), made);
    assert.notEqual((await version()).code, 0);
    // ... but not when another Node has been installed since, nor with NODE_OPTIONS.
    const [node] = made.split(" ");
    await writeFile(join(dir, "dist/snapshot/flanneld.node"), `${node} 0:0:0\n`);
    assert.match((await version()).stderr, /^v\d+\.\d+\.\d+/);
    await writeFile(join(dir, "dist/snapshot/flanneld.node"), made);
    const withOptions = await version({ NODE_OPTIONS: "--max-semi-space-size=2" });
    assert.equal(withOptions.code, 0, withOptions.stderr);
    // Which the build's own snapshot needs: with another V8 flag it does not load.
    const flagged = await runCapture(node!, ["--max-semi-space-size=2", `--snapshot-blob=${BLOB}`]);
    assert.match(flagged.stderr, /Failed to load the startup snapshot/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a snapshot's late built-in modules (http, dgram, child_process) work once it is read", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-snap-"));
  try {
    const entry = join(dir, "entry.mjs");
    await writeFile(
      entry,
      `import { startupSnapshot } from "node:v8";
import http, { STATUS_CODES } from "node:http";
import * as dgram from "node:dgram";
import { execFileSync } from "node:child_process";
const loadedAt = "build";
startupSnapshot.setDeserializeMainFunction(() => {
  const server = http.createServer((_, res) => res.end(STATUS_CODES[200]));
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address();
    http.get({ host: "127.0.0.1", port }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => {
        const echoed = execFileSync("echo", ["child"], { encoding: "utf8" }).trim();
        console.log([loadedAt, body, echoed, typeof dgram.createSocket].join(" "));
        server.close();
      });
    });
  });
});
`,
    );
    const { bundleSnapshotEntry, bundleCommonJs, buildSnapshot } = await helpers();
    await bundleSnapshotEntry(entry, join(dir, "late.cjs"), dir);
    buildSnapshot(join(dir, "late.cjs"), join(dir, "late.blob"));
    const ran = await runCapture(process.execPath, [`--snapshot-blob=${join(dir, "late.blob")}`]);
    assert.equal(ran.stdout.trim(), "build OK child function", ran.stderr);
    // The same script bundled without the stand-ins: Node cannot snapshot node:http.
    await bundleCommonJs(entry, join(dir, "plain.cjs"));
    assert.throws(
      () => buildSnapshot(join(dir, "plain.cjs"), join(dir, "plain.blob")),
      /node --build-snapshot .*plain\.cjs failed/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
