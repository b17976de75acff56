// One IMAP connection: bytes in (framer → parser → command table), responses out, STARTTLS,
// COMPRESS=DEFLATE, timeouts, and the mailbox updates other sessions cause. Commands run one at
// a time, in the order received (pipelined commands queue, bounded).

import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import type { TlsMaterial } from '../tls/certificates.js';
import type { AuthenticatedUser } from '../auth/authenticate.js';
import { isLoopback } from '../auth/throttle.js';
import { StoreError, type StoreChange } from '../store/types.js';
import { ImapFramer } from './protocol/framer.js';
import { parseCommand } from './protocol/parser.js';
import { ImapSyntaxError, type FrameEvent } from './protocol/types.js';
import { ImapResult, SilentResult, type ConnectionControl, type Session, type SessionServices, type SessionState } from './context.js';
import type { SelectedMailbox } from './selected.js';
import { COMMANDS } from './commands/index.js';
import { capabilityList } from './capabilities.js';
import { writeUpdates } from './updates.js';
import { announceQuotaChange, quotaResources } from './commands/quota.js';

/** The selected mailbox vanished under the session; the connection has said BYE. */
class MailboxGone extends Error {}

/** Commands during which EXPUNGE responses must not be sent (RFC 9051 §7.5.1), unless UID form. */
const NO_EXPUNGE_DURING = new Set(['FETCH', 'STORE', 'SEARCH', 'SORT', 'THREAD']);
/** Most commands waiting behind the running one before the client is told BYE. */
const MAX_QUEUED_COMMANDS = 1000;
/** Unread output above which a long response waits for the client to read. */
const OUTPUT_HIGH_WATER = 1024 * 1024;
/** Bytes of commands waiting behind the running one above which the connection stops reading. */
const QUEUE_PAUSE_BYTES = 1024 * 1024;

export class ImapConnection implements Session, ConnectionControl {
  readonly id = crypto.randomBytes(6).toString('hex');
  state: SessionState = 'not-authenticated';
  user: AuthenticatedUser | null = null;
  selected: SelectedMailbox | null = null;
  readonly enabled = new Set<string>();
  savedSearch: number[] = [];
  readonly remoteAddress: string;

  private socket: net.Socket | tls.TLSSocket;
  private framer: ImapFramer;
  private readonly queue: FrameEvent[] = [];
  private queuedBytes = 0;
  private corked = false;
  private quotaDirty = false;
  /** The last quota figures this client was told (GETQUOTA answers aside). */
  private lastQuota: string | null = null;
  private quotaBaseline: Promise<void> = Promise.resolve();
  private paused = false;
  private loginDeadline: NodeJS.Timeout | null = null;
  private running = false;
  private lineWaiter: ((line: string | null) => void) | null = null;
  private closed = false;
  private deflate: zlib.DeflateRaw | null = null;
  private unsubscribe: (() => void) | null = null;
  private mailboxDirty = false;
  private idleWaker: (() => void) | null = null;
  private readonly startedAt = Date.now();
  private commandsRun = 0;

  constructor(
    socket: net.Socket | tls.TLSSocket,
    readonly services: SessionServices,
    private readonly tlsMaterial: TlsMaterial,
    private isSecure: boolean,
    private readonly onClosed: (connection: ImapConnection) => void,
  ) {
    this.socket = socket;
    this.remoteAddress = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.framer = this.newFramer();
    this.attach(socket);
    this.setTimeout(services.config().imap.login_timeout);
    // A deadline, not an inactivity timer: NOOPs do not keep an unauthenticated connection open.
    this.loginDeadline = setTimeout(() => {
      if (this.state !== 'not-authenticated') return;
      this.send('* BYE Authentication took too long\r\n');
      this.close();
    }, services.config().imap.login_timeout * 1000);
    this.loginDeadline.unref();
    this.send(`* OK [CAPABILITY ${this.capabilities().join(' ')}] Yubin IMAP ready\r\n`);
  }

  get secure(): boolean {
    return this.isSecure;
  }
  get connection(): ConnectionControl {
    return this;
  }
  get tlsAvailable(): boolean {
    return !this.isSecure;
  }
  get compressed(): boolean {
    return this.deflate !== null;
  }

