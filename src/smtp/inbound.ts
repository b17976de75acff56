// The SMTP servers on the smtp-server library, in two modes:
// - 'mx' (port 25): mail for local domains only, no AUTH; sender authentication (SPF, DKIM, DMARC)
//   is recorded in Authentication-Results, and aliases that forward elsewhere queue the message.
// - 'submission' (587 with STARTTLS, 465 with implicit TLS; RFC 6409, RFC 8314): only after
//   AUTH, and only as the user's own addresses; local recipients are delivered at once, remote
//   ones queued, DKIM-signed for local domains.
// This module owns the protocol side (limits, replies, trace headers, logging); what a recipient
// means and how a message is stored belong to delivery/ and queue/. A 250 at end of data is sent
// only once the message is fsynced and the store transaction has committed (deliver / enqueue).

import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/types.js';
import type { TlsMaterial } from '../tls/certificates.js';
import { LocalDelivery } from '../delivery/local-delivery.js';
import { resolveEnvelopeRecipient, type LocalTarget } from '../delivery/recipients.js';
import { checkMimeStructure, splitHeaderSection } from '../mime/structure.js';
import { ensureFinalCrlf, normalizeLineEndings } from '../mime/line-endings.js';
import { installEnhancedCodeShim } from './enhanced-codes.js';
import { reply, SmtpReply } from './replies.js';
import { normalizeAddress } from '../delivery/recipients.js';
import { authenticate } from '../auth/authenticate.js';
import type { AuthThrottle } from '../auth/throttle.js';
import type { OutboundQueue } from '../queue/outbound-queue.js';
import type { DnsResolver } from '../dns/resolver.js';
import type { Account, DsnNotify } from '../store/types.js';
import { checkSenderAuth } from './sender-auth.js';
import { signMessage } from '../dkim/sign.js';
import { missingSubmissionHeaders, removeOwnAuthenticationResults } from './submission-headers.js';
import { fromAddresses, rfc5322Date } from '../mime/headers.js';

export interface InboundServerOptions {
  config: () => Config;
  store: Store;
  tls: TlsMaterial;
  log: Logger;
  /** 'mx' (default) or 'submission'. */
  mode?: 'mx' | 'submission';
  /** TLS from the first byte (port 465, RFC 8314 §3.3). */
  implicitTls?: boolean;
  /** Where remote recipients (submission) and forwarding aliases (MX) go; without it they are refused. */
  queue?: OutboundQueue;
  /** For SPF/DKIM/DMARC checks on the MX; without it no checks are made. */
  resolver?: DnsResolver;
  /** Submission: the shared authentication failure throttle. */
  throttle?: AuthThrottle;
}

interface TransactionRecipient {
  address: string;
  /** Local mailboxes. */
  targets: LocalTarget[];
  /** Addresses elsewhere: the recipient itself (submission) or an alias's forwarding targets. */
  remote: string[];
  /** RFC 3461 NOTIFY and ORCPT as given (ORCPT xtext-decoded by smtp-server). */
  notify: DsnNotify | null;
  orcpt: string | null;
}

interface Transaction {
  id: string;
  recipients: TransactionRecipient[];
}

interface ConnectionStats {
  startedAt: number;
  messages: number;
  refused: number;
  counted: boolean;
}

/** The parts of smtp-server's connection object this module uses (shutdown and timeouts). */
interface LibraryConnection {
  id: string;
  send(code: number, data: string): void;
  close(): void;
}

/** Keeps client-supplied text out of header syntax: printable ASCII only, bounded. */
function headerSafe(text: string | false | undefined, max = 255): string {
  return String(text || 'unknown').replace(/[^\x21-\x7e]/g, '?').slice(0, max);
}

export class InboundSmtpServer {
  private readonly server: SMTPServer;
  private readonly delivery: LocalDelivery;
  private readonly transactions = new WeakMap<object, Transaction>();
  private readonly perIp = new Map<string, number>();
  private readonly stats = new Map<string, ConnectionStats>();
  /** Connections in DATA: shutdown waits for each to be stored and answered (or to go away). */
  private readonly busy = new Map<string, { done: Promise<void>; abandon: () => boolean }>();
  private shuttingDown = false;

  private readonly mode: 'mx' | 'submission';

