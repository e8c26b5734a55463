import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { makeFolder, writeFileAtomic } from "./atomic_write.js";

test("makeFolder() fails with ENOENT naming the folder where the kernel refuses it (/proc)", () => {
  // Synchronous: it returns (here, throws) at once, where Node's recursive mkdir retries forever.
  assert.throws(() => makeFolder("/proc/nope/deeper", 0o755), {
    code: "ENOENT",
    path: "/proc/nope",
  });
});

test("makeFolder() makes the missing levels and accepts a folder that exists", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ftaw-"));
  try {
    makeFolder(join(dir, "a", "b"), 0o700);
    assert.ok((await stat(join(dir, "a", "b"))).isDirectory());
    assert.equal((await stat(join(dir, "a"))).mode & 0o777, 0o700);
    makeFolder(join(dir, "a"), 0o755);
    await writeFile(join(dir, "file"), "x");
    assert.throws(() => makeFolder(join(dir, "file", "c"), 0o755), { code: "ENOTDIR" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("writeFileAtomic() writes into a folder it makes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ftaw-"));
  try {
    writeFileAtomic(join(dir, "x", "f"), "hello", { mode: 0o600 });
    assert.equal(await readFile(join(dir, "x", "f"), "utf8"), "hello");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
