// Picks the cluster's first Postgres primary, on the leader, once: when no
// promotion ever happened (generation 0) and every node of the config is a
// recorded, healthy member. The choice is the highest `priority`, then the
// lowest id, so a cluster started twice from the same config picks the same node.
// The agents do the rest: the primary's initializes its data directory (only
// for generation 1 with reason 'bootstrap'), the others clone it.

import type { ApplyOk, Command, ClusterStateMachine } from '../../fsm/index.js';
import type { Config } from '../config/index.js';
import { sleep, type Controller, type ControllerContext } from './manager.js';

const INTERVAL_MS = 200;

export function chooseBootstrapPrimary(config: Config, healthy: ReadonlySet<string>): string | undefined {
  const candidates = config.nodes.filter((n) => healthy.has(n.id));
  if (candidates.length !== config.nodes.length) return undefined; // wait for everyone: no node should miss the start
  return [...candidates].sort((a, b) => b.priority - a.priority || (a.id < b.id ? -1 : 1))[0]?.id;
}

export class BootstrapPrimaryController implements Controller {
  readonly name = 'bootstrap-primary';

  constructor(
    private readonly config: Config,
    private readonly fsm: ClusterStateMachine,
    private readonly propose: (cmd: Command) => Promise<ApplyOk>,
  ) {}

  async run(ctx: ControllerContext): Promise<void> {
    while (!ctx.signal.aborted) {
      const s = this.fsm.state;
      if (s.postgres.generation > 0) return; // done, now or earlier: never again
      const healthy = new Set([...s.members.values()].filter((m) => m.health.healthy && s.postgres.nodes.has(m.id)).map((m) => m.id));
      const node = chooseBootstrapPrimary(this.config, healthy);
      if (node !== undefined) {
        await this.propose({
          v: 1,
          type: 'pg.promote',
          node,
          generation: 1,
          reason: 'bootstrap',
          lsn: '0/0',
          leaseDurationMs: this.config.postgres.leaseMs,
          automatic: false,
          lapsedLease: null,
          atMs: Date.now(),
        });
        ctx.log({ level: 'info', msg: 'chose the first Postgres primary', node });
        return;
      }
      await sleep(INTERVAL_MS, ctx.signal);
    }
  }
}
