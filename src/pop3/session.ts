// One POP3 connection (RFC 1939): AUTHORIZATION → TRANSACTION → UPDATE, with CAPA, RESP-CODES,
// AUTH-RESP-CODE and PIPELINING (RFC 2449, RFC 3206), SASL PLAIN and LOGIN (RFC 5034) and STLS
// (RFC 2595). Commands run one at a time in the order received; input waits (the socket is
// paused) while too many are queued, and output waits for the client to read it, so a connection
// holds at most one line being read, a bounded queue and one message being sent.

import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { currentPolicy } from '../policy/settings.js';
import type { TlsMaterial } from '../tls/certificates.js';
import { authenticate, type AuthenticatedUser } from '../auth/authenticate.js';
import { isLoopback, type AuthThrottle } from '../auth/throttle.js';
import type { Store } from '../store/types.js';
import { LineReader, parseCommand, parseNumber, type LineEvent } from './parser.js';
import { Maildrop, type MaildropEntry } from './maildrop.js';
import type { RetrievalRecorder } from './retrievals.js';
import type { MaildropLocks } from './locks.js';
import { dotStuff, topOf } from './wire.js';

export interface Pop3Services {
  config: () => Config;
  store: Store;
  throttle: AuthThrottle;
  log: Logger;
  locks: MaildropLocks;
  /** First retrievals, written in batches for all sessions (retrievals.ts). */
  retrievals: RetrievalRecorder;
}

export type Pop3State = 'authorization' | 'transaction' | 'update';

/** Lines waiting behind the running command before the socket stops being read. */
const QUEUE_PAUSE = 64;
/** Lines of a multi-line LIST / UIDL answer written at a time. */
const LISTING_CHUNK = 1000;

const PLAINTEXT_REFUSED = '-ERR [AUTH] Plaintext authentication is disabled; use STLS\r\n';

/**
 * Ends a command with a reply (thrown from inside helpers). Not an Error: answering garbage must
 * stay cheap, and capturing a stack trace for every -ERR is not.
 */
class Reply {
  constructor(readonly line: string) {}
}

/** The connection closed while a command waited for the client. */
class Closed extends Error {}

export class Pop3Session {
  readonly id = crypto.randomBytes(6).toString('hex');
  readonly remoteAddress: string;
  state: Pop3State = 'authorization';

  private socket: net.Socket | tls.TLSSocket;
  private reader: LineReader;
  private readonly queue: LineEvent[] = [];
  private running = false;
  private paused = false;
  private closed = false;
  private lineWaiter: ((event: LineEvent | null) => void) | null = null;
  private readonly drainWaiters = new Set<() => void>();

  /** USER given, waiting for PASS (RFC 1939 §7). */
  private pendingUser: string | null = null;
  private user: AuthenticatedUser | null = null;
  private maildrop: Maildrop | null = null;
  private lockedAccount: number | null = null;
  private updating: Promise<void> | null = null;

  private readonly retrieved = new Set<number>();
  private deletedCount = 0;
  private commands = 0;
  private readonly startedAt = Date.now();
  private finishedResolve!: () => void;
  /** Resolves once the session is over: lock released, UPDATE (if any) finished, logged. */
  readonly finished = new Promise<void>((resolve) => (this.finishedResolve = resolve));

  constructor(
    socket: net.Socket | tls.TLSSocket,
    private readonly services: Pop3Services,
    private readonly tlsMaterial: TlsMaterial,
    private isSecure: boolean,
    private readonly onClosed: (session: Pop3Session) => void,
  ) {
    this.socket = socket;
    this.remoteAddress = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.reader = this.newReader();
    this.attach(socket);
    // A deadline, not an inactivity timer: commands do not keep an unauthenticated session open.
    this.loginDeadline = setTimeout(() => {
      if (this.state !== 'authorization' || this.closed) return;
      this.send('-ERR [SYS/TEMP] Authentication took too long\r\n');
      this.close();
    }, this.services.config().pop3.login_timeout * 1000);
    this.loginDeadline.unref();
    this.send('+OK Yubin POP3 server ready\r\n');
  }

  private loginDeadline: NodeJS.Timeout | null = null;

