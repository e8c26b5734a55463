// Runs every compiled test file under dist/ with Node's built-in test runner.
// Usage: node scripts/run_tests.js [filter]   (filter: a substring of the test file path)
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const filter = process.argv[2] ?? "";
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".test.js") && path.includes(filter)) files.push(path);
  }
}
for (const dir of ["dist/src", "dist/lab", "dist/test"]) {
  try {
    walk(dir);
  } catch {
    // folder absent
  }
}
files.sort();
if (files.length === 0) {
  console.error(
    `No test files found under dist/${filter ? ` matching "${filter}"` : ""}: run npm run build first`,
  );
  process.exit(1);
}
// A test that hangs fails after 5 minutes; a test file that never exits (an open handle) cannot
// hold the run past 30 minutes.
const DEADLINE_MS = 30 * 60 * 1000;
const args = ["--test", "--test-reporter=spec", "--test-timeout=300000", ...files];
const result = spawnSync(process.execPath, args, {
  stdio: "inherit",
  timeout: DEADLINE_MS,
  killSignal: "SIGKILL",
});
if (result.error !== undefined || result.signal !== null) {
  console.error(
    `The test run did not finish within ${DEADLINE_MS / 60000} minutes: a test file is stuck`,
  );
  process.exit(1);
}
process.exit(result.status ?? 1);
