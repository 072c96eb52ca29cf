// Scenarios that need root and private namespaces (test/scenarios/*.ts) run as a
// child under `unshare`, in their own process group so a stuck one is killed
// whole. Without what they need, the test is skipped with the reason, never passed.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { runProcessGroup } from './process-group.js';

export interface RootScenario {
  /** Compiled scenario, e.g. 'dist/test/scenarios/partition-primary.js'. */
  script: string;
  /** unshare's namespace flags, e.g. ['--net'] or ['--net', '--mount']. */
  namespaces: readonly string[];
  /** Commands it needs, each with the Debian package that has it. */
  tools: Readonly<Record<string, string>>;
  /** A command run under `unshare <namespaces>` that must succeed here; its stderr is the reason when not. */
  probe: readonly string[];
  /** What root is needed for, in the skip reason. */
  why: string;
  timeoutMs: number;
  args?: readonly string[];
}

/** Why the scenario cannot run here, or undefined when it can. */
function cannotRun(s: RootScenario): string | undefined {
  if (process.getuid?.() !== 0) return `needs root (${s.why})`;
  for (const [tool, pkg] of Object.entries(s.tools)) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (apt-get install -y ${pkg})`;
  }
  const probe = spawnSync('unshare', [...s.namespaces, ...s.probe], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0)
    return `${s.probe.join(' ')} does not work under unshare ${s.namespaces.join(' ')} here: ${(probe.stderr || probe.error?.message || '').trim()}`;
  return undefined;
}

/** Runs the scenario; resolves to its last stdout line (its JSON figures), or undefined when skipped. */
export async function runRootScenario(t: TestContext, s: RootScenario): Promise<string | undefined> {
  const why = cannotRun(s);
  if (why !== undefined) {
    t.skip(why);
    return undefined;
  }
  const { code, stdout, stderr, timedOut } = await runProcessGroup(
    'unshare',
    [...s.namespaces, process.execPath, resolve(s.script), ...(s.args ?? [])],
    s.timeoutMs,
  );
  assert.equal(timedOut, false, `the scenario did not finish within ${s.timeoutMs} ms and was killed:\n${stderr.slice(-6_000)}`);
  assert.equal(code, 0, `the scenario failed:\n${stderr.slice(-6_000)}`);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  t.diagnostic(line);
  return line;
}
