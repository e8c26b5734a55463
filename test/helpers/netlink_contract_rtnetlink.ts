/**
 * The Netlink contract against the real kernel through RtNetlink. It acts on the namespace it
 * runs in, so test/netns/netlink_contract.test.ts starts it in a namespace of its own:
 *   ip netns exec <ns> node --test dist/test/helpers/netlink_contract_rtnetlink.js
 * Each case gets a fresh underlay (a veth pair with 10.250.0.11/24) and removes its links after.
 */
import { RtNetlink } from "../../src/net/rtnetlink.js";
import { describeNetlink } from "../../src/net/netlink.case.test.js";
import { run } from "../../src/util/exec.js";

describeNetlink("rtnetlink", async () => {
  await run("ip", ["link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]);
  await run("ip", ["addr", "add", "10.250.0.11/24", "dev", "eth0"]);
  await run("ip", ["addr", "add", "fd00:250::11/64", "dev", "eth0", "nodad"]);
  await run("ip", ["link", "set", "eth0", "up"]);
  await run("ip", ["link", "set", "peer0", "up"]);
  const netlink = new RtNetlink();
  const eth0 = await netlink.getLink("eth0");
  if (eth0 === null) throw new Error("eth0 was not made");
  return {
    netlink,
    underlay: { index: eth0.index, ip: "10.250.0.11", ip6: "fd00:250::11" },
    async cleanup() {
      netlink.close();
      await run("ip", ["link", "del", "flannel.1"]).catch(() => undefined);
      await run("ip", ["link", "del", "flannel-v6.1"]).catch(() => undefined);
      await run("ip", ["link", "del", "eth0"]).catch(() => undefined);
      await run("ip", ["route", "flush", "type", "blackhole"]).catch(() => undefined);
    },
  };
});
