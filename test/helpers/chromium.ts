/** Debian's Chromium as the browser tests and `npm run bench:web` launch it. */

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
