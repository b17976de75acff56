// Store access for the storage report, `usage --over` and `cleanup`: lists mailboxes and messages
// through the Store contract and reads each message once, one at a time (memory bounded by the
// largest message, not the mailbox), handing the figures to the pure modules beside it.
// Removals go through Store.expungeMessages, like an IMAP EXPUNGE: usage, blobs, MODSEQ and
// change events follow, and IMAP sessions of a running server see the expunges.

import type { Config } from '../config/schema.js';
import { currentPolicy, effectivePolicy, quotaLimitOf } from '../policy/settings.js';
import { StoreError, type Account, type Mailbox, type MessageSummary, type Store } from '../store/types.js';
import { hasSelector, matchesContent, matchesListing, type CleanupSelector } from './cleanup-select.js';
import { messageFacts } from './message-facts.js';
import { formatSenderPattern } from './options.js';
import { overQuota } from './over-quota.js';
import { USAGE_REPORT_VERSION, type CleanupItem, type CleanupReport, type OverQuotaReport, type Tally, type UsageReport } from './report.js';
import { UsageTally } from './tally.js';

/** How removals by `yubin cleanup` are recorded in the retention log (and counted in `removals.byReason`). */
export const CLEANUP_REASON = 'cleanup';

/** UIDs per expunge: one transaction and one change event each, short enough not to hold up deliveries. */
const EXPUNGE_BATCH = 500;

export class CleanupRefused extends Error {}

function isInbox(mailbox: Mailbox): boolean {
  return mailbox.specialUse === '\\Inbox' || mailbox.name === 'INBOX';
}

/** The message's bytes, or null when it went (expunged by someone else) after it was listed. */
async function readListed(store: Store, mailbox: Mailbox, summary: MessageSummary): Promise<Buffer | null> {
  try {
    return await store.readMessageById(summary.id, { mailboxId: mailbox.id, uid: summary.uid });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'not-found') return null;
    // The row may have gone between reading it and reading its blob.
    if ((await store.getMessageSummary(mailbox.id, summary.uid)) === null) return null;
    throw err;
  }
}

export async function buildUsageReport(store: Store, config: Config, account: Account, options: { now: Date; top?: number }): Promise<UsageReport> {
  const policy = await currentPolicy(store, config, account);
  const limit = quotaLimitOf(policy);
  const usage = await store.getUsage(account.id);
  const retention = (await store.retentionTotals(account.id)).find((t) => t.accountId === account.id) ?? null;
  const tally = new UsageTally(options.now, options.top ?? 20);
  for (const mailbox of await store.listMailboxes(account.id)) {
    tally.addMailbox(mailbox.name, mailbox.specialUse);
    const inbox = isInbox(mailbox);
    for (const summary of await store.listMessageSummaries(mailbox.id)) {
      const raw = await readListed(store, mailbox, summary);
      if (raw === null) {
        tally.addVanished();
        continue;
      }
      tally.add({
        mailbox: mailbox.name,
        inbox,
        uid: summary.uid,
        size: summary.size,
        internalDate: summary.internalDate,
        popRetrievedAt: summary.popRetrievedAt,
        facts: messageFacts(raw),
      });
    }
  }
  return tally.report({
    address: account.address,
    now: options.now,
    usage: { bytes: usage.bytes, messages: usage.messages },
    quota: { bytes: limit.bytes, messages: limit.messages },
    keepAfterRetrievalDays: policy['pop3.keep_after_retrieval'],
    retention,
  });
}

export async function listOverQuota(store: Store, config: Config, threshold: number): Promise<OverQuotaReport> {
  const domains = new Map((await store.listDomains()).map((d) => [d.id, d]));
  const accounts = (await store.listAccounts()).map((account) => {
    const limit = quotaLimitOf(effectivePolicy(config, domains.get(account.domainId) ?? null, account));
    return { address: account.address, used: account.usage.bytes, messages: account.usage.messages, quota: limit.bytes, quotaMessages: limit.messages };
  });
  return overQuota(accounts, threshold);
}

export interface CleanupOptions {
  selector: CleanupSelector;
  now: Date;
  dryRun: boolean;
}

/**
 * Removes (or, dry, lists) the account's messages that match every selector, mailbox by mailbox
 * in UID order. A real run reports only what the store actually removed (a message expunged by
 * someone else meanwhile is not counted); a dry run lists exactly what a real run at the same
 * moment would remove.
 */
export async function runCleanup(store: Store, config: Config, account: Account, options: CleanupOptions): Promise<CleanupReport> {
  const { selector, now, dryRun } = options;
  if (!hasSelector(selector)) throw new CleanupRefused('at least one selector is required');
  const policy = await currentPolicy(store, config, account);
  let mailboxes = await store.listMailboxes(account.id);
  if (selector.mailbox !== null) {
    const wanted = selector.mailbox;
    const found = mailboxes.find((m) => (wanted.toUpperCase() === 'INBOX' ? m.name === 'INBOX' : m.name === wanted));
    if (!found) throw new CleanupRefused(`${account.address} has no mailbox "${wanted}"`);
    mailboxes = [found];
  }
  const before = await store.getUsage(account.id);
  const removed: CleanupItem[] = [];
  for (const mailbox of mailboxes) {
    const planned: CleanupItem[] = [];
    for (const summary of await store.listMessageSummaries(mailbox.id)) {
      if (!matchesListing(selector, summary, now)) continue;
      const raw = await readListed(store, mailbox, summary);
      if (raw === null) continue;
      const facts = messageFacts(raw);
      if (!matchesContent(selector, facts)) continue;
      planned.push({
        mailbox: mailbox.name,
        uid: summary.uid,
        internalDate: summary.internalDate.toISOString(),
        size: summary.size,
        sender: facts.sender,
        subject: facts.subject,
        bulk: facts.bulk,
      });
    }
    if (dryRun) {
      removed.push(...planned);
      continue;
    }
    for (let i = 0; i < planned.length; i += EXPUNGE_BATCH) {
      const batch = planned.slice(i, i + EXPUNGE_BATCH);
      let done: Set<number>;
      try {
        done = new Set(await store.expungeMessages(mailbox.id, batch.map((item) => item.uid), { at: now, reason: CLEANUP_REASON }));
      } catch (err) {
        if (err instanceof StoreError && err.code === 'not-found') break; // the mailbox went meanwhile
        throw err;
      }
      removed.push(...batch.filter((item) => done.has(item.uid)));
    }
  }
  const freed: Tally = { messages: removed.length, bytes: removed.reduce((sum, item) => sum + item.size, 0) };
  const after = dryRun ? { messages: before.messages - freed.messages, bytes: before.bytes - freed.bytes } : await store.getUsage(account.id);
  return {
    version: USAGE_REPORT_VERSION,
    address: account.address,
    now: now.toISOString(),
    dryRun,
    selectors: {
      mailbox: mailboxes.length === 1 && selector.mailbox !== null ? mailboxes[0]!.name : null,
      olderThanSeconds: selector.olderThanSeconds,
      bulk: selector.bulk,
      from: selector.from ? formatSenderPattern(selector.from) : null,
      largerThan: selector.largerThan,
    },
    removed,
    freed,
    usageBefore: { messages: before.messages, bytes: before.bytes },
    usageAfter: { messages: after.messages, bytes: after.bytes },
    quota: quotaLimitOf(policy).bytes,
  };
}
