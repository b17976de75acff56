// Retention: removes what the policy says is old enough, and records every removal.
//   - Trash and Junk (by special use): retention.trash / retention.junk days after the internal date;
//   - named mailboxes: retention.mailboxes ("Archive/Old=365,Newsletters=14");
//   - POP3 "leave on server for N days": INBOX messages N days after their first POP3 retrieval
//     (pop3.keep_after_retrieval);
//   - the safety valve (pop3.expire_when_usage_above): over that share of the quota, INBOX messages
//     already retrieved over POP3 go, oldest retrieval first, until usage is at or below the mark.
//     A message no client has retrieved is never removed by it.
// Removals go through Store.expungeMessages (usage, blobs, MODSEQ and change events follow; IMAP
// sessions see EXPUNGE) with a reason, which the store logs in the same transaction.

import type { Logger } from 'pino';
import { parseMailboxRetention, type Config, type Policy } from '../config/schema.js';
import { effectivePolicy } from '../policy/settings.js';
import type { Mailbox, MessageSummary, Store } from '../store/types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export type RetentionReason = 'trash' | 'junk' | 'mailbox' | 'pop3-kept' | 'pop3-usage';

export interface RetentionRemoval {
  account: string;
  mailbox: string;
  uid: number;
  size: number;
  reason: RetentionReason;
  /** In words, for people: which setting, and the date it counted from. */
  why: string;
}

export interface RetentionReport {
  now: string;
  dryRun: boolean;
  removed: RetentionRemoval[];
  bytesFreed: number;
}

export interface RetentionOptions {
  now: Date;
  dryRun: boolean;
  log?: Logger;
}

interface Planned {
  mailbox: Mailbox;
  message: MessageSummary;
  reason: RetentionReason;
  why: string;
}

const day = (date: Date) => date.toISOString();

/** Days of retention for a mailbox by its role or name, with the setting that gives it. */
function mailboxRule(mailbox: Mailbox, policy: Policy, named: Array<{ mailbox: string; days: number }>): { days: number; reason: RetentionReason; setting: string } | null {
  const byName = named.find((entry) => (entry.mailbox.toUpperCase() === 'INBOX' ? mailbox.name === 'INBOX' : entry.mailbox === mailbox.name));
  if (byName) return { days: byName.days, reason: 'mailbox', setting: `retention.mailboxes (${byName.mailbox}=${byName.days})` };
  if (mailbox.specialUse === '\\Trash' && policy['retention.trash'] !== null) return { days: policy['retention.trash'], reason: 'trash', setting: 'retention.trash' };
  if (mailbox.specialUse === '\\Junk' && policy['retention.junk'] !== null) return { days: policy['retention.junk'], reason: 'junk', setting: 'retention.junk' };
  return null;
}

export async function runRetention(store: Store, config: Config, options: RetentionOptions): Promise<RetentionReport> {
  const { now, dryRun, log } = options;
  const domains = new Map((await store.listDomains()).map((d) => [d.id, d]));
  const removed: RetentionRemoval[] = [];
  for (const account of await store.listAccounts()) {
    const policy = effectivePolicy(config, domains.get(account.domainId) ?? null, account);
    let named: Array<{ mailbox: string; days: number }> = [];
    try {
      named = parseMailboxRetention(policy['retention.mailboxes']);
    } catch {
      // validated when set; a stored value that no longer parses applies nothing
    }
    const planned: Planned[] = [];
    const inboxRetrieved: Array<{ mailbox: Mailbox; message: MessageSummary }> = [];
    for (const mailbox of await store.listMailboxes(account.id)) {
      const rule = mailboxRule(mailbox, policy, named);
      const isInbox = mailbox.specialUse === '\\Inbox' || mailbox.name === 'INBOX';
      const keep = policy['pop3.keep_after_retrieval'];
      if (!rule && !isInbox) continue;
      for (const message of await store.listMessageSummaries(mailbox.id)) {
        if (rule && message.internalDate.getTime() + rule.days * DAY_MS <= now.getTime()) {
          planned.push({ mailbox, message, reason: rule.reason, why: `${rule.setting}: older than ${rule.days} days (internal date ${day(message.internalDate)})` });
        } else if (isInbox && message.popRetrievedAt) {
          if (keep !== null && message.popRetrievedAt.getTime() + keep * DAY_MS <= now.getTime()) {
            planned.push({ mailbox, message, reason: 'pop3-kept', why: `pop3.keep_after_retrieval: retrieved over POP3 on ${day(message.popRetrievedAt)}, kept ${keep} days` });
          } else {
            inboxRetrieved.push({ mailbox, message });
          }
        }
      }
    }

    // The safety valve, on what the other rules leave.
    const share = policy['pop3.expire_when_usage_above'];
    if (share !== null && policy.quota !== null) {
      const mark = (policy.quota * share) / 100;
      let usage = account.usage.bytes - planned.reduce((sum, p) => sum + p.message.size, 0);
      if (usage > mark) {
        inboxRetrieved.sort((a, b) => a.message.popRetrievedAt!.getTime() - b.message.popRetrievedAt!.getTime() || a.message.uid - b.message.uid);
        for (const { mailbox, message } of inboxRetrieved) {
          if (usage <= mark) break;
          planned.push({
            mailbox,
            message,
            reason: 'pop3-usage',
            why: `pop3.expire_when_usage_above: usage ${usage} bytes above ${share}% of ${policy.quota}; retrieved over POP3 on ${day(message.popRetrievedAt!)}`,
          });
          usage -= message.size;
        }
      }
    }

    // Carry out, one expunge per mailbox (one transaction, one change event).
    const byMailbox = new Map<number, Planned[]>();
    for (const p of planned) byMailbox.set(p.mailbox.id, [...(byMailbox.get(p.mailbox.id) ?? []), p]);
    for (const items of byMailbox.values()) {
      const mailbox = items[0]!.mailbox;
      let done: Set<number>;
      if (dryRun) {
        done = new Set(items.map((p) => p.message.uid));
      } else {
        const reasons: Record<number, string> = {};
        for (const p of items) reasons[p.message.uid] = p.reason;
        done = new Set(await store.expungeMessages(mailbox.id, items.map((p) => p.message.uid), { at: now, reason: items[0]!.reason, reasons }));
      }
      for (const p of items.sort((a, b) => a.message.uid - b.message.uid)) {
        if (!done.has(p.message.uid)) continue;
        const removal: RetentionRemoval = { account: account.address, mailbox: mailbox.name, uid: p.message.uid, size: p.message.size, reason: p.reason, why: p.why };
        removed.push(removal);
        if (!dryRun) log?.info({ event: 'retention-removed', ...removal }, 'message removed by retention');
      }
    }
  }
  return { now: now.toISOString(), dryRun, removed, bytesFreed: removed.reduce((sum, r) => sum + r.size, 0) };
}
