import assert from "node:assert/strict";
import { test } from "node:test";
import type { NetworkConfig } from "../config/network_config.js";
import type { ExternalInterface } from "../iface/external_interface.js";
import { IPNet } from "../ip/ip.js";
import type { Lease } from "../lease/lease.js";
import { checkOwnLease } from "./check_leases.js";
import type { HostView } from "./host_view.js";

const extIface: ExternalInterface = {
  name: "eth0",
  index: 2,
  mtu: 1500,
  mac: "02:00:00:00:00:01",
  ifaceAddr: "10.250.0.2",
  ifaceV6Addr: "fd00:250::2",
  ifaceNet: "10.250.0.2/16",
  ifaceV6Net: "fd00:250::2/64",
  extAddr: "10.250.0.2",
  extV6Addr: "fd00:250::2",
};

/** A host view with just what checkOwnLease reads. */
function viewOf(families: { v4: boolean; v6: boolean }, attrs: Partial<Lease["attrs"]>): HostView {
  const own: Lease = {
    subnet: families.v4 ? IPNet.parse("10.244.1.0/24") : null,
    ipv6Subnet: families.v6 ? IPNet.parse("fd00:244:0:1::/64") : null,
    attrs: { publicIP: "", publicIPv6: null, backendType: "vxlan", ...attrs },
    expiration: null,
    reserved: false,
  };
  const config = { enableIPv4: families.v4, enableIPv6: families.v6 } as NetworkConfig;
  return {
    own,
    extIface,
    config,
    options: { subnetLeaseRenewMargin: 60 },
    now: new Date(),
  } as unknown as HostView;
}

const cases = [
  {
    name: "an IPv6-only host whose lease has the interface's IPv6 address is healthy",
    view: viewOf({ v4: false, v6: true }, { publicIPv6: "fd00:250::2" }),
    want: [],
  },
  {
    name: "an IPv6-only lease with another IPv6 address is named",
    view: viewOf({ v4: false, v6: true }, { publicIPv6: "fd00:250::9" }),
    want: [/PublicIPv6 is fd00:250::9, but this host's interface eth0 has fd00:250::2/],
  },
  {
    name: "an IPv4 lease with another PublicIP is named",
    view: viewOf({ v4: true, v6: false }, { publicIP: "10.250.0.9" }),
    want: [/PublicIP is 10\.250\.0\.9, but this host's interface eth0 has 10\.250\.0\.2/],
  },
  {
    name: "a dual-stack lease right in both families is healthy",
    view: viewOf({ v4: true, v6: true }, { publicIP: "10.250.0.2", publicIPv6: "fd00:250::2" }),
    want: [],
  },
];
for (const tc of cases) {
  test(`checkOwnLease(): ${tc.name}`, () => {
    const problems = checkOwnLease(tc.view).findings.map((f) => f.problem);
    assert.equal(problems.length, tc.want.length, problems.join("\n"));
    tc.want.forEach((re, i) => assert.match(problems[i] ?? "", re));
  });
}
