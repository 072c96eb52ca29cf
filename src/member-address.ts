// "The address of node X": its membership record in the state machine (members
// added at runtime, or moved), else the config file's entry. One place, so every
// caller (peers, the agent following a primary, the proxy relaying a cancel)
// agrees on where a node is.

import type { ClusterState } from '../fsm/index.js';
import type { AddressRole, Config } from './config/index.js';

export function memberAddress(state: ClusterState, config: Pick<Config, 'nodes'>, nodeId: string, role: AddressRole): string | undefined {
  return state.members.get(nodeId)?.addresses[role] ?? config.nodes.find((n) => n.id === nodeId)?.[role];
}
