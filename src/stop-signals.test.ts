import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onStopSignals, SIGNAL_REPEAT_MS, type StopSignal } from './stop-signals.js';

describe('stop signals', () => {
  it('the first asks for a graceful stop, a repeat within the window is the same request, a later one forces, further ones do nothing', () => {
    let nowMs = 0;
    const seen: string[] = [];
    const remove = onStopSignals({ graceful: (s: StopSignal) => seen.push(`graceful ${s}`), force: (s: StopSignal) => seen.push(`force ${s}`) }, () => nowMs);
    try {
      process.emit('SIGINT');
      nowMs = 5; // the same Ctrl-C, forwarded by npm
      process.emit('SIGINT');
      assert.deepEqual(seen, ['graceful SIGINT']);
      nowMs = SIGNAL_REPEAT_MS - 1;
      process.emit('SIGTERM');
      assert.deepEqual(seen, ['graceful SIGINT'], 'still within the window');
      nowMs = SIGNAL_REPEAT_MS + 1;
      process.emit('SIGTERM');
      assert.deepEqual(seen, ['graceful SIGINT', 'force SIGTERM']);
      nowMs = 10 * SIGNAL_REPEAT_MS;
      process.emit('SIGINT');
      assert.deepEqual(seen, ['graceful SIGINT', 'force SIGTERM'], 'forced once');
    } finally {
      remove();
    }
    assert.equal(process.listenerCount('SIGINT'), 0);
    assert.equal(process.listenerCount('SIGTERM'), 0);
  });
});
