// Runs a command in its own process group, so that a stuck run is killed with
// every process it started (daemons, Postgres) when its time is up.

import { spawn } from 'node:child_process';

export interface GroupRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The time was up: the whole group was killed with SIGKILL. */
  timedOut: boolean;
}

export async function runProcessGroup(cmd: string, args: readonly string[], timeoutMs: number): Promise<GroupRun> {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    process.kill(-child.pid!, 'SIGKILL');
  }, timeoutMs);
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}