  constructor(private readonly options: InboundServerOptions) {
    installEnhancedCodeShim();
    const config = options.config();
    this.mode = options.mode ?? 'mx';
    const submission = this.mode === 'submission';
    this.delivery = new LocalDelivery(options.store, options.config, options.log);
    this.server = new SMTPServer({
      name: config.hostname,
      banner: submission ? 'Yubin submission' : 'Yubin',
      key: options.tls.key,
      cert: options.tls.cert,
      secure: options.implicitTls === true,
      size: config.smtp.max_message_size,
      rejectOversized: true,
      // RFC 4954 over TLS only (RFC 8314): AUTH before STARTTLS gets 538 5.7.0, unless the
      // administrator allows plaintext passwords everywhere (auth.plaintext = "always").
      authMethods: submission ? ['PLAIN', 'LOGIN'] : [],
      allowInsecureAuth: submission && config.auth.plaintext === 'always',
      // Submission demands AUTH itself (onMailFrom) to answer 530 5.7.0 in its own words.
      authOptional: true,
      disabledCommands: submission ? [] : ['AUTH'],
      onAuth: (auth, session, callback) => this.onAuth(auth.method, auth.username ?? '', auth.password ?? '', session, callback),
      hideREQUIRETLS: true,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      maxClients: config.smtp.max_connections,
      maxRecipients: config.smtp.max_recipients,
      maxCommandLength: config.smtp.max_line_length,
      socketTimeout: config.smtp.idle_timeout * 1000,
      closeTimeout: 30_000,
      disableReverseLookup: !config.smtp.reverse_dns,
      logger: false,
      onConnect: (session, callback) => this.onConnect(session, callback),
      onMailFrom: (address, session, callback) => this.onMailFrom(address, session, callback),
      onRcptTo: (address, session, callback) => {
        this.onRcptTo(address, session).then(() => callback(), (err: unknown) => callback(this.asReply(err, session)));
      },
      onData: (stream, session, callback) => this.onData(stream, session, callback),
      onClose: (session) => this.onClose(session),
    });
    this.server.on('error', (err) => this.options.log.warn({ err: err.message }, 'smtp connection error'));
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.server.off('error', reject);
        resolve(this.server.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets every message in DATA finish and get its reply, then closes. */
  async close(): Promise<void> {
    this.shuttingDown = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections()) {
      if (!this.busy.has(connection.id)) this.hangUp(connection);
    }
    // Messages still arriving get until the grace period ends; then their senders are told to
    // retry (421) and nothing of them is stored. Messages already being stored are always awaited.
    const deadline = Date.now() + this.options.config().smtp.shutdown_grace * 1000;
    while (this.busy.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.busy.values()].map((b) => b.done)),
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(1, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
    }
    for (const [id, entry] of this.busy) {
      if (entry.abandon()) {
        const connection = this.connections().find((c) => c.id === id);
        if (connection) this.hangUp(connection);
      }
    }
    while (this.busy.size > 0) await Promise.allSettled([...this.busy.values()].map((b) => b.done));
    for (const connection of this.connections()) this.hangUp(connection);
    await closed;
    await this.delivery.idle();
  }

  private connections(): LibraryConnection[] {
    return [...(this.server as unknown as { connections: Set<LibraryConnection> }).connections];
  }

  private hangUp(connection: LibraryConnection): void {
    const r = reply.shuttingDown();
    connection.send(r.code, `${r.enhanced} ${r.text}`);
    connection.close();
  }

  private asReply(err: unknown, session: SMTPServerSession): SmtpReply {
    if (err instanceof SmtpReply) return err;
    this.options.log.error({ session: session.id, err: (err as Error)?.stack ?? String(err) }, 'unexpected error');
    return reply.internalError();
  }

