// Local delivery: one received message into the INBOX of each local recipient, all or nothing,
// with quotas enforced inside the store transaction. The body is written (and fsynced) once as a
// shared blob; each recipient's Return-Path and Delivered-To live in a small per-message prefix.
// Knows nothing of SMTP: callers map the verdict to replies.

import type { Logger } from 'pino';
import type { Config, Policy } from '../config/schema.js';
import type { Store, QuotaLimit } from '../store/types.js';
import { acceptancePolicy, currentPolicy, quotaLimitOf } from '../policy/settings.js';
import { CapacityNotices } from '../notices/capacity.js';
import type { Account } from '../store/types.js';
import { fitsQuota, type LocalTarget } from './recipients.js';
import { decodedSubject } from '../mime/headers.js';

export interface IncomingMessage {
  /** Envelope sender; '' for the null sender (bounces). */
  mailFrom: string;
  /** Accepted recipients in RCPT order, each already resolved to its local targets. */
  recipients: Array<{ address: string; targets: LocalTarget[] }>;
  /** Trace header(s) to put on top, CRLF-terminated (Received). */
  traceHeaders: string;
  /** The message as received, CRLF line ends. */
  content: Buffer;
  receivedAt: Date;
}

export type DeliveryVerdict =
  /** `held`: recipients whose mailbox is now over its quota (over_quota = "hold" accepted it within the grace). */
  | { status: 'stored'; size: number; deliveries: Array<{ address: string; account: string; uid: number }>; held: string[] }
  | { status: 'over-quota'; permanent: boolean; tooBig: boolean; full: string[] };

export type QuotaCheck = { fits: true } | { fits: false; permanent: boolean; tooBig: boolean };

/** Room kept at RCPT for what Yubin adds to the declared SIZE (Received, Return-Path, Delivered-To). */
const TRACE_ALLOWANCE = 512;
/** How long the size of a message refused at end of data is remembered for its recipient and sender. */
const REMEMBER_REFUSED_MS = 24 * 3600_000;
const REMEMBER_MAX_ENTRIES = 10_000;

const refusedKey = (accountId: number, sender: string) => `${accountId} ${sender.toLowerCase()}`;

export class LocalDelivery {
  /**
   * "accountId sender" → size of the last message from that sender refused at end of data for
   * lack of room. A sender that gave no SIZE retries the same message; checking RCPT against that
   * size refuses the full recipient at RCPT, so the others of the transaction get the message on
   * that retry. Keyed by sender too: other senders' mail without SIZE is not judged by it.
   */
  private readonly refusedSizes = new Map<string, { size: number; at: number }>();

  readonly notices: CapacityNotices;

  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {
    this.notices = new CapacityNotices(store, config, log);
  }

  private readonly pending = new Set<Promise<unknown>>();

  /** Notices run after the reply; a failure is logged, never turned into an SMTP error. */
  private background(what: string, work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.log.error({ err: (err as Error)?.stack ?? String(err) }, `${what} failed`));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  /** Waits for notices still being written (before the store closes). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Tells the user (in the digest) about mail their full mailbox deferred or refused. */
  private missed(account: Account, sender: string, size: number, permanent: boolean, subject: string | null = null): void {
    this.background('recording missed mail', this.notices.recordMissed(account, { sender, size, outcome: permanent ? 'refused' : 'deferred', subject }));
  }

  /** RCPT-time check: does a message of `sizeHint` bytes (0 if unknown) fit every target? */
  async quotaCheck(targets: LocalTarget[], sizeHint: number, sender = ''): Promise<QuotaCheck> {
    for (const target of targets) {
      const policy = acceptancePolicy(await currentPolicy(this.store, this.config(), target.account));
      const usage = await this.store.getUsage(target.account.id);
      const remembered = this.refusedSizes.get(refusedKey(target.account.id, sender));
      const expected = sizeHint > 0 ? sizeHint + TRACE_ALLOWANCE : remembered && Date.now() - remembered.at < REMEMBER_REFUSED_MS ? remembered.size : 0;
      // RFC 3463 X.2.3: larger than the whole mailbox can ever hold; making room will not help.
      if (policy.quota !== null && expected > policy.quota) {
        this.missed(target.account, sender, expected, true);
        return { fits: false, permanent: true, tooBig: true };
      }
      if (!fitsQuota(usage, expected, policy)) {
        this.missed(target.account, sender, sizeHint, policy.over_quota === 'reject');
        return { fits: false, permanent: policy.over_quota === 'reject', tooBig: false };
      }
    }
    return { fits: true };
  }

