/**
 * Runs a UdpForwarder inside a test's network namespace (started with `ip netns exec`), driven
 * by the test over stdin/stdout, one JSON request and one JSON answer per line. Besides the
 * forwarder, it sends and receives datagrams and opens TCP connections from inside the
 * namespace, so that the test sees what crosses the TUN and the UDP socket.
 *
 *   {"op":"start", ...ForwarderOptions minus log}      {"op":"setHops","hops":[...]}
 *   {"op":"stats"}   {"op":"recreateTun"}     {"op":"stop"}
 *   {"op":"listen","ip":"...","port":n}  -> {"id":n}  {"op":"received","id":n} -> {"messages":[hex]}
 *   {"op":"send","from":"ip","to":"ip","port":n,"hex":"..."}
 *   {"op":"connect","ip":"...","port":n} -> {"error":"ENETUNREACH" | null}
 */
import { createSocket } from "node:dgram";
import type { Socket } from "node:dgram";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { UdpForwarder } from "../../src/backend/udp/forwarder.js";
import { IPNet } from "../../src/ip/ip.js";
import { createLogger } from "../../src/log/logger.js";

interface Request {
  readonly op: string;
  readonly [key: string]: unknown;
}

let forwarder: UdpForwarder | null = null;
const sockets: { socket: Socket; messages: string[] }[] = [];
const log = createLogger({ name: "forwarder-harness", fd: 2 });

function need(): UdpForwarder {
  if (forwarder === null) throw new Error("start the forwarder first");
  return forwarder;
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case "start": {
      const subnet = IPNet.parse(String(req.subnet));
      if (subnet === null) throw new Error(`bad subnet ${String(req.subnet)}`);
      forwarder = UdpForwarder.start({
        tunName: typeof req.tunName === "string" ? req.tunName : "flannel0",
        workers: Number(req.workers ?? 1),
        offload: req.offload === true,
        bindIP: String(req.bindIP),
        port: Number(req.port),
        subnet,
        mtu: Number(req.mtu),
        log,
      });
      return { offload: forwarder.offload };
    }
    case "setHops": {
      const hops = (req.hops as { subnet: string; publicIP: string; port: number }[]).map((h) => {
        const subnet = IPNet.parse(h.subnet);
        if (subnet === null) throw new Error(`bad subnet ${h.subnet}`);
        return { subnet, publicIP: h.publicIP, port: h.port };
      });
      need().setHops(hops);
      return {};
    }
    case "stats":
      return need().stats;
    case "recreateTun":
      need().recreateTun();
      return {};
    case "stop":
      need().stop();
      return {};
    case "listen": {
      const socket = createSocket("udp4");
      const entry = { socket, messages: [] as string[] };
      socket.on("message", (msg) => entry.messages.push(msg.toString("hex")));
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(Number(req.port), String(req.ip), () => {
          resolve();
        });
      });
      sockets.push(entry);
      return { id: sockets.length - 1 };
    }
    case "received":
      return { messages: sockets[Number(req.id)]?.messages ?? [] };
    case "send": {
      const socket = createSocket("udp4");
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind(0, String(req.from), () => {
            resolve();
          });
        });
        await new Promise<void>((resolve, reject) => {
          socket.send(
            Buffer.from(String(req.hex), "hex"),
            Number(req.port),
            String(req.to),
            (err) => {
              if (err) reject(err);
              else resolve();
            },
          );
        });
      } finally {
        socket.close();
      }
      return {};
    }
    case "connect":
      return new Promise((resolve) => {
        const socket = connect({ host: String(req.ip), port: Number(req.port) });
        socket.setTimeout(10_000);
        socket.once("connect", () => {
          socket.destroy();
          resolve({ error: null });
        });
        socket.once("timeout", () => {
          socket.destroy();
          resolve({ error: "ETIMEDOUT" });
        });
        socket.once("error", (err: NodeJS.ErrnoException) => {
          resolve({ error: err.code ?? err.message });
        });
      });
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    try {
      const result = await handle(JSON.parse(line) as Request);
      process.stdout.write(`${JSON.stringify({ ok: true, result })}\n`);
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`);
    }
  });
});
lines.on("close", () => {
  void queue.then(() => {
    forwarder?.stop();
    for (const { socket } of sockets) socket.close();
  });
});
