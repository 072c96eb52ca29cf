// The errors of a local Postgres server (instance.ts, sql-client.ts, fence/server-fence.ts).

export class PostgresStartError extends Error {
  override name = 'PostgresStartError';
  constructor(
    message: string,
    readonly logTail: string[],
  ) {
    super(logTail.length > 0 ? `${message}\n--- last postgres log lines ---\n${logTail.join('\n')}` : message);
  }
}

export class PostgresStateError extends Error {
  override name = 'PostgresStateError';
}
