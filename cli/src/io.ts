/** The streams a command writes to, passed in so tests can capture them with plain values. */
export interface CliIO {
  readonly stdout: { write(chunk: string): unknown };
  readonly stderr: { write(chunk: string): unknown };
}
