/**
 * The chat page: picks or fetches a model, shows load progress, streams replies from the model
 * worker, stops them, and shows speed. All model work happens in runtime-worker.js.
 */
import { GemmaWorkerClient, type Reply } from "../src/browser/client.js";
import { modelAddress } from "../src/browser/model-address.js";
import type { Backend, ModelInfo, ModelSource, SamplingSettings } from "../src/browser/protocol.js";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  status: $("runtime-status"),
  url: $<HTMLInputElement>("model-url"),
  served: $<HTMLDataListElement>("served-models"),
  useCache: $<HTMLInputElement>("use-cache"),
  hubToken: $<HTMLInputElement>("hub-token"),
  loadUrl: $<HTMLButtonElement>("load-url"),
  pickFile: $<HTMLInputElement>("pick-file"),
  pickFolder: $<HTMLInputElement>("pick-folder"),
  progress: $<HTMLProgressElement>("load-progress"),
  loadStatus: $("load-status"),
  error: $("error"),
  info: $("model-info"),
  temperature: $<HTMLInputElement>("temperature"),
  topK: $<HTMLInputElement>("top-k"),
  topP: $<HTMLInputElement>("top-p"),
  maxTokens: $<HTMLInputElement>("max-tokens"),
  seed: $<HTMLInputElement>("seed"),
  jsonReply: $<HTMLInputElement>("json-reply"),
  backend: $<HTMLSelectElement>("backend"),
  system: $<HTMLTextAreaElement>("system"),
  cacheList: $("cache-list"),
  clearCache: $<HTMLButtonElement>("clear-cache"),
  messages: $("messages"),
  composer: $<HTMLFormElement>("composer"),
  prompt: $<HTMLTextAreaElement>("prompt"),
  send: $<HTMLButtonElement>("send"),
  stop: $<HTMLButtonElement>("stop"),
  newChat: $<HTMLButtonElement>("new-chat"),
  stats: $("reply-stats"),
};

const client = GemmaWorkerClient.start(new URL("./runtime-worker.js", import.meta.url));
let model: ModelInfo | null = null;
let reply: Reply | null = null;
let turns = 0;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function showError(message: string | null): void {
  ui.error.hidden = message === null;
  ui.error.textContent = message ?? "";
}

function setBusy(busy: boolean): void {
  for (const b of [ui.loadUrl, ui.clearCache]) b.disabled = busy;
  for (const input of [ui.pickFile, ui.pickFolder]) input.disabled = busy;
  ui.send.disabled = busy || model === null || reply !== null;
}

ui.status.textContent = crossOriginIsolated
  ? `cross-origin isolated: up to ${navigator.hardwareConcurrency} threads`
  : "not cross-origin isolated: one thread (serve the page with COOP/COEP headers, as `gemma-ts web` does, for more)";

async function load(source: ModelSource, label: string): Promise<void> {
  reply?.stop();
  model = null;
  document.body.dataset["model"] = "loading";
  showError(null);
  setBusy(true);
  ui.info.replaceChildren();
  ui.progress.hidden = false;
  ui.progress.value = 0;
  ui.loadStatus.textContent = `opening ${label}…`;
  try {
    const notices: string[] = [];
    model = await client.load(source, {
      backend: chosenBackend(),
      onNotice: (message) => notices.push(message),
      onProgress: ({ phase, loaded, total, file }) => {
        ui.progress.value = total > 0 ? loaded / total : 0;
        ui.loadStatus.textContent =
          phase === "download"
            ? `downloading ${file}: ${mib(loaded)}${total ? ` of ${mib(total)}` : ""}`
            : `loading weights: ${mib(loaded)} of ${mib(total)}`;
      },
    });
    document.body.dataset["model"] = "loaded";
    ui.loadStatus.textContent = [
      `loaded in ${model.loadSeconds.toFixed(1)} s${model.fromCache ? " from the browser cache" : ""}`,
      ...notices,
    ].join("\n");
    showInfo(model);
    startConversation();
    ui.prompt.placeholder = `Write to ${model.name.split("/").filter(Boolean).pop()} (Enter sends, Shift+Enter breaks the line)`;
    ui.prompt.focus();
  } catch (e) {
    document.body.dataset["model"] = "error";
    ui.loadStatus.textContent = "";
    showError(`Could not load ${label}:\n${(e as Error).message}`);
  } finally {
    ui.progress.hidden = true;
    setBusy(false);
    void refreshCache();
  }
}

/** The backend the UI's choice or the page address (?backend=webgpu|wasm) asks for. */
function chosenBackend(): Backend {
  const chosen = ui.backend.value || new URLSearchParams(location.search).get("backend") || "auto";
  return chosen === "webgpu" || chosen === "wasm" ? chosen : "auto";
}

function showInfo(info: ModelInfo): void {
  const rows: [string, string][] = [
    ["model", info.name],
    ["family", `${info.family}, ${info.layers} layers × ${info.dModel}`],
    ["vocabulary", info.vocabSize.toLocaleString()],
    ["context", info.contextLength.toLocaleString()],
    ["weights", mib(info.weightBytes)],
    ["backend", info.backendNote ? `${info.backend} (not WebGPU: ${info.backendNote})` : info.backend],
    ["kernels", `${info.kernels} (${info.threads} thread${info.threads === 1 ? "" : "s"})`],
  ];
  ui.info.replaceChildren(
    ...rows.flatMap(([k, v]) => [
      Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: v }),
    ]),
  );
}

