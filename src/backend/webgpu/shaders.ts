/**
 * The WGSL compute shaders of the WebGPU backend, one per operation of the kernel interface
 * (kernels.ts), all in f32 arithmetic. Weights stay in their stored layout on the device and are
 * widened in the shader: f16 and bf16 two per u32, Q8_0 (34-byte blocks: f16 scale, 32 int8) and
 * Q4_0 (18-byte blocks: f16 scale, 16 bytes of nibbles, low nibbles first) and the K-quants
 * (block-layout.ts) read byte by byte from u32 words, since their blocks are not 4-byte aligned.
 */
import type { MatrixDtype } from "../../weights/dtype.js";

/**
 * Optional device features the shaders use where the device has them: `shader-f16` (f16 weights
 * read as f16 instead of unpacked from u32 words) and `subgroups` (a matmul's per-thread sums
 * added within each subgroup instead of through a tree in workgroup memory).
 */
export interface ShaderFeatures {
  f16: boolean;
  subgroups: boolean;
}

export const PLAIN_SHADERS: ShaderFeatures = { f16: false, subgroups: false };

/** The optional features of `adapter` the shaders can use: request them when making the device. */
export function usefulFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  return (["shader-f16", "subgroups"] as const).filter((f) => adapter.features.has(f));
}

/** What a device made with usefulFeatures lets the shaders use. */
export function shaderFeatures(device: GPUDevice): ShaderFeatures {
  return { f16: device.features.has("shader-f16"), subgroups: device.features.has("subgroups") };
}

/** Rows per dispatch dimension: workgroup counts stop at 65535 per dimension. */
export const ROWS_PER_GRID_X = 32768;

