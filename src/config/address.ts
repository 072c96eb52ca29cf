// HOST:PORT parsing for the addresses a node advertises, and the host it binds.
// Strict on purpose: a typo here otherwise surfaces much later as a peer that
// never connects.

import { isIP, isIPv4, isIPv6 } from 'node:net';

/** The four addresses every node advertises. */
export type AddressRole = 'raft' | 'api' | 'proxy' | 'postgres';
export const ADDRESS_ROLES: readonly AddressRole[] = ['raft', 'api', 'proxy', 'postgres'];

export interface HostPort {
  host: string;
  port: number;
}

export type ParsedAddress =
  | { ok: true; host: string; port: number }
  /** `host` is set when the host part was usable, so a hint can keep it. */
  | { ok: false; reason: string; host?: string };

// RFC 1123 labels; a trailing dot (fully qualified) is allowed.
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** True for an IPv4 or IPv6 literal (IPv6 without brackets) or a DNS host name. */
export function isValidHost(host: string): boolean {
  if (isIP(host) !== 0) return true;
  // "10.0.0" or "1.2.3.256" would pass as a host name; nobody means that.
  if (/^[0-9.]+$/.test(host)) return false;
  return HOSTNAME.test(host);
}

/** The unspecified addresses: fine to bind, useless to advertise. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || (isIPv6(host) && /^[0:]+$/.test(host));
}

/** `HOST:PORT` or `[IPv6]:PORT`, port 1-65535. */
export function parseHostPort(text: string): ParsedAddress {
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { ok: false, reason: 'the [ of an IPv6 address is not closed' };
    host = text.slice(1, close);
    if (!isIPv6(host)) return { ok: false, reason: `"${host}" is not an IPv6 address` };
    if (text[close + 1] !== ':') return { ok: false, reason: 'the port is missing', host };
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) {
      return isValidHost(text) ? { ok: false, reason: 'the port is missing', host: text } : { ok: false, reason: 'the port is missing' };
    }
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return { ok: false, reason: 'an IPv6 host needs brackets, as in [::1]:7001' };
    if (host === '') return { ok: false, reason: 'the host is missing' };
    if (!isValidHost(host)) return { ok: false, reason: `"${host}" is not a host name or IP address` };
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return { ok: false, reason: 'port must be 1-65535', host };
  const port = Number(portText);
  if (port < 1 || port > 65535) return { ok: false, reason: 'port must be 1-65535', host };
  return { ok: true, host, port };
}

/**
 * HOST:PORT of an address that was already validated (config, membership
 * record): a failure here is a bug or a corrupted record, so it throws with
 * the address and what it is (`what`, e.g. "n2's raft address").
 */
export function hostPortOf(text: string, what: string): HostPort {
  const a = parseHostPort(text);
  if (!a.ok) throw new Error(`${what} ${JSON.stringify(text)} is not HOST:PORT: ${a.reason}`);
  return { host: a.host, port: a.port };
}

/** The inverse of parseHostPort: brackets an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A key under which two spellings of one address compare equal. */
export function addressKey(host: string, port: number): string {
  const h = isIPv4(host) || isIPv6(host) ? host.toLowerCase() : host.toLowerCase().replace(/\.$/, '');
  return `${h}|${port}`;
}

/** Where `ogel up` puts node i's (0-based) listeners: basePort + 100 * role + i + 1,
 * so with the default 7000: raft 7001.., api 7101.., proxy 7201.., postgres 7301.. */
export const LOCAL_BASE_PORT = 7000;
const ROLE_BLOCK: Record<AddressRole, number> = { raft: 0, api: 100, proxy: 200, postgres: 300 };
export const LOCAL_PORT_SPAN = 400;

export function localPort(role: AddressRole, index: number, basePort = LOCAL_BASE_PORT): number {
  return basePort + ROLE_BLOCK[role] + index + 1;
}
