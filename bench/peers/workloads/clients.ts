// Minimal raw-socket protocol clients used against both servers: IMAP (one command at a time,
// after bench/imap-bench.ts), POP3 (after bench/pop3-bench.ts) and SMTP (PIPELINING of
// MAIL/RCPT/DATA when the server offers it).

import net from 'node:net';

function connectSocket(host: string, port: number, localAddress: string | undefined, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}

// ---------------------------------------------------------------------------------------------
// IMAP

export interface ImapReply {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line after the status. */
  text: string;
  /** First line of each untagged response (up to its first literal). */
  untagged: string[];
  /** Number of untagged responses. */
  untaggedCount: number;
  /** Octets of literals in the responses. */
  literalBytes: number;
  /** Send to tagged reply. */
  ms: number;
}

export class ImapClient {
  private buffer = Buffer.alloc(0);
  private literalLeft = 0;
  private responseStart: string | null = null;
  private untagged: string[] = [];
  private untaggedCount = 0;
  private literalBytes = 0;
  private waiter: { tag: string; resolve: (r: { status: ImapReply['status']; text: string }) => void; reject: (e: Error) => void } | null = null;
  private continuation: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private greeted: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private tagCounter = 0;
  private closedError: Error | null = null;
  /** Whether untagged responses are kept for the reply (off for huge FETCH replies). */
  keepUntagged = true;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error) => {
      if (this.closedError) return;
      this.closedError = err;
      this.waiter?.reject(err);
      this.continuation?.reject(err);
      this.greeted?.reject(err);
      this.waiter = null;
      this.continuation = null;
      this.greeted = null;
    };
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  /** Connects and waits for the greeting. */
  static async connect(host: string, port: number, localAddress?: string, timeoutMs = 60_000): Promise<ImapClient> {
    const socket = await connectSocket(host, port, localAddress, timeoutMs);
    const client = new ImapClient(socket);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('no IMAP greeting'));
      }, timeoutMs);
      client.greeted = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    return client;
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private onData(chunk: Buffer): void {
    const buf = this.buffer.length > 0 ? Buffer.concat([this.buffer, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(buf.length - pos, this.literalLeft);
        pos += take;
        this.literalLeft -= take;
        this.literalBytes += take;
        if (this.literalLeft > 0) break;
        continue;
      }
      const eol = buf.indexOf('\r\n', pos, 'latin1');
      if (eol < 0) break;
      const line = buf.toString('latin1', pos, eol);
      pos = eol + 2;
      if (this.responseStart === null) this.responseStart = line;
      if (line.endsWith('}')) {
        const literal = /\{(\d+)\+?\}$/.exec(line);
        if (literal) {
          this.literalLeft = Number(literal[1]);
          continue;
        }
      }
      const response = this.responseStart;
      this.responseStart = null;
      this.onResponse(response);
    }
    this.buffer = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
  }

  private onResponse(line: string): void {
    if (line.startsWith('+')) {
      const waiter = this.continuation;
      this.continuation = null;
      waiter?.resolve();
      return;
    }
    if (line.startsWith('* ')) {
      if (this.greeted) {
        const greeted = this.greeted;
        this.greeted = null;
        if (/^\* (OK|PREAUTH) /i.test(line)) greeted.resolve();
        else greeted.reject(new Error(`greeting: ${line}`));
        return;
      }
      this.untaggedCount++;
      if (this.keepUntagged) this.untagged.push(line);
      return;
    }
    const space = line.indexOf(' ');
    const tag = line.slice(0, space);
    if (this.waiter && tag === this.waiter.tag) {
      const rest = line.slice(space + 1);
      const sp = rest.indexOf(' ');
      const word = (sp < 0 ? rest : rest.slice(0, sp)).toUpperCase();
      const status = word === 'OK' || word === 'NO' || word === 'BAD' ? word : 'BAD';
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ status, text: sp < 0 ? '' : rest.slice(sp + 1) });
    }
  }

  private waitContinuation(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => (this.continuation = { resolve, reject }));
  }

  /** Sends one command and reads until its tagged reply. Buffer parts go as synchronizing literals. */
  async command(...parts: Array<string | Buffer>): Promise<ImapReply> {
    if (this.closedError) throw this.closedError;
    const tag = `A${++this.tagCounter}`;
    this.untagged = [];
    this.untaggedCount = 0;
    this.literalBytes = 0;
    const started = process.hrtime.bigint();
    const done = new Promise<{ status: ImapReply['status']; text: string }>((resolve, reject) => (this.waiter = { tag, resolve, reject }));
    done.catch(() => undefined);
    let text = `${tag} `;
    for (const part of parts) {
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      const ready = this.waitContinuation();
      this.socket.write(`${text}{${part.length}}\r\n`);
      await Promise.race([ready, done.then((r) => Promise.reject(new Error(`${r.status} ${r.text}`)))]);
      this.socket.write(part);
      text = '';
    }
    this.socket.write(`${text}\r\n`);
    const { status, text: replyText } = await done;
    return {
      tag,
      status,
      text: replyText,
      untagged: this.untagged,
      untaggedCount: this.untaggedCount,
      literalBytes: this.literalBytes,
      ms: Number(process.hrtime.bigint() - started) / 1e6,
    };
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

export function expectOk(reply: ImapReply, what: string): ImapReply {
  if (reply.status !== 'OK') throw new Error(`${what}: ${reply.status} ${reply.text}`);
  return reply;
}

export function existsOf(reply: ImapReply): number {
  for (const line of reply.untagged) {
    const m = /^\* (\d+) EXISTS$/i.exec(line);
    if (m) return Number(m[1]);
  }
  return -1;
}

export function searchCount(reply: ImapReply): number {
  let count = 0;
  for (const line of reply.untagged) {
    if (/^\* SEARCH\b/i.test(line)) count += line.trim().split(' ').length - 2;
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// POP3

const LF = 0x0a;
const DOT = 0x2e;

export class Pop3Client {
  private pending: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private closed = false;
  private error: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.pending = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  static async connect(host: string, port: number): Promise<Pop3Client> {
    return new Pop3Client(await connectSocket(host, port, undefined, 60_000));
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async nextLine(): Promise<Buffer> {
    for (;;) {
      const end = this.pending.indexOf(LF);
      if (end >= 0) {
        const line = this.pending.subarray(0, end + 1);
        this.pending = this.pending.subarray(end + 1);
        return line;
      }
      if (this.error) throw this.error;
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  async reply(): Promise<string> {
    const line = (await this.nextLine()).toString('latin1').replace(/\r?\n$/, '');
    if (!line.startsWith('+OK')) throw new Error(`unexpected reply: ${line}`);
    return line;
  }

  async command(line: string): Promise<string> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  /** A multi-line reply: the first line, the unstuffed octets (CRLFs counted), and optionally the lines. */
  async multi(line: string, keepLines = false): Promise<{ first: string; octets: number; lines: string[] }> {
    this.socket.write(line + '\r\n');
    const first = await this.reply();
    let octets = 0;
    const lines: string[] = [];
    for (;;) {
      const data = await this.nextLine();
      if (data.length < 2 || data[data.length - 2] !== 0x0d) throw new Error(`a line without CRLF in the reply to ${line}`);
      if (data[0] === DOT) {
        if (data.length === 3) break;
        octets += data.length - 1;
        if (keepLines) lines.push(data.subarray(1, data.length - 2).toString('latin1'));
      } else {
        octets += data.length;
        if (keepLines) lines.push(data.subarray(0, data.length - 2).toString('latin1'));
      }
    }
    return { first, octets, lines };
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// SMTP

export class SmtpClient {
  private pending = '';
  private waiters: Array<{ resolve: (reply: { code: number; text: string }) => void; reject: (e: Error) => void }> = [];
  private lines: string[] = [];
  private closedError: Error | null = null;
  pipelining = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => this.onData(d));
    const fail = (err: Error) => {
      if (this.closedError) return;
      this.closedError = err;
      for (const w of this.waiters.splice(0)) w.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  private onData(d: string): void {
    this.pending += d;
    for (;;) {
      const eol = this.pending.indexOf('\r\n');
      if (eol < 0) break;
      const line = this.pending.slice(0, eol);
      this.pending = this.pending.slice(eol + 2);
      this.lines.push(line);
      if (line.length >= 4 && line[3] === '-') continue;
      const text = this.lines.join('\n');
      this.lines = [];
      const waiter = this.waiters.shift();
      waiter?.resolve({ code: Number(line.slice(0, 3)), text });
    }
  }

  private reply(): Promise<{ code: number; text: string }> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  static async connect(host: string, port: number): Promise<SmtpClient> {
    const client = new SmtpClient(await connectSocket(host, port, undefined, 30_000));
    const greeting = await client.reply();
    if (greeting.code !== 220) throw new Error(`greeting: ${greeting.text}`);
    const ehlo = client.reply();
    client.socket.write('EHLO client.test\r\n');
    const reply = await ehlo;
    if (reply.code !== 250) throw new Error(`EHLO: ${reply.text}`);
    client.pipelining = /^250[ -]PIPELINING\b/im.test(reply.text);
    return client;
  }

  /** One message to one recipient; resolves on the 250 after the data, rejects on anything else. */
  async send(from: string, to: string, message: Buffer): Promise<void> {
    const mail = this.reply();
    const rcpt = this.reply();
    const data = this.reply();
    mail.catch(() => undefined);
    rcpt.catch(() => undefined);
    data.catch(() => undefined);
    const commands = [`MAIL FROM:<${from}> SIZE=${message.length}\r\n`, `RCPT TO:<${to}>\r\n`, 'DATA\r\n'];
    if (this.pipelining) this.socket.write(commands.join(''));
    let r = await (this.pipelining ? mail : (this.socket.write(commands[0]!), mail));
    if (r.code !== 250) throw new Error(`MAIL: ${r.text}`);
    if (!this.pipelining) this.socket.write(commands[1]!);
    r = await rcpt;
    if (r.code !== 250) throw new Error(`RCPT: ${r.text}`);
    if (!this.pipelining) this.socket.write(commands[2]!);
    r = await data;
    if (r.code !== 354) throw new Error(`DATA: ${r.text}`);
    const end = this.reply();
    this.socket.write(dotStuff(message));
    this.socket.write('.\r\n');
    r = await end;
    if (r.code !== 250) throw new Error(`end of data: ${r.text}`);
  }

  async quit(): Promise<void> {
    try {
      const bye = this.reply();
      this.socket.write('QUIT\r\n');
      await bye;
    } catch {
      // closing anyway
    }
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffing (RFC 5321 §4.5.2); the message ends with CRLF. */
function dotStuff(message: Buffer): Buffer {
  if (message[0] !== DOT && message.indexOf('\n.') < 0) return message;
  return Buffer.from(message.toString('latin1').replace(/^\./, '..').replace(/\n\./g, '\n..'), 'latin1');
}