/** cos and sin of every (token, pair) angle, as the reference builds them (f32 angle, exact cos/sin): [seqLen, half, 2]. */
export function ropeTable(seqLen: number, startPos: number, invFreq: Float32Array): Float32Array<ArrayBuffer> {
  const half = invFreq.length;
  const table = new Float32Array(seqLen * half * 2);
  for (let s = 0; s < seqLen; s++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround((startPos + s) * invFreq[j]!);
      table[(s * half + j) * 2] = Math.cos(angle);
      table[(s * half + j) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

const BYTES = /* wgsl */ `
fn byte_at(i: u32) -> u32 { return (w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn f16_at(i: u32) -> f32 { return unpack2x16float(byte_at(i) | (byte_at(i + 1u) << 8u)).x; }
fn i8_at(i: u32) -> f32 { return f32(i32(byte_at(i) << 24u) >> 24u); }
`;

/** The 6-bit scale and min of sub-block j from a Q4_K/Q5_K block's 12 packed bytes at `at`. */
const SCALE_MIN = /* wgsl */ `
fn scale_min(at: u32, j: u32) -> vec2<f32> {
  if (j < 4u) { return vec2<f32>(f32(byte_at(at + j) & 63u), f32(byte_at(at + j + 4u) & 63u)); }
  let sc = (byte_at(at + j + 4u) & 0xfu) | ((byte_at(at + j - 4u) >> 6u) << 4u);
  let m = (byte_at(at + j + 4u) >> 4u) | ((byte_at(at + j) >> 6u) << 4u);
  return vec2<f32>(f32(sc), f32(m));
}
`;

/** A Q4_K (fifthBit false) or Q5_K weight: (d·scale_j)·q − dmin·min_j, as dequantize_row_q*_K. */
function kQuant45(blockBytes: number, quantsOffset: number, fifthBit: boolean): string {
  return `${BYTES}${SCALE_MIN}
fn weight(r: u32, c: u32) -> f32 {
  let at = (r * (p.cols / 256u) + c / 256u) * ${blockBytes}u;
  let i = c % 256u;
  let j = i / 32u;
  let l = i % 32u;
  let packed = byte_at(at + ${quantsOffset}u + 32u * (j / 2u) + l);
  var q = select(packed & 0xfu, packed >> 4u, (j & 1u) == 1u);
  ${fifthBit ? "q = q | (((byte_at(at + 16u + l) >> j) & 1u) << 4u);" : ""}
  let sm = scale_min(at + 4u, j);
  return f16_at(at) * sm.x * f32(q) - f16_at(at + 2u) * sm.y;
}`;
}

/** Dequantized weight (row r, column c) for each stored type. */
const WEIGHT_AT: Record<MatrixDtype, string> = {
  f32: "fn weight(r: u32, c: u32) -> f32 { return bitcast<f32>(w[r * p.cols + c]); }",
  f16: `fn weight(r: u32, c: u32) -> f32 {
  let i = r * p.cols + c;
  let pair = unpack2x16float(w[i >> 1u]);
  return select(pair.x, pair.y, (i & 1u) == 1u);
}`,
  bf16: `fn weight(r: u32, c: u32) -> f32 {
  let i = r * p.cols + c;
  let bits = (w[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
  return bitcast<f32>(bits << 16u);
}`,
  q8_0: `${BYTES}
fn weight(r: u32, c: u32) -> f32 {
  let block = r * (p.cols / 32u) + c / 32u;
  let at = block * 34u;
  return f16_at(at) * i8_at(at + 2u + (c % 32u));
}`,
  q4_0: `${BYTES}
fn weight(r: u32, c: u32) -> f32 {
  let block = r * (p.cols / 32u) + c / 32u;
  let at = block * 18u;
  let i = c % 32u;
  let packed = byte_at(at + 2u + (i % 16u));
  let nibble = select(packed & 0xfu, packed >> 4u, i >= 16u);
  return f16_at(at) * (f32(nibble) - 8.0);
}`,
  q4_k: kQuant45(144, 16, false),
  q5_k: kQuant45(176, 48, true),
  q6_k: `${BYTES}
fn weight(r: u32, c: u32) -> f32 {
  let at = (r * (p.cols / 256u) + c / 256u) * 210u;
  let i = c % 256u;
  let n = i / 128u;
  let k = (i % 128u) / 32u;
  let l = i % 32u;
  let low = byte_at(at + 64u * n + 32u * (k & 1u) + l);
  let high = byte_at(at + 128u + 32u * n + l);
  let q = select(low & 0xfu, low >> 4u, k >= 2u) | (((high >> (2u * k)) & 3u) << 4u);
  return f16_at(at + 208u) * i8_at(at + 192u + i / 16u) * (f32(q) - 32.0);
}`,
};

/** The weight binding and its reader: f16 as f16 where the device has `shader-f16`, every other type as u32 words. */
function weightSource(dtype: keyof typeof WEIGHT_AT, features: ShaderFeatures): { enable: string; binding: string; reader: string } {
  if (dtype === "f16" && features.f16)
    return {
      enable: "enable f16;",
      binding: "@group(0) @binding(2) var<storage, read> w: array<f16>;",
      reader: "fn weight(r: u32, c: u32) -> f32 { return f32(w[r * p.cols + c]); }",
    };
  return { enable: "", binding: "@group(0) @binding(2) var<storage, read> w: array<u32>;", reader: WEIGHT_AT[dtype] };
}

/** Tokens one matmul workgroup takes at once: each dequantized weight is used this many times. */
export const MATMUL_TOKEN_TILE = 8;

/**
 * out[s, row_offset + r] = Σ_c x[s, c] · W[r, c] for the rows of one weight buffer (a matrix
 * larger than a binding is split by rows; `out_rows` is the whole matrix's): one workgroup of 64
 * threads per (row, tile of MATMUL_TOKEN_TILE tokens), each thread a strided share of the columns
 * for every token of its tile, summed in workgroup memory. Each token's sum runs in the same
 * order whatever the tile, so prompts and decode steps give the same numbers.
 */
export function matmulShader(dtype: keyof typeof WEIGHT_AT, features: ShaderFeatures = PLAIN_SHADERS): string {
  const tile = MATMUL_TOKEN_TILE;
  const source = weightSource(dtype, features);
  // Subgroups: each subgroup's sum lands in the slot of its first lane, the others hold zero, and
  // one thread per token adds the 64 slots: no assumption about how lanes map to threads.
  const reduce = features.subgroups
    ? `for (var j = 0u; j < ${tile}u; j++) {
    let sum = subgroupAdd(acc[j]);
    partial[j * 64u + t] = select(0.0, sum, lane == 0u);
  }
  workgroupBarrier();
  if (t < n && r < p.rows) {
    var total = 0.0;
    for (var i = 0u; i < 64u; i++) { total += partial[t * 64u + i]; }
    out[(s0 + t) * p.out_rows + p.row_offset + r] = total;
  }`
    : `for (var j = 0u; j < ${tile}u; j++) { partial[j * 64u + t] = acc[j]; }
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      for (var j = 0u; j < n; j++) { partial[j * 64u + t] += partial[j * 64u + t + stride]; }
    }
    workgroupBarrier();
  }
  if (t < n && r < p.rows) { out[(s0 + t) * p.out_rows + p.row_offset + r] = partial[t * 64u]; }`;
  return /* wgsl */ `${source.enable}
${features.subgroups ? "enable subgroups;" : ""}
struct Params { rows: u32, cols: u32, seq_len: u32, out_rows: u32, row_offset: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${source.binding}
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> partial: array<f32, ${64 * tile}>;
${source.reader}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32${
    features.subgroups ? ", @builtin(subgroup_invocation_id) lane: u32" : ""
  }) {
  let r = wid.y * ${ROWS_PER_GRID_X}u + wid.x;
  let s0 = wid.z * ${tile}u;
  let n = min(${tile}u, p.seq_len - s0);
  var acc: array<f32, ${tile}>;
  if (r < p.rows) {
    for (var c = t; c < p.cols; c += 64u) {
      let wv = weight(r, c);
      for (var j = 0u; j < n; j++) { acc[j] += x[(s0 + j) * p.cols + c] * wv; }
    }
  }
  ${reduce}
}`;
}

/**
 * Rows of the embedding table, scaled: out[s] = table[ids[s]] · scale (any stored type), for the
 * ids whose rows are in this buffer (rows row_start.. of a table split by rows).
 */
export function embedShader(dtype: keyof typeof WEIGHT_AT, features: ShaderFeatures = PLAIN_SHADERS): string {
  const source = weightSource(dtype, features);
  return /* wgsl */ `${source.enable}
struct Params { rows: u32, cols: u32, count: u32, scale: f32, row_start: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
${source.binding}
@group(0) @binding(3) var<uniform> p: Params;
${source.reader}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= p.count * p.cols) { return; }
  let s = i / p.cols;
  let c = i % p.cols;
  let id = ids[s];
  if (id < p.row_start || id - p.row_start >= p.rows) { return; }
  out[i] = weight(id - p.row_start, c) * p.scale;
}`;
}

/** Gemma RMSNorm per row: out = x / sqrt(mean(x²) + eps) · gain; one workgroup per row. */
export const RMSNORM = /* wgsl */ `
struct Params { rows: u32, dim: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gain: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wid.y * ${ROWS_PER_GRID_X}u + wid.x;
  var acc = 0.0;
  if (row < p.rows) {
    for (var c = t; c < p.dim; c += 64u) { let v = x[row * p.dim + c]; acc += v * v; }
  }
  partial[t] = acc;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  if (row >= p.rows) { return; }
  let inv = inverseSqrt(partial[0] / f32(p.dim) + p.eps);
  for (var c = t; c < p.dim; c += 64u) { out[row * p.dim + c] = x[row * p.dim + c] * inv * gain[c]; }
}`;

/**
 * Rotary embedding in place on [seqLen, heads·headDim]: pairs (j, j + half) of the first 2·half
 * dims of each head turn by the angle of token s and pair j, whose cosine and sine come in a
 * table [seqLen, half, 2] computed on the CPU (ropeTable): GPUs' sin/cos are approximations
 * (SwiftShader's err by 1e-4), and attention magnifies that.
 */
export const ROPE = /* wgsl */ `
struct Params { seq_len: u32, heads: u32, head_dim: u32, half: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= p.seq_len * p.heads * p.half) { return; }
  let j = i % p.half;
  let head = (i / p.half) % p.heads;
  let s = i / (p.half * p.heads);
  let base = s * p.heads * p.head_dim + head * p.head_dim;
  let c = table[(s * p.half + j) * 2u];
  let sn = table[(s * p.half + j) * 2u + 1u];
  let a = x[base + j];
  let b = x[base + j + p.half];
  x[base + j] = a * c - b * sn;
  x[base + j + p.half] = b * c + a * sn;
}`;

/**
 * Attention of one (token, query head) per workgroup over cached + new keys: scores (scale, then
 * soft-cap, then the causal / sliding-window mask) into a scratch row, softmax in f32, then the
 * weighted sum of values with the threads over head_dim. Position j < startPos is in the past
 * ring (row j % capacity), later ones in the new rows.
 */
export const ATTENTION = /* wgsl */ `
struct Params {
  seq_len: u32, heads: u32, kv_heads: u32, head_dim: u32,
  start_pos: u32, capacity: u32, window: u32, keys: u32,
  scale: f32, softcap: f32, pad0: u32, pad1: u32,
}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> new_k: array<f32>;
@group(0) @binding(3) var<storage, read> new_v: array<f32>;
@group(0) @binding(4) var<storage, read> past_k: array<f32>;
@group(0) @binding(5) var<storage, read> past_v: array<f32>;
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;

fn key_at(j: u32, kv: u32, d: u32) -> f32 {
  let width = p.kv_heads * p.head_dim;
  if (j < p.start_pos) { return past_k[(j % p.capacity) * width + kv * p.head_dim + d]; }
  return new_k[(j - p.start_pos) * width + kv * p.head_dim + d];
}
fn value_at(j: u32, kv: u32, d: u32) -> f32 {
  let width = p.kv_heads * p.head_dim;
  if (j < p.start_pos) { return past_v[(j % p.capacity) * width + kv * p.head_dim + d]; }
  return new_v[(j - p.start_pos) * width + kv * p.head_dim + d];
}
fn reduce(t: u32, is_max: bool) -> f32 {
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) {
      partial[t] = select(partial[t] + partial[t + stride], max(partial[t], partial[t + stride]), is_max);
    }
    workgroupBarrier();
  }
  let result = partial[0];
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let h = wid.x;
  let s = wid.y;
  let pos = p.start_pos + s;
  var first = 0u;
  if (p.window > 0u && pos + 1u > p.window) { first = pos + 1u - p.window; }
  let kv = h / (p.heads / p.kv_heads);
  let q_base = s * p.heads * p.head_dim + h * p.head_dim;
  let row = (s * p.heads + h) * p.keys;
  var local_max = -3.4e38;
  for (var j = first + t; j <= pos; j += 64u) {
    var dot = 0.0;
    for (var d = 0u; d < p.head_dim; d++) { dot += q[q_base + d] * key_at(j, kv, d); }
    var score = dot * p.scale;
    if (p.softcap > 0.0) { score = p.softcap * tanh(score / p.softcap); }
    scores[row + j - first] = score;
    local_max = max(local_max, score);
  }
  partial[t] = local_max;
  let m = reduce(t, true);
  var local_sum = 0.0;
  for (var j = first + t; j <= pos; j += 64u) {
    let e = exp(scores[row + j - first] - m);
    scores[row + j - first] = e;
    local_sum += e;
  }
  partial[t] = local_sum;
  let total = reduce(t, false);
  storageBarrier();
  for (var d = t; d < p.head_dim; d += 64u) {
    var acc = 0.0;
    for (var j = first; j <= pos; j++) { acc += scores[row + j - first] * value_at(j, kv, d); }
    out[q_base + d] = acc / total;
  }
}`;

/** out[i] = act(gate[i]) · up[i]; tanh GELU (activation 0) or exact GELU (1, erf by its series). */
export const GEGLU = /* wgsl */ `
struct Params { n: u32, exact: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
fn erf_approx(x: f32) -> f32 {
  // Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7).
  let s = sign(x);
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return s * y;
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let i = g.x;
  if (i >= p.n) { return; }
  let v = gate[i];
  var a: f32;
  if (p.exact == 1u) { a = 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752)); }
  else {
    let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    // v / (1 + e^(-2u)) equals 0.5·v·(1 + tanh(u)) and never overflows tanh.
    a = v / (1.0 + exp(-2.0 * u));
  }
  out[i] = a * up[i];
}`;

/** x[i] = cap · tanh(x[i] / cap). */
export const SOFTCAP = /* wgsl */ `
struct Params { n: u32, cap: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.n) { return; }
  x[g.x] = p.cap * tanh(x[g.x] / p.cap);
}`;

/** out[i] += x[i]. */
export const ADD = /* wgsl */ `
struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.n) { return; }
  out[g.x] += x[g.x];
}`;

/** x[i] *= s: Gemma 4's layer scalars and the per-layer inputs' fixed scales. */
export const SCALE = /* wgsl */ `
struct Params { n: u32, s: f32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.n) { return; }
  x[g.x] = x[g.x] * p.s;
}`;

/** out[r, c] = src[r · stride + offset + c]: one layer's slice of Gemma 4's per-layer inputs [tokens, layers · width]. */
export const SLICE = /* wgsl */ `
struct Params { rows: u32, width: u32, stride: u32, offset: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.rows * p.width) { return; }
  let r = g.x / p.width;
  out[g.x] = src[r * p.stride + p.offset + g.x % p.width];
}`;

/** x[t, j] = (x[t, j] · v[j]) · s: the MoE router's input scale (per channel, then d^-0.5). */
export const SCALE_CHANNELS = /* wgsl */ `
struct Params { n: u32, width: u32, s: f32, pad0: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.n) { return; }
  x[g.x] = (x[g.x] * v[g.x % p.width]) * p.s;
}`;

/** The most experts a token may pick on the GPU (the top-k shader's arrays). */
export const MAX_TOP_K = 16;

/**
 * Per token, the top k experts under a softmax of its router scores (ties: lower index first),
 * written in expert order with weight = probability / Σ chosen probabilities · per-expert scale.
 */
export const TOP_K = /* wgsl */ `
struct Params { tokens: u32, experts: u32, k: u32, pad0: u32 }
@group(0) @binding(0) var<storage, read_write> chosen: array<u32>;
@group(0) @binding(1) var<storage, read_write> weights: array<f32>;
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read> expert_scale: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let t = g.x;
  if (t >= p.tokens) { return; }
  let base = t * p.experts;
  var m = scores[base];
  for (var e = 1u; e < p.experts; e++) { m = max(m, scores[base + e]); }
  var total = 0.0;
  for (var e = 0u; e < p.experts; e++) { total += exp(scores[base + e] - m); }
  var picked: array<u32, ${MAX_TOP_K}>;
  var prob: array<f32, ${MAX_TOP_K}>;
  var sum = 0.0;
  for (var i = 0u; i < p.k; i++) {
    var best = p.experts;
    for (var e = 0u; e < p.experts; e++) {
      var taken = false;
      for (var j = 0u; j < i; j++) { if (picked[j] == e) { taken = true; } }
      if (!taken && (best == p.experts || scores[base + e] > scores[base + best])) { best = e; }
    }
    picked[i] = best;
    prob[i] = exp(scores[base + best] - m) / total;
    sum += prob[i];
  }
  // In expert order, as the CPU sums them.
  for (var i = 1u; i < p.k; i++) {
    var j = i;
    while (j > 0u && picked[j - 1u] > picked[j]) {
      let e = picked[j]; picked[j] = picked[j - 1u]; picked[j - 1u] = e;
      let q = prob[j]; prob[j] = prob[j - 1u]; prob[j - 1u] = q;
      j--;
    }
  }
  for (var i = 0u; i < p.k; i++) {
    chosen[t * p.k + i] = picked[i];
    weights[t * p.k + i] = prob[i] / sum * expert_scale[picked[i]];
  }
}`;

/**
 * One expert's matmul per (token, slot): out[slot, r] = Σ_c x[row, c] · W_e[r, c] where e =
 * chosen[slot] and W holds experts first_expert.. of a layer's experts stacked by rows (a part of
 * them when they exceed a binding); x's row is the slot's (x_per_slot) or its token's (slot / k).
 */
export function expertMatmulShader(dtype: keyof typeof WEIGHT_AT, features: ShaderFeatures = PLAIN_SHADERS): string {
  const source = weightSource(dtype, features);
  return /* wgsl */ `${source.enable}
struct Params { rows: u32, cols: u32, slots: u32, first_expert: u32, experts: u32, x_per_slot: u32, k: u32, pad0: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
${source.binding}
@group(0) @binding(3) var<storage, read> chosen: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;
${source.reader}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let r = wid.y * ${ROWS_PER_GRID_X}u + wid.x;
  let slot = wid.z;
  let e = chosen[slot];
  let live = r < p.rows && e >= p.first_expert && e < p.first_expert + p.experts;
  let xr = select(slot / p.k, slot, p.x_per_slot == 1u);
  var acc = 0.0;
  if (live) {
    let wr = (e - p.first_expert) * p.rows + r;
    for (var c = t; c < p.cols; c += 64u) { acc += x[xr * p.cols + c] * weight(wr, c); }
  }
  partial[t] = acc;
  workgroupBarrier();
  for (var stride = 32u; stride > 0u; stride >>= 1u) {
    if (t < stride) { partial[t] += partial[t + stride]; }
    workgroupBarrier();
  }
  if (t == 0u && live) { out[slot * p.rows + r] = partial[0]; }
}`;
}

/** out[t, j] = Σ_i weights[t·k + i] · y[(t·k + i), j]: the chosen experts' outputs, weighted. */
export const COMBINE_EXPERTS = /* wgsl */ `
struct Params { tokens: u32, width: u32, k: u32, pad0: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x >= p.tokens * p.width) { return; }
  let t = g.x / p.width;
  let j = g.x % p.width;
  var sum = 0.0;
  for (var i = 0u; i < p.k; i++) { sum += weights[t * p.k + i] * y[(t * p.k + i) * p.width + j]; }
  out[g.x] = sum;
}`;
