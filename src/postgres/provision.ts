// The data directory: made once, by initdb for the bootstrap primary or by a
// base backup for a standby, and re-made (re-clone) when a standby diverged or
// `ogel reinit` asks. Every step works in a sibling temp dir and renames, so a
// crash halfway leaves no half-made data dir, and an agent restart resumes it.
// It never initialises an empty database in place of one that was lost.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ClusterState } from '../../fsm/index.js';
import { replicationPassword } from '../auth/passwords.js';
import { parseHostPort } from '../config/index.js';
import { AgentError, type AgentContext } from './agent-context.js';
import { countAsStandby, rejoinMarker } from './follow.js';
import { PostgresInstance } from './instance.js';
import { assertReachable, isRoot } from './os-user.js';
import { REPLICATION_ROLE, settingsFromConfig, slotNameFor } from './settings.js';
import { createStandby } from './standby.js';
import { memberAddress } from '../member-address.js';

/** The data dir holds a Postgres cluster. */
export function hasData(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

/**
 * Sibling marker file, outside the data dir (see rejoinMarker): the data dir is
 * a fresh clone whose pg.setRole standby may not have committed yet.
 */
export function clonedMarker(dataDir: string): string {
  return `${dataDir}.cloned`;
}

/** The generation a fresh clone was taken in (its marker), or null when there is no marker. */
function readCloneGeneration(dataDir: string): number | null {
  try {
    const g = Number(readFileSync(clonedMarker(dataDir), 'utf8').trim());
    return Number.isInteger(g) && g > 0 ? g : 0; // unreadable: 0, which no generation is, so the clone is taken again
  } catch {
    return null;
  }
}

/**
 * Re-clone (diverged, or `ogel reinit`): stop Postgres, keep the old data dir
 * as <dataDir>.previous (one copy, replaced each time: never guess with data,
 * but do not fill the disk either), clone from the primary, then pg.setRole
 * standby. Each step is idempotent, so an agent restart resumes it.
 */
export async function reclone(ctx: AgentContext, s: ClusterState): Promise<void> {
  const inst = ctx.instance();
  if (inst?.isRunning()) {
    await inst.stop('fast');
    ctx.setObserved('stopped');
  } else if (inst) await inst.stopOrphan('fast');
  if (hasData(ctx.dataDir) && !existsSync(clonedMarker(ctx.dataDir))) {
    const previous = `${ctx.dataDir}.previous`;
    rmSync(previous, { recursive: true, force: true });
    renameSync(ctx.dataDir, previous);
    rmSync(rejoinMarker(ctx.dataDir), { force: true });
    ctx.log({ level: 'warn', msg: 're-cloning: moved the old data directory aside', node: ctx.nodeId, previous });
  }
  if (!hasData(ctx.dataDir)) {
    await cloneStandby(ctx, s);
    if (!hasData(ctx.dataDir)) return; // waiting for the primary, or cloning again (logged)
    ctx.counters.reclones++;
  }
  // A clone of an older generation (its setRole was refused, or the daemon stopped
  // before it): its primary was replaced since, so it may hold WAL past the fork
  // point (see cloneStandby). Never adopted: cloned again.
  const clonedIn = readCloneGeneration(ctx.dataDir);
  if (clonedIn !== null && clonedIn !== s.postgres.generation) {
    rmSync(ctx.dataDir, { recursive: true, force: true });
    rmSync(clonedMarker(ctx.dataDir), { force: true });
    ctx.log({
      level: 'warn',
      msg: 'a clone from an older generation is discarded and taken again from the current primary',
      node: ctx.nodeId,
      clonedIn,
      generation: s.postgres.generation,
    });
    return;
  }
  const r = await ctx.proposeAndSync({ v: 1, type: 'pg.setRole', node: ctx.nodeId, role: 'standby', generation: s.postgres.generation, atMs: Date.now() });
  if (!r.ok) throw new AgentError(`pg.setRole standby after the re-clone of ${ctx.nodeId} refused: ${r.error.message}`);
  ctx.log({ level: 'info', msg: 're-cloned: standby again', node: ctx.nodeId, generation: s.postgres.generation });
}

/** initdb in a sibling temp dir, then rename: a crash halfway leaves no half-made data dir. */
export async function bootstrapPrimary(ctx: AgentContext, s: ClusterState): Promise<void> {
  const pg = s.postgres;
  const last = pg.history[pg.history.length - 1];
  if (!(pg.generation === 1 && last !== undefined && last.reason === 'bootstrap' && last.node === ctx.nodeId)) {
    throw new AgentError(
      `this node is the primary of generation ${pg.generation} but its data dir ${ctx.dataDir} is empty; only the bootstrap promotion (generation 1, reason 'bootstrap') initialises a new database. Refusing to guess with data: restore it, or promote a node that has the data`,
    );
  }
  const reportedAtMs = pg.nodes.get(ctx.nodeId)?.reportedAtMs ?? null;
  if (reportedAtMs !== null) {
    // Its Postgres ran and reported before: the database it held was lost (a wiped disk), not never made.
    throw new AgentError(
      `this node is the bootstrap primary, but its data dir ${ctx.dataDir} is empty although its Postgres reported before (at ${new Date(reportedAtMs).toISOString()}): its data was lost. ` +
        'Refusing to initialise an empty database in its place: promote a standby that has the data (ogel failover --to NODE), and this node will be cloned as a standby',
    );
  }
  const tmp = `${ctx.dataDir}.ogel-init`;
  rmSync(tmp, { recursive: true, force: true });
  const binaries = ctx.binaries();
  const user = ctx.osUser();
  if (ctx.bootstrapRestore !== undefined) {
    ctx.log({
      level: 'info',
      msg: "bootstrapping the first primary from another cluster's object store (restoreFrom)",
      node: ctx.nodeId,
      dataDir: ctx.dataDir,
    });
    await ctx.bootstrapRestore(tmp);
  } else {
    ctx.log({ level: 'info', msg: 'bootstrapping the first primary (initdb)', node: ctx.nodeId, dataDir: ctx.dataDir });
    await PostgresInstance.initPrimary({
      dataDir: tmp,
      port: ctx.port,
      binaries,
      user,
      logger: ctx.log,
      settings: settingsFromConfig(ctx.config, ctx.nodeId, ctx.dataDir),
      replicationPassword: replicationPassword(ctx.config),
      noSync: ctx.noSync,
    });
  }
  if (existsSync(ctx.dataDir)) rmSync(ctx.dataDir, { recursive: true, force: true }); // empty (checked by the caller)
  renameSync(tmp, ctx.dataDir);
  const inst = ctx.newInstance(ctx.dataDir);
  inst.writeConfig(settingsFromConfig(ctx.config, ctx.nodeId, ctx.dataDir)); // the socket dir and paths of the final location
  ctx.adopt(inst);
}

/** Clones from the primary into a sibling temp dir, then rename: a half-done clone is retried from scratch. */
export async function cloneStandby(ctx: AgentContext, s: ClusterState): Promise<void> {
  const primary = s.postgres.primary;
  if (primary === null) return;
  const pnode = s.postgres.nodes.get(primary);
  if (pnode?.reportedRole !== 'primary') {
    ctx.logWaiting(`waiting for ${primary} to report as primary before cloning from it`);
    return;
  }
  const addrText = memberAddress(s, ctx.config, primary, 'postgres');
  if (addrText === undefined) throw new AgentError(`no postgres address known for the primary ${primary}`);
  const addr = parseHostPort(addrText);
  if (!addr.ok) throw new AgentError(`the primary ${primary}'s postgres address ${addrText}: ${addr.reason}`);
  const user = ctx.osUser();
  // A former primary whose data was lost (a wiped disk) is still held as fenced:
  // like one that rejoins with its data, it is counted as a standby before the
  // clone can stream and acknowledge anything (I4).
  await countAsStandby(ctx, s);
  const tmp = `${ctx.dataDir}.ogel-clone`;
  rmSync(tmp, { recursive: true, force: true });
  // The base backup makes only the leaf (0700); parents we create must let the Postgres user through.
  mkdirSync(dirname(ctx.dataDir), { recursive: true, mode: 0o755 });
  assertReachable(tmp, user);
  ctx.log({ level: 'info', msg: 'cloning a standby (base backup)', node: ctx.nodeId, from: primary, address: addrText });
  const r = await createStandby({
    primary: { host: addr.host, port: addr.port, password: replicationPassword(ctx.config) },
    replicationUser: REPLICATION_ROLE,
    slotName: slotNameFor(ctx.nodeId),
    targetDir: tmp,
    owner: isRoot() ? { uid: user.uid, gid: user.gid } : undefined,
    applicationName: ctx.nodeId,
    fsync: !ctx.noSync,
  });
  // A clone from a primary that was replaced while it ran may hold that primary's
  // WAL past the new timeline's fork point: commits the new primary never had.
  // Adopted, it could follow nothing, or be promoted with them and lose the new
  // generation's acknowledged commits (I4). Cloned again from the new primary.
  const now = ctx.state().postgres;
  if (now.generation !== s.postgres.generation || now.primary !== primary) {
    rmSync(tmp, { recursive: true, force: true });
    ctx.log({
      level: 'warn',
      msg: 'the primary changed while cloning: the clone is discarded and taken again from the current primary',
      node: ctx.nodeId,
      clonedFrom: primary,
      generation: s.postgres.generation,
      currentPrimary: now.primary,
      currentGeneration: now.generation,
    });
    return;
  }
  if (existsSync(ctx.dataDir)) rmSync(ctx.dataDir, { recursive: true, force: true });
  writeFileSync(clonedMarker(ctx.dataDir), `${s.postgres.generation}\n`);
  renameSync(tmp, ctx.dataDir);
  const inst = ctx.newInstance(ctx.dataDir);
  inst.writeConfig(settingsFromConfig(ctx.config, ctx.nodeId, ctx.dataDir));
  ctx.adopt(inst);
  ctx.log({ level: 'info', msg: 'standby cloned', node: ctx.nodeId, bytes: r.backup.bytes, slotCreated: r.slotCreated });
}
