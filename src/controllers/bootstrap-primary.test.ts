import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localClusterConfig } from '../config/index.js';
import { chooseBootstrapPrimary } from './bootstrap-primary.js';

describe('choosing the first primary', () => {
  const config = localClusterConfig({ dataDir: '/tmp/x', secret: 's'.repeat(32), token: 't'.repeat(32) });

  it('waits until every configured node is healthy', () => {
    assert.equal(chooseBootstrapPrimary(config, new Set(['n1', 'n2'])), undefined);
  });

  it('picks the lowest id at equal priority, the same every time', () => {
    assert.equal(chooseBootstrapPrimary(config, new Set(['n3', 'n2', 'n1'])), 'n1');
  });

  it('prefers a higher priority', () => {
    const c = { ...config, nodes: config.nodes.map((n) => (n.id === 'n3' ? { ...n, priority: 5 } : n)) };
    assert.equal(chooseBootstrapPrimary(c, new Set(['n1', 'n2', 'n3'])), 'n3');
  });
});
