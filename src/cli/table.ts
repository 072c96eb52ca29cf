// Aligned text tables in patronictl's style, and the `ogel status` table.

import { describeDurationMs } from '../controllers/switchover-schedule.js';
import type { Member, NodeReplication, PostgresNode, ScheduledSwitchover, Status } from './types.js';

export interface Column {
  header: string;
  align?: 'left' | 'right';
}

/** Renders a boxed table; every row must have one cell per column. */
export function renderTable(columns: Column[], rows: string[][]): string {
  for (const row of rows) {
    if (row.length !== columns.length) throw new Error(`renderTable: row has ${row.length} cells, expected ${columns.length}`);
  }
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const line = (cells: string[], aligns: ('left' | 'right')[]): string =>
    '|' + cells.map((c, i) => ` ${aligns[i] === 'right' ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)} `).join('|') + '|';
  const out = [
    rule,
    line(
      columns.map((c) => c.header),
      columns.map(() => 'left'),
    ),
    rule,
  ];
  for (const r of rows)
    out.push(
      line(
        r,
        columns.map((c) => c.align ?? 'left'),
      ),
    );
  if (rows.length > 0) out.push(rule);
  return out.join('\n');
}

/** A cell for any JSON value: '-' for null or missing. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map((x) => cell(x)).join(', ');
  return JSON.stringify(v);
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

/** Bytes in binary units, one decimal above 1 KiB: '512 B', '1.5 KiB', '3.0 MiB'. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  if (Math.abs(bytes) < 1024) return `${Math.round(bytes)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function formatTime(atMs: number | null | undefined): string {
  if (atMs === null || atMs === undefined || !Number.isFinite(atMs)) return '-';
  return new Date(atMs)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
}

/** An instant as ISO 8601 to the second: '2026-11-21T10:00:00Z'. */
export function formatIsoSeconds(atMs: number): string {
  return new Date(atMs).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** 'to n2 at 2026-11-21T10:00:00Z (in 5m 3s)'; 'due 2s ago' once its time has come (it is starting). */
export function describeSchedule(s: ScheduledSwitchover, nowMs: number): string {
  const target = s.to === null ? 'the most caught-up standby' : s.to;
  const untilMs = s.notBeforeMs - nowMs;
  const when = untilMs > 0 ? `in ${describeDurationMs(untilMs)}` : `due ${describeDurationMs(-untilMs)} ago`;
  return `to ${target} at ${formatIsoSeconds(s.notBeforeMs)} (${when})`;
}

/** Why automatic failover refuses, from a string or an object with a reason. */
export function describeBlocked(blocked: unknown): string | null {
  if (blocked === null || blocked === undefined || blocked === false) return null;
  if (typeof blocked === 'string') return blocked;
  if (typeof blocked === 'object') {
    const o = blocked as Record<string, unknown>;
    for (const k of ['reason', 'message']) if (typeof o[k] === 'string') return o[k];
  }
  return JSON.stringify(blocked);
}

function raftRole(m: Member): string {
  const role = m.raft?.role ?? '-';
  return m.raft?.voter === false && role !== 'learner' ? `${role} (learner)` : role;
}

/** 'n1, 1850 ms left of 2000 ms', 'n1, overdue by 300 ms', or 'n1 (2000 ms)' when the answering node has no clock on it. */
function leaseSummary(status: Status): string {
  const lease = status.postgres.lease;
  if (lease === null || lease === undefined) return 'none';
  const of = typeof lease.durationMs === 'number' ? ` of ${Math.round(lease.durationMs)} ms` : '';
  const left = lease.remainingMs;
  if (typeof left !== 'number' || !Number.isFinite(left))
    return typeof lease.durationMs === 'number' ? `${lease.holder} (${Math.round(lease.durationMs)} ms)` : lease.holder;
  return left >= 0 ? `${lease.holder}, ${Math.round(left)} ms left${of}` : `${lease.holder}, overdue by ${Math.round(-left)} ms`;
}

/** The Postgres summary: primary, generation, lease, and PAUSED when maintenance mode is on. */
function postgresSummary(status: Status): string {
  const pg = status.postgres;
  const parts = [`Primary: ${pg.primary ?? 'none'}`, `Generation: ${pg.generation}`, `Lease: ${leaseSummary(status)}`];
  if (status.maintenance.paused) parts.push(`PAUSED${status.maintenance.reason ? ` (${status.maintenance.reason})` : ''}`);
  return parts.join('   ');
}

/** Lag figures from the agents' reports carry a '~': they are up to a second old and taken at different moments. */
const REPORTED_MARK = '~';

function replicationCell(r: NodeReplication | null | undefined): string {
  if (!r) return '-';
  if (r.state === null) return '-';
  return r.syncState ? `${r.state}, ${r.syncState}` : r.state;
}

function lagBytesCell(r: NodeReplication | null | undefined): string {
  if (!r || r.lagBytes === null || r.lagBytes === undefined) return '-';
  return (r.source === 'reported' ? REPORTED_MARK : '') + formatBytes(r.lagBytes);
}

function lagTimeCell(r: NodeReplication | null | undefined): string {
  if (!r || typeof r.lagSeconds !== 'number') return '-';
  return formatMs(r.lagSeconds * 1000);
}

function timelineCell(n: PostgresNode | undefined): string {
  // 0 means "not reported yet" in the state machine; timelines start at 1.
  return n && typeof n.timeline === 'number' && n.timeline > 0 ? String(n.timeline) : '-';
}

/**
 * The `ogel status` view: a header (cluster, leader; Postgres primary,
 * generation, lease, maintenance; why failover is blocked; a scheduled
 * switchover, with the time left by the caller's clock `nowMs`) and one row per
 * member, like `patronictl list`. Postgres columns show '-' until the daemon
 * reports that data.
 */
/** One line on backups: the newest complete one and its verification, one running, a recent failure, a store problem. */
export function describeBackups(status: Status, nowMs: number): string | null {
  const b = status.backups;
  if (b === undefined) return null;
  if (b.storeProblem !== null) return `Backups: the object store is not usable: ${b.storeProblem}`;
  const parts: string[] = [];
  if (b.newest === null) parts.push('none complete yet');
  else {
    const age = b.newest.finishedAtMs === null ? '' : `, ${formatMs(nowMs - b.newest.finishedAtMs)} ago`;
    const verified = b.newest.verification.state === 'failed' ? 'FAILED verification: not used for restores' : b.newest.verification.state;
    parts.push(`newest ${b.newest.id} (${b.newest.kind}${age}, ${verified})`);
  }
  if (b.running !== null) parts.push(`running ${b.running.id} on ${b.running.node ?? '?'}`);
  if (b.lastFailed !== null && (b.newest === null || (b.lastFailed.finishedAtMs ?? 0) > (b.newest.finishedAtMs ?? 0)))
    parts.push(`last attempt FAILED: ${b.lastFailed.failureReason ?? 'no reason recorded'}`);
  return `Backups: ${parts.join('; ')}`;
}

/**
 * One line on the WAL archive: the restore window (or why there is none) and
 * the primary's archiver: its lag, or RETRYING / CONFLICT with the error.
 */
export function describeArchive(status: Status): string | null {
  const a = status.archive;
  if (a === undefined) return null;
  const w = a.window;
  let text =
    w !== null
      ? `restorable ${formatIsoSeconds(w.fromAtMs)} .. ${formatIsoSeconds(w.toAtMs)} (timeline ${w.timeline})`
      : `nothing restorable yet (${a.reason ?? 'no reason given'})`;
  const live = a.live;
  if (live === null) text += `, archiver state unknown (${a.liveError ?? 'not asked'})`;
  else if (live.state === 'conflict') text = `CONFLICT on ${live.node}: archiving stopped (${live.lastError ?? 'no error recorded'}); ${text}`;
  else if (live.state === 'retrying') text = `RETRYING on ${live.node} (${live.lastError ?? 'no error recorded'}); ${text}`;
  else if (live.state === 'archiving') text += `, lag ${formatMs(live.lagMs)}`;
  else text += `, not archiving on ${live.node} (${live.state})`;
  if (live !== null && live.gaps > 0) text += `; ${live.gaps} GAP${live.gaps === 1 ? '' : 'S'} on ${live.node} since its daemon started`;
  if (a.timelineRanges > 1) text += `; GAP in the archive: ${a.timelineRanges} ranges on timeline ${a.timeline}`;
  if (a.note !== null) text += `; ${a.note}`;
  return `Archive: ${text}`;
}

/** The alarm on the archive's replication slot on the primary: WAL not yet archived is (about to be) freed. */
function archiveSlotAlarm(status: Status): string | null {
  const live = status.archive?.live;
  const w = live?.slot?.walStatus;
  if (live === undefined || live === null) return null;
  if (w === 'lost')
    return `WAL: the archive's replication slot on ${live.node} was invalidated (past max_slot_wal_keep_size): WAL it had not archived was freed; the archive has a gap, and a full backup is due`;
  if (w === 'unreserved')
    return `WAL: the archive's replication slot on ${live.node} is past max_slot_wal_keep_size: WAL it has not archived is freed at the next checkpoint unless the archive catches up`;
  return null;
}

export function renderStatusTable(status: Status, nowMs: number = Date.now()): string {
  const lines: string[] = [];
  lines.push(`Cluster: ${status.cluster}   Leader: ${status.leader ?? 'none'}   Term: ${status.term}   (answered by ${status.node})`);
  if (status.stale) lines.push(`Stale read: ${status.node}'s local state, which may be behind the cluster`);
  if (status.rejoining === true)
    lines.push(`Rejoining: ${status.node} lost its Raft state (a new node or a wiped data directory); it has no vote until a leader commits without it`);
  lines.push(postgresSummary(status));
  for (const [id, n] of Object.entries(status.postgres.nodes)) {
    const w = n.slot?.walStatus;
    if (w === 'lost')
      lines.push(
        `WAL: ${id}'s replication slot was invalidated: it fell further behind than max_slot_wal_keep_size keeps, and the primary freed that WAL; ${id} is re-cloned when it returns`,
      );
    else if (w === 'unreserved')
      lines.push(
        `WAL: ${id}'s replication slot is past max_slot_wal_keep_size: its WAL is freed at the next checkpoint unless ${id} catches up, and then ${id} is re-cloned`,
      );
  }
  const backups = describeBackups(status, nowMs);
  if (backups !== null) lines.push(backups);
  const archive = describeArchive(status);
  if (archive !== null) lines.push(archive);
  const slotAlarm = archiveSlotAlarm(status);
  if (slotAlarm !== null) lines.push(slotAlarm);
  const blocked = describeBlocked(status.postgres.failoverBlocked);
  if (blocked !== null) lines.push(`Automatic failover BLOCKED: ${blocked}`);
  const scheduled = status.postgres.scheduledSwitchover;
  if (scheduled !== null && scheduled !== undefined && typeof scheduled.notBeforeMs === 'number')
    lines.push(`Switchover scheduled: ${describeSchedule(scheduled, nowMs)}`);
  const columns: Column[] = [
    { header: 'Member' },
    { header: 'Raft role' },
    { header: 'Term', align: 'right' },
    { header: 'Lag (entries)', align: 'right' },
    { header: 'Last contact', align: 'right' },
    { header: 'Postgres role' },
    { header: 'TL', align: 'right' },
    { header: 'Replication' },
    { header: 'Lag (bytes)', align: 'right' },
    { header: 'Lag (time)', align: 'right' },
  ];
  const members = [...status.members].sort((a, b) => a.id.localeCompare(b.id));
  let reported = false;
  const rows = members.map((m) => {
    const isLeader = m.raft?.role === 'leader';
    const n = status.postgres.nodes?.[m.id];
    const r = n?.replication;
    if (r?.source === 'reported' && typeof r.lagBytes === 'number') reported = true;
    return [
      m.health?.healthy === false ? `${m.id} (unhealthy)` : m.id,
      raftRole(m),
      cell(m.raft?.term ?? status.term),
      cell(m.raft?.lagEntries),
      // The leader's contact with itself means nothing.
      isLeader ? '-' : formatMs(m.raft?.lastContactMs),
      pgRoleCell(n),
      timelineCell(n),
      replicationCell(r),
      lagBytesCell(r),
      lagTimeCell(r),
    ];
  });
  lines.push(renderTable(columns, rows));
  if (reported) {
    const why = status.postgres.replication?.error;
    lines.push(`${REPORTED_MARK} lag from the LSNs the nodes report (up to about a second old)${why ? `; live figures unavailable: ${why}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * What the node's agent reports its Postgres is doing ("standby" while it streams),
 * and the wanted role beside it when they differ ("primary (wanted: fenced)").
 */
function pgRoleCell(n: { role?: string; reportedRole?: string } | undefined): string {
  if (!n) return '-';
  const reported = n.reportedRole && n.reportedRole !== 'absent' ? n.reportedRole : undefined;
  const wanted = n.role && n.role !== 'absent' ? n.role : undefined;
  if (reported && wanted && reported !== wanted) return `${reported} (wanted: ${wanted})`;
  return reported ?? wanted ?? '-';
}
