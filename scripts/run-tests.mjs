// Runs every compiled *.test.js under dist/ with node's built-in test runner.
// Explicit file list: node's default discovery would also run helper modules that
// merely live in a test/ folder. Usage: node scripts/run-tests.mjs [substring ...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';

// Once, before any test: can Postgres run here? As root it runs as an
// unprivileged OS user, which must reach the binaries and the temp directory.
// One line and a stop beat dozens of tests failing for the same reason.
const { testPreflight } = await import(new URL('../dist/src/local/preflight.js', import.meta.url).href);
const cannot = testPreflight(tmpdir());
if (cannot !== undefined) {
  console.error(`npm test: ${cannot}`);
  process.exit(1);
}

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = find('dist', [])
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`no test files matched ${filters.length ? filters.join(', ') : 'dist/**/*.test.js'}: run 'npm run build' first`);
  process.exit(1);
}
const reporter = 'spec';
const result = spawnSync(process.execPath, ['--test', `--test-reporter=${reporter}`, '--test-concurrency=2', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
