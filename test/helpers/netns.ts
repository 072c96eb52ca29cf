// Network partitions for integration tests, inside a private network namespace
// (`unshare --net`, root). Nodes live on their own addresses on lo (127.0.0.11,
// .12, .13; all of 127.0.0.0/8 is local) and are cut off with iptables rules on
// those addresses. Daemons bind their outgoing connections to their own address
// (src/net/bind.ts), which is what makes rules by source address work.

import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Runs a command, returns its stdout; throws with its stderr when it fails.
 * Asynchronous, so clients measuring in the same process keep running meanwhile.
 */
export async function sh(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  try {
    return (await execFileAsync(cmd, [...args], { encoding: 'utf8', timeout: timeoutMs })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(err.stderr ?? '').trim() || err.message}`);
  }
}

function netnsOf(pid: number | 'self'): string {
  return readlinkSync(`/proc/${pid}/ns/net`);
}

/**
 * Refuses to go on in the namespace of whoever started us: the iptables rules
 * below would then change that (usually the machine's) firewall. `unshare --net
 * node x.js` keeps its PID for node, so the parent is the caller, outside.
 * (PID 1's namespace is not readable in every sandbox; the parent's is.)
 */
export function assertPrivateNetns(): void {
  let parent: string;
  try {
    parent = netnsOf(process.ppid);
  } catch (e) {
    throw new Error(`cannot tell whether this is a private network namespace (${(e as Error).message}); refusing to change iptables rules`);
  }
  if (netnsOf('self') === parent) {
    throw new Error("refusing to change iptables rules in the caller's network namespace: run this under `unshare --net`");
  }
}

/** A fresh namespace has lo down: nothing on 127/8 answers until it is up. */
export async function loopbackUp(): Promise<void> {
  await sh('ip', ['link', 'set', 'lo', 'up']);
}

/**
 * Cuts `host` off from every other address: nothing from elsewhere reaches it and
 * nothing it sends from its own address reaches elsewhere. Its own traffic to
 * itself (and unix sockets) still works.
 */
export async function isolateHost(host: string): Promise<void> {
  await sh('iptables', ['-A', 'INPUT', '-d', host, '!', '-s', host, '-j', 'DROP']);
  await sh('iptables', ['-A', 'INPUT', '-s', host, '!', '-d', host, '-j', 'DROP']);
}

/** Removes every rule added here. */
export async function healAll(): Promise<void> {
  await sh('iptables', ['-F', 'INPUT']);
}

export interface TcpEndpoint {
  ip: string;
  port: number;
}

/** Established IPv4 TCP connections of this namespace, as each end sees them (from /proc/net/tcp). */
export function establishedTcp(): { local: TcpEndpoint; remote: TcpEndpoint }[] {
  const ESTABLISHED = '01';
  const parse = (hex: string): TcpEndpoint => {
    const [addr, port] = hex.split(':') as [string, string];
    // The address is the kernel's u32 printed in host (little-endian) byte order.
    const bytes = [0, 2, 4, 6].map((i) => parseInt(addr.slice(i, i + 2), 16)).reverse();
    return { ip: bytes.join('.'), port: parseInt(port, 16) };
  };
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 3 && f[3] === ESTABLISHED)
    .map((f) => ({ local: parse(f[1]!), remote: parse(f[2]!) }));
}

/** Whether a TCP connection from `fromIp` to `to` completes within timeoutMs (a dropped SYN never does). */
export function canConnect(fromIp: string, to: TcpEndpoint, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: to.ip, port: to.port, localAddress: fromIp });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export interface ProcessInfo {
  pid: number;
  cmd: string;
}

/** Every process in this network namespace but this one: what a test started and did not stop. */
export function processesInThisNetns(): ProcessInfo[] {
  const mine = netnsOf('self');
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    try {
      if (netnsOf(pid) !== mine) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      out.push({ pid, cmd });
    } catch {
      // Exited while we looked: not left over.
    }
  }
  return out;
}
