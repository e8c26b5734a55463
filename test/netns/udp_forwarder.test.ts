/**
 * The udp backend's packet loop on the real kernel, in a namespace of its own: a TUN device, the
 * forwarder's UDP socket on 10.9.0.1:8285, a "peer" at 10.9.0.2 that holds the lease of
 * 10.244.2.0/24, and a stranger at 10.9.0.3 that holds none. forwarder_harness.ts runs the
 * forwarder inside the namespace; this test sends and receives through it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, test } from "node:test";
import { addNetns, deleteNetns, execIn, ip, uniquePrefix } from "../../lab/netns.js";
import { eventually, waitFor } from "../../lab/poll.js";
import { REPO_ROOT } from "../helpers/single_host.js";

const OWN = "10.9.0.1";
const PEER = "10.9.0.2";
const STRANGER = "10.9.0.3";
const PORT = 8285;
const SUBNET = "10.244.1.0/24";
const TUN_IP = "10.244.1.0";
const MTU = 1472;

interface Stats {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  icmpUnreachable: number;
  workerExits: number;
  drops: Record<string, number>;
}

/** The harness in a namespace, and a way to call it. */
class Harness {
  readonly #child: ChildProcess;
  #log = "";
  readonly #answers: { resolve: (line: string) => void; reject: (err: Error) => void }[] = [];

  constructor(readonly netns: string) {
    this.#child = spawn(
      "ip",
      [
        "netns",
        "exec",
        netns,
        process.execPath,
        join(REPO_ROOT, "dist/test/helpers/forwarder_harness.js"),
      ],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    createInterface({ input: this.#child.stdout! }).on("line", (line) =>
      this.#answers.shift()?.resolve(line),
    );
    this.#child.once("exit", () => {
      for (const waiting of this.#answers.splice(0))
        waiting.reject(new Error("the harness exited"));
    });
  }

