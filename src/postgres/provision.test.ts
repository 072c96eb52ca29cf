// A clone is never adopted from a primary that was replaced while it ran (I4):
// such a clone can hold the old primary's WAL past the new timeline's fork point
// (commits the new primary never had). Found by a jepsen run (partition-primary,
// seed 3, under CPU load): a standby re-cloned from the old primary for 6 s, was
// adopted for the next generation, later promoted with the old timeline's data,
// and an element the old primary had lost came back (a 'disappeared' anomaly).
// Here a real primary is cloned with a state-machine view that moves on during
// the clone (discarded), and a finished clone of an older generation is not
// adopted by the re-clone step (discarded, no pg.setRole).

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { ApplyResult, ClusterState, Command } from '../../fsm/index.js';
import { C, run } from '../../fsm/test/helpers.js';
import { makeTempPrimary, freePort, type TempPrimary } from '../../test/helpers/postgres.js';
import { replicationPassword } from '../auth/passwords.js';
import { parseConfig, type Config } from '../config/index.js';
import { ServerLock, type AgentContext } from './agent-context.js';
import { PostgresInstance } from './instance.js';
import { clonedMarker, cloneStandby, hasData, reclone } from './provision.js';
import { quoteLiteral } from './query.js';
import { REPLICATION_ROLE } from './settings.js';

const T0 = 1_700_000_000_000;

function configFor(primary: TempPrimary): Config {
  const nodes = [1, 2, 3]
    .map(
      (i) =>
        `  - id: n${i}\n    raft: 127.0.0.1:${7000 + i}\n    api: 127.0.0.1:${8000 + i}\n    proxy: 127.0.0.1:${6400 + i}\n    postgres: 127.0.0.1:${i === 1 ? primary.port : 5430 + i}\n`,
    )
    .join('');
  return parseConfig(
    `cluster:\n  name: t\n  secret: ${'s'.repeat(32)}\n  dataDir: ${join(primary.root, 'nodes')}\nnodes:\n${nodes}api:\n  token: ${'t'.repeat(24)}\n`,
    'test config',
  );
}

/** n1 the primary of generation 1 at the real primary's address, reporting as primary. */
function stateAt(primary: TempPrimary): ClusterState {
  const member = (i: number) =>
    ({
      v: 1,
      type: 'member.add',
      atMs: T0,
      id: `n${i}`,
      addresses: {
        raft: `127.0.0.1:${7000 + i}`,
        api: `127.0.0.1:${8000 + i}`,
        proxy: `127.0.0.1:${6400 + i}`,
        postgres: `127.0.0.1:${i === 1 ? primary.port : 5430 + i}`,
      },
    }) as Command;
  return run([member(1), member(2), member(3), C.promote(), C.pgReport({ role: 'primary' })]);
}

function contextFor(primary: TempPrimary, config: Config, dataDir: string, port: number, state: () => ClusterState) {
  const logs: { msg: string; [k: string]: unknown }[] = [];
  const proposed: Command[] = [];
  let adopted: PostgresInstance | undefined;
  const ok: ApplyResult = { ok: true } as ApplyResult;
  const ctx = {
    nodeId: 'n2',
    dataDir,
    port,
    config,
    log: (e: { msg: string }) => logs.push(e),
    now: () => performance.now(),
    noSync: true,
    unsafe: new Set(),
    counters: { leaseRenewalsOk: 0, leaseRenewalsFailed: 0, fences: 0, unfences: 0, promotions: 0, reclones: 0, standbyRestarts: 0 },
    serverLock: new ServerLock(),
    state,
    propose: async (cmd: Command) => {
      proposed.push(cmd);
      return ok;
    },
    proposeAndSync: async (cmd: Command) => {
      proposed.push(cmd);
      return ok;
    },
    poke: () => {},
    stopping: () => false,
    instance: () => adopted,
    newInstance: (dir: string) => new PostgresInstance({ dataDir: dir, port }),
    adopt: (inst: PostgresInstance) => {
      adopted = inst;
    },
    observed: () => 'stopped',
    setObserved: () => {},
    binaries: () => primary.pg.binaries,
    osUser: () => primary.pg.user,
    logWaiting: () => {},
  } as unknown as AgentContext;
  return { ctx, logs, proposed };
}

test('a clone is discarded when the primary changed while it ran, and a clone of an older generation is never adopted', async () => {
  const primary = await makeTempPrimary({ nodeId: 'n1' });
  try {
    const config = configFor(primary);
    await primary.pg.query(`ALTER ROLE ${REPLICATION_ROLE} PASSWORD ${quoteLiteral(replicationPassword(config))}`);
    const s1 = stateAt(primary);
    // The same cluster one generation later (a failover decided while the clone ran).
    const s2: ClusterState = { ...s1, postgres: { ...s1.postgres, generation: 2 } };
    const port = await freePort();

    // 1. The view moves on during the clone: nothing is adopted, the temp clone is gone.
    const moved = contextFor(primary, config, join(primary.root, 'moved'), port, () => s2);
    await cloneStandby(moved.ctx, s1);
    assert.equal(hasData(moved.ctx.dataDir), false, 'not adopted');
    assert.equal(existsSync(`${moved.ctx.dataDir}.ogel-clone`), false, 'the temp clone removed');
    assert.ok(
      moved.logs.some((l) => /the primary changed while cloning/.test(l.msg) && l['currentGeneration'] === 2),
      JSON.stringify(moved.logs),
    );

    // 2. A clone finished in generation 1 (its marker says so)...
    let view = s1;
    const kept = contextFor(primary, config, join(primary.root, 'kept'), port, () => view);
    await cloneStandby(kept.ctx, s1);
    assert.equal(hasData(kept.ctx.dataDir), true);
    assert.equal(readFileSync(clonedMarker(kept.ctx.dataDir), 'utf8').trim(), '1');
    // ...is not adopted by the re-clone step of generation 2: removed, no pg.setRole.
    view = s2;
    await reclone(kept.ctx, s2);
    assert.equal(hasData(kept.ctx.dataDir), false, 'the older clone is removed');
    assert.equal(existsSync(clonedMarker(kept.ctx.dataDir)), false);
    assert.deepEqual(
      kept.proposed.filter((c) => c.type === 'pg.setRole'),
      [],
    );
    assert.ok(kept.logs.some((l) => /a clone from an older generation is discarded/.test(l.msg)));

    // 3. A clone of the current generation is adopted: pg.setRole standby.
    view = s1;
    const same = contextFor(primary, config, join(primary.root, 'same'), port, () => view);
    await cloneStandby(same.ctx, s1);
    await reclone(same.ctx, s1);
    assert.equal(hasData(same.ctx.dataDir), true);
    assert.deepEqual(
      same.proposed.filter((c) => c.type === 'pg.setRole').map((c) => [c.type, (c as { role?: string }).role, (c as { generation?: number }).generation]),
      [['pg.setRole', 'standby', 1]],
    );
  } finally {
    await primary.cleanup();
  }
});
