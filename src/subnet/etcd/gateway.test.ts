import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { freePort, startEtcd } from "../../../lab/etcd_server.js";
import type { EtcdServer } from "../../../lab/etcd_server.js";
import { systemClock } from "../../util/clock.js";
import { EtcdGateway, EtcdRequestError, EtcdUnavailableError } from "./gateway.js";
import { watchKeys } from "./gateway_watch.js";

let server: EtcdServer;
before(async () => {
  server = await startEtcd();
});
after(async () => {
  await server.stop();
});

const key = (k: string) => Buffer.from(k).toString("base64");

test("a request goes on to the next endpoint when the first cannot be reached", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const gateway = new EtcdGateway({ endpoints: [dead, server.endpoint] });
  try {
    await gateway.call("/kv/put", { key: key("/gw/a"), value: key("1") });
    const answer = await gateway.call("/kv/range", { key: key("/gw/a") });
    assert.equal((answer.kvs as { value: string }[])[0]?.value, key("1"));
    assert.equal(gateway.currentEndpoint.name, server.endpoint, "stays on the one that answered");
  } finally {
    gateway.close();
  }
});

test("no endpoint reachable: EtcdUnavailableError naming the endpoint", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const gateway = new EtcdGateway({ endpoints: [dead] });
  try {
    await assert.rejects(gateway.call("/kv/range", { key: key("/gw/a") }), (err: Error) => {
      assert.ok(err instanceof EtcdUnavailableError);
      assert.match(err.message, new RegExp(`Cannot reach etcd at ${dead}`));
      return true;
    });
  } finally {
    gateway.close();
  }
});

test("a server without etcd's gateway is refused with what flannel-ts needs", async () => {
  const plain = createServer((_req, res) => res.writeHead(404).end("Not Found"));
  await new Promise<void>((done) => plain.listen(0, "127.0.0.1", done));
  const gateway = new EtcdGateway({
    endpoints: [`http://127.0.0.1:${(plain.address() as AddressInfo).port}`],
  });
  try {
    await assert.rejects(gateway.call("/kv/range", { key: key("/gw/a") }), (err: Error) => {
      assert.ok(err instanceof EtcdRequestError);
      assert.match(err.message, /no etcd v3 JSON gateway .*--enable-grpc-gateway/);
      return true;
    });
  } finally {
    gateway.close();
    plain.close();
  }
});

test("etcd's refusal keeps its reason and gRPC code", async () => {
  const gateway = new EtcdGateway({ endpoints: [server.endpoint] });
  try {
    await assert.rejects(gateway.call("/kv/range", { key: "!!" }), (err: Error) => {
      assert.ok(err instanceof EtcdRequestError);
      assert.equal(err.code, 3, "INVALID_ARGUMENT");
      assert.match(err.message, /base64/);
      return true;
    });
  } finally {
    gateway.close();
  }
});

test("a watch replays from its start revision, and close() ends it; nothing is sent after", async () => {
  const writer = new EtcdGateway({ endpoints: [server.endpoint] });
  const first = await writer.call("/kv/put", { key: key("/gw/w"), value: key("x") });
  await writer.call("/kv/put", { key: key("/gw/w"), value: key("y") });
  writer.close();
  const start = BigInt((first.header as { revision: string }).revision);
  const gateway = new EtcdGateway({ endpoints: [server.endpoint] });
  const controller = new AbortController();
  const seen: string[] = [];
  let sawBoth: () => void = () => undefined;
  const both = new Promise<void>((done) => (sawBoth = done));
  try {
    const reading = (async () => {
      const batches = watchKeys(
        gateway,
        { key: Buffer.from("/gw/w"), startRevision: start },
        {
          signal: controller.signal,
          clock: systemClock,
          onConnected: () => undefined,
          onDisconnected: () => undefined,
        },
      );
      for await (const batch of batches) {
        for (const e of batch.events) seen.push(e.kv.value.toString());
        if (seen.length >= 2) sawBoth();
      }
    })();
    await both;
    gateway.close(); // the reader waits for more: close() must end it
    await reading;
    assert.deepEqual(seen, ["x", "y"]);
    await assert.rejects(gateway.call("/kv/range", { key: key("/gw/w") }), EtcdUnavailableError);
  } finally {
    controller.abort();
    gateway.close();
  }
});
