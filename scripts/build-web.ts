/**
 * The browser build (esbuild, ESM, no Node built-ins): dist/web/ is the chat page that
 * `gemma-ts web` serves (page script, model worker, kernel worker, kernels, HTML, CSS);
 * dist/browser/gemma-ts.js is the library as one module for other pages.
 * Run by `npm run build` (after build:wasm); `--check` fails if anything imports Node built-ins.
 */
import { build, type BuildOptions, type Plugin } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

const root = new URL("../", import.meta.url);
const at = (path: string) => new URL(path, root).pathname;

const common: BuildOptions = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  sourcemap: true,
  logLevel: "warning",
  // A Node built-in reaching the bundle is an error, not a silent shim.
  external: [],
  // @huggingface/gguf's own browser build (its `browser` field, which `exports` hides from esbuild).
  alias: { "@huggingface/gguf": at("node_modules/@huggingface/gguf/dist/browser/index.mjs") },
  plugins: [nodeOnlyBranches()],
};

/**
 * XGrammar's Emscripten loader names `url` and `module` in branches it takes only under Node; in a
 * browser they are never reached, so for that package alone they stay unresolved imports.
 */
function nodeOnlyBranches(): Plugin {
  return {
    name: "xgrammar-node-branches",
    setup(b) {
      b.onResolve({ filter: /^(url|module)$/ }, (args) =>
        args.importer.includes("@mlc-ai/web-xgrammar") ? { path: args.path, external: true } : undefined,
      );
    },
  };
}

await rm(at("dist/web"), { recursive: true, force: true });
await mkdir(at("dist/web"), { recursive: true });
await build({
  ...common,
  entryPoints: {
    app: at("web/app.ts"),
    "runtime-worker": at("src/browser/runtime-worker.ts"),
    "kernel-worker": at("src/browser/kernel-worker.ts"),
  },
  outdir: at("dist/web"),
  minify: true,
  // The grammar engine (1 MB of WebAssembly) is its own chunk, fetched only when a reply has a response format.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
});
await build({ ...common, entryPoints: [at("src/browser/index.ts")], outfile: at("dist/browser/gemma-ts.js") });
for (const file of [
  "web/index.html",
  "web/style.css",
  "wasm/kernels.wasm",
  "wasm/kernels-mt.wasm",
  "wasm/kernels-relaxed.wasm",
  "wasm/kernels-relaxed-mt.wasm",
]) {
  await copyFile(at(file), at(`dist/web/${file.split("/").pop()}`));
}
