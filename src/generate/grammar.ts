/**
 * Constrained decoding: at each step the tokens a grammar forbids get logit -Infinity, so the
 * reply is valid by construction (a JSON Schema, any JSON object, or an EBNF grammar). The grammar
 * engine is XGrammar compiled to WebAssembly (@mlc-ai/web-xgrammar, as web-llm uses it): it
 * precomputes which tokens each grammar state accepts, so a step's mask costs well under a
 * millisecond on a 256k vocabulary (docs/performance.md).
 */
import type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from "@mlc-ai/web-xgrammar";
import { GenerationError } from "../errors.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import type { ResponseFormat } from "./response-format.js";

type XGrammar = typeof import("@mlc-ai/web-xgrammar");

let loading: Promise<XGrammar> | null = null;

/**
 * The package is a UMD bundle in a "type": "module" package: under Node its loader reaches for a
 * CommonJS `require` and `__filename` while it starts. They are lent to it for that moment only.
 */
function loadXGrammar(): Promise<XGrammar> {
  loading ??= (async () => {
    const g = globalThis as Record<string, unknown>;
    const proc = g["process"] as { getBuiltinModule?(id: string): unknown; cwd?(): string } | undefined;
    const nodeModule = proc?.getBuiltinModule?.("node:module") as { createRequire(path: string): unknown } | undefined;
    const lent: string[] = [];
    if (nodeModule && proc?.cwd) {
      const here = `${proc.cwd()}/xgrammar-loader.js`;
      for (const [name, value] of [
        ["require", nodeModule.createRequire(here)],
        ["__filename", here],
      ] as const) {
        if (g[name] !== undefined) continue;
        g[name] = value;
        lent.push(name);
      }
    }
    try {
      await import("@mlc-ai/web-xgrammar");
      const xg = g["xgrammar"] as XGrammar | undefined;
      if (!xg) throw new GenerationError("the grammar engine (@mlc-ai/web-xgrammar) did not load");
      // Its WebAssembly starts on first use: do that while the loans are in place.
      (await xg.TokenizerInfo.createTokenizerInfo(["a"], "raw")).dispose();
      return xg;
    } finally {
      for (const name of lent) delete g[name];
    }
  })();
  loading.catch(() => (loading = null));
  return loading;
}

/** Compilers per tokenizer and stop-token set: building one walks the whole vocabulary (about 0.3 s for 256k). */
const compilers = new WeakMap<GemmaTokenizer, Map<string, Promise<GrammarCompiler>>>();

function compilerFor(
  xg: XGrammar,
  tokenizer: GemmaTokenizer,
  stopTokenIds: readonly number[],
  vocabSize: number,
): Promise<GrammarCompiler> {
  let byStops = compilers.get(tokenizer);
  if (!byStops) {
    byStops = new Map();
    compilers.set(tokenizer, byStops);
  }
  const key = `${vocabSize}:${[...stopTokenIds].sort((a, b) => a - b).join(",")}`;
  let compiler = byStops.get(key);
  if (!compiler) {
    compiler = (async () => {
      const info: TokenizerInfo = await xg.TokenizerInfo.createTokenizerInfo(
        grammarVocabulary(tokenizer),
        "byte_fallback",
        false,
        // The model's vocabulary: ids past the tokenizer's (padding) are never allowed.
        Math.max(vocabSize, tokenizer.vocabSize),
        [...stopTokenIds],
      );
      return xg.GrammarCompiler.createGrammarCompiler(info);
    })();
    byStops.set(key, compiler);
  }
  return compiler;
}

/**
 * The vocabulary as XGrammar reads a SentencePiece one (▁ for space, <0xNN> byte pieces); control
 * tokens (<start_of_turn>, <eos>, ...) as empty strings, which XGrammar never lets into text.
 */
function grammarVocabulary(tokenizer: GemmaTokenizer): string[] {
  const pieces: string[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const piece = tokenizer.idToToken(id) ?? "";
    const maybeControl = piece.startsWith("<") && piece.endsWith(">") && !/^<0x[0-9A-Fa-f]{2}>$/.test(piece);
    pieces.push(maybeControl && tokenizer.decode([id], { skipSpecialTokens: true }) === "" ? "" : piece);
  }
  return pieces;
}

/** One generation's grammar state. */
export interface TokenConstraint {
  /** Sets the logits of every token the grammar does not allow next to -Infinity. */
  restrict(logits: Float32Array): Promise<void>;
  /** Moves the grammar past a sampled token. */
  accept(id: number): void;
  dispose(): void;
}

/** Compact JSON with a space after ":" and ",", as models usually write it. */
const JSON_SEPARATORS: [string, string] = [", ", ": "];

async function compile(compiler: GrammarCompiler, format: ResponseFormat): Promise<CompiledGrammar> {
  switch (format.type) {
    case "json_object":
      return compiler.compileJSONSchema(JSON.stringify({ type: "object" }), false, -1, JSON_SEPARATORS, false);
    case "json_schema":
      return compiler.compileJSONSchema(JSON.stringify(format.schema), false, -1, JSON_SEPARATORS, true);
    case "grammar":
      return compiler.compileGrammar(format.grammar, "root");
    case "text_or_json":
      return compiler.compileStructuralTag({
        type: "structural_tag",
        format: {
          type: "triggered_tags",
          triggers: [format.begin],
          tags: [{ type: "tag", begin: format.begin, content: { type: "json_schema", json_schema: format.schema }, end: format.end }],
          stop_after_first: true,
        },
      });
    case "text":
      throw new GenerationError("a text response format needs no grammar");
  }
}

/**
 * The constraint for a response format on this tokenizer and a model of `vocabSize` logits; the
 * grammar, once complete, allows only one of `stopTokenIds`.
 */
export async function compileConstraint(
  tokenizer: GemmaTokenizer,
  format: ResponseFormat,
  stopTokenIds: readonly number[],
  vocabSize: number,
): Promise<TokenConstraint> {
  const xg = await loadXGrammar();
  let compiled: CompiledGrammar;
  try {
    compiled = await compile(await compilerFor(xg, tokenizer, stopTokenIds, vocabSize), format);
  } catch (e) {
    if (e instanceof GenerationError) throw e;
    throw new GenerationError(`responseFormat: the grammar engine rejected it: ${String((e as Error).message ?? e)}`);
  }
  const matcher: GrammarMatcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
  compiled.dispose();
  return {
    async restrict(logits: Float32Array): Promise<void> {
      const mask = await matcher.getNextTokenBitmask();
      for (let word = 0; word < mask.length; word++) {
        const bits = mask[word]!;
        if (bits === -1) continue; // all 32 allowed
        const base = word * 32;
        const end = Math.min(base + 32, logits.length);
        for (let id = base; id < end; id++) if (((bits >>> (id - base)) & 1) === 0) logits[id] = -Infinity;
      }
      logits.fill(-Infinity, mask.length * 32);
    },
    accept(id: number): void {
      if (!matcher.acceptToken(id)) throw new GenerationError(`token ${id} does not fit the response format's grammar`);
    },
    dispose(): void {
      matcher.dispose();
    },
  };
}