  get secure(): boolean {
    return this.isSecure;
  }

  private newReader(): LineReader {
    const max = this.services.config().pop3.max_line_length;
    return new LineReader({ maxLineLength: max, fatalLength: Math.max(16 * max, 65536) });
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => this.close());
    // RFC 1939 §3: when the autologout timer expires the session does not enter UPDATE; the
    // connection is closed without a response and without removing anything.
    socket.on('timeout', () => this.close());
    socket.setTimeout(this.services.config().pop3.idle_timeout * 1000);
  }

  // ---------------------------------------------------------------------------------------------
  // Input

  private onBytes(chunk: Buffer): void {
    if (this.closed) return;
    for (const event of this.reader.push(chunk)) {
      if (event.kind === 'fatal') {
        this.send(`-ERR Line too long (over ${event.length} bytes); closing the connection\r\n`);
        this.close();
        return;
      }
      this.queue.push(event);
    }
    if (this.lineWaiter && this.queue.length > 0) {
      const waiter = this.lineWaiter;
      this.lineWaiter = null;
      waiter(this.queue.shift()!);
    }
    if (this.queue.length >= QUEUE_PAUSE && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    void this.runQueue();
  }

  private async runQueue(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.closed) {
        const event = this.queue.shift()!;
        if (this.paused && this.queue.length < QUEUE_PAUSE / 4) {
          this.paused = false;
          this.socket.resume();
        }
        await this.handle(event);
        // A client that sends commands but does not read the answers stops being read itself.
        await this.writable();
      }
    } finally {
      this.running = false;
    }
  }

  /** The next line from the client (a SASL response); null when the connection closed. */
  private nextLine(): Promise<LineEvent | null> {
    if (this.closed) return Promise.resolve(null);
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => (this.lineWaiter = resolve));
  }

  // ---------------------------------------------------------------------------------------------
  // Output

  private send(text: string): void {
    if (!this.closed) this.socket.write(text);
  }

  /** Writes, then waits until the client has taken the bytes in (or the connection is gone). */
  private async write(...chunks: Array<Buffer | string>): Promise<void> {
    if (this.closed) return;
    for (const chunk of chunks) this.socket.write(chunk);
    await this.writable();
  }

  /** Waits while the socket holds more unsent bytes than its high-water mark. */
  private async writable(): Promise<void> {
    const socket = this.socket;
    if (this.closed || !socket.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        this.drainWaiters.delete(done);
        resolve();
      };
      socket.on('drain', done);
      this.drainWaiters.add(done);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Commands

  private async handle(event: LineEvent): Promise<void> {
    this.commands++;
    if (event.kind === 'too-long') {
      this.pendingUser = null;
      this.send(`-ERR Line too long (at most ${this.services.config().pop3.max_line_length} bytes)\r\n`);
      return;
    }
    if (event.kind !== 'line') return;
    const parsed = parseCommand(event.line.toString('utf8'));
    const name = parsed.name;
    // RFC 1939 §7: PASS must follow USER immediately; any other line forgets the user name.
    if (name !== 'PASS') this.pendingUser = null;
    if (!parsed.ok) {
      this.send(`-ERR ${parsed.error}\r\n`);
      return;
    }
    try {
      await this.dispatch(parsed.name, parsed.args);
    } catch (err) {
      if (err instanceof Reply) this.send(err.line);
      else if (err instanceof Closed) this.close();
      else {
        this.services.log.error({ session: this.id, protocol: 'pop3', command: name, err: (err as Error)?.stack ?? String(err) }, 'pop3 command failed');
        this.send('-ERR [SYS/TEMP] Internal error; try again later\r\n');
      }
    }
  }

  private async dispatch(name: string, args: string[]): Promise<void> {
    if (name === 'CAPA') return this.capa(args);
    if (name === 'QUIT') return this.quit(args);
    if (this.state === 'authorization') {
      switch (name) {
        case 'USER':
          return this.userCommand(args);
        case 'PASS':
          return this.passCommand(args);
        case 'AUTH':
          return this.authCommand(args);
        case 'STLS':
          return this.stls(args);
        case 'APOP':
          throw new Reply('-ERR APOP is not supported; use USER/PASS or AUTH\r\n');
        case 'STAT':
        case 'LIST':
        case 'UIDL':
        case 'RETR':
        case 'TOP':
        case 'DELE':
        case 'RSET':
        case 'NOOP':
          throw new Reply('-ERR Log in first\r\n');
      }
    } else if (this.state === 'transaction') {
      switch (name) {
        case 'STAT':
          return this.statCommand(args);
        case 'LIST':
          return this.listing(args, 'LIST');
        case 'UIDL':
          return this.listing(args, 'UIDL');
        case 'RETR':
          return this.retr(args);
        case 'TOP':
          return this.top(args);
        case 'DELE':
          return this.dele(args);
        case 'RSET':
          return this.rset(args);
        case 'NOOP':
          noArguments(args, name);
          return this.send('+OK\r\n');
        case 'USER':
        case 'PASS':
        case 'AUTH':
        case 'APOP':
          throw new Reply('-ERR Already logged in\r\n');
        case 'STLS':
          throw new Reply('-ERR STLS is only allowed before logging in\r\n');
      }
    }
    throw new Reply(`-ERR Unknown command ${name}\r\n`);
  }

  /** RFC 2449 §5. */
  private async capa(args: string[]): Promise<void> {
    noArguments(args, 'CAPA');
    const expire = await this.expireCapability();
    if (this.closed) return;
    const lines = ['TOP', 'UIDL'];
    if (this.state === 'authorization' && this.plaintextAllowed()) lines.push('USER', 'SASL PLAIN LOGIN');
    lines.push('RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', expire, 'LOGIN-DELAY 0', 'IMPLEMENTATION Yubin');
    if (this.state === 'authorization' && !this.isSecure) lines.push('STLS');
    this.send(`+OK Capability list follows\r\n${lines.join('\r\n')}\r\n.\r\n`);
  }

  /**
   * RFC 2449 §6.7, from pop3.keep_after_retrieval: before authentication the configuration's
   * default ("USER": it may differ per user, since domains and users can override it); after
   * authentication the user's effective value, read afresh so that a change applies at once.
   */
  private async expireCapability(): Promise<string> {
    const config = this.services.config();
    if (!this.user) {
      const days = config.policy['pop3.keep_after_retrieval'];
      return days === null ? 'EXPIRE NEVER' : `EXPIRE ${days} USER`;
    }
    const days = (await currentPolicy(this.services.store, config, this.user.account))['pop3.keep_after_retrieval'];
    return days === null ? 'EXPIRE NEVER' : `EXPIRE ${days}`;
  }

  plaintextAllowed(): boolean {
    const policy = this.services.config().auth.plaintext;
    if (this.isSecure || policy === 'always') return true;
    if (policy === 'never') return false;
    return isLoopback(this.remoteAddress);
  }

  private userCommand(args: string[]): void {
    if (args.length !== 1) throw new Reply('-ERR USER needs one argument, the user name\r\n');
    if (!this.plaintextAllowed()) throw new Reply(PLAINTEXT_REFUSED);
    this.pendingUser = args[0]!;
    // The same answer whether or not the user exists (RFC 1939 §13).
    this.send('+OK Send PASS\r\n');
  }

  private async passCommand(args: string[]): Promise<void> {
    const username = this.pendingUser;
    this.pendingUser = null;
    if (username === null) throw new Reply('-ERR Send USER first\r\n');
    if (args.length !== 1) throw new Reply('-ERR PASS needs a password\r\n');
    await this.logIn(username, args[0]!);
  }

  /** RFC 5034; also the bare "AUTH" that lists mechanisms, which many clients send. */
  private async authCommand(args: string[]): Promise<void> {
    if (args.length === 0) {
      if (!this.plaintextAllowed()) throw new Reply(PLAINTEXT_REFUSED);
      this.send('+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n');
      return;
    }
    if (args.length > 2) throw new Reply('-ERR AUTH takes a mechanism and an optional initial response\r\n');
    const mechanism = args[0]!.toUpperCase();
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') throw new Reply('-ERR Unsupported mechanism; use PLAIN or LOGIN\r\n');
    if (!this.plaintextAllowed()) throw new Reply(PLAINTEXT_REFUSED);
    const initial = args[1] ?? null;
    if (mechanism === 'PLAIN') {
      // RFC 4616: [authzid] NUL authcid NUL passwd; RFC 5034 §4: "=" is an empty initial response.
      const response = initial === null ? await this.challenge('') : initial === '=' ? Buffer.alloc(0) : decodeBase64(initial);
      const parts = response.toString('utf8').split('\0');
      if (parts.length !== 3) throw new Reply('-ERR Malformed PLAIN response\r\n');
      const [authzid, authcid, password] = parts as [string, string, string];
      if (authzid && authzid.toLowerCase() !== authcid.toLowerCase()) throw new Reply('-ERR [AUTH] Acting as another user is not allowed\r\n');
      await this.logIn(authcid, password);
      return;
    }
    const username = initial !== null && initial !== '=' ? decodeBase64(initial) : await this.challenge(Buffer.from('Username:').toString('base64'));
    const password = await this.challenge(Buffer.from('Password:').toString('base64'));
    await this.logIn(username.toString('utf8'), password.toString('utf8'));
  }

  /** Sends a SASL challenge and reads the response (RFC 5034 §4: "*" cancels). */
  private async challenge(text: string): Promise<Buffer> {
    this.send(`+ ${text}\r\n`);
    const event = await this.nextLine();
    if (event === null) throw new Closed();
    if (event.kind !== 'line') throw new Reply('-ERR Response too long; authentication cancelled\r\n');
    const line = event.line.toString('latin1');
    if (line === '*') throw new Reply('-ERR Authentication cancelled\r\n');
    return decodeBase64(line);
  }

  private async logIn(username: string, password: string): Promise<void> {
    if (!this.plaintextAllowed()) throw new Reply(PLAINTEXT_REFUSED);
    const { store, throttle, log, locks } = this.services;
    const user = await authenticate(store, throttle, this.remoteAddress, username, password);
    if (this.closed) return;
    if (!user) {
      log.info({ event: 'auth-failure', protocol: 'pop3', session: this.id, ip: this.remoteAddress, user: username.slice(0, 100) }, 'pop3 authentication failed');
      throw new Reply('-ERR [AUTH] Invalid user name or password\r\n');
    }
    const accountId = user.account.id;
    if (!locks.acquire(accountId)) {
      throw new Reply('-ERR [IN-USE] Another POP3 session is using this maildrop; try again when it has ended\r\n');
    }
    let maildrop: Maildrop | null;
    try {
      maildrop = await Maildrop.open(store, accountId);
    } catch (err) {
      locks.release(accountId);
      throw err;
    }
    if (!maildrop || this.closed) {
      maildrop?.close();
      locks.release(accountId);
      if (this.closed) return;
      throw new Reply('-ERR [SYS/PERM] This account has no INBOX\r\n');
    }
    this.lockedAccount = accountId;
    this.user = user;
    this.maildrop = maildrop;
    this.state = 'transaction';
    if (this.loginDeadline) clearTimeout(this.loginDeadline);
    this.send(`+OK Logged in; ${maildrop.count} message${maildrop.count === 1 ? '' : 's'} in the maildrop\r\n`);
  }

  /** RFC 2595 §4. */
  private async stls(args: string[]): Promise<void> {
    noArguments(args, 'STLS');
    if (this.isSecure) throw new Reply('-ERR TLS is already active\r\n');
    this.send('+OK Begin TLS negotiation\r\n');
    // Whatever the client sent after STLS came in plaintext: it must not run inside the TLS
    // session (command injection), so it is dropped with the half-read line, if any.
    this.queue.length = 0;
    this.reader = this.newReader();
    this.pendingUser = null;
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('timeout');
    raw.removeAllListeners('error');
    raw.setTimeout(0);
    raw.on('error', () => this.close());
    if (this.paused) {
      this.paused = false;
      raw.resume();
    }
    const secure = new tls.TLSSocket(raw as net.Socket, { isServer: true, key: this.tlsMaterial.key, cert: this.tlsMaterial.cert });
    this.socket = secure;
    this.isSecure = true;
    this.attach(secure);
    await new Promise<void>((resolve) => {
      secure.once('secure', () => resolve());
      secure.once('error', () => resolve());
      secure.once('close', () => resolve());
    });
  }

  private async quit(args: string[]): Promise<void> {
    noArguments(args, 'QUIT');
    const maildrop = this.maildrop;
    if (this.state !== 'transaction' || !maildrop) {
      this.send('+OK Yubin POP3 server signing off\r\n');
      this.close();
      return;
    }
    // RFC 1939 §6: the UPDATE state; only now are marked messages removed.
    this.state = 'update';
    const uids = maildrop.deleted().map((e) => e.uid);
    let failed = false;
    this.updating = (async () => {
      if (uids.length === 0) return;
      try {
        // Messages another session removed meanwhile are simply not there any more.
        this.deletedCount = (await this.services.store.expungeMessages(maildrop.mailbox.id, uids)).length;
      } catch (err) {
        failed = true;
        this.services.log.error({ session: this.id, protocol: 'pop3', err: (err as Error)?.stack ?? String(err) }, 'pop3 update failed');
      }
    })();
    await this.updating;
    const left = maildrop.count - uids.length;
    if (failed) this.send('-ERR [SYS/TEMP] Some deleted messages were not removed; they are still in the maildrop\r\n');
    else this.send(`+OK Yubin POP3 server signing off (${left === 0 ? 'maildrop empty' : `${left} message${left === 1 ? '' : 's'} left`})\r\n`);
    this.close();
  }

  private requireMaildrop(): Maildrop {
    if (!this.maildrop) throw new Reply('-ERR Log in first\r\n');
    return this.maildrop;
  }

  /** The live message an argument names, or a -ERR. */
  private message(arg: string | undefined): MaildropEntry {
    const maildrop = this.requireMaildrop();
    const number = arg === undefined ? null : parseNumber(arg);
    if (number === null || number < 1) throw new Reply('-ERR Invalid message number\r\n');
    const entry = maildrop.lookup(number);
    if (entry === 'no-such-message') throw new Reply(`-ERR No such message (the maildrop has ${maildrop.count})\r\n`);
    if (entry === 'deleted') throw new Reply(`-ERR Message ${number} is marked deleted\r\n`);
    return entry;
  }

  private async statCommand(args: string[]): Promise<void> {
    noArguments(args, 'STAT');
    const { count, octets } = await this.requireMaildrop().stat();
    this.send(`+OK ${count} ${octets}\r\n`);
  }

  /** LIST and UIDL (RFC 1939 §5, §7): one message, or every message not marked deleted. */
  private async listing(args: string[], name: 'LIST' | 'UIDL'): Promise<void> {
    if (args.length > 1) throw new Reply(`-ERR ${name} takes at most one message number\r\n`);
    const maildrop = this.requireMaildrop();
    const value = async (entry: MaildropEntry) => (name === 'LIST' ? String(await maildrop.sizeOf(entry)) : maildrop.uniqueId(entry));
    if (args.length === 1) {
      const entry = this.message(args[0]);
      this.send(`+OK ${entry.number} ${await value(entry)}\r\n`);
      return;
    }
    const live = maildrop.live();
    let head: string;
    if (name === 'LIST') {
      const { count, octets } = await maildrop.stat();
      head = `+OK ${count} message${count === 1 ? '' : 's'} (${octets} octets)\r\n`;
    } else head = '+OK Unique-id listing follows\r\n';
    let chunk = head;
    for (let i = 0; i < live.length; i++) {
      const entry = live[i]!;
      chunk += `${entry.number} ${await value(entry)}\r\n`;
      if ((i + 1) % LISTING_CHUNK === 0) {
        await this.write(chunk);
        chunk = '';
      }
    }
    await this.write(chunk + '.\r\n');
  }

  private async retr(args: string[]): Promise<void> {
    if (args.length !== 1) throw new Reply('-ERR RETR needs one message number\r\n');
    const entry = this.message(args[0]);
    const read = await this.readEntry(entry);
    await this.write(dotStuff(read, `+OK ${read.length} octets\r\n`));
    this.recordRetrieval(entry);
  }

  private async top(args: string[]): Promise<void> {
    if (args.length !== 2) throw new Reply('-ERR TOP needs a message number and a number of lines\r\n');
    const entry = this.message(args[0]);
    const lines = parseNumber(args[1]!);
    if (lines === null) throw new Reply('-ERR Invalid number of lines\r\n');
    const read = await this.readEntry(entry);
    const { bytes, whole } = topOf(read, lines);
    await this.write(dotStuff(bytes, '+OK Top of message follows\r\n'));
    if (whole) this.recordRetrieval(entry);
  }

  private async readEntry(entry: MaildropEntry): Promise<Buffer> {
    const maildrop = this.requireMaildrop();
    const read = await maildrop.read(entry);
    if (!read) throw new Reply(`-ERR Message ${entry.number} was removed by another session\r\n`);
    if (read.announced !== null && read.announced !== read.message.length) {
      // The size LIST gave must be what RETR sends; this means a stored message broke the
      // CRLF invariant (see maildrop.ts).
      this.services.log.warn(
        { session: this.id, protocol: 'pop3', messageId: entry.id, announced: read.announced, actual: read.message.length },
        'pop3 message size differs from the size announced',
      );
    }
    return read.message;
  }

  private recordRetrieval(entry: MaildropEntry): void {
    if (this.retrieved.has(entry.id)) return;
    this.retrieved.add(entry.id);
    // Written in batches with other sessions' (retrievals.ts), and when this session ends.
    this.services.retrievals.record(entry.id);
  }

  private dele(args: string[]): void {
    if (args.length !== 1) throw new Reply('-ERR DELE needs one message number\r\n');
    const entry = this.message(args[0]);
    entry.deleted = true;
    this.send(`+OK Message ${entry.number} marked deleted\r\n`);
  }

  private rset(args: string[]): void {
    noArguments(args, 'RSET');
    const maildrop = this.requireMaildrop();
    const restored = maildrop.undelete();
    this.send(`+OK ${restored} message${restored === 1 ? '' : 's'} unmarked; the maildrop has ${maildrop.count}\r\n`);
  }

  // ---------------------------------------------------------------------------------------------
  // End

  /** Closes the connection; a session not in UPDATE removes nothing (RFC 1939 §6). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.loginDeadline) clearTimeout(this.loginDeadline);
    const waiter = this.lineWaiter;
    this.lineWaiter = null;
    waiter?.(null);
    for (const done of [...this.drainWaiters]) done();
    this.queue.length = 0;
    this.socket.end();
    const socket = this.socket;
    setTimeout(() => socket.destroy(), 1000).unref();
    const recorded = this.retrieved.size > 0 ? this.services.retrievals.flush() : Promise.resolve();
    this.maildrop?.close();
    const finish = () => {
      if (this.lockedAccount !== null) this.services.locks.release(this.lockedAccount);
      this.lockedAccount = null;
      this.services.log.info(
        {
          event: 'connection',
          protocol: 'pop3',
          session: this.id,
          ip: this.remoteAddress,
          user: this.user?.account.address ?? null,
          tls: this.isSecure,
          retrieved: this.retrieved.size,
          deleted: this.deletedCount,
          commands: this.commands,
          ms: Date.now() - this.startedAt,
        },
        'pop3 connection closed',
      );
      this.onClosed(this);
      void recorded.finally(() => this.finishedResolve());
    };
    // A QUIT whose UPDATE is still running keeps the maildrop locked until it has finished.
    // The session is over for shutdown once its retrievals are recorded too (not waited for
    // by the lock: a client reconnecting at once must find its maildrop free).
    if (this.updating) void this.updating.finally(finish);
    else finish();
  }

  /** Server shutdown: an UPDATE in progress finishes; anything else ends without deleting. */
  shutdown(): Promise<void> {
    if (!this.closed && this.state !== 'update') this.send('-ERR [SYS/TEMP] Server shutting down; nothing was deleted\r\n');
    if (this.state !== 'update') this.close();
    return this.finished;
  }
}

function noArguments(args: string[], name: string): void {
  if (args.length > 0) throw new Reply(`-ERR ${name} takes no arguments\r\n`);
}

function decodeBase64(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new Reply('-ERR Invalid base64; authentication cancelled\r\n');
  return Buffer.from(text, 'base64');
}
