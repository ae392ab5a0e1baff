/**
 * Run by webgpu-node.test.ts in its own process: the WebGPU kernel checks of the page test
 * (test/web/webgpu-kernels.page.ts) on Dawn's WebGPU for Node; prints their results as one JSON line.
 */
import { nodeGpu } from "../../src/backend/webgpu/node-gpu.js";

const gpu = await nodeGpu();
// What the page script expects of a browser: navigator.gpu and a window to leave its result on.
Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true });
Object.assign(globalThis, { window: globalThis });
await import("../web/webgpu-kernels.page.js");
const results = await (globalThis as unknown as { webgpuKernels: Promise<unknown> }).webgpuKernels;
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(0);
