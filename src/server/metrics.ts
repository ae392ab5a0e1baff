/**
 * `GET /metrics` in Prometheus's text exposition format (version 0.0.4): requests by route and
 * status, tokens in and out, queue length, busy slots, KV cache bytes, and histograms of time to
 * first token and of decode speed.
 */

/** Cumulative buckets, as Prometheus histograms are. */
class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]!) this.counts[i]!++;
    this.sum += value;
    this.count++;
  }

  lines(name: string): string[] {
    return [
      ...this.bounds.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    ];
  }
}

/** What one finished completion adds. */
export interface CompletionNumbers {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  timeToFirstTokenMs: number | null;
  tokensPerSecond: number;
}

/** What the server reports at the moment of a scrape. */
export interface ServerGauges {
  queued: number;
  busySlots: number;
  slots: number;
  kvCacheBytes: number;
}

/** Routes get their own label; anything else is "other", so a scan of random paths cannot grow the label set. */
const ROUTES = new Set(["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"]);

export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  private promptTokens = 0;
  private completionTokens = 0;
  private cachedTokens = 0;
  private readonly timeToFirstToken = new Histogram([0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  private readonly decodeSpeed = new Histogram([1, 2, 5, 10, 20, 50, 100, 200]);

  request(path: string, status: number): void {
    const route = ROUTES.has(path) ? path : path.startsWith("/v1/models/") ? "/v1/models/:id" : "other";
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  completion(n: CompletionNumbers): void {
    this.promptTokens += n.promptTokens;
    this.completionTokens += n.completionTokens;
    this.cachedTokens += n.cachedTokens;
    if (n.timeToFirstTokenMs !== null) this.timeToFirstToken.observe(n.timeToFirstTokenMs / 1000);
    if (n.completionTokens > 1) this.decodeSpeed.observe(n.tokensPerSecond);
  }

  render(g: ServerGauges): string {
    const block = (name: string, type: "counter" | "gauge" | "histogram", help: string, lines: string[]) => [
      `# HELP ${name} ${help}`,
      `# TYPE ${name} ${type}`,
      ...lines,
    ];
    return `${[
      ...block(
        "gemma_ts_requests_total",
        "counter",
        "HTTP requests by route and status.",
        [...this.requests].map(([labels, n]) => `gemma_ts_requests_total{${labels}} ${n}`),
      ),
      ...block("gemma_ts_prompt_tokens_total", "counter", "Prompt tokens of finished completions.", [
        `gemma_ts_prompt_tokens_total ${this.promptTokens}`,
      ]),
      ...block("gemma_ts_prompt_tokens_cached_total", "counter", "Prompt tokens taken from a slot's KV cache.", [
        `gemma_ts_prompt_tokens_cached_total ${this.cachedTokens}`,
      ]),
      ...block("gemma_ts_completion_tokens_total", "counter", "Generated tokens.", [
        `gemma_ts_completion_tokens_total ${this.completionTokens}`,
      ]),
      ...block("gemma_ts_queue_length", "gauge", "Requests waiting for a slot.", [`gemma_ts_queue_length ${g.queued}`]),
      ...block("gemma_ts_slots_busy", "gauge", "Slots generating now.", [`gemma_ts_slots_busy ${g.busySlots}`]),
      ...block("gemma_ts_slots", "gauge", "Slots (--parallel).", [`gemma_ts_slots ${g.slots}`]),
      ...block("gemma_ts_kv_cache_bytes", "gauge", "Bytes the slots' KV caches hold.", [`gemma_ts_kv_cache_bytes ${g.kvCacheBytes}`]),
      ...block(
        "gemma_ts_time_to_first_token_seconds",
        "histogram",
        "From the request to its first token.",
        this.timeToFirstToken.lines("gemma_ts_time_to_first_token_seconds"),
      ),
      ...block(
        "gemma_ts_decode_tokens_per_second",
        "histogram",
        "Tokens per second of each completion.",
        this.decodeSpeed.lines("gemma_ts_decode_tokens_per_second"),
      ),
    ].join("\n")}\n`;
  }
}
