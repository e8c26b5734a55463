import assert from "node:assert/strict";
import { test } from "node:test";
import { hasVxlanChecksumBug } from "../doctor/check_kernel.js";

// txChecksumOffload() on a real device: test/netns/ethtool.test.ts (root, a namespace).
test("the VXLAN checksum bug is taken as present before Linux 5.7 only", () => {
  assert.equal(hasVxlanChecksumBug("4.18.0-348.el8.x86_64"), true);
  assert.equal(hasVxlanChecksumBug("5.6.19"), true);
  assert.equal(hasVxlanChecksumBug("5.7.0"), false);
  assert.equal(hasVxlanChecksumBug("6.18.44-fc"), false);
  assert.equal(hasVxlanChecksumBug("unknown"), false);
});
