// Mailbox capacity notices: the user always knows how full their mailbox is, what fills it and
// what to do, before mail bounces, and learns what mail they missed while it was full.
// - A warning when usage crosses a level of policy.quota_warnings (80%, 90%, 100%), once per
//   crossing: not again until usage drops below that level and crosses it again.
// - A digest of the mail deferred, refused or held because the mailbox was full (one message for
//   many attempts), at once for the first event, then at most hourly (and by the maintenance run).
// Notices go into the INBOX whatever the quota, in the user's language (policy.locale).

import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { Config, Policy } from '../config/schema.js';
import { parseThresholds } from '../config/schema.js';
import type { Account, QuotaEvent, Store, Usage } from '../store/types.js';
import { currentPolicy } from '../policy/settings.js';
import { messageFacts } from '../usage/message-facts.js';
import { exactPercent } from '../usage/tally.js';
import { formatSize } from '../config/size.js';
import { formatHumanDate } from '../dsn/explanations.js';
import { rfc5322Date } from '../mime/headers.js';
import libmime from 'libmime';

type Locale = 'en' | 'ja';

const LEVEL_KEY = 'quota_warning_level';
const DIGEST_AT_KEY = 'quota_digest_at';
/** A digest goes out at most this often; events in between wait for the next one. */
const DIGEST_INTERVAL_MS = 3600_000;
/** Messages whose headers are read for the "what fills it" part (the largest ones). */
const SCAN_LARGEST = 500;

/** The usage share in percent: the larger of bytes and messages against their limits; null without limits. */
export function usageShare(usage: Pick<Usage, 'bytes' | 'messages'>, policy: Pick<Policy, 'quota' | 'quota_messages'>): number | null {
  const shares: number[] = [];
  if (policy.quota !== null) shares.push(exactPercent(usage.bytes, policy.quota));
  if (policy.quota_messages !== null) shares.push(exactPercent(usage.messages, policy.quota_messages));
  return shares.length === 0 ? null : Math.max(...shares);
}

/** The highest threshold at or below `share` (0 when none is reached). */
export function warningLevel(share: number | null, thresholds: number[]): number {
  if (share === null) return 0;
  let level = 0;
  for (const t of thresholds) if (share >= t) level = t;
  return level;
}

/** What a warning must do given the level last warned about: warn at `level`, re-arm lower, or nothing. */
export function nextWarning(previous: number, level: number): { warn: boolean; store: number | null } {
  if (level > previous) return { warn: true, store: level };
  if (level < previous) return { warn: false, store: level };
  return { warn: false, store: null };
}

interface MessageFacts {
  mailbox: string;
  size: number;
  date: Date;
  from: string;
  subject: string;
  bulk: boolean;
}

export interface CapacitySummary {
  usage: Usage;
  policy: Policy;
  share: number | null;
  mailboxes: Array<{ name: string; messages: number; bytes: number }>;
  largest: MessageFacts[];
  senders: Array<{ address: string; messages: number; bytes: number; bulk: boolean }>;
  bulkBytes: number;
  /** Bytes of attachments among the messages looked at (the largest ones). */
  attachmentBytes: number;
  popRetrieved: { messages: number; bytes: number };
}

