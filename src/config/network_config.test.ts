import assert from "node:assert/strict";
import { test } from "node:test";
import { loadNetworkConfig, networkConfigToJson, parseNetworkConfig } from "./network_config.js";

interface Case {
  readonly name: string;
  readonly json: string;
  readonly want?: Record<string, unknown>;
  readonly error?: RegExp;
}

// Defaults and rules of flannel's CheckNetworkConfig, and every error it gives.
const cases: Case[] = [
  {
    name: "gives a /16 network /24 subnets, skipping the first",
    json: '{"Network":"10.3.0.0/16"}',
    want: {
      Network: "10.3.0.0/16",
      SubnetLen: 24,
      SubnetMin: "10.3.1.0",
      SubnetMax: "10.3.255.0",
      BackendType: "udp",
    },
  },
  {
    name: "reads lower-case keys",
    json: '{"network":"10.3.0.0/16","backend":{"type":"vxlan"}}',
    want: { Network: "10.3.0.0/16", BackendType: "vxlan" },
  },
  {
    name: "reads upper-case keys",
    json: '{"NETWORK":"10.3.0.0/16","BACKEND":{"TYPE":"VXLAN"}}',
    want: { Network: "10.3.0.0/16", BackendType: "vxlan" },
  },
  {
    name: "ignores unknown keys",
    json: '{"Network":"10.3.0.0/16","Colour":"blue"}',
    want: { Network: "10.3.0.0/16" },
  },
  {
    name: "masks host bits of Network",
    json: '{"Network":"10.1.2.3/16"}',
    want: { Network: "10.1.0.0/16" },
  },
  {
    name: "gives /24 subnets up to a /22 network",
    json: '{"Network":"10.0.0.0/22"}',
    want: { SubnetLen: 24, SubnetMin: "10.0.1.0", SubnetMax: "10.0.3.0" },
  },
  {
    name: "gives prefix+2 subnets to a /23 network",
    json: '{"Network":"10.0.0.0/23"}',
    want: { SubnetLen: 25 },
  },
  {
    name: "gives /30 subnets to a /28 network",
    json: '{"Network":"10.0.0.0/28"}',
    want: { SubnetLen: 30, SubnetMin: "10.0.0.4", SubnetMax: "10.0.0.12" },
  },
  {
    name: "keeps an explicit SubnetLen",
    json: '{"Network":"10.0.0.0/8","SubnetLen":20}',
    want: { SubnetLen: 20, SubnetMin: "10.0.16.0", SubnetMax: "10.255.240.0" },
  },
  {
    name: "keeps explicit SubnetMin and SubnetMax",
    json: '{"Network":"10.0.0.0/16","SubnetMin":"10.0.10.0","SubnetMax":"10.0.20.0"}',
    want: { SubnetMin: "10.0.10.0", SubnetMax: "10.0.20.0" },
  },
  {
    name: "enables IPv4 by default",
    json: '{"Network":"10.0.0.0/16"}',
    want: { EnableIPv4: true, EnableIPv6: false },
  },
  {
    name: "gives IPv6 /64 subnets in a /48",
    json: '{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}',
    want: {
      IPv6Network: "fc00::/48",
      IPv6SubnetLen: 64,
      IPv6SubnetMin: "fc00:0:0:1::",
      IPv6SubnetMax: "fc00:0:0:ffff::",
    },
  },
  {
    name: "gives IPv6 prefix+2 subnets to a /100",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/100"}',
    want: { IPv6SubnetLen: 102 },
  },
  {
    name: "keeps the Backend object",
    json: '{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan","VNI":4}}',
    want: { Backend: { Type: "vxlan", VNI: 4 } },
  },
  {
    name: "treats null as absent, as Go does",
    json: '{"Network":"10.0.0.0/16","SubnetLen":null,"Backend":null}',
    want: { SubnetLen: 24, BackendType: "udp" },
  },
  // errors, with flannel's words
  {
    name: "rejects a missing Network",
    json: "{}",
    error: /please define a correct Network parameter in the flannel config/,
  },
  {
    name: "rejects SubnetLen above 30",
    json: '{"Network":"10.0.0.0/8","SubnetLen":31}',
    error: /SubnetLen must be less than \/31/,
  },
  {
    name: "rejects fewer than four subnets",
    json: '{"Network":"10.0.0.0/16","SubnetLen":17}',
    error: /network must be able to accommodate at least four subnets/,
  },
  {
    name: "rejects a network smaller than /28",
    json: '{"Network":"10.0.0.0/29"}',
    error: /network is too small. Minimum useful network prefix is \/28/,
  },
  {
    name: "rejects SubnetMin outside Network",
    json: '{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}',
    error: /SubnetMin is not in the range of the Network/,
  },
  {
    name: "rejects SubnetMax outside Network",
    json: '{"Network":"10.0.0.0/16","SubnetMax":"10.1.0.0"}',
    error: /SubnetMax is not in the range of the Network/,
  },
  {
    name: "rejects an unaligned SubnetMin",
    json: '{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.5"}',
    error: /SubnetMin is not on a SubnetLen boundary: 10.0.1.5/,
  },
  {
    name: "rejects an unaligned SubnetMax",
    json: '{"Network":"10.0.0.0/16","SubnetMax":"10.0.1.128"}',
    error: /SubnetMax is not on a SubnetLen boundary: 10.0.1.128/,
  },
  {
    name: "rejects SubnetMin above SubnetMax",
    json: '{"Network":"10.0.0.0/16","SubnetMin":"10.0.9.0","SubnetMax":"10.0.2.0"}',
    error: /SubnetMin 10.0.9.0 is above SubnetMax 10.0.2.0/,
  },
  {
    name: "rejects a missing IPv6Network",
    json: '{"Network":"10.0.0.0/16","EnableIPv6":true}',
    error: /please define a correct IPv6Network parameter in the flannel config/,
  },
  {
    name: "rejects IPv6SubnetLen above 126",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/64","IPv6SubnetLen":127}',
    error: /SubnetLen must be less than \/127/,
  },
  {
    name: "rejects fewer than four IPv6 subnets",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/64","IPv6SubnetLen":65}',
    error: /network must be able to accommodate at least four subnets/,
  },
  {
    name: "rejects an IPv6 network smaller than /124",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/125"}',
    error: /IPv6Network is too small. Minimum useful network prefix is \/124/,
  },
  {
    name: "rejects IPv6SubnetMin outside IPv6Network",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fd00::"}',
    error: /IPv6SubnetMin is not in the range of the IPv6Network/,
  },
  {
    name: "rejects IPv6SubnetMax outside IPv6Network",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fd00::"}',
    error: /IPv6SubnetMax is not in the range of the IPv6Network/,
  },
  {
    name: "rejects an unaligned IPv6SubnetMin",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:1::1"}',
    error: /IPv6SubnetMin is not on a SubnetLen boundary: fc00:0:0:1::1/,
  },
  {
    name: "rejects an unaligned IPv6SubnetMax",
    json: '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMax":"fc00:0:0:1::1"}',
    error: /IPv6SubnetMax is not on a SubnetLen boundary: fc00:0:0:1::1/,
  },
  // decoding errors
  {
    name: "rejects text that is not JSON",
    json: "{Network:",
    error: /Cannot load network config: it is not valid JSON/,
  },
  { name: "rejects JSON that is not an object", json: "[1]", error: /expected a JSON object/ },
  {
    name: "rejects a Network that is not a CIDR",
    json: '{"Network":"10.0.0.0"}',
    error: /Network: "10.0.0.0" is not an IPv4 CIDR/,
  },
  {
    name: "rejects an IPv6 Network",
    json: '{"Network":"fc00::/48"}',
    error: /Network: "fc00::\/48" is not an IPv4 CIDR/,
  },
  {
    name: "rejects a Backend that is not an object",
    json: '{"Network":"10.0.0.0/16","Backend":"vxlan"}',
    error: /Backend: expected an object/,
  },
  {
    name: "rejects a Backend without Type",
    json: '{"Network":"10.0.0.0/16","Backend":{"VNI":1}}',
    error: /Backend: expected a "Type" string/,
  },
  {
    name: "rejects a negative SubnetLen",
    json: '{"Network":"10.0.0.0/16","SubnetLen":-1}',
    error: /SubnetLen: expected a prefix length of 0 or more/,
  },
  {
    name: "rejects a fractional SubnetLen",
    json: '{"Network":"10.0.0.0/16","SubnetLen":24.5}',
    error: /SubnetLen: expected a prefix length/,
  },
  {
    name: "rejects an EnableIPv6 that is not a bool",
    json: '{"Network":"10.0.0.0/16","EnableIPv6":"yes"}',
    error: /EnableIPv6: expected true or false/,
  },
  {
    name: "rejects a SubnetMin that is not an address",
    json: '{"Network":"10.0.0.0/16","SubnetMin":"ten"}',
    error: /SubnetMin: "ten" is not an IPv4 address/,
  },
];

