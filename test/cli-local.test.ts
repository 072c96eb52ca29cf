// Bad arguments to the commands that start processes (ogel up, ogel daemon) are
// refused with a clear message and exit code 2, before anything starts.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './helpers/daemons.js';

describe('ogel up and ogel daemon refuse bad arguments', () => {
  const cases: [string[], RegExp][] = [
    [['up', '--nodes', '9'], /--nodes must be an integer from 1 to 7, got '9'/],
    [['up', '--nodes', 'three'], /--nodes must be an integer from 1 to 7, got 'three'/],
    [['up', '--base-port', '80'], /--base-port must be an integer from 1024 to 65135, got '80'/],
    [['up', '--bogus'], /Unknown option '--bogus'/],
    [['daemon', '--node', 'n1'], /--config \(or OGEL_CONFIG\) is required/],
    [['daemon', '--config', 'x.yml'], /--node \(or OGEL_NODE_ID\) is required/],
    [['daemon', '--config', 'x.yml', '--node', 'n1', '--bootstrap', '--join'], /--bootstrap and --join contradict each other/],
    [['daemon', '--config', '/nonexistent/cluster.yml', '--node', 'n1'], /nonexistent\/cluster\.yml/],
  ];
  for (const [args, re] of cases) {
    it(`ogel ${args.join(' ')}`, async () => {
      const r = await runCli(args, { OGEL_CONFIG: '', OGEL_NODE_ID: '' });
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }
});
