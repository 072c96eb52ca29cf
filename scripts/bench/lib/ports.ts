// Free TCP port allocation for benchmarks: bind port 0, read the port, close.
//
// The port is free when we return it, but another process may take it before the
// caller binds it. Callers that spawn servers on these ports must therefore treat
// EADDRINUSE as "allocate again and retry" (see isAddrInUse in procs.ts).

import net from 'node:net';

/** One ephemeral port on `host` that was free a moment ago. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error(`freePort: unexpected listen address ${String(addr)}`));
        return;
      }
      const port = addr.port;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * `count` distinct free ports. All are held open until every one is allocated, so
 * the kernel cannot hand out the same port twice within one call.
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      srv.unref();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen({ port: 0, host, exclusive: true }, () => {
            const addr = srv.address();
            if (addr === null || typeof addr === 'string') reject(new Error(`freePorts: unexpected listen address ${String(addr)}`));
            else resolve(addr.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}