function settings(): SamplingSettings {
  const number = (input: HTMLInputElement, fallback: number) =>
    input.value.trim() === "" || !Number.isFinite(input.valueAsNumber) ? fallback : input.valueAsNumber;
  const seed = ui.seed.value.trim() === "" ? undefined : ui.seed.valueAsNumber;
  return {
    temperature: number(ui.temperature, 1),
    topK: number(ui.topK, 64),
    topP: number(ui.topP, 0.95),
    maxTokens: number(ui.maxTokens, 256),
    ...(seed === undefined ? {} : { seed }),
    ...(ui.jsonReply.checked ? { responseFormat: { type: "json_object" as const } } : {}),
  };
}

function bubble(role: "user" | "model", text: string): HTMLElement {
  const el = document.createElement("div");
  el.className = `message ${role}`;
  const who = Object.assign(document.createElement("span"), { className: "who", textContent: role === "user" ? "you" : "gemma" });
  el.append(who, document.createTextNode(text));
  ui.messages.append(el);
  ui.messages.scrollTop = ui.messages.scrollHeight;
  return el;
}

function startConversation(): void {
  client.reset();
  turns = 0;
  ui.messages.replaceChildren();
  ui.stats.textContent = "";
}

async function send(): Promise<void> {
  const text = ui.prompt.value;
  if (!model || reply || text.trim() === "") return;
  ui.prompt.value = "";
  bubble("user", text);
  const answer = bubble("model", "");
  answer.dataset["turn"] = String(++turns);
  const body = answer.lastChild as Text;
  const system = turns === 1 ? ui.system.value.trim() : "";
  reply = client.chat(
    text,
    settings(),
    (token) => {
      body.appendData(token);
      ui.messages.scrollTop = ui.messages.scrollHeight;
    },
    system || undefined,
  );
  ui.send.disabled = true;
  ui.stop.disabled = false;
  ui.stats.textContent = "thinking…";
  try {
    const { stats } = await reply.done;
    ui.stats.textContent = `${stats.completionTokens} tokens · ${stats.tokensPerSecond.toFixed(stats.tokensPerSecond < 10 ? 2 : 1)} tokens/s · first token ${stats.firstTokenSeconds.toFixed(2)} s · ${stats.finishReason === "abort" ? "stopped" : `finish: ${stats.finishReason}`}`;
    answer.dataset["done"] = stats.finishReason ?? "stop";
  } catch (e) {
    answer.classList.add("failed");
    answer.dataset["done"] = "error";
    ui.stats.textContent = "";
    showError((e as Error).message);
  } finally {
    reply = null;
    ui.stop.disabled = true;
    setBusy(false);
  }
}

async function refreshCache(cleared?: Promise<{ entries: { url: string; size: number }[]; freedBytes?: number }>): Promise<void> {
  try {
    const { entries, freedBytes } = await (cleared ?? client.listCache());
    const lines = entries.map((e) => `${e.url.split("/").pop()} (${mib(e.size)})`);
    ui.cacheList.textContent = (freedBytes !== undefined ? `freed ${mib(freedBytes)}. ` : "") + (lines.length ? lines.join(", ") : "empty");
  } catch (e) {
    ui.cacheList.textContent = (e as Error).message;
  }
  // Counts refreshes, so a test (or a curious user) can tell an old listing from a new one.
  ui.cacheList.dataset["version"] = String(Number(ui.cacheList.dataset["version"] ?? 0) + 1);
}

async function listServedModels(): Promise<void> {
  try {
    const response = await fetch("models/index.json");
    if (!response.ok) return;
    const models = (await response.json()) as { url: string; size: number }[];
    ui.served.replaceChildren(
      ...models.map((m) =>
        Object.assign(document.createElement("option"), { value: new URL(m.url, location.href).href, label: mib(m.size) }),
      ),
    );
    // Not while someone is typing there: the listing may arrive between clearing the field and typing.
    if (!ui.url.value && document.activeElement !== ui.url && models[0]) ui.url.value = new URL(models[0].url, location.href).href;
  } catch {
    // A page served by something other than `gemma-ts web` lists no models.
  }
}

ui.loadUrl.onclick = () => {
  const url = ui.url.value.trim();
  if (!url) return showError("Give the URL of a .gguf file or of a checkpoint folder, or a Hub repo id.");
  let absolute: string;
  try {
    absolute = modelAddress(url, location.href);
  } catch {
    return showError(`Not a URL, a path or a Hub repo id: ${url}`);
  }
  const hubToken = ui.hubToken.value.trim();
  void load({ kind: "url", url: absolute, cache: ui.useCache.checked, ...(hubToken ? { hubToken } : {}) }, absolute);
};
for (const input of [ui.pickFile, ui.pickFolder]) {
  input.onchange = () => {
    const files = Array.from(input.files ?? []);
    input.value = "";
    if (files.length)
      void load(
        { kind: "files", files },
        files.length === 1 ? files[0]!.name : `${files[0]!.webkitRelativePath.split("/")[0]} (${files.length} files)`,
      );
  };
}
ui.composer.onsubmit = (e) => {
  e.preventDefault();
  void send();
};
ui.prompt.onkeydown = (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    void send();
  }
};
// The token stays for this tab only (sessionStorage), never in the page's address or on disk.
ui.hubToken.value = sessionStorage.getItem("gemma-ts hub token") ?? "";
ui.hubToken.onchange = () => sessionStorage.setItem("gemma-ts hub token", ui.hubToken.value.trim());
ui.stop.onclick = () => reply?.stop();
ui.newChat.onclick = () => {
  reply?.stop();
  startConversation();
};
ui.clearCache.onclick = () => void refreshCache(client.clearCache());

void refreshCache();
// `?model=ADDRESS` loads a model at once (a link to a page with a model, or a bookmark).
const linked = new URLSearchParams(location.search).get("model");
if (linked) {
  ui.url.value = linked;
  ui.loadUrl.click();
} else {
  void listServedModels();
}
