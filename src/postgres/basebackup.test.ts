// tar-extract unit tests (tars built here, by hand and with the system `tar`),
// then a real base backup of a real PostgreSQL 17 primary that starts as a standby.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';

import { compareLsn } from '../../fsm/index.js';
import { takeBaseBackup } from './basebackup.js';
import type { PostgresInstance } from './instance.js';
import { readReplicationPassword, REPLICATION_ROLE } from './settings.js';
import { configureStandby } from './standby.js';
import { TarExtractor, TarFormatError, extractTar } from './tar-extract.js';
import { makeTempPrimary, testStandbyInstance, waitFor } from '../../test/helpers/postgres.js';

// ------------------------------------------------------------ fixtures

function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ogel-${tag}-`));
}

/** One ustar header block (POSIX magic), with a correct checksum. */
function header(name: string, o: { type?: string; size?: number; mode?: number; linkname?: string; prefix?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write((o.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1');
  h.write('0000000\0', 116, 'latin1');
  h.write((o.size ?? 0).toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1');
  h.write(o.type ?? '0', 156, 'latin1');
  if (o.linkname) h.write(o.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  if (o.prefix) h.write(o.prefix, 345, 155, 'utf8');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

function fileEntry(name: string, content: Buffer, mode = 0o600): Buffer[] {
  const pad = (512 - (content.length % 512)) % 512;
  return [header(name, { size: content.length, mode }), content, Buffer.alloc(pad)];
}

const EOF = Buffer.alloc(1024);

/** A small archive in the shape Postgres emits: dirs first, 0600 files, a symlink. */
function tinyTar(): Buffer {
  return Buffer.concat([
    header('base', { type: '5', mode: 0o700 }),
    ...fileEntry('base/data', Buffer.from('x'.repeat(600))),
    header('base/empty', { size: 0, mode: 0o600 }),
    header('link', { type: '2', linkname: 'base/data', mode: 0o777 }),
    EOF,
  ]);
}

function checkTiny(dir: string): void {
  assert.equal(fs.readFileSync(path.join(dir, 'base/data'), 'utf8'), 'x'.repeat(600));
  assert.equal(fs.statSync(path.join(dir, 'base/empty')).size, 0);
  assert.equal(fs.readlinkSync(path.join(dir, 'link')), 'base/data');
  assert.equal(fs.statSync(path.join(dir, 'base')).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'base/data')).mode & 0o777, 0o600);
}

async function extractChunks(tar: Buffer, dir: string, cuts: number[], opts: { reuse?: boolean; inflightBytesMax?: number; openFilesMax?: number } = {}) {
  const x = new TarExtractor(dir, { fsync: false, inflightBytesMax: opts.inflightBytesMax, openFilesMax: opts.openFilesMax });
  // With `reuse`, every chunk is written from one scratch buffer that is then
  // overwritten, as pg's protocol parser does with its read buffer.
  const scratch = Buffer.alloc(Math.max(1, tar.length));
  let prev = 0;
  for (const cut of [...cuts, tar.length]) {
    if (cut < prev) continue;
    let view = tar.subarray(prev, cut);
    if (opts.reuse) {
      view.copy(scratch, 0);
      view = scratch.subarray(0, cut - prev);
    }
    const more = x.write(view);
    if (opts.reuse) scratch.fill(0xee);
    if (!more) await new Promise<void>((r) => x.once('drain', r));
    prev = cut;
  }
  return x.end();
}

/** Every entry under dir: type, mode, and content or link target; keyed by relative path. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = fs.lstatSync(path.join(dir, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(r, `link -> ${fs.readlinkSync(path.join(dir, r))}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        walk(r);
      } else
        out.set(
          r,
          `file ${mode} ${createHash('sha256')
            .update(fs.readFileSync(path.join(dir, r)))
            .digest('hex')
            .slice(0, 16)}`,
        );
    }
  };
  walk('');
  return out;
}

