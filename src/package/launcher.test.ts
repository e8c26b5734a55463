/**
 * The installed layout's launchers, run by /bin/sh against a stand-in Node (a script that prints
 * the arguments it got): which Node, flags, snapshot or bundle each command starts with, found
 * from the launcher's own folder, directly and through a symbolic link. The real Node runs them
 * in test/netns/package.test.ts and image.test.ts.
 */
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { runCapture } from "../util/exec.js";
import { launcherScript } from "./launcher.js";
import type { LauncherCommand } from "./launcher.js";
import { FLANNELD_V8_FLAGS } from "./v8_flags.js";

interface Layout {
  readonly dir: string;
  /** The installed folder as the launchers name it (bin/../lib/flannel-ts). */
  readonly lib: string;
  readonly bin: string;
}

/**
 * Runs `body` on a folder with lib/flannel-ts/node (which prints its arguments) and a launcher
 * per command in bin/, and removes the folder after.
 */
async function withLayout(body: (layout: Layout) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-launcher-"));
  try {
    const lib = join(dir, "lib/flannel-ts");
    const bin = join(dir, "bin");
    await mkdir(lib, { recursive: true });
    await mkdir(bin);
    await writeFile(join(lib, "node"), '#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n');
    await chmod(join(lib, "node"), 0o755);
    for (const command of ["flanneld", "flannelctl", "flannel"] as LauncherCommand[]) {
      await writeFile(join(bin, command), launcherScript(command, "../lib/flannel-ts"));
      await chmod(join(bin, command), 0o755);
    }
    await body({ dir, lib: `${bin}/../lib/flannel-ts`, bin });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function argsOf(program: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = await runCapture(program, args, { env: { PATH: "/usr/bin:/bin", ...env } });
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trimEnd().split("\n");
}

test("flanneld starts the installed Node from etcd mode's snapshot, with flanneld's V8 flags", async () => {
  await withLayout(async ({ lib, bin }) => {
    assert.deepEqual(await argsOf(join(bin, "flanneld"), ["--iface=eth0", "--ip-masq"]), [
      `${lib}/node`,
      ...FLANNELD_V8_FLAGS,
      `--snapshot-blob=${lib}/flanneld.blob`,
      join(bin, "flanneld"),
      "--iface=eth0",
      "--ip-masq",
    ]);
  });
});

test("flanneld in Kubernetes mode (the flag or FLANNELD_KUBE_SUBNET_MGR) starts from the Kubernetes snapshot", async () => {
  await withLayout(async ({ lib, bin }) => {
    const byFlag = await argsOf(join(bin, "flanneld"), ["--kube-subnet-mgr"]);
    assert.equal(byFlag[FLANNELD_V8_FLAGS.length + 1], `--snapshot-blob=${lib}/flanneld-kube.blob`);
    const byEnv = await argsOf(join(bin, "flanneld"), [], { FLANNELD_KUBE_SUBNET_MGR: "true" });
    assert.equal(byEnv[FLANNELD_V8_FLAGS.length + 1], `--snapshot-blob=${lib}/flanneld-kube.blob`);
  });
});

test("with NODE_OPTIONS, flanneld starts from its bundle (a snapshot would refuse other V8 flags)", async () => {
  await withLayout(async ({ lib, bin }) => {
    const args = await argsOf(join(bin, "flanneld"), ["--iface=eth0"], {
      NODE_OPTIONS: "--max-old-space-size=200",
    });
    assert.deepEqual(args, [
      `${lib}/node`,
      ...FLANNELD_V8_FLAGS,
      `${lib}/bundle/flanneld.js`,
      "--iface=eth0",
    ]);
  });
});

test("flannelctl runs its bundle; the CNI plugin its own small one", async () => {
  await withLayout(async ({ lib, bin }) => {
    assert.deepEqual(await argsOf(join(bin, "flannelctl"), ["doctor", "--json"]), [
      `${lib}/node`,
      `${lib}/bundle/flannelctl.js`,
      "doctor",
      "--json",
    ]);
    assert.deepEqual(await argsOf(join(bin, "flannel"), []), [`${lib}/node`, `${lib}/flannel.cjs`]);
  });
});

test("a launcher reached through a symbolic link elsewhere still finds its folder", async () => {
  await withLayout(async ({ dir, lib, bin }) => {
    await mkdir(join(dir, "usr/local/bin"), { recursive: true });
    await symlink(join(bin, "flannelctl"), join(dir, "usr/local/bin/flannelctl"));
    const args = await argsOf(join(dir, "usr/local/bin/flannelctl"), ["--help"]);
    assert.equal(args[0], `${lib}/node`);
    assert.deepEqual(args.slice(1), [`${lib}/bundle/flannelctl.js`, "--help"]);
  });
});

test("launcherScript refuses a folder that is absolute or not a plain path", () => {
  assert.throws(() => launcherScript("flannel", "/usr/lib/flannel-ts"), /plain relative path/);
  assert.throws(() => launcherScript("flannel", "a b"), /plain relative path/);
});
