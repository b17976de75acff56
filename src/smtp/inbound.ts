// The receiving server (MX): ESMTP on the smtp-server library, for local domains only, no AUTH.
// This module owns the protocol side (limits, replies, trace headers, logging); what a recipient
// means and how a message is stored belong to delivery/. A 250 at end of data is sent only once
// the message file is fsynced and the store transaction has committed (LocalDelivery.deliver).

import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/types.js';
import type { TlsMaterial } from '../tls/certificates.js';
import { LocalDelivery } from '../delivery/local-delivery.js';
import { resolveEnvelopeRecipient, type LocalTarget } from '../delivery/recipients.js';
import { checkMimeStructure } from '../mime/structure.js';
import { ensureFinalCrlf, normalizeLineEndings } from '../mime/line-endings.js';
import { installEnhancedCodeShim } from './enhanced-codes.js';
import { reply, SmtpReply } from './replies.js';

export interface InboundServerOptions {
  config: () => Config;
  store: Store;
  tls: TlsMaterial;
  log: Logger;
}

interface Transaction {
  id: string;
  recipients: Array<{ address: string; targets: LocalTarget[] }>;
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

export function formatRfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
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

  constructor(private readonly options: InboundServerOptions) {
    installEnhancedCodeShim();
    const config = options.config();
    this.delivery = new LocalDelivery(options.store, options.config, options.log);
    this.server = new SMTPServer({
      name: config.hostname,
      banner: 'Yubin',
      key: options.tls.key,
      cert: options.tls.cert,
      size: config.smtp.max_message_size,
      rejectOversized: true,
      authMethods: [],
      authOptional: true,
      disabledCommands: ['AUTH'],
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

  private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
    this.transaction(session);
    void address;
    callback();
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
    const verdict = await resolveEnvelopeRecipient(this.options.store, address.address, config.hostname);
    if (verdict.kind === 'bad-syntax') refuse(reply.badAddressSyntax(address.address));
    if (verdict.kind === 'relay-denied') refuse(reply.relayDenied(address.address));
    if (verdict.kind === 'unknown-user') refuse(reply.unknownUser(address.address));
    if (verdict.kind !== 'local') return refuse(reply.internalError());

    // RFC 1870 §6: the SIZE the client declared lets us refuse before the data is sent.
    const args = session.envelope.mailFrom ? session.envelope.mailFrom.args : false;
    const sizeHint = args && typeof args.SIZE === 'string' ? Number(args.SIZE) : 0;
    const quota = await this.delivery.quotaCheck(verdict.targets, sizeHint);
    if (!quota.fits) {
      refuse(
        quota.tooBig
          ? reply.tooBigForMailbox(address.address)
          : quota.permanent
            ? reply.mailboxFullReject(address.address)
            : reply.mailboxFullDefer(address.address),
      );
    }

    // A repeated RCPT replaces the earlier one (smtp-server does the same with the envelope).
    tx.recipients = tx.recipients.filter((r) => r.address.toLowerCase() !== address.address.toLowerCase());
    tx.recipients.push({ address: address.address, targets: verdict.targets });
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
          this.options.log.info({ ...logBase, size: result.size, result: 'stored', code: 250, status: '2.6.0', deliveries: result.deliveries }, 'message stored');
          finish(null, `Message stored as ${tx.id} for ${result.deliveries.length} mailbox(es)`);
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
    const content = ensureFinalCrlf(normalizeLineEndings(raw));
    const structure = checkMimeStructure(content, {
      maxDepth: config.smtp.max_mime_depth,
      maxParts: config.smtp.max_mime_parts,
      maxHeaderBytes: config.smtp.max_header_size,
    });
    if (!structure.ok) throw structure.reason === 'header-size' ? reply.headerTooBig(structure.detail) : reply.mimeTooComplex(structure.detail);
    if (tx.recipients.length === 0) throw reply.internalError();

    const receivedAt = new Date();
    const verdict = await this.delivery.deliver({
      mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      recipients: tx.recipients,
      traceHeaders: this.receivedHeader(session, tx, receivedAt),
      content,
      receivedAt,
    });
    if (verdict.status === 'over-quota') {
      const address = verdict.full[0] ?? '';
      throw verdict.tooBig ? reply.tooBigForMailbox(address) : verdict.permanent ? reply.mailboxFullReject(address) : reply.mailboxFullDefer(address);
    }
    return verdict;
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
      `\tid ${tx.id}${single};\r\n\t${formatRfc5322Date(date)}\r\n`
    );
  }
}
