/**
 * The packaged flanneld's start: exec -> READY=1 on the notify socket, from the .deb's unpacked
 * flanneld and from the repository's bin/flanneld, against a bare Node start (`node -e 0`,
 * exec -> exit) measured in the same run, rounds in turn, medians. Also the package's size.
 *   node dist/bench/package_bench.js   (FLANNEL_TS_BENCH_ROUNDS; builds the .deb when missing)
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../lab/cluster.js";
import { run } from "../lab/netns.js";
import { startNotifyListener } from "../test/helpers/notify_listener_client.js";
import { openSingleHost } from "../test/helpers/single_host.js";
import type { SingleHost } from "../test/helpers/single_host.js";
import { median, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 5);

async function packageFile(): Promise<string> {
  const dir = join(REPO_ROOT, "dist/package");
  const found = existsSync(dir) ? (await readdir(dir)).find((f) => f.endsWith(".deb")) : undefined;
  if (found !== undefined) return join(dir, found);
  return (await run(process.execPath, [join(REPO_ROOT, "scripts/package.mjs")])).trim();
}

/** ms from exec of `flanneld` in the host to its READY=1 datagram; then it is stopped. */
async function startToReady(host: SingleHost, flanneld: string, round: number): Promise<number> {
  const socket = `@flannel-ts-bench-${process.pid}-${round}`;
  const listener = await startNotifyListener(host.netns, socket);
  const t0 = process.hrtime.bigint();
  const daemon = host.flanneld(
    [
      `--etcd-endpoints=${host.etcd.endpoint}`,
      "--iface=veth0",
      `--subnet-file=${join(host.dir, "subnet.env")}`,
    ],
    { NOTIFY_SOCKET: socket },
    flanneld,
  );
  await listener.next("READY=1");
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  daemon.child.kill("SIGTERM");
  await daemon.exited;
  listener.stop();
  return ms;
}

function bareNode(): number {
  const t0 = process.hrtime.bigint();
  spawnSync(process.execPath, ["-e", "0"]);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const deb = await packageFile();
const unpacked = join(REPO_ROOT, "dist/package/bench-unpacked");
await rm(unpacked, { recursive: true, force: true });
await mkdir(unpacked, { recursive: true });
await run("dpkg-deb", ["-x", deb, unpacked]);
const installed = Number((await run("du", ["-sk", unpacked])).split("\t")[0]) / 1024;
print(
  `package ${deb.split("/").at(-1) ?? deb}: ${(statSync(deb).size / 2 ** 20).toFixed(1)} MiB, ${installed.toFixed(0)} MiB installed`,
);

const host = await openSingleHost("ftbp");
try {
  await host.etcdctl([
    "put",
    "/coreos.com/network/config",
    '{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}',
  ]);
  const packaged: number[] = [];
  const repo: number[] = [];
  const node: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    packaged.push(await startToReady(host, join(unpacked, "usr/bin/flanneld"), round));
    repo.push(await startToReady(host, join(REPO_ROOT, "bin/flanneld"), round + 1000));
    node.push(bareNode());
  }
  const [p, r, n] = [median(packaged), median(repo), median(node)];
  print(
    `flanneld exec -> READY=1, median of ${ROUNDS}: the package's flanneld ${p.toFixed(0)} ms (${(p / n).toFixed(2)}x a bare Node start), bin/flanneld ${r.toFixed(0)} ms (${(r / n).toFixed(2)}x); bare Node start (node -e 0) ${n.toFixed(0)} ms`,
  );
} finally {
  await host.cleanup();
  await rm(unpacked, { recursive: true, force: true });
}
