// Output batching: contiguous messages of one chunk leave as one slice of it
// (one write per answered batch on the hot path, no copy).

export class OutSlice {
  private buf: Buffer | null = null;
  private start = 0;
  private end = 0;

  /** Extends the slice when buf[start, end) continues it; false: take() it first, then start(). */
  extend(buf: Buffer, start: number, end: number): boolean {
    if (this.buf !== buf || this.end !== start) return false;
    this.end = end;
    return true;
  }

  begin(buf: Buffer, start: number, end: number): void {
    this.buf = buf;
    this.start = start;
    this.end = end;
  }

  /** The slice collected (and none after), or null. */
  take(): Buffer | null {
    const b = this.buf;
    if (b === null) return null;
    this.buf = null;
    return this.start === 0 && this.end === b.length ? b : b.subarray(this.start, this.end);
  }

  drop(): void {
    this.buf = null;
  }
}
