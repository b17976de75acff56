// The outbound SMTP client of the delivery queue: one transaction per message and destination
// domain, on nodemailer's SMTPConnection, with a connection pool per destination address.
//
// RFC 5321 (SMTP), RFC 3207 (STARTTLS, used opportunistically as RFC 7435 describes), RFC 1870
// (SIZE), RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 2920 (PIPELINING, done by nodemailer),
// RFC 3461 (DSN parameters).
//
// nodemailer details this module relies on (checked against nodemailer 10.6):
// - `nodemailer/lib/smtp-connection` is the import path (the package's exports map; no index.js).
// - connect() reports failures as an 'error' event (greeting 5xx/421, timeouts, refused) and only
//   a silent close before the greeting through its callback; an 'error' listener is mandatory.
// - The DSN support of SMTPConnection takes one NOTIFY/ORCPT for the whole envelope; the queue
//   has them per recipient, so this module adds RET/ENVID/NOTIFY/ORCPT itself (xtext-encoding
//   the decoded values smtp-server stored, RFC 3461 §4) by rewriting MAIL FROM and
//   RCPT TO lines in the connection's private _sendCommand. The same hook adds SMTPUTF8 when
//   the headers need it (nodemailer only adds it for non-ASCII envelope addresses).
// - The announced extensions and SIZE limit are read from the private _supportedExtensions and
//   _maxAllowedSize (what nodemailer itself decides the MAIL FROM parameters from).
// - reset() and send() lose their callbacks when the connection closes under them in some
//   paths, so every wait also listens for the connection's 'end'.

import net from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type { SmtpReplyRecord, DsnNotify } from '../store/types.js';
import type { Destination } from './routing.js';

export type { Destination } from './routing.js';

export interface OutboundRecipient {
  address: string;
  notify: DsnNotify | null;
  /** RFC 3461 ORCPT "addr-type;address" with the address xtext-decoded (as smtp-server hands it over), or null; encoded here. */
  orcpt: string | null;
}

export interface OutboundMessage {
  /** '' = null sender. */
  from: string;
  /** All for the same domain. */
  recipients: OutboundRecipient[];
  /** The full message, CRLF line ends. */
  content: Buffer;
  /** RFC 3461 ENVID, xtext-decoded (as smtp-server hands it over), or null; encoded here. */
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  /** The envelope or the headers need SMTPUTF8 (RFC 6531). */
  smtpUtf8: boolean;
  /** The body has 8-bit bytes (RFC 6152). */
  eightBit: boolean;
}

export interface RecipientResult {
  address: string;
  /** 'relayed': accepted by a peer without DSN while NOTIFY=SUCCESS was asked (RFC 3461 §4.1). */
  outcome: 'delivered' | 'relayed' | 'temporary' | 'permanent';
  reply: SmtpReplyRecord;
}

export interface SmtpClientLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface SmtpClientOptions {
  heloName: string;
  connectTimeoutSeconds: number;
  commandTimeoutSeconds: number;
  /** Simultaneous connections per destination host:port. */
  maxPerDestination: number;
  /** Simultaneous connections in total. */
  maxConnections: number;
  connectionReuse: boolean;
  maxMessagesPerConnection: number;
  /** Close pooled idle connections after this many seconds (default 5). */
  idleCloseSeconds?: number;
  /** Local IPv4 / IPv6 address to connect from (per family); unset: the system chooses. */
  sourceAddresses?: { ipv4?: string; ipv6?: string };
  log?: SmtpClientLog;
  /**
   * For a server without 8BITMIME (RFC 6152 §3): the message made 7-bit (mime/seven-bit.ts, signed
   * again where it was signed here), or null when it can not be. Without it such mail fails 5.6.3.
   */
  downgrade?: (content: Buffer) => Promise<Buffer | null>;
}

/** The fields nodemailer puts on its errors (NodemailerError), as far as this module reads them. */
interface SmtpError extends Error {
  code?: string;
  originalCode?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
  rejectedErrors?: SmtpError[];
  timeoutType?: string;
}

/** Private parts of SMTPConnection this module uses (see the header comment). */
interface ConnectionInternals {
  _sendCommand(str: string, logStr?: string): void;
  _supportedExtensions?: unknown;
  _maxAllowedSize?: unknown;
  _envelope?: { rejectedErrors?: SmtpError[] } | false;
  _socket: net.Socket | false | null;
  _destroyed?: boolean;
  destroyed: boolean;
  lastServerResponse: string | false;
  secure: boolean;
  upgrading?: boolean;
}

interface Capabilities {
  /** Announced SIZE limit; 0 = SIZE without a limit; null = no SIZE. */
  size: number | null;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  pipelining: boolean;
}

