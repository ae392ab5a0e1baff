/**
 * WebGPU in Node through Dawn: the npm package `webgpu`, an optional peer dependency that gemma-ts
 * never installs itself. Experimental: its current version (0.6) crashes now and then (see
 * docs/browser.md); the browser is WebGPU's main home here.
 */
import { GemmaError } from "../../errors.js";

interface DawnModule {
  create(flags: string[]): GPU;
  /** GPUBufferUsage, GPUShaderStage, GPUMapMode...: what a browser has as globals. */
  globals: Record<string, unknown>;
}

/** The package's name, held in a variable so bundlers and type checkers leave the optional import alone. */
const DAWN_PACKAGE = "webgpu";

/** Dawn's `navigator.gpu`, with WebGPU's constants made global as a browser has them. */
export async function nodeGpu(): Promise<GPU> {
  let dawn: DawnModule;
  try {
    dawn = (await import(DAWN_PACKAGE)) as DawnModule;
  } catch (e) {
    throw new GemmaError(
      `the webgpu backend needs Dawn's WebGPU for Node, the optional package \`webgpu\` (npm install webgpu): ${(e as Error).message}`,
    );
  }
  for (const [name, value] of Object.entries(dawn.globals)) if (!(name in globalThis)) Object.assign(globalThis, { [name]: value });
  return dawn.create([]);
}
