/** The rows `gemma-ts bench --json` prints, as the CLI tests read them. */
export interface BenchReportRow {
  shape: string;
  weights: string;
  threads: number;
  test: string;
  tokensPerSecond: number;
  bandwidthFraction: number | null;
  /** Decode rows: GB/s the threads read the weights at between segments of tokens. */
  bandwidthGBps: number | null;
  peakRssMB: number;
  stateMB: number;
  position: number;
  /** With --compare. */
  llamaCpp?: { tokensPerSecond: number; bandwidthFraction: number | null } | null;
  ratio?: number | null;
}
