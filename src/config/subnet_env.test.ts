import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { IPNet } from "../ip/ip.js";
import {
  formatSubnetEnv,
  parseEnvFile,
  readPreviousSubnets,
  writeSubnetEnv,
} from "./subnet_env.js";

const net = (s: string) => IPNet.parse(s)!;

test("formatSubnetEnv() writes flannel's IPv4 file", () => {
  const text = formatSubnetEnv({
    network: net("10.244.0.0/16"),
    subnet: net("10.244.1.0/24"),
    ipv6Network: null,
    ipv6Subnet: null,
    mtu: 1450,
    ipMasq: true,
  });
  assert.equal(
    text,
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
  );
});

test("formatSubnetEnv() writes flannel's dual-stack file", () => {
  const text = formatSubnetEnv({
    network: net("10.244.0.0/16"),
    subnet: net("10.244.1.0/24"),
    ipv6Network: net("2001:cafe:42::/56"),
    ipv6Subnet: net("2001:cafe:42::/64"),
    mtu: 1500,
    ipMasq: false,
  });
  assert.equal(
    text,
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n",
  );
});

test("writeSubnetEnv() writes atomically with mode 0644 whatever the umask", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-env-"));
  const old = process.umask(0o077);
  try {
    const path = join(dir, "run", "flannel", "subnet.env");
    writeSubnetEnv(path, {
      network: net("10.1.0.0/16"),
      subnet: net("10.1.7.0/24"),
      ipv6Network: null,
      ipv6Subnet: null,
      mtu: 1500,
      ipMasq: false,
    });
    assert.equal((await stat(path)).mode & 0o777, 0o644);
    assert.match(await readFile(path, "utf8"), /FLANNEL_SUBNET=10.1.7.1\/24/);
  } finally {
    process.umask(old);
    await rm(dir, { recursive: true, force: true });
  }
});

test("readPreviousSubnets() reads the subnet back, masked", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-env-"));
  try {
    const path = join(dir, "subnet.env");
    await writeFile(
      path,
      "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.7.1/24\nFLANNEL_IPV6_SUBNET=fd00::1/64\n",
    );
    const previous = readPreviousSubnets(path);
    assert.equal(previous.subnet?.toString(), "10.1.7.0/24");
    assert.equal(previous.ipv6Subnet?.toString(), "fd00::/64");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("readPreviousSubnets() treats a comma list and a missing file as no subnet", async () => {
  const dir = await mkdtemp(join(tmpdir(), "flannel-ts-env-"));
  try {
    const path = join(dir, "subnet.env");
    await writeFile(path, "FLANNEL_SUBNET=10.1.7.1/24,10.2.7.1/24\n");
    assert.equal(readPreviousSubnets(path).subnet, null);
    assert.equal(readPreviousSubnets(join(dir, "absent")).subnet, null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("parseEnvFile() reads comments, export and quotes as godotenv does", () => {
  const env = parseEnvFile('# c\nexport A=1\nB="two words"\nC=3 # trailing\n\nbad line\n');
  assert.deepEqual(
    [...env],
    [
      ["A", "1"],
      ["B", "two words"],
      ["C", "3"],
    ],
  );
});
