// DNS lookups for outbound routing (MX, A, AAAA) and for mailauth (SPF, DKIM, DMARC, ARC).
// Built on Node's dns.promises.Resolver (c-ares), pointed at [dns] servers or the system's.

import { promises as dnsPromises } from 'node:dns';
import net from 'node:net';

export type DnsErrorKind = 'not-found' | 'no-data' | 'temporary';

/** A failed lookup: NXDOMAIN ('not-found'), NOERROR without records of that type ('no-data'), or anything else ('temporary'). */
export class DnsError extends Error {
  constructor(
    readonly kind: DnsErrorKind,
    message: string,
    /** Node's dns error code (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT, ECONNREFUSED, ...). */
    readonly code: string = kind === 'not-found' ? 'ENOTFOUND' : kind === 'no-data' ? 'ENODATA' : 'ETIMEOUT',
  ) {
    super(message);
    this.name = 'DnsError';
  }
}

export interface DnsResolverOptions {
  /** "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53"; [] = the system's resolvers. */
  servers: string[];
  /** How long one query may take in all (retries included) before it is a temporary failure. */
  timeoutSeconds: number;
  /**
   * How long answers (and "no such name" / "no such record") are reused, in seconds; 0 = no cache.
   * Temporary failures are never cached. Node's resolver does not report TTLs for every type, so
   * one bound applies to all.
   */
  cacheSeconds?: number;
}

/** Most answers kept; the oldest go first. */
const CACHE_MAX_ENTRIES = 10_000;

type CacheEntry = { until: number; value?: unknown; error?: unknown };