/** What the MAIL FROM / RCPT TO rewriting adds for the transaction in progress. */
interface TxParams {
  mail: string[];
  rcpt: string[];
  nextRcpt: number;
}

interface PooledConnection {
  conn: SMTPConnection;
  key: string;
  destKey: string;
  host: string;
  address: string;
  port: number;
  caps: Capabilities;
  secure: boolean;
  messages: number;
  idleTimer: NodeJS.Timeout | null;
  retired: boolean;
  tx: TxParams | null;
}

/** Why an address did not take the transaction; the next address / destination is tried. */
interface Failure {
  host: string;
  address: string;
  port: number;
  /** The reply that ended the attempt (greeting, EHLO, MAIL FROM, 421...), parsed, or null. */
  reply: SmtpReplyRecord | null;
  /** Readable description for a synthesized reply. */
  text: string;
  /** Failed before the session was set up (connect, greeting, EHLO, STARTTLS). */
  atConnect: boolean;
}

type Attempt = { kind: 'done'; results: RecipientResult[] } | { kind: 'next'; failure: Failure };

type Lease = { kind: 'idle'; pc: PooledConnection } | { kind: 'slot' };

interface Waiter {
  key: string;
  destKey: string;
  resolve(lease: Lease): void;
}

class ConnectFailure extends Error {
  constructor(
    readonly failure: Failure,
    readonly tlsFailed: boolean,
  ) {
    super(failure.text);
  }
}

const NOOP = (): void => undefined;

export class SmtpClient {
  private readonly options: Required<Omit<SmtpClientOptions, 'log' | 'downgrade'>> & { log: SmtpClientLog | null; downgrade: SmtpClientOptions['downgrade'] | null };
  private readonly idle = new Map<string, PooledConnection[]>();
  private readonly perDestination = new Map<string, number>();
  private total = 0;
  private waiters: Waiter[] = [];
  private pumping = false;
  private pumpAgain = false;
  private closed = false;
  private readonly closing = new Set<Promise<void>>();
  private counters = { opened: 0, reused: 0 };

  constructor(options: SmtpClientOptions) {
    this.options = {
      heloName: options.heloName,
      connectTimeoutSeconds: options.connectTimeoutSeconds,
      commandTimeoutSeconds: options.commandTimeoutSeconds,
      maxPerDestination: Math.max(1, Math.floor(options.maxPerDestination)),
      maxConnections: Math.max(1, Math.floor(options.maxConnections)),
      connectionReuse: options.connectionReuse,
      maxMessagesPerConnection: Math.max(1, Math.floor(options.maxMessagesPerConnection)),
      idleCloseSeconds: options.idleCloseSeconds ?? 5,
      sourceAddresses: options.sourceAddresses ?? {},
      log: options.log ?? null,
      downgrade: options.downgrade ?? null,
    };
  }

  stats(): { opened: number; reused: number } {
    return { ...this.counters };
  }

