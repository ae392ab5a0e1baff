/** A one-line progress bar on stderr (only when stderr is a terminal, so logs and pipes stay clean). */
export class ProgressBar {
  /** Set at the first update, so time spent before loading starts is not counted. */
  private started = 0;
  private lastDraw = 0;
  private readonly enabled: boolean;

  constructor(
    private label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    /** How done/total read (bytes by default; counts for steps and sequences). */
    private readonly amount: (done: number, total: number) => string = (done, total) => `${formatBytes(done)}/${formatBytes(total)}`,
  ) {
    this.enabled = Boolean(stream.isTTY);
  }

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (this.started === 0) this.started = now;
    if (done < total && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const elapsed = (now - this.started) / 1000;
    const eta = fraction > 0 && fraction < 1 ? ` eta ${((elapsed / fraction) * (1 - fraction)).toFixed(0)}s` : "";
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    this.stream.write(
      `\r${this.label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}% ${this.amount(done, total)} ${elapsed.toFixed(1)}s${eta}\x1b[K`,
    );
  }

  /** Changes the label (a training loss as it falls). */
  relabel(label: string): void {
    this.label = label;
  }

  done(): void {
    if (this.enabled) this.stream.write("\n");
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Per-file and overall download bars (bytes, rate, ETA), redrawn in place on a terminal. */
export class DownloadProgress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawnLines = 0;
  private readonly enabled: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = Boolean(stream.isTTY);
  }

  update(p: {
    files: readonly { path: string; size: number; received: number; state: string }[];
    receivedBytes: number;
    totalBytes: number;
  }): void {
    if (!this.enabled) return;
    const now = Date.now();
    const finished = p.receivedBytes >= p.totalBytes && p.files.every((f) => f.state === "done" || f.state === "cached");
    if (!finished && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = p.receivedBytes / seconds;
    const eta = rate > 0 && p.receivedBytes < p.totalBytes ? ` eta ${((p.totalBytes - p.receivedBytes) / rate).toFixed(0)}s` : "";
    const bar = (done: number, total: number) => {
      const filled = Math.round((total > 0 ? Math.min(1, done / total) : 1) * 20);
      return "█".repeat(filled) + "░".repeat(20 - filled);
    };
    const lines = p.files.map(
      (f) =>
        `  ${bar(f.received, f.size)} ${formatBytes(f.received).padStart(10)}/${formatBytes(f.size).padEnd(10)} ` +
        `${f.state === "cached" ? "cached " : ""}${f.path}`,
    );
    lines.push(
      `${bar(p.receivedBytes, p.totalBytes)} ${formatBytes(p.receivedBytes)}/${formatBytes(p.totalBytes)} ${formatBytes(rate)}/s${eta}`,
    );
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}F` : "";
    this.stream.write(`${up}${lines.map((l) => `${l}\x1b[K`).join("\n")}\n`);
    this.drawnLines = lines.length;
  }
}
