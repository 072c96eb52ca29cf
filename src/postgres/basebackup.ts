// A base backup over the streaming-replication protocol, without pg_basebackup
// (the embedded PostgreSQL package ships none, and Debian's older ones refuse a
// PG 17 server). We speak BASE_BACKUP on a `replication: 'database'` connection
// and extract base.tar as it arrives.
//
// The reply, in order (PG 15+ "copy stream" format):
//   1. a result set: the start LSN and timeline;
//   2. a result set: the tablespaces (oid, location, size in kB with PROGRESS);
//   3. CopyOutResponse, then CopyData frames whose first byte is their type:
//        'n' new archive: name\0location\0     'd' archive (or manifest) bytes
//        'p' progress: int64 bytes so far      'm' the manifest follows, as 'd' frames
//   4. CopyDone, a result set with the end LSN and timeline, CommandComplete, ReadyForQuery.
//
// pg's Client has no API for a COPY OUT that carries typed sub-frames
// (pg-copy-streams' copy-to mis-frames it), so this is a custom Submittable: the
// Client hands it every protocol message of the command. Two things matter for
// correctness and speed:
//   - a CopyData chunk is a view into the parser's read buffer, which is reused:
//     the extractor copies it before any asynchronous write;
//   - no per-chunk promise: chunks go straight into the extractor, and when its
//     bounded in-flight budget is full we pause the socket (TCP backpressure to
//     the server) until it drains. Durability is one fsync pass at the end.

import * as fs from 'node:fs';
import * as path from 'node:path';
import pg from 'pg';
import type { CopyDataMessage, DataRowMessage, RowDescriptionMessage } from 'pg-protocol/dist/messages.js';

import { TarExtractor, type TarStats } from './tar-extract.js';

/**
 * Where base.tar's bytes go as they arrive: a TarExtractor (a standby's data
 * directory) or a backup upload (src/backup/). write() copies the chunk (it is
 * a view into a reused buffer) and returns false when its bounded in-flight
 * budget is full; it then emits 'drain'. end() resolves once everything is
 * durable; destroy() abandons it.
 */
export interface ArchiveSink<Result> {
  write(chunk: Uint8Array): boolean;
  end(): Promise<Result>;
  destroy(err: Error): void;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'error', listener: (e: Error) => void): unknown;
}

export interface BaseBackupCommandOptions {
  label: string;
  /** Carried into the outcome (IDENTIFY_SYSTEM runs before the command). */
  systemIdentifier?: string | undefined;
  /** Include the WAL needed to make the copy consistent in base.tar (pg_wal/). */
  wal: boolean;
  /** PG17 INCREMENTAL: the server must have received the parent's manifest (UPLOAD_MANIFEST) on this connection. */
  incremental?: boolean | undefined;
  onProgress?: ((bytes: number, totalBytes?: number) => void) | undefined;
}

/** What BASE_BACKUP reported, with the sink's result and the server's backup_manifest. */
export interface BaseBackupOutcome<Result> {
  /** pg_control's system identifier (IDENTIFY_SYSTEM), as decimal text: a backup restores only into its own cluster's chain. */
  systemIdentifier: string;
  startLsn: string;
  endLsn: string;
  timeline: number;
  sink: Result;
  manifest: Buffer;
}

export interface ReplicationConn {
  host: string;
  port: number;
  user: string;
  password?: string | undefined;
  database?: string | undefined;
}

export interface BaseBackupOptions {
  /** Shown in pg_stat_progress_basebackup and written to backup_label. */
  label: string;
  /** Called on each 'p' frame: bytes streamed so far, and the server's estimate of the total. */
  onProgress?: ((bytes: number, totalBytes?: number) => void) | undefined;
  /** chown every extracted entry (the Postgres OS user when running as root). */
  owner?: { uid: number; gid: number } | undefined;
  /** fsync files and directories before resolving. Default true; tests may turn it off. */
  fsync?: boolean | undefined;
  /** Abort the backup (the connection is destroyed and the promise rejects). */
  signal?: AbortSignal | undefined;
}

