/** The plain TypeScript backend: the readable reference every faster backend is tested against. */
import type { Kernels } from "../kernels.js";
import { attention } from "./attention.js";
import { addBias, addInPlace, embed, geglu, rmsnorm, rope, softcap } from "./elementwise.js";
import { recurrence } from "./recurrent.js";
import { matmul } from "./matmul.js";

export const jsKernels: Kernels = {
  name: "js",
  matmul,
  rmsnorm,
  rope,
  attention,
  geglu,
  addInPlace,
  softcap,
  embed,
  addBias,
  recurrence,
};