/** What fills the mailbox: per mailbox, the largest messages, the senders of the most bytes, bulk mail. */
export async function summarizeCapacity(store: Store, config: Config, account: Account): Promise<CapacitySummary> {
  const policy = await currentPolicy(store, config, account);
  const usage = await store.getUsage(account.id);
  const mailboxes: CapacitySummary['mailboxes'] = [];
  const all: Array<{ id: number; mailbox: string; size: number; date: Date; popRetrievedAt: Date | null }> = [];
  for (const mailbox of await store.listMailboxes(account.id)) {
    const summaries = await store.listMessageSummaries(mailbox.id);
    mailboxes.push({ name: mailbox.name, messages: summaries.length, bytes: summaries.reduce((sum, m) => sum + m.size, 0) });
    for (const m of summaries) all.push({ id: m.id, mailbox: mailbox.name, size: m.size, date: m.internalDate, popRetrievedAt: m.popRetrievedAt });
  }
  mailboxes.sort((a, b) => b.bytes - a.bytes);
  all.sort((a, b) => b.size - a.size);
  const facts: MessageFacts[] = [];
  let attachmentBytes = 0;
  for (const m of all.slice(0, SCAN_LARGEST)) {
    let raw: Buffer;
    try {
      raw = await store.readMessageById(m.id);
    } catch {
      continue; // removed meanwhile
    }
    const f = messageFacts(raw);
    attachmentBytes += f.attachmentBytes;
    facts.push({ mailbox: m.mailbox, size: m.size, date: m.date, from: f.sender ?? '(unknown)', subject: (f.subject ?? '').slice(0, 80), bulk: f.bulk });
  }
  const bySender = new Map<string, { address: string; messages: number; bytes: number; bulk: boolean }>();
  for (const f of facts) {
    const entry = bySender.get(f.from) ?? { address: f.from, messages: 0, bytes: 0, bulk: false };
    entry.messages++;
    entry.bytes += f.size;
    entry.bulk ||= f.bulk;
    bySender.set(f.from, entry);
  }
  const retrieved = all.filter((m) => m.popRetrievedAt !== null);
  return {
    usage,
    policy,
    share: usageShare(usage, policy),
    mailboxes,
    largest: facts.slice(0, 10),
    senders: [...bySender.values()].sort((a, b) => b.bytes - a.bytes).slice(0, 5),
    bulkBytes: facts.filter((f) => f.bulk).reduce((sum, f) => sum + f.size, 0),
    attachmentBytes,
    popRetrieved: { messages: retrieved.length, bytes: retrieved.reduce((sum, m) => sum + m.size, 0) },
  };
}

function limitText(s: CapacitySummary, locale: Locale): string {
  const parts: string[] = [];
  if (s.policy.quota !== null) parts.push(`${formatSize(s.usage.bytes)} / ${formatSize(s.policy.quota)}`);
  if (s.policy.quota_messages !== null) parts.push(locale === 'ja' ? `${s.usage.messages} / ${s.policy.quota_messages} 通` : `${s.usage.messages} / ${s.policy.quota_messages} messages`);
  return parts.join(', ');
}

