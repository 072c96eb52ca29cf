// transfer-storm: for the fault's duration, back-to-back Raft leadership
// transfers (POST /v1/leadership/transfer to the leader) and Postgres
// switchovers (POST /v1/switchover, forwarded to the leader), each to a target
// drawn from the PRNG, one at a time. Refusals are expected (a switchover while
// one is running, a transfer during an election): they are counted, not errors.

import type { Prng } from '../../raft/sim/prng.js';
import type { Json } from '../history/index.js';
import { nodeInRole } from './targets.js';
import type { ActiveFault, Nemesis, NemesisContext } from './types.js';

const PAUSE_MIN_MS = 100;
const PAUSE_MAX_MS = 600;
const SWITCHOVER_SHARE = 0.4;
/** Bound on the actions kept in the fault's record. */
const ACTIONS_KEPT_MAX = 100;

export const transferStorm: Nemesis = {
  name: 'transfer-storm',
  async start(ctx: NemesisContext, rng: Prng): Promise<ActiveFault> {
    let stopped = false;
    const actions: Json[] = [];
    const counts = { transfersOk: 0, transfersRefused: 0, switchoversOk: 0, switchoversRefused: 0 };
    let wake: (() => void) | undefined;
    const pause = (ms: number) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    const loop = (async () => {
      while (!stopped) {
        const switchover = rng.chance(SWITCHOVER_SHARE);
        const t0 = performance.now();
        let ok = false;
        let what: Json = null;
        try {
          if (switchover) {
            const primary = await nodeInRole(ctx, 'primary');
            const candidates = ctx.cluster.ids.filter((id) => id !== primary && ctx.cluster.isRunning(id));
            const via = rng.pick(ctx.cluster.ids.filter((id) => ctx.cluster.isRunning(id)));
            if (candidates.length > 0 && primary !== undefined) {
              const to = rng.pick(candidates);
              const r = await ctx.cluster.c.send(via, 'POST', '/v1/switchover', { to });
              ok = r.status === 200;
              what = { switchover: `${primary}->${to}`, status: r.status };
            }
          } else {
            const leader = await nodeInRole(ctx, 'leader');
            if (leader !== undefined && ctx.cluster.isRunning(leader)) {
              const to = rng.pick(ctx.cluster.ids.filter((id) => id !== leader));
              const r = await ctx.cluster.c.send(leader, 'POST', '/v1/leadership/transfer', { to });
              ok = r.status === 200;
              what = { transfer: `${leader}->${to}`, status: r.status };
            }
          }
        } catch (e) {
          what = { [switchover ? 'switchover' : 'transfer']: 'error', error: (e as Error).message };
        }
        if (switchover) ok ? counts.switchoversOk++ : counts.switchoversRefused++;
        else ok ? counts.transfersOk++ : counts.transfersRefused++;
        if (actions.length < ACTIONS_KEPT_MAX && what !== null) actions.push({ ...(what as object), ms: Math.round(performance.now() - t0) } as Json);
        if (!stopped) await pause(rng.int(PAUSE_MIN_MS, PAUSE_MAX_MS));
      }
    })();
    return {
      detail: { storm: 'leadership transfers and switchovers' },
      heal: async () => {
        stopped = true;
        wake?.();
        await loop;
        return { ...counts, actions };
      },
    };
  },
};
