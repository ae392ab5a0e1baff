/**
 * Every backward pass against central finite differences in float64 on random inputs: for a loss
 * L = Σ out ⊙ R with a random R, the analytic gradient (backward with dout = R) must match
 * (L(x + h) − L(x − h)) / 2h. Errors are norm-wise relative: ‖analytic − numeric‖ / ‖numeric‖.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfigJson } from "../../src/model/gemma/config.js";
import { Rng } from "../../src/generate/rng.js";
import { crossEntropy, distillation } from "../../src/train/losses.js";
import { TrainableGemma } from "../../src/train/model.js";
import * as ops from "../../src/train/ops.js";
import { tinyGemma2Json } from "../helpers/random-model.js";

/** A Gemma 2 config small enough to check every gradient by finite differences (11 tokens, width 8). */
function gradientCheckConfig(overrides: Record<string, unknown>) {
  const small = { vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_attention_heads: 2, num_key_value_heads: 1 };
  return parseConfigJson(
    JSON.stringify(tinyGemma2Json({ ...small, head_dim: 4, query_pre_attn_scalar: 4, sliding_window: 3, ...overrides })),
  );
}

const rng = new Rng(11);
const random = (n: number, scale = 1) => Float64Array.from({ length: n }, () => scale * (2 * rng.next() - 1));
const H = 1e-5;

/** Norm-wise relative error of the analytic gradient of `loss` at `x` against central differences. */
function check(x: Float64Array, loss: () => number, analytic: Float64Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < x.length; i++) {
    const saved = x[i]!;
    x[i] = saved + H;
    const plus = loss();
    x[i] = saved - H;
    const minus = loss();
    x[i] = saved;
    const numeric = (plus - minus) / (2 * H);
    diff += (analytic[i]! - numeric) ** 2;
    norm += numeric ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-12);
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const errors: Record<string, number> = {};
function expectSmall(name: string, error: number): void {
  errors[name] = error;
  assert.ok(error < 1e-4, `${name}: relative error ${error}`);
}

