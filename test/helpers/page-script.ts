/**
 * Runs a TypeScript module in headless Chromium with WebGPU (`--enable-unsafe-webgpu`): bundled
 * with esbuild, added to a page served from http://127.0.0.1 (a secure context, which WebGPU
 * needs), and the promise it leaves on `window[resultName]` awaited.
 */
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { startWebServer, type RunningWebServer } from "../../src/server/web.js";
import { CHROMIUM, CHROMIUM_ARGS } from "./chromium.js";

export interface PageRun<T> {
  result: T | string;
  close(): Promise<void>;
}

export async function runPageScript<T>(entry: string, modelsDir: string, resultName: string): Promise<PageRun<T>> {
  const bundle = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "warning",
    alias: { "@huggingface/gguf": new URL("../../node_modules/@huggingface/gguf/dist/browser/index.mjs", import.meta.url).pathname },
    // Named only in the grammar engine's Node branches (as in scripts/build-web.ts).
    external: ["url", "module"],
  });
  const server: RunningWebServer = await startWebServer({ modelsDir, port: 0 });
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, "--enable-unsafe-webgpu"] });
  const close = async () => {
    await browser.close();
    await server.close();
  };
  try {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text, type: "module" });
    // A module script runs after addScriptTag returns: wait for what it sets.
    await page.waitForFunction((name) => name in window, resultName);
    const result = await page.evaluate((name) => (window as unknown as Record<string, Promise<T | string>>)[name]!, resultName);
    return { result: result as T | string, close };
  } catch (e) {
    await close();
    throw e;
  }
}