  private newFramer(): ImapFramer {
    const imap = this.services.config().imap;
    return new ImapFramer({
      maxLineLength: imap.max_line_length,
      maxLiteralSize: imap.max_literal,
      maxCommandSize: imap.max_command_size,
      literalPlus: true,
    });
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    // Replies are small and interactive: never hold them back for Nagle's algorithm.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    socket.on('timeout', () => {
      this.send('* BYE Autologout; idle for too long\r\n');
      this.close();
    });
  }

  private setTimeout(seconds: number): void {
    this.socket.setTimeout(seconds * 1000);
  }

  private inflate: zlib.InflateRaw | null = null;

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    if (this.inflate) {
      this.inflate.write(chunk);
      return;
    }
    this.feed(chunk);
  }

  private feed(chunk: Buffer): void {
    for (const event of this.framer.push(chunk)) {
      if (event.kind === 'continue') {
        // RFC 9051 §7.5: the server is ready for the literal.
        this.send('+ Ready for literal data\r\n');
        continue;
      }
      if (event.kind === 'error' && event.fatal) {
        this.send(`* BYE ${event.text}\r\n`);
        this.close();
        return;
      }
      if (this.lineWaiter && event.kind === 'command') {
        const waiter = this.lineWaiter;
        this.lineWaiter = null;
        waiter(event.line);
        continue;
      }
      if (this.queue.length >= MAX_QUEUED_COMMANDS) {
        this.send('* BYE Too many commands waiting\r\n');
        this.close();
        return;
      }
      this.queue.push(event);
      if (event.kind === 'command') this.queuedBytes += event.bytes.length;
    }
    // Backpressure: while commands wait, stop reading once they hold more than QUEUE_PAUSE_BYTES.
    if (this.queuedBytes > QUEUE_PAUSE_BYTES && !this.lineWaiter && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    void this.runQueue();
  }

  private resumeIfDrained(): void {
    if (this.paused && (this.queuedBytes <= QUEUE_PAUSE_BYTES / 2 || this.lineWaiter)) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private async runQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed && !this.lineWaiter) {
        await this.drain();
        const event = this.queue.shift()!;
        this.queuedBytes -= event.kind === 'command' ? event.bytes.length : 0;
        this.resumeIfDrained();
        try {
          await this.handleEvent(event);
        } catch (err) {
          // Nothing a client sends may take the process down: log, say goodbye, close.
          this.services.log.error({ session: this.id, err: (err as Error)?.stack ?? String(err) }, 'imap connection failed');
          this.send('* BYE Internal error; please reconnect\r\n');
          this.close();
        }
      }
    } finally {
      this.running = false;
    }
  }

  private async handleEvent(event: FrameEvent): Promise<void> {
    if (event.kind === 'error') {
      const tag = event.tag ?? '*';
      this.send(`${tag} ${event.code === 'TOOBIG' ? 'NO [TOOBIG]' : 'BAD'} ${event.text}\r\n`);
      return;
    }
    if (event.kind !== 'command') return;
    let command;
    try {
      command = parseCommand(event.bytes);
    } catch (err) {
      if (err instanceof ImapSyntaxError) {
        this.send(`${err.tag ?? '*'} BAD ${err.message}\r\n`);
        return;
      }
      throw err;
    }
    const uid = command.name.startsWith('UID ');
    const name = uid ? command.name.slice(4) : command.name;
    const spec = COMMANDS.get(name);
    if (!spec || (uid && !spec.uidForm)) {
      this.send(`${command.tag} BAD Unknown command ${command.name.slice(0, 40)}\r\n`);
      return;
    }
    if (!spec.states.includes(this.state)) {
      const why = this.state === 'not-authenticated' ? 'Log in first' : this.state === 'authenticated' ? 'Select a mailbox first' : `Not allowed now`;
      this.send(`${command.tag} BAD ${why}\r\n`);
      return;
    }
    this.commandsRun++;
    let result: ImapResult;
    try {
      result = await spec.handle({ session: this, tag: command.tag, command, args: command.args, uid });
    } catch (err) {
      if (err instanceof SilentResult) return;
      if (err instanceof ImapResult) result = err;
      else if (err instanceof ImapSyntaxError) result = new ImapResult('BAD', err.message);
      else {
        this.services.log.error({ session: this.id, command: command.name, err: (err as Error)?.stack ?? String(err) }, 'imap command failed');
        result = new ImapResult('NO', 'Internal error; try again later', 'SERVERBUG');
      }
    }
    if (this.closed) return;
    if (this.state === 'authenticated' && !this.selected) await this.announceQuota();
    if (this.state !== 'logout' && this.selected) {
      try {
        await this.flushUpdates(uid || !NO_EXPUNGE_DURING.has(name));
      } catch (err) {
        if (!(err instanceof MailboxGone)) throw err;
      }
      if (this.closed) return;
    }
    const code = result.code ? `[${result.code}] ` : '';
    this.send(`${command.tag} ${result.status} ${code}${result.text}\r\n`);
    if (this.state === 'logout') this.close();
  }

  // Session

  send(data: Buffer | string): void {
    if (this.closed) return;
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.deflate) {
      this.deflate.write(bytes);
      this.deflate.flush(zlib.constants.Z_SYNC_FLUSH);
      return;
    }
    // Responses written in one tick leave in one segment (a FETCH of many messages, SELECT's
    // lines): fewer syscalls, and no wait on the client's delayed ACK.
    if (!this.corked) {
      this.corked = true;
      const socket = this.socket;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    this.socket.write(bytes);
  }

  async drain(): Promise<void> {
    // A client that does not read must not make the server hold a mailbox's worth of output.
    const socket = this.socket;
    if (this.closed || socket.writableLength <= OUTPUT_HIGH_WATER) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  capabilities(): string[] {
    return capabilityList(this);
  }

  plaintextAllowed(): boolean {
    const policy = this.services.config().auth.plaintext;
    if (this.isSecure || policy === 'always') return true;
    if (policy === 'never') return false;
    return isLoopback(this.remoteAddress);
  }

  /** Called when authentication succeeds: the session may now reach this user's mail. */
  loggedIn(user: AuthenticatedUser): void {
    this.user = user;
    this.state = 'authenticated';
    if (this.loginDeadline) clearTimeout(this.loginDeadline);
    this.quotaBaseline = quotaResources(this).then(
      (resources) => {
        this.lastQuota = resources;
      },
      () => undefined,
    );
    this.setTimeout(this.services.config().imap.idle_timeout);
    this.unsubscribe = this.services.store.onChange((change) => this.onStoreChange(change));
    this.services.log.info({ event: 'login', protocol: 'imap', session: this.id, ip: this.remoteAddress, user: user.account.address }, 'imap login');
  }

  private onStoreChange(change: StoreChange): void {
    if (this.user && (change.accountId === this.user.account.id || change.kind === 'external')) {
      if (change.kind !== 'mailboxes') this.quotaDirty = true;
    }
    const selected = this.selected;
    if (!selected || !this.user) return;
    if (change.kind === 'external' || change.mailboxId === selected.mailbox.id) {
      this.mailboxDirty = true;
      this.idleWaker?.();
    }
  }

  async flushUpdates(allowExpunge: boolean): Promise<void> {
    const selected = this.selected;
    if (!selected) return;
    if (this.mailboxDirty) {
      try {
        await selected.refresh(this.services.store);
      } catch (err) {
        if (err instanceof StoreError && err.code === 'not-found') {
          // Another session deleted (or renamed away) the selected mailbox: nothing this session
          // knows about it is true any more (RFC 9051 §7.1.5 allows BYE here).
          this.send('* BYE The selected mailbox was deleted by another session\r\n');
          this.close();
          throw new MailboxGone();
        }
        throw err;
      }
      this.mailboxDirty = false;
    }
    writeUpdates(this, selected.takeUpdates(allowExpunge));
    await this.announceQuota();
  }

  /** Untagged QUOTA after this account's usage changed (by this session or any other). */
  private async announceQuota(): Promise<void> {
    if (!this.quotaDirty || !this.user) return;
    this.quotaDirty = false;
    // The figures at login are the baseline: only a real change is announced.
    await this.quotaBaseline;
    this.lastQuota = await announceQuotaChange(this, this.lastQuota);
  }

  /** IDLE (RFC 2177): waits for DONE, sending updates as they happen. */
  async idle(): Promise<'done' | 'closed'> {
    this.continueRequest('idling');
    let done = false;
    let closed = false;
    const line = this.readLine().then((l) => {
      done = true;
      if (l === null) closed = true;
      this.idleWaker?.();
      return l;
    });
    while (!done && !this.closed) {
      try {
        await this.flushUpdates(true);
      } catch (err) {
        if (err instanceof MailboxGone) return 'closed';
        throw err;
      }
      await new Promise<void>((resolve) => {
        this.idleWaker = resolve;
        // Re-check now and then even without events (RFC 9051 §5.4 idle connections are re-checked).
        setTimeout(resolve, 30_000).unref();
      });
      this.idleWaker = null;
    }
    const text = await line;
    if (closed || text === null) return 'closed';
    if (text.trim().toUpperCase() !== 'DONE') throw new ImapResult('BAD', 'Expected DONE');
    return 'done';
  }

  // ConnectionControl

  async startTls(): Promise<void> {
    // RFC 9051 §6.2.1: anything the client pipelined after STARTTLS was sent in plaintext and
    // must not be executed inside the TLS session (STARTTLS command injection).
    this.queue.length = 0;
    this.framer = this.newFramer();
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('timeout');
    raw.removeAllListeners('error');
    raw.on('error', () => this.close());
    const secure = new tls.TLSSocket(raw, { isServer: true, key: this.tlsMaterial.key, cert: this.tlsMaterial.cert });
    this.socket = secure;
    this.isSecure = true;
    this.attach(secure);
    this.setTimeout(this.state === 'not-authenticated' ? this.services.config().imap.login_timeout : this.services.config().imap.idle_timeout);
    await new Promise<void>((resolve) => {
      secure.once('secure', () => resolve());
      secure.once('error', () => resolve());
      secure.once('close', () => resolve());
    });
  }

  startCompression(): void {
    // RFC 4978: everything after the OK is compressed, in both directions.
    const deflate = zlib.createDeflateRaw({ level: 6 });
    deflate.on('data', (chunk: Buffer) => this.socket.write(chunk));
    deflate.on('error', () => this.close());
    const inflate = zlib.createInflateRaw();
    inflate.on('data', (chunk: Buffer) => this.feed(chunk));
    inflate.on('error', () => {
      this.close();
    });
    this.deflate = deflate;
    this.inflate = inflate;
  }

  readLine(): Promise<string | null> {
    if (this.closed) return Promise.resolve(null);
    const queued = this.queue.findIndex((e) => e.kind === 'command');
    if (queued === 0) {
      const event = this.queue.shift()!;
      if (event.kind === 'command') this.queuedBytes -= event.bytes.length;
      return Promise.resolve(event.kind === 'command' ? event.line : null);
    }
    return new Promise((resolve) => {
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
      this.lineWaiter = (line) => {
        resolve(line);
        // Commands that arrived behind the line run once the handler has finished.
        setImmediate(() => void this.runQueue());
      };
    });
  }

  continueRequest(text: string): void {
    this.send(`+ ${text}\r\n`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.idleWaker?.();
    const waiter = this.lineWaiter;
    this.lineWaiter = null;
    waiter?.(null);
    if (this.loginDeadline) clearTimeout(this.loginDeadline);
    const socket = this.socket;
    if (this.deflate) {
      // The last compressed bytes (BYE, the tagged OK) leave only when deflate ends.
      this.deflate.once('end', () => socket.end());
      this.deflate.end();
    } else {
      socket.end();
    }
    setTimeout(() => socket.destroy(), 1000).unref();
    this.services.log.info(
      {
        event: 'connection',
        protocol: 'imap',
        session: this.id,
        ip: this.remoteAddress,
        user: this.user?.account.address ?? null,
        tls: this.isSecure,
        commands: this.commandsRun,
        ms: Date.now() - this.startedAt,
      },
      'imap connection closed',
    );
    this.onClosed(this);
  }

  /** Server shutdown: tell the client and go. */
  shutdown(): void {
    this.send('* BYE Server shutting down\r\n');
    this.close();
  }
}
