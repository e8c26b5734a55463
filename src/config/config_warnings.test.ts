import assert from "node:assert/strict";
import { test } from "node:test";
import { networkConfigWarnings } from "./config_warnings.js";

const cases = [
  {
    name: "a clean config",
    json: { Network: "10.0.0.0/8", Backend: { Type: "vxlan", VNI: 2 } },
    want: [],
  },
  {
    name: "keys in any case, as Go matches them",
    json: { network: "10.0.0.0/8", backend: { type: "vxlan", directrouting: true } },
    want: [],
  },
  {
    name: "DirectRoute in Backend",
    json: { Network: "10.0.0.0/8", Backend: { Type: "vxlan", DirectRoute: true } },
    want: [
      'Network config key "Backend.DirectRoute" is not one flannel knows: did you mean "DirectRouting"?',
    ],
  },
  {
    name: "DirectRoute at the top level",
    json: { Network: "10.0.0.0/8", DirectRoute: true, Backend: { Type: "vxlan" } },
    want: [
      'Network config key "DirectRoute" is ignored at the top level: did you mean "Backend.DirectRouting"?',
    ],
  },
  {
    name: "VNI at the top level",
    json: { Network: "10.0.0.0/8", Vni: 4, Backend: { Type: "vxlan" } },
    want: ['Network config key "Vni" is ignored at the top level: put it in "Backend"'],
  },
  {
    name: "a misspelt Network",
    json: { Netwrok: "10.0.0.0/8", Backend: { Type: "vxlan" } },
    want: ['Network config key "Netwrok" is not one flannel knows: did you mean "Network"?'],
  },
  {
    name: "SubnetLen in Backend",
    json: { Network: "10.0.0.0/8", Backend: { Type: "vxlan", SubnetLen: 26 } },
    want: ['Network config key "Backend.SubnetLen" is ignored: it belongs at the top level'],
  },
  {
    name: "a key unlike any (left alone, as Go does)",
    json: { Network: "10.0.0.0/8", Comment: "prod" },
    want: [],
  },
];
for (const tc of cases) {
  test(`networkConfigWarnings() for ${tc.name}`, () => {
    assert.deepEqual(networkConfigWarnings(tc.json), tc.want);
  });
}
