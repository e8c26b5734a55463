import { FakeNetlink } from "./fake_netlink.js";
import { describeNetlink } from "./netlink.case.test.js";

describeNetlink("fake", () => {
  const netlink = new FakeNetlink();
  const index = netlink.addEthernet("eth0", "10.250.0.11", 24);
  return Promise.resolve({
    netlink,
    underlay: { index, ip: "10.250.0.11", ip6: "fd00:250::11" },
    cleanup: () => Promise.resolve(),
  });
});