  async call<T = Record<string, unknown>>(request: Record<string, unknown>): Promise<T> {
    const line = await new Promise<string>((resolve, reject) => {
      this.#answers.push({ resolve, reject });
      this.#child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
    const answer = JSON.parse(line) as { ok: boolean; result: T; error?: string };
    if (!answer.ok) throw new Error(`${String(request.op)}: ${answer.error}; log:\n${this.#log}`);
    return answer.result;
  }

  stats(): Promise<Stats> {
    return this.call<Stats>({ op: "stats" });
  }

  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const gone = new Promise((resolve) => this.#child.once("exit", resolve));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  }
}

function checksum(data: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += data.readUInt16BE(i);
  if (data.length % 2 === 1) sum += (data[data.length - 1] ?? 0) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const octets = (ipv4: string) => Buffer.from(ipv4.split(".").map(Number));

/** An IPv4 packet carrying a UDP datagram (checksums right), with knobs to break it. */
function udpPacket(o: {
  src: string;
  dst: string;
  dport: number;
  payload: string;
  ttl?: number;
  version?: number;
  totalLength?: number;
}): Buffer {
  const payload = Buffer.from(o.payload);
  const udp = Buffer.alloc(8 + payload.length);
  udp.writeUInt16BE(40_000, 0);
  udp.writeUInt16BE(o.dport, 2);
  udp.writeUInt16BE(udp.length, 4);
  payload.copy(udp, 8);
  const pseudo = Buffer.concat([
    octets(o.src),
    octets(o.dst),
    Buffer.from([0, 17]),
    Buffer.alloc(2),
  ]);
  pseudo.writeUInt16BE(udp.length, 10);
  udp.writeUInt16BE(checksum(Buffer.concat([pseudo, udp])) || 0xffff, 6);
  const ipHeader = Buffer.alloc(20);
  ipHeader[0] = ((o.version ?? 4) << 4) | 5;
  ipHeader.writeUInt16BE(o.totalLength ?? 20 + udp.length, 2);
  ipHeader[8] = o.ttl ?? 64;
  ipHeader[9] = 17;
  octets(o.src).copy(ipHeader, 12);
  octets(o.dst).copy(ipHeader, 16);
  ipHeader.writeUInt16BE(checksum(ipHeader), 10);
  return Buffer.concat([ipHeader, udp]);
}

/** A good packet from a pod of the peer's subnet to this host's port 7777. */
const fromPeerPod = (payload: string, extra: Partial<Parameters<typeof udpPacket>[0]> = {}) =>
  udpPacket({ src: "10.244.2.5", dst: TUN_IP, dport: 7777, payload, ...extra });

/** Sends `datagram` to the forwarder's UDP port from `from`. */
async function sendToForwarder(h: Harness, from: string, datagram: Buffer): Promise<void> {
  await h.call({ op: "send", from, to: OWN, port: PORT, hex: datagram.toString("hex") });
}

/** Sets up the namespace and the harness; runs `body`; takes everything down in any case. */
async function withForwarder(
  tag: string,
  { workers, offload }: { workers: number; offload: boolean },
  body: (h: Harness) => Promise<void>,
): Promise<void> {
  const netns = uniquePrefix(tag);
  let harness: Harness | null = null;
  try {
    await addNetns(netns);
    for (const addr of [OWN, PEER, STRANGER])
      await ip(["addr", "add", `${addr}/32`, "dev", "lo"], netns);
    harness = new Harness(netns);
    const started = await harness.call<{ offload: boolean }>({
      op: "start",
      bindIP: OWN,
      port: PORT,
      subnet: SUBNET,
      mtu: MTU,
      workers,
      offload,
    });
    assert.equal(started.offload, offload, "the kernel takes TUN offloads");
    await setUpTun(netns);
    await harness.call({
      op: "setHops",
      hops: [{ subnet: "10.244.2.0/24", publicIP: PEER, port: PORT }],
    });
    await body(harness);
  } finally {
    await harness?.close();
    await deleteNetns(netns);
  }
}

/** Gives flannel0 its address, MTU and route, as the udp backend does. */
async function setUpTun(netns: string): Promise<void> {
  await ip(["addr", "add", `${TUN_IP}/32`, "dev", "flannel0"], netns);
  await ip(["link", "set", "flannel0", "mtu", String(MTU), "up"], netns);
  await ip(["route", "add", "10.244.0.0/16", "dev", "flannel0"], netns);
  // The ICMP errors come from flannel0's own address: the backend lets the kernel take them.
  await execIn(netns, "sysctl", ["-qw", "net.ipv4.conf.flannel0.accept_local=1"]);
}

/** What the peer's socket received, once `count` datagrams are there. */
async function receivedBy(h: Harness, id: number, count: number): Promise<Buffer[]> {
  let messages: string[] = [];
  await waitFor(`${count} datagram(s) at listener ${id}`, async () => {
    messages = (await h.call<{ messages: string[] }>({ op: "received", id })).messages;
    return messages.length >= count;
  });
  return messages.map((m) => Buffer.from(m, "hex"));
}

for (const mode of [
  { workers: 1, offload: false },
  { workers: 2, offload: false },
  { workers: 1, offload: true },
  { workers: 2, offload: true },
]) {
  const { workers } = mode;
  describe(`udp forwarder, ${workers} worker(s), offloads ${mode.offload ? "on" : "off"}`, () => {
    test("a packet for a leased subnet goes to its host as one raw IPv4 datagram, TTL decremented", async () => {
      await withForwarder("fts-fwtx", mode, async (h) => {
        const { id } = await h.call<{ id: number }>({ op: "listen", ip: PEER, port: PORT });
        // From this host (source: flannel0's address) to a pod of the peer's subnet.
        await h.call({
          op: "send",
          from: TUN_IP,
          to: "10.244.2.5",
          port: 9999,
          hex: Buffer.from("hello").toString("hex"),
        });
        const [datagram] = await receivedBy(h, id, 1);
        assert.ok(datagram !== undefined);
        assert.equal(datagram[0], 0x45, "a bare IPv4 header, no header of ours");
        assert.deepEqual([...datagram.subarray(16, 20)], [10, 244, 2, 5]);
        assert.equal(datagram[8], 63, "the forwarder decremented the TTL of a local packet once");
        assert.equal(
          checksum(datagram.subarray(0, 20)),
          0,
          "the header checksum is right after the patch",
        );
        assert.equal(datagram.subarray(28).toString(), "hello");
        // The UDP checksum too (with offloads the kernel leaves it to the forwarder to finish).
        const pseudo = Buffer.concat([datagram.subarray(12, 20), Buffer.from([0, 17, 0, 0])]);
        pseudo.writeUInt16BE(datagram.length - 20, 10);
        assert.equal(checksum(Buffer.concat([pseudo, datagram.subarray(20)])), 0, "UDP checksum");
        const stats = await h.stats();
        assert.equal(stats.txPackets, 1);
        assert.equal(stats.txBytes, datagram.length);
      });
    });

    test("a datagram from a leased host is written into the TUN and reaches this host's socket", async () => {
      await withForwarder("fts-fwrx", mode, async (h) => {
        const { id } = await h.call<{ id: number }>({ op: "listen", ip: TUN_IP, port: 7777 });
        await sendToForwarder(h, PEER, fromPeerPod("from the peer"));
        const [payload] = await receivedBy(h, id, 1);
        assert.equal(payload?.toString(), "from the peer");
        assert.equal((await h.stats()).rxPackets, 1);
      });
    });

    test("a packet for a subnet without a lease gets net-unreachable; removing a lease does the same at once", async () => {
      await withForwarder("fts-fwnr", mode, async (h) => {
        const refused = await h.call<{ error: string | null }>({
          op: "connect",
          ip: "10.244.77.1",
          port: 80,
        });
        assert.equal(refused.error, "ENETUNREACH");
        let stats = await h.stats();
        assert.equal(stats.icmpUnreachable, 1);
        assert.equal(stats.drops.no_route, 1);
        // The peer's lease goes: its subnet is unreachable from the next packet on.
        await h.call({ op: "setHops", hops: [] });
        const gone = await h.call<{ error: string | null }>({
          op: "connect",
          ip: "10.244.2.5",
          port: 80,
        });
        assert.equal(gone.error, "ENETUNREACH");
        // ...and what the former peer sends is no longer taken.
        await sendToForwarder(h, PEER, fromPeerPod("late"));
        await waitFor(
          "the late datagram to be counted",
          async () => (await h.stats()).drops.unknown_sender === 1,
        );
        stats = await h.stats();
        assert.equal(stats.rxPackets, 0);
      });
    });

    test("malformed or unwanted datagrams are each dropped and counted; the loop goes on forwarding", async () => {
      await withForwarder("fts-fwbad", mode, async (h) => {
        const { id } = await h.call<{ id: number }>({ op: "listen", ip: TUN_IP, port: 7777 });
        const good = fromPeerPod;
        const cases: { name: string; from: string; datagram: Buffer; reason: string }[] = [
          {
            name: "shorter than an IPv4 header",
            from: PEER,
            datagram: Buffer.alloc(12, 0x45),
            reason: "short",
          },
          {
            name: "an IPv6 version nibble",
            from: PEER,
            datagram: good("v6", { version: 6 }),
            reason: "not_ipv4",
          },
          {
            name: "a total length beyond the datagram",
            from: PEER,
            datagram: good("cut", { totalLength: 400 }),
            reason: "malformed",
          },
          {
            name: "a total length shorter than the header",
            from: PEER,
            datagram: good("tiny", { totalLength: 10 }),
            reason: "malformed",
          },
          {
            name: "larger than the MTU",
            from: PEER,
            datagram: good("x".repeat(MTU)),
            reason: "too_big",
          },
          {
            name: "from an address that holds no lease",
            from: STRANGER,
            datagram: good("stranger"),
            reason: "unknown_sender",
          },
          {
            name: "for an address outside this host's subnet",
            from: PEER,
            datagram: good("elsewhere", { dst: "10.244.3.9" }),
            reason: "wrong_destination",
          },
          {
            name: "a TTL that runs out here",
            from: PEER,
            datagram: good("ttl", { ttl: 1 }),
            reason: "ttl_expired",
          },
        ];
        for (const c of cases) {
          const before = await h.stats();
          await sendToForwarder(h, c.from, c.datagram);
          await waitFor(
            `${c.name} to be counted as ${c.reason}`,
            async () => (await h.stats()).drops[c.reason] === (before.drops[c.reason] ?? 0) + 1,
          );
          const after = await h.stats();
          assert.equal(
            after.rxPackets,
            before.rxPackets,
            `${c.name}: nothing written into the TUN`,
          );
          for (const [reason, n] of Object.entries(after.drops)) {
            if (reason !== c.reason)
              assert.equal(
                n,
                before.drops[reason],
                `${c.name}: only ${c.reason} counted, not ${reason}`,
              );
          }
        }
        await sendToForwarder(h, PEER, good("still here"));
        const [payload] = await receivedBy(h, id, 1);
        assert.equal(payload?.toString(), "still here");
      });
    });

    test("workers that stop on an error (their TUN device deleted) are restarted and counted, and forwarding goes on", async () => {
      await withForwarder("fts-fwre", mode, async (h) => {
        const { id } = await h.call<{ id: number }>({ op: "listen", ip: TUN_IP, port: 7777 });
        assert.equal((await h.stats()).workerExits, 0);
        // A real fault: the device goes, and each worker's read of its queue fails.
        await ip(["link", "del", "flannel0"], h.netns);
        await waitFor(
          "the workers' exits to be counted",
          async () => (await h.stats()).workerExits >= workers,
        );
        // What the backend does on the device's removal: make it again, then its address.
        await h.call({ op: "recreateTun" });
        await setUpTun(h.netns);
        await eventually(async () => {
          await sendToForwarder(h, PEER, fromPeerPod("after restart"));
          const [payload] = await receivedBy(h, id, 1);
          assert.equal(payload?.toString(), "after restart");
        });
        await h.call({ op: "stop" });
      });
    });
  });
}