describe("backward passes against finite differences (float64)", () => {
  it("linear (x·Wᵀ) for x and W", () => {
    const [T, I, O] = [3, 5, 7];
    const x = random(T * I);
    const w = random(O * I);
    const r = random(T * O);
    const linear = new ops.Linear();
    const loss = () => {
      const out = new Float64Array(T * O);
      linear.forward(out, x, w, T, I, O);
      return dot(out, r);
    };
    const dx = new Float64Array(T * I);
    const dw = new Float64Array(O * I);
    linear.backward(dx, dw, r, x, w, T, I, O);
    expectSmall("linear dx", check(x, loss, dx));
    expectSmall("linear dW", check(w, loss, dw));
  });

  it("RMSNorm with (1 + w) for x and w", () => {
    const [T, D] = [3, 6];
    const x = random(T * D);
    const w = random(D, 0.5);
    const r = random(T * D);
    const loss = () => {
      const out = new Float64Array(T * D);
      ops.rmsnormForward(out, new Float64Array(T), x, w, T, D, 1e-6);
      return dot(out, r);
    };
    const out = new Float64Array(T * D);
    const rstd = new Float64Array(T);
    ops.rmsnormForward(out, rstd, x, w, T, D, 1e-6);
    const dx = new Float64Array(T * D);
    const dw = new Float64Array(D);
    ops.rmsnormBackward(dx, dw, r, x, w, rstd, T, D);
    expectSmall("rmsnorm dx", check(x, loss, dx));
    expectSmall("rmsnorm dw", check(w, loss, dw));
  });

  it("RoPE", () => {
    const [T, Hd, D] = [4, 2, 8];
    const invFreq = Float32Array.from({ length: D / 2 }, (_, j) => 10000 ** (-(2 * j) / D));
    const { cos, sin } = ops.ropeTables(T, invFreq);
    const x = random(T * Hd * D);
    const r = random(T * Hd * D);
    const loss = () => {
      const y = Float64Array.from(x);
      ops.rope(y, T, Hd, D, cos, sin);
      return dot(y, r);
    };
    const dx = Float64Array.from(r);
    ops.rope(dx, T, Hd, D, cos, sin, true);
    expectSmall("rope dx", check(x, loss, dx));
  });

  for (const [label, softcap, window] of [
    ["global, soft-capped", 0.7, null],
    ["sliding window 2, soft-capped", 0.7, 2],
    ["no soft-cap", null, null],
  ] as const) {
    it(`attention with GQA (${label}) for q, k and v`, () => {
      const shape: ops.AttentionShape = { tokens: 5, nHeads: 4, nKvHeads: 2, headDim: 3, scale: 0.6, softcap, window };
      const qn = shape.tokens * shape.nHeads * shape.headDim;
      const kn = shape.tokens * shape.nKvHeads * shape.headDim;
      const [q, k, v, r] = [random(qn), random(kn), random(kn), random(qn)];
      const P = shape.nHeads * shape.tokens * shape.tokens;
      const loss = () => {
        const out = new Float64Array(qn);
        ops.attentionForward(out, new Float64Array(P), new Float64Array(P), q, k, v, shape);
        return dot(out, r);
      };
      const probs = new Float64Array(P);
      const capped = new Float64Array(P);
      ops.attentionForward(new Float64Array(qn), probs, capped, q, k, v, shape);
      const [dq, dk, dv] = [new Float64Array(qn), new Float64Array(kn), new Float64Array(kn)];
      ops.attentionBackward(dq, dk, dv, r, probs, capped, q, k, v, shape);
      expectSmall(`attention (${label}) dq`, check(q, loss, dq));
      expectSmall(`attention (${label}) dk`, check(k, loss, dk));
      expectSmall(`attention (${label}) dv`, check(v, loss, dv));
    });
  }

  it("GeGLU with tanh GELU for gate and up", () => {
    const n = 12;
    const [gate, up, r] = [random(n, 3), random(n), random(n)];
    const loss = () => {
      const out = new Float64Array(n);
      ops.gegluForward(out, gate, up, n);
      return dot(out, r);
    };
    const [dg, du] = [new Float64Array(n), new Float64Array(n)];
    ops.gegluBackward(dg, du, r, gate, up, n);
    expectSmall("geglu dgate", check(gate, loss, dg));
    expectSmall("geglu dup", check(up, loss, du));
  });

  it("embedding with the sqrt(d) scale", () => {
    const [V, D] = [6, 4];
    const table = random(V * D);
    const ids = [1, 4, 1, 0];
    const r = random(ids.length * D);
    const loss = () => {
      const out = new Float64Array(ids.length * D);
      ops.embeddingForward(out, table, ids, D, Math.sqrt(D));
      return dot(out, r);
    };
    const dt = new Float64Array(V * D);
    ops.embeddingBackward(dt, r, ids, D, Math.sqrt(D));
    expectSmall("embedding dtable", check(table, loss, dt));
  });

  it("final soft-cap + cross-entropy, and distillation from top-k targets", () => {
    const [T, V, cap] = [3, 9, 2];
    const logits = random(T * V, 4);
    const targets = [2, 8, 0];
    const capped = () => {
      const y = Float64Array.from(logits);
      ops.softcapForward(y, y.length, cap);
      return y;
    };
    const ceLoss = () => crossEntropy(null, capped(), targets, T, V);
    const dce = new Float64Array(T * V);
    crossEntropy(dce, capped(), targets, T, V);
    ops.softcapBackward(dce, capped(), dce.length, cap);
    expectSmall("soft-cap + cross-entropy", check(logits, ceLoss, dce));

    // Top-3 of a teacher distribution (30% of its mass outside them).
    const teacher = {
      k: 3,
      ids: Int32Array.from([0, 4, 7, 8, 1, 2, 5, 6, 3]),
      probs: Float32Array.from([0.4, 0.2, 0.1, 0.5, 0.1, 0.1, 0.3, 0.3, 0.1]),
    };
    const kdLoss = () => distillation(null, capped(), teacher, T, V);
    const dkd = new Float64Array(T * V);
    distillation(dkd, capped(), teacher, T, V);
    ops.softcapBackward(dkd, capped(), dkd.length, cap);
    expectSmall("distillation (top-k + rest bucket)", check(logits, kdLoss, dkd));
  });

  it("the whole Gemma 2 model, every parameter, on a fixture-sized config", () => {
    const config = gradientCheckConfig({ num_hidden_layers: 2, attn_logit_softcapping: 1.5, final_logit_softcapping: 3 });
    const model = new TrainableGemma(config, "f64").initRandom(5, 0.5);
    for (const [name, p] of model.params) if (name.endsWith("norm.weight")) p.set(random(p.length, 0.3));
    const ids = [2, 5, 7, 1, 9];
    const next = [5, 7, 1, 9, 3];
    const teacher = {
      k: 2,
      ids: Int32Array.from(ids.flatMap((id) => [id, (id + 1) % 11])),
      probs: Float32Array.from(ids.flatMap(() => [0.6, 0.3])),
    };
    const target = { nextTokens: next, teacher, alpha: 0.5 };
    const loss = () => {
      const logits = model.logits(ids);
      return 0.5 * crossEntropy(null, logits, next, ids.length, 11) + 0.5 * distillation(null, logits, teacher, ids.length, 11);
    };
    model.zeroGrads();
    model.lossAndBackward(ids, target, 1);
    let worst = 0;
    for (const [name, p] of model.params) {
      const error = check(p as Float64Array, loss, model.grads.get(name) as Float64Array);
      worst = Math.max(worst, error);
      assert.ok(error < 1e-4, `${name}: relative error ${error}`);
    }
    errors["whole model, worst parameter"] = worst;
  });

  it("LoRA adapters (A and B) on a frozen model, with a loss mask", () => {
    const config = gradientCheckConfig({ num_hidden_layers: 1 });
    const model = new TrainableGemma(config, "f64").initRandom(6, 0.5);
    model.addLora(2, 4);
    // B starts at zero (so A's gradient would be zero too): give it values to check both.
    for (const ad of model.adapters.values()) ad.b.set(random(ad.b.length, 0.5));
    const ids = [2, 5, 7, 1];
    const next = [5, 7, 1, 9];
    const mask = [0, 1, 0, 1];
    const loss = () => crossEntropy(null, model.logits(ids), next, ids.length, 11, 1, mask);
    model.zeroGrads();
    model.lossAndBackward(ids, { nextTokens: next, mask }, 1);
    const { params, grads } = model.adapterTensors();
    let worst = 0;
    for (const [name, p] of params) {
      const error = check(p as Float64Array, loss, grads.get(name) as Float64Array);
      worst = Math.max(worst, error);
      assert.ok(error < 1e-4, `${name}: relative error ${error}`);
    }
    errors["LoRA adapters, worst"] = worst;
    assert.ok([...model.grads.values()].every((g) => g.every((v) => v === 0 || !Number.isNaN(v))));
    assert.equal(
      model.grads.get("model.embed_tokens.weight")!.some((v) => v !== 0),
      false,
      "frozen base gets no embedding gradient",
    );
  });

  it("every check ran, all within the 3e-9 docs/distillation.md reports (bound 1e-8)", () => {
    for (const [name, error] of Object.entries(errors)) console.log(`  ${name.padEnd(40)} ${error.toExponential(2)}`);
    assert.ok(Object.keys(errors).length >= 20, `${Object.keys(errors).length} checks recorded`);
    const [worstName, worst] = Object.entries(errors).reduce((a, b) => (b[1] > a[1] ? b : a));
    assert.ok(worst < 1e-8, `${worstName}: relative error ${worst}`);
  });
});
