// Local delivery: one received message into the INBOX of each local recipient, all or nothing,
// with quotas enforced inside the store transaction. The body is written (and fsynced) once as a
// shared blob; each recipient's Return-Path and Delivered-To live in a small per-message prefix.
// Knows nothing of SMTP: callers map the verdict to replies.

import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Store, QuotaLimit } from '../store/types.js';
import { currentPolicy, quotaLimitOf } from '../policy/settings.js';
import { fitsQuota, type LocalTarget } from './recipients.js';
import { blobIdOf } from '../store/blob-id.js';

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
  | { status: 'stored'; size: number; deliveries: Array<{ address: string; account: string; uid: number }> }
  | { status: 'over-quota'; permanent: boolean; tooBig: boolean; full: string[] };

export type QuotaCheck = { fits: true } | { fits: false; permanent: boolean; tooBig: boolean };

/** Room kept at RCPT for what Yubin adds to the declared SIZE (Received, Return-Path, Delivered-To). */
const TRACE_ALLOWANCE = 512;
/** How long the size of a message refused at end of data is remembered for its recipient. */
const REMEMBER_REFUSED_MS = 24 * 3600_000;
const REMEMBER_MAX_ENTRIES = 10_000;

export class LocalDelivery {
  /**
   * accountId → size of the last message refused at end of data for lack of room. A sender that
   * gave no SIZE retries the same message; checking RCPT against that size refuses the full
   * recipient at RCPT, so the others of the transaction get the message on that retry.
   */
  private readonly refusedSizes = new Map<number, { size: number; at: number }>();

  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {}

  /** RCPT-time check: does a message of `sizeHint` bytes (0 if unknown) fit every target? */
  async quotaCheck(targets: LocalTarget[], sizeHint: number): Promise<QuotaCheck> {
    for (const target of targets) {
      const policy = await currentPolicy(this.store, this.config(), target.account);
      const usage = await this.store.getUsage(target.account.id);
      const remembered = this.refusedSizes.get(target.account.id);
      const expected = sizeHint > 0 ? sizeHint + TRACE_ALLOWANCE : remembered && Date.now() - remembered.at < REMEMBER_REFUSED_MS ? remembered.size : 0;
      // RFC 3463 X.2.3: larger than the whole mailbox can ever hold; making room will not help.
      if (policy.quota !== null && expected > policy.quota) return { fits: false, permanent: true, tooBig: true };
      if (!fitsQuota(usage, expected, policy)) return { fits: false, permanent: policy.over_quota === 'reject', tooBig: false };
    }
    return { fits: true };
  }

  private rememberRefused(accountId: number, size: number): void {
    if (this.refusedSizes.size >= REMEMBER_MAX_ENTRIES) {
      const oldest = this.refusedSizes.keys().next();
      if (!oldest.done) this.refusedSizes.delete(oldest.value);
    }
    this.refusedSizes.delete(accountId);
    this.refusedSizes.set(accountId, { size, at: Date.now() });
  }

  async deliver(message: IncomingMessage): Promise<DeliveryVerdict> {
    const blobBytes = Buffer.concat([Buffer.from(message.traceHeaders, 'utf8'), message.content]);
    // Small bodies go inside the delivery's own transaction (one commit makes them durable);
    // large ones are written and fsynced as files first.
    const inline = blobBytes.length <= this.config().storage.inline_max;
    const blobId = inline ? blobIdOf(blobBytes) : await this.store.blobs.put(blobBytes);

    const seen = new Set<number>();
    const entries: Array<{ target: LocalTarget; address: string; quota: QuotaLimit; permanent: boolean }> = [];
    for (const rcpt of message.recipients) {
      for (const target of rcpt.targets) {
        // RFC 5321 §3.7.2-ish: one copy per mailbox, however many RCPTs or aliases lead to it.
        if (seen.has(target.account.id)) continue;
        seen.add(target.account.id);
        const policy = await currentPolicy(this.store, this.config(), target.account);
        entries.push({ target, address: rcpt.address, quota: quotaLimitOf(policy), permanent: policy.over_quota === 'reject' });
      }
    }
    const returnPath = `Return-Path: <${message.mailFrom}>\r\n`;
    let result;
    try {
      result = await this.store.deliver(
        {
          blobId,
          blobSize: blobBytes.length,
          inlineBytes: inline ? blobBytes : undefined,
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
      if (!inline) await this.store.discardBlob(blobId).catch(() => undefined);
      throw err;
    }
    if (!result.stored) {
      // Nothing references the file now (unless an identical message is stored): it goes.
      if (!inline) await this.store.discardBlob(blobId);
      const full = result.outcomes.flatMap((outcome, i) => (outcome.status === 'over-quota' ? [{ entry: entries[i]!, outcome }] : []));
      const tooBig = (f: (typeof full)[number]) => f.outcome.status === 'over-quota' && f.outcome.limit.bytes !== null && f.outcome.size > f.outcome.limit.bytes;
      for (const f of full) if (f.outcome.status === 'over-quota') this.rememberRefused(f.entry.target.account.id, f.outcome.size);
      // Temporary unless every recipient failed for good ("reject" policy, or a message larger than
      // the whole mailbox): a sender retrying later is refused at RCPT for the full recipients
      // (see refusedSizes) and reaches the others.
      const permanent = full.length === entries.length && full.every((f) => f.entry.permanent || tooBig(f));
      this.log.debug({ full: full.map((f) => f.entry.target.account.address) }, 'quota exceeded at end of data');
      return { status: 'over-quota', permanent, tooBig: permanent && full.every(tooBig), full: full.map((f) => f.entry.address) };
    }
    return {
      status: 'stored',
      size: blobBytes.length,
      deliveries: result.outcomes.map((outcome, i) => ({
        address: entries[i]!.address,
        account: entries[i]!.target.account.address,
        uid: outcome.status === 'stored' ? outcome.uid : 0,
      })),
    };
  }
}
