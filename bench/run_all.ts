/**
 * `npm run bench`: every bench under dist/bench/, one after another (never two at once on these
 * 2-core machines), each printing its own figures as ratios against a baseline it measures in
 * the same run. Exits non-zero when a bench fails; the last line sums up.
 * Usage: node dist/bench/run_all.js [filter]   (filter: a substring of the bench's name)
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? "";
const benches = readdirSync(here)
  .filter((name) => name.endsWith("_bench.js") && name.includes(filter))
  .sort();
const failed: string[] = [];
for (const bench of benches) {
  process.stdout.write(`\n== ${bench}\n`);
  const result = spawnSync(process.execPath, [join(here, bench)], { stdio: "inherit" });
  if (result.status !== 0) failed.push(`${bench} (${result.signal ?? `exit ${result.status}`})`);
}
process.stdout.write(
  `\n${benches.length - failed.length} benches finished, ${failed.length} failed${failed.length > 0 ? `: ${failed.join(", ")}` : ""}\n`,
);
process.exit(failed.length > 0 ? 1 : 0);
