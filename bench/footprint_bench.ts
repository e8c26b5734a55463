/**
 * Issue #27 figures, printed (never asserted): what every host pays for flanneld, each against
 * a baseline measured in the same run, rounds in turn, medians.
 * 1. flanneld start -> subnet.env (a fresh host: no subnet.env, no flannel.1; vxlan, 2 peers;
 *    no NODE_EXTRA_CA_CERTS), against a bare `node -e ''` in the same namespace.
 * 2. flanneld's RSS 3 s after start (2 peers), against the bare Node's RSS at the same age.
 * 3. With 5,000 peers: peak RSS (VmHWM) while programming them, and RSS once all 15,000 kernel
 *    entries are in place and 3 s have passed.
 * 4. The bytes the CNI plugin puts on a host, per install path.
 * Each program measured: the repository's bin/flanneld and the installed flanneld (the .deb's
 * and the image's layout, laid out here); with FLANNEL_TS_BENCH_BEFORE=<another checkout, built>, its
 * bin/flanneld too, in the same rounds (the "before" of a change; several, separated by ":").
 *   npm run build && node dist/bench/footprint_bench.js   (FLANNEL_TS_BENCH_ROUNDS, default 7)
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { waitFor } from "../lab/poll.js";
import { ip, run } from "../lab/netns.js";
import { openSingleHost, REPO_ROOT } from "../test/helpers/single_host.js";
import type { SingleHost } from "../test/helpers/single_host.js";
import {
  countEntries,
  layOutInstalled,
  macOf,
  median,
  print,
  scaleSubnet,
  scaleVtep,
  waitForSubnetFile,
} from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 7);
const SCALE = Number(process.env.FLANNEL_TS_BENCH_PEERS ?? 5000);
const RSS_AGE_MS = 3_000;

interface Program {
  readonly label: string;
  readonly path: string;
}

/** VmRSS and VmHWM of a process, in MiB. */
async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** Writes `count` remote vxlan leases, as flannel hosts write them, from inside the host. */
async function writePeers(host: SingleHost, from: number, count: number): Promise<void> {
  const script = `
    const { EtcdRegistry } = await import(${JSON.stringify(join(REPO_ROOT, "dist/src/subnet/etcd/registry.js"))});
    const { IPNet } = await import(${JSON.stringify(join(REPO_ROOT, "dist/src/ip/ip.js"))});
    let text = ""; for await (const chunk of process.stdin) text += chunk; const leases = JSON.parse(text);
    const registry = await EtcdRegistry.connect({ endpoints: [${JSON.stringify(host.etcd.endpoint)}], prefix: "/coreos.com/network" });
    for (let i = 0; i < leases.length; i += 100)
      await Promise.all(leases.slice(i, i + 100).map(([subnet, attrs]) => registry.createSubnet(IPNet.parse(subnet), null, attrs, 3600)));
    registry.close();`;
  const leases = [];
  for (let i = from; i < from + count; i++)
    leases.push([
      `${scaleSubnet(i)}/24`,
      {
        publicIP: scaleVtep(i),
        publicIPv6: null,
        backendType: "vxlan",
        backendData: { VNI: 1, VtepMAC: macOf(i + 1) },
      },
    ]);
  await run(
    "ip",
    ["netns", "exec", host.netns, process.execPath, "--input-type=module", "-e", script],
    { input: JSON.stringify(leases) },
  );
}

/** One start of `program` on a fresh host: ms to subnet.env, and the process (still running). */
async function startOnce(host: SingleHost, program: string) {
  const subnetFile = join(host.dir, "subnet.env");
  await rm(subnetFile, { force: true });
  await ip(["link", "del", "flannel.1"], host.netns).catch(() => undefined);
  const started = performance.now();
  const daemon = host.flanneld(
    [`--etcd-endpoints=${host.etcd.endpoint}`, "--iface=veth0", `--subnet-file=${subnetFile}`],
    {},
    program,
  );
  await waitForSubnetFile(daemon, subnetFile);
  return { ms: performance.now() - started, started, daemon };
}

/** The bare Node baseline: start -> exit, and its RSS at RSS_AGE_MS. */
async function bareNode(host: SingleHost): Promise<{ ms: number; rss: number }> {
  const t0 = performance.now();
  await run("ip", ["netns", "exec", host.netns, process.execPath, "-e", ""], {
    env: { PATH: "/usr/bin:/bin" },
  });
  const ms = performance.now() - t0;
  const child = spawn(
    "ip",
    ["netns", "exec", host.netns, process.execPath, "-e", "setInterval(() => {}, 1000)"],
    {
      stdio: "ignore",
      env: { PATH: "/usr/bin:/bin" },
    },
  );
  try {
    await delay(RSS_AGE_MS);
    return { ms, rss: (await memoryOf(child.pid!)).rss };
  } finally {
    child.kill("SIGKILL");
  }
}

