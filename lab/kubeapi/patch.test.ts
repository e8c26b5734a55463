import assert from "node:assert/strict";
import { test } from "node:test";
import { PatchError, jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import type { Json } from "./patch.js";

const node: Json = {
  metadata: { name: "h1", annotations: { a: "1", b: "2" } },
  spec: { podCIDR: "10.244.1.0/24", taints: [{ key: "x", effect: "NoSchedule" }] },
  status: {
    conditions: [
      { type: "Ready", status: "True" },
      { type: "MemoryPressure", status: "False" },
    ],
  },
};

const cases: {
  name: string;
  apply: (t: Json, p: Json) => Json;
  patch: Json;
  want?: Json;
  error?: RegExp;
}[] = [
  {
    name: "mergePatch() merges objects and deletes keys set to null (RFC 7386)",
    apply: mergePatch,
    patch: { metadata: { annotations: { a: null, c: "3" } } },
    want: {
      ...(node as object),
      metadata: { name: "h1", annotations: { b: "2", c: "3" } },
    } as Json,
  },
  {
    name: "mergePatch() replaces lists whole",
    apply: mergePatch,
    patch: { status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] } },
    want: {
      ...(node as object),
      status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] },
    } as Json,
  },
  {
    name: "strategicMergePatch() merges status.conditions by type and keeps the others",
    apply: strategicMergePatch,
    patch: {
      status: {
        conditions: [
          { type: "NetworkUnavailable", status: "False" },
          { type: "Ready", status: "False" },
        ],
      },
    },
    want: {
      ...(node as object),
      status: {
        conditions: [
          { type: "Ready", status: "False" },
          { type: "MemoryPressure", status: "False" },
          { type: "NetworkUnavailable", status: "False" },
        ],
      },
    } as Json,
  },
  {
    name: "strategicMergePatch() removes an element with $patch: delete",
    apply: strategicMergePatch,
    patch: { status: { conditions: [{ type: "MemoryPressure", $patch: "delete" }] } },
    want: {
      ...(node as object),
      status: { conditions: [{ type: "Ready", status: "True" }] },
    } as Json,
  },
  {
    name: "strategicMergePatch() ignores $setElementOrder directives",
    apply: strategicMergePatch,
    patch: {
      metadata: { annotations: { c: "3" } },
      status: { "$setElementOrder/conditions": [{ type: "Ready" }] },
    },
    want: {
      ...(node as object),
      metadata: { name: "h1", annotations: { a: "1", b: "2", c: "3" } },
    } as Json,
  },
  {
    name: "strategicMergePatch() refuses a merge-keyed element without its key",
    apply: strategicMergePatch,
    patch: { status: { conditions: [{ status: "False" }] } },
    error: /merge key "type"/,
  },
  {
    name: "jsonPatch() adds, replaces and removes (RFC 6902)",
    apply: jsonPatch,
    patch: [
      { op: "add", path: "/metadata/annotations/c", value: "3" },
      { op: "replace", path: "/spec/podCIDR", value: "10.244.9.0/24" },
      { op: "remove", path: "/metadata/annotations/a" },
      { op: "remove", path: "/spec/taints/0" },
    ],
    want: {
      metadata: { name: "h1", annotations: { b: "2", c: "3" } },
      spec: { podCIDR: "10.244.9.0/24", taints: [] },
      status: (node as { status: Json }).status,
    },
  },
  {
    name: "jsonPatch() escapes ~1 as / in a path, as annotation keys need",
    apply: jsonPatch,
    patch: [
      {
        op: "add",
        path: "/metadata/annotations/flannel.alpha.coreos.com~1public-ip",
        value: "10.0.0.1",
      },
    ],
    want: {
      ...(node as object),
      metadata: {
        name: "h1",
        annotations: { a: "1", b: "2", "flannel.alpha.coreos.com/public-ip": "10.0.0.1" },
      },
    } as Json,
  },
  {
    name: "jsonPatch() fails a failed test operation and changes nothing",
    apply: jsonPatch,
    patch: [
      { op: "add", path: "/metadata/annotations/c", value: "3" },
      { op: "test", path: "/spec/podCIDR", value: "10.0.0.0/24" },
    ],
    error: /Test failed/,
  },
  {
    name: "jsonPatch() refuses a path that does not exist",
    apply: jsonPatch,
    patch: [{ op: "replace", path: "/spec/nothing/here", value: 1 }],
    error: /does not exist/,
  },
];

for (const tc of cases) {
  test(tc.name, () => {
    const before = JSON.stringify(node);
    if (tc.error !== undefined) {
      assert.throws(
        () => tc.apply(node, tc.patch),
        (err: unknown) => err instanceof PatchError && tc.error!.test(err.message),
      );
    } else {
      assert.deepEqual(tc.apply(node, tc.patch), tc.want);
    }
    assert.equal(JSON.stringify(node), before, "the target is not changed in place");
  });
}
