/**
 * Issue #25 figure, printed (never asserted): the two ways flanneld can configure wireguard-go,
 * its UAPI socket (what flanneld uses for wireguard-go) and `wg` (what it uses for a kernel
 * device), each putting 5,000 peers into a fresh device in one apply and reading them back, in
 * turn, ROUNDS times; medians. Each is the other's baseline.
 *
 * Run: npm run build && node dist/bench/wireguard_control_bench.js   FLANNEL_TS_BENCH_ROUNDS (3)
 */
import { addNetns, deleteNetns, uniquePrefix } from "../lab/netns.js";
import { startWireguardGo } from "../test/helpers/wireguard_go.js";
import type { TestWireguardGo } from "../test/helpers/wireguard_go.js";
import { keyPair, median, print, scaleSubnet, scaleVtep } from "./bench_util.js";

const ROUNDS = Number(process.env.FLANNEL_TS_BENCH_ROUNDS ?? 3);
const PEERS = 5000;

type Control = TestWireguardGo["control"] | TestWireguardGo["wgTool"];
type Peer = Parameters<Control["apply"]>[0]["upsert"][number];

const peers: Peer[] = Array.from({ length: PEERS }, (_, i) => ({
  publicKey: keyPair().publicKey,
  presharedKey: null,
  endpoint: `${scaleVtep(i)}:51820`,
  allowedIPs: [`${scaleSubnet(i)}/24`],
  keepaliveSeconds: 0,
}));

/** One round on a fresh wireguard-go: the ms of the apply and of the get. */
async function round(via: "uapi" | "wg"): Promise<[number, number]> {
  const ns = uniquePrefix("bwgc");
  await addNetns(ns);
  const device = await startWireguardGo(ns, "wgc");
  try {
    const control: Control = via === "uapi" ? device.control : device.wgTool;
    const opts = { signal: AbortSignal.timeout(120_000) };
    const { privateKey } = keyPair();
    await control.apply({ privateKey, listenPort: 51_820, upsert: [], remove: [] }, opts);
    const t0 = performance.now();
    await control.apply({ upsert: peers, remove: [] }, opts);
    const t1 = performance.now();
    const state = await control.get(opts);
    const t2 = performance.now();
    if (state.peers.length !== PEERS) throw new Error(`${via}: ${state.peers.length} peers read`);
    return [t1 - t0, t2 - t1];
  } finally {
    await device.stop();
    await deleteNetns(ns);
  }
}

const results = { uapi: [] as [number, number][], wg: [] as [number, number][] };
for (let r = 0; r < ROUNDS; r++)
  for (const via of r % 2 === 0 ? (["uapi", "wg"] as const) : (["wg", "uapi"] as const))
    results[via].push(await round(via));
const figure = (via: "uapi" | "wg") =>
  `apply ${median(results[via].map((x) => x[0])).toFixed(0)} ms, get ${median(results[via].map((x) => x[1])).toFixed(0)} ms`;
print(
  `${PEERS} peers into wireguard-go in one apply, then read back, medians of ${ROUNDS} in turn:`,
);
print(`  UAPI socket (flanneld's path for wireguard-go): ${figure("uapi")}`);
print(`  wg (flanneld's path for a kernel device):      ${figure("wg")}`);
process.exit(0);
