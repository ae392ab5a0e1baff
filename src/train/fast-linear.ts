/**
 * The training matmuls (y = x·Wᵀ and the two products of its backward pass) on the WebAssembly
 * SIMD kernels and worker pool that inference uses: operands are copied into a WebAssembly memory's
 * scratch area per call (O(size), small next to the O(m·k·n) product). Float64 arrays (gradient
 * checks) and the js backend use the TypeScript reference.
 */
import { availableParallelism } from "node:os";
import { WasmArena } from "../backend/wasm/arena.js";
import { kernelModule, nodeWasmHost } from "../backend/wasm/node-host.js";
import { KernelPool } from "../backend/wasm/pool.js";
import { Linear, matmulNT, type MatmulNT } from "./ops.js";

/** Below this many multiply-adds the copies cost more than the kernel saves. */
const MIN_WASM_WORK = 1 << 14;

export class NamedLinear extends Linear {
  constructor(
    nt: MatmulNT,
    readonly name: string,
  ) {
    super(nt);
  }
}

export async function trainingLinear(backend: "js" | "wasm", threads = availableParallelism()): Promise<NamedLinear> {
  if (backend === "js") return new NamedLinear(matmulNT, "TypeScript");
  const threaded = threads > 1 && typeof SharedArrayBuffer === "function";
  const module = await kernelModule(threaded);
  const arena = new WasmArena(module, threaded);
  let pool: KernelPool | null = null;
  if (threaded) {
    pool = KernelPool.create(nodeWasmHost, module, threads - 1);
    await pool.register([arena.memory]);
    pool.start();
  }
  const nt: MatmulNT = (out, a, b, m, k, n, accumulate) => {
    if (!(out instanceof Float32Array && a instanceof Float32Array && b instanceof Float32Array) || m * k * n < MIN_WASM_WORK) {
      return matmulNT(out, a, b, m, k, n, accumulate);
    }
    const aPtr = arena.scratch(4 * (m * k + n * k + m * n));
    const bPtr = aPtr + 4 * m * k;
    const outPtr = bPtr + 4 * n * k;
    const memory = arena.memory.buffer as ArrayBuffer;
    new Float32Array(memory, aPtr, m * k).set(a.subarray(0, m * k));
    new Float32Array(memory, bPtr, n * k).set(b.subarray(0, n * k));
    if (pool) pool.run(arena.memory, arena.kernels, "matmulF32", outPtr, aPtr, bPtr, n, k, m);
    else arena.kernels.matmulF32(outPtr, aPtr, bPtr, n, k, m, n);
    const result = new Float32Array(arena.memory.buffer as ArrayBuffer, outPtr, m * n);
    if (accumulate) for (let i = 0; i < m * n; i++) out[i] = out[i]! + result[i]!;
    else out.set(result);
  };
  return new NamedLinear(nt, threaded ? `wasm SIMD × ${threads} threads` : "wasm SIMD");
}
