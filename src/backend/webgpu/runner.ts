/**
 * The WebGPU kernels run one at a time from and to CPU arrays: each call uploads its inputs, runs
 * its shader (shaders.ts) and reads the result back. This is what the kernel tests check against
 * the TypeScript reference; a model forward on the GPU keeps its activations and KV cache on the
 * device instead (model/gemma/gpu-forward.ts).
 */
import type { Activation, AttentionArgs, Weight } from "../kernels.js";
import {
  ADD,
  ATTENTION,
  embedShader,
  GEGLU,
  MATMUL_TOKEN_TILE,
  matmulShader,
  RMSNORM,
  ROPE,
  ropeTable,
  ROWS_PER_GRID_X,
  SOFTCAP,
  type ShaderFeatures,
  shaderFeatures,
  usefulFeatures,
} from "./shaders.js";

type Data = Float32Array | Uint16Array | Uint8Array | Uint32Array;

export class GpuKernelRunner {
  private readonly pipelines = new Map<string, GPUComputePipeline>();

  readonly features: ShaderFeatures;

  private constructor(readonly device: GPUDevice) {
    this.features = shaderFeatures(device);
  }

  /**
   * A runner on the first adapter of `gpu` (navigator.gpu); null when there is none. `plain`: a
   * device without the optional features, so the shaders' fallbacks run on any adapter.
   */
  static async create(gpu: GPU, options: { plain?: boolean } = {}): Promise<GpuKernelRunner | null> {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return null;
    const device = await adapter.requestDevice({
      requiredFeatures: options.plain ? [] : usefulFeatures(adapter),
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
    return new GpuKernelRunner(device);
  }

  async matmul(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): Promise<void> {
    const grid = gridFor(w.rows);
    await this.run(
      `matmul-${w.dtype}`,
      () => matmulShader(w.dtype, this.features),
      [out, x, w.data],
      uniforms([w.rows, w.cols, seqLen, w.rows, 0]),
      [grid.x, grid.y, Math.ceil(seqLen / MATMUL_TOKEN_TILE)],
      out,
    );
  }

  async embed(out: Float32Array, table: Weight, ids: ArrayLike<number>, scale: number): Promise<void> {
    const count = ids.length;
    await this.run(
      `embed-${table.dtype}`,
      () => embedShader(table.dtype, this.features),
      [out, Uint32Array.from(ids), table.data],
      uniforms([table.rows, table.cols, count], [scale], [0]),
      [Math.ceil((count * table.cols) / 64), 1, 1],
      out,
    );
  }

  async rmsnorm(out: Float32Array, x: Float32Array, gain: Float32Array, rows: number, dim: number, eps: number): Promise<void> {
    const grid = gridFor(rows);
    await this.run("rmsnorm", () => RMSNORM, [out, x, gain], uniforms([rows, dim], [eps]), [grid.x, grid.y, 1], out);
  }

  async rope(x: Float32Array, seqLen: number, heads: number, headDim: number, startPos: number, invFreq: Float32Array): Promise<void> {
    const half = invFreq.length;
    const n = seqLen * heads * half;
    await this.run(
      "rope",
      () => ROPE,
      [x, ropeTable(seqLen, startPos, invFreq)],
      uniforms([seqLen, heads, headDim, half]),
      [Math.ceil(n / 64), 1, 1],
      x,
    );
  }

  async attention(a: AttentionArgs): Promise<void> {
    const keys = a.startPos + a.seqLen;
    const scratch = new Float32Array(a.seqLen * a.nHeads * keys);
    const params = uniforms(
      [a.seqLen, a.nHeads, a.nKvHeads, a.headDim, a.startPos, a.pastCapacity, a.window ?? 0, keys],
      [a.scale, a.softcap ?? 0],
      [0, 0],
    );
    await this.run(
      "attention",
      () => ATTENTION,
      [a.out, a.q, a.newK, a.newV, nonEmpty(a.pastK), nonEmpty(a.pastV), scratch],
      params,
      [a.nHeads, a.seqLen, 1],
      a.out,
    );
  }

  async geglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number, activation: Activation): Promise<void> {
    await this.run(
      "geglu",
      () => GEGLU,
      [out, gate, up],
      uniforms([n, activation === "gelu_exact" ? 1 : 0]),
      [Math.ceil(n / 64), 1, 1],
      out,
    );
  }

  async softcap(x: Float32Array, n: number, cap: number): Promise<void> {
    await this.run("softcap", () => SOFTCAP, [x], uniforms([n], [cap]), [Math.ceil(n / 64), 1, 1], x);
  }

  async addInPlace(out: Float32Array, x: Float32Array, n: number): Promise<void> {
    await this.run("add", () => ADD, [out, x], uniforms([n]), [Math.ceil(n / 64), 1, 1], out);
  }

  destroy(): void {
    this.device.destroy();
  }

  private pipeline(key: string, source: () => string): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const module = this.device.createShaderModule({ code: source() });
      pipeline = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /**
   * Binds `buffers` (storage, in binding order) and the uniform block after them, dispatches the
   * grid, and reads binding 0 back into `result`.
   */
  private async run(
    key: string,
    source: () => string,
    buffers: Data[],
    params: ArrayBuffer,
    grid: [number, number, number],
    result: Float32Array,
  ): Promise<void> {
    const device = this.device;
    const pipeline = this.pipeline(key, source);
    const storage = buffers.map((data) => {
      const bytes = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
      const buffer = device.createBuffer({
        size: bytes,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      });
      const padded = new Uint8Array(bytes);
      padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      device.queue.writeBuffer(buffer, 0, padded);
      return buffer;
    });
    const uniform = device.createBuffer({ size: params.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(uniform, 0, params);
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [...storage, uniform].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const readback = device.createBuffer({ size: storage[0]!.size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...grid);
    pass.end();
    encoder.copyBufferToBuffer(storage[0]!, 0, readback, 0, storage[0]!.size);
    device.queue.submit([encoder.finish()]);
    await readback.mapAsync(GPUMapMode.READ);
    result.set(new Float32Array(readback.getMappedRange()).subarray(0, result.length));
    readback.unmap();
    for (const buffer of [...storage, uniform, readback]) buffer.destroy();
  }
}

/** Rows over a 2-D grid (x at most ROWS_PER_GRID_X), as the shaders index them. */
export function gridFor(rows: number): { x: number; y: number } {
  return { x: Math.min(rows, ROWS_PER_GRID_X), y: Math.ceil(rows / ROWS_PER_GRID_X) };
}

/** A uniform block: u32 fields, then f32 fields, then more u32 fields, padded to 16 bytes. */
export function uniforms(u32s: number[], f32s: number[] = [], tail: number[] = []): ArrayBuffer {
  const words = u32s.length + f32s.length + tail.length;
  const buffer = new ArrayBuffer(Math.ceil(words / 4) * 16);
  const view = new DataView(buffer);
  for (const [i, v] of u32s.entries()) view.setUint32(i * 4, v, true);
  for (const [i, v] of f32s.entries()) view.setFloat32((u32s.length + i) * 4, v, true);
  for (const [i, v] of tail.entries()) view.setUint32((u32s.length + f32s.length + i) * 4, v, true);
  return buffer;
}

/** WebGPU binds no empty buffer: an empty past (nothing cached yet) binds one zero. */
function nonEmpty(a: Float32Array): Float32Array {
  return a.length > 0 ? a : new Float32Array(1);
}