export interface BaseBackupResult {
  /** LSN at which the backup starts (the checkpoint's redo point), e.g. '0/2000028'. */
  startLsn: string;
  /** LSN replay must reach before the copy is consistent. */
  endLsn: string;
  timeline: number;
  /** Bytes of tar data received for base.tar. */
  bytes: number;
  durationMs: number;
  files: number;
}

export class BaseBackupError extends Error {
  override name = 'BaseBackupError';
}

/**
 * Streams a base backup of the server at `conn` into `targetDir` (created mode
 * 0700; it must be missing or empty). Resolves once every file and directory is
 * fsynced, `backup_manifest` is written, and the sizes in the manifest match
 * what was extracted.
 */
export async function takeBaseBackup(conn: ReplicationConn | pg.ClientConfig, targetDir: string, opts: BaseBackupOptions): Promise<BaseBackupResult> {
  const t0 = performance.now();
  const dir = path.resolve(targetDir);
  prepareEmptyDir(dir);
  if (opts.owner) fs.chownSync(dir, opts.owner.uid, opts.owner.gid);

  const client = new pg.Client(replicationConfig(conn, 'ogel-basebackup'));
  let clientError: Error | undefined;
  client.on('error', (e) => {
    clientError = e;
  });
  await client.connect();
  const extractor = new TarExtractor(dir, { owner: opts.owner, fsync: opts.fsync ?? true, exclude: isSocketFile });
  try {
    const command = new BaseBackupCommand<TarStats>(extractor, { label: opts.label, wal: true, onProgress: opts.onProgress });
    const onAbort = () => command.abort(new BaseBackupError(`base backup aborted: ${String(opts.signal?.reason ?? 'signal')}`));
    if (opts.signal?.aborted) throw new BaseBackupError('base backup aborted before it started');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.query(command); // a Submittable: its result comes through its own handlers
      const out = await command.done;
      await writeFileDurable(path.join(dir, 'backup_manifest'), out.manifest, opts.owner, opts.fsync ?? true);
      verifyDataDir(dir, out.manifest);
      return {
        startLsn: out.startLsn,
        endLsn: out.endLsn,
        timeline: out.timeline,
        bytes: out.sink.tarBytes,
        files: out.sink.files,
        durationMs: Math.round(performance.now() - t0),
      };
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } catch (e) {
    // A partial copy must not pass for a data directory (it may hold PG_VERSION),
    // and a retry needs the directory empty: remove what we wrote (it was empty),
    // once no file open is still in flight (it would land after the removal).
    await extractor.settle().catch(() => {});
    await clearDir(dir).catch(() => {});
    throw clientError && !(e instanceof BaseBackupError) ? clientError : e;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A replication connection's client config (`replication: 'database'` is passed through by pg but not declared by @types/pg). */
const CONNECT_TIMEOUT_MS = 30_000;

function replicationConfig(conn: ReplicationConn | pg.ClientConfig, applicationName: string): pg.ClientConfig {
  const config: pg.ClientConfig & { replication: 'database' } = {
    ...conn,
    database: (conn as pg.ClientConfig).database ?? 'postgres',
    replication: 'database',
    application_name: (conn as pg.ClientConfig).application_name ?? applicationName,
    // A Postgres that takes the connection and never answers must not hold a backup forever.
    connectionTimeoutMillis: (conn as pg.ClientConfig).connectionTimeoutMillis ?? CONNECT_TIMEOUT_MS,
  };
  return config;
}

export interface StreamBackupOptions extends BaseBackupCommandOptions {
  /** For an incremental backup: the parent's backup_manifest, sent with UPLOAD_MANIFEST first. */
  parentManifest?: Buffer | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Runs BASE_BACKUP on a new replication connection and streams base.tar into
 * `sink`. For an incremental backup the parent's manifest goes first, on the
 * same connection (the server keeps it per session). Resolves with the LSNs,
 * the sink's result and the server's backup_manifest; on failure the sink is
 * destroyed and the connection closed.
 */
export async function streamBaseBackup<Result>(
  conn: ReplicationConn | pg.ClientConfig,
  sink: ArchiveSink<Result>,
  opts: StreamBackupOptions,
): Promise<BaseBackupOutcome<Result>> {
  const incremental = opts.parentManifest !== undefined;
  const client = new pg.Client(replicationConfig(conn, 'ogel-backup'));
  let clientError: Error | undefined;
  client.on('error', (e) => {
    clientError ??= e; // the first error says why (an abort, before the socket's own)
  });
  // Until BASE_BACKUP runs, an abort closes the socket: connect, IDENTIFY_SYSTEM
  // and UPLOAD_MANIFEST would otherwise wait on a server that never answers.
  const abortEarly = () => {
    clientError ??= new BaseBackupError(`backup aborted: ${String(opts.signal?.reason ?? 'signal')}`);
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  };
  opts.signal?.addEventListener('abort', abortEarly, { once: true });
  try {
    if (opts.signal?.aborted) throw new BaseBackupError('backup aborted before it started');
    await client.connect();
    const ident = await client.query<{ systemid: string }>('IDENTIFY_SYSTEM');
    const systemIdentifier = ident.rows[0]?.systemid;
    if (systemIdentifier === undefined || !/^\d+$/.test(systemIdentifier))
      throw new BaseBackupError(`IDENTIFY_SYSTEM returned no system identifier (${JSON.stringify(ident.rows[0])})`);
    if (opts.parentManifest !== undefined) await uploadManifest(client, opts.parentManifest);
    const command = new BaseBackupCommand<Result>(sink, { ...opts, incremental, systemIdentifier });
    const onAbort = () => command.abort(new BaseBackupError(`backup aborted: ${String(opts.signal?.reason ?? 'signal')}`));
    opts.signal?.removeEventListener('abort', abortEarly);
    if (opts.signal?.aborted) throw clientError ?? new BaseBackupError('backup aborted before it started');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      client.query(command);
      return await command.done;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  } catch (e) {
    sink.destroy(e as Error);
    throw clientError && !(e instanceof BaseBackupError) ? clientError : e;
  } finally {
    opts.signal?.removeEventListener('abort', abortEarly);
    await client.end().catch(() => {});
  }
}

/** UPLOAD_MANIFEST: sends a previous backup's manifest, the base of a following INCREMENTAL backup on this connection. */
export function uploadManifest(client: pg.Client, manifest: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // A Submittable that errors never sees ReadyForQuery (pg clears the active
    // query on ErrorResponse): reject in handleError, resolve on ReadyForQuery.
    let failed = false;
    const submittable = {
      text: 'UPLOAD_MANIFEST',
      submit(connection: pg.Connection) {
        connection.query('UPLOAD_MANIFEST');
      },
      handleCopyInResponse(conn: pg.Connection) {
        // pg's Connection has these (COPY FROM STDIN uses them); @types/pg does not declare them.
        const connection = conn as unknown as { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void };
        for (let off = 0; off < manifest.length; off += 1 << 16) connection.sendCopyFromChunk(manifest.subarray(off, off + (1 << 16)));
        connection.endCopyFrom();
      },
      handleCommandComplete() {},
      handleEmptyQuery() {},
      handleRowDescription() {},
      handleDataRow() {},
      handleError(err: Error) {
        failed = true;
        reject(Object.assign(new BaseBackupError(`UPLOAD_MANIFEST failed: ${err.message}`), { cause: err, code: (err as { code?: string }).code }));
      },
      handleReadyForQuery() {
        if (!failed) resolve();
      },
    };
    client.query(submittable as unknown as pg.QueryConfig);
  });
}

async function clearDir(dir: string): Promise<void> {
  for (const name of await fs.promises.readdir(dir)) await fs.promises.rm(path.join(dir, name), { recursive: true, force: true });
}

/**
 * ogel puts the unix socket in the data directory, so the server's socket lock
 * file (.s.PGSQL.<port>.lock, holding the primary's postmaster PID) is a regular
 * file there and BASE_BACKUP sends it. A copy on another machine could name a
 * live PID there and stop the standby from starting ("lock file ... already
 * exists"); it is never useful, so it is not extracted.
 */
export function isSocketFile(relPath: string): boolean {
  return /^\.s\.PGSQL\.\d+(\.lock)?$/.test(relPath);
}

function prepareEmptyDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const entries = fs.readdirSync(dir);
  if (entries.length > 0) {
    throw new BaseBackupError(
      `base backup target ${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); refusing to mix a backup into existing files`,
    );
  }
  fs.chmodSync(dir, 0o700); // Postgres refuses a data directory readable by others
}