  private rememberRefused(accountId: number, sender: string, size: number): void {
    if (this.refusedSizes.size >= REMEMBER_MAX_ENTRIES) {
      const oldest = this.refusedSizes.keys().next();
      if (!oldest.done) this.refusedSizes.delete(oldest.value);
    }
    const key = refusedKey(accountId, sender);
    this.refusedSizes.delete(key);
    this.refusedSizes.set(key, { size, at: Date.now() });
  }

  async deliver(message: IncomingMessage): Promise<DeliveryVerdict> {
    const blobBytes = Buffer.concat([Buffer.from(message.traceHeaders, 'utf8'), message.content]);
    // Small bodies go inside the delivery's own transaction (one commit makes them durable);
    // large ones, and large attachments (stored once however many messages carry them), are
    // written and fsynced as files first.
    const staged = await this.store.stageBlob(blobBytes);

    const seen = new Set<number>();
    // `hold`: the real quota of an over_quota = "hold" account (mail over it is held and reported).
    const entries: Array<{ target: LocalTarget; policy: Policy; address: string; quota: QuotaLimit; permanent: boolean; hold: QuotaLimit | null }> = [];
    for (const rcpt of message.recipients) {
      for (const target of rcpt.targets) {
        // RFC 5321 §3.7.2-ish: one copy per mailbox, however many RCPTs or aliases lead to it.
        if (seen.has(target.account.id)) continue;
        seen.add(target.account.id);
        const policy = await currentPolicy(this.store, this.config(), target.account);
        entries.push({ target, policy, address: rcpt.address, quota: quotaLimitOf(acceptancePolicy(policy)), permanent: policy.over_quota === 'reject', hold: policy.over_quota === 'hold' ? quotaLimitOf(policy) : null });
      }
    }
    const returnPath = `Return-Path: <${message.mailFrom}>\r\n`;
    let result;
    try {
      result = await this.store.deliver(
        {
          ...staged,
          internalDate: message.receivedAt,
          recipients: entries.map((entry) => ({
            accountId: entry.target.account.id,
            mailbox: '\\Inbox' as const,
            headerPrefix: Buffer.from(`${returnPath}Delivered-To: ${entry.target.account.address}\r\n`, 'utf8'),
            quota: entry.quota,
          })),
        },
        blobBytes,
      );
    } catch (err) {
      await this.store.discardBlob(staged).catch(() => undefined);
      throw err;
    }
    if (!result.stored) {
      // Nothing references the file now (unless an identical message is stored): it goes.
      await this.store.discardBlob(staged);
      const full = result.outcomes.flatMap((outcome, i) => (outcome.status === 'over-quota' ? [{ entry: entries[i]!, outcome }] : []));
      const tooBig = (f: (typeof full)[number]) => f.outcome.status === 'over-quota' && f.outcome.limit.bytes !== null && f.outcome.size > f.outcome.limit.bytes;
      for (const f of full) if (f.outcome.status === 'over-quota') this.rememberRefused(f.entry.target.account.id, message.mailFrom, f.outcome.size);
      const subject = decodedSubject(message.content);
      for (const f of full) {
        if (f.outcome.status === 'over-quota') this.missed(f.entry.target.account, message.mailFrom, f.outcome.size, f.entry.permanent || tooBig(f), subject);
      }
      // Temporary unless every recipient failed for good ("reject" policy, or a message larger than
      // the whole mailbox): a sender retrying later is refused at RCPT for the full recipients
      // (see refusedSizes) and reaches the others.
      const permanent = full.length === entries.length && full.every((f) => f.entry.permanent || tooBig(f));
      this.log.debug({ full: full.map((f) => f.entry.target.account.address) }, 'quota exceeded at end of data');
      return { status: 'over-quota', permanent, tooBig: permanent && full.every(tooBig), full: full.map((f) => f.entry.address) };
    }
    // After a delivery: warnings where usage crossed a level; held mail reported at once.
    const held: string[] = [];
    for (const entry of entries) {
      let over = false;
      if (entry.hold) {
        const usage = await this.store.getUsage(entry.target.account.id);
        over = (entry.hold.bytes !== null && usage.bytes > entry.hold.bytes) || (entry.hold.messages !== null && usage.messages > entry.hold.messages);
        if (over) held.push(entry.address);
      }
      this.background('capacity check', (async () => {
        if (over) await this.notices.recordMissed(entry.target.account, { sender: message.mailFrom, size: blobBytes.length, outcome: 'held', subject: decodedSubject(message.content) });
        await this.notices.checkThresholds(entry.target.account, entry.policy);
      })());
    }
    return {
      status: 'stored',
      held,
      size: blobBytes.length,
      deliveries: result.outcomes.map((outcome, i) => ({
        address: entries[i]!.address,
        account: entries[i]!.target.account.address,
        uid: outcome.status === 'stored' ? outcome.uid : 0,
      })),
    };
  }
}

