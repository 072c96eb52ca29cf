// Did the faults of the plan happen? A run with no fault (or fewer than
// planned) tests less than it claims: a nemesis that found nothing to do, a
// start that failed, faults never attempted because an earlier one ran long,
// or a run too short to plan any. Without this account such a run reads
// "valid" exactly like a run that survived every fault.
//
// The rule: every nemesis of the run must have at least one fault planned, and
// every planned fault must have been injected. Otherwise the run is not valid:
// its verdict is 'unknown' (nothing was proven wrong about the database; the
// test did not do what it said) with one 'faults-not-injected' anomaly giving
// injected/planned per nemesis. A fault that was injected but failed to heal
// still counts as injected (the final heal undoes everything anyway).

import type { Validity } from '../checkers/types.js';
import type { FaultRecord, PlannedFault } from './scheduler.js';
import type { NemesisName } from './types.js';

export interface NemesisFaults {
  planned: number;
  injected: number;
  /** The nemesis found nothing to do (no primary known, say). */
  skipped: number;
  startFailed: number;
  /** Planned but never tried: the run stopped first. */
  notAttempted: number;
}

export interface FaultAccount {
  planned: number;
  injected: number;
  byNemesis: Record<string, NemesisFaults>;
}

export interface FaultsNotInjectedAnomaly {
  type: 'faults-not-injected';
  message: string;
  planned: number;
  injected: number;
  byNemesis: Record<string, NemesisFaults>;
}

export function accountFaults(nemeses: readonly NemesisName[], plan: readonly PlannedFault[], records: readonly FaultRecord[]): FaultAccount {
  const byNemesis: Record<string, NemesisFaults> = {};
  const of = (name: string): NemesisFaults => (byNemesis[name] ??= { planned: 0, injected: 0, skipped: 0, startFailed: 0, notAttempted: 0 });
  for (const n of nemeses) of(n);
  for (const p of plan) of(p.name).planned++;
  for (const r of records) {
    const c = of(r.name);
    if (r.outcome === 'injected') c.injected++;
    else if (r.outcome === 'skipped') c.skipped++;
    else c.startFailed++;
  }
  for (const c of Object.values(byNemesis)) c.notAttempted = Math.max(0, c.planned - c.injected - c.skipped - c.startFailed);
  return { planned: plan.length, injected: records.filter((r) => r.outcome === 'injected').length, byNemesis };
}

function explain(name: string, c: NemesisFaults): string {
  if (c.planned === 0) return `${name} 0/0 (none planned: the run is too short)`;
  const why = [
    c.skipped > 0 ? `${c.skipped} skipped` : '',
    c.startFailed > 0 ? `${c.startFailed} failed to start` : '',
    c.notAttempted > 0 ? `${c.notAttempted} never attempted` : '',
  ].filter((s) => s !== '');
  return `${name} ${c.injected}/${c.planned}${why.length > 0 ? ` (${why.join(', ')})` : ''}`;
}

export function faultsVerdict(a: FaultAccount): { valid: Validity; anomaly?: FaultsNotInjectedAnomaly } {
  const short = Object.entries(a.byNemesis).filter(([, c]) => c.planned === 0 || c.injected < c.planned);
  if (short.length === 0) return { valid: true };
  return {
    valid: 'unknown',
    anomaly: {
      type: 'faults-not-injected',
      planned: a.planned,
      injected: a.injected,
      byNemesis: a.byNemesis,
      message: `${a.injected} of ${a.planned} planned faults were injected: ${short.map(([n, c]) => explain(n, c)).join(', ')}; the run did not test what it planned`,
    },
  };
}