/** Parses "IP", "IP:PORT", "[IP]" or "[IP]:PORT" (a bare IPv6 address takes no port). Throws on a host name or bad port. */
export function parseServerAddress(s: string): { host: string; port: number } {
  const value = s.trim();
  let host: string;
  let port = 53;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (net.isIPv6(value)) {
    host = value;
  } else {
    const withPort = /^([^:]+):(\d{1,5})$/.exec(value);
    host = withPort ? withPort[1]! : value;
    if (withPort) port = Number(withPort[2]);
  }
  if (!net.isIP(host)) throw new Error(`DNS server must be an IP address (optionally with :PORT), got "${s}"`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad DNS server port in "${s}"`);
  return { host, port };
}

/** The form Resolver.setServers() accepts: "1.2.3.4:53", "[::1]:53". */
function formatServer({ host, port }: { host: string; port: number }): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

const NOT_FOUND_CODES = new Set(['ENOTFOUND', 'EBADNAME']);
const NO_DATA_CODES = new Set(['ENODATA']);

function classify(err: unknown): DnsErrorKind {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NOT_FOUND_CODES.has(code)) return 'not-found';
  if (typeof code === 'string' && NO_DATA_CODES.has(code)) return 'no-data';
  return 'temporary';
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ETIMEOUT';
}

/**
 * mailauth's `resolver` option. Its declared type (DNSResolver, Promise<string[][] | string[]>) is
 * narrower than what it really receives (MX gives {exchange, priority}[]), hence `any`: the
 * function can be passed to mailauth as is and also used where Promise<unknown> is expected.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type MailauthResolver = (name: string, rrtype: string) => Promise<any>;

type RrType = 'A' | 'AAAA' | 'ANY' | 'CAA' | 'CNAME' | 'MX' | 'NAPTR' | 'NS' | 'PTR' | 'SOA' | 'SRV' | 'TXT';
const RR_TYPES = new Set<string>(['A', 'AAAA', 'ANY', 'CAA', 'CNAME', 'MX', 'NAPTR', 'NS', 'PTR', 'SOA', 'SRV', 'TXT']);

export class DnsResolver {
  private readonly resolver: dnsPromises.Resolver;
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private readonly cache = new Map<string, CacheEntry>();
  /** Queries in progress: concurrent lookups of the same name and type share one query. */
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(options: DnsResolverOptions) {
    this.timeoutMs = Math.max(1, options.timeoutSeconds) * 1000;
    this.cacheMs = Math.max(0, options.cacheSeconds ?? 0) * 1000;
    // c-ares doubles the per-try timeout on each retry: with 2 tries, t + 2t ≈ the whole budget.
    this.resolver = new dnsPromises.Resolver({ timeout: Math.max(100, Math.floor(this.timeoutMs / 3)), tries: 2 });
    if (options.servers.length > 0) this.resolver.setServers(options.servers.map((s) => formatServer(parseServerAddress(s))));
  }

  /** A cached answer, a query already in progress, or a new query; rejects with the raw Node error. */
  private raw(name: string, rrtype: RrType): Promise<unknown> {
    if (this.cacheMs === 0) return this.lookup(name, rrtype);
    const key = `${rrtype} ${name.toLowerCase().replace(/\.$/, '')}`;
    const now = Date.now();
    const cached = this.cache.get(key);
    if (cached && cached.until > now) return 'error' in cached ? Promise.reject(cached.error) : Promise.resolve(cached.value);
    if (cached) this.cache.delete(key);
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const remember = (entry: CacheEntry) => {
      if (this.cache.size >= CACHE_MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, entry);
    };
    const query = this.lookup(name, rrtype).then(
      (value) => {
        remember({ until: Date.now() + this.cacheMs, value });
        return value;
      },
      (err: unknown) => {
        // RFC 2308: negative answers may be cached; temporary failures are asked again.
        if (classify(err) !== 'temporary') remember({ until: Date.now() + this.cacheMs, error: err });
        throw err;
      },
    );
    const settled = query.finally(() => this.pending.delete(key));
    settled.catch(() => undefined);
    this.pending.set(key, settled);
    return settled;
  }

  /** Runs one query with an overall deadline; rejects with the raw Node error (it carries `code`). */
  private async lookup(name: string, rrtype: RrType): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`DNS query ${rrtype} ${name} timed out`) as Error & { code: string };
        err.code = 'ETIMEOUT';
        reject(err);
      }, this.timeoutMs + 250);
      timer.unref();
    });
    try {
      return await Promise.race([this.resolver.resolve(name, rrtype as 'A'), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async query<T>(name: string, rrtype: RrType): Promise<T> {
    try {
      return (await this.raw(name, rrtype)) as T;
    } catch (err) {
      const kind = classify(err);
      const code = errorCode(err);
      const what = kind === 'not-found' ? 'domain does not exist' : kind === 'no-data' ? `no ${rrtype} records` : `temporary DNS failure (${code})`;
      throw new DnsError(kind, `${rrtype} ${name}: ${what}`, code);
    }
  }

  mx(name: string): Promise<Array<{ exchange: string; priority: number }>> {
    return this.query(name, 'MX');
  }

  a(name: string): Promise<string[]> {
    return this.query(name, 'A');
  }

  aaaa(name: string): Promise<string[]> {
    return this.query(name, 'AAAA');
  }

  /** Each record is an array of its character-strings (up to 255 bytes each); join them for the value. */
  txt(name: string): Promise<string[][]> {
    return this.query(name, 'TXT');
  }

  /**
   * The resolver mailauth takes as `resolver`: same shape as dns.promises.resolve (TXT → string[][],
   * MX → {exchange, priority}[], A/AAAA/PTR → string[]), errors carrying Node's codes
   * (ENOTFOUND = NXDOMAIN, ENODATA = no records; ETIMEOUT, ESERVFAIL, EREFUSED... = temporary).
   */
  mailauthResolver(): MailauthResolver {
    return async (name: string, rrtype: string): Promise<any> => {
      const type = String(rrtype || 'A').toUpperCase();
      if (!RR_TYPES.has(type)) {
        const err = new Error(`unsupported DNS record type ${rrtype}`) as Error & { code: string };
        err.code = 'ENOTIMP';
        throw err;
      }
      try {
        return await this.raw(name, type as RrType);
      } catch (err) {
        if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string') throw err;
        const wrapped = new Error(`DNS query ${type} ${name} failed: ${String(err)}`) as Error & { code: string };
        wrapped.code = 'ESERVFAIL';
        throw wrapped;
      }
    };
  }
}