  /** Closes the pooled (idle) connections with QUIT; connections in use are closed after their transaction. */
  async close(): Promise<void> {
    this.closed = true;
    for (const list of [...this.idle.values()]) for (const pc of [...list]) this.retire(pc, true);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  /** Tries the destinations in order (and each of a destination's addresses in order) until one takes the transaction. */
  async send(destinations: Destination[], message: OutboundMessage): Promise<RecipientResult[]> {
    const results: Array<RecipientResult | undefined> = message.recipients.map(() => undefined);
    // Addresses nodemailer would refuse to put on the wire (and that no server could take).
    const badSender = /[\r\n<>\s]/.test(message.from);
    const valid: number[] = [];
    message.recipients.forEach((r, i) => {
      if (badSender) {
        results[i] = { address: r.address, outcome: 'permanent', reply: { code: 553, enhanced: '5.1.7', text: `invalid sender address "${message.from}"`, remoteMta: null } };
      } else if (r.address.trim() === '' || /[\r\n<>\s]/.test(r.address)) {
        results[i] = { address: r.address, outcome: 'permanent', reply: { code: 553, enhanced: '5.1.3', text: `invalid recipient address "${r.address}"`, remoteMta: null } };
      } else valid.push(i);
    });
    if (valid.length === 0) return results as RecipientResult[];
    const recipients = valid.map((i) => message.recipients[i]!);
    let own: RecipientResult[];
    try {
      own = await this.deliver(destinations, { ...message, recipients });
    } catch (err) {
      // A bug, not a network problem; still no throw: the queue retries.
      this.options.log?.warn({ err }, 'smtp client: unexpected error');
      const reply: SmtpReplyRecord = { code: 451, enhanced: '4.3.0', text: `local error in the SMTP client: ${(err as Error)?.message ?? String(err)}`, remoteMta: null };
      own = recipients.map((r) => ({ address: r.address, outcome: 'temporary', reply }));
    }
    valid.forEach((i, k) => (results[i] = own[k]!));
    return results as RecipientResult[];
  }

  private async deliver(destinations: Destination[], message: OutboundMessage): Promise<RecipientResult[]> {
    const failures: Failure[] = [];
    for (const dest of destinations) {
      for (const address of dest.addresses) {
        const attempt = await this.attemptAddress(dest, address, message);
        if (attempt.kind === 'done') return attempt.results;
        failures.push(attempt.failure);
        this.options.log?.debug(
          { host: dest.host, address, port: dest.port, outcome: 'next', code: attempt.failure.reply?.code ?? null, text: attempt.failure.text },
          'smtp attempt failed, trying the next address',
        );
      }
    }
    return message.recipients.map((r) => ({ address: r.address, ...fallbackResult(failures) }));
  }

  // ---------------------------------------------------------------- one address

  private async attemptAddress(dest: Destination, address: string, message: OutboundMessage): Promise<Attempt> {
    const key = `${dest.host}:${dest.port}:${address}`;
    const destKey = `${dest.host}:${dest.port}`;
    for (;;) {
      const lease = await this.acquire(key, destKey);
      let pc: PooledConnection;
      if (lease.kind === 'idle') {
        pc = lease.pc;
        // RSET before reuse: resets the session and proves the connection is still alive. A
        // pooled connection found dead is replaced, not counted against the destination.
        if (!(await this.reset(pc))) {
          this.options.log?.debug({ host: pc.host, address: pc.address, port: pc.port }, 'smtp: pooled connection is gone, opening a new one');
          this.retire(pc, false);
          continue;
        }
        this.counters.reused++;
      } else {
        try {
          pc = await this.open(dest, address, key, destKey);
        } catch (err) {
          this.releaseSlot(destKey);
          if (err instanceof ConnectFailure) return { kind: 'next', failure: err.failure };
          throw err;
        }
        this.counters.opened++;
      }
      const { attempt, reusable } = await this.transact(pc, message);
      pc.messages++;
      this.finish(pc, reusable);
      return withSizeLimit(attempt, pc.caps.size);
    }
  }

  /** Opens a connection; a failed STARTTLS handshake is retried once without TLS. */
  private async open(dest: Destination, address: string, key: string, destKey: string): Promise<PooledConnection> {
    try {
      return await this.connect(dest, address, key, destKey, true);
    } catch (err) {
      if (!(err instanceof ConnectFailure) || !err.tlsFailed) throw err;
      this.options.log?.warn({ host: dest.host, address, port: dest.port, error: err.failure.text }, 'smtp: STARTTLS handshake failed, retrying without TLS');
      return await this.connect(dest, address, key, destKey, false);
    }
  }

  private connect(dest: Destination, address: string, key: string, destKey: string, useTls: boolean): Promise<PooledConnection> {
    const connectMs = Math.max(1, this.options.connectTimeoutSeconds) * 1000;
    const conn = new SMTPConnection({
      host: address,
      port: dest.port,
      localAddress: (net.isIPv6(address) ? this.options.sourceAddresses.ipv6 : this.options.sourceAddresses.ipv4) || undefined,
      name: this.options.heloName,
      // SNI with the MX name; certificates are not verified (opportunistic TLS, RFC 7435).
      servername: net.isIP(dest.host) ? undefined : dest.host,
      ignoreTLS: !useTls,
      opportunisticTLS: true, // a refused STARTTLS command: go on in plain text
      tls: { rejectUnauthorized: false },
      connectionTimeout: connectMs,
      greetingTimeout: connectMs,
      socketTimeout: Math.max(1, this.options.commandTimeoutSeconds) * 1000,
      // only matters for host names; ours are IP addresses, loopback included (tests)
      allowInternalNetworkInterfaces: true,
      logger: false,
    });
    const internals = conn as unknown as ConnectionInternals;
    if (typeof internals._sendCommand !== 'function') throw new Error('nodemailer SMTPConnection has no _sendCommand: unsupported nodemailer version');
    const pc: PooledConnection = {
      conn,
      key,
      destKey,
      host: dest.host,
      address,
      port: dest.port,
      caps: { size: null, eightBitMime: false, smtpUtf8: false, dsn: false, pipelining: false },
      secure: false,
      messages: 0,
      idleTimer: null,
      retired: false,
      tx: null,
    };
    const original = internals._sendCommand.bind(conn);
    internals._sendCommand = (str: string, logStr?: string) => original(rewriteCommand(pc, str), logStr);
    // Always listen: nodemailer emits 'error' and would otherwise crash the process.
    conn.on('error', NOOP);
    // A pooled connection the server closes while idle leaves the pool at once.
    conn.on('end', () => {
      if (this.isIdle(pc)) this.retire(pc, false);
    });

    return new Promise<PooledConnection>((resolve, reject) => {
      let settled = false;
      const fail = (err: SmtpError): void => {
        if (settled) return;
        settled = true;
        const tlsFailed = useTls && (internals.upgrading === true || err.code === 'ETLS');
        conn.close();
        reject(new ConnectFailure(connectFailure(dest, address, err), tlsFailed));
      };
      conn.once('error', fail);
      conn.once('end', () => fail(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })));
      conn.connect((err?: SmtpError) => {
        if (err) return fail(err);
        if (settled) return;
        settled = true;
        conn.removeListener('error', fail);
        pc.caps = capabilitiesOf(internals);
        pc.secure = internals.secure;
        this.options.log?.debug({ host: dest.host, address, port: dest.port, secure: pc.secure }, 'smtp: connected');
        resolve(pc);
      });
    });
  }

  /** RSET on a pooled connection; false when it is unusable. */
  private reset(pc: PooledConnection): Promise<boolean> {
    const internals = pc.conn as unknown as ConnectionInternals;
    if (internals._destroyed || internals.destroyed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        pc.conn.removeListener('end', onEnd);
        resolve(ok);
      };
      const onEnd = (): void => finish(false);
      pc.conn.once('end', onEnd);
      pc.conn.reset((err) => finish(!err));
    });
  }

  // ---------------------------------------------------------------- the transaction

  private async transact(pc: PooledConnection, message: OutboundMessage): Promise<{ attempt: Attempt; reusable: boolean }> {
    const caps = pc.caps;
    const remoteMta = pc.host;
    const all = (outcome: RecipientResult['outcome'], reply: SmtpReplyRecord): Attempt => ({
      kind: 'done',
      results: message.recipients.map((r) => ({ address: r.address, outcome, reply })),
    });
    const log = (outcome: string, code: number | null): void =>
      this.options.log?.debug({ host: pc.host, address: pc.address, port: pc.port, secure: pc.secure, outcome, code }, 'smtp attempt');

    // Checks against the EHLO answer; nothing is sent when the message can not go.
    const needsUtf8 = message.smtpUtf8 || !isAscii(message.from) || message.recipients.some((r) => !isAscii(r.address));
    if (needsUtf8 && !caps.smtpUtf8) {
      // RFC 6531 §3.2: without SMTPUTF8 at the server the message can not be sent as it is.
      log('permanent', 553);
      return {
        attempt: all('permanent', { code: 553, enhanced: '5.6.7', text: `the receiving server ${pc.host} does not support internationalized addresses (SMTPUTF8)`, remoteMta }),
        reusable: true,
      };
    }
    if (message.eightBit && !caps.eightBitMime) {
      // RFC 6152 §3: no 8-bit data to a server without 8BITMIME; the message is converted to 7-bit
      // (RFC 1652 §3) when it can be, else returned (RFC 3463 5.6.3: conversion required but not
      // possible: raw UTF-8 in a header field, say).
      const converted = this.options.downgrade ? await this.options.downgrade(message.content) : null;
      if (!converted) {
        log('permanent', 554);
        return {
          attempt: all('permanent', { code: 554, enhanced: '5.6.3', text: `the receiving server ${pc.host} does not accept 8-bit content (8BITMIME), and the message could not be converted to 7-bit`, remoteMta }),
          reusable: true,
        };
      }
      message = { ...message, content: converted, eightBit: false };
    }
    const size = message.content.length;
    if (caps.size !== null && caps.size > 0 && size > caps.size) {
      log('permanent', 552);
      return {
        attempt: all('permanent', { code: 552, enhanced: '5.3.4', text: `message size ${size} exceeds the limit of ${caps.size} bytes announced by ${pc.host}`, remoteMta }),
        reusable: true,
      };
    }

    pc.tx = transactionParams(message, caps, needsUtf8);
    const envelope = {
      from: message.from === '' ? false : message.from,
      to: message.recipients.map((r) => r.address),
      size,
      use8BitMime: message.eightBit,
    } as const;
    const outcome = await new Promise<{ err: SmtpError | null; info: { response: string; rejectedErrors?: SmtpError[] } | null }>((resolve) => {
      let done = false;
      const finish = (err: SmtpError | null, info: { response: string; rejectedErrors?: SmtpError[] } | null): void => {
        if (done) return;
        done = true;
        pc.conn.removeListener('end', onEnd);
        resolve({ err, info });
      };
      const onEnd = (): void => void setImmediate(() => finish(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }), null));
      pc.conn.once('end', onEnd);
      pc.conn.send({ ...envelope, to: [...envelope.to] }, message.content, (err, info) => finish((err as SmtpError | null) ?? null, info ?? null));
    });
    pc.tx = null;
    const internals = pc.conn as unknown as ConnectionInternals;
    const alive = !internals._destroyed && !internals.destroyed;

    const rcptResult = (r: OutboundRecipient, e: SmtpError): RecipientResult => {
      const reply = parseReply(e.response ?? '', remoteMta) ?? { code: 550, enhanced: null, text: e.message, remoteMta };
      return { address: r.address, outcome: reply.code >= 500 ? 'permanent' : 'temporary', reply };
    };
    /** Rejected recipients keep their RCPT reply, the accepted ones get `accepted(r)`. */
    const perRecipient = (rejected: SmtpError[], accepted: (r: OutboundRecipient) => RecipientResult): Attempt => {
      const byAddress = new Map<string, SmtpError[]>();
      for (const e of rejected) {
        const a = (e.recipient ?? '').toLowerCase();
        byAddress.set(a, [...(byAddress.get(a) ?? []), e]);
      }
      return {
        kind: 'done',
        results: message.recipients.map((r) => {
          const e = byAddress.get(r.address.trim().toLowerCase())?.shift();
          return e ? rcptResult(r, e) : accepted(r);
        }),
      };
    };

    if (!outcome.err && outcome.info) {
      const info = outcome.info;
      const reply = parseReply(info.response, remoteMta) ?? { code: 250, enhanced: null, text: info.response, remoteMta };
      log('delivered', reply.code);
      return {
        attempt: perRecipient(info.rejectedErrors ?? [], (r) => ({
          address: r.address,
          outcome: !caps.dsn && wantsSuccess(r) ? 'relayed' : 'delivered',
          reply,
        })),
        reusable: alive,
      };
    }

    const err: SmtpError = outcome.err ?? Object.assign(new Error('no answer'), { code: 'ECONNECTION' });
    const reply = err.response ? parseReply(err.response, remoteMta) : null;
    const transactionError = err.code === 'EENVELOPE' || err.code === 'EMESSAGE';
    const reusable = alive && transactionError && err.responseCode !== 421;
    const rejectedSoFar = (): SmtpError[] => err.rejectedErrors ?? (internals._envelope ? internals._envelope.rejectedErrors ?? [] : []);

    if (transactionError && reply && err.responseCode !== 421) {
      if (err.command === 'MAIL FROM') {
        if (reply.code >= 500) {
          log('permanent', reply.code);
          return { attempt: all('permanent', reply), reusable };
        }
        // 4xx at MAIL FROM: this server can not take it now; another one may.
        log('next', reply.code);
        return { attempt: { kind: 'next', failure: { host: pc.host, address: pc.address, port: pc.port, reply, text: replyText(reply), atConnect: false } }, reusable };
      }
      if (err.command === 'RCPT TO') {
        // every recipient refused
        log('rejected', reply.code);
        const rejected = rejectedSoFar();
        return { attempt: perRecipient(rejected, (r) => rcptResult(r, err)), reusable };
      }
      // DATA refused, or the reply after the end of data: for the accepted recipients.
      const outcomeOf = reply.code >= 500 ? 'permanent' : 'temporary';
      log(outcomeOf, reply.code);
      return { attempt: perRecipient(rejectedSoFar(), (r) => ({ address: r.address, outcome: outcomeOf, reply })), reusable };
    }
    if (transactionError && !reply && err.command === 'API') {
      // nodemailer refused before sending (should have been caught above).
      log('permanent', null);
      return { attempt: all('permanent', { code: 554, enhanced: '5.5.0', text: err.message, remoteMta: null }), reusable };
    }

    // Connection problems (lost, timed out, 421). After the end of data the message may have
    // been taken already: temporary, no other server (a duplicate is possible, as RFC 5321 §6.1 accepts).
    const afterData = typeof internals.lastServerResponse === 'string' && /^354/.test(internals.lastServerResponse);
    if (afterData) {
      const lost: SmtpReplyRecord = reply ?? {
        code: 451,
        enhanced: '4.4.2',
        text: `connection to ${who(pc.host, pc.address, pc.port)} lost while sending the message: ${describeError(err)}`,
        remoteMta,
      };
      log('temporary', lost.code);
      return { attempt: perRecipient(rejectedSoFar(), (r) => ({ address: r.address, outcome: 'temporary', reply: lost })), reusable: false };
    }
    log('next', reply?.code ?? null);
    return {
      attempt: {
        kind: 'next',
        failure: {
          host: pc.host,
          address: pc.address,
          port: pc.port,
          reply,
          text: `connection to ${who(pc.host, pc.address, pc.port)} lost: ${describeError(err)}`,
          atConnect: false,
        },
      },
      reusable: false,
    };
  }

  /** After a transaction: back to the pool, or QUIT. */
  private finish(pc: PooledConnection, reusable: boolean): void {
    const internals = pc.conn as unknown as ConnectionInternals;
    const alive = !internals._destroyed && !internals.destroyed;
    if (!alive) return this.retire(pc, false);
    if (!reusable || this.closed || !this.options.connectionReuse || pc.messages >= this.options.maxMessagesPerConnection) return this.retire(pc, true);
    const list = this.idle.get(pc.key) ?? [];
    list.push(pc);
    this.idle.set(pc.key, list);
    pc.idleTimer = setTimeout(() => this.retire(pc, true), Math.max(0, this.options.idleCloseSeconds) * 1000);
    pc.idleTimer.unref();
    this.pump();
  }

  // ---------------------------------------------------------------- slots and the pool

  private acquire(key: string, destKey: string): Promise<Lease> {
    return new Promise<Lease>((resolve) => {
      this.waiters.push({ key, destKey, resolve });
      this.pump();
    });
  }

  private pump(): void {
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.pumpAgain = false;
        for (let i = 0; i < this.waiters.length; ) {
          const w = this.waiters[i]!;
          const lease = this.tryAcquire(w.key, w.destKey);
          if (lease) {
            this.waiters.splice(i, 1);
            w.resolve(lease);
          } else i++;
        }
      } while (this.pumpAgain);
    } finally {
      this.pumping = false;
    }
  }

  private tryAcquire(key: string, destKey: string): Lease | null {
    const list = this.idle.get(key);
    if (list && list.length > 0) {
      const pc = list.pop()!;
      if (list.length === 0) this.idle.delete(key);
      if (pc.idleTimer) clearTimeout(pc.idleTimer);
      pc.idleTimer = null;
      return { kind: 'idle', pc };
    }
    if ((this.perDestination.get(destKey) ?? 0) >= this.options.maxPerDestination) {
      // an idle connection to another address of this destination can make room
      const victim = this.oldestIdle((pc) => pc.destKey === destKey);
      if (!victim) return null;
      this.retire(victim, true);
      if ((this.perDestination.get(destKey) ?? 0) >= this.options.maxPerDestination) return null;
    }
    if (this.total >= this.options.maxConnections) {
      const victim = this.oldestIdle(() => true);
      if (!victim) return null;
      this.retire(victim, true);
      if (this.total >= this.options.maxConnections) return null;
    }
    this.perDestination.set(destKey, (this.perDestination.get(destKey) ?? 0) + 1);
    this.total++;
    return { kind: 'slot' };
  }

  private oldestIdle(match: (pc: PooledConnection) => boolean): PooledConnection | null {
    for (const list of this.idle.values()) for (const pc of list) if (match(pc)) return pc;
    return null;
  }

  private isIdle(pc: PooledConnection): boolean {
    return this.idle.get(pc.key)?.includes(pc) ?? false;
  }

  private releaseSlot(destKey: string): void {
    const n = (this.perDestination.get(destKey) ?? 1) - 1;
    if (n <= 0) this.perDestination.delete(destKey);
    else this.perDestination.set(destKey, n);
    this.total = Math.max(0, this.total - 1);
    this.pump();
  }

  /**
   * Takes a connection out of use (QUIT when graceful) and frees its slot once its socket has
   * closed, so the peer never sees more connections than the limits allow.
   */
  private retire(pc: PooledConnection, graceful: boolean): void {
    if (pc.retired) return;
    pc.retired = true;
    if (pc.idleTimer) clearTimeout(pc.idleTimer);
    pc.idleTimer = null;
    const list = this.idle.get(pc.key);
    if (list) {
      const at = list.indexOf(pc);
      if (at >= 0) list.splice(at, 1);
      if (list.length === 0) this.idle.delete(pc.key);
    }
    const internals = pc.conn as unknown as ConnectionInternals;
    const socket = internals._socket || null;
    const closed = new Promise<void>((resolve) => {
      if (!socket || socket.closed) return resolve();
      const timer = setTimeout(resolve, 10_000);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (!internals._destroyed && !internals.destroyed) {
      if (graceful) {
        pc.conn.quit();
        // a server that never answers QUIT is not waited for long
        const timer = setTimeout(() => pc.conn.close(), 2000);
        timer.unref();
        void closed.then(() => clearTimeout(timer));
      } else pc.conn.close();
    }
    const tracked = closed.then(() => {
      this.closing.delete(tracked);
      this.releaseSlot(pc.destKey);
    });
    this.closing.add(tracked);
  }
}

// ------------------------------------------------------------------ helpers

function wantsSuccess(r: OutboundRecipient): boolean {
  return (r.notify as readonly string[] | null)?.includes('SUCCESS') ?? false;
}

function isAscii(s: string): boolean {
  return !/[^\x00-\x7f]/.test(s);
}

function capabilitiesOf(internals: ConnectionInternals): Capabilities {
  let ext: string[] = Array.isArray(internals._supportedExtensions) ? (internals._supportedExtensions as unknown[]).map(String) : [];
  let size: number | null = null;
  if (ext.includes('SIZE')) size = Number(internals._maxAllowedSize) || 0;
  if (!Array.isArray(internals._supportedExtensions) && typeof internals.lastServerResponse === 'string') {
    // fallback: parse the EHLO answer ourselves
    const lines = internals.lastServerResponse.split(/\r?\n/).slice(1).map((l) => l.replace(/^\d{3}[ -]/, '').trim().toUpperCase());
    ext = lines.map((l) => l.split(/\s+/)[0] ?? '');
    const sizeLine = lines.find((l) => /^SIZE\b/.test(l));
    if (sizeLine) size = Number(sizeLine.split(/\s+/)[1]) || 0;
  }
  return {
    size,
    eightBitMime: ext.includes('8BITMIME'),
    smtpUtf8: ext.includes('SMTPUTF8'),
    dsn: ext.includes('DSN'),
    pipelining: ext.includes('PIPELINING'),
  };
}

/**
 * Refusals as too large for the system (RFC 3463 X.3.4) carry the SIZE limit the server announced,
 * for the bounce's explanation. Not X.2.3 (too large for that mailbox): its limit is another one.
 */
function withSizeLimit(attempt: Attempt, limit: number | null): Attempt {
  if (attempt.kind !== 'done' || limit === null || limit <= 0) return attempt;
  return {
    kind: 'done',
    results: attempt.results.map((r) => (/^[45]\.3\.4$/.test(r.reply.enhanced ?? '') ? { ...r, reply: { ...r.reply, sizeLimit: limit } } : r)),
  };
}

/** RFC 3461 §4 xtext: "+" and "=" and everything outside 0x21-0x7E as +HH (of the UTF-8 bytes). */
export function encodeXtext(value: string): string {
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : '+' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * RFC 6533 §3 utf-8-addr-xtext / utf-8-addr-unitext (ORCPT=utf-8;...): "\x{HEX}" escapes kept as
 * given, "+", "=", "\\" and controls escaped as \x{HH}; other non-ASCII raw in an SMTPUTF8
 * transaction (unitext), escaped otherwise (xtext).
 */
function encodeUtf8Addr(value: string, unitext: boolean): string {
  let out = '';
  for (let i = 0; i < value.length; ) {
    const kept = /^\\x\{[0-9A-Fa-f]{1,6}\}/.exec(value.slice(i));
    if (kept) {
      out += kept[0];
      i += kept[0].length;
      continue;
    }
    const cp = value.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    i += ch.length;
    if (cp >= 0x21 && cp <= 0x7e && cp !== 0x2b && cp !== 0x3d && cp !== 0x5c) out += ch;
    else if (cp > 0x7f && unitext) out += ch;
    else out += `\\x{${cp.toString(16).toUpperCase().padStart(2, '0')}}`;
  }
  return out;
}

function transactionParams(message: OutboundMessage, caps: Capabilities, needsUtf8: boolean): TxParams {
  const mail: string[] = [];
  if (needsUtf8) mail.push('SMTPUTF8');
  const rcpt: string[] = [];
  if (caps.dsn) {
    if (message.ret) mail.push(`RET=${message.ret}`);
    if (message.envid) mail.push(`ENVID=${encodeXtext(message.envid)}`);
    for (const r of message.recipients) {
      const params: string[] = [];
      if (r.notify && r.notify.length > 0) params.push(`NOTIFY=${r.notify.join(',')}`);
      if (r.orcpt && /^[A-Za-z0-9-]+;./.test(r.orcpt)) {
        const semi = r.orcpt.indexOf(';');
        const type = r.orcpt.slice(0, semi);
        const addr = r.orcpt.slice(semi + 1);
        params.push(`ORCPT=${type};${type.toLowerCase() === 'utf-8' ? encodeUtf8Addr(addr, needsUtf8) : encodeXtext(addr)}`);
      }
      rcpt.push(params.join(' '));
    }
  }
  return { mail, rcpt, nextRcpt: 0 };
}

/** Adds this module's parameters to MAIL FROM / RCPT TO as nodemailer writes them. */
function rewriteCommand(pc: PooledConnection, str: string): string {
  const tx = pc.tx;
  if (!tx) return str;
  if (/^MAIL FROM:/i.test(str)) {
    const have = new Set(str.split(' ').slice(2).map((p) => p.split('=')[0]!.toUpperCase()));
    const add = tx.mail.filter((p) => !have.has(p.split('=')[0]!.toUpperCase()));
    return add.length ? `${str} ${add.join(' ')}` : str;
  }
  if (/^RCPT TO:/i.test(str)) {
    const params = tx.rcpt[tx.nextRcpt++];
    return params ? `${str} ${params}` : str;
  }
  return str;
}

/** A reply as a SmtpReplyRecord: code, enhanced code (RFC 3463) when given, text without either. */
export function parseReply(raw: string, remoteMta: string | null): SmtpReplyRecord | null {
  const lines = raw.split(/\r?\n/).filter((l) => l.trim() !== '');
  const first = lines[0];
  if (!first) return null;
  const m = /^([2-5]\d\d)(?:[ -]|$)/.exec(first);
  if (!m) return null;
  const code = Number(m[1]);
  const texts = lines.map((l) => l.replace(/^\d{3}[ -]?/, ''));
  const e = /^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)/.exec(texts[0] ?? '');
  const enhanced = e && e[1]![0] === String(code)[0] ? e[1]! : null;
  const text = texts.map((t) => (enhanced && t.startsWith(enhanced) ? t.slice(enhanced.length).replace(/^\s+/, '') : t)).join('\n');
  return { code, enhanced, text, remoteMta };
}

function replyText(reply: SmtpReplyRecord): string {
  return [String(reply.code), reply.enhanced, reply.text].filter((p) => p).join(' ');
}

function who(host: string, address: string, port: number): string {
  const name = host === address ? `[${address}]` : `${host} [${address}]`;
  return port === 25 ? name : `${name}:${port}`;
}

const SYSTEM_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  EPIPE: 'broken pipe',
};

