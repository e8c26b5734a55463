/**
 * flannelctl doctor's run time on a host with 5,000 peers (15,000 routes, neighbours and FDB
 * entries programmed by flanneld), against the baseline of dumping the same kernel state by
 * hand (`ip route show; ip neigh show; bridge fdb show` in the host's namespace, which checks
 * nothing), measured in the same run, rounds in turn, medians. Also checks that doctor finds
 * exactly the one route deleted among the 15,000 entries.
 *   node dist/bench/doctor_bench.js   (FLANNEL_TS_BENCH_PEERS, FLANNEL_TS_BENCH_ROUNDS)
 */
import { join } from "node:path";
import { killFlanneld, labDown, REPO_ROOT } from "../lab/cluster.js";
import { ip, run, uniquePrefix } from "../lab/netns.js";
import { runCapture } from "../src/util/exec.js";
import { setTimeout as delay } from "node:timers/promises";
import {
  countEntries,
  macOf,
  median,
  print,
  scaleLab,
  scaleSubnet,
  scaleVtep,
  startHelper,
} from "./bench_util.js";
import { vxlanLease } from "./bench_util.js";

const PEERS = Number(process.env.FLANNEL_TS_BENCH_PEERS ?? 5000);
const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 5);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function doctor(
  netns: string,
  args: readonly string[] = [],
): Promise<{ code: number | null; findings: { check: string }[] }> {
  const result = await runCapture("ip", [
    "netns",
    "exec",
    netns,
    join(REPO_ROOT, "bin/flannelctl"),
    "doctor",
    "--json",
    ...args,
  ]);
  return {
    code: result.code,
    findings: (JSON.parse(result.stdout) as { findings: { check: string }[] }).findings,
  };
}

async function main(): Promise<void> {
  const name = uniquePrefix("ftbd");
  try {
    const lab = await scaleLab(name, "etcd");
    const h1 = lab.nodes[0];
    if (h1 === undefined) throw new Error("the lab has no host");
    const helper = startHelper(lab);
    const items = Array.from({ length: PEERS }, (_, i) => ({
      key: `/coreos.com/network/subnets/${scaleSubnet(i)}-24`,
      value: vxlanLease(scaleVtep(i), macOf(i + 1)),
    }));
    await helper.send({ op: "bulk", items, ttl: 86_400 });
    helper.child.kill();
    for (let i = 0; i < 240 && (await countEntries(h1.netns)) < 3 * PEERS; i++) await delay(500);
    const healthy = await doctor(h1.netns);
    if (healthy.code !== 0)
      throw new Error(
        `doctor is not happy with the healthy host: ${JSON.stringify(healthy.findings.slice(0, 5))}`,
      );
    const doctorMs: number[] = [];
    const dumpMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      doctorMs.push(await timed(() => doctor(h1.netns)));
      dumpMs.push(
        await timed(() =>
          run("ip", [
            "netns",
            "exec",
            h1.netns,
            "sh",
            "-c",
            "ip route show >/dev/null; ip neigh show >/dev/null; bridge fdb show >/dev/null",
          ]),
        ),
      );
    }
    const d = median(doctorMs);
    const b = median(dumpMs);
    print(
      `doctor with ${PEERS} peers (${3 * PEERS} entries), median of ${ROUNDS}: ${(d / 1000).toFixed(2)} s (rounds ${doctorMs.map((v) => (v / 1000).toFixed(2)).join(", ")}); ip route + ip neigh + bridge fdb dump ${(b / 1000).toFixed(2)} s; ratio ${(d / b).toFixed(2)}x`,
    );
    // One route of 15,000 deleted (flanneld stopped, or it would put it back at once).
    await killFlanneld(h1);
    await ip(["route", "del", `${scaleSubnet(PEERS - 1)}/24`], h1.netns);
    const args = [
      `--etcd-endpoints=${lab.etcdEndpoint}`,
      "--iface=eth0",
      `--subnet-file=${h1.subnetFile}`,
    ];
    const broken = await doctor(h1.netns, args);
    print(
      `  one route deleted among ${3 * PEERS} entries, flanneld stopped: doctor found ${broken.findings
        .map((f) => f.check)
        .sort()
        .join(", ")} (exit ${broken.code})`,
    );
  } finally {
    await labDown(name, () => undefined);
  }
}

await main();
