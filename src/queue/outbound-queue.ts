// The outbound queue: takes due recipients from the store, routes each destination domain
// (routing.ts), hands the message to the SMTP client, and records every recipient's outcome:
// delivered, failed, or retried later on the configured schedule (RFC 5321 §4.5.4.1) until the
// message's lifetime ends. It writes the delivery status notifications (RFC 3464) the sender asked
// for (RFC 3461 NOTIFY) or is owed: failures, a delay notice, successes; a report for a local
// sender goes straight into their INBOX, one for a remote sender is queued from the null sender.
//
// Claims are leased in the store, so a node that crashes mid-attempt leaves its recipients to be
// retried when the lease ends, and two nodes on one database never send the same recipient at once.

import net from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { parseRetrySchedule } from '../config/schema.js';
import type { Account, EnqueueRequest, QueueMessage, QueueRecipient, QueueRecipientUpdate, SmtpReplyRecord, Store } from '../store/types.js';
import { currentPolicy } from '../policy/settings.js';
import { resolveEnvelopeRecipient } from '../delivery/recipients.js';
import { buildDsn, type DsnAction, type DsnLocale, type DsnRecipient } from '../dsn/report.js';
import type { DnsResolver } from '../dns/resolver.js';
import { routeDomain, type Route } from './routing.js';
import { SmtpClient, type RecipientResult } from './smtp-client.js';
import { downgradeTo7bit, hasEightBit } from '../mime/seven-bit.js';
import { dkimSignatures, signAgain } from '../dkim/sign.js';

export interface OutboundQueueOptions {
  config: () => Config;
  store: Store;
  resolver: DnsResolver;
  log: Logger;
  /** For tests and benchmarks: a client other than the one built from the configuration. */
  client?: SmtpClient;
}

/** A message handed to the queue: the bytes as they will be sent (trace headers and DKIM included). */
export interface QueueSubmission {
  sender: string;
  recipients: EnqueueRequest['recipients'];
  content: Buffer;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  accountId: number | null;
  kind: 'mail' | 'dsn';
  smtpUtf8: boolean;
  receivedAt?: Date;
}

/** A local delivery the sender asked to hear about (NOTIFY=SUCCESS on the MX or submission). */
export interface LocalSuccess {
  sender: string;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  accountId: number | null;
  content: Buffer;
  receivedAt: Date;
  recipients: Array<{ address: string; orcpt: string | null }>;
}

const ROUTE_CACHE_MS = 60_000;
const CLAIM_BATCH = 100;

/** RFC 3461 §4.1: with no NOTIFY, failures (and delays) are reported, successes are not. */
function wants(notify: QueueRecipient['notify'], what: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  if (notify === null) return what !== 'SUCCESS';
  return (notify as string[]).includes(what);
}


/**
 * When a recipient that has just failed temporarily is tried again (RFC 5321 §4.5.4.1):
 * `attemptsMade` counts the attempts so far, the one just made included, and the wait after the
 * k-th attempt is schedule[k-1] (seconds), the last wait repeating. Never later than the message's
 * expiry, so the last attempt falls on the end of its lifetime.
 */
export function nextAttemptAt(schedule: readonly number[], attemptsMade: number, now: Date, expiresAt: Date): Date {
  const index = Math.min(Math.max(attemptsMade - 1, 0), schedule.length - 1);
  const wait = (schedule[index] ?? 0) * 1000;
  return new Date(Math.min(now.getTime() + wait, expiresAt.getTime()));
}

function failedReply(status: string, text: string): SmtpReplyRecord {
  return { code: status.startsWith('4') ? 451 : 550, enhanced: status, text, remoteMta: null };
}

/** "192.0.2.1, 2001:db8::1" → one address per family. */
function sourceAddressesOf(setting: string): { ipv4?: string; ipv6?: string } {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const part of setting.split(',').map((p) => p.trim()).filter(Boolean)) {
    if (net.isIPv6(part)) out.ipv6 ??= part;
    else if (net.isIPv4(part)) out.ipv4 ??= part;
  }
  return out;
}

