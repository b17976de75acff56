// Recipient policy: what an envelope recipient means here. Local accounts and aliases in local
// domains only (an alias may also forward to addresses elsewhere: those come back as `remote`); every routing trick (percent hack, bang path, quoted local part with "@",
// IP literal, source route) is refused as relaying. No SMTP types here: verdicts are values.

import type { Policy } from '../config/schema.js';
import type { Account, Domain, Store } from '../store/types.js';

export interface LocalTarget {
  account: Account;
  domain: Domain;
  /** The envelope address that led here (for Delivered-To and logs). */
  via: string;
}

export type RecipientVerdict =
  /** `targets` are local mailboxes; `remote` are forwarding addresses of aliases, to be queued. */
  | { kind: 'local'; targets: LocalTarget[]; remote: string[] }
  | { kind: 'unknown-user'; address: string }
  | { kind: 'relay-denied'; address: string; why: string }
  | { kind: 'bad-syntax'; address: string };

const MAX_ALIAS_DEPTH = 8;

/** Splits and normalises an address; null when it cannot be a deliverable address here. */
export function normalizeAddress(raw: string): { local: string; domain: string; routing: string | null } | null {
  const at = raw.lastIndexOf('@');
  if (at <= 0 || at === raw.length - 1) return null;
  let local = raw.slice(0, at);
  let domain = raw.slice(at + 1).toLowerCase();
  if (domain.endsWith('.')) domain = domain.slice(0, -1);
  // RFC 5321 §4.1.2: a quoted local part is the same mailbox as its unquoted content.
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"')) local = local.slice(1, -1).replace(/\\(.)/g, '$1');
  let routing: string | null = null;
  if (/[@%!]/.test(local)) routing = 'routing characters in the local part (%, ! or @)';
  else if (domain.startsWith('[')) routing = 'address literal as domain';
  else if (/[\s"\\<>()[\],;:]/.test(local)) routing = 'unusual characters in the local part';
  return { local: local.toLowerCase(), domain, routing };
}

/**
 * RFC 5321 §4.1.1.3: "RCPT TO:<postmaster>" (no domain) MUST be accepted. It means this host's
 * postmaster: postmaster@ the host name or its parent domains (mx.example.com → example.com),
 * else of the first local domain that has one.
 */
async function domainlessPostmaster(store: Store, hostname: string): Promise<string | null> {
  const labels = hostname.toLowerCase().replace(/\.$/, '').split('.');
  const candidates: string[] = [];
  for (let i = 0; i < labels.length - 1; i++) candidates.push(labels.slice(i).join('.'));
  for (const domain of await store.listDomains()) candidates.push(domain.name);
  for (const domain of candidates) {
    const resolution = await store.resolveRecipient(`postmaster@${domain}`);
    if (resolution.kind === 'account' || resolution.kind === 'alias') return `postmaster@${domain}`;
  }
  return null;
}

export async function resolveEnvelopeRecipient(store: Store, raw: string, hostname: string): Promise<RecipientVerdict> {
  let address = raw;
  if (raw.toLowerCase() === 'postmaster') {
    const postmaster = await domainlessPostmaster(store, hostname);
    if (!postmaster) return { kind: 'unknown-user', address: raw };
    address = postmaster;
  }
  const parts = normalizeAddress(address);
  if (!parts) return { kind: 'bad-syntax', address: raw };
  const domain = await store.getDomain(parts.domain);
  if (!domain) return { kind: 'relay-denied', address: raw, why: `${parts.domain || 'that domain'} is not a domain of this server` };
  if (parts.routing) return { kind: 'relay-denied', address: raw, why: parts.routing };

  const targets = new Map<number, LocalTarget>();
  const remote = new Set<string>();
  const seen = new Set<string>();
  const expand = async (addr: string, depth: number): Promise<void> => {
    if (seen.has(addr) || depth > MAX_ALIAS_DEPTH) return;
    seen.add(addr);
    const resolution = await store.resolveRecipient(addr);
    if (resolution.kind === 'account') {
      if (!targets.has(resolution.account.id)) targets.set(resolution.account.id, { account: resolution.account, domain: resolution.domain, via: addr });
    } else if (resolution.kind === 'alias') {
      for (const target of resolution.targets) await expand(target.toLowerCase(), depth + 1);
    } else if (resolution.kind === 'not-local' && depth > 0) {
      const parts = normalizeAddress(addr);
      if (parts && !parts.routing) remote.add(`${parts.local}@${parts.domain}`);
    }
    // an alias target that no longer exists is skipped; the alias still reaches the others
  };
  await expand(`${parts.local}@${parts.domain}`, 0);
  if (targets.size === 0 && remote.size === 0) return { kind: 'unknown-user', address: raw };
  return { kind: 'local', targets: [...targets.values()], remote: [...remote] };
}

/** Whether `size` more bytes (0 when unknown) and one more message fit the account's quota. */
export function fitsQuota(usage: { bytes: number; messages: number }, size: number, policy: Policy): boolean {
  if (policy.quota !== null) {
    if (size > 0 ? usage.bytes + size > policy.quota : usage.bytes >= policy.quota) return false;
  }
  if (policy.quota_messages !== null && usage.messages + 1 > policy.quota_messages) return false;
  return true;
}
