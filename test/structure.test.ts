// The layering rules of the design brief, checked by reading every import, so
// that they stay held. Test files may reach inside a module (to test it); the
// rules bind the code that ships and the tools built on it.
//
// A rule that fails prints each offending import as file: specifier.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SOURCE_DIRS = ['src', 'fsm', 'raft', 'scripts', 'jepsen', 'test', 'deploy'];

interface Import {
  /** Importing file, relative to the repository root. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** For a relative specifier: the imported file relative to the root, as a .ts path. */
  target?: string;
}

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(relative(ROOT, p));
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*'([^']+)'|\bimport\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s*'([^']+)'/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const specifier = m[1] ?? m[2] ?? m[3];
    if (specifier === undefined) continue;
    const imp: Import = { from: file, specifier };
    if (specifier.startsWith('.')) imp.target = normalize(join(dirname(file), specifier)).replace(/\.js$/, '.ts');
    out.push(imp);
  }
  return out;
}

const FILES = SOURCE_DIRS.flatMap((d) => walk(join(ROOT, d), []));
const SHIPPED = FILES.filter((f) => !f.endsWith('.test.ts') && !f.startsWith('test/'));
const IMPORTS = SHIPPED.flatMap(importsOf);

function under(path: string | undefined, prefix: string): boolean {
  return path !== undefined && (path === prefix || path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`));
}

function offenders(pred: (i: Import) => boolean): string[] {
  return IMPORTS.filter(pred).map((i) => `${i.from}: ${i.specifier}`);
}

test('the import reader sees the imports (a rule that reads nothing proves nothing)', () => {
  assert.ok(SHIPPED.length > 100, `only ${SHIPPED.length} files read`);
  assert.ok(IMPORTS.some((i) => i.from === 'src/main.ts' && i.target === 'src/cli/run.ts'));
  assert.ok(IMPORTS.some((i) => i.from === 'src/daemon/daemon.ts' && i.target === 'raft/index.ts'));
  assert.ok(IMPORTS.some((i) => i.specifier === 'undici'));
});

test('fsm/ is pure: it imports only itself and npm packages, never raft/ or src/', () => {
  assert.deepEqual(
    offenders((i) => under(i.from, 'fsm') && i.target !== undefined && !under(i.target, 'fsm')),
    [],
  );
});

test('fsm/ is pure: no clock, randomness, I/O or network modules', () => {
  const impure = /^(node:)?(fs|fs\/promises|net|http|https|child_process|dgram|os|crypto|timers|timers\/promises)$|^(undici|pg|level)$/;
  assert.deepEqual(
    offenders((i) => under(i.from, 'fsm') && impure.test(i.specifier)),
    [],
  );
});

test('raft/ imports only itself and npm packages', () => {
  assert.deepEqual(
    offenders((i) => under(i.from, 'raft') && i.target !== undefined && !under(i.target, 'raft')),
    [],
  );
});

test("outside raft/, raft is imported only through raft/index.ts (jepsen may reuse the simulator's seeded PRNG)", () => {
  const allowed = new Set(['raft/index.ts', 'raft/sim/prng.ts']);
  assert.deepEqual(
    offenders(
      (i) => !under(i.from, 'raft') && under(i.target, 'raft') && !(allowed.has(i.target!) && (i.target === 'raft/index.ts' || under(i.from, 'jepsen'))),
    ),
    [],
  );
});

test('outside fsm/, fsm is imported only through fsm/index.ts', () => {
  assert.deepEqual(
    offenders((i) => !under(i.from, 'fsm') && under(i.target, 'fsm') && i.target !== 'fsm/index.ts'),
    [],
  );
});

test('the proxy does not import the Postgres supervisor (only the small SQL client helpers of src/postgres/query.ts)', () => {
  assert.deepEqual(
    offenders((i) => under(i.from, 'src/proxy') && under(i.target, 'src/postgres') && i.target !== 'src/postgres/query.ts'),
    [],
  );
});

test('the CLI is a client of the admin API: it imports neither the daemon, the local runner, the supervisor nor the proxy', () => {
  const forbidden = ['src/daemon', 'src/local', 'src/postgres', 'src/proxy', 'src/main.ts'];
  assert.deepEqual(
    offenders((i) => under(i.from, 'src/cli') && forbidden.some((f) => under(i.target, f))),
    [],
  );
});

test('controllers decide and propose; they never speak HTTP to other nodes (their agent RPCs go through an interface the daemon wires)', () => {
  const network = /^(node:)?(http|https|net)$|^undici$/;
  assert.deepEqual(
    offenders((i) => under(i.from, 'src/controllers') && network.test(i.specifier)),
    [],
  );
});

test('product code (src, fsm, raft) never imports test/ or scripts/', () => {
  const product = (f: string) => under(f, 'src') || under(f, 'fsm') || under(f, 'raft');
  assert.deepEqual(
    offenders((i) => product(i.from) && (under(i.target, 'test') || under(i.target, 'scripts'))),
    [],
  );
});

/** The folder a file belongs to for layering: src/<folder>, or the top folder. src/main.ts, the binary's wiring, is its own. */
function layer(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : file === 'src/main.ts' ? 'main' : 'src';
  return parts[0]!;
}

test('the folders of src/, fsm/ and raft/ form layers: no import cycle between folders', () => {
  const product = (f: string) => under(f, 'src') || under(f, 'fsm') || under(f, 'raft');
  const edges = new Map<string, Set<string>>();
  const witness = new Map<string, string>();
  for (const i of IMPORTS) {
    if (i.target === undefined || !product(i.from) || !product(i.target)) continue;
    const a = layer(i.from);
    const b = layer(i.target);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)!.add(b);
    if (!witness.has(`${a}->${b}`)) witness.set(`${a}->${b}`, `${i.from}: ${i.specifier}`);
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      if (state.get(m) === 'open') {
        const cycle = [...stack.slice(stack.indexOf(m)), m];
        cycles.push(
          cycle
            .slice(1)
            .map((to, k) => witness.get(`${cycle[k]}->${to}`))
            .join(' / '),
        );
      } else if (state.get(m) === undefined) visit(m);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...edges.keys()].sort()) if (state.get(n) === undefined) visit(n);
  assert.deepEqual(cycles, []);
});
