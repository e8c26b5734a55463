/**
 * Issue #5 figures, printed (never asserted): wall time of `npm run lab -- --once` (packages
 * installed, build up to date) and of `flannelctl lab up` alone for 3 and for 10 hosts (2 pods
 * each); baseline: `ip netns add` + `ip netns del` of as many namespaces as the lab makes, in
 * the same run.
 *
 * Run: npm run build && node dist/bench/lab_bench.js
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../lab/cluster.js";
import { uniquePrefix } from "../lab/netns.js";

function timed(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = performance.now();
  const result = spawnSync(cmd, args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "ignore", "inherit"],
    env,
  });
  if (result.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed with ${result.status ?? "a signal"}`);
  return (performance.now() - t0) / 1000;
}

const flannelctl = join(REPO_ROOT, "bin/flannelctl");
const print = (line: string) => process.stdout.write(`${line}\n`);
print(`flannel-ts bench (issue #5), ${new Date().toISOString()}`);
const once = timed("npm", ["run", "lab", "--", "--once"], {
  ...process.env,
  FLANNEL_TS_LAB_NAME: uniquePrefix("ftbn"),
});
print(`npm run lab -- --once (3 hosts, 2 pods each, check, down): ${once.toFixed(1)} s`);
for (const nodes of [3, 10]) {
  const name = uniquePrefix("ftbl");
  try {
    const up = timed(flannelctl, [
      "lab",
      "up",
      "--name",
      name,
      "--nodes",
      String(nodes),
      "--pods",
      "2",
    ]);
    const namespaces = 1 + nodes * 3;
    const t0 = performance.now();
    for (let i = 0; i < namespaces; i++) spawnSync("ip", ["netns", "add", `${name}-x${i}`]);
    for (let i = 0; i < namespaces; i++) spawnSync("ip", ["netns", "del", `${name}-x${i}`]);
    const base = (performance.now() - t0) / 1000;
    print(
      `lab up, ${nodes} hosts x 2 pods: ${up.toFixed(1)} s; baseline: adding and deleting ${namespaces} bare namespaces ${base.toFixed(2)} s`,
    );
  } finally {
    spawnSync(flannelctl, ["lab", "down", "--name", name], { stdio: "ignore" });
  }
}
