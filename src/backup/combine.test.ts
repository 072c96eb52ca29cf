// The chain combine: its rules on hand-made incremental files, then on a real
// PG17 full + two incremental backups taken over the replication protocol,
// whose combination Postgres starts on with the primary's data.

import { createHash } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { streamBaseBackup } from '../postgres/basebackup.js';
import type { PostgresInstance } from '../postgres/instance.js';
import { readReplicationPassword, REPLICATION_ROLE } from '../postgres/settings.js';
import { TarExtractor, type TarStats } from '../postgres/tar-extract.js';
import { makeTempPrimary, startCopy } from '../../test/helpers/postgres.js';
import { checkChain, combineBackups, CombineError } from './combine.js';
import { BLCKSZ, encodeIncrementalFile, IncrementalFormatError, parseIncrementalHeader } from './incremental-file.js';

function tmp(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ogel-${tag}-`));
}

function page(fill: number): Buffer {
  return Buffer.alloc(BLCKSZ, fill);
}

/** A fake backup directory: backup_label, pg_control with a system identifier, and files. */
function fakeBackup(root: string, name: string, o: { start: string; from?: string; sysid?: bigint; files: Record<string, Buffer> }): string {
  const dir = path.join(root, name);
  fs.mkdirSync(path.join(dir, 'global'), { recursive: true });
  const control = Buffer.alloc(BLCKSZ);
  control.writeBigUInt64LE(o.sysid ?? 7n, 0);
  fs.writeFileSync(path.join(dir, 'global', 'pg_control'), control);
  const label = [
    `START WAL LOCATION: ${o.start} (file 000000010000000000000002)`,
    'CHECKPOINT LOCATION: 0/2000080',
    'BACKUP METHOD: streamed',
    'START TIMELINE: 1',
    'LABEL: t',
  ];
  if (o.from !== undefined) label.push(`INCREMENTAL FROM LSN: ${o.from}`, 'INCREMENTAL FROM TLI: 1');
  fs.writeFileSync(path.join(dir, 'backup_label'), label.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'backup_manifest'), '{}');
  for (const [rel, data] of Object.entries(o.files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), data);
  }
  return dir;
}

function blocksOf(file: string): number[] {
  const b = fs.readFileSync(file);
  assert.equal(b.length % BLCKSZ, 0);
  return Array.from({ length: b.length / BLCKSZ }, (_, i) => b[i * BLCKSZ]!);
}

test('incremental header: parsed and checked (magic, counts, order, exact size)', () => {
  const f = encodeIncrementalFile(
    10,
    new Map([
      [3, page(1)],
      [12, page(2)],
    ]),
  );
  const h = parseIncrementalHeader(f, f.length, 'f');
  assert.deepEqual([...h.blocks], [3, 12]);
  assert.equal(h.truncationBlockLength, 10);
  assert.equal(h.headerBytes, BLCKSZ);
  const empty = encodeIncrementalFile(4, new Map());
  assert.equal(empty.length, 12, 'no padding without blocks');
  assert.equal(parseIncrementalHeader(empty, 12, 'e').numBlocks, 0);
  const bad = Buffer.from(f);
  bad.writeUInt32LE(0xdeadbeef, 0);
  assert.throws(() => parseIncrementalHeader(bad, bad.length, 'bad'), /bad: bad incremental magic number 0xdeadbeef/);
  assert.throws(() => parseIncrementalHeader(f, f.length - 1, 'short'), /short: \d+ bytes, expected \d+/);
  const unordered = Buffer.from(f);
  unordered.writeUInt32LE(12, 12);
  unordered.writeUInt32LE(3, 16);
  assert.throws(() => parseIncrementalHeader(unordered, unordered.length, 'u'), IncrementalFormatError);
});

test('combine: newest block wins, older incrementals fill below the newest truncation length, the walk stops at a full file, gaps are zero pages', async () => {
  const root = tmp('combine');
  try {
    const rel = 'base/5/16384';
    const full = fakeBackup(root, 'full', {
      start: '0/2000028',
      files: { [rel]: Buffer.concat([1, 1, 1, 1, 1, 1].map(page)), 'base/5/PG_VERSION': Buffer.from('17\n'), 'pg_wal/x': Buffer.from('w') },
    });
    // inc1: blocks 1 and 4 changed (value 2); the relation still has 6 blocks.
    const inc1 = fakeBackup(root, 'inc1', {
      start: '0/3000028',
      from: '0/2000028',
      files: {
        'base/5/INCREMENTAL.16384': encodeIncrementalFile(
          6,
          new Map([
            [1, page(2)],
            [4, page(2)],
          ]),
        ),
        'base/5/PG_VERSION': Buffer.from('17\n'),
      },
    });
    // inc2: block 1 changed again (3), truncated to 5 blocks, then extended with block 7 (so block 6 is a gap).
    const inc2 = fakeBackup(root, 'inc2', {
      start: '0/4000028',
      from: '0/3000028',
      files: {
        'base/5/INCREMENTAL.16384': encodeIncrementalFile(
          5,
          new Map([
            [1, page(3)],
            [7, page(3)],
          ]),
        ),
        'base/5/PG_VERSION': Buffer.from('17\n'),
        newfile: Buffer.from('n'),
      },
    });
    const out = path.join(root, 'out');
    const stats = await combineBackups([full, inc1, inc2], out, { fsync: false });
    assert.deepEqual(blocksOf(path.join(out, rel)), [1, 3, 1, 1, 2, 0, 0, 3]);
    assert.equal(stats.filesReconstructed, 1);
    assert.ok(!fs.existsSync(path.join(out, 'pg_wal/x')), 'files absent from the newest backup are dropped');
    assert.ok(fs.existsSync(path.join(out, 'newfile')));
    assert.ok(!fs.existsSync(path.join(out, 'backup_manifest')));
    const label = fs.readFileSync(path.join(out, 'backup_label'), 'utf8');
    assert.match(label, /START WAL LOCATION: 0\/4000028/);
    assert.doesNotMatch(label, /INCREMENTAL FROM/);
    // consume (a restore's scratch copies): files moved and patched in place, the same result byte for byte.
    const moved = path.join(root, 'moved');
    const movedStats = await combineBackups([full, inc1, inc2], moved, { fsync: false, consume: true });
    assert.equal(movedStats.filesReconstructed, 1);
    assert.deepEqual(treeOf(moved), treeOf(out));
    assert.ok(!fs.existsSync(path.join(full, rel)), 'the full copy was moved, not copied');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('combine refuses a broken chain: another cluster, a wrong parent, an incremental first, a file missing in the middle', async () => {
  const root = tmp('chain');
  try {
    const rel = 'base/5/16384';
    const full = fakeBackup(root, 'full', { start: '0/2000028', files: { [rel]: page(1) } });
    const other = fakeBackup(root, 'other', { start: '0/3000028', from: '0/2000028', sysid: 8n, files: {} });
    await assert.rejects(checkChain([full, other]), /is from another cluster: system identifier 8, the chain's is 7/);
    const wrongParent = fakeBackup(root, 'wrong', { start: '0/3000028', from: '0/1000028', files: {} });
    await assert.rejects(
      checkChain([full, wrongParent]),
      /taken against the backup starting at 0\/1000028 on timeline 1, but the backup before it .* starts at 0\/2000028/,
    );
    await assert.rejects(checkChain([wrongParent]), /is an incremental backup; the chain must start with a full one/);
    const gapInc = fakeBackup(root, 'inc1', { start: '0/3000028', from: '0/2000028', files: {} });
    const last = fakeBackup(root, 'inc2', {
      start: '0/4000028',
      from: '0/3000028',
      files: { 'base/5/INCREMENTAL.16384': encodeIncrementalFile(1, new Map()) },
    });
    await assert.rejects(
      combineBackups([full, gapInc, last], path.join(root, 'out'), { fsync: false }),
      (e: Error) => e instanceof CombineError && /neither a full nor an incremental copy/.test(e.message),
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

/** Every file under `dir`, relative path -> sha256 of its bytes. */
function treeOf(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const f of fs.readdirSync(dir, { recursive: true })) {
    const p = path.join(dir, String(f));
    if (fs.statSync(p).isFile()) files[String(f)] = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
  }
  return files;
}

async function backupInto(
  dir: string,
  conn: { host: string; port: number; user: string; password: string },
  owner: { uid: number; gid: number },
  parentManifest?: Buffer,
): Promise<{ manifest: Buffer; stats: TarStats; startLsn: string }> {
  const sink = new TarExtractor(dir, { owner, fsync: false });
  fs.chownSync(dir, owner.uid, owner.gid);
  const out = await streamBaseBackup(conn, sink, { label: path.basename(dir), wal: true, parentManifest });
  return { manifest: out.manifest, stats: out.sink, startLsn: out.startLsn };
}

test('a real full + two PG17 incremental backups combine into a directory Postgres starts on, with the data of the last one', async (t) => {
  const primary = await makeTempPrimary({
    nodeId: 'p1',
    settings: { parameters: { summarize_wal: 'on', shared_buffers: '32MB', max_connections: 30, fsync: false } },
  });
  let restored: PostgresInstance | undefined;
  try {
    const q = (sql: string) => primary.pg.query(sql);
    await q(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100000) g`);
    await q(`CREATE INDEX t_v ON t (v)`);
    await q('CHECKPOINT');
    const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
    const owner = primary.pg.user;
    const dirs = ['full', 'inc1', 'inc2'].map((n) => {
      const d = path.join(primary.root, n);
      fs.mkdirSync(d, { mode: 0o700 });
      return d;
    });
    const full = await backupInto(dirs[0]!, conn, owner);
    await q(`UPDATE t SET v = 'changed ' || id WHERE id % 100 = 0`);
    await q(`CREATE TABLE u AS SELECT g AS id FROM generate_series(1, 5000) g`);
    // An incremental right after its parent needs the WAL summarizer to pass a new checkpoint and segment (storage facts §1).
    await q('CHECKPOINT');
    await q('SELECT pg_switch_wal()');
    const inc1 = await backupInto(dirs[1]!, conn, owner, full.manifest);
    await q(`DELETE FROM t WHERE id % 7 = 0`);
    await q('VACUUM t');
    await q('DROP TABLE u');
    await q('CHECKPOINT');
    await q('SELECT pg_switch_wal()');
    const inc2 = await backupInto(dirs[2]!, conn, owner, inc1.manifest);
    const digest = `SELECT count(*)::int AS n, sum(hashtext(v))::text AS h FROM t`;
    const want = (await q(digest)).rows[0];
    const incFiles = (d: string) => fs.readdirSync(path.join(d, 'base'), { recursive: true }).filter((n) => String(n).includes('INCREMENTAL.')).length;
    assert.ok(incFiles(dirs[1]!) > 100, `inc1 holds INCREMENTAL files (${incFiles(dirs[1]!)})`);
    t.diagnostic(
      `full ${(full.stats.tarBytes / 1e6).toFixed(1)} MB, inc1 ${(inc1.stats.tarBytes / 1e6).toFixed(1)} MB, inc2 ${(inc2.stats.tarBytes / 1e6).toFixed(1)} MB of tar`,
    );

    const out = path.join(primary.root, 'combined');
    const stats = await combineBackups(dirs, out, { owner, fsync: false, consume: true });
    assert.ok(stats.filesReconstructed > 100, `reconstructed ${stats.filesReconstructed}`);
    restored = await startCopy(out);
    assert.deepEqual((await restored.query(digest)).rows[0], want);
    assert.equal((await restored.query(`SELECT to_regclass('u') IS NULL AS gone`)).rows[0]?.gone, true);
    // The index agrees with the heap after the reconstruction (amcheck ships in the embedded package).
    await restored.query('CREATE EXTENSION IF NOT EXISTS amcheck');
    await restored.query(`SELECT bt_index_check('t_v'::regclass, true)`);
  } finally {
    try {
      if (restored?.isRunning()) await restored.stop('immediate', { timeoutMs: 10_000 });
    } finally {
      await primary.cleanup();
    }
  }
});