/** An SQL string literal for a replication command (they take no parameters). */
function literal(s: string): string {
  if (s.includes('\0')) throw new BaseBackupError('backup label contains NUL');
  return `'${s.replace(/'/g, "''")}'`;
}

type Phase = 'start' | 'tablespaces' | 'copy' | 'end' | 'done';

/**
 * The BASE_BACKUP command as a pg Submittable. pg's Client calls the handle*
 * methods for this command's messages (it does not route CopyOutResponse or
 * CopyDone, so we listen for those on the connection while we are active).
 */
export class BaseBackupCommand<Result> {
  readonly done: Promise<BaseBackupOutcome<Result>>;
  /** The command text (pg reads it for logging and errors). */
  readonly text: string;

  private resolve!: (v: BaseBackupOutcome<Result>) => void;
  private reject!: (e: Error) => void;
  private connection: pg.Connection | undefined;
  private phase: Phase = 'start';
  private rowSets = 0;
  private startLsn = '';
  private endLsn = '';
  private timeline = 0;
  private tablespaces: Array<{ oid: string | null; location: string | null; sizeKb: string | null }> = [];
  private totalBytes: number | undefined;
  private extracting: Promise<Result> | undefined;
  private archives = 0;
  private inManifest = false;
  private readonly manifestParts: Buffer[] = [];
  private manifestBytes = 0;
  private failed: Error | undefined;
  private paused = false;
  private readonly detach: Array<() => void> = [];

