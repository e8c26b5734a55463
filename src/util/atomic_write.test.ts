import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { makeFolder, writeFileAtomic } from "./atomic_write.js";

/** The promise's outcome, or "pending" when it has not settled within `ms`. */
function settledWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([
    promise.then(
      () => "resolved",
      (err: unknown) => err,
    ),
    new Promise((resolve) => setTimeout(() => resolve("pending"), ms).unref()),
  ]);
}

test("makeFolder() fails with ENOENT naming the folder where the kernel refuses it (/proc)", async () => {
  const outcome = await settledWithin(makeFolder("/proc/nope/deeper", 0o755), 20_000);
  assert.ok(outcome instanceof Error, `expected an error, got ${String(outcome)}`);
  assert.equal((outcome as NodeJS.ErrnoException).code, "ENOENT");
  assert.equal((outcome as NodeJS.ErrnoException).path, "/proc/nope");
});

test("makeFolder() makes the missing levels and accepts a folder that exists", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ftaw-"));
  try {
    await makeFolder(join(dir, "a", "b"), 0o700);
    assert.ok((await stat(join(dir, "a", "b"))).isDirectory());
    assert.equal((await stat(join(dir, "a"))).mode & 0o777, 0o700);
    await makeFolder(join(dir, "a"), 0o755);
    await writeFile(join(dir, "file"), "x");
    await assert.rejects(makeFolder(join(dir, "file", "c"), 0o755), { code: "ENOTDIR" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("writeFileAtomic() writes into a folder it makes", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ftaw-"));
  try {
    await writeFileAtomic(join(dir, "x", "f"), "hello", { mode: 0o600 });
    assert.equal(await readFile(join(dir, "x", "f"), "utf8"), "hello");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
