/**
 * OpenAI's `tools`, `tool_choice` and `parallel_tool_calls` validated into a ToolRequest
 * (generate/tools.ts); every wrong value is a 400 naming the parameter.
 */
import { GenerationError } from "../errors.js";
import { checkResponseFormat, type JsonSchema } from "../generate/response-format.js";
import type { ToolChoice, ToolRequest, ToolSpec } from "../generate/tools.js";
import { invalid } from "./api-error.js";

type Body = Record<string, unknown>;

/** `tools`, `tool_choice` and `parallel_tool_calls` of a chat request; null when it has no tools. */
export function readTools(b: Body): ToolRequest | null {
  const raw = b["tools"];
  const choiceRaw = b["tool_choice"];
  if (raw === undefined || raw === null) {
    if (choiceRaw !== undefined && choiceRaw !== null && choiceRaw !== "none") throw invalid("'tool_choice' needs 'tools'", "tool_choice");
    return null;
  }
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 128) throw invalid("'tools' must be a list of 1 to 128 tools", "tools");
  const tools = raw.map((t, i) => readTool(t, i));
  const names = new Set(tools.map((t) => t.name));
  if (names.size !== tools.length) throw invalid("'tools' has two functions of the same name", "tools");
  let choice: ToolChoice = "auto";
  if (choiceRaw === "none" || choiceRaw === "auto" || choiceRaw === "required") choice = choiceRaw;
  else if (typeof choiceRaw === "object" && choiceRaw !== null && !Array.isArray(choiceRaw)) {
    const fn = (choiceRaw as Body)["function"] as Body | undefined;
    const name = fn?.["name"];
    if ((choiceRaw as Body)["type"] !== "function" || typeof name !== "string")
      throw invalid('\'tool_choice\' must be "none", "auto", "required" or {type: "function", function: {name}}', "tool_choice");
    if (!names.has(name)) throw invalid(`'tool_choice' names ${JSON.stringify(name)}, which is not in 'tools'`, "tool_choice");
    choice = { name };
  } else if (choiceRaw !== undefined && choiceRaw !== null) {
    throw invalid('\'tool_choice\' must be "none", "auto", "required" or {type: "function", function: {name}}', "tool_choice");
  }
  const parallel = b["parallel_tool_calls"];
  if (parallel !== undefined && parallel !== null && typeof parallel !== "boolean")
    throw invalid("'parallel_tool_calls' must be a boolean", "parallel_tool_calls");
  return { tools, choice, parallel: parallel !== false };
}

function readTool(raw: unknown, i: number): ToolSpec {
  const param = `tools[${i}]`;
  if (typeof raw !== "object" || raw === null || (raw as Body)["type"] !== "function")
    throw invalid(`${param} must be {type: "function", function: {name, description, parameters}}`, param);
  const fn = (raw as Body)["function"];
  if (typeof fn !== "object" || fn === null || Array.isArray(fn)) throw invalid(`${param}.function must be an object`, `${param}.function`);
  const { name, description, parameters } = fn as Body;
  if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw invalid(`${param}.function.name must be 1-64 letters, digits, '_' or '-'`, `${param}.function.name`);
  if (description !== undefined && description !== null && typeof description !== "string")
    throw invalid(`${param}.function.description must be a string`, `${param}.function.description`);
  const schema = (parameters ?? { type: "object", properties: {} }) as JsonSchema;
  try {
    checkResponseFormat({ type: "json_schema", schema });
  } catch (e) {
    if (e instanceof GenerationError)
      throw invalid(e.message.replace(/^responseFormat: schema/, `${param}.function.parameters`), `${param}.function.parameters`);
    throw e;
  }
  return { name, description: typeof description === "string" ? description : "", parameters: schema };
}
