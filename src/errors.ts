/**
 * Typed errors: every failure a user can cause (a bad file, a wrong config, a bad argument)
 * surfaces as one of these with a message naming the file, field or tensor involved.
 */
export class GemmaError extends Error {
  override name = "GemmaError";
}

/** config.json is missing, malformed, inconsistent or describes an unsupported model. */
export class ConfigError extends GemmaError {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** A checkpoint file or folder is missing, corrupt, or does not match the config. */
export class CheckpointError extends GemmaError {
  override name = "CheckpointError";
  constructor(
    message: string,
    readonly file?: string,
    readonly tensor?: string,
  ) {
    super(message);
  }
}

/** Tokenizer files are missing or malformed, or a chat conversation cannot be rendered. */
export class TokenizerError extends GemmaError {
  override name = "TokenizerError";
}

/** A generation request that cannot be served (bad option, prompt too long, rewind impossible). */
export class GenerationError extends GemmaError {
  override name = "GenerationError";
}
