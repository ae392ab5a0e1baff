/** The fixtures the WebGPU forward test runs in the page (webgpu-forward.page.ts) and checks in Node (webgpu-forward.test.ts). */
export const GPU_FIXTURES = [
  "tiny_a",
  "tiny_b_27blike",
  "g1_tiny",
  "hf_gemma3",
  "hf_gemma4_dense",
  "hf_gemma4_keqv",
  "hf_gemma4_kvshare",
  "hf_gemma4_moe",
] as const;

/** Those also loaded with every matrix split into small buffers and prompts in passes of 3 tokens (each kind of layer once). */
export const SPLIT_FIXTURES: readonly (typeof GPU_FIXTURES)[number][] = [
  "tiny_b_27blike",
  "hf_gemma3",
  "hf_gemma4_kvshare",
  "hf_gemma4_moe",
];

/**
 * Greedy tokens checked per fixture on SwiftShader, where one decode step of these tiny models takes
 * 0.25-0.8 s (its workgroup barriers): 8 still wrap every fixture's sliding-window ring (8 rows at
 * most) once more during decode. The CPU tests check all 16.
 */
export const GPU_GREEDY_TOKENS = 8;
/** Split and chunked: the logits of this prefix (passes of 3, 3 and 2 tokens), then this many greedy tokens after the whole prompt. */
export const SPLIT_PREFIX = 8;
export const SPLIT_GREEDY_TOKENS = 4;
