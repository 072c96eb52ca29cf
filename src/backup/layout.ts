// Where a cluster's objects live in the store: everything under
// '<cluster.name>/' (the design brief's '<cluster>/basebackups/<id>/...',
// '<cluster>/wal/<timeline>/...'), so clusters can share a bucket or directory.

import type { Config } from '../config/index.js';

export function clusterPrefix(config: Pick<Config, 'cluster'>): string {
  return `${config.cluster.name}/`;
}
