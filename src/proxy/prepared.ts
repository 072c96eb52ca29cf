// Named prepared statements in transaction mode (docs/proxy.md), in the manner
// of PgBouncer's max_prepared_statements. A client's statement "s1" lives on
// whatever server connection runs its next transaction, so the proxy:
// - remembers each client's statements (name -> the Parse's query and types);
// - names them on servers by content ("ogel_<n>": one name per distinct query
//   and types, so clients preparing the same text share it on a connection);
// - prepares a statement on a server connection the first time a client uses it
//   there (a Parse inserted before the Bind/Describe, its ParseComplete swallowed),
//   and answers a client's Parse itself when the connection already has it;
// - keeps at most maxPerServer statements per connection, closing the least
//   recently used.
// The ordering of synthetic and real responses is the session's job (its
// response queue); this module is the bookkeeping.

/** Distinct statements a proxy names; beyond it the table starts over (old names stay valid on their connections). */
const SERVER_NAMES_MAX = 100_000;
/** Statements one client may have prepared at once. */
export const CLIENT_STATEMENTS_MAX = 10_000;

export interface Statement {
  /** The name on every server connection. */
  serverName: string;
  /** The Parse message's bytes after the name: query\0, int16 n, n int32 type oids (a copy, owned here). */
  rest: Buffer;
}

/** The proxy-wide table: statement content -> server-side name. */
export class StatementNames {
  private readonly byContent = new Map<string, string>();
  private next = 1;

  nameFor(rest: Buffer): string {
    // latin1 maps every byte to one char: an exact, cheap key (no hash collisions to reason about).
    const key = rest.toString('latin1');
    let name = this.byContent.get(key);
    if (name === undefined) {
      if (this.byContent.size >= SERVER_NAMES_MAX) this.byContent.clear();
      name = `ogel_${this.next++}`;
      this.byContent.set(key, name);
    }
    return name;
  }

  get size(): number {
    return this.byContent.size;
  }
}

/** One client's statements; allocated on its first named Parse only. */
export class ClientStatements {
  private readonly byName = new Map<string, Statement>();

  get(name: string): Statement | undefined {
    return this.byName.get(name);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  add(name: string, s: Statement): void {
    this.byName.set(name, s);
  }

  delete(name: string): void {
    this.byName.delete(name);
  }

  get size(): number {
    return this.byName.size;
  }
}

/**
 * Marks `serverName` as used on a connection's set (most recent last) and
 * returns the name to close there first, if the set is over its bound.
 */
export function touchServerStatement(prepared: Set<string>, serverName: string, maxPerServer: number): string | null {
  prepared.delete(serverName);
  prepared.add(serverName);
  if (prepared.size <= maxPerServer) return null;
  const oldest = prepared.values().next().value as string;
  prepared.delete(oldest);
  return oldest;
}
