/**
 * Renders a Jinja template with limits. A chat template comes from a model file, so it is code
 * from a stranger: `{% for i in range(10**8) %}` would fill the heap and nested loops would never
 * end. Rendering counts evaluation steps, the characters of every string produced and the length
 * of every list, and checks a deadline, so a hostile template fails with a clear error instead.
 */
import { Environment, Interpreter, Template } from "@huggingface/jinja";
import { TokenizerError } from "../errors.js";

export interface TemplateLimits {
  /** Expressions and statements evaluated. */
  maxSteps: number;
  /** Characters of all strings produced, summed (a measure of work and memory). */
  maxChars: number;
  /** Elements of any one list (range() included). */
  maxItems: number;
  /** Wall-clock time. */
  maxMilliseconds: number;
}

/**
 * Generous for real templates: Gemma's renders a 1,000-message conversation in under 100,000 steps
 * and 25 ms; a runaway loop stops within half a second. The character budget grows with the
 * inputs (see `limitsFor`).
 */
export const DEFAULT_TEMPLATE_LIMITS: TemplateLimits = { maxSteps: 300_000, maxChars: 8_000_000, maxItems: 100_000, maxMilliseconds: 500 };

// @huggingface/jinja's index.d.ts re-exports its runtime from "./runtime" without an extension,
// which NodeNext resolution cannot follow; these are the parts of its types used here.
interface RuntimeValue {
  type: string;
  value: unknown;
}
interface JinjaEnvironment {
  set(name: string, value: unknown): RuntimeValue;
}
interface JinjaInterpreter {
  evaluate(statement: unknown, environment: JinjaEnvironment): RuntimeValue;
  run(program: unknown): RuntimeValue;
}
const InterpreterBase = Interpreter as unknown as new (env: JinjaEnvironment) => JinjaInterpreter;
const EnvironmentClass = Environment as unknown as new () => JinjaEnvironment;

export class TemplateLimitError extends TokenizerError {
  override name = "TemplateLimitError";
}

class LimitedInterpreter extends InterpreterBase {
  private steps = 0;
  private chars = 0;
  private readonly deadline: number;

  constructor(
    env: JinjaEnvironment,
    private readonly limits: TemplateLimits,
  ) {
    super(env);
    this.deadline = performance.now() + limits.maxMilliseconds;
  }

  override evaluate(statement: unknown, environment: JinjaEnvironment): RuntimeValue {
    const { limits } = this;
    if (++this.steps > limits.maxSteps)
      throw new TemplateLimitError(`chat template exceeded ${limits.maxSteps.toLocaleString("en")} evaluation steps (a runaway loop?)`);
    if ((this.steps & 1023) === 0 && performance.now() > this.deadline)
      throw new TemplateLimitError(`chat template ran longer than ${limits.maxMilliseconds} ms`);
    const result = super.evaluate(statement, environment);
    const value = result.value;
    if (typeof value === "string") {
      this.chars += value.length;
      if (this.chars > limits.maxChars)
        throw new TemplateLimitError(`chat template produced more than ${limits.maxChars.toLocaleString("en")} characters`);
    } else if (Array.isArray(value) && value.length > limits.maxItems) {
      throw new TemplateLimitError(
        `chat template built a list of ${value.length.toLocaleString("en")} items (limit ${limits.maxItems.toLocaleString("en")})`,
      );
    }
    return result;
  }
}

/** Python's range(), refusing before it allocates more than `maxItems` numbers. */
function limitedRange(maxItems: number) {
  return (start: number, stop?: number, step = 1): number[] => {
    if (stop === undefined) [start, stop] = [0, start];
    if (step === 0) throw new Error("range() step must not be zero");
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (!Number.isFinite(count) || count > maxItems)
      throw new TemplateLimitError(
        `chat template called range() for ${count.toLocaleString("en")} numbers (limit ${maxItems.toLocaleString("en")})`,
      );
    return Array.from({ length: count }, (_, i) => start + i * step);
  };
}

/** strftime_now as Hugging Face's templates use it (the subset @huggingface/jinja supports). */
function strftimeNow(format: string): string {
  const now = new Date();
  const pad2 = (n: number) => String(n).padStart(2, "0");
  const fields: Record<string, () => string> = {
    "%Y": () => String(now.getFullYear()),
    "%m": () => pad2(now.getMonth() + 1),
    "%d": () => pad2(now.getDate()),
    "%b": () => new Intl.DateTimeFormat(undefined, { month: "short" }).format(now),
    "%B": () => new Intl.DateTimeFormat(undefined, { month: "long" }).format(now),
    "%H": () => pad2(now.getHours()),
    "%M": () => pad2(now.getMinutes()),
    "%%": () => "%",
  };
  return format.replace(/%[YmdbBHM%]/g, (token) => fields[token]!());
}

/**
 * Limits for rendering over these inputs: the character budget is the default plus ten times the
 * inputs' text, since a template reads each message a few times.
 */
export function limitsFor(inputChars: number, base: TemplateLimits = DEFAULT_TEMPLATE_LIMITS): TemplateLimits {
  return { ...base, maxChars: base.maxChars + 10 * inputChars };
}

/** Parses and renders `source` with `variables`, within `limits`. */
export function renderTemplate(
  source: string,
  variables: Record<string, unknown>,
  limits: TemplateLimits = DEFAULT_TEMPLATE_LIMITS,
): string {
  const template = new Template(source);
  const env = new EnvironmentClass();
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    raise_exception: (message: unknown) => {
      throw new Error(String(message));
    },
    range: limitedRange(limits.maxItems),
    strftime_now: strftimeNow,
  };
  for (const [name, value] of Object.entries({ ...globals, ...variables })) env.set(name, value);
  const result = new LimitedInterpreter(env, limits).run(template.parsed);
  return String(result.value);
}