async function startAndMemory(host: SingleHost, programs: readonly Program[]): Promise<void> {
  await writePeers(host, 0, 2);
  const figures = new Map(
    programs.map((p) => [p.label, { ms: [] as number[], rss: [] as number[] }]),
  );
  const bare = { ms: [] as number[], rss: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const program of programs) {
      const { ms, started, daemon } = await startOnce(host, program.path);
      await delay(Math.max(0, RSS_AGE_MS - (performance.now() - started)));
      const { rss } = await memoryOf(daemon.child.pid!);
      daemon.child.kill("SIGTERM");
      await daemon.exited;
      figures.get(program.label)!.ms.push(ms);
      figures.get(program.label)!.rss.push(rss);
    }
    const b = await bareNode(host);
    bare.ms.push(b.ms);
    bare.rss.push(b.rss);
  }
  const bm = median(bare.ms);
  const br = median(bare.rss);
  print(
    `baseline: bare node -e '' start -> exit: median ${bm.toFixed(1)} ms; a bare Node's RSS at ${RSS_AGE_MS / 1000} s: ${br.toFixed(1)} MiB (${ROUNDS} rounds in turn)`,
  );
  for (const [label, f] of figures) {
    const m = median(f.ms);
    const r = median(f.rss);
    print(
      `${label}: start -> subnet.env (vxlan, 2 peers) median ${m.toFixed(1)} ms = ${(m / bm).toFixed(2)}x bare Node (goal 2x); RSS at ${RSS_AGE_MS / 1000} s ${r.toFixed(1)} MiB = ${(r / br).toFixed(2)}x bare Node (goal < 45 MiB)`,
    );
  }
}

async function scaleMemory(host: SingleHost, programs: readonly Program[]): Promise<void> {
  await writePeers(host, 2, SCALE - 2);
  const rounds = Math.max(5, Math.ceil(ROUNDS / 2));
  const figures = new Map(
    programs.map((p) => [
      p.label,
      { peak: [] as number[], settled: [] as number[], ms: [] as number[] },
    ]),
  );
  for (let round = 0; round < rounds; round++) {
    for (const program of programs) {
      const { started, daemon } = await startOnce(host, program.path);
      const pid = daemon.child.pid!;
      let peak = 0;
      await waitFor(
        `${SCALE} peers programmed`,
        async () => {
          peak = Math.max(peak, (await memoryOf(pid)).peak);
          return (await countEntries(host.netns)) >= 3 * SCALE;
        },
        { timeoutMs: 300_000, intervalMs: 250 },
      );
      const ms = performance.now() - started;
      await delay(RSS_AGE_MS);
      const memory = await memoryOf(pid);
      daemon.child.kill("SIGTERM");
      await daemon.exited;
      const f = figures.get(program.label)!;
      f.peak.push(Math.max(peak, memory.peak));
      f.settled.push(memory.rss);
      f.ms.push(ms);
    }
  }
  for (const [label, f] of figures)
    print(
      `${label}, ${SCALE} peers: peak RSS ${median(f.peak).toFixed(1)} MiB (goal < 100), RSS after the listing settles ${median(f.settled).toFixed(1)} MiB, all ${3 * SCALE} entries in place after ${(median(f.ms) / 1000).toFixed(2)} s (medians of ${rounds})`,
    );
}

/** The bytes of a bundle's entry file and of every chunk it imports, however deep. */
async function bundleBytes(dir: string, entry: string): Promise<number> {
  const seen = new Set<string>();
  const visit = async (file: string): Promise<number> => {
    if (seen.has(file)) return 0;
    seen.add(file);
    const text = await readFile(join(dir, file), "utf8");
    let total = Buffer.byteLength(text);
    for (const m of text.matchAll(/(?:from|import)"\.\/(chunk-[A-Z0-9]+\.js)"/g))
      total += await visit(m[1]!);
    return total;
  };
  return visit(entry);
}

/** What the CNI plugin costs a host in bytes, per install path; and the installed folder's. */
async function pluginBytes(lib: string): Promise<void> {
  const size = async (path: string) => (await stat(path)).size;
  const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;
  const node = await size(join(lib, "node"));
  const plugin = await size(join(lib, "flannel.cjs"));
  const own = await bundleBytes(join(REPO_ROOT, "dist/bundle"), "flannel.js");
  let installed = 0;
  for (const name of await readdir(lib)) installed += await size(join(lib, name));
  print(
    `CNI plugin bytes per host: the DaemonSet's (flannelctl cni install from the image: its Node and the plugin's bundle, and a launcher) ${mib(node + plugin)}; the .deb's: its launcher, 0 more (it shares the Node of /usr/lib/flannel-ts, ${mib(installed)} in all, with flanneld); from the repository, the single executable ${mib(await size(join(REPO_ROOT, "dist/sea/flannel")))}, or bin/flannel's bundle ${(own / 1024).toFixed(0)} KiB beside the host's Node.js`,
  );
}

const dir = await mkdtemp(join(tmpdir(), "ftfp-"));
const host = await openSingleHost("ftfp");
try {
  delete process.env.NODE_EXTRA_CA_CERTS;
  // The .deb's and the image's layout (scripts/build_helpers.mjs), made here.
  await layOutInstalled(dir, { "usr/bin/flanneld": "flanneld" });
  const programs: Program[] = [
    { label: "bin/flanneld", path: join(REPO_ROOT, "bin/flanneld") },
    { label: "installed flanneld", path: join(dir, "usr/bin/flanneld") },
  ];
  for (const before of (process.env.FLANNEL_TS_BENCH_BEFORE ?? "").split(":").filter(Boolean))
    programs.push({ label: `before (${before}/bin/flanneld)`, path: join(before, "bin/flanneld") });
  await host.etcdctl([
    "put",
    "/coreos.com/network/config",
    '{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}',
  ]);
  print(`flannel-ts footprint bench (issue #27), ${new Date().toISOString()}, ${ROUNDS} rounds`);
  await startAndMemory(host, programs);
  await scaleMemory(host, programs);
  await pluginBytes(join(dir, "usr/lib/flannel-ts"));
} finally {
  await host.cleanup();
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
