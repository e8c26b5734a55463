import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../errors.js";
import { newAnnotations } from "./annotations.js";

// flannel's annotations_test.go cases, and the rules they pin down.
const cases = [
  { prefix: "flannel.alpha.coreos.com", want: "flannel.alpha.coreos.com/backend-type" },
  { prefix: "flannel.alpha.coreos.com/", want: "flannel.alpha.coreos.com/backend-type" },
  { prefix: "org.com/9", want: "org.com/9-backend-type" },
  { prefix: "org.com/9-", want: "org.com/9-backend-type" },
  { prefix: "a.b.c.d/e_f", want: "a.b.c.d/e_f-backend-type" },
  { prefix: "noslash-but-no-dot", error: /prefix must be in a format/ },
  { prefix: "a.com/b/c", error: /at most single slash/ },
  { prefix: "a.com/UPPER", error: /prefix must be in a format/ },
  { prefix: "", error: /prefix must be in a format/ },
];

for (const tc of cases) {
  test(`newAnnotations(${JSON.stringify(tc.prefix)}) ${tc.error ? "is refused" : `names ${tc.want}`}`, () => {
    if (tc.error !== undefined) {
      assert.throws(
        () => newAnnotations(tc.prefix),
        (err: unknown) => err instanceof ConfigError && tc.error.test(err.message),
      );
    } else {
      assert.equal(newAnnotations(tc.prefix).backendType, tc.want);
    }
  });
}

test("newAnnotations() names every annotation flannel reads or writes", () => {
  const a = newAnnotations("flannel.alpha.coreos.com");
  assert.deepEqual(Object.values(a).sort(), [
    "flannel.alpha.coreos.com/backend-data",
    "flannel.alpha.coreos.com/backend-type",
    "flannel.alpha.coreos.com/backend-v6-data",
    "flannel.alpha.coreos.com/kube-subnet-manager",
    "flannel.alpha.coreos.com/node-public-ip",
    "flannel.alpha.coreos.com/node-public-ipv6",
    "flannel.alpha.coreos.com/public-ip",
    "flannel.alpha.coreos.com/public-ip-overwrite",
    "flannel.alpha.coreos.com/public-ipv6",
    "flannel.alpha.coreos.com/public-ipv6-overwrite",
  ]);
});
