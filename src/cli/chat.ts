/**
 * `gemma-ts chat`: interactive multi-turn chat. The KV cache is kept between turns, so each turn
 * computes only its new tokens. Ctrl-C stops a reply; Ctrl-D, /exit or a second Ctrl-C quits.
 */
import { createInterface } from "node:readline";
import { Command } from "commander";
import { addModelOptions, addSamplingOptions, generateOptionsFrom, loadModelWithProgress, type ModelFlags, type SamplingFlags } from "./options.js";

interface ChatFlags extends SamplingFlags, ModelFlags {
  system?: string;
}

export function chatCommand(): Command {
  const cmd = addModelOptions(
    new Command("chat").description("chat with an instruction-tuned model in the terminal (/reset clears the conversation, /exit quits)"),
    "checkpoint folder with tokenizer.json",
  ).option("--system <text>", "system prompt (folded into the first user turn)");
  addSamplingOptions(cmd, 1024);
  return cmd.action(async (flags: ChatFlags) => {
    const model = await loadModelWithProgress(flags.model, flags);
    const options = generateOptionsFrom(flags);
    let session = model.chat(flags.system ? { system: flags.system } : {});
    const interactive = Boolean(process.stdin.isTTY);
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: interactive });
    let reply: AbortController | null = null;
    rl.on("SIGINT", () => {
      if (reply) reply.abort();
      else rl.close();
    });
    if (interactive) process.stderr.write("Chatting with the model. /reset clears the conversation, /exit or Ctrl-D quits.\n");
    rl.setPrompt(interactive ? "> " : "");
    rl.prompt();
    // The line iterator buffers piped input that arrives while a reply is being generated.
    for await (const line of rl) {
      const text = line.trim();
      if (text === "/exit" || text === "/quit") break;
      if (text === "/reset") {
        session = model.chat(flags.system ? { system: flags.system } : {});
        rl.prompt();
        continue;
      }
      if (!text) {
        rl.prompt();
        continue;
      }
      reply = new AbortController();
      const generation = session.send(text, { ...options, signal: reply.signal });
      const started = performance.now();
      for await (const token of generation) process.stdout.write(token.text);
      reply = null;
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write("\n");
      process.stderr.write(
        `[${generation.completionTokens} tokens, ${(generation.completionTokens / seconds).toFixed(2)} tokens/s, ` +
          `${generation.reusedPromptTokens}/${generation.promptTokens} prompt tokens from cache${generation.finishReason === "abort" ? ", stopped" : ""}]\n`,
      );
      rl.prompt();
    }
    rl.close();
  });
}