  constructor(
    private readonly extractor: ArchiveSink<Result>,
    private readonly opts: BaseBackupCommandOptions,
  ) {
    this.text = `BASE_BACKUP (LABEL ${literal(opts.label)}, PROGRESS, CHECKPOINT 'fast', WAL ${opts.wal}, WAIT true, MANIFEST 'yes'${opts.incremental === true ? ', INCREMENTAL' : ''})`;
    this.done = new Promise<BaseBackupOutcome<Result>>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.done.catch(() => {}); // observed by the caller; avoid an unhandled rejection if it is not yet awaited
    this.extractor.on('error', (e: Error) => this.abort(e));
  }

  submit(connection: pg.Connection): void {
    this.connection = connection;
    const onCopyOut = () => this.handleCopyOutResponse();
    const onCopyDone = () => this.handleCopyDone();
    connection.on('copyOutResponse', onCopyOut);
    connection.on('copyDone', onCopyDone);
    this.detach.push(() => {
      connection.off('copyOutResponse', onCopyOut);
      connection.off('copyDone', onCopyDone);
    });
    connection.query(this.text);
  }

  /** Local failure (disk, unsafe tar, abort): drop the connection, the server stops sending. */
  abort(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.extractor.destroy(err);
    this.cleanup();
    this.connection?.stream.destroy();
    this.reject(err);
  }

  handleRowDescription(msg: RowDescriptionMessage): void {
    this.rowSets++;
    if (this.phase === 'start' && this.rowSets === 1) return;
    if (this.phase === 'start' && this.rowSets === 2) {
      this.phase = 'tablespaces';
      return;
    }
    if (this.phase === 'end') return;
    this.abort(new BaseBackupError(`unexpected result set ${this.rowSets} (${msg.fields.map((f) => f.name).join(', ')}) in phase ${this.phase}`));
  }

