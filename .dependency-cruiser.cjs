/**
 * The layer order of docs/architecture.md, checked by dependency-cruiser (`npm run check:layers`,
 * part of `npm test`): a module may import its own layer and the layers below it, never one
 * above, and no import cycle may exist. Type-only imports count too.
 */
const LAYERS = [
  ["errors", "^src/errors\\.ts$"],
  ["file formats and downloads", "^src/(weights|hub)/"],
  ["tokenizer and kernels", "^src/(tokenizer|backend)/"],
  ["model families", "^src/model/"],
  ["generation", "^src/generate/"],
  ["the model facade", "^src/gemma-model\\.ts$"],
  ["evaluation and training", "^src/(eval|train)/"],
  ["the Node front door", "^src/(gemma|bundled)\\.ts$"],
  ["applications", "^src/(server|browser|cli|measure)/|^src/index\\.ts$"],
];

const upward = LAYERS.slice(0, -1).map(([name, path], i) => ({
  name: `no-upward-from-${name.replaceAll(" ", "-")}`,
  comment: `${name} must not import a layer above it (${LAYERS.slice(i + 1).map(([n]) => n).join(", ")})`,
  severity: "error",
  from: { path },
  to: { path: LAYERS.slice(i + 1).map(([, p]) => `(${p})`).join("|") },
}));

module.exports = {
  forbidden: [
    { name: "no-circular", comment: "import cycles make the layering meaningless", severity: "error", from: {}, to: { circular: true } },
    { name: "no-unresolvable", comment: "an import that does not resolve", severity: "error", from: {}, to: { couldNotResolve: true } },
    { name: "no-test-code", comment: "src/ must not import tests or scripts", severity: "error", from: { path: "^src/" }, to: { path: "^(test|scripts|benchmarks)/" } },
    ...upward,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