/** The warning's text (plain, CRLF lines). */
export function warningText(account: Account, s: CapacitySummary, level: number, locale: Locale): { subject: string; body: string } {
  const share = Math.round(s.share ?? 0);
  const p = s.policy;
  const ja = locale === 'ja';
  const lines: string[] = [];
  const subject = ja ? `メールボックスの使用量が ${share}% になりました（${account.address}）` : `Your mailbox is ${share}% full (${account.address})`;
  if (ja) {
    lines.push(`${account.address} のメールボックスの使用量が ${level}% を超えました。現在 ${share}%（${limitText(s, locale)}）です。`);
    lines.push(
      level >= 100
        ? '容量の上限に達しています。空きができるまで、新しいメールは届かず、送信者のサーバーが再送を繰り返します（数日後には送信者に返送されます）。'
        : '上限に達すると新しいメールが届かなくなります。早めに空きを作ってください。',
    );
  } else {
    lines.push(`The mailbox of ${account.address} has passed ${level}% of its capacity: it is now ${share}% full (${limitText(s, locale)}).`);
    lines.push(
      level >= 100
        ? 'It is full: until there is room again, new mail cannot be delivered; the senders\' servers keep retrying, and after a few days return the mail to its senders.'
        : 'When it is full, new mail can no longer be delivered. Please make room before that happens.',
    );
  }
  lines.push('');
  lines.push(ja ? '■ 容量を使っているフォルダー' : 'What takes the most room, by folder:');
  for (const m of s.mailboxes.filter((m) => m.bytes > 0).slice(0, 6)) lines.push(`  ${m.name}: ${formatSize(m.bytes)} (${m.messages}${ja ? ' 通' : ' messages'})`);
  if (s.largest.length > 0) {
    lines.push('');
    lines.push(ja ? '■ 大きいメール' : 'The largest messages:');
    for (const m of s.largest.slice(0, 5)) lines.push(`  ${formatSize(m.size)}  ${m.mailbox}  ${formatHumanDate(m.date, locale)}  ${m.from}  "${m.subject}"`);
  }
  if (s.senders.length > 0) {
    lines.push('');
    lines.push(ja ? '■ 容量を多く使っている送信者' : 'The senders whose mail takes the most room:');
    for (const x of s.senders) lines.push(`  ${x.address}: ${formatSize(x.bytes)} (${x.messages}${ja ? ' 通' : ' messages'})${x.bulk ? (ja ? ' 一斉配信' : ' bulk mail') : ''}`);
  }
  if (s.attachmentBytes > 0) lines.push(ja ? `  添付ファイル: ${formatSize(s.attachmentBytes)}` : `  Attachments: ${formatSize(s.attachmentBytes)}`);
  if (s.bulkBytes > 0) lines.push(ja ? `  うち一斉配信（メールマガジン等）: ${formatSize(s.bulkBytes)}` : `  Bulk mail (newsletters, mailing lists) among them: ${formatSize(s.bulkBytes)}`);
  if (s.popRetrieved.messages > 0) {
    lines.push(
      ja
        ? `  POP3 で受信済みなのにサーバーに残っているメール: ${s.popRetrieved.messages} 通、${formatSize(s.popRetrieved.bytes)}`
        : `  Mail already downloaded over POP3 but still kept on the server: ${s.popRetrieved.messages} messages, ${formatSize(s.popRetrieved.bytes)}`,
    );
  }
  lines.push('');
  lines.push(ja ? '■ 現在の保存期間の設定' : 'Retention in force:');
  const days = (n: number | null) => (n === null ? (ja ? '無期限' : 'kept forever') : ja ? `${n} 日で削除` : `removed after ${n} days`);
  lines.push(ja ? `  ごみ箱: ${days(p['retention.trash'])}、迷惑メール: ${days(p['retention.junk'])}` : `  Trash: ${days(p['retention.trash'])}; Junk: ${days(p['retention.junk'])}`);
  lines.push(
    ja
      ? `  POP3 で受信したメール: ${p['pop3.keep_after_retrieval'] === null ? 'サーバーに無期限で残ります' : `受信から ${p['pop3.keep_after_retrieval']} 日で削除`}`
      : `  Mail downloaded over POP3: ${p['pop3.keep_after_retrieval'] === null ? 'kept on the server forever' : `removed ${p['pop3.keep_after_retrieval']} days after download`}`,
  );
  if (p['retention.mailboxes']) lines.push(`  ${p['retention.mailboxes']}`);
  lines.push('');
  lines.push(ja ? '■ 空きを作るには' : 'How to make room:');
  if (ja) {
    lines.push('  1. ごみ箱と迷惑メールフォルダーを空にする。');
    lines.push('  2. 大きな添付ファイル付きのメールを削除するか、添付ファイルを保存してからメールを削除する。');
    lines.push('  3. 不要なメールマガジンや一斉配信のメールを削除し、配信を停止する。');
    if (s.popRetrieved.messages > 0) lines.push('  4. POP3 のメールソフト（Outlook など）で「サーバーから削除する」を有効にするか、管理者に保存日数（pop3.keep_after_retrieval）の短縮を依頼する。');
    lines.push('  それでも足りない場合は、管理者に容量の追加を依頼してください。');
  } else {
    lines.push('  1. Empty the Trash and Junk folders.');
    lines.push('  2. Delete messages with large attachments, or save the attachments elsewhere and delete the messages.');
    lines.push('  3. Delete newsletters and other bulk mail you no longer need, and unsubscribe from them.');
    if (s.popRetrieved.messages > 0) lines.push('  4. In a POP3 mail program (such as Outlook), turn on "remove from server after N days", or ask your administrator to shorten pop3.keep_after_retrieval.');
    lines.push('  If that is not enough, ask your administrator for more space.');
  }
  return { subject, body: lines.join('\r\n') + '\r\n' };
}

