// Answers the proxy makes up itself (a ParseComplete for a statement the server
// connection already has, docs/proxy.md Pooling) keep their place among the
// server's answers in a pipelined batch. A raw client, the proxy in transaction
// mode with one server connection, a real Postgres 17.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CLIENT_PASSWORD, startProxy, type ProxyFixture } from './helpers/proxy.js';
import { login, msg } from './helpers/wire.js';

const cstr = (s: string) => Buffer.from(`${s}\0`);
const i16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const parse = (name: string, sql: string) => msg('P', Buffer.concat([cstr(name), cstr(sql), i16(0)]));
const bind = (stmt: string) => msg('B', Buffer.concat([cstr(''), cstr(stmt), i16(0), i16(0), i16(0)]));
const execute = () => msg('E', Buffer.concat([cstr(''), Buffer.alloc(4)]));
const SYNC = msg('S');

describe('proxy: made-up answers in a pipelined batch', { timeout: 60_000 }, () => {
  let f: ProxyFixture;
  before(async () => {
    f = await startProxy({ pool: { mode: 'transaction', defaultPoolSize: 1 } });
  });
  after(async () => f?.cleanup());

  it('a ParseComplete the proxy answers comes after the CommandComplete of the statement before it', async () => {
    const { s, r } = await login(f.port, { user: 'app', database: 'app' }, CLIENT_PASSWORD);
    try {
      const types = async (n: number): Promise<string> => {
        let out = '';
        for (let i = 0; i < n; i++) out += (await r.next(5_000))?.type ?? '?';
        return out;
      };
      // The server connection gets the statement prepared (as ogel_<n>).
      s.write(Buffer.concat([parse('first', 'SELECT 1 AS one'), SYNC]));
      assert.equal(await types(2), '1Z');
      // Another name for the same text: the proxy answers its Parse itself, behind an unnamed statement's answers.
      s.write(Buffer.concat([parse('', 'SELECT 2 AS two'), bind(''), execute(), parse('second', 'SELECT 1 AS one'), bind('second'), execute(), SYNC]));
      assert.equal(await types(9), '12DC12DCZ');
    } finally {
      s.destroy();
    }
  });
});