export class OutboundQueue {
  private readonly client: SmtpClient;
  private readonly ownsClient: boolean;
  private readonly routes = new Map<string, { route: Route; at: number }>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Destination groups being attempted now. */
  private readonly inFlight = new Set<Promise<void>>();
  /**
   * Recipients being attempted now. `yubin queue retry` makes every queued recipient due, those
   * under a lease too; one claimed again while its attempt runs is left to that attempt.
   */
  private readonly busyRecipients = new Set<number>();

  constructor(private readonly options: OutboundQueueOptions) {
    const config = options.config();
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      new SmtpClient({
        heloName: config.hostname,
        connectTimeoutSeconds: config.queue.connect_timeout,
        commandTimeoutSeconds: config.queue.command_timeout,
        maxPerDestination: config.queue.max_per_destination,
        maxConnections: config.queue.max_connections,
        connectionReuse: config.queue.connection_reuse,
        maxMessagesPerConnection: config.queue.max_messages_per_connection,
        sourceAddresses: sourceAddressesOf(config.queue.source_address),
        log: options.log,
        downgrade: (content) => this.sevenBit(content),
      });
  }

  /**
   * The message made 7-bit for a server without 8BITMIME (RFC 6152 §3), or null when it can not
   * be. The conversion changes the body, so Yubin's own DKIM signatures on it are made again (the
   * original sender's, on forwarded mail, can not be and will no longer verify).
   */
  private async sevenBit(content: Buffer): Promise<Buffer | null> {
    const converted = downgradeTo7bit(content);
    if (!converted) return null;
    const domains = new Set(dkimSignatures(converted).map((s) => s.domain));
    const keys = (await Promise.all([...domains].map((d) => this.options.store.listDkimKeys(d)))).flat();
    return keys.length > 0 ? signAgain(converted, keys) : converted;
  }

