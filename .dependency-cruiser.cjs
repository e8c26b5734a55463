/**
 * The import rules `npm test` enforces (npm run lint): no cycles between modules, and nothing
 * that ships (src/) importing the lab or the test doubles beside it (lab/). typescript-eslint's
 * no-restricted-imports says the second in the editor too.
 */
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
      from: { path: "^src/", pathNot: "\\.test\\.ts$" },
      to: { path: "^lab/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|node_modules)/" },
  },
};
