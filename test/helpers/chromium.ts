/** Debian's Chromium as the browser tests and `npm run bench:web` launch it. */
import { existsSync } from "node:fs";

/** The binary (GEMMA_TS_CHROMIUM overrides). */
export const CHROMIUM = process.env["GEMMA_TS_CHROMIUM"] ?? "/usr/bin/chromium";

/** No sandbox as root, and no background connections to a closed network. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Why a browser test file skips, or false. Without Chromium it skips, unless
 * GEMMA_TS_REQUIRE_BROWSER=1 (CI) makes that a failure. The WebGPU tests also skip with
 * GEMMA_TS_WEBGPU_TESTS=0: they check Chromium's SwiftShader, the same under any Node, and take
 * minutes there, so .ci/run runs them under one Node version, not both.
 */
export function browserTestSkip(webgpu = false): string | false {
  if (webgpu && process.env["GEMMA_TS_WEBGPU_TESTS"] === "0") return "GEMMA_TS_WEBGPU_TESTS=0 (CI runs them under the newest LTS)";
  if (!existsSync(CHROMIUM) && process.env["GEMMA_TS_REQUIRE_BROWSER"] !== "1")
    return `no Chromium at ${CHROMIUM} (apt-get install chromium)`;
  return false;
}