  handleDataRow(msg: DataRowMessage): void {
    if (this.failed) return;
    const f = msg.fields as Array<string | null>;
    if (this.phase === 'start') {
      this.startLsn = f[0] ?? '';
      this.timeline = Number(f[1]);
    } else if (this.phase === 'tablespaces') {
      this.tablespaces.push({ oid: f[0] ?? null, location: f[1] ?? null, sizeKb: f[2] ?? null });
    } else if (this.phase === 'end') {
      this.endLsn = f[0] ?? '';
      const tli = Number(f[1]);
      if (tli !== this.timeline) {
        // A promotion during the backup: the copy would be of the old timeline.
        this.abort(new BaseBackupError(`timeline changed during the base backup (${this.timeline} -> ${tli}); retry`));
      }
    }
  }

  handleCopyOutResponse(): void {
    if (this.failed) return;
    const extra = this.tablespaces.filter((t) => t.oid !== null);
    if (extra.length > 0) {
      this.abort(
        new BaseBackupError(
          `the server has ${extra.length} tablespace(s) besides pg_default/pg_global (${extra.map((t) => `${t.oid} at ${t.location}`).join(', ')}); ` +
            `ogel clones only the main data directory for now. Move those tables to pg_default (ALTER TABLE ... SET TABLESPACE pg_default) and drop the tablespaces`,
        ),
      );
      return;
    }
    const total = this.tablespaces.reduce((sum, t) => sum + (t.sizeKb === null ? 0 : Number(t.sizeKb) * 1024), 0);
    this.totalBytes = total > 0 ? total : undefined;
    this.phase = 'copy';
  }

  handleCopyData(msg: CopyDataMessage): void {
    if (this.failed) return;
    const chunk = msg.chunk;
    const type = chunk[0];
    switch (type) {
      case 0x64 /* 'd' */:
        {
          const data = chunk.subarray(1);
          if (this.inManifest) {
            this.manifestBytes += data.length;
            if (this.manifestBytes > 1 << 30) return this.abort(new BaseBackupError('backup manifest larger than 1 GiB'));
            this.manifestParts.push(Buffer.from(data)); // copy: the chunk is a view into a reused buffer
            return;
          }
          if (this.archives !== 1) return this.abort(new BaseBackupError(`archive data before any 'n' frame`));
          let more: boolean;
          try {
            more = this.extractor.write(data); // copies
          } catch (e) {
            return this.abort(e as Error);
          }
          if (!more && !this.paused) {
            this.paused = true;
            this.connection?.stream.pause();
            this.extractor.once('drain', () => {
              this.paused = false;
              this.connection?.stream.resume();
            });
          }
          return;
        }
      case 0x6e /* 'n' */:
        {
          const z1 = chunk.indexOf(0, 1);
          const z2 = z1 < 0 ? -1 : chunk.indexOf(0, z1 + 1);
          if (z2 < 0) return this.abort(new BaseBackupError("malformed 'n' (new archive) frame"));
          const name = chunk.toString('utf8', 1, z1);
          const location = chunk.toString('utf8', z1 + 1, z2);
          this.archives++;
          if (this.archives > 1 || location !== '' || name !== 'base.tar') {
            return this.abort(
              new BaseBackupError(
                `unexpected archive ${JSON.stringify(name)} at ${JSON.stringify(location)}: only the main tablespace (base.tar) is supported`,
              ),
            );
          }
          return;
        }
      case 0x70 /* 'p' */:
        {
          if (chunk.length < 9) return this.abort(new BaseBackupError("malformed 'p' (progress) frame"));
          const done = Number(chunk.readBigInt64BE(1));
          try {
            this.opts.onProgress?.(done, this.totalBytes);
          } catch (e) {
            // We run inside the socket's data handler: a throw here would crash the process.
            this.abort(e instanceof Error ? e : new Error(String(e)));
          }
          return;
        }
      case 0x6d /* 'm' */:
        this.finishArchive();
        this.inManifest = true;
        return;
      default:
        this.abort(new BaseBackupError(`unknown CopyData frame type ${type === undefined ? '(empty)' : `0x${type.toString(16)}`}`));
    }
  }

