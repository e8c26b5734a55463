/**
 * Issue #3 figure, printed (never asserted): ADD+DEL latency of bin/flannel against calling
 * Debian's bridge plugin directly with the same delegate config, median of 20 each, as a ratio
 * measured in one run. Runs in namespaces made here and removed at the end.
 *
 * Run: npm run build && node dist/bench/cni_bench.js
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addNetns, deleteNetns, run, uniquePrefix } from "../src/lab/netns.js";
import { REPO_ROOT } from "../src/lab/cluster.js";

const RUNS = 20;

async function call(
  host: string,
  plugin: string,
  command: string,
  conf: string,
  env: Record<string, string>,
): Promise<void> {
  await run("ip", ["netns", "exec", host, plugin], {
    input: conf,
    env: {
      PATH: process.env.PATH ?? "",
      CNI_COMMAND: command,
      CNI_PATH: "/usr/lib/cni",
      CNI_IFNAME: "eth0",
      ...env,
    },
  });
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const prefix = uniquePrefix("ftbc");
const host = `${prefix}-host`;
const pod = `${prefix}-pod`;
const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
try {
  await addNetns(host);
  await addNetns(pod);
  const subnetFile = join(dir, "subnet.env");
  await writeFile(
    subnetFile,
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n",
  );
  const flannelConf = JSON.stringify({
    cniVersion: "0.3.1",
    name: "bench",
    type: "flannel",
    subnetFile,
    dataDir: join(dir, "flannel"),
    ipam: { dataDir: join(dir, "ipam") },
  });
  const env = { CNI_NETNS: `/var/run/netns/${pod}` };
  // One ADD to learn the delegate config flannel builds, then the same for bridge directly.
  await call(host, join(REPO_ROOT, "bin/flannel"), "ADD", flannelConf, {
    ...env,
    CNI_CONTAINERID: "probe",
  });
  const bridgeConf = await readFile(join(dir, "flannel", "probe"), "utf8");
  await call(host, join(REPO_ROOT, "bin/flannel"), "DEL", flannelConf, {
    ...env,
    CNI_CONTAINERID: "probe",
  });

  const flannel: number[] = [];
  const bridge: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so that both see the same machine load.
    let t0 = performance.now();
    await call(host, join(REPO_ROOT, "bin/flannel"), "ADD", flannelConf, {
      ...env,
      CNI_CONTAINERID: `f${i}`,
    });
    await call(host, join(REPO_ROOT, "bin/flannel"), "DEL", flannelConf, {
      ...env,
      CNI_CONTAINERID: `f${i}`,
    });
    flannel.push(performance.now() - t0);
    t0 = performance.now();
    await call(host, "/usr/lib/cni/bridge", "ADD", bridgeConf, {
      ...env,
      CNI_CONTAINERID: `b${i}`,
    });
    await call(host, "/usr/lib/cni/bridge", "DEL", bridgeConf, {
      ...env,
      CNI_CONTAINERID: `b${i}`,
    });
    bridge.push(performance.now() - t0);
  }
  const f = median(flannel);
  const b = median(bridge);
  process.stdout.write(`ADD+DEL via bin/flannel: median ${f.toFixed(1)} ms over ${RUNS}\n`);
  process.stdout.write(
    `ADD+DEL via bridge directly (same delegate config): median ${b.toFixed(1)} ms over ${RUNS}\n`,
  );
  process.stdout.write(
    `ratio flannel/bridge: ${(f / b).toFixed(2)}x (the difference is two Node.js process starts plus flannel's own work)\n`,
  );
} finally {
  await deleteNetns(pod);
  await deleteNetns(host);
  await rm(dir, { recursive: true, force: true });
}
