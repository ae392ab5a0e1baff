// Prompt matmuls over packed Q4_0 weights in tiles of four rows × four tokens (relaxed SIMD builds,
// PROMPT_TILE_MIN_TOKENS tokens or more). Per token chunk, each group of four rows is first
// rewritten into the caller's scratch as f32 scales and its nibbles as bytes, still interleaved by
// row (q4_0-rows.ts): for each 4 values of the block, the four rows' 4 bytes side by side. One
// relaxed dot of that vector with a token's 4 activation bytes repeated (one 32-bit splat load)
// gives the four rows' sums in their own lanes, and each weight vector serves four tokens with no
// nibble unpacking. The integer sums equal the row-wise kernel's exactly and the float steps are
// the same, so the results are bit for bit those of q4_0-rows.ts.
// Q8_0 stays row-wise: its signed weights need two relaxed dots per 16 values either way, and a
// tiled variant (w + 128 as two nibble planes) measured 6% slower (on VNNI hardware).
import {
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  ACTIVATION_BIAS_OFFSET,
  PROMPT_TILE_BLOCK_BYTES,
  PROMPT_TILE_MIN_TOKENS,
  QK,
} from "./block-layout";
import { Q4_0_GROUP_BLOCK_BYTES, scaled } from "./q4_0-rows";
import { halvesToF32, ONES_I16, pairForm, storeRows } from "./simd";

// A repacked block column: 16 bytes of f32 scales, then 8 vectors, one per 4 values of the block
// (the nibbles 0..15; value = q − 8).
const QUANTS_OFFSET: usize = 16;

// Activation bytes a chunk of tokens may take: larger than matmulBlocks' chunks, since each chunk
// repacks every row group once.
const TILE_CHUNK_BYTES: usize = 512 * 1024;

// Whether a Q4_0 matmul over seqLen tokens goes through tiles.
@inline export function tiledFor(seqLen: i32): bool {
  return RELAXED && seqLen >= PROMPT_TILE_MIN_TOKENS;
}

// One packed row group rewritten into tile.
@inline function repackGroup(group: usize, blocks: i32, tile: usize): void {
  const nibble = i8x16.splat(0x0f);
  for (let b = 0; b < blocks; b++) {
    const gb = group + <usize>b * Q4_0_GROUP_BLOCK_BYTES;
    const tb = tile + <usize>b * <usize>PROMPT_TILE_BLOCK_BYTES;
    v128.store(tb, halvesToF32(v128.load16x4_u(gb)));
    // V_k's low nibbles are the rows' values 4k.., its high nibbles 16 + 4k.. (q4_0-rows.ts).
    for (let k: usize = 0; k < 4; k++) {
      const v = v128.load(gb + 8 + (k << 4));
      v128.store(tb + QUANTS_OFFSET + (k << 4), v128.and(v, nibble));
      v128.store(tb + QUANTS_OFFSET + 64 + (k << 4), i8x16.shr_u(v, 4));
    }
  }
}

@inline function dotAdd(x: v128, w: v128, acc: v128): v128 {
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, acc);
}

// One token's integer sums of a repacked block (its 8 weight vectors w0..w7) for the four rows:
// two chains (even and odd 4-value steps) for shorter dependencies, the even one starting from the
// block's bias −8·Σq_x. Every address is the token's block plus a constant, so V8 folds it into
// the load (a loop over the steps cost two address instructions per load).
// D = i16: the pair-sum form (simd.ts), eight 16-bit dots added while they fit (q4_0-rows.ts).
@inline function blockSums<D>(x: usize, w0: v128, w1: v128, w2: v128, w3: v128, w4: v128, w5: v128, w6: v128, w7: v128, ones: v128): v128 {
  const q = x + <usize>ACTIVATION_QUANTS_OFFSET;
  if (pairForm<D>()) {
    let h = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q), w0);
    let g = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 4), w1);
    h = i16x8.add(h, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 8), w2));
    g = i16x8.add(g, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 12), w3));
    h = i16x8.add(h, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 16), w4));
    g = i16x8.add(g, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 20), w5));
    h = i16x8.add(h, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 24), w6));
    g = i16x8.add(g, i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 28), w7));
    return i32x4.add(i32x4.dot_i16x8_s(i16x8.add(h, g), ones), v128.load32_splat(x + <usize>ACTIVATION_BIAS_OFFSET));
  }
  let a = dotAdd(v128.load32_splat(q), w0, v128.load32_splat(x + <usize>ACTIVATION_BIAS_OFFSET));
  let c = dotAdd(v128.load32_splat(q + 4), w1, i32x4.splat(0));
  a = dotAdd(v128.load32_splat(q + 8), w2, a);
  c = dotAdd(v128.load32_splat(q + 12), w3, c);
  a = dotAdd(v128.load32_splat(q + 16), w4, a);
  c = dotAdd(v128.load32_splat(q + 20), w5, c);
  a = dotAdd(v128.load32_splat(q + 24), w6, a);
  c = dotAdd(v128.load32_splat(q + 28), w7, c);
  return i32x4.add(a, c);
}

