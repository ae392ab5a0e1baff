/**
 * The WebAssembly SIMD backend: matmuls of f32, bf16, f16, Q8_0, Q4_0 and K-quant weights run in
 * AssemblyScript kernels on weights moved into WebAssembly memory (`adopt`), split across worker
 * threads when there are several cores, and so do attention, RecurrentGemma's recurrent branch
 * (convolution, gates, RG-LRU scan by gate block), GeGLU (tanh form) and soft-capping over long
 * rows, RMSNorm and activation quantization over several rows, and quantizing on load. KV caches
 * keep their rows in a shared memory of the backend (kv-arena.ts), where attention reads them in
 * place. Embedding rows of quantized tables, RoPE, residual and bias adds run in WebAssembly on
 * the main thread.
 */
import { ACTIVATION_SPLIT, blockRowBytes, isBlockDtype, isKQuant, PROMPT_TILE, Q4_0, Q8_0, QK } from "../../weights/block-layout.js";
import { matrixRowBytes } from "../../weights/matrix-rows.js";
import { jsKernels } from "../js/index.js";
import { ropeTable } from "../js/elementwise.js";
import type { Kernels, Weight } from "../kernels.js";
import { GemmaError } from "../../errors.js";
import { floatPacked, packedBytes, WasmArena } from "./arena.js";
import { KvArena } from "./kv-arena.js";
import type { WasmHost } from "./host.js";
import { relaxedSimdSupported } from "./features.js";
import { KernelPool } from "./pool.js";
import { streamOutBytes, streamPass } from "./stream-pass.js";
import { BLOCK_KERNEL, floatToWord, type KernelName } from "./pool-protocol.js";

export interface WasmKernelOptions {
  /** The platform: Node (`nodeWasmHost`) or a browser (`browserWasmHost`). */
  host: WasmHost;
  /** Threads for matmuls, the main thread included (default: the number of cores). */
  threads?: number;
  /**
   * Use relaxed SIMD's int8 dot products where the engine has them (default true); false forces
   * the plain SIMD kernels, which give the same integer sums.
   */
  relaxedSimd?: boolean;
}

/** A float matrix's rows as quantizeRows takes them (createWasmKernels' `quantizing`). */
interface Quantizing {
  storedRowBytes: number;
  rowBytes: number;
  chunkRows: number;
  type: number;
  q8: number;
}

interface Placement {
  arena: number;
  ptr: number;
}

/** When a model (and so its kernels) is garbage-collected, its workers are stopped too. */
const poolsOfDroppedKernels = new FinalizationRegistry<KernelPool>((pool) => void pool.terminate());

/** The K-quant kind numbers of assembly/k-quants.ts. */
const K_KIND = { q4_k: 4, q5_k: 5, q6_k: 6 } as const;

/** The matmul kernel of a placed float matrix: over groups of four rows where it is packed so. */
function floatKernel(w: Weight): KernelName {
  const packed = floatPacked(w);
  if (w.dtype === "f32") return packed ? "matmulF32Rows4" : "matmulF32";
  if (w.dtype === "f16") return packed ? "matmulF16Rows4" : "matmulF16";
  return packed ? "matmulBf16Rows4" : "matmulBf16";
}

/** The float kinds of assembly/float-rows.ts embedFloatRow. */
const FLOAT_KIND = { f32: 0, bf16: 1, f16: 2 } as const;

/** Below this many multiply-adds a matmul is not worth waking the workers. */
const MIN_PARALLEL_WORK = 1 << 16;
/** Below this many elements GeGLU and the soft-cap run on the main thread. */
const MIN_PARALLEL_ELEMENTS = 1 << 14;
/** Below this many rows (tokens) RMSNorm and activation quantization run on the main thread. */
const MIN_PARALLEL_ROWS = 4;