  private finishArchive(): void {
    if (this.extracting || this.failed) return;
    if (this.paused) {
      // Nothing more will arrive for the archive; the socket must flow for the rest.
      this.paused = false;
      this.connection?.stream.resume();
    }
    this.extracting = this.extractor.end();
    this.extracting.catch((e: Error) => this.abort(e));
  }

  handleCopyDone(): void {
    if (this.failed) return;
    this.finishArchive();
    this.phase = 'end';
  }

  handleCommandComplete(): void {}

  handleEmptyQuery(): void {}

  handleError(err: Error): void {
    if (this.failed) return;
    const e = err instanceof Error ? err : new Error(String(err));
    this.abort(Object.assign(new BaseBackupError(`BASE_BACKUP failed: ${e.message}`), { cause: e, code: (e as { code?: string }).code }));
  }

  handleReadyForQuery(): void {
    this.cleanup();
    if (this.failed) return;
    if (this.phase !== 'end' || !this.extracting) {
      this.abort(new BaseBackupError(`BASE_BACKUP ended early (phase ${this.phase})`));
      return;
    }
    if (!this.startLsn || !this.endLsn) {
      this.abort(new BaseBackupError('BASE_BACKUP did not report its start and end LSN'));
      return;
    }
    const extracting = this.extracting;
    void (async () => {
      try {
        const sink = await extracting;
        const manifest = Buffer.concat(this.manifestParts);
        if (manifest.length === 0) throw new BaseBackupError('the server sent no backup manifest');
        if (this.failed) return;
        this.phase = 'done';
        this.resolve({
          systemIdentifier: this.opts.systemIdentifier ?? '',
          startLsn: this.startLsn,
          endLsn: this.endLsn,
          timeline: this.timeline,
          sink,
          manifest,
        });
      } catch (e) {
        this.abort(e as Error);
      }
    })();
  }

  private cleanup(): void {
    for (const d of this.detach.splice(0)) d();
  }
}

async function writeFileDurable(file: string, data: Buffer, owner: { uid: number; gid: number } | undefined, doFsync: boolean): Promise<void> {
  const fh = await fs.promises.open(file, 'w', 0o600);
  try {
    await fh.writeFile(data);
    if (owner) await fh.chown(owner.uid, owner.gid);
    if (doFsync) await fh.sync();
  } finally {
    await fh.close();
  }
  if (doFsync) {
    const dh = await fs.promises.open(path.dirname(file), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

/**
 * The copy must look like a data directory, and every file the manifest lists
 * must exist with the listed size: cheap (a stat per file) and it catches an
 * extraction bug or a truncated stream that still parsed.
 */
function verifyDataDir(dir: string, manifest: Buffer): void {
  for (const must of ['PG_VERSION', 'global/pg_control', 'backup_label']) {
    if (!fs.existsSync(path.join(dir, must))) throw new BaseBackupError(`base backup in ${dir} has no ${must}; the archive was incomplete`);
  }
  let parsed: { Files?: Array<{ Path?: string; 'Encoded-Path'?: string; Size?: number }> };
  try {
    parsed = JSON.parse(manifest.toString('utf8')) as typeof parsed;
  } catch (e) {
    throw new BaseBackupError(`backup_manifest is not JSON: ${(e as Error).message}`);
  }
  const files = parsed.Files ?? [];
  for (const f of files) {
    const rel = f.Path ?? (f['Encoded-Path'] ? Buffer.from(f['Encoded-Path'], 'hex').toString('utf8') : undefined);
    if (rel === undefined || typeof f.Size !== 'number' || isSocketFile(rel)) continue;
    let st: fs.Stats;
    try {
      st = fs.statSync(path.join(dir, rel));
    } catch {
      throw new BaseBackupError(`base backup is missing ${rel}, listed in backup_manifest`);
    }
    if (st.size !== f.Size) throw new BaseBackupError(`base backup file ${rel} has ${st.size} bytes, backup_manifest says ${f.Size}`);
  }
}
