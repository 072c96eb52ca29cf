// Ports for tests that start a whole local cluster (`ogel up`, `npm start`).
import net from 'node:net';

/** A base port whose 12 ports (raft, api, proxy, postgres x 3, as `ogel up --base-port` lays them out) are all free now. */
export async function freeBasePort(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    const ports = [1, 2, 3].flatMap((i) => [base + i, base + 100 + i, base + 200 + i, base + 300 + i]);
    if ((await Promise.all(ports.map(free))).every(Boolean)) return base;
  }
  throw new Error('no free range of ports for ogel up in 50 tries');
}