function describeError(err: SmtpError): string {
  const sys = err.originalCode ?? (err.code && SYSTEM_ERRORS[err.code] ? err.code : undefined);
  if (sys) return SYSTEM_ERRORS[sys] ? `${sys} (${SYSTEM_ERRORS[sys]})` : `${sys}: ${err.message}`;
  if (err.code === 'ETIMEDOUT') {
    switch (err.timeoutType) {
      case 'CONNECT_TIMEOUT':
        return 'timed out connecting';
      case 'GREETING_TIMEOUT':
        return 'timed out waiting for the greeting';
      case 'UPGRADE_TIMEOUT':
        return 'timed out in the TLS handshake';
      default:
        return 'timed out waiting for a reply';
    }
  }
  return err.message.replace(/\s+/g, ' ').trim();
}

function connectFailure(dest: Destination, address: string, err: SmtpError): Failure {
  const reply = err.response ? parseReply(err.response, dest.host) : null;
  const text = reply
    ? `${who(dest.host, address, dest.port)} refused the session: ${replyText(reply)}`
    : `connection to ${who(dest.host, address, dest.port)} failed: ${describeError(err)}`;
  return { host: dest.host, address, port: dest.port, reply, text, atConnect: true };
}

/** The result for every recipient when no address took the transaction. */
function fallbackResult(failures: Failure[]): Omit<RecipientResult, 'address'> {
  const last = failures[failures.length - 1];
  if (!last) {
    return { outcome: 'temporary', reply: { code: 451, enhanced: '4.4.4', text: 'no mail server address to connect to', remoteMta: null } };
  }
  // Every server refused with a 5xx (greeting, EHLO/HELO): permanent, with the last reply.
  if (failures.every((f) => f.reply !== null && f.reply.code >= 500)) return { outcome: 'permanent', reply: last.reply! };
  if (last.reply && last.reply.code >= 400 && last.reply.code < 500) return { outcome: 'temporary', reply: last.reply };
  return {
    outcome: 'temporary',
    reply: { code: 451, enhanced: last.atConnect ? '4.4.1' : '4.4.2', text: last.text, remoteMta: last.reply ? last.host : null },
  };
}
