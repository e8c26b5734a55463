/**
 * Runs inside a lab's hub namespace and writes to its etcd on 127.0.0.1 when asked on stdin
 * (one JSON command per line), answering each with the time the write was committed. Used by
 * the benches so that timestamps are taken next to etcd, not after a process start.
 *   {"op":"put","key":"...","value":"...","ttl":3600}  -> {"t": <ms since epoch>}
 *   {"op":"bulk","items":[{"key","value"}...],"ttl":3600} -> {"t": ..., "n": <count>}
 *   {"op":"del","key":"..."} -> {"t": ...}
 */
import { createInterface } from "node:readline";
import { Etcd3 } from "etcd3";

interface Command {
  readonly op: "put" | "bulk" | "del";
  readonly key?: string;
  readonly value?: string;
  readonly items?: readonly { key: string; value: string }[];
  readonly ttl?: number;
}

const client = new Etcd3({ hosts: "http://127.0.0.1:2379" });
const lease = async (ttl: number) => (await client.leaseClient.leaseGrant({ TTL: ttl })).ID;

for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line) as Command;
  if (cmd.op === "del" && cmd.key !== undefined) {
    await client.delete().key(cmd.key).exec();
    process.stdout.write(`${JSON.stringify({ t: Date.now() })}\n`);
    continue;
  }
  const id = await lease(cmd.ttl ?? 3600);
  if (cmd.op === "put" && cmd.key !== undefined && cmd.value !== undefined) {
    await client.put(cmd.key).value(cmd.value).lease(id).exec();
    process.stdout.write(`${JSON.stringify({ t: Date.now() })}\n`);
  } else if (cmd.op === "bulk" && cmd.items !== undefined) {
    const items = cmd.items;
    for (let i = 0; i < items.length; i += 100) {
      await Promise.all(
        items
          .slice(i, i + 100)
          .map((item) => client.put(item.key).value(item.value).lease(id).exec()),
      );
    }
    process.stdout.write(`${JSON.stringify({ t: Date.now(), n: items.length })}\n`);
  }
}
client.close();
