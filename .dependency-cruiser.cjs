/**
 * The import rules `npm test` enforces (npm run lint):
 * - no cycles between modules;
 * - nothing that ships (src/) imports the lab or the test doubles beside it (lab/);
 *   typescript-eslint's no-restricted-imports says so in the editor too;
 * - a folder is used through its interface: from another folder (and from lab/ and bench/),
 *   only its index.ts and the modules that index.ts re-exports may be imported. A folder with
 *   no index.ts (one module, or util/'s toolbox) is all interface. Tests are white-box and may
 *   import what they test.
 */
const { existsSync, readdirSync, readFileSync, statSync } = require("node:fs");
const { join, posix } = require("node:path");

/** Every folder under src/ that has an index.ts, and the modules that index re-exports. */
function interfaceModules(dir = "src") {
  const here = join(__dirname, dir);
  const folders = readdirSync(here).filter((name) => statSync(join(here, name)).isDirectory());
  const nested = folders.flatMap((name) => interfaceModules(posix.join(dir, name)));
  const index = join(here, "index.ts");
  if (dir === "src" || !existsSync(index)) return nested;
  const reexported = [...readFileSync(index, "utf8").matchAll(/from "\.\/([^"]+)\.js"/g)];
  return [...nested, ...reexported.map((m) => posix.join(dir, `${m[1]}.ts`))];
}

const escape = (path) => path.replace(/[.]/g, "\\.");
/** What may be imported from outside a folder: its index.ts, what that re-exports, and the
 * modules of folders that have no index.ts. */
const INTERFACE = [
  "/index\\.ts$",
  ...interfaceModules().map((path) => `^${escape(path)}$`),
  ...readdirSync(join(__dirname, "src"))
    .filter((name) => statSync(join(__dirname, "src", name)).isDirectory())
    .filter((name) => !existsSync(join(__dirname, "src", name, "index.ts")))
    .map((name) => `^src/${name}/[^/]+$`),
];
const NOT_TESTS = "\\.test\\.ts$";
const INTERNALS =
  "Imports another folder's internals: import a module its index.ts re-exports, or add one there";

module.exports = {
  forbidden: [
    {
      name: "no-cycles",
      severity: "error",
      comment: "Modules import each other in a cycle: move what both need into a third module",
      from: { path: "^(src|lab)/" },
      to: { circular: true },
    },
    {
      name: "src-not-to-lab",
      severity: "error",
      comment: "src/ is what ships to a host: it must not import lab/",
      from: { path: "^src/", pathNot: NOT_TESTS },
      to: { path: "^lab/" },
    },
    {
      name: "folder-interface",
      severity: "error",
      comment: INTERNALS,
      from: { path: "^src/([^/]+)/", pathNot: NOT_TESTS },
      to: { path: "^src/[^/]+/", pathNot: ["^src/$1/", ...INTERFACE] },
    },
    {
      name: "subfolder-interface",
      severity: "error",
      comment: `${INTERNALS} (a subfolder too: src/backend/vxlan/ from src/backend/)`,
      from: { path: "^src/[^/]+/[^/]+$", pathNot: NOT_TESTS },
      to: { path: "^src/[^/]+/[^/]+/", pathNot: INTERFACE },
    },
    {
      name: "sibling-subfolder-interface",
      severity: "error",
      comment: INTERNALS,
      from: { path: "^src/([^/]+/[^/]+)/", pathNot: NOT_TESTS },
      to: { path: "^src/[^/]+/[^/]+/", pathNot: ["^src/$1/", ...INTERFACE] },
    },
    {
      name: "lab-uses-interfaces",
      severity: "error",
      comment: `The lab and the benches drive the product through its interfaces. ${INTERNALS}`,
      from: { path: "^(lab|bench)/", pathNot: NOT_TESTS },
      to: { path: "^src/[^/]+/", pathNot: INTERFACE },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|node_modules)/" },
  },
};
