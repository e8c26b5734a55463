/**
 * Containers: the image's build time (cached root; cold with FLANNEL_TS_BENCH_COLD=1, which
 * debootstraps into an empty cache), `podman run` of flanneld from the image -> subnet.env, and a
 * pod container's start through flannel-ts's plugin against podman's own bridge network on the
 * same host, in the same run, in turn, medians.
 *   node dist/bench/container_bench.js   (FLANNEL_TS_BENCH_ROUNDS)
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { REPO_ROOT, killFlanneld, labDown, labUp, startFlanneld } from "../lab/cluster.js";
import { run, uniquePrefix } from "../lab/netns.js";
import { flannelImage, podman } from "../lab/podman.js";
import { median, print } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 5);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const image = join(REPO_ROOT, "scripts/image.mjs");
if (process.env.FLANNEL_TS_BENCH_COLD === "1") {
  const cache = await mkdtemp(join(tmpdir(), "ftbcold-"));
  const cold = await timed(() =>
    run(process.execPath, [image], { env: { ...process.env, FLANNEL_TS_IMAGE_CACHE: cache } }),
  );
  await rm(cache, { recursive: true, force: true });
  print(`image build, cold (debootstrap): ${(cold / 1000).toFixed(1)} s`);
}
const cached = await timed(() => run(process.execPath, [image]));
const size = Number(
  (
    await run("podman", ["image", "inspect", "--format", "{{.Size}}", flannelImage().name], {
      env: { ...process.env, CONTAINERS_STORAGE_CONF: flannelImage().storageConf },
    })
  ).trim(),
);
print(
  `image ${flannelImage().name}: ${(size / 2 ** 20).toFixed(0)} MiB; build with the root cached ${(cached / 1000).toFixed(1)} s (the executable rebuilt)`,
);

const name = uniquePrefix("ftbc");
try {
  const lab = await labUp(
    { name, nodes: 1, pods: 1, backend: "vxlan", runtime: "podman", flanneldInContainer: true },
    () => undefined,
  );
  const h1 = lab.nodes[0];
  if (h1 === undefined) throw new Error("no host");
  // flanneld from the image: podman run -> subnet.env (a restart keeps the lease, as a pod's would).
  const toSubnetEnv: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await killFlanneld(h1);
    await rm(h1.subnetFile, { force: true });
    toSubnetEnv.push(
      await timed(async () => {
        await startFlanneld(lab, h1);
        while (!existsSync(h1.subnetFile)) await delay(5);
      }),
    );
  }
  print(
    `podman run of flanneld from the image -> subnet.env, median of ${ROUNDS}: ${median(toSubnetEnv).toFixed(0)} ms (rounds ${toSubnetEnv.map((v) => v.toFixed(0)).join(", ")})`,
  );
  // A pod container: through flannel-ts's plugin (cbr0) and through podman's own bridge network.
  const start = async (network: string, round: number) => {
    const container = `${name}-${network}-${round}`;
    const ms = await timed(async () => {
      const started = await podman(lab, h1, [
        "run",
        "-d",
        "--name",
        container,
        "--network",
        network,
        "localhost/flannel-ts-pod:latest",
        "sleep",
        "600",
      ]);
      if (started.code !== 0) throw new Error(started.stderr);
    });
    await podman(lab, h1, ["rm", "-f", "-t", "0", container]);
    return ms;
  };
  const flannel: number[] = [];
  const bridge: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    flannel.push(await start("cbr0", round));
    bridge.push(await start("podman", round));
  }
  const [f, b] = [median(flannel), median(bridge)];
  print(
    `pod container start (podman run -d), median of ${ROUNDS}: through flannel-ts's plugin ${f.toFixed(0)} ms, podman's own bridge network ${b.toFixed(0)} ms; ratio ${(f / b).toFixed(2)}x`,
  );
} finally {
  await labDown(name, () => undefined);
}
