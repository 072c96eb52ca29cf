// Cluster commands: membership (member.*) and the maintenance flag.

import { FieldError } from '../fields.js';
import type { MemberAddresses, NodeId } from '../state.js';
import { TEXT, base, fieldsOf, type Base, type ParserOf } from './shared.js';

export interface MemberAdd extends Base<'member.add'> {
  readonly id: NodeId;
  readonly addresses: MemberAddresses;
}
export interface MemberRemove extends Base<'member.remove'> {
  readonly id: NodeId;
}
export interface MemberHealthReport extends Base<'member.health'> {
  readonly id: NodeId;
  readonly healthy: boolean;
  readonly detail: string | null;
}

export interface MaintenanceSet extends Base<'maintenance.set'> {
  readonly paused: boolean;
  readonly reason: string | null;
}

export type ClusterCommand = MemberAdd | MemberRemove | MemberHealthReport | MaintenanceSet;
export type ClusterCommandType = ClusterCommand['type'];
type Parser<T extends ClusterCommandType> = ParserOf<ClusterCommand, T>;

export const clusterParsers: { [T in ClusterCommandType]: Parser<T> } = {
  'member.add': (x) => {
    const f = fieldsOf(x, ['id', 'addresses']);
    const a = f.obj('addresses', ['raft', 'api', 'proxy', 'postgres']);
    const addresses = { raft: a.address('raft'), api: a.address('api'), proxy: a.address('proxy'), postgres: a.address('postgres') };
    const seen = new Map<string, string>();
    for (const [k, v] of Object.entries(addresses)) {
      const other = seen.get(v);
      if (other !== undefined) throw new FieldError(a.at(k), `${JSON.stringify(v)} is also addresses.${other}; each service needs its own host:port`);
      seen.set(v, k);
    }
    return { ...base(f, 'member.add'), id: f.id('id'), addresses };
  },
  'member.remove': (x) => {
    const f = fieldsOf(x, ['id']);
    return { ...base(f, 'member.remove'), id: f.id('id') };
  },
  'member.health': (x) => {
    const f = fieldsOf(x, ['id', 'healthy', 'detail']);
    return { ...base(f, 'member.health'), id: f.id('id'), healthy: f.bool('healthy'), detail: f.nullable('detail', (k) => f.text(k, TEXT)) };
  },
  'maintenance.set': (x) => {
    const f = fieldsOf(x, ['paused', 'reason']);
    return { ...base(f, 'maintenance.set'), paused: f.bool('paused'), reason: f.nullable('reason', (k) => f.text(k, TEXT)) };
  },
};
