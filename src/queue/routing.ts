// Where outbound mail for a domain goes: the [queue.transports] map, the smarthost, or the
// domain's MX records (RFC 5321 §5.1, RFC 7505 null MX), each resolved to IP addresses.

import net from 'node:net';
import { domainToASCII } from 'node:url';
import { DnsError, type DnsResolver } from '../dns/resolver.js';

export interface Destination {
  /** Host name to connect to (MX exchange, smarthost/transport name, or the IP for "[IP]"); for logs and TLS. */
  host: string;
  port: number;
  /** IP addresses to try in order. */
  addresses: string[];
  /** MX preference (lower first); 0 for implicit MX, smarthost and transports. */
  preference: number;
}

export type Route =
  | { kind: 'destinations'; via: 'mx' | 'implicit-mx' | 'smarthost' | 'transport'; destinations: Destination[] }
  | { kind: 'permanent'; status: string; text: string }
  | { kind: 'temporary'; status: string; text: string };

export interface RoutingOptions {
  /** Port of remote mail servers ([queue] remote_port), used unless a route names its own. */
  port: number;
  /** [queue] smarthost: "" for direct delivery. */
  smarthost: string;
  /** [queue.transports]: lower-case domain → "HOST[:PORT]" or "[IP][:PORT]". */
  transports: Record<string, string>;
  /** Order each host's IPv6 addresses before its IPv4 ones (default: IPv4 first). */
  preferIpv6?: boolean;
  /** Our own host names: an MX pointing at one of them must not be used (RFC 5321 §5.1). */
  localHostnames?: string[];
}

/** A parsed "HOST", "HOST:PORT", "[IP]" or "[IP]:PORT" (also "[IPv6:addr]"). */
export interface RelaySpec {
  host: string;
  port: number;
  /** true for "[IP]" (use the address, no lookup) and for a bare IP. */
  literal: boolean;
}

export function parseRelay(value: string, defaultPort: number): RelaySpec {
  const v = value.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(v);
  if (bracketed) {
    const ip = bracketed[1]!.replace(/^ipv6:/i, '');
    if (!net.isIP(ip)) throw new Error(`"${value}": brackets must hold an IP address`);
    return { host: ip, port: bracketed[2] !== undefined ? checkPort(bracketed[2], value) : defaultPort, literal: true };
  }
  const withPort = /^([^\s:[\]]+):(\d{1,5})$/.exec(v);
  const host = (withPort ? withPort[1]! : v).toLowerCase().replace(/\.$/, '');
  if (!host || /[\s[\]]/.test(host) || (host.includes(':') && !net.isIPv6(host))) throw new Error(`"${value}": expected HOST, HOST:PORT, [IP] or [IP]:PORT`);
  return { host, port: withPort ? checkPort(withPort[2]!, value) : defaultPort, literal: net.isIP(host) !== 0 };
}

function checkPort(s: string, value: string): number {
  const port = Number(s);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`"${value}": bad port`);
  return port;
}

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

/** Fisher-Yates shuffle, in place. */
function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

interface HostAddresses {
  addresses: string[];
  /** Some lookup failed temporarily (the addresses may be incomplete or empty). */
  temporary: boolean;
  /** Both lookups said NXDOMAIN. */
  notFound: boolean;
}

/** A and AAAA of one host (both; RFC 5321 §5.1 lets the client try every address), IPv4 first unless preferIpv6. */
async function resolveHost(host: string, resolver: DnsResolver, preferIpv6: boolean): Promise<HostAddresses> {
  if (net.isIP(host)) return { addresses: [host], temporary: false, notFound: false };
  const [v4, v6] = await Promise.allSettled([resolver.a(host), resolver.aaaa(host)]);
  const result: HostAddresses = { addresses: [], temporary: false, notFound: true };
  const lists: string[][] = [];
  for (const settled of [v4, v6]) {
    if (settled.status === 'fulfilled') {
      lists.push(settled.value);
      result.notFound = false;
    } else {
      lists.push([]);
      const kind = settled.reason instanceof DnsError ? settled.reason.kind : 'temporary';
      if (kind !== 'not-found') result.notFound = false;
      if (kind === 'temporary') result.temporary = true;
    }
  }
  const [ipv4, ipv6] = lists as [string[], string[]];
  result.addresses = preferIpv6 ? [...ipv6, ...ipv4] : [...ipv4, ...ipv6];
  return result;
}

function temporary(text: string): Route {
  return { kind: 'temporary', status: '4.4.3', text };
}

/**
 * A configured relay (smarthost or transport). "[IP]" skips DNS; a plain HOST is resolved with
 * A/AAAA only, never MX: the administrator named the machine to talk to, not a mail domain
 * (as Postfix's "[host]" vs "host" differ only in MX lookup, we choose the simpler, explicit one).
 * A relay that does not resolve is a temporary failure: it is a local configuration problem, so
 * mail waits in the queue (4.4.3) instead of bouncing.
 */
async function routeRelay(value: string, via: 'smarthost' | 'transport', resolver: DnsResolver, options: RoutingOptions): Promise<Route> {
  let spec: RelaySpec;
  try {
    spec = parseRelay(value, options.port);
  } catch (err) {
    return temporary(`bad ${via} setting: ${(err as Error).message}`);
  }
  if (spec.literal) return { kind: 'destinations', via, destinations: [{ host: spec.host, port: spec.port, addresses: [spec.host], preference: 0 }] };
  const found = await resolveHost(spec.host, resolver, options.preferIpv6 === true);
  if (found.addresses.length === 0) return temporary(`${via} ${spec.host} has no address${found.temporary ? ' (DNS failure)' : ''}`);
  return { kind: 'destinations', via, destinations: [{ host: spec.host, port: spec.port, addresses: found.addresses, preference: 0 }] };
}