export async function createWasmKernels(options: WasmKernelOptions): Promise<Kernels> {
  const { host } = options;
  const threads = Math.max(1, Math.floor(options.threads ?? host.cores()));
  if (!Number.isFinite(threads)) throw new Error(`threads must be a positive integer, found ${options.threads}`);
  const threaded = threads > 1 && host.canShareMemory();
  const relaxed = options.relaxedSimd !== false && relaxedSimdSupported();
  const module = await host.loadModule(threaded, relaxed);
  // Workers start with `ready`, once a model is loaded: kernels used on their own stay single-threaded.
  let pool: KernelPool | null = null;
  const arenas: WasmArena[] = [];
  // KV caches keep their rows here, where attention reads them (needs memory that can be shared).
  const kvArena = host.canShareMemory() ? new KvArena(threaded ? module : await host.loadModule(true, relaxed)) : null;
  const placements = new WeakMap<Weight, Placement>();

  const matmul = (out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void => {
    const placed = placements.get(w);
    if (!placed) {
      jsKernels.matmul(out, x, w, seqLen);
      return;
    }
    const arena = arenas[placed.arena]!;
    const inCount = seqLen * w.cols;
    const outCount = seqLen * w.rows;
    const quantized = isBlockDtype(w.dtype);
    // Room for any activation layout (the split one is the largest: block-layout.ts).
    const quantizedBytes = quantized ? blockRowBytes(ACTIVATION_SPLIT, inCount) : 0;
    // Each thread's prompt tile (Q4_0 over several tokens), 16-byte aligned.
    const tiled = w.dtype === "q4_0" && seqLen >= PROMPT_TILE.minTokens;
    const tileBytes = tiled ? (w.cols / QK) * PROMPT_TILE.blockBytes : 0;
    const xPtr = arena.scratch(4 * (inCount + outCount) + quantizedBytes + threads * tileBytes + 16);
    const outPtr = xPtr + 4 * inCount;
    new Float32Array(arena.memory.buffer, xPtr, inCount).set(x.subarray(0, inCount));
    let input = xPtr;
    let kernel: KernelName = floatKernel(w);
    if (isBlockDtype(w.dtype)) {
      input = outPtr + 4 * outCount;
      // K-quants take activations per 256 values (ACTIVATION_K); Q8_0 and Q4_0 per 32.
      const kind = isKQuant(w.dtype) ? 2 : w.dtype === "q8_0" ? 1 : 0;
      if (pool?.canRun(arena.memory) && seqLen >= MIN_PARALLEL_ROWS) {
        pool.run(arena.memory, arena.kernels, "quantizeActivationTokens", input, xPtr, kind, seqLen, w.cols, 0);
      } else {
        arena.kernels.quantizeActivationTokens(xPtr, input, w.cols, 0, seqLen, kind);
      }
      kernel = BLOCK_KERNEL[w.dtype];
    }
    const tilePtr = (outPtr + 4 * outCount + quantizedBytes + 15) & ~15;
    if (pool?.canRun(arena.memory) && w.rows * w.cols * seqLen >= MIN_PARALLEL_WORK) {
      pool.run(arena.memory, arena.kernels, kernel, outPtr, input, placed.ptr, w.rows, w.cols, seqLen, tilePtr, tileBytes);
    } else {
      arena.kernels[kernel](outPtr, input, placed.ptr, w.rows, w.cols, seqLen, w.rows, tilePtr);
    }
    out.set(new Float32Array(arena.memory.buffer, outPtr, outCount));
  };

  /** Moves matrices into arenas, opening a new one when the current is full. */
  const adopt = (weights: Weight[]): void => {
    for (const w of weights) {
      if (placements.has(w)) continue;
      let arena = arenas.at(-1);
      if (!arena?.fits(packedBytes(w))) {
        arena = new WasmArena(module, threaded);
        arenas.push(arena);
      }
      placements.set(w, { arena: arenas.length - 1, ptr: arena.place(w) });
    }
  };

  /** Source rows per quantization pass: their f32/bf16/f16 copy in scratch stays near 16 MB. */
  const QUANTIZE_CHUNK_BYTES = 16 << 20;

  /** How `quantizeRows` takes a float matrix: bytes per stored and per quantized row, rows per chunk, its type codes. */
  const quantizing = (dtype: Weight["dtype"], target: "q8_0" | "q4_0", cols: number): Quantizing => {
    if (dtype !== "f32" && dtype !== "bf16" && dtype !== "f16") throw new GemmaError(`cannot re-quantize a ${dtype} matrix`);
    const storedRowBytes = cols * (dtype === "f32" ? 4 : 2);
    return {
      storedRowBytes,
      rowBytes: blockRowBytes(target === "q8_0" ? Q8_0 : Q4_0, cols),
      chunkRows: Math.max(1, Math.floor(QUANTIZE_CHUNK_BYTES / storedRowBytes)),
      type: dtype === "f32" ? 0 : dtype === "bf16" ? 1 : 2,
      q8: target === "q8_0" ? 1 : 0,
    };
  };

  /**
   * Quantizes `rows` source rows at src into dst: while a model loads (the pool not yet started) the
   * workers take equal shares of the rows beside the main thread.
   */
  const quantizeShared = async (arena: number, dst: number, src: number, rows: number, cols: number, q: Quantizing) => {
    const { memory } = arenas[arena]!;
    const helpers = pool?.canQuantize(memory) ? pool.threads - 1 : 0;
    const share = Math.ceil(rows / (helpers + 1));
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < helpers && (i + 1) * share < rows; i++) {
      const r = (i + 1) * share;
      const n = Math.min(share, rows - r);
      jobs.push(
        pool!.quantize(i, memory, { dst: dst + r * q.rowBytes, src: src + r * q.storedRowBytes, rows: n, cols, type: q.type, q8: q.q8 }),
      );
    }
    arenas[arena]!.kernels.quantizeRows(dst, src, Math.min(share, rows), cols, q.type, q.q8);
    await Promise.all(jobs);
  };

  /** Quantizes on load in WebAssembly, straight into the arena the matrix will live in. */
  const quantize = (source: Weight, target: "q8_0" | "q4_0"): Weight => {
    const { rows, cols, data } = source;
    const q = quantizing(source.dtype, target, cols);
    const weight: Weight = { dtype: target, rows, cols, data: new Uint8Array(0) };
    const arena = arenaFor(weight);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const ptr = arena.placeFilled(weight, Math.min(rows, q.chunkRows) * q.storedRowBytes, (dst, scratch) => {
      for (let r = 0; r < rows; r += q.chunkRows) {
        const n = Math.min(q.chunkRows, rows - r);
        new Uint8Array(arena.memory.buffer, scratch, n * q.storedRowBytes).set(
          bytes.subarray(r * q.storedRowBytes, (r + n) * q.storedRowBytes),
        );
        arena.kernels.quantizeRows(dst + r * q.rowBytes, scratch, n, cols, q.type, q.q8);
      }
    });
    placements.set(weight, { arena: arenas.indexOf(arena), ptr });
    return weight;
  };

  /** The arena a new matrix goes to: the last one, or a fresh one when it is full. */
  const arenaFor = (weight: Weight): WasmArena => {
    const last = arenas.at(-1);
    if (last?.fits(packedBytes(weight))) return last;
    const arena = new WasmArena(module, threaded);
    arenas.push(arena);
    return arena;
  };

  /** Reads a matrix from its file straight into an arena, quantizing source rows in chunks through scratch. */
  const receive: NonNullable<Kernels["receive"]> = async ({ dtype, rows, cols }, read, quantizeTo) => {
    const weight: Weight = { dtype: quantizeTo ?? dtype, rows, cols, data: new Uint8Array(0) };
    const arena = arenaFor(weight);
    let ptr: number;
    if (!quantizeTo) {
      const bytes = rows * matrixRowBytes(dtype, cols);
      ptr = await arena.placeFilledAsync(weight, 0, (dst) => read(new Uint8Array(arena.memory.buffer, dst, bytes), 0));
    } else {
      const q = quantizing(dtype, quantizeTo, cols);
      const index = arenas.indexOf(arena);
      const chunkBytes = Math.min(rows, q.chunkRows) * q.storedRowBytes;
      // Two chunk buffers: the next chunk is read while this one is quantized.
      ptr = await arena.placeFilledAsync(weight, 2 * chunkBytes, async (dst, scratch) => {
        if (threaded && !pool?.canQuantize(arena.memory)) await ensurePool().register(arenas.map((a) => a.memory));
        const readChunk = (r: number) => {
          const n = Math.min(q.chunkRows, rows - r);
          return read(
            new Uint8Array(arena.memory.buffer, scratch + ((r / q.chunkRows) % 2) * chunkBytes, n * q.storedRowBytes),
            r * q.storedRowBytes,
          );
        };
        let pending = readChunk(0);
        try {
          for (let r = 0; r < rows; r += q.chunkRows) {
            await pending;
            if (r + q.chunkRows < rows) pending = readChunk(r + q.chunkRows);
            const n = Math.min(q.chunkRows, rows - r);
            await quantizeShared(index, dst + r * q.rowBytes, scratch + ((r / q.chunkRows) % 2) * chunkBytes, n, cols, q);
          }
        } finally {
          // A failed quantization must not leave the next read unobserved.
          await pending.catch(() => {});
        }
      });
    }
    placements.set(weight, { arena: arenas.indexOf(arena), ptr });
    return weight;
  };

  /** Rows of a packed table are read by the kernels that know its layout. */
  const embed = (out: Float32Array, table: Weight, ids: ArrayLike<number>, scale: number): void => {
    const placed = placements.get(table);
    const { dtype } = table;
    if (!placed || !(isBlockDtype(dtype) || floatPacked(table))) {
      jsKernels.embed(out, table, ids, scale);
      return;
    }
    const arena = arenas[placed.arena]!;
    const { rows, cols } = table;
    const rowPtr = arena.scratch(4 * cols);
    for (let s = 0; s < ids.length; s++) {
      const id = ids[s]!;
      if (!(Number.isInteger(id) && id >= 0 && id < rows)) throw new GemmaError(`token id ${id} is outside the embedding's ${rows} rows`);
      if (dtype === "f32" || dtype === "bf16" || dtype === "f16")
        arena.kernels.embedFloatRow(rowPtr, placed.ptr, id, rows, cols, FLOAT_KIND[dtype], scale);
      else if (isKQuant(dtype)) arena.kernels.embedKRow(rowPtr, placed.ptr, id, cols, K_KIND[dtype], scale);
      else arena.kernels.embedRow(rowPtr, placed.ptr, id, cols, dtype === "q8_0" ? 1 : 0, scale);
      out.set(new Float32Array(arena.memory.buffer, rowPtr, cols), s * cols);
    }
  };

  /**
   * Runs a kernel in the first arena's scratch: each part is an input copied in or room for that
   * many floats of output (16-byte aligned); afterwards each `back` pair copies a part out into its
   * array. False before any weights are adopted (the reference runs then).
   */
  const onCopies = (
    parts: (Float32Array | number)[],
    run: (arena: WasmArena, ptrs: number[]) => void,
    back: [number, Float32Array][],
  ): boolean => {
    const arena = arenas[0];
    if (!arena) return false;
    const lengths = parts.map((part) => (typeof part === "number" ? part : part.length));
    const base = arena.scratch(4 * lengths.reduce((sum, n) => sum + Math.ceil(n / 4) * 4, 0));
    const memory = new Float32Array(arena.memory.buffer);
    const ptrs: number[] = [];
    let at = base / 4;
    for (const [i, part] of parts.entries()) {
      if (typeof part !== "number") memory.set(part, at);
      ptrs.push(4 * at);
      at += Math.ceil(lengths[i]! / 4) * 4;
    }
    run(arena, ptrs);
    for (const [i, into] of back) into.set(memory.subarray(ptrs[i]! / 4, ptrs[i]! / 4 + lengths[i]!));
    return true;
  };

  /**
   * RMSNorm in WebAssembly on copies of the rows and the gain (the reference's arithmetic, f64
   * sums), rows split between the threads from MIN_PARALLEL_ROWS.
   */
  const rmsnorm: Kernels["rmsnorm"] = (out, x, gain, seqLen, dim, eps) => {
    const arena = arenas[0];
    const n = seqLen * dim;
    if (!arena) return jsKernels.rmsnorm(out, x, gain, seqLen, dim, eps);
    // eps (f64), the rows, their results, the gain.
    const epsAt = arena.scratch(16 + 4 * (2 * n + dim));
    const base = epsAt + 16;
    new Float64Array(arena.memory.buffer, epsAt, 1)[0] = eps;
    const memory = new Float32Array(arena.memory.buffer);
    memory.set(x.subarray(0, n), base / 4);
    memory.set(gain.subarray(0, dim), base / 4 + 2 * n);
    if (pool?.canRun(arena.memory) && seqLen >= MIN_PARALLEL_ROWS) {
      pool.run(arena.memory, arena.kernels, "rmsnormRowsAt", base + 4 * n, base, base + 8 * n, seqLen, dim, epsAt);
    } else {
      arena.kernels.rmsnormRows(base + 4 * n, base, base + 8 * n, seqLen, dim, eps);
    }
    out.set(memory.subarray(base / 4 + n, base / 4 + 2 * n));
  };

  /** Whether an element-wise kernel over n floats in this arena is worth the workers. */
  const elementwiseOnPool = (arena: WasmArena, n: number): boolean => pool?.canRun(arena.memory) === true && n >= MIN_PARALLEL_ELEMENTS;

  const geglu: Kernels["geglu"] = (out, gate, up, n, activation) => {
    const done =
      activation === "gelu_tanh" &&
      onCopies(
        [gate.subarray(0, n), up.subarray(0, n)],
        (arena, [g, u]) =>
          elementwiseOnPool(arena, n)
            ? pool!.run(arena.memory, arena.kernels, "gegluTanh", g!, g!, u!, n, 0, 0)
            : arena.kernels.gegluTanh(g!, g!, u!, n),
        [[0, out]],
      );
    if (!done) jsKernels.geglu(out, gate, up, n, activation);
  };

  const softcap: Kernels["softcap"] = (x, n, cap) => {
    const run = (arena: WasmArena, [p]: number[]) =>
      elementwiseOnPool(arena, n)
        ? pool!.run(arena.memory, arena.kernels, "softcapInPlace", p!, 0, 0, n, floatToWord(cap), 0)
        : arena.kernels.softcapInPlace(p!, n, cap);
    if (!onCopies([x.subarray(0, n)], run, [[0, x]])) jsKernels.softcap(x, n, cap);
  };

  /**
   * Attention in WebAssembly: a KV cache whose rows the KV arena lent is read where it lies (its
   * ring addressed in the kernel); other caches' visible rows are copied in, in position order.
   * The queries, the new keys and values and the output pass through scratch.
   */
  const attention: Kernels["attention"] = (a) => {
    const arena = kvArena ?? arenas[0];
    if (!arena) return jsKernels.attention(a);
    const { seqLen, startPos, nHeads, nKvHeads, headDim, pastCapacity } = a;
    const qWidth = nHeads * headDim;
    const kvWidth = nKvHeads * headDim;
    // The oldest position any of these queries sees.
    const p0 = a.window === null ? 0 : Math.max(0, startPos - a.window + 1);
    const past = startPos - p0;
    if (past > pastCapacity) throw new GemmaError(`attention needs ${past} cached positions but the cache holds ${pastCapacity}`);
    const heldRows = Math.min(startPos, pastCapacity);
    if (a.pastK.length < heldRows * kvWidth || a.pastV.length < heldRows * kvWidth)
      throw new GemmaError(`attention at position ${startPos} needs ${heldRows} cached rows but the cache holds fewer`);
    const rows = past + seqLen;
    const group = nHeads / nKvHeads;
    const items = seqLen * nKvHeads;
    const parallel = pool?.canRun(arena.memory) && seqLen * rows * nHeads * headDim >= MIN_PARALLEL_WORK;
    const threadCount = parallel ? pool!.threads : 1;
    const pastK = kvArena?.pointerOf(a.pastK);
    const pastV = kvArena?.pointerOf(a.pastV);
    const inPlace = pastK !== undefined && pastV !== undefined && past > 0;
    const copiedRows = inPlace ? 0 : past;
    // Parameters (20 words), queries, new keys and values, output, each thread's scores (and key and
    // value row addresses), copied past rows.
    const floats = 20 + 2 * seqLen * qWidth + 2 * seqLen * kvWidth + threadCount * (group + 2) * rows + 2 * copiedRows * kvWidth;
    const base = arena.scratch(4 * floats) / 4;
    const memory = new Float32Array(arena.memory.buffer);
    const words = new Int32Array(arena.memory.buffer);
    const q = base + 20;
    const newK = q + seqLen * qWidth;
    const newV = newK + seqLen * kvWidth;
    const out = newV + seqLen * kvWidth;
    const scores = out + seqLen * qWidth;
    const copiedK = scores + threadCount * (group + 2) * rows;
    const copiedV = copiedK + copiedRows * kvWidth;
    memory.set(a.q.subarray(0, seqLen * qWidth), q);
    memory.set(a.newK.subarray(0, seqLen * kvWidth), newK);
    memory.set(a.newV.subarray(0, seqLen * kvWidth), newV);
    if (!inPlace) {
      // Ring rows p0 % capacity onwards, wrapping to row 0.
      const first = p0 % pastCapacity;
      const before = Math.min(past, pastCapacity - first);
      for (const [from, to] of [
        [a.pastK, copiedK],
        [a.pastV, copiedV],
      ] as const) {
        memory.set(from.subarray(first * kvWidth, (first + before) * kvWidth), to);
        memory.set(from.subarray(0, (past - before) * kvWidth), to + before * kvWidth);
      }
    }
    // In place: position j in ring row j % capacity; copied: row j − p0.
    const [pastKPtr, pastVPtr, capacity, pastOffset] = inPlace
      ? [pastK, pastV, pastCapacity, 0]
      : [copiedK * 4, copiedV * 4, Math.max(1, copiedRows), p0];
    words.set(
      [
        out * 4,
        q * 4,
        pastKPtr,
        pastVPtr,
        scores * 4,
        seqLen,
        startPos,
        p0,
        nHeads,
        nKvHeads,
        headDim,
        0,
        0,
        a.window ?? 0,
        (group + 2) * rows * 4,
        newK * 4,
        newV * 4,
        capacity,
        pastOffset,
      ],
      base,
    );
    memory[base + 11] = a.scale;
    memory[base + 12] = a.softcap ?? 0;
    if (parallel) pool!.run(arena.memory, arena.kernels, "attendItems", 0, base * 4, 0, items, 0, 0);
    else arena.kernels.attendItems(base * 4, 0, items, 0);
    a.out.set(memory.subarray(out, out + seqLen * qWidth));
  };

  /** RoPE in WebAssembly by the reference's own cos/sin table (the same angles, the same f64 steps). */
  const rope: Kernels["rope"] = (x, seqLen, nHeads, headDim, startPos, invFreq) => {
    const half = invFreq.length;
    const table = ropeTable(invFreq, startPos, seqLen);
    const from = (startPos - table.start) * half;
    const rows = [
      x.subarray(0, seqLen * nHeads * headDim),
      table.cos.subarray(from, from + seqLen * half),
      table.sin.subarray(from, from + seqLen * half),
    ];
    const run = ({ kernels: k }: WasmArena, [xp, cos, sin]: number[]) => k.ropeRows(xp!, cos!, sin!, seqLen, nHeads, headDim, half);
    if (!onCopies(rows, run, [[0, x]])) jsKernels.rope(x, seqLen, nHeads, headDim, startPos, invFreq);
  };

  const addInPlace: Kernels["addInPlace"] = (out, x, n) => {
    const run = ({ kernels: k }: WasmArena, [o, xp]: number[]) => k.addRows(o!, xp!, n);
    if (!onCopies([out.subarray(0, n), x.subarray(0, n)], run, [[0, out]])) jsKernels.addInPlace(out, x, n);
  };

  const addBias: Kernels["addBias"] = (x, bias, seqLen, dim) => {
    const rows = [x.subarray(0, seqLen * dim), bias.subarray(0, dim)];
    const run = ({ kernels: k }: WasmArena, [xp, b]: number[]) => k.addBiasRows(xp!, b!, seqLen, dim);
    if (!onCopies(rows, run, [[0, x]])) jsKernels.addBias(x, bias, seqLen, dim);
  };

  /** Model constants of the recurrence (plain arrays of the model), copied into the first arena on first use. */
  const placedArrays = new WeakMap<Float32Array, number>();
  /** `blocks`: the array is that many square blocks, each placed transposed. */
  const placedArray = (arena: WasmArena, values: Float32Array, blocks = 0): number => {
    let ptr = placedArrays.get(values);
    if (ptr === undefined) {
      ptr = arena.placeArray(values);
      if (blocks > 0) transposeBlocks(new Float32Array(arena.memory.buffer, ptr, values.length), blocks);
      placedArrays.set(values, ptr);
    }
    return ptr;
  };

  /**
   * The whole recurrent branch as one job (assembly/kernels.ts recurrenceItems): gate blocks split
   * between the threads, each running its channels' convolution, gates, scan and output gate.
   */
  const recurrence: Kernels["recurrence"] = (a) => {
    const arena = arenas[0];
    if (!arena) return jsKernels.recurrence(a);
    const { seqLen, width, nBlocks, convWidth } = a;
    const n = seqLen * width;
    const past = (convWidth - 1) * width;
    // Placed before the copies: placing grows the arena into what would be their scratch.
    const constants = [a.convWeight, a.convBias, a.inputGateBias, a.recurrentGateBias, a.softplusLambda];
    const [convWeight, convBias, inputGateBias, recurrentGateBias, lambda] = constants.map((c) => placedArray(arena, c));
    // Gate blocks go in as [out, in], so the kernel reads each output's weights in one run.
    const inputGate = placedArray(arena, a.inputGate, nBlocks);
    const recurrentGate = placedArray(arena, a.recurrentGate, nBlocks);
    // Parameters (21 words), x, y, the output, the convolution, the two gates, history, its scratch, state.
    const parts = [24, a.x.subarray(0, n), a.y.subarray(0, n), n, n, n, n, a.history.subarray(0, past), past, a.state.subarray(0, width)];
    const run = ({ memory, kernels: k }: WasmArena, [params, x, y, out, conv, ig, rg, history, historyScratch, state]: number[]) => {
      new Int32Array(memory.buffer).set(
        [out, x, y, conv, ig, rg, convWeight, convBias, history, historyScratch, inputGate, inputGateBias, recurrentGate]
          .concat([recurrentGateBias, lambda, state, seqLen, width, nBlocks, convWidth, a.startPos])
          .map((v) => v!),
        params! / 4,
      );
      // The gates are most of the work: blockWidth² multiply-adds per block and token, twice.
      if (pool?.canRun(memory) && (2 * n * width) / nBlocks >= MIN_PARALLEL_WORK) {
        pool.run(memory, k, "recurrenceItems", 0, params!, 0, nBlocks, 0, 0);
      } else {
        k.recurrenceItems(params!, 0, nBlocks, 0);
      }
    };
    onCopies(parts, run, [
      [3, a.out],
      [7, a.history],
      [9, a.state],
    ]);
  };

  const weightReadGBps = (): number => {
    let best = 0;
    for (let pass = 0; pass < 2; pass++) {
      let bytes = 0;
      const started = performance.now();
      for (const arena of arenas) {
        const [start, end] = arena.weightRange();
        bytes += streamPass(arena, pool, start, end, arena.scratch(streamOutBytes(end - start)));
      }
      const seconds = (performance.now() - started) / 1000;
      if (bytes > 0 && seconds > 0) best = Math.max(best, bytes / seconds / 1e9);
    }
    return best;
  };

  /** The worker pool, made on first need (quantizing on load, or `ready`). */
  const ensurePool = (): KernelPool => {
    if (!pool) {
      pool = KernelPool.create(host, module, threads - 1);
      poolsOfDroppedKernels.register(kernels, pool, kernels);
    }
    return pool;
  };

  /** Hands every arena to the workers and starts them. */
  const ready = async (): Promise<void> => {
    if (!threaded) return;
    const workers = ensurePool();
    await workers.register([...arenas.map((a) => a.memory), ...(kvArena ? [kvArena.memory] : [])]);
    workers.start();
  };

  const release = async (): Promise<void> => {
    const stopping = pool;
    pool = null;
    if (stopping) {
      poolsOfDroppedKernels.unregister(kernels);
      await stopping.terminate();
    }
  };

  const name = `wasm${relaxed ? "-relaxed" : ""}${threaded ? `×${threads}` : ""}`;
  const kernels: Kernels = {
    ...jsKernels,
    name,
    ...(kvArena ? { kvStorage: kvArena } : {}),
    matmul,
    embed,
    rmsnorm,
    geglu,
    softcap,
    rope,
    addInPlace,
    addBias,
    recurrence,
    attention,
    quantize,
    receive,
    adopt,
    ready,
    release,
    weightReadGBps,
  };
  return kernels;
}

/** Transposes each of `nBlocks` square blocks laid end to end, in place. */
function transposeBlocks(values: Float32Array, nBlocks: number): void {
  const size = Math.round(Math.sqrt(values.length / nBlocks));
  for (let base = 0; base < values.length; base += size * size) {
    for (let i = 0; i < size; i++) {
      for (let j = i + 1; j < size; j++) {
        const t = values[base + i * size + j]!;
        values[base + i * size + j] = values[base + j * size + i]!;
        values[base + j * size + i] = t;
      }
    }
  }
}
