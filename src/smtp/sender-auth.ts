// Inbound sender authentication: SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC (RFC 7489) and
// ARC (RFC 8617), checked with mailauth and recorded in an Authentication-Results header (RFC 8601).
// A DNS failure never throws: it is recorded as temperror and the caller accepts the message.

import { authenticate, type AuthenticateResult, type DNSResolver } from 'mailauth';

export type SenderAuthResolver = (name: string, rrtype: string) => Promise<unknown>;

export interface SenderAuthResult {
  /** "Authentication-Results: HOST; spf=...; dkim=...; dmarc=...; arc=...\r\n", folded, CRLF-terminated. */
  header: string;
  /** DMARC failed and the From domain's policy is p=reject (sp= for a subdomain), pct= applied. */
  dmarcReject: boolean;
  /** DMARC failed and the policy is p=quarantine (or p=reject outside the pct= sample). */
  dmarcQuarantine: boolean;
  summary: { spf: string; dkim: string; dmarc: string; arc: string };
}

export interface SenderAuthOptions {
  /** This server's name: the authserv-id of the header. */
  hostname: string;
  /** Same shape as dns.promises.resolve; errors carry Node's codes (ENOTFOUND, ENODATA, ETIMEOUT...). */
  resolver: SenderAuthResolver;
  /**
   * Longest time one lookup may take before it counts as ETIMEOUT (default 20 s). The resolver
   * has its own timeout; this one only guarantees that a lookup that never settles cannot hold the
   * SMTP session forever.
   */
  queryTimeoutMs?: number;
  /** For tests: decides the pct= sample (default Math.random). */
  random?: () => number;
}

export async function checkSenderAuth(
  message: Buffer,
  envelope: { ip: string; helo: string; mailFrom: string },
  options: SenderAuthOptions,
): Promise<SenderAuthResult> {
  const resolver = withTimeout(options.resolver, options.queryTimeoutMs ?? 20_000);
  let result: AuthenticateResult;
  try {
    result = await authenticate(message, {
      ip: envelope.ip,
      helo: envelope.helo,
      mta: options.hostname,
      // Null sender (bounces): RFC 7208 §2.4 checks postmaster@HELO instead; mailauth does that when sender is empty.
      sender: envelope.mailFrom,
      resolver: resolver as DNSResolver,
      trustReceived: false,
      disableBimi: true,
    });
  } catch (err) {
    // mailauth turns DNS failures into temperror itself; this is for anything else it may throw.
    return failed(options.hostname, `internal error: ${(err as Error)?.message ?? String(err)}`);
  }

  const rows: string[] = [];
  const summary = { spf: 'none', dkim: 'none', dmarc: 'none', arc: 'none' };

  if (result.spf) {
    summary.spf = result.spf.status.result;
    rows.push(result.spf.info);
  } else {
    rows.push('spf=none');
  }

  const dkimResults = result.dkim?.results ?? [];
  summary.dkim = combineDkim(dkimResults.map((r) => r.status.result));
  if (dkimResults.length === 0) rows.push('dkim=none');
  for (const r of dkimResults) rows.push(r.info);

  let dmarcReject = false;
  let dmarcQuarantine = false;
  if (result.dmarc) {
    summary.dmarc = result.dmarc.status.result;
    rows.push(result.dmarc.info);
    if (result.dmarc.status.result === 'fail') {
      const policy = (result.dmarc.policy ?? '').toLowerCase();
      const pct = result.dmarc.pct;
      // RFC 7489 §6.6.4: pct= of failing messages get the policy; the others the next lower one.
      const sampled = typeof pct !== 'number' || pct >= 100 || (options.random ?? Math.random)() * 100 < pct;
      if (policy === 'reject' && sampled) dmarcReject = true;
      else if (policy === 'reject' || (policy === 'quarantine' && sampled)) dmarcQuarantine = true;
    }
  } else if ((result.dkim?.headerFrom?.length ?? 0) !== 1) {
    // mailauth skips DMARC when the message has no From address or several (RFC 7489 §6.6.1).
    summary.dmarc = 'permerror';
    rows.push('dmarc=permerror (the message does not have exactly one From address)');
  } else {
    rows.push('dmarc=none');
  }

  if (result.arc && result.arc.status) {
    summary.arc = result.arc.status.result;
    rows.push(result.arc.info ?? `arc=${result.arc.status.result}`);
  } else {
    rows.push('arc=none');
  }

  return { header: formatAuthenticationResults(options.hostname, rows), dmarcReject, dmarcQuarantine, summary };
}

/** pass if any signature passes; otherwise the most telling result (fail before temperror before neutral...). */
function combineDkim(results: string[]): string {
  if (results.length === 0) return 'none';
  for (const wanted of ['pass', 'fail', 'temperror', 'permerror', 'policy', 'neutral']) {
    if (results.includes(wanted)) return wanted;
  }
  return results[0]!;
}

function failed(hostname: string, comment: string): SenderAuthResult {
  const c = `(${comment.replace(/[()\\]/g, '')})`;
  const rows = ['spf', 'dkim', 'dmarc', 'arc'].map((method) => `${method}=temperror ${c}`);
  return {
    header: formatAuthenticationResults(hostname, rows),
    dmarcReject: false,
    dmarcQuarantine: false,
    summary: { spf: 'temperror', dkim: 'temperror', dmarc: 'temperror', arc: 'temperror' },
  };
}

/**
 * "Authentication-Results: HOST;\r\n spf=...;\r\n dkim=...\r\n": one result per line, each folded
 * at whitespace to at most 78 characters where possible (RFC 5322 §2.1.1). Line breaks inside the
 * results (mailauth folds at 160) are unfolded first, and control characters that could come from
 * the message (a From domain) are removed, so the header can never be split or injected into.
 */
export function formatAuthenticationResults(hostname: string, rows: string[]): string {
  const clean = (s: string) => s.replace(/\r?\n[ \t]*/g, ' ').replace(/[\x00-\x1f\x7f]/g, ' ').replace(/ {2,}/g, ' ').trim();
  const items = rows.map(clean).filter(Boolean);
  const lines = [`Authentication-Results: ${clean(hostname)};`];
  items.forEach((item, i) => lines.push(...fold(` ${item}${i < items.length - 1 ? ';' : ''}`, 78)));
  return lines.join('\r\n') + '\r\n';
}

/** Greedy folding at spaces; a line starts with a space (it continues the header). */
function fold(text: string, width: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > width) {
    let at = rest.lastIndexOf(' ', width);
    if (at <= 0) at = rest.indexOf(' ', 1);
    if (at <= 0) break;
    out.push(rest.slice(0, at));
    rest = rest.slice(at);
  }
  out.push(rest);
  return out;
}

function withTimeout(resolver: SenderAuthResolver, ms: number): SenderAuthResolver {
  return (name, rrtype) =>
    new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        const err = new Error(`DNS query ${rrtype} ${name} timed out`) as Error & { code: string };
        err.code = 'ETIMEOUT';
        reject(err);
      }, ms);
      let pending: Promise<unknown>;
      try {
        pending = Promise.resolve(resolver(name, rrtype));
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
}