for (const tc of cases) {
  test(`loadNetworkConfig() ${tc.name}`, () => {
    if (tc.error) {
      assert.throws(
        () => loadNetworkConfig(tc.json),
        (err: Error) => {
          assert.equal(err.name, "ConfigError");
          assert.match(err.message, tc.error!);
          return true;
        },
      );
      return;
    }
    const got = networkConfigToJson(loadNetworkConfig(tc.json));
    for (const [key, value] of Object.entries(tc.want ?? {}))
      assert.deepEqual(got[key], value, key);
  });
}

test("parseNetworkConfig() does not apply CheckNetworkConfig (kube mode)", () => {
  const config = parseNetworkConfig('{"Network":"10.0.0.0/30"}');
  assert.equal(config.network?.toString(), "10.0.0.0/30");
  assert.equal(config.subnetLen, 0);
});

test("networkConfigToJson() prints flannel's field names and canonical addresses", () => {
  const got = networkConfigToJson(
    loadNetworkConfig(
      '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"FC00::/48","Backend":{"Type":"vxlan"}}',
    ),
  );
  assert.deepEqual(Object.keys(got), [
    "Network",
    "SubnetLen",
    "SubnetMin",
    "SubnetMax",
    "EnableIPv4",
    "EnableIPv6",
    "IPv6Network",
    "IPv6SubnetLen",
    "IPv6SubnetMin",
    "IPv6SubnetMax",
    "EnableNFTables",
    "BackendType",
    "Backend",
  ]);
  assert.equal(got.IPv6Network, "fc00::/48");
  assert.equal(got.IPv6SubnetMin, "fc00:0:0:1::");
});
