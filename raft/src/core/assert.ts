// Invariant assertions (TigerBeetle style): a broken invariant is a programmer
// error, and continuing would risk turning it into lost or corrupted data.

export class InvariantError extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantError';
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
