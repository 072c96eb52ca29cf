// A malformed history is a bug in the harness (or a hand-made test history), not
// in the system under test; it gets its own error type so the checkers can report
// it as such instead of as an anomaly of the database.

export class HistoryError extends Error {
  override readonly name = 'HistoryError';
  /** Position of the offending event in the history (or line - 1 in a JSONL file); -1 when not tied to one event. */
  readonly index: number;

  constructor(message: string, index: number) {
    super(index >= 0 ? `history event #${index}: ${message}` : message);
    this.index = index;
  }
}