  /**
   * Starts the polling loop; reports owed from before a crash are written first, and recipients
   * whose attempt a crash interrupted are due at once (this is the only node sending from the
   * embedded store).
   */
  async start(): Promise<void> {
    const released = await this.options.store.releaseQueueLeases(new Date());
    if (released > 0) this.options.log.info({ event: 'queue', released }, 'recipients whose attempt was interrupted are due again');
    await this.reportOwed();
    await this.options.store.removeFinishedQueueMessages();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.ownsClient) await this.client.close();
  }

  /** Looks for due recipients now (after new mail, or `yubin queue retry`). */
  kick(): void {
    this.schedule(0);
  }

  /** Durably queues a message; resolves with its queue id once committed. */
  async submit(submission: QueueSubmission): Promise<number> {
    const config = this.options.config();
    const receivedAt = submission.receivedAt ?? new Date();
    const bytes = submission.content;
    const id = await this.options.store.enqueue(
      {
        ...(await this.options.store.stageBlob(bytes)),
        sender: submission.sender,
        envid: submission.envid,
        ret: submission.ret,
        accountId: submission.accountId,
        kind: submission.kind,
        smtpUtf8: submission.smtpUtf8,
        receivedAt,
        expiresAt: new Date(receivedAt.getTime() + config.queue.lifetime * 1000),
        recipients: submission.recipients,
      },
      bytes,
    );
    this.options.log.info(
      { event: 'queued', queueId: id, from: submission.sender, to: submission.recipients.map((r) => r.address), size: bytes.length, kind: submission.kind },
      'message queued',
    );
    if (!this.stopped) this.kick();
    return id;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.ticking = this.tick()
        .catch((err: unknown) => this.options.log.error({ err: (err as Error)?.stack ?? String(err) }, 'queue run failed'))
        .finally(() => {
          this.ticking = null;
          const again = this.again;
          this.again = false;
          this.schedule(again ? 0 : this.options.config().queue.poll_interval * 1000);
        });
    }, ms);
    this.timer.unref();
  }

  /** One pass: claim what is due (as far as there is room for more attempts) and start it. */
  private async tick(): Promise<void> {
    const config = this.options.config();
    const capacity = Math.max(1, config.queue.max_connections * 2);
    while (!this.stopped && this.inFlight.size < capacity) {
      const now = new Date();
      // The lease outlasts the longest attempt: connect, then a reply to each command.
      const leaseMs = Math.max(120, config.queue.connect_timeout + 4 * config.queue.command_timeout + 60) * 1000;
      const claimed = await this.options.store.claimDueRecipients(now, new Date(now.getTime() + leaseMs), Math.min(CLAIM_BATCH, capacity - this.inFlight.size));
      if (claimed.length === 0) break;
      for (const message of claimed) {
        const byDomain = new Map<string, QueueRecipient[]>();
        for (const r of message.recipients) {
          if (this.busyRecipients.has(r.id)) continue;
          this.busyRecipients.add(r.id);
          const list = byDomain.get(r.domain);
          if (list) list.push(r);
          else byDomain.set(r.domain, [r]);
        }
        for (const [domain, recipients] of byDomain) {
          const attempt: Promise<void> = this.attempt(message, domain, recipients)
            .catch((err: unknown) => this.options.log.error({ queueId: message.id, domain, err: (err as Error)?.stack ?? String(err) }, 'delivery attempt failed'))
            .finally(() => {
              for (const r of recipients) this.busyRecipients.delete(r.id);
              this.inFlight.delete(attempt);
              this.again = true;
              if (!this.ticking) this.schedule(0);
            });
          this.inFlight.add(attempt);
        }
      }
    }
  }

  private async route(domain: string): Promise<Route> {
    const cached = this.routes.get(domain);
    if (cached && Date.now() - cached.at < ROUTE_CACHE_MS) return cached.route;
    const config = this.options.config();
    const route = await routeDomain(domain, this.options.resolver, {
      port: config.queue.remote_port,
      smarthost: config.queue.smarthost,
      transports: Object.fromEntries(Object.entries(config.queue.transports).map(([d, t]) => [d.toLowerCase(), t])),
      localHostnames: [config.hostname],
    });
    if (route.kind !== 'temporary') this.routes.set(domain, { route, at: Date.now() });
    if (this.routes.size > 10_000) this.routes.delete(this.routes.keys().next().value!);
    return route;
  }

  /** One delivery attempt of one message to the recipients of one domain. */
  private async attempt(message: QueueMessage, domain: string, recipients: QueueRecipient[]): Promise<void> {
    const route = await this.route(domain);
    let results: RecipientResult[];
    if (route.kind === 'permanent') {
      results = recipients.map((r) => ({ address: r.address, outcome: 'permanent' as const, reply: failedReply(route.status, route.text) }));
    } else if (route.kind === 'temporary') {
      results = recipients.map((r) => ({ address: r.address, outcome: 'temporary' as const, reply: failedReply(route.status, route.text) }));
    } else {
      const content = await this.options.store.readBlob(message.blobId);
      results = await this.client.send(route.destinations, {
        from: message.sender,
        recipients: recipients.map((r) => ({ address: r.address, notify: r.notify, orcpt: r.orcpt })),
        content,
        envid: message.envid,
        ret: message.ret,
        smtpUtf8: message.smtpUtf8,
        eightBit: hasEightBit(content),
      });
    }
    await this.record(message, recipients, results);
  }

  /** Turns results into recipient states, then writes whatever reports are owed. */
  private async record(message: QueueMessage, recipients: QueueRecipient[], results: RecipientResult[]): Promise<void> {
    const config = this.options.config();
    const schedule = parseRetrySchedule(config.queue.retry_schedule);
    const now = new Date();
    const silent = message.kind === 'dsn' || message.sender === '';
    const updates: QueueRecipientUpdate[] = [];
    const delayed: QueueRecipient[] = [];
    for (const recipient of recipients) {
      const result = results.find((r) => r.address.toLowerCase() === recipient.address.toLowerCase());
      const reply = result?.reply ?? failedReply('4.3.0', 'no result for this recipient');
      const outcome = result?.outcome ?? 'temporary';
      const base = { recipientId: recipient.id, attempted: true, attemptAt: now, lastReply: reply };
      this.options.log.info(
        { event: 'outbound', queueId: message.id, from: message.sender, to: recipient.address, result: outcome, code: reply.code, status: reply.enhanced, mta: reply.remoteMta, attempt: recipient.attempts + 1 },
        reply.text,
      );
      if (outcome === 'delivered') {
        // RFC 3461 §6.2.1: accepted by a peer that supports DSN, with NOTIFY passed on: any
        // success report is now the peer's to send.
        updates.push({ ...base, state: outcome, reported: true });
      } else if (outcome === 'relayed') {
        // §6.2.2: the peer cannot report; "relayed" is ours to send when SUCCESS was asked.
        updates.push({ ...base, state: outcome, reported: silent || !wants(recipient.notify, 'SUCCESS') });
      } else if (outcome === 'permanent') {
        updates.push({ ...base, state: 'failed', reported: silent || !wants(recipient.notify, 'FAILURE') });
      } else if (now.getTime() >= message.expiresAt.getTime()) {
        // RFC 5321 §4.5.4.1: the lifetime is over; the last temporary reply is the reason given.
        updates.push({ ...base, state: 'failed', reported: silent || !wants(recipient.notify, 'FAILURE') });
      } else {
        const next = nextAttemptAt(schedule, recipient.attempts + 1, now, message.expiresAt);
        const age = now.getTime() - message.receivedAt.getTime();
        const owesDelay =
          !silent && !recipient.delayNotified && config.queue.delay_notice > 0 && age >= config.queue.delay_notice * 1000 && wants(recipient.notify, 'DELAY');
        if (owesDelay) delayed.push({ ...recipient, attempts: recipient.attempts + 1, lastAttemptAt: now, lastReply: reply, nextAttemptAt: next });
        updates.push({ ...base, state: 'queued', nextAttemptAt: next, ...(owesDelay ? { delayNotified: true } : {}) });
      }
    }
    const updated = new Set(await this.options.store.updateQueueRecipients(updates));
    // A message an admin deleted during the attempt is gone: no delay notice about it.
    const stillQueued = delayed.filter((r) => updated.has(r.id));
    if (stillQueued.length > 0) await this.report(message, stillQueued, 'delayed');
    await this.reportFinal(message.id);
    await this.options.store.removeFinishedQueueMessages();
  }

  /** Reports owed for recipients that are final but not reported (after a crash too). */
  private async reportOwed(): Promise<void> {
    for (;;) {
      const messages = await this.options.store.listUnreportedQueueMessages(100);
      if (messages.length === 0) return;
      for (const message of messages) await this.reportFinal(message.id);
    }
  }

  private async reportFinal(messageId: number): Promise<void> {
    const message = await this.options.store.getQueueMessage(messageId);
    if (!message) return;
    const unreported = message.recipients.filter((r) => r.state !== 'queued' && !r.reported);
    if (unreported.length === 0) return;
    const silent = message.kind === 'dsn' || message.sender === '';
    const owed = silent
      ? []
      : unreported.filter((r) => (r.state === 'failed' ? wants(r.notify, 'FAILURE') : wants(r.notify, 'SUCCESS')));
    if (owed.length > 0) await this.report(message, owed, null);
    await this.options.store.updateQueueRecipients(
      unreported.map((r) => ({ recipientId: r.id, state: r.state, attempted: false, reported: true })),
    );
  }

  /** Writes one report about `recipients` of `message` and sends it to the envelope sender. */
  private async report(message: QueueMessage, recipients: QueueRecipient[], action: 'delayed' | null): Promise<void> {
    const config = this.options.config();
    let original: Buffer;
    try {
      original = await this.options.store.readBlob(message.blobId);
    } catch {
      original = Buffer.from('\r\n');
    }
    const dsnRecipients: DsnRecipient[] = recipients.map((r) => {
      const recipientAction: DsnAction = action ?? (r.state === 'failed' ? 'failed' : r.state === 'relayed' ? 'relayed' : 'delivered');
      const enhanced = r.lastReply?.enhanced ?? null;
      const status =
        recipientAction === 'delivered' || recipientAction === 'relayed'
          ? '2.0.0'
          : recipientAction === 'delayed'
            ? enhanced && enhanced.startsWith('4')
              ? enhanced
              : '4.0.0'
            : enhanced ?? (r.lastReply && r.lastReply.code >= 500 ? '5.0.0' : '4.4.7');
      return {
        address: r.address,
        orcpt: r.orcpt,
        action: recipientAction,
        status,
        reply: r.lastReply,
        lastAttemptAt: r.lastAttemptAt,
        willRetryUntil: recipientAction === 'delayed' ? message.expiresAt : null,
        attempts: r.attempts,
        // The limit the refusing server announced (smtp-client.ts), for the too-large explanation.
        messageSizeLimit: r.lastReply?.sizeLimit ?? null,
      };
    });
    const dsn = buildDsn({
      reportingMta: config.hostname,
      arrivalDate: message.receivedAt,
      envid: message.envid,
      originalSender: message.sender,
      locales: await this.localesOf(message.sender, message.accountId),
      recipients: dsnRecipients,
      original,
      returnContent: message.ret === 'FULL' ? 'full' : 'headers',
    });
    await this.sendReport(message.sender, dsn, recipients.map((r) => r.address), dsnRecipients[0]!.action);
  }

  /** A report for local deliveries whose sender asked for NOTIFY=SUCCESS (RFC 3461 §4.1). */
  async reportLocalSuccess(success: LocalSuccess): Promise<void> {
    if (success.sender === '' || success.recipients.length === 0) return;
    const config = this.options.config();
    const now = new Date();
    const dsn = buildDsn({
      reportingMta: config.hostname,
      arrivalDate: success.receivedAt,
      envid: success.envid,
      originalSender: success.sender,
      locales: await this.localesOf(success.sender, success.accountId),
      recipients: success.recipients.map((r) => ({
        address: r.address,
        orcpt: r.orcpt,
        action: 'delivered' as const,
        status: '2.0.0',
        reply: { code: 250, enhanced: '2.0.0', text: 'delivered to the mailbox', remoteMta: config.hostname },
        lastAttemptAt: now,
      })),
      original: success.content,
      returnContent: success.ret === 'FULL' ? 'full' : 'headers',
    });
    await this.sendReport(success.sender, dsn, success.recipients.map((r) => r.address), 'delivered');
  }

  /** The sender's language(s): their account's locale when they are local, else English and Japanese. */
  private async localesOf(sender: string, accountId: number | null): Promise<DsnLocale[]> {
    const store = this.options.store;
    let account: Account | null = accountId === null ? null : await store.getAccountById(accountId);
    if (!account && sender !== '') {
      const verdict = await resolveEnvelopeRecipient(store, sender, this.options.config().hostname).catch(() => null);
      if (verdict?.kind === 'local' && verdict.targets.length === 1) account = verdict.targets[0]!.account;
    }
    if (!account) return ['en', 'ja'];
    const policy = await currentPolicy(store, this.options.config(), account);
    const locale = policy.locale as DsnLocale;
    return [locale];
  }

  /** Into the sender's INBOX when they are local (whatever their quota: they must learn of it), else queued. */
  private async sendReport(sender: string, dsn: Buffer, about: string[], action: DsnAction): Promise<void> {
    const store = this.options.store;
    const config = this.options.config();
    const verdict = await resolveEnvelopeRecipient(store, sender, config.hostname);
    if (verdict.kind === 'local' && verdict.targets.length > 0) {
      await store.deliver(
        {
          ...(await store.stageBlob(dsn)),
          internalDate: new Date(),
          recipients: verdict.targets.map((target) => ({
            accountId: target.account.id,
            mailbox: '\\Inbox' as const,
            headerPrefix: Buffer.from(`Return-Path: <>\r\nDelivered-To: ${target.account.address}\r\n`, 'utf8'),
          })),
        },
        dsn,
      );
      this.options.log.info({ event: 'dsn', to: sender, about, action, delivery: 'local' }, 'delivery report stored');
    } else if (verdict.kind === 'relay-denied') {
      // Reports travel from the null sender (RFC 5321 §4.5.5) and are never reported on themselves.
      await this.submit({
        sender: '',
        recipients: [{ address: sender, orcpt: null, notify: ['NEVER'] }],
        content: dsn,
        envid: null,
        ret: null,
        accountId: null,
        kind: 'dsn',
        smtpUtf8: /[^\x00-\x7f]/.test(sender),
      });
      this.options.log.info({ event: 'dsn', to: sender, about, action, delivery: 'queued' }, 'delivery report queued');
    } else {
      this.options.log.warn({ event: 'dsn', to: sender, about, action, why: verdict.kind }, 'delivery report dropped: the sender address does not exist');
    }
  }
}
