// What a Jepsen run needs from the machine, and the step into a private network
// namespace. The harness changes iptables rules and cgroups, so it refuses to
// run anywhere but in a network namespace it created itself (`unshare --net`):
// the machine's own firewall is never touched.

import { spawn, spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

/** Set in the child started under `unshare --net`, so it does not re-exec again. */
export const IN_NETNS_ENV = 'OGEL_JEPSEN_IN_NETNS';

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Why a run cannot happen on this machine (root aside), or undefined when it can. */
export function missingTools(): string | undefined {
  for (const [tool, pkg] of [
    ['unshare', 'util-linux'],
    ['iptables', 'iptables'],
    ['ip', 'iproute2'],
  ] as const) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `needs ${tool} (apt-get install -y ${pkg})`;
  }
  const probe = spawnSync('unshare', ['--net', 'iptables', '-S', 'OUTPUT'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status !== 0) return `iptables does not work in a private network namespace here: ${(probe.stderr || probe.error?.message || '').trim()}`;
  return undefined;
}

/** Whether this process is in the network namespace its parent created for it (see assertPrivateNetns). */
export function inPrivateNetns(): boolean {
  if (process.env[IN_NETNS_ENV] !== '1') return false;
  try {
    return readlinkSync('/proc/self/ns/net') !== readlinkSync(`/proc/${process.ppid}/ns/net`);
  } catch {
    return false;
  }
}

/**
 * Runs this same script again under `unshare --net`, passing stdout and stderr
 * through, and resolves to its exit code. The child runs in its own process group
 * so that an interrupted run is stopped with every daemon and Postgres it started
 * (SIGINT/SIGTERM here are passed on to the group; a hard limit kills it).
 */
export function reexecInNetns(script: string, args: readonly string[], hardLimitMs: number): Promise<number> {
  const child = spawn('unshare', ['--net', process.execPath, script, ...args], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, [IN_NETNS_ENV]: '1' },
  });
  const pass = (sig: NodeJS.Signals) => () => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      /* already gone */
    }
  };
  const onInt = pass('SIGINT');
  const onTerm = pass('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const timer = setTimeout(() => {
    process.stderr.write(`jepsen: the run did not end within ${hardLimitMs} ms; killing it\n`);
    pass('SIGKILL')();
  }, hardLimitMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code ?? (signal ? 128 + 9 : 1));
    });
  });
}
