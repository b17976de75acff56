// The storage report's arithmetic: messages go in one at a time, the report comes out. Pure and
// bounded: it keeps counters, one small row per sender, and only the `top` largest messages; it
// never holds message contents. Reading the store is ./collect.ts's job, not this module's.

import type { RetentionTotals } from '../store/types.js';
import type { MessageFacts } from './message-facts.js';
import { USAGE_REPORT_VERSION, type LargeMessage, type MailboxUsage, type SenderUsage, type Tally, type UsageReport } from './report.js';

const DAY_MS = 86_400_000;

export type AgeBucket = 'under30Days' | 'from30To365Days' | 'over365Days';

/** The age bucket of an internal date at `now`: under 30 days (future dates too), 30 to 365 days, older. */
export function ageBucket(internalDate: Date, now: Date): AgeBucket {
  const age = now.getTime() - internalDate.getTime();
  if (age < 30 * DAY_MS) return 'under30Days';
  if (age < 365 * DAY_MS) return 'from30To365Days';
  return 'over365Days';
}

/** Share in percent rounded to one decimal, as `yubin user list` shows it; null without a limit. */
export function percentOf(used: number, limit: number | null): number | null {
  if (limit === null) return null;
  return Math.round(exactPercent(used, limit) * 10) / 10;
}

/** Unrounded share in percent; a limit of 0 reads 100 once anything is used. */
export function exactPercent(used: number, limit: number): number {
  if (limit <= 0) return used > 0 ? 100 : 0;
  return (used / limit) * 100;
}

/** One message as the scan sees it: the listing's figures plus what its bytes say. */
export interface ScannedMessage {
  mailbox: string;
  inbox: boolean;
  uid: number;
  size: number;
  internalDate: Date;
  popRetrievedAt: Date | null;
  facts: MessageFacts;
}

const tally = (): Tally => ({ messages: 0, bytes: 0 });
const add = (t: Tally, bytes: number): void => {
  t.messages++;
  t.bytes += bytes;
};

/** Larger first, then older, then mailbox and UID: a total order, so the list is stable. */
function compareLarge(a: LargeMessage & { at: number }, b: LargeMessage & { at: number }): number {
  return b.size - a.size || a.at - b.at || (a.mailbox < b.mailbox ? -1 : a.mailbox > b.mailbox ? 1 : 0) || a.uid - b.uid;
}

/** More bytes first, then more messages, then by address (messages without a sender last). */
function compareSenders(a: SenderUsage, b: SenderUsage): number {
  const byName = a.address === b.address ? 0 : a.address === null ? 1 : b.address === null ? -1 : a.address < b.address ? -1 : 1;
  return b.bytes - a.bytes || b.messages - a.messages || byName;
}

export interface ReportContext {
  address: string;
  now: Date;
  usage: Tally;
  quota: { bytes: number | null; messages: number | null };
  keepAfterRetrievalDays: number | null;
  retention: RetentionTotals | null;
}

export class UsageTally {
  private readonly mailboxes = new Map<string, MailboxUsage>();
  private readonly age = { under30Days: tally(), from30To365Days: tally(), over365Days: tally() };
  private readonly attachments = { bytes: 0, parts: 0, messages: 0 };
  private largest: Array<LargeMessage & { at: number }> = [];
  private readonly senders = new Map<string, SenderUsage>();
  private readonly retrievedOnServer = tally();
  private readonly notRetrieved = tally();
  private readonly scanned = { messages: 0, bytes: 0, vanished: 0 };

  constructor(
    private readonly now: Date,
    private readonly top = 20,
  ) {}

  /** Every mailbox is listed, even an empty one. */
  addMailbox(name: string, specialUse: string | null): void {
    if (!this.mailboxes.has(name)) this.mailboxes.set(name, { name, specialUse, messages: 0, bytes: 0 });
  }

  /** A listed message that was gone before it could be read. */
  addVanished(): void {
    this.scanned.vanished++;
  }

  add(message: ScannedMessage): void {
    const { size, facts } = message;
    this.addMailbox(message.mailbox, null);
    const box = this.mailboxes.get(message.mailbox)!;
    box.messages++;
    box.bytes += size;
    add(this.scanned, size);
    add(this.age[ageBucket(message.internalDate, this.now)], size);

    if (facts.attachmentParts > 0) {
      this.attachments.bytes += facts.attachmentBytes;
      this.attachments.parts += facts.attachmentParts;
      this.attachments.messages++;
    }

    if (message.popRetrievedAt) add(this.retrievedOnServer, size);
    else if (message.inbox) add(this.notRetrieved, size);

    const key = facts.sender ?? '';
    let sender = this.senders.get(key);
    if (!sender) this.senders.set(key, (sender = { address: facts.sender, messages: 0, bytes: 0, bulk: false, bulkMessages: 0 }));
    sender.messages++;
    sender.bytes += size;
    if (facts.bulk) {
      sender.bulk = true;
      sender.bulkMessages++;
    }

    this.offerLargest({
      mailbox: message.mailbox,
      uid: message.uid,
      size,
      internalDate: message.internalDate.toISOString(),
      sender: facts.sender,
      subject: facts.subject,
      at: message.internalDate.getTime(),
    });
  }

  /** Keeps the `top` largest, sorted; a message smaller than the smallest kept is dropped at once. */
  private offerLargest(entry: LargeMessage & { at: number }): void {
    const list = this.largest;
    if (list.length >= this.top && compareLarge(entry, list[list.length - 1]!) >= 0) return;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareLarge(list[mid]!, entry) <= 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, entry);
    if (list.length > this.top) list.pop();
  }

  report(context: ReportContext): UsageReport {
    const byReason: Record<string, Tally> = {};
    for (const reason of Object.keys(context.retention?.byReason ?? {}).sort()) {
      const r = context.retention!.byReason[reason]!;
      byReason[reason] = { messages: r.messages, bytes: r.bytes };
    }
    const removedAfterRetrieval = tally();
    for (const reason of ['pop3-kept', 'pop3-usage']) {
      removedAfterRetrieval.messages += byReason[reason]?.messages ?? 0;
      removedAfterRetrieval.bytes += byReason[reason]?.bytes ?? 0;
    }
    return {
      version: USAGE_REPORT_VERSION,
      address: context.address,
      now: context.now.toISOString(),
      usage: { ...context.usage },
      quota: {
        bytes: context.quota.bytes,
        messages: context.quota.messages,
        bytesPercent: percentOf(context.usage.bytes, context.quota.bytes),
        messagesPercent: percentOf(context.usage.messages, context.quota.messages),
      },
      mailboxes: [...this.mailboxes.values()].map((m) => ({ ...m })).sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      age: {
        under30Days: { ...this.age.under30Days },
        from30To365Days: { ...this.age.from30To365Days },
        over365Days: { ...this.age.over365Days },
      },
      attachments: { ...this.attachments },
      largest: this.largest.map(({ at: _at, ...rest }) => rest),
      senders: [...this.senders.values()].sort(compareSenders).slice(0, this.top).map((s) => ({ ...s })),
      pop3: {
        retrievedOnServer: { ...this.retrievedOnServer },
        notRetrieved: { ...this.notRetrieved },
        removedAfterRetrieval,
        keepAfterRetrievalDays: context.keepAfterRetrievalDays,
      },
      removals: { messages: context.retention?.messages ?? 0, bytes: context.retention?.bytes ?? 0, byReason },
      scanned: { ...this.scanned },
    };
  }
}
