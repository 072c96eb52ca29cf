// Deliberately unsafe switches, each turning off one safety step of failover.
// They exist to show that the jepsen suite catches what that step prevents
// (jepsen/harness/README.md, "Unsafe switches"): a suite that passes on a build with a
// step missing proves nothing about the step. Set through the environment
// (OGEL_UNSAFE=name[,name]) so no config file can carry one into production;
// the daemon logs an error line naming each one that is on.

export const UNSAFE_ENV = 'OGEL_UNSAFE';

export const UNSAFE_SWITCHES = {
  'keep-wal-receivers':
    "a failover does not stop the standbys' WAL receivers before it promotes one (I4): the old primary can still have commits acknowledged by a standby that keeps streaming from it",
  'no-fence': 'a primary whose lease lapses is not made read-only (I3): it keeps taking writes while another node may be promoted',
  'no-rejoin-guard':
    'a node that starts with an empty Raft directory in a running cluster votes and acknowledges at once (I1): a wiped node can elect a leader that lacks committed entries',
} as const;

export type UnsafeSwitch = keyof typeof UNSAFE_SWITCHES;

export function isUnsafeSwitch(name: string): name is UnsafeSwitch {
  return Object.hasOwn(UNSAFE_SWITCHES, name);
}

/** Parses OGEL_UNSAFE's value; an unknown name is an error that lists the known ones. */
export function parseUnsafeSwitches(raw: string | undefined): ReadonlySet<UnsafeSwitch> {
  const out = new Set<UnsafeSwitch>();
  if (raw === undefined || raw.trim() === '') return out;
  for (const part of raw.split(',')) {
    const name = part.trim();
    if (!isUnsafeSwitch(name)) {
      throw new Error(
        `${UNSAFE_ENV}: unknown switch ${JSON.stringify(name)}; known: ${Object.keys(UNSAFE_SWITCHES).join(', ')} (unset ${UNSAFE_ENV} for a safe build)`,
      );
    }
    out.add(name);
  }
  return out;
}