// Tokens s..s+3 (activation rows xs, xs + xRowBytes, ...) against one repacked row group.
@inline function tile4<D>(out: usize, xs: usize, xRowBytes: usize, tile: usize, blocks: i32, outStride: usize, valid: i32): void {
  const ones = ONES_I16;
  let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    const tb = tile + <usize>b * <usize>PROMPT_TILE_BLOCK_BYTES;
    const x0 = xs + <usize>b * <usize>ACTIVATION_BLOCK_BYTES;
    const x1 = x0 + xRowBytes, x2 = x1 + xRowBytes, x3 = x2 + xRowBytes;
    const w = tb + QUANTS_OFFSET;
    const w0 = v128.load(w), w1 = v128.load(w, 16), w2 = v128.load(w, 32), w3 = v128.load(w, 48);
    const w4 = v128.load(w, 64), w5 = v128.load(w, 80), w6 = v128.load(w, 96), w7 = v128.load(w, 112);
    const scales = v128.load(tb);
    f0 = scaled(f0, blockSums<D>(x0, w0, w1, w2, w3, w4, w5, w6, w7, ones), x0, scales);
    f1 = scaled(f1, blockSums<D>(x1, w0, w1, w2, w3, w4, w5, w6, w7, ones), x1, scales);
    f2 = scaled(f2, blockSums<D>(x2, w0, w1, w2, w3, w4, w5, w6, w7, ones), x2, scales);
    f3 = scaled(f3, blockSums<D>(x3, w0, w1, w2, w3, w4, w5, w6, w7, ones), x3, scales);
  }
  storeRows(out, f0, valid);
  storeRows(out + (outStride << 2), f1, valid);
  storeRows(out + (outStride << 3), f2, valid);
  storeRows(out + 3 * (outStride << 2), f3, valid);
}

// One token against one repacked row group (a chunk's last tokens).
@inline function tile1(out: usize, xs: usize, tile: usize, blocks: i32, valid: i32): void {
  let f = f32x4.splat(0);
  const q = <usize>ACTIVATION_QUANTS_OFFSET;
  for (let b = 0; b < blocks; b++) {
    const tb = tile + <usize>b * <usize>PROMPT_TILE_BLOCK_BYTES;
    const x0 = xs + <usize>b * <usize>ACTIVATION_BLOCK_BYTES;
    let a = v128.load32_splat(x0 + <usize>ACTIVATION_BIAS_OFFSET), c = i32x4.splat(0);
    for (let g: usize = 0; g < 32; g += 8) {
      a = dotAdd(v128.load32_splat(x0 + q + g), v128.load(tb + QUANTS_OFFSET + (g << 2)), a);
      c = dotAdd(v128.load32_splat(x0 + q + g + 4), v128.load(tb + QUANTS_OFFSET + (g << 2) + 16), c);
    }
    f = scaled(f, i32x4.add(a, c), x0, v128.load(tb));
  }
  storeRows(out, f, valid);
}

// The tiled Q4_0 prompt matmul: matmulBlocks' arguments and result, plus this thread's scratch of
// (cols / QK) · PROMPT_TILE_BLOCK_BYTES bytes. D: the dot's form (simd.ts); a chunk's last tokens
// (tile1) keep the 32-bit dot.
export function matmulQ4_0Tiles<D>(
  out: usize,
  xq: usize,
  w: usize,
  rows: i32,
  cols: i32,
  seqLen: i32,
  outStride: i32,
  scratch: usize,
): void {
  const blocks = cols / QK;
  const groupBytes = <usize>blocks * Q4_0_GROUP_BLOCK_BYTES;
  const xRowBytes = <usize>blocks * <usize>ACTIVATION_BLOCK_BYTES;
  const stride = <usize>outStride;
  const chunk = max(4, min(seqLen, <i32>(TILE_CHUNK_BYTES / xRowBytes) & ~3));
  for (let s0 = 0; s0 < seqLen; s0 += chunk) {
    const sEnd = min(seqLen, s0 + chunk);
    for (let r = 0; r < rows; r += 4) {
      repackGroup(w + <usize>(r >> 2) * groupBytes, blocks, scratch);
      const valid = rows - r;
      let s = s0;
      for (; s + 3 < sEnd; s += 4) {
        tile4<D>(out + ((<usize>s * stride + <usize>r) << 2), xq + <usize>s * xRowBytes, xRowBytes, scratch, blocks, stride, valid);
      }
      for (; s < sEnd; s++) tile1(out + ((<usize>s * stride + <usize>r) << 2), xq + <usize>s * xRowBytes, scratch, blocks, valid);
    }
  }
}
