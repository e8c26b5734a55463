/**
 * systemd's Type=notify: a listener on a real AF_UNIX datagram socket stands in for systemd's
 * notify socket (a path, and an abstract one), and a real flanneld runs in a namespace.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { test } from "node:test";
import { eventually } from "../../lab/poll.js";
import { startNotifyListener } from "../helpers/notify_listener_client.js";
import { openSingleHost } from "../helpers/single_host.js";
import type { SingleHost } from "../helpers/single_host.js";

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}';

/** The listener, in the host's namespace; its datagrams as they come. */
const listen = (host: SingleHost, socket: string, watchFile: string) =>
  startNotifyListener(host.netns, socket, watchFile);

const flags = (host: SingleHost, subnetFile: string) => [
  `--etcd-endpoints=${host.etcd.endpoint}`,
  "--iface=veth0",
  `--subnet-file=${subnetFile}`,
];

test("NOTIFY_SOCKET (a path): READY=1 with a status only once subnet.env exists, a status when etcd is lost, STOPPING=1 on SIGTERM", async () => {
  const host = await openSingleHost("ftsdn");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    const subnetFile = join(host.dir, "run", "subnet.env");
    const socket = join(host.dir, "notify.sock");
    const listener = await listen(host, socket, subnetFile);
    try {
      const daemon = host.flanneld(flags(host, subnetFile), { NOTIFY_SOCKET: socket });
      await eventually(() =>
        Promise.resolve().then(() => {
          assert.ok(listener.messages.some((m) => m.message.startsWith("READY=1\n")));
        }),
      );
      const [ready] = listener.messages;
      assert.ok(ready);
      assert.equal(ready.fileExisted, true, "subnet.env was written before READY=1");
      assert.match(
        ready.message,
        /^READY=1\nSTATUS=Lease 10\.244\.\d+\.0\/24, backend alloc, MTU 1500\nMAINPID=\d+\n$/,
      );
      // etcd gone: the status line says so.
      await host.etcd.stop();
      await eventually(() =>
        Promise.resolve().then(() => {
          assert.ok(
            listener.messages.some((m) =>
              /^STATUS=Lease 10\.244\.\d+\.0\/24; datastore unreachable \(.+\); the data plane stays as it is\n$/.test(
                m.message,
              ),
            ),
            JSON.stringify(listener.messages),
          );
        }),
      );
      daemon.child.kill("SIGTERM");
      assert.equal(await daemon.exited, 0, daemon.output());
      assert.match(listener.messages.at(-1)?.message ?? "", /^STOPPING=1\nSTATUS=Stopping/);
    } finally {
      listener.stop();
    }
  } finally {
    await host.cleanup();
  }
});

test("NOTIFY_SOCKET (abstract @name) and WATCHDOG_USEC: READY=1, then WATCHDOG=1 pings", async () => {
  const host = await openSingleHost("ftsda");
  try {
    await host.etcdctl(["put", "/coreos.com/network/config", CONFIG]);
    const subnetFile = join(host.dir, "subnet.env");
    const socket = `@flannel-ts-test-${randomBytes(6).toString("hex")}`;
    const listener = await listen(host, socket, subnetFile);
    try {
      host.flanneld(flags(host, subnetFile), {
        NOTIFY_SOCKET: socket,
        WATCHDOG_USEC: "200000",
      });
      await eventually(() =>
        Promise.resolve().then(() => {
          const messages = listener.messages.map((m) => m.message);
          assert.ok(messages.some((m) => m.startsWith("READY=1\n")));
          assert.ok(messages.filter((m) => m === "WATCHDOG=1\n").length >= 2);
        }),
      );
    } finally {
      listener.stop();
    }
  } finally {
    await host.cleanup();
  }
});
