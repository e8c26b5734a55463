import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../../util/exec.js";
import { generatePrivateKey, loadOrCreateKeys, publicKeyOf } from "./keys.js";

test("publicKeyOf() gives what `wg pubkey` gives, for keys of ours and of `wg genkey`", async () => {
  const ours = generatePrivateKey().toString("base64");
  const theirs = (await run("wg", ["genkey"])).trim();
  for (const key of [ours, theirs]) {
    const expected = (await run("wg", ["pubkey"], { input: key })).trim();
    assert.equal(publicKeyOf(Buffer.from(key, "base64")).toString("base64"), expected);
  }
});

test("loadOrCreateKeys() makes the key file once (0400, in a new folder) and reads it after", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fts-wgkey-"));
  try {
    const path = join(dir, "run/flannel/wgkey");
    const made = await loadOrCreateKeys(path);
    assert.equal(made.created, true);
    assert.equal((await stat(path)).mode & 0o777, 0o400);
    assert.match(
      await readFile(path, "utf8"),
      /^[A-Za-z0-9+/]{43}=$/,
      "base64, as flannel writes it",
    );
    const again = await loadOrCreateKeys(path);
    assert.equal(again.created, false);
    assert.equal(again.publicKey, made.publicKey, "the same key across restarts");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("loadOrCreateKeys() reads flannel's file with a trailing newline, and names a bad one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "fts-wgkey-"));
  try {
    const path = join(dir, "wgkey");
    const key = (await run("wg", ["genkey"])).trim();
    await writeFile(path, `${key}\n`);
    assert.equal((await loadOrCreateKeys(path)).privateKey.toString("base64"), key);
    await writeFile(path, "garbage");
    await assert.rejects(
      loadOrCreateKeys(path),
      /could not parse private key from file .*wgkey: wgtypes/,
    );
    assert.equal(await readFile(path, "utf8"), "garbage", "a bad key file is never overwritten");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
