/** The WebGPU kernel tests' bounds, shared by the page test (Chromium) and the Node one (Dawn). */

/** The page's reports of which optional features its device had: not differences. */
export const FEATURE_KEYS = ["device has subgroups", "device has shader-f16"];

/** Largest |GPU − reference| each kernel may show: f32 sums in another order; GELU/tanh/exp in the GPU's own f32 math. */
export const TOLERANCE: Record<string, number> = {
  "matmul f32": 1e-4,
  "matmul f16": 1e-4,
  "matmul bf16": 1e-4,
  "matmul q8_0": 1e-4,
  "matmul q4_0": 1e-4,
  "matmul q4_k": 1e-4,
  "matmul q5_k": 1e-4,
  "matmul q6_k": 1e-4,
  "matmul f32, 40001 rows": 1e-4,
  "matmul f32, device without optional features": 1e-4,
  "matmul f16, device without optional features": 1e-4,
  "matmul bf16, device without optional features": 1e-4,
  "matmul q8_0, device without optional features": 1e-4,
  "matmul q4_0, device without optional features": 1e-4,
  "embed f32": 1e-6,
  "embed f16": 1e-6,
  "embed q8_0": 1e-6,
  "embed q4_0": 1e-6,
  "embed q4_k": 1e-6,
  "embed q5_k": 1e-6,
  "embed q6_k": 1e-6,
  rmsnorm: 1e-4,
  rope: 1e-4,
  "attention (global, soft-cap 50)": 1e-4,
  "attention (window 5, no soft-cap)": 1e-4,
  "geglu gelu_tanh": 1e-4,
  "geglu gelu_exact": 1e-4,
  softcap: 1e-4,
  add: 1e-6,
};
