// Local delivery: one received message into the INBOX of each local recipient, all or nothing,
// with quotas enforced inside the store transaction. The body is written (and fsynced) once as a
// shared blob; each recipient's Return-Path and Delivered-To live in a small per-message prefix.
// Knows nothing of SMTP: callers map the verdict to replies.

import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Store, QuotaLimit } from '../store/types.js';
import { effectivePolicy } from '../policy/settings.js';
import { fitsQuota, type LocalTarget } from './recipients.js';

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
  | { status: 'over-quota'; permanent: boolean; full: string[] };

export class LocalDelivery {
  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {}

  /** RCPT-time check: does a message of `sizeHint` bytes (0 if unknown) fit every target? */
  async quotaCheck(targets: LocalTarget[], sizeHint: number): Promise<{ fits: true } | { fits: false; permanent: boolean }> {
    for (const target of targets) {
      const domain = await this.store.getDomain(target.domain.name);
      const account = (await this.store.getAccountById(target.account.id)) ?? target.account;
      const policy = effectivePolicy(this.config(), domain, account);
      const usage = await this.store.getUsage(target.account.id);
      if (!fitsQuota(usage, sizeHint, policy)) return { fits: false, permanent: policy.over_quota === 'reject' };
    }
    return { fits: true };
  }

  async deliver(message: IncomingMessage): Promise<DeliveryVerdict> {
    const blobBytes = Buffer.concat([Buffer.from(message.traceHeaders, 'utf8'), message.content]);
    const blobId = await this.store.blobs.put(blobBytes);

    const seen = new Set<number>();
    const entries: Array<{ target: LocalTarget; address: string; quota: QuotaLimit; permanent: boolean }> = [];
    for (const rcpt of message.recipients) {
      for (const target of rcpt.targets) {
        // RFC 5321 §3.7.2-ish: one copy per mailbox, however many RCPTs or aliases lead to it.
        if (seen.has(target.account.id)) continue;
        seen.add(target.account.id);
        // Settings are read fresh: a CLI change applies to the next message without a restart.
        const domain = await this.store.getDomain(target.domain.name);
        const account = (await this.store.getAccountById(target.account.id)) ?? target.account;
        const policy = effectivePolicy(this.config(), domain, account);
        entries.push({ target, address: rcpt.address, quota: { bytes: policy.quota, messages: policy.quota_messages }, permanent: policy.over_quota === 'reject' });
      }
    }
    const returnPath = `Return-Path: <${message.mailFrom}>\r\n`;
    const result = await this.store.deliver(
      {
        blobId,
        blobSize: blobBytes.length,
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
    if (!result.stored) {
      const full = result.outcomes.flatMap((outcome, i) => (outcome.status === 'over-quota' ? [entries[i]!] : []));
      // Temporary unless every recipient is full with the "reject" policy: a sender retrying later
      // reaches those who had room, and gets a permanent answer at RCPT for the others.
      const permanent = full.length === entries.length && full.every((entry) => entry.permanent);
      this.log.debug({ full: full.map((e) => e.target.account.address) }, 'quota exceeded at end of data');
      return { status: 'over-quota', permanent, full: full.map((entry) => entry.address) };
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
