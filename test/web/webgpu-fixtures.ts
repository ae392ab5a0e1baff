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
