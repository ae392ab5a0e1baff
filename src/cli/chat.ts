/**
 * `gemma-ts chat`: interactive multi-turn chat. The KV cache is kept between turns, so each turn
 * computes only its new tokens. Ctrl-C stops a reply; Ctrl-D, /exit or a second Ctrl-C quits.
 */
import { createInterface } from "node:readline";
import { Command } from "commander";
import { GemmaError } from "../errors.js";
import {
  addModelOptions,
  addSamplingOptions,
  generateOptionsFrom,
  loadModelWithProgress,
  type ModelFlags,
  type SamplingFlags,
} from "./options.js";

interface ChatFlags extends SamplingFlags, ModelFlags {
  system?: string;
}

export function chatCommand(): Command {
  const cmd = addModelOptions(
    new Command("chat").description("chat with an instruction-tuned model in the terminal (/reset clears the conversation, /exit quits)"),
    "checkpoint folder with tokenizer.json",
  ).option("--system <text>", "system prompt (folded into the first user turn)");
  addSamplingOptions(cmd, 1024);
  return cmd.action(async (flags: ChatFlags, command: Command) => {
    const model = await loadModelWithProgress(flags.model, flags);
    const options = generateOptionsFrom(flags);
    // Unless asked for more, a reply may use half the context, leaving the rest to the conversation.
    if (command.getOptionValueSource("maxTokens") !== "cli")
      options.maxTokens = Math.min(flags.maxTokens, Math.max(1, Math.floor(model.config.maxPositions / 2)));
    let session = model.chat(flags.system ? { system: flags.system } : {});
    const interactive = Boolean(process.stdin.isTTY);
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
    // Piped input can end while a reply is generated; prompting a closed interface throws (Node >= 24).
    let closed = false;
    rl.once("close", () => {
      closed = true;
    });
    const prompt = () => {
      if (!closed) rl.prompt();
    };
    let reply: AbortController | null = null;
    rl.on("SIGINT", () => {
      if (reply) reply.abort();
      else rl.close();
    });
    if (interactive) process.stderr.write("Chatting with the model. /reset clears the conversation, /exit or Ctrl-D quits.\n");
    rl.setPrompt(interactive ? "> " : "");
    prompt();
    try {
      // The line iterator buffers piped input that arrives while a reply is being generated.
      for await (const line of rl) {
        const text = line.trim();
        if (text === "/exit" || text === "/quit") break;
        if (text === "/reset") {
          session = model.chat(flags.system ? { system: flags.system } : {});
          prompt();
          continue;
        }
        if (!text) {
          prompt();
          continue;
        }
        reply = new AbortController();
        try {
          const generation = session.send(text, { ...options, signal: reply.signal });
          if (session.droppedTurns > 0)
            process.stderr.write(
              `[the conversation outgrew the ${model.config.maxPositions}-token context: dropped its ${session.droppedTurns} oldest ` +
                `exchange(s)]\n`,
            );
          const started = performance.now();
          for await (const token of generation) process.stdout.write(token.text);
          const seconds = (performance.now() - started) / 1000;
          process.stdout.write("\n");
          process.stderr.write(
            `[${generation.completionTokens} tokens, ${(generation.completionTokens / seconds).toFixed(2)} tokens/s, ` +
              `${generation.reusedPromptTokens}/${generation.promptTokens} prompt tokens from ` +
              `cache${generation.finishReason === "abort" ? ", stopped" : ""}]\n`,
          );
        } catch (e) {
          // One turn failed (too long for the context, say): report it and keep chatting.
          if (!(e instanceof GemmaError)) throw e;
          process.stderr.write(`gemma-ts: ${e.message}\n`);
        } finally {
          reply = null;
        }
        prompt();
      }
    } finally {
      rl.close();
    }
  });
}