  private onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    if (this.shuttingDown) return callback(reply.shuttingDown());
    const stats: ConnectionStats = { startedAt: Date.now(), messages: 0, refused: 0, counted: false };
    this.stats.set(session.id, stats);
    const count = this.perIp.get(session.remoteAddress) ?? 0;
    if (count >= this.options.config().smtp.max_connections_per_ip) {
      this.options.log.warn({ session: session.id, ip: session.remoteAddress }, 'connection refused: too many from this address');
      return callback(reply.tooManyConnections());
    }
    this.perIp.set(session.remoteAddress, count + 1);
    stats.counted = true;
    callback();
  }

  private onClose(session: SMTPServerSession): void {
    this.busy.get(session.id)?.abandon();
    const stats = this.stats.get(session.id);
    this.stats.delete(session.id);
    if (stats?.counted) {
      const count = (this.perIp.get(session.remoteAddress) ?? 1) - 1;
      if (count <= 0) this.perIp.delete(session.remoteAddress);
      else this.perIp.set(session.remoteAddress, count);
    }
    this.options.log.info(
      {
        event: 'connection',
        session: session.id,
        ip: session.remoteAddress,
        helo: session.hostNameAppearsAs || null,
        tls: session.tlsOptions ? `${session.tlsOptions.version} ${session.tlsOptions.name}` : null,
        messages: stats?.messages ?? 0,
        refused: stats?.refused ?? 0,
        ms: stats ? Date.now() - stats.startedAt : null,
      },
      'connection closed',
    );
  }

  private transaction(session: SMTPServerSession): Transaction {
    let tx = this.transactions.get(session.envelope);
    if (!tx) {
      tx = { id: crypto.randomBytes(6).toString('hex').toUpperCase(), recipients: [] };
      this.transactions.set(session.envelope, tx);
    }
    return tx;
  }

  private onAuth(
    method: string,
    username: string,
    password: string,
    session: SMTPServerSession,
    callback: (err: Error | null | undefined, response?: { user: Account }) => void,
  ): void {
    if (this.mode !== 'submission' || !this.options.throttle || (method !== 'PLAIN' && method !== 'LOGIN')) {
      return callback(new SmtpReply(504, '5.5.4', 'Unrecognized authentication type'));
    }
    authenticate(this.options.store, this.options.throttle, session.remoteAddress, username, password).then(
      (user) => {
        this.options.log.info({ event: 'auth', session: session.id, ip: session.remoteAddress, user: username.slice(0, 320), result: user ? 'ok' : 'failed' }, 'smtp authentication');
        if (user) callback(null, { user: user.account });
        else callback(new SmtpReply(535, '5.7.8', 'Authentication credentials invalid'));
      },
      (err: unknown) => callback(this.asReply(err, session)),
    );
  }

  /** The submission account of the session (set by onAuth), or null. */
  private accountOf(session: SMTPServerSession): Account | null {
    return (session.user as Account | undefined) ?? null;
  }

  /** Whether `address` is the account's own address or an alias that reaches it. */
  private async belongsTo(account: Account, address: string): Promise<boolean> {
    const config = this.options.config();
    if (address.toLowerCase() === account.address.toLowerCase()) return true;
    const verdict = await resolveEnvelopeRecipient(this.options.store, address, config.hostname);
    return verdict.kind === 'local' && verdict.targets.some((t) => t.account.id === account.id);
  }

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    this.transaction(session);
    if (this.mode !== 'submission') return callback();
    const account = this.accountOf(session);
    // RFC 6409 §4.3 / RFC 4954 §6: nothing is relayed without authentication.
    if (!account) return callback(new SmtpReply(530, '5.7.0', 'Authentication required: log in (AUTH) before sending'));
    this.belongsTo(account, address.address).then(
      (own) =>
        callback(own ? null : new SmtpReply(553, '5.7.1', `Sender address <${address.address}> is not yours; send as ${account.address} or one of its aliases`)),
      (err: unknown) => callback(this.asReply(err, session)),
    );
  }

  /** Submission: a recipient outside the local domains is queued if it is a plain address. */
  private async remoteRecipient(raw: string): Promise<'remote' | 'local' | SmtpReply> {
    const parts = normalizeAddress(raw);
    if (!parts || parts.local === '' || !/^[^\s.@]+(\.[^\s.@]+)+$/.test(parts.domain)) return reply.badAddressSyntax(raw);
    if (await this.options.store.getDomain(parts.domain)) return 'local';
    if (parts.routing) return reply.relayDenied(raw);
    return this.options.queue ? 'remote' : reply.relayDenied(raw);
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const config = this.options.config();
    const tx = this.transaction(session);
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const refuse = (r: SmtpReply): never => {
      const stats = this.stats.get(session.id);
      if (stats) stats.refused++;
      this.options.log.info(
        { event: 'delivery', id: tx.id, session: session.id, from, to: address.address, result: 'refused', code: r.code, status: r.enhanced },
        r.text,
      );
      throw r;
    };
    const dsn = (address as SMTPServerAddress & { dsn?: { notify?: string[]; orcpt?: string } }).dsn;
    const notify = dsn?.notify && dsn.notify.length > 0 ? (dsn.notify.map((n) => n.toUpperCase()) as DsnNotify) : null;
    const orcpt = dsn?.orcpt ?? null;
    const remember = (entry: Omit<TransactionRecipient, 'notify' | 'orcpt'>) => {
      // A repeated RCPT replaces the earlier one (smtp-server does the same with the envelope).
      tx.recipients = tx.recipients.filter((r) => r.address.toLowerCase() !== address.address.toLowerCase());
      tx.recipients.push({ ...entry, notify, orcpt });
    };
    if (this.mode === 'submission') {
      if (!this.accountOf(session)) refuse(new SmtpReply(530, '5.7.0', 'Authentication required: log in (AUTH) before sending'));
      const kind = await this.remoteRecipient(address.address);
      if (kind instanceof SmtpReply) refuse(kind);
      if (kind === 'remote') return remember({ address: address.address, targets: [], remote: [address.address] });
    }
    const verdict = await resolveEnvelopeRecipient(this.options.store, address.address, config.hostname);
    if (verdict.kind === 'bad-syntax') refuse(reply.badAddressSyntax(address.address));
    if (verdict.kind === 'relay-denied') refuse(reply.relayDenied(address.address));
    if (verdict.kind === 'unknown-user') refuse(reply.unknownUser(address.address));
    if (verdict.kind !== 'local') return refuse(reply.internalError());
    if (verdict.remote.length > 0 && !this.options.queue) {
      if (verdict.targets.length === 0) refuse(reply.relayDenied(address.address));
      verdict.remote = [];
    }

    // RFC 1870 §6: the SIZE the client declared lets us refuse before the data is sent.
    const args = session.envelope.mailFrom ? session.envelope.mailFrom.args : false;
    const sizeHint = args && typeof args.SIZE === 'string' ? Number(args.SIZE) : 0;
    const quota = await this.delivery.quotaCheck(verdict.targets, sizeHint, from);
    if (!quota.fits) {
      refuse(
        quota.tooBig
          ? reply.tooBigForMailbox(address.address)
          : quota.permanent
            ? reply.mailboxFullReject(address.address)
            : reply.mailboxFullDefer(address.address),
      );
    }

    remember({ address: address.address, targets: verdict.targets, remote: verdict.remote });
  }

  private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const config = this.options.config();
    const tx = this.transaction(session);
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const limit = config.smtp.max_message_size;
    const chunks: Buffer[] = [];
    let received = 0;
    // receiving → storing → done. Shutdown waits for a busy entry until it is done; a connection
    // that goes away while still receiving stores nothing and is done at once.
    let phase: 'receiving' | 'storing' | 'done' = 'receiving';
    let settle: () => void = () => undefined;
    const busy = new Promise<void>((resolve) => (settle = resolve));
    const end = () => {
      phase = 'done';
      clearTimeout(timer);
      this.busy.delete(session.id);
      settle();
    };
    this.busy.set(session.id, {
      done: busy,
      abandon: () => {
        if (phase !== 'receiving') return false;
        end();
        return true;
      },
    });
    const timer = setTimeout(() => {
      if (phase !== 'receiving') return;
      end();
      const r = reply.dataTimeout();
      this.options.log.warn({ event: 'delivery', id: tx.id, session: session.id, from, result: 'timeout', code: r.code, status: r.enhanced }, r.text);
      const connection = this.connections().find((c) => c.id === session.id);
      if (connection) {
        connection.send(r.code, `${r.enhanced} ${r.text}`);
        connection.close();
      }
    }, config.smtp.data_timeout * 1000);
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Past the limit nothing more is kept: memory stays bounded whatever the client sends.
      if (received <= limit) chunks.push(chunk);
    });
    const finish = (err: SmtpReply | null, message?: string) => {
      if (phase === 'done') return;
      end();
      callback(err, message);
      if (this.shuttingDown) {
        setImmediate(() => {
          const connection = this.connections().find((c) => c.id === session.id);
          if (connection) this.hangUp(connection);
        });
      }
    };
    stream.once('end', () => {
      if (phase !== 'receiving') return;
      phase = 'storing';
      const logBase = { event: 'delivery', id: tx.id, session: session.id, from, to: tx.recipients.map((r) => r.address) };
      if (stream.sizeExceeded || received > limit) {
        const r = reply.messageTooBig(limit);
        this.options.log.info({ ...logBase, size: received, result: 'refused', code: r.code, status: r.enhanced }, r.text);
        return finish(r);
      }
      this.storeMessage(Buffer.concat(chunks, received), session, tx).then(
        (result) => {
          const stats = this.stats.get(session.id);
          if (stats) stats.messages++;
          this.options.log.info({ ...logBase, size: result.size, result: 'stored', code: 250, status: '2.6.0', deliveries: result.deliveries, queueId: result.queueId, mode: this.mode }, 'message stored');
          const parts = [`${result.deliveries.length} mailbox(es)`];
          if (result.queued > 0) parts.push(`${result.queued} remote recipient(s) queued as ${result.queueId}`);
          // Held over the quota (over_quota = "hold"): the sender learns the mailbox is full too.
          if (result.held.length > 0) parts.push(`the mailbox of ${result.held.map((a) => `<${a}>`).join(', ')} is full; the message is held there and the recipient has been told`);
          finish(null, `Message accepted as ${tx.id}: ${parts.join(', ')}`);
        },
        (err: unknown) => {
          const r = this.asReply(err, session);
          this.options.log.info({ ...logBase, size: received, result: r.code >= 500 ? 'refused' : 'deferred', code: r.code, status: r.enhanced }, r.text);
          finish(r);
        },
      );
    });
  }

  private async storeMessage(raw: Buffer, session: SMTPServerSession, tx: Transaction) {
    const config = this.options.config();
    let content = ensureFinalCrlf(normalizeLineEndings(raw));
    const structure = checkMimeStructure(content, {
      maxDepth: config.smtp.max_mime_depth,
      maxParts: config.smtp.max_mime_parts,
      maxHeaderBytes: config.smtp.max_header_size,
    });
    if (!structure.ok) throw structure.reason === 'header-size' ? reply.headerTooBig(structure.detail) : reply.mimeTooComplex(structure.detail);
    // RFC 5321 §6.3: a message that has passed too many relays is in a loop (aliases forwarding
    // to each other across servers); refused for good before anything is stored or queued.
    const hops = splitHeaderSection(content).fields.filter((f) => f.name.toLowerCase() === 'received').length;
    if (hops > config.smtp.max_hops) throw reply.tooManyHops(hops, config.smtp.max_hops);
    if (tx.recipients.length === 0) throw reply.internalError();

    const receivedAt = new Date();
    const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const mailArgs = session.envelope.mailFrom ? session.envelope.mailFrom.args : false;
    const envelopeDsn = session.envelope.dsn;
    const ret = envelopeDsn?.ret === 'FULL' || envelopeDsn?.ret === 'HDRS' ? envelopeDsn.ret : null;
    const envid = envelopeDsn?.envid ?? null;
    const account = this.accountOf(session);
    let trace = this.receivedHeader(session, tx, receivedAt);

    if (this.mode === 'submission') {
      if (!account) throw new SmtpReply(530, '5.7.0', 'Authentication required: log in (AUTH) before sending');
      const from = fromAddresses(content);
      // RFC 5322 §3.6: From: is required; RFC 6409 §8.1: the server may check it is the user's.
      if (from.length === 0) throw new SmtpReply(550, '5.6.0', 'The message has no From: header; add your address as From');
      for (const address of from) {
        if (!(await this.belongsTo(account, address))) {
          throw new SmtpReply(553, '5.7.1', `From: <${address}> is not your address; send as ${account.address} or one of its aliases`);
        }
      }
      content = Buffer.concat([Buffer.from(trace + missingSubmissionHeaders(content, config.hostname, receivedAt), 'utf8'), content]);
      trace = '';
      if (config.dkim.sign) {
        const domain = from[0]!.slice(from[0]!.lastIndexOf('@') + 1);
        const keys = await this.options.store.listDkimKeys(domain);
        try {
          content = await signMessage(content, keys);
        } catch (err) {
          this.options.log.error({ session: session.id, domain, err: (err as Error).message }, 'DKIM signing failed; nothing was sent');
          throw reply.internalError();
        }
      }
    } else if (this.options.resolver && config.smtp.check_sender_auth) {
      content = removeOwnAuthenticationResults(content, config.hostname);
      const auth = await checkSenderAuth(
        content,
        { ip: session.remoteAddress, helo: session.hostNameAppearsAs || '', mailFrom },
        { hostname: config.hostname, resolver: this.options.resolver.mailauthResolver() },
      );
      this.options.log.info({ session: session.id, id: tx.id, from: mailFrom, ...auth.summary }, 'sender authentication');
      // RFC 7489 §6.7: the From domain asks that mail failing DMARC be refused.
      if (auth.dmarcReject && config.smtp.dmarc_reject) {
        throw new SmtpReply(550, '5.7.1', `Message refused: it fails DMARC and the policy of its From: domain asks for rejection (spf=${auth.summary.spf}, dkim=${auth.summary.dkim})`);
      }
      trace += auth.header;
    }

    const local = tx.recipients.filter((r) => r.targets.length > 0);
    let size = Buffer.byteLength(trace) + content.length;
    let deliveries: Array<{ address: string; account: string; uid: number }> = [];
    let held: string[] = [];
    if (local.length > 0) {
      const verdict = await this.delivery.deliver({ mailFrom, recipients: local, traceHeaders: trace, content, receivedAt });
      if (verdict.status === 'over-quota') {
        const address = verdict.full[0] ?? '';
        throw verdict.tooBig ? reply.tooBigForMailbox(address) : verdict.permanent ? reply.mailboxFullReject(address) : reply.mailboxFullDefer(address);
      }
      size = verdict.size;
      deliveries = verdict.deliveries;
      held = verdict.held;
    }

    // Remote recipients and forwarding targets are queued with the same bytes. If the process died
    // between the local delivery above and this commit, the client's retry would deliver the local
    // copies twice; it never loses them.
    const remote = new Map<string, { address: string; notify: DsnNotify | null; orcpt: string | null }>();
    for (const r of tx.recipients) {
      for (const target of r.remote) {
        const key = target.toLowerCase();
        // RFC 3461 §4.2: a forwarded recipient keeps the address it was originally sent to.
        const orcpt = r.orcpt ?? (target === r.address ? null : `rfc822;${r.address}`);
        if (!remote.has(key)) remote.set(key, { address: target, notify: r.notify, orcpt });
      }
    }
    let queueId: number | null = null;
    if (remote.size > 0 && this.options.queue) {
      const bytes = trace === '' ? content : Buffer.concat([Buffer.from(trace, 'utf8'), content]);
      const smtpUtf8 =
        (mailArgs && 'SMTPUTF8' in mailArgs) || /[^\x00-\x7f]/.test(mailFrom) || [...remote.values()].some((r) => /[^\x00-\x7f]/.test(r.address));
      queueId = await this.options.queue.submit({
        sender: mailFrom,
        recipients: [...remote.values()],
        content: bytes,
        envid,
        ret,
        accountId: account?.id ?? null,
        kind: 'mail',
        smtpUtf8: Boolean(smtpUtf8),
        receivedAt,
      });
    }

    // RFC 3461 §4.1: NOTIFY=SUCCESS for a recipient delivered here is answered by a report now.
    const succeeded = local.filter((r) => r.notify !== null && (r.notify as string[]).includes('SUCCESS'));
    if (succeeded.length > 0 && this.options.queue && mailFrom !== '') {
      await this.options.queue
        .reportLocalSuccess({
          sender: mailFrom,
          envid,
          ret,
          accountId: account?.id ?? null,
          content: Buffer.concat([Buffer.from(trace, 'utf8'), content]),
          receivedAt,
          recipients: succeeded.map((r) => ({ address: r.address, orcpt: r.orcpt })),
        })
        .catch((err: unknown) => this.options.log.error({ session: session.id, err: (err as Error)?.stack ?? String(err) }, 'success report failed'));
    }
    return { size, deliveries, queueId, queued: remote.size, held };
  }

  /** RFC 5321 §4.4 trace information, with the TLS version and cipher when there was TLS. */
  private receivedHeader(session: SMTPServerSession, tx: Transaction, date: Date): string {
    const config = this.options.config();
    const helo = headerSafe(session.hostNameAppearsAs);
    // RFC 5321 §4.4 TCP-info: address-literal, or a domain then the address-literal.
    const literal = `[${headerSafe(session.remoteAddress, 64).replace(/^::ffff:/, '')}]`;
    const name = session.clientHostname && !session.clientHostname.startsWith('[') ? `${headerSafe(session.clientHostname)} ` : '';
    const tls = session.tlsOptions ? ` (${headerSafe(session.tlsOptions.version, 32)} with cipher ${headerSafe(session.tlsOptions.name, 64)})` : '';
    const protocol = headerSafe(session.transmissionType || 'ESMTP', 16);
    const single = tx.recipients.length === 1 ? `\r\n\tfor <${headerSafe(tx.recipients[0]!.address, 320)}>` : '';
    return (
      `Received: from ${helo} (${name}${literal})\r\n` +
      `\tby ${headerSafe(config.hostname)} (Yubin) with ${protocol}${tls}\r\n` +
      `\tid ${tx.id}${single};\r\n\t${rfc5322Date(date)}\r\n`
    );
  }
}
