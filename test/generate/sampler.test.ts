import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GenerationError } from "../../src/errors.js";
import { Sampler } from "../../src/generate/sampler.js";

/** Draws n samples and counts them per token. */
function histogram(sampler: Sampler, logits: Float32Array, n: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const id = sampler.sample(logits);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

// Probabilities ≈ [0.64, 0.24, 0.09, 0.03] at temperature 1.
const logits = new Float32Array([3, 2, 1, 0]);

describe("sampler", () => {
  it("is greedy at temperature 0", () => {
    assert.equal(new Sampler({ temperature: 0 }).sample(new Float32Array([0.1, 5, -2, 4.9])), 1);
  });

  it("gives the same draws for the same seed and different ones for another", () => {
    const draws = (seed: number) => {
      const sampler = new Sampler({ seed });
      return Array.from({ length: 50 }, () => sampler.sample(logits));
    };
    assert.deepEqual(draws(42), draws(42));
    assert.notDeepEqual(draws(42), draws(43));
  });

  it("samples in proportion to softmax(logits / T)", () => {
    const counts = histogram(new Sampler({ seed: 1 }), logits, 20000);
    const p0 = (counts.get(0) ?? 0) / 20000;
    assert.ok(Math.abs(p0 - 0.6439) < 0.02, `p0 = ${p0}`);
    const hot = histogram(new Sampler({ seed: 1, temperature: 100 }), logits, 20000);
    assert.ok(Math.abs((hot.get(3) ?? 0) / 20000 - 0.25) < 0.03);
  });

  it("top-k keeps only the k best", () => {
    const counts = histogram(new Sampler({ seed: 2, topK: 2 }), logits, 5000);
    assert.deepEqual([...counts.keys()].sort(), [0, 1]);
  });

  it("top-p keeps the smallest set reaching p", () => {
    // 0.64 < 0.8 <= 0.64 + 0.24: tokens 0 and 1.
    const counts = histogram(new Sampler({ seed: 3, topP: 0.8 }), logits, 5000);
    assert.deepEqual([...counts.keys()].sort(), [0, 1]);
    const only = histogram(new Sampler({ seed: 3, topP: 0.5 }), logits, 500);
    assert.deepEqual([...only.keys()], [0]);
  });

  it("min-p drops tokens below p × the top probability", () => {
    // p1/p0 = e^-1 = 0.37, p2/p0 = 0.135: min-p 0.2 keeps 0 and 1.
    const counts = histogram(new Sampler({ seed: 4, minP: 0.2 }), logits, 5000);
    assert.deepEqual([...counts.keys()].sort(), [0, 1]);
  });

  it("presence and frequency penalties push repeated tokens down", () => {
    const sampler = new Sampler({ temperature: 0, frequencyPenalty: 0.6 });
    const flat = new Float32Array([1, 0.9, 0]);
    assert.equal(sampler.sample(flat), 0);
    sampler.observe(0);
    assert.equal(sampler.sample(flat), 1); // 1 - 0.6 < 0.9
    const presence = new Sampler({ temperature: 0, presencePenalty: 0.2 });
    presence.observe(0);
    assert.equal(presence.sample(flat), 1);
  });

  it("repetition penalty divides positive and multiplies negative logits of seen tokens", () => {
    const sampler = new Sampler({ temperature: 0, repetitionPenalty: 2 });
    sampler.observePrompt([0, 2]);
    assert.equal(sampler.sample(new Float32Array([1.5, 1, -0.4, -0.7])), 1); // 1.5/2 = 0.75 < 1
    assert.equal(sampler.sample(new Float32Array([0.1, -5, -0.4, -0.7])), 0);
    assert.equal(sampler.sample(new Float32Array([-2, -5, -0.4, -0.7])), 3); // -0.4·2 = -0.8 < -0.7
  });

  it("keeps no step's penalized logits or weights into the next, and never changes its input", () => {
    // One sampler over steps of different rows and sizes draws what a fresh sampler with the same state draws.
    const options = { seed: 9, repetitionPenalty: 1.5, frequencyPenalty: 0.3, topP: 0.9 };
    const kept = new Sampler(options);
    const rows = [new Float32Array([2, 1, 0.5, -1]), new Float32Array([0, 3, 1, 1, 2]), new Float32Array([-1, 0.2, 4, 0.1])];
    const inputs = rows.map((row) => Float32Array.from(row));
    const history: number[] = [];
    for (const [step, row] of rows.entries()) {
      const fresh = new Sampler(options);
      for (const id of history) {
        fresh.observe(id);
        // Same random stream position: one draw per earlier step.
        fresh.sample(new Float32Array(4));
      }
      const id = kept.sample(row);
      assert.equal(fresh.sample(row), id, `step ${step}`);
      assert.deepEqual(row, inputs[step]);
      kept.observe(id);
      history.push(id);
    }
  });

  it("rejects invalid options by name", () => {
    assert.throws(
      () => new Sampler({ temperature: -1 }),
      (e: unknown) => e instanceof GenerationError && /invalid temperature: -1/.test(e.message),
    );
    assert.throws(() => new Sampler({ topP: 0 }), /invalid topP/);
    assert.throws(() => new Sampler({ topK: 1.5 }), /invalid topK/);
    assert.throws(() => new Sampler({ seed: 1.5 }), /seed must be an integer/);
  });
});
