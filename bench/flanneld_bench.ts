/**
 * Issue #2 figures, printed (never asserted):
 * 1. Time from flanneld start to subnet.env written, median of 10 runs, inside a namespace with
 *    its own etcd; as a ratio to the start of a bare `node -e ""` measured in the same run.
 * 2. 200 concurrent lease acquisitions against one etcd: total time and lost races (retries),
 *    in a roomy network (/8) and a tight one (/16 with /24: 255 subnets); as a ratio to 200
 *    acquisitions one after another in the same run.
 *
 * Run: npm run build && node dist/bench/flanneld_bench.js
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../src/util/exec.js";
import { waitForSubnetFile } from "./bench_util.js";
import { openSingleHost, REPO_ROOT } from "../test/helpers/single_host.js";
import { openFixture, startEtcd } from "../test/helpers/etcd_fixture.js";
import type { LocalManager } from "../src/subnet/etcd/local_manager.js";

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function timeToSubnetEnv(): Promise<void> {
  // As in a DaemonSet container: no NODE_EXTRA_CA_CERTS (on these machines it alone adds about
  // 60 ms to every Node start), for flanneld and the bare Node alike.
  delete process.env.NODE_EXTRA_CA_CERTS;
  const host = await openSingleHost("ftbs");
  try {
    await host.etcdctl([
      "put",
      "/coreos.com/network/config",
      '{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}',
    ]);
    const subnetFile = join(host.dir, "subnet.env");
    const startup: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < 10; i++) {
      await rm(subnetFile, { force: true });
      const started = performance.now();
      const daemon = host.flanneld([
        `--etcd-endpoints=${host.etcd.endpoint}`,
        "--iface=veth0",
        `--subnet-file=${subnetFile}`,
      ]);
      await waitForSubnetFile(daemon, subnetFile);
      startup.push(performance.now() - started);
      daemon.child.kill("SIGTERM");
      await daemon.exited;

      const t0 = performance.now();
      await run("ip", ["netns", "exec", host.netns, process.execPath, "-e", ""]);
      bare.push(performance.now() - t0);
    }
    const m = median(startup);
    const b = median(bare);
    print(
      `flanneld start -> subnet.env written: median ${m.toFixed(1)} ms over 10 runs (min ${Math.min(...startup).toFixed(1)}, max ${Math.max(...startup).toFixed(1)})`,
    );
    print(
      `  baseline: bare "node -e ''" in the same namespace: median ${b.toFixed(1)} ms; ratio ${(m / b).toFixed(2)}x`,
    );
  } finally {
    await host.cleanup();
  }
}

async function concurrentAcquisitions(): Promise<void> {
  const server = await startEtcd();
  try {
    for (const [label, config] of [
      [
        "roomy network 10.0.0.0/8, /24 subnets",
        '{"Network":"10.0.0.0/8","Backend":{"Type":"alloc"}}',
      ],
      [
        "tight network 10.0.0.0/16, 255 subnets",
        '{"Network":"10.0.0.0/16","Backend":{"Type":"alloc"}}',
      ],
    ] as const) {
      const measure = async (concurrent: boolean) => {
        const f = await openFixture(server);
        try {
          await f.setConfig(config);
          const managers: LocalManager[] = await Promise.all(
            Array.from({ length: 200 }, () => f.manager()),
          );
          await Promise.all(
            managers.map((m) => m.getNetworkConfig({ signal: AbortSignal.timeout(10_000) })),
          ); // connect first
          const signal = AbortSignal.timeout(120_000);
          const attrs = (i: number) => ({
            publicIP: `198.18.${Math.floor(i / 250)}.${(i % 250) + 1}`,
            publicIPv6: null,
            backendType: "alloc",
          });
          const t0 = performance.now();
          if (concurrent)
            await Promise.all(managers.map((m, i) => m.acquireLease(attrs(i), { signal })));
          else for (const [i, m] of managers.entries()) await m.acquireLease(attrs(i), { signal });
          const ms = performance.now() - t0;
          const retries = managers.reduce((sum, m) => sum + m.stats.conflicts, 0);
          const stored = (await f.registry.getSubnets({ withExpiration: false })).leases.length;
          return { ms, retries, stored };
        } finally {
          await f.cleanup();
        }
      };
      const concurrent = await measure(true);
      const sequential = await measure(false);
      print(
        `200 concurrent acquisitions, ${label}: ${concurrent.ms.toFixed(0)} ms total, ${concurrent.retries} retries (lost races), ${concurrent.stored} distinct leases stored`,
      );
      print(
        `  baseline: the same 200 one after another: ${sequential.ms.toFixed(0)} ms; ratio ${(concurrent.ms / sequential.ms).toFixed(2)}x`,
      );
    }
  } finally {
    await server.stop();
  }
}

print(`flannel-ts bench (issue #2), ${new Date().toISOString()}, repo ${REPO_ROOT}`);
await timeToSubnetEnv();
await concurrentAcquisitions();
process.exit(0);
