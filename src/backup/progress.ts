// A progress line for long work (backups, restores) on a terminal or a log:
// bytes done of the total, the rate and the time left, at most once a second
// (and rewritten in place on a TTY).

export class ProgressLine {
  private readonly t0 = performance.now();
  private lastMs = -Infinity;
  private readonly tty: boolean;

  constructor(
    private readonly what: string,
    private readonly out: NodeJS.WriteStream,
    private readonly intervalMs = 1000,
  ) {
    this.tty = out.isTTY === true;
  }

  update(doneBytes: number, totalBytes: number | undefined): void {
    const now = performance.now();
    if (now - this.lastMs < this.intervalMs) return;
    this.lastMs = now;
    this.write(describeProgress(this.what, doneBytes, totalBytes, (now - this.t0) / 1000));
  }

  /** A free-form line (same pacing): work whose total is not in bytes. */
  note(line: string): void {
    const now = performance.now();
    if (now - this.lastMs < this.intervalMs) return;
    this.lastMs = now;
    this.write(line);
  }

  done(message: string): void {
    if (this.tty) this.out.write('\r\x1b[K');
    this.out.write(`${message}\n`);
  }

  private write(line: string): void {
    this.out.write(this.tty ? `\r\x1b[K${line}` : `${line}\n`);
  }
}

/** "restore: 120.0 of 300.0 MB (40%), 85.2 MB/s, 2 s left" */
export function describeProgress(what: string, doneBytes: number, totalBytes: number | undefined, elapsedS: number): string {
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const rate = elapsedS > 0 ? doneBytes / elapsedS : 0;
  if (totalBytes === undefined || totalBytes <= 0) return `${what}: ${mb(doneBytes)} MB, ${mb(rate)} MB/s`;
  const pct = Math.min(100, Math.floor((100 * doneBytes) / totalBytes));
  const left = rate > 0 ? Math.max(0, Math.ceil((totalBytes - doneBytes) / rate)) : undefined;
  return `${what}: ${mb(doneBytes)} of ${mb(totalBytes)} MB (${pct}%), ${mb(rate)} MB/s${left === undefined ? '' : `, ${left} s left`}`;
}
