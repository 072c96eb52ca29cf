// I3: Postgres must not outlive its daemon. A daemon killed with -9 cannot stop
// its postmaster, so the death guard does: the postmaster must exit shortly after.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { pidAlive } from './instance.js';
import { setTimeout as sleep } from 'node:timers/promises';

test('a postmaster exits when its daemon is killed with SIGKILL', async (t) => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../../test/helpers/death-guard-child.js', import.meta.url))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    child.once('exit', (code) => reject(new Error(`helper exited early with ${code}`)));
  });
  const { pid, root } = JSON.parse(line) as { pid: number; root: string };
  t.after(() => {
    if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  assert.ok(pidAlive(pid), 'the postmaster runs');
  process.kill(child.pid!, 'SIGKILL');
  const deadline = Date.now() + 5_000;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(20);
  assert.equal(pidAlive(pid), false, `postmaster ${pid} still runs 5 s after its parent was killed`);
});