/** A source tree with the awkward cases: sizes around 512, long names, symlinks, modes. */
function makeTree(root: string): void {
  fs.mkdirSync(path.join(root, 'global'), { mode: 0o700 });
  fs.mkdirSync(path.join(root, 'base/1'), { recursive: true });
  fs.chmodSync(path.join(root, 'base'), 0o750);
  for (const size of [0, 1, 511, 512, 513, 8192, 70_001]) {
    fs.writeFileSync(path.join(root, 'base/1', `f${size}`), randomBytes(size));
  }
  fs.writeFileSync(path.join(root, 'global/pg_control'), randomBytes(8192), { mode: 0o600 });
  fs.chmodSync(path.join(root, 'global/pg_control'), 0o600);
  fs.writeFileSync(path.join(root, 'script'), '#!/bin/sh\n');
  fs.chmodSync(path.join(root, 'script'), 0o755);
  const longDir = path.join(root, 'd'.repeat(120), 'e'.repeat(90));
  fs.mkdirSync(longDir, { recursive: true });
  fs.writeFileSync(path.join(longDir, 'n'.repeat(150)), 'long name content');
  fs.symlinkSync('base/1/f513', path.join(root, 'rel-link'));
  fs.symlinkSync('/somewhere/outside/' + 't'.repeat(130), path.join(root, 'long-target-link'));
}

// ------------------------------------------------------------ tar-extract