/** The digest of missed mail: one entry per sender and size, however many attempts. */
export function digestText(account: Account, events: QuotaEvent[], locale: Locale): { subject: string; body: string } {
  const ja = locale === 'ja';
  const groups = new Map<string, { sender: string; size: number; outcome: QuotaEvent['outcome']; first: Date; last: Date; attempts: number; subject: string | null }>();
  for (const e of events) {
    const key = `${e.sender.toLowerCase()}|${e.size}|${e.outcome}`;
    const g = groups.get(key);
    if (g) {
      g.attempts++;
      g.last = e.at;
      g.subject ??= e.subject;
    } else groups.set(key, { sender: e.sender, size: e.size, outcome: e.outcome, first: e.at, last: e.at, attempts: 1, subject: e.subject });
  }
  const list = [...groups.values()];
  const held = list.filter((g) => g.outcome === 'held').length;
  const missed = list.length - held;
  const subject = ja
    ? `メールボックスが一杯のため届かなかったメールがあります（${list.length} 件）`
    : `Mail affected by your full mailbox (${list.length} message${list.length === 1 ? '' : 's'})`;
  const lines: string[] = [];
  lines.push(
    ja
      ? `${account.address} のメールボックスが一杯だったため、次のメールの配信に影響がありました。`
      : `Because the mailbox of ${account.address} was full, the following mail was affected.`,
  );
  lines.push('');
  for (const g of list) {
    const size = g.size > 0 ? formatSize(g.size) : ja ? 'サイズ不明' : 'size unknown';
    const what =
      g.outcome === 'held'
        ? ja
          ? '容量を超えましたが、受信トレイに届けました（猶予分）'
          : 'delivered to your INBOX over the quota (grace)'
        : g.outcome === 'refused'
          ? ja
            ? '受け取りを拒否しました（送信者に返送されます）'
            : 'refused: it was returned to the sender'
          : ja
            ? `一時的に受け取りを保留しました（${g.attempts} 回）。送信者のサーバーが再送します`
            : `deferred (${g.attempts} attempt${g.attempts === 1 ? '' : 's'}): the sender's server retries`;
    lines.push(`- ${g.sender || (ja ? '(送信者なし)' : '(no sender)')}  ${size}  ${formatHumanDate(g.first, locale)}${g.subject ? `  "${g.subject}"` : ''}`);
    lines.push(`  ${what}`);
  }
  lines.push('');
  if (missed > 0) {
    lines.push(
      ja
        ? '空きを作ると、再送されたメールは届きます。返送されたメールは、送信者に再送を依頼してください。'
        : 'Once there is room, retried mail is delivered. For mail returned to its sender, ask the sender to send it again.',
    );
  }
  lines.push(ja ? '使用量と空きの作り方は、容量の警告メールをご覧ください。' : 'See the capacity warning for what fills the mailbox and how to make room.');
  return { subject, body: lines.join('\r\n') + '\r\n' };
}

function composeNotice(hostname: string, account: Account, text: { subject: string; body: string }, locale: Locale, now: Date): Buffer {
  const domain = account.address.slice(account.address.indexOf('@') + 1);
  const head = [
    `From: ${locale === 'ja' ? libmime.encodeWord('メールシステム', 'B') : '"Mail system"'} <postmaster@${domain}>`,
    `To: <${account.address}>`,
    `Subject: ${libmime.encodeWords(text.subject, 'B', 52)}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${crypto.randomUUID()}@${hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Language: ${locale}`,
    'Content-Transfer-Encoding: base64',
  ];
  const base64 = Buffer.from(text.body, 'utf8').toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(`${head.join('\r\n')}\r\n\r\n${base64}\r\n`, 'utf8');
}

