// Aligned text tables in patronictl's style, and the `ogel status` table.

import type { Member, Status } from './types.js';

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
  const out = [rule, line(columns.map((c) => c.header), columns.map(() => 'left')), rule];
  for (const r of rows) out.push(line(r, columns.map((c) => c.align ?? 'left')));
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

export function formatTime(atMs: number | null | undefined): string {
  if (atMs === null || atMs === undefined || !Number.isFinite(atMs)) return '-';
  return new Date(atMs).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
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

function leaseCell(status: Status, id: string): string {
  const lease = status.postgres.lease;
  if (lease === null || lease === undefined || lease.holder !== id) return '-';
  const parts: string[] = [];
  if (typeof lease.durationMs === 'number') parts.push(formatMs(lease.durationMs));
  if (typeof lease.generation === 'number') parts.push(`gen ${lease.generation}`);
  return parts.length > 0 ? parts.join(', ') : 'held';
}

function generationCell(status: Status, id: string): string {
  const node = status.postgres.nodes?.[id];
  if (node && typeof node.generation === 'number') return String(node.generation);
  if (status.postgres.primary === id) return String(status.postgres.generation);
  return '-';
}

/**
 * The `ogel status` view: a header (cluster, leader, maintenance, failover block)
 * and one row per member, like `patronictl list`. Postgres and lease columns
 * show '-' until the daemon reports that data.
 */
export function renderStatusTable(status: Status): string {
  const lines: string[] = [];
  lines.push(`Cluster: ${status.cluster}   Leader: ${status.leader ?? 'none'}   Term: ${status.term}   (answered by ${status.node})`);
  if (status.stale) lines.push(`Stale read: ${status.node}'s local state, which may be behind the cluster`);
  if (status.maintenance.paused) {
    lines.push(`Maintenance mode: on${status.maintenance.reason ? ` (${status.maintenance.reason})` : ''}`);
  }
  const blocked = describeBlocked(status.postgres.failoverBlocked);
  if (blocked !== null) lines.push(`Automatic failover blocked: ${blocked}`);
  const columns: Column[] = [
    { header: 'Member' },
    { header: 'Raft role' },
    { header: 'Term', align: 'right' },
    { header: 'Lag (entries)', align: 'right' },
    { header: 'Last contact', align: 'right' },
    { header: 'Postgres role' },
    { header: 'Generation', align: 'right' },
    { header: 'Lease' },
  ];
  const members = [...status.members].sort((a, b) => a.id.localeCompare(b.id));
  const rows = members.map((m) => {
    const isLeader = m.raft?.role === 'leader';
    return [
      m.health?.healthy === false ? `${m.id} (unhealthy)` : m.id,
      raftRole(m),
      cell(m.raft?.term ?? status.term),
      cell(m.raft?.lagEntries),
      // The leader's contact with itself means nothing.
      isLeader ? '-' : formatMs(m.raft?.lastContactMs),
      pgRoleCell(status.postgres.nodes?.[m.id]),
      generationCell(status, m.id),
      leaseCell(status, m.id),
    ];
  });
  lines.push(renderTable(columns, rows));
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