test('tar-extract: ustar, pax and GNU archives from the system tar round-trip (files, dirs, symlinks, long names, modes)', async () => {
  const src = tmpDir('tar-src');
  try {
    makeTree(src);
    const want = snapshot(src);
    for (const format of ['ustar', 'pax', 'gnu'] as const) {
      // ustar holds neither a 120-byte directory name nor a 150-byte file name (tar
      // drops them) nor a 150-byte link target (tar truncates it): compare the rest.
      const args = ['--format', format, '-C', src, '-cf', '-', '.'];
      let tar: Buffer;
      try {
        tar = execFileSync('tar', args, { maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (e) {
        if (format !== 'ustar') throw e;
        tar = (e as { stdout: Buffer }).stdout;
      }
      const dst = tmpDir(`tar-${format}`);
      try {
        const stats = await extractChunks(tar, dst, [], {});
        const got = snapshot(dst);
        if (format === 'ustar') {
          const fits = (m: Map<string, string>) => new Map([...m].filter(([k]) => !k.includes('d'.repeat(120)) && k !== 'long-target-link'));
          assert.deepEqual(fits(got), fits(want), format);
        } else {
          assert.deepEqual(got, want, format);
        }
        assert.equal(stats.tarBytes, tar.length, `${format}: every byte consumed`);
      } finally {
        fs.rmSync(dst, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
});

test('tar-extract: 1-byte chunks, random chunks and a reused caller buffer give the same tree', async () => {
  const src = tmpDir('tar-src');
  try {
    makeTree(src);
    const want = snapshot(src);
    const tar = execFileSync('tar', ['--format', 'pax', '-C', src, '-cf', '-', '.'], { maxBuffer: 64 << 20 });
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const randomCuts: number[] = [];
    for (let at = 0; at < tar.length; at += 1 + Math.floor(rand() * 3000)) randomCuts.push(at);
    const everyByte = Array.from({ length: tar.length }, (_, i) => i);
    const cases: Array<[string, number[], Parameters<typeof extractChunks>[3]]> = [
      ['every byte', everyByte, { reuse: true }],
      ['random, reused buffer', randomCuts, { reuse: true }],
      ['random, tiny budgets (waits for in-flight bytes and file slots)', randomCuts, { reuse: true, inflightBytesMax: 1, openFilesMax: 1 }],
    ];
    for (const [what, cuts, opts] of cases) {
      const dst = tmpDir('tar-chunks');
      try {
        await extractChunks(tar, dst, cuts, opts);
        assert.deepEqual(snapshot(dst), want, what);
      } finally {
        fs.rmSync(dst, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
});

test('tar-extract: a split at every block boundary (and its neighbours) of a small archive, and every 5th offset', async () => {
  const tar = tinyTar();
  const root = tmpDir('tar-split');
  const cuts = new Set<number>();
  for (let b = 0; b <= tar.length; b += 512) for (const d of [-1, 0, 1]) if (b + d >= 0 && b + d <= tar.length) cuts.add(b + d);
  for (let at = 0; at <= tar.length; at += 5) cuts.add(at);
  try {
    for (const cut of [...cuts].sort((a, b) => a - b)) {
      const dst = path.join(root, String(cut));
      await extractChunks(tar, dst, [cut], { reuse: true });
      checkTiny(dst);
      fs.rmSync(dst, { recursive: true });
    }
    // One block per write with one file slot: a header completes exactly at the
    // end of a write and must wait (with nothing queued) for the previous file to close.
    const blocks = Array.from({ length: tar.length / 512 }, (_, i) => i * 512);
    const many = Buffer.concat([...Array.from({ length: 20 }, (_, i) => fileEntry(`f${i}`, Buffer.from(`file ${i}`))).flat(), EOF]);
    const manyBlocks = Array.from({ length: many.length / 512 }, (_, i) => i * 512);
    await extractChunks(tar, path.join(root, 'blocks'), blocks, { openFilesMax: 1, inflightBytesMax: 1 });
    checkTiny(path.join(root, 'blocks'));
    await extractChunks(many, path.join(root, 'many'), manyBlocks, { openFilesMax: 1 });
    for (let i = 0; i < 20; i++) assert.equal(fs.readFileSync(path.join(root, 'many', `f${i}`), 'utf8'), `file ${i}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('tar-extract: extractTar from a stream, with fsync and chown', async () => {
  const dst = tmpDir('tar-stream');
  try {
    const owner = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;
    const stats = await extractTar(Readable.from([tinyTar()]), dst, { owner });
    assert.deepEqual(
      { files: stats.files, dirs: stats.dirs, symlinks: stats.symlinks, fileBytes: stats.fileBytes },
      { files: 2, dirs: 1, symlinks: 1, fileBytes: 600 },
    );
    checkTiny(dst);
    if (owner) {
      for (const p of ['base', 'base/data', 'base/empty', 'link']) assert.equal(fs.lstatSync(path.join(dst, p)).uid, 65534, p);
    }
  } finally {
    fs.rmSync(dst, { recursive: true, force: true });
  }
});

test('tar-extract: refuses entries escaping the target (.., absolute, through its own symlink), bad checksums, truncation', async () => {
  const outside = tmpDir('tar-outside');
  const evil: Array<[string, Buffer, RegExp]> = [
    ['dot-dot', Buffer.concat([...fileEntry('../escaped', Buffer.from('no')), EOF]), /escapes the target directory/],
    ['nested dot-dot', Buffer.concat([...fileEntry('a/../../escaped', Buffer.from('no')), EOF]), /escapes the target directory/],
    ['absolute', Buffer.concat([...fileEntry(path.join(outside, 'escaped'), Buffer.from('no')), EOF]), /absolute path/],
    ['dot-dot via prefix', Buffer.concat([header('escaped', { size: 0, prefix: '..' }), EOF]), /escapes the target directory/],
    ['dot-dot symlink name', Buffer.concat([header('../escaped', { type: '2', linkname: 'x' }), EOF]), /escapes the target directory/],
    [
      'through a symlink',
      Buffer.concat([header('lnk', { type: '2', linkname: outside }), ...fileEntry('lnk/escaped', Buffer.from('no')), EOF]),
      /goes through the symlink "lnk"/,
    ],
    ['hard link', Buffer.concat([header('h', { type: '1', linkname: '/etc/passwd' }), EOF]), /hard links are not supported/],
    ['device', Buffer.concat([header('dev', { type: '3' }), EOF]), /unsupported type '3'/],
  ];
  try {
    for (const [what, tar, re] of evil) {
      const dst = tmpDir('tar-evil');
      try {
        await assert.rejects(extractChunks(tar, dst, []), (e: unknown) => e instanceof TarFormatError && re.test((e as Error).message), what);
        assert.deepEqual(fs.readdirSync(outside), [], `${what}: nothing written outside`);
        assert.ok(!fs.existsSync(path.join(path.dirname(dst), 'escaped')), what);
      } finally {
        fs.rmSync(dst, { recursive: true, force: true });
      }
    }
    const corrupt = tinyTar();
    corrupt.writeUInt8(corrupt.readUInt8(600) ^ 0x01, 600); // inside the second header's name
    const dst = tmpDir('tar-bad');
    try {
      await assert.rejects(extractChunks(corrupt, path.join(dst, 'a'), []), /checksum mismatch/);
      await assert.rejects(extractChunks(tinyTar().subarray(0, 1000), path.join(dst, 'b'), []), /truncated tar/);
    } finally {
      fs.rmSync(dst, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(outside, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------ a real base backup

test('base backup of a primary with ~50 MB of data starts as a standby with the same data', async (t) => {
  const primary = await makeTempPrimary({ nodeId: 'p1' });
  let standby: PostgresInstance | undefined;
  try {
    await primary.pg.query(`CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v, repeat('x', 100) AS pad FROM generate_series(1, 300000) g`);
    await primary.pg.query('CHECKPOINT');
    const dbBytes = Number((await primary.pg.query<{ n: string }>(`SELECT pg_database_size('postgres') AS n`)).rows[0]?.n);
    const conn = { host: '127.0.0.1', port: primary.port, user: REPLICATION_ROLE, password: readReplicationPassword(primary.dataDir) };
    const target = path.join(primary.root, 'copy');
    const progress: number[] = [];
    let total: number | undefined;
    const r = await takeBaseBackup(conn, target, {
      label: 'test clone',
      owner: primary.pg.user,
      onProgress: (b, tot) => {
        progress.push(b);
        total = tot;
      },
    });
    const mbPerS = r.bytes / 1e6 / (r.durationMs / 1000);
    t.diagnostic(
      `base backup: ${(r.bytes / 1e6).toFixed(1)} MB of tar (database ${(dbBytes / 1e6).toFixed(1)} MB, ${r.files} files) in ${r.durationMs} ms = ${mbPerS.toFixed(0)} MB/s, fsync included; start ${r.startLsn}, end ${r.endLsn}`,
    );
    assert.ok(dbBytes > 45e6, `database is ${dbBytes} bytes`);
    assert.equal(r.timeline, 1);
    assert.equal(compareLsn(r.endLsn, r.startLsn), 1);
    assert.ok(progress.length > 0 && progress.at(-1)! > 45e6, `progress reported: ${progress.join(',')}`);
    assert.ok(total !== undefined && total > 40e6, `total estimate ${total}`);
    for (const f of ['PG_VERSION', 'global/pg_control', 'backup_label', 'backup_manifest', 'pg_wal']) assert.ok(fs.existsSync(path.join(target, f)), f);
    assert.ok(!fs.readdirSync(target).some((n) => n.startsWith('.s.PGSQL.')), 'the primary socket lock file is not copied');
    assert.equal(fs.statSync(target).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(target, 'global/pg_control')).uid, primary.pg.user.uid);
    assert.match(fs.readFileSync(path.join(target, 'backup_label'), 'utf8'), /LABEL: test clone/);

    // A second backup into a non-empty directory is refused.
    await assert.rejects(takeBaseBackup(conn, target, { label: 'again' }), /is not empty/);
    // A tablespace outside the data directory is refused (for now), and the
    // aborted attempt leaves its target empty for a retry.
    const tsDir = path.join(primary.root, 'ts');
    fs.mkdirSync(tsDir, { mode: 0o700 });
    fs.chownSync(tsDir, primary.pg.user.uid, primary.pg.user.gid);
    await primary.pg.query(`CREATE TABLESPACE extra LOCATION '${tsDir}'`);
    const refused = path.join(primary.root, 'refused');
    await assert.rejects(
      takeBaseBackup(conn, refused, { label: 'with a tablespace' }),
      /tablespace\(s\) besides pg_default\/pg_global .*ALTER TABLE ... SET TABLESPACE pg_default/,
    );
    assert.deepEqual(fs.readdirSync(refused), []);
    await primary.pg.query('DROP TABLESPACE extra');
    // Aborted mid-stream (at the first progress report): rejects, leaves nothing behind.
    const ac = new AbortController();
    const aborted = path.join(primary.root, 'aborted');
    await assert.rejects(
      takeBaseBackup(conn, aborted, { label: 'aborted', signal: ac.signal, onProgress: () => ac.abort('test') }),
      /base backup aborted: test/,
    );
    assert.deepEqual(fs.readdirSync(aborted), []);

    configureStandby(target, { upstream: { ...conn, applicationName: 's1' }, owner: primary.pg.user });
    standby = await testStandbyInstance(target);
    await standby.start({ timeoutMs: 15_000 });
    const sb = standby;
    assert.equal((await sb.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]?.r, true);
    const digest = `SELECT count(*)::int AS n, sum(hashtext(v || pad))::text AS h FROM t`;
    const want = (await primary.pg.query(digest)).rows[0];
    assert.deepEqual((await sb.query(digest)).rows[0], want);
    // And it streams: a row written after the backup arrives.
    await primary.pg.query(`INSERT INTO t VALUES (0, 'after the backup', '')`);
    await waitFor('the new row on the standby', async () => ((await sb.query(`SELECT 1 FROM t WHERE id = 0`)).rowCount === 1 ? true : undefined));
  } finally {
    try {
      if (standby?.isRunning()) await standby.stop('immediate', { timeoutMs: 10_000 });
    } finally {
      await primary.cleanup();
    }
  }
});