export class CapacityNotices {
  /** Accounts being looked at now: one check at a time per account. */
  private readonly busy = new Set<number>();
  private readonly recheck = new Set<number>();
  /**
   * The warning level last read or written per account, so that the check after each delivery
   * needs no database read while the level stays the same (the database stays the reference:
   * a change of level is always read back from it first).
   */
  private readonly knownLevels = new Map<number, number>();

  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly log: Logger,
  ) {}

  /** Into the INBOX whatever the quota: the user must learn about their full mailbox. */
  private async deliverNotice(account: Account, text: { subject: string; body: string }, locale: Locale): Promise<void> {
    const bytes = composeNotice(this.config().hostname, account, text, locale, new Date());
    await this.store.deliver(
      {
        ...(await this.store.stageBlob(bytes)),
        internalDate: new Date(),
        recipients: [{ accountId: account.id, mailbox: '\\Inbox', headerPrefix: Buffer.from(`Return-Path: <>\r\nDelivered-To: ${account.address}\r\n`, 'utf8') }],
      },
      bytes,
    );
  }

  /** After mail was stored for these accounts: a warning where usage crossed a level. */
  async checkThresholds(account: Account, knownPolicy?: Policy): Promise<void> {
    // One check per account at a time; a delivery that lands during a check asks for one more
    // run afterwards, so a level crossed meanwhile (90% then 100%) is never skipped.
    if (this.busy.has(account.id)) {
      this.recheck.add(account.id);
      return;
    }
    this.busy.add(account.id);
    try {
      do {
        this.recheck.delete(account.id);
        await this.checkOnce(account, knownPolicy);
      } while (this.recheck.has(account.id));
    } finally {
      this.busy.delete(account.id);
      this.recheck.delete(account.id);
    }
  }

  private async checkOnce(account: Account, knownPolicy?: Policy): Promise<void> {
    const policy = knownPolicy ?? (await currentPolicy(this.store, this.config(), account));
    const thresholds = parseThresholds(policy.quota_warnings);
    const level = warningLevel(usageShare(await this.store.getUsage(account.id), policy), thresholds);
    if (this.knownLevels.get(account.id) === level) return;
    const previous = Number((await this.store.getAccountState(account.id, LEVEL_KEY)) ?? 0);
    this.knownLevels.set(account.id, previous);
    if (this.knownLevels.size > 100_000) this.knownLevels.clear();
    const next = nextWarning(previous, level);
    if (next.warn) {
      const summary = await summarizeCapacity(this.store, this.config(), account);
      await this.deliverNotice(account, warningText(account, summary, level, policy.locale as Locale), policy.locale as Locale);
      this.log.info({ event: 'quota-warning', account: account.address, level, share: Math.round(summary.share ?? 0) }, 'capacity warning sent');
      // The warning takes room too: a level it crosses itself is not warned about again.
      const after = warningLevel(usageShare(await this.store.getUsage(account.id), policy), thresholds);
      next.store = Math.max(level, after);
    }
    if (next.store !== null) {
      await this.store.setAccountState(account.id, LEVEL_KEY, next.store === 0 ? null : String(next.store));
      this.knownLevels.set(account.id, next.store);
    }
  }

  /** Records mail that a full mailbox deferred, refused or held; sends the digest when one is due. */
  async recordMissed(account: Account, event: { sender: string; size: number; outcome: QuotaEvent['outcome']; subject: string | null }): Promise<void> {
    await this.store.recordQuotaEvent({ accountId: account.id, at: new Date(), ...event });
    await this.sendDigest(account, event.outcome === 'held');
  }

  /** One digest of the unreported events, unless one went out within the hour (held mail: at once). */
  async sendDigest(account: Account, urgent = false, now = new Date()): Promise<boolean> {
    const last = Number((await this.store.getAccountState(account.id, DIGEST_AT_KEY)) ?? 0);
    if (!urgent && now.getTime() - last < DIGEST_INTERVAL_MS) return false;
    const events = await this.store.listUnreportedQuotaEvents(account.id);
    if (events.length === 0) return false;
    const policy = await currentPolicy(this.store, this.config(), account);
    await this.deliverNotice(account, digestText(account, events, policy.locale as Locale), policy.locale as Locale);
    await this.store.markQuotaEventsReported(events.map((e) => e.id));
    await this.store.setAccountState(account.id, DIGEST_AT_KEY, String(now.getTime()));
    this.log.info({ event: 'quota-digest', account: account.address, events: events.length }, 'missed-mail digest sent');
    return true;
  }

  /** The maintenance run: digests still owed, and warnings re-armed for accounts that made room. */
  async runAll(now: Date): Promise<{ digests: number }> {
    let digests = 0;
    const pending = new Set((await this.store.listUnreportedQuotaEvents()).map((e) => e.accountId));
    for (const accountId of pending) {
      const account = await this.store.getAccountById(accountId);
      if (account && (await this.sendDigest(account, false, now))) digests++;
    }
    for (const summary of await this.store.listAccounts()) {
      if ((await this.store.getAccountState(summary.id, LEVEL_KEY)) !== null) await this.checkThresholds(summary);
    }
    return { digests };
  }
}