/** Works out where mail for `domain` goes. Never throws for DNS trouble: that is a 'temporary' route. */
export async function routeDomain(domain: string, resolver: DnsResolver, options: RoutingOptions): Promise<Route> {
  const name = normalizeName(domain);
  const preferIpv6 = options.preferIpv6 === true;
  const local = new Set((options.localHostnames ?? []).map(normalizeName));

  // 1. [queue.transports]: exact domain (lower-case), then 2. the smarthost.
  const transport = options.transports[name] ?? options.transports[domain];
  if (transport !== undefined && transport.trim() !== '') return routeRelay(transport, 'transport', resolver, options);
  if (options.smarthost.trim() !== '') return routeRelay(options.smarthost, 'smarthost', resolver, options);

  // An address literal (user@[192.0.2.1]) names the host itself: no MX lookup (RFC 5321 §5.1, §4.1.3).
  const literal = /^\[(?:ipv6:)?([^\]]+)\]$/i.exec(name);
  if (literal) {
    const ip = literal[1]!;
    if (!net.isIP(ip)) return { kind: 'permanent', status: '5.1.2', text: `bad address literal ${domain}` };
    return { kind: 'destinations', via: 'implicit-mx', destinations: [{ host: ip, port: options.port, addresses: [ip], preference: 0 }] };
  }

  // DNS wants A-labels (RFC 5890); SMTPUTF8 domains arrive as U-labels.
  const ascii = domainToASCII(name);
  if (!ascii) return { kind: 'permanent', status: '5.1.2', text: `invalid domain ${domain}` };

  // 3. MX records (RFC 5321 §5.1).
  let mx: Array<{ exchange: string; priority: number }>;
  try {
    mx = await resolver.mx(ascii);
  } catch (err) {
    const kind = err instanceof DnsError ? err.kind : 'temporary';
    if (kind === 'not-found') return { kind: 'permanent', status: '5.1.2', text: `domain ${domain} does not exist` };
    if (kind === 'temporary') return temporary(`DNS failure looking up MX of ${domain}: ${(err as Error).message}`);
    mx = []; // NODATA: fall through to the implicit MX
  }

  if (mx.length === 0) {
    // No MX: the domain itself is the implicit MX with preference 0 (RFC 5321 §5.1).
    if (local.has(ascii)) return { kind: 'permanent', status: '5.4.6', text: `mail for ${domain} loops back to myself` };
    const found = await resolveHost(ascii, resolver, preferIpv6);
    if (found.addresses.length > 0) return { kind: 'destinations', via: 'implicit-mx', destinations: [{ host: ascii, port: options.port, addresses: found.addresses, preference: 0 }] };
    if (found.temporary) return temporary(`DNS failure looking up the address of ${domain}`);
    // RFC 5321 §5.1: no MX and no address records is an error.
    return { kind: 'permanent', status: '5.1.2', text: `no mail server for domain ${domain}` };
  }

  // Null MX (RFC 7505 §3): a single MX of "." with preference 0: the domain accepts no mail.
  const isRoot = (exchange: string) => normalizeName(exchange) === '';
  if (mx.length === 1 && isRoot(mx[0]!.exchange) && mx[0]!.priority === 0) {
    return { kind: 'permanent', status: '5.1.10', text: `domain ${domain} does not accept mail (null MX)` };
  }
  // A "." mixed with real MX records is malformed (RFC 7505 §3): ignore it.
  let records = mx.filter((r) => !isRoot(r.exchange)).map((r) => ({ exchange: normalizeName(r.exchange), priority: r.priority }));
  if (records.length === 0) return { kind: 'permanent', status: '5.1.10', text: `domain ${domain} does not accept mail (null MX)` };

  // RFC 5321 §5.1: if we are one of the MX hosts, discard it and every MX with an equal or
  // larger preference value (equally or less preferred); if none remain, mail would loop.
  const own = records.filter((r) => local.has(r.exchange));
  if (own.length > 0) {
    const cutoff = Math.min(...own.map((r) => r.priority));
    records = records.filter((r) => r.priority < cutoff);
    if (records.length === 0) return { kind: 'permanent', status: '5.4.6', text: `mail for ${domain} loops back to myself (MX points to this server)` };
  }

  // Ascending preference; equal preferences in random order (RFC 5321 §5.1 SHOULD).
  shuffle(records);
  records.sort((x, y) => x.priority - y.priority);

  // Resolve every exchange to A and AAAA; an exchange without addresses is skipped. (An MX
  // naming an IP address is not valid, RFC 5321 §5.1, but is accepted when it parses as one.)
  const resolved = await Promise.all(
    records.map(async (r) => {
      const literalIp = /^\[?([0-9a-f:.]+)\]?$/i.exec(r.exchange)?.[1];
      const host = literalIp && net.isIP(literalIp) ? literalIp : r.exchange;
      return { record: r, host, found: await resolveHost(host, resolver, preferIpv6) };
    }),
  );
  const destinations: Destination[] = [];
  let anyTemporary = false;
  for (const { record, host, found } of resolved) {
    if (found.temporary) anyTemporary = true;
    if (found.addresses.length > 0) destinations.push({ host, port: options.port, addresses: found.addresses, preference: record.priority });
  }
  if (destinations.length > 0) return { kind: 'destinations', via: 'mx', destinations };
  if (anyTemporary) return temporary(`DNS failure looking up the mail servers of ${domain}`);
  return { kind: 'permanent', status: '5.4.4', text: `no mail server of ${domain} has an address` };
}
