// The POP3 server with a real client (Python's poplib) and exact transcripts over a raw socket.
// Mail arrives over SMTP; what POP3 sends is checked against what IMAP returns for the same
// message, and deletions against what an IMAP session selected on INBOX sees.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import Database from 'better-sqlite3';
import { ImapFlow } from 'imapflow';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, python, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const PASSWORD = 'password1';
const SPACED_PASSWORD = 'correct horse battery staple';
/** Longer than RFC 1939's 40 characters per argument (RFC 2449 §4 allows it). */
const LONG_ADDRESS = 'taro.yamada.sales-department@example.test';
const SERVE_ARGS = ['--smtp', '127.0.0.1:0', '--pop3', '127.0.0.1:0', '--imap', '127.0.0.1:0'];

// -------------------------------------------------------------------------------------------
// A raw line client: exact bytes out, CRLF lines (or a whole multi-line answer) in.

class RawLines {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  private readonly onData = (d: Buffer): void => {
    this.buf = Buffer.concat([this.buf, d]);
    this.wake();
  };

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.on('data', this.onData);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  static connect(port: number, secure = false): Promise<RawLines> {
    return new Promise((resolve, reject) => {
      const socket = secure
        ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => resolve(new RawLines(socket)))
        : net.connect(port, '127.0.0.1', () => resolve(new RawLines(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  private async waitData(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Waits until `find` locates an end in the buffer; returns the bytes up to it and consumes them with `skip` more. */
  private async take(find: (buf: Buffer) => number, skip: number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = find(this.buf);
      if (end >= 0) {
        const out = this.buf.subarray(0, end);
        this.buf = this.buf.subarray(end + skip);
        return out;
      }
      if (this.closed) throw new Error(`connection closed; pending ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      if (Date.now() >= deadline) throw new Error(`nothing within ${timeoutMs} ms; pending ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await this.waitData(deadline);
    }
  }

  /** The next line, without its CRLF. */
  async line(timeoutMs = 15_000): Promise<string> {
    return (await this.take((b) => b.indexOf('\r\n'), 2, timeoutMs)).toString('latin1');
  }

  /** Sends one line and returns the one-line answer. */
  async command(text: string): Promise<string> {
    this.write(text + '\r\n');
    return this.line();
  }

  /** The body of a multi-line answer (after its first line) as sent: still dot-stuffed, without ".\r\n". */
  async body(timeoutMs = 15_000): Promise<Buffer> {
    return Buffer.from(
      await this.take(
        (b) => {
          if (b.subarray(0, 3).toString('latin1') === '.\r\n') return 0;
          const i = b.indexOf('\r\n.\r\n');
          return i < 0 ? -1 : i + 2;
        },
        3,
        timeoutMs,
      ),
    );
  }

  /** Sends a command that answers with several lines: the first line and the lines that follow. */
  async multi(text: string): Promise<{ status: string; lines: string[] }> {
    this.write(text + '\r\n');
    const status = await this.line();
    if (!status.startsWith('+OK')) return { status, lines: [] };
    const body = (await this.body()).toString('latin1');
    return { status, lines: body === '' ? [] : body.slice(0, -2).split('\r\n') };
  }

  async startTls(): Promise<void> {
    const raw = this.socket as net.Socket;
    raw.off('data', this.onData);
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
  }

  /** Lines already received, without waiting. */
  pendingText(): string {
    return this.buf.toString('latin1');
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.waitData(deadline);
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** RFC 1939 §3: undoes the byte-stuffing of a multi-line answer's body. */
function unstuff(body: Buffer): Buffer {
  const text = body.toString('latin1');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1'), 'latin1');
}

async function pop3Login(port: number, user: string, password = PASSWORD, secure = false): Promise<RawLines> {
  const c = await RawLines.connect(port, secure);
  assert.match(await c.line(), /^\+OK /);
  assert.match(await c.command(`USER ${user}`), /^\+OK/);
  const reply = await c.command(`PASS ${password}`);
  assert.match(reply, /^\+OK /, `login of ${user}`);
  return c;
}

// -------------------------------------------------------------------------------------------
// Mail and the other views of it.

async function deliver(port: number, to: string, data: string | Buffer): Promise<void> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, name: 'client.test', ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => {
    conn.send({ from: 'alice@sender.example', to: [to] }, data, (err) => (err ? reject(err) : resolve()));
  });
  conn.quit();
}

function message(to: string, subject: string, body = `Hello,\r\nthis is ${subject}.\r\n`): string {
  const id = crypto.randomBytes(6).toString('hex');
  return `From: Alice <alice@sender.example>\r\nTo: ${to}\r\nSubject: ${subject}\r\nMessage-ID: <${id}@sender.example>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\n${body}`;
}

/** Lines starting with dots, a line that is only a dot, and a line with a dot elsewhere. */
const DOTTED_BODY = '.leading dot\r\n..two dots\r\n.\r\nmiddle line\r\n. dot space\r\n...\r\nend.\r\n';

function flowClient(port: number, user: string): ImapFlow {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false }, disableAutoIdle: true });
  client.on('error', () => undefined);
  return client;
}

/** What IMAP returns for every message of INBOX: BODY[] bytes, UIDs, UIDVALIDITY. */
async function imapView(port: number, user: string): Promise<{ uidValidity: string; messages: Array<{ uid: number; source: Buffer; size: number }> }> {
  const client = flowClient(port, user);
  await client.connect();
  try {
    const box = await client.mailboxOpen('INBOX', { readOnly: true });
    const messages: Array<{ uid: number; source: Buffer; size: number }> = [];
    if (box.exists > 0) {
      for await (const m of client.fetch('1:*', { uid: true, source: true, size: true })) messages.push({ uid: m.uid, source: m.source!, size: m.size! });
    }
    return { uidValidity: String(box.uidValidity), messages };
  } finally {
    await client.logout().catch(() => undefined);
  }
}

/** pop_retrieved_at of a user's INBOX messages, by UID, read straight from the database. */
function retrievedAt(dir: string, user: string): Map<number, number | null> {
  const db = new Database(path.join(dir, 'yubin.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db
      .prepare(
        `SELECT m.uid AS uid, m.pop_retrieved_at AS at FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
           JOIN accounts a ON a.id = b.account_id WHERE a.address = ? AND b.name = 'INBOX' ORDER BY m.uid`,
      )
      .all(user) as Array<{ uid: number; at: number | null }>;
    return new Map(rows.map((r) => [r.uid, r.at]));
  } finally {
    db.close();
  }
}

async function eventually<T>(probe: () => T | Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value instanceof Map ? [...value] : value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The JSON log lines the server wrote for POP3 connections. */
function pop3Logs(server: RunningYubin): Array<Record<string, unknown>> {
  return server
    .stderr()
    .split('\n')
    .filter((l) => l.includes('"protocol":"pop3"') && l.includes('"event":"connection"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// -------------------------------------------------------------------------------------------
// Python poplib.

const PY_PRELUDE = String.raw`
import base64, json, poplib, ssl, sys
def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c
def b64(lines):
    return base64.b64encode(b''.join(l + b'\r\n' for l in lines)).decode()
`;

const PY_SESSION = PY_PRELUDE + String.raw`
port, user, pw, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
out = {}
if mode == 'ssl':
    p = poplib.POP3_SSL('127.0.0.1', port, context=ctx(), timeout=30)
else:
    p = poplib.POP3('127.0.0.1', port, timeout=30)
out['welcome'] = p.getwelcome().decode()
out['capa'] = p.capa()
if mode == 'stls':
    out['stls'] = p.stls(context=ctx()).decode()
    out['capa_tls'] = p.capa()
out['user'] = p.user(user).decode()
out['pass'] = p.pass_(pw).decode()
out['stat'] = list(p.stat())
resp, lines, octets = p.list()
out['list'] = [l.decode() for l in lines]
resp, lines, octets = p.uidl()
out['uidl'] = [l.decode() for l in lines]
out['retr'] = []
for i in range(1, out['stat'][0] + 1):
    resp, lines, octets = p.retr(i)
    out['retr'].append({'resp': resp.decode(), 'b64': b64(lines), 'octets': octets})
if out['stat'][0] > 0:
    resp, lines, octets = p.top(1, 0)
    out['top0'] = b64(lines)
    resp, lines, octets = p.top(1, 2)
    out['top2'] = b64(lines)
if mode == 'dele':
    out['dele'] = p.dele(1).decode()
out['quit'] = p.quit().decode()
print(json.dumps(out))
`;

function runPython(script: string, args: string[]): Record<string, unknown> {
  const r = python(script, args);
  assert.equal(r.status, 0, `python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const b64 = (s: unknown) => Buffer.from(String(s), 'base64');

// -------------------------------------------------------------------------------------------

describe('POP3 server', () => {
  const dir = makeDataDir('yubin-pop3-');
  let server: RunningYubin;
  const ports = () => server.ports as { smtp: number; pop3: number; imap: number };
  const USERS = ['bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'kim'].map((u) => `${u}@example.test`);

  before(async () => {
    cliOk(dir, ['domain', 'add', 'example.test']);
    for (const u of USERS) cliOk(dir, ['user', 'add', u, '--password', PASSWORD]);
    cliOk(dir, ['user', 'add', 'spaced@example.test', '--password', SPACED_PASSWORD]);
    cliOk(dir, ['user', 'add', LONG_ADDRESS, '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = 0\n');
    server = await startYubin(dir, SERVE_ARGS);
  });

  after(async () => {
    await server?.stop();
  });

  it('greets, and CAPA lists the RFC 2449 capabilities (USER and SASL on loopback, STLS until TLS)', async () => {
    const c = await RawLines.connect(ports().pop3);
    try {
      assert.match(await c.line(), /^\+OK Yubin POP3 server ready$/);
      const capa = await c.multi('CAPA');
      assert.match(capa.status, /^\+OK/);
      assert.deepEqual(capa.lines, [
        'TOP',
        'UIDL',
        'USER',
        'SASL PLAIN LOGIN',
        'RESP-CODES',
        'AUTH-RESP-CODE',
        'PIPELINING',
        'EXPIRE NEVER',
        'LOGIN-DELAY 0',
        'IMPLEMENTATION Yubin',
        'STLS',
      ]);
      assert.equal(await c.command('USER bob@example.test'), '+OK Send PASS');
      assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK Logged in; 0 messages/);
      const after = await c.multi('CAPA');
      assert.deepEqual(after.lines, ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'EXPIRE NEVER', 'LOGIN-DELAY 0', 'IMPLEMENTATION Yubin']);
      assert.match(await c.command('STAT'), /^\+OK 0 0$/);
      assert.deepEqual(await c.multi('LIST'), { status: '+OK 0 messages (0 octets)', lines: [] });
      assert.match(await c.command('QUIT'), /^\+OK .*signing off/);
      assert.equal(await c.waitClosed(), true);
    } finally {
      c.close();
    }
  });

  it('poplib: USER/PASS, STAT, LIST, UIDL, RETR, TOP, QUIT; sizes are the octets RETR sends; bytes equal IMAP BODY[]', async () => {
    const bob = 'bob@example.test';
    await deliver(ports().smtp, bob, message(bob, 'First'));
    await deliver(ports().smtp, bob, message(bob, 'Dots', DOTTED_BODY));
    await deliver(ports().smtp, bob, message(bob, 'Third', 'one\r\ntwo\r\nthree\r\nfour\r\n'));
    const imap = await imapView(ports().imap, bob);
    assert.equal(imap.messages.length, 3);

    const out = runPython(PY_SESSION, [String(ports().pop3), bob, PASSWORD, 'plain']);
    assert.match(String(out.welcome), /^\+OK/);
    assert.ok('UIDL' in (out.capa as object) && 'TOP' in (out.capa as object));
    assert.match(String(out.pass), /^\+OK Logged in; 3 messages/);
    const total = imap.messages.reduce((sum, m) => sum + m.source.length, 0);
    assert.deepEqual(out.stat, [3, total]);
    assert.deepEqual(
      out.list,
      imap.messages.map((m, i) => `${i + 1} ${m.source.length}`),
    );
    assert.deepEqual(
      out.uidl,
      imap.messages.map((m, i) => `${i + 1} ${imap.uidValidity}.${m.uid}`),
    );
    const retr = out.retr as Array<{ resp: string; b64: string; octets: number }>;
    retr.forEach((r, i) => {
      const expected = imap.messages[i]!.source;
      assert.equal(r.resp, `+OK ${expected.length} octets`);
      assert.deepEqual(b64(r.b64), expected, `message ${i + 1}`);
      assert.equal(r.octets, expected.length);
      assert.equal(imap.messages[i]!.size, expected.length, 'RFC822.SIZE agrees');
    });
    const first = imap.messages[0]!.source.toString('latin1');
    const headerEnd = first.indexOf('\r\n\r\n') + 4;
    assert.equal(b64(out.top0).toString('latin1'), first.slice(0, headerEnd));
    assert.equal(b64(out.top2).toString('latin1'), first.slice(0, headerEnd) + 'Hello,\r\nthis is First.\r\n');
    assert.match(String(out.quit), /^\+OK .*\(3 messages left\)/);
  });

  it('RETR dot-stuffs lines that start with "." on the wire; unstuffed, the bytes are IMAP BODY[]', async () => {
    const bob = 'bob@example.test';
    const imap = await imapView(ports().imap, bob);
    const dotted = imap.messages[1]!.source;
    assert.ok(dotted.toString('latin1').endsWith(DOTTED_BODY), 'the stored message has the dotted lines, unstuffed');
    const c = await pop3Login(ports().pop3, bob);
    try {
      assert.equal(await c.command('LIST 2'), `+OK 2 ${dotted.length}`);
      c.write('RETR 2\r\n');
      assert.equal(await c.line(), `+OK ${dotted.length} octets`);
      const wire = await c.body();
      const text = wire.toString('latin1');
      assert.ok(text.endsWith('\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nmiddle line\r\n.. dot space\r\n....\r\nend.\r\n'), JSON.stringify(text.slice(-120)));
      assert.deepEqual(unstuff(wire), dotted);
      assert.equal(wire.length, dotted.length + 5, 'five lines were stuffed');
      assert.equal(await c.command('NOOP'), '+OK');
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
  });

  it('RETR and TOP of the whole message record the first retrieval; TOP of part of it does not', async () => {
    const bob = 'bob@example.test';
    const c = await pop3Login(ports().pop3, bob);
    try {
      // The poplib session retrieved all three (its TOP 1 0 came after and changed nothing).
      const before = await eventually(() => retrievedAt(dir, bob), (m) => m.size === 3 && [...m.values()].every((at) => typeof at === 'number'), 'RETR marks');
      const firstDates = [...before.values()];
      c.write('RETR 1\r\n');
      assert.match(await c.line(), /^\+OK/);
      await c.body();
      assert.match(await c.command('QUIT'), /^\+OK/);
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual([...retrievedAt(dir, bob).values()], firstDates, 'a second retrieval keeps the first date');
    } finally {
      c.close();
    }

    const kim = 'kim@example.test';
    await deliver(ports().smtp, kim, message(kim, 'Top', 'a\r\nb\r\n'));
    await deliver(ports().smtp, kim, message(kim, 'Whole', 'a\r\nb\r\n'));
    const k = await pop3Login(ports().pop3, kim);
    try {
      k.write('TOP 1 1\r\n');
      assert.match(await k.line(), /^\+OK/);
      assert.match((await k.body()).toString('latin1'), /\r\n\r\na\r\n$/);
      k.write('TOP 2 2\r\n');
      assert.match(await k.line(), /^\+OK/);
      assert.match((await k.body()).toString('latin1'), /\r\n\r\na\r\nb\r\n$/);
      const at = await eventually(() => retrievedAt(dir, kim), (m) => [...m.values()][1] !== null, 'TOP of the whole message marks it');
      assert.equal([...at.values()][0], null, 'TOP of part of a message does not mark it');
      assert.ok(Math.abs([...at.values()][1]! - Date.now()) < 60_000);
      assert.match(await k.command('QUIT'), /^\+OK/);
    } finally {
      k.close();
    }
  });

  it('UIDL is UIDVALIDITY.UID of INBOX, the same in two sessions and after a server restart', async () => {
    const bob = 'bob@example.test';
    const uidl = async () => {
      const c = await pop3Login(ports().pop3, bob);
      try {
        const all = await c.multi('UIDL');
        assert.match(all.status, /^\+OK/);
        const one = await c.command('UIDL 2');
        assert.equal(one, `+OK ${all.lines[1]}`);
        assert.match(await c.command('QUIT'), /^\+OK/);
        return all.lines;
      } finally {
        c.close();
      }
    };
    const first = await uidl();
    const second = await uidl();
    assert.deepEqual(second, first);
    const imap = await imapView(ports().imap, bob);
    assert.deepEqual(
      first,
      imap.messages.map((m, i) => `${i + 1} ${imap.uidValidity}.${m.uid}`),
    );
    for (const line of first) assert.match(line.split(' ')[1]!, /^[\x21-\x7e]{1,70}$/, 'RFC 1939 §7 unique-id syntax');

    assert.equal(await server.stop(), 0);
    server = await startYubin(dir, SERVE_ARGS);
    assert.deepEqual(await uidl(), first, 'after a restart');
  });

  it('DELE marks, QUIT removes; an IMAP session selected on INBOX sees EXPUNGE at its next NOOP', async () => {
    const carol = 'carol@example.test';
    for (const s of ['one', 'two', 'three']) await deliver(ports().smtp, carol, message(carol, s));
    const imap = await RawLines.connect(ports().imap);
    const c = await pop3Login(ports().pop3, carol);
    try {
      assert.match(await imap.line(), /^\* OK/);
      assert.match(await imap.command(`a1 LOGIN ${carol} ${PASSWORD}`), /^a1 OK/);
      imap.write('a2 SELECT INBOX\r\n');
      let line: string;
      do line = await imap.line();
      while (!line.startsWith('a2 '));
      assert.match(line, /^a2 OK/);

      const sizes = (await c.multi('LIST')).lines.map((l) => Number(l.split(' ')[1]));
      assert.equal(await c.command('DELE 2'), '+OK Message 2 marked deleted');
      assert.match(await c.command('DELE 2'), /^-ERR Message 2 is marked deleted/);
      assert.match(await c.command('RETR 2'), /^-ERR Message 2 is marked deleted/);
      assert.match(await c.command('TOP 2 0'), /^-ERR Message 2 is marked deleted/);
      assert.match(await c.command('LIST 2'), /^-ERR/);
      assert.match(await c.command('UIDL 2'), /^-ERR/);
      assert.equal(await c.command('STAT'), `+OK 2 ${sizes[0]! + sizes[2]!}`);
      assert.deepEqual((await c.multi('LIST')).lines, [`1 ${sizes[0]}`, `3 ${sizes[2]}`], 'numbers do not shift');
      assert.equal((await c.multi('UIDL')).lines.length, 2);
      assert.match(await c.command('RETR 4'), /^-ERR No such message/);

      // Not yet removed: IMAP sees nothing before QUIT.
      assert.match(await imap.command('a3 NOOP'), /^a3 OK/);
      assert.match(await c.command('QUIT'), /^\+OK .*\(2 messages left\)/);
      assert.equal(await c.waitClosed(), true);

      imap.write('a4 NOOP\r\n');
      const untagged: string[] = [];
      do {
        line = await imap.line();
        untagged.push(line);
      } while (!line.startsWith('a4 '));
      // (an untagged QUOTA with the new usage may come too, RFC 9208)
      assert.deepEqual(
        untagged.filter((l) => l.startsWith('* ') && !l.startsWith('* QUOTA ')),
        ['* 2 EXPUNGE'],
      );
      assert.match(untagged.at(-1)!, /^a4 OK/);
      assert.match(await imap.command('a5 LOGOUT'), /^\* BYE/);

      const view = await imapView(ports().imap, carol);
      assert.deepEqual(
        view.messages.map((m) => /Subject: (\w+)/.exec(m.source.toString('latin1'))![1]),
        ['one', 'three'],
      );
      const d = await pop3Login(ports().pop3, carol);
      assert.equal(await d.command('STAT'), `+OK 2 ${sizes[0]! + sizes[2]!}`);
      assert.match(await d.command('QUIT'), /^\+OK/);
      d.close();
      const log = await eventually(
        () => pop3Logs(server).filter((l) => l.user === carol),
        (l) => l.some((e) => e.deleted === 1),
        'the log line of the session that deleted',
      );
      const line1 = log.find((e) => e.deleted === 1)!;
      assert.equal(line1.ip, '127.0.0.1');
      assert.equal(line1.retrieved, 0);
    } finally {
      c.close();
      imap.close();
    }
  });

  it('poplib DELE then QUIT removes the message for good', () => {
    const out = runPython(PY_SESSION, [String(ports().pop3), 'carol@example.test', PASSWORD, 'dele']);
    assert.equal(out.dele, '+OK Message 1 marked deleted');
    assert.match(String(out.quit), /\(1 message left\)/);
    const again = runPython(PY_SESSION, [String(ports().pop3), 'carol@example.test', PASSWORD, 'plain']);
    assert.equal((again.stat as number[])[0], 1);
    assert.match(b64((again.retr as Array<{ b64: string }>)[0]!.b64).toString('latin1'), /Subject: three/);
  });

  it('RSET unmarks; QUIT after RSET removes nothing', async () => {
    const dave = 'dave@example.test';
    for (const s of ['a', 'b']) await deliver(ports().smtp, dave, message(dave, s));
    const c = await pop3Login(ports().pop3, dave);
    try {
      const stat = await c.command('STAT');
      assert.match(await c.command('DELE 1'), /^\+OK/);
      assert.match(await c.command('DELE 2'), /^\+OK/);
      assert.equal(await c.command('STAT'), '+OK 0 0');
      assert.equal(await c.command('RSET'), '+OK 2 messages unmarked; the maildrop has 2');
      assert.equal(await c.command('STAT'), stat);
      c.write('RETR 1\r\n');
      assert.match(await c.line(), /^\+OK/);
      await c.body();
      assert.match(await c.command('QUIT'), /\(2 messages left\)/);
    } finally {
      c.close();
    }
    assert.equal((await imapView(ports().imap, dave)).messages.length, 2);
  });

  it('a dropped connection after DELE deletes nothing, and frees the maildrop', async () => {
    const dave = 'dave@example.test';
    const c = await pop3Login(ports().pop3, dave);
    assert.match(await c.command('DELE 1'), /^\+OK/);
    assert.match(await c.command('DELE 2'), /^\+OK/);
    c.close();
    const d = await eventually(
      async () => {
        const s = await RawLines.connect(ports().pop3);
        await s.line();
        await s.command(`USER ${dave}`);
        const reply = await s.command(`PASS ${PASSWORD}`);
        if (!reply.startsWith('+OK')) s.close();
        return { s, reply };
      },
      (r) => r.reply.startsWith('+OK'),
      'the maildrop is free again',
    );
    try {
      assert.match(d.reply, /2 messages/);
      assert.match(await d.s.command('STAT'), /^\+OK 2 /);
      assert.match(await d.s.command('QUIT'), /^\+OK/);
    } finally {
      d.s.close();
    }
    assert.equal((await imapView(ports().imap, dave)).messages.length, 2);
  });

  it('a second session on the same maildrop gets -ERR [IN-USE] until the first ends', async () => {
    const erin = 'erin@example.test';
    await deliver(ports().smtp, erin, message(erin, 'locked'));
    const first = await pop3Login(ports().pop3, erin);
    const second = await RawLines.connect(ports().pop3);
    try {
      await second.line();
      assert.match(await second.command(`USER ${erin}`), /^\+OK/);
      assert.match(await second.command(`PASS ${PASSWORD}`), /^-ERR \[IN-USE\] /);
      assert.match(await second.command('STAT'), /^-ERR Log in first/, 'still in AUTHORIZATION');
      assert.match(await second.command(`AUTH PLAIN ${Buffer.from(`\0${erin}\0${PASSWORD}`).toString('base64')}`), /^-ERR \[IN-USE\] /);
      // Another account is not affected.
      const other = await pop3Login(ports().pop3, 'frank@example.test');
      assert.match(await other.command('QUIT'), /^\+OK/);
      other.close();
      assert.match(await first.command('QUIT'), /^\+OK/);
      assert.match(await second.command(`USER ${erin}`), /^\+OK/);
      assert.match(await second.command(`PASS ${PASSWORD}`), /^\+OK Logged in; 1 message/);
      assert.match(await second.command('QUIT'), /^\+OK/);
    } finally {
      first.close();
      second.close();
    }
  });

  it('a wrong password gets -ERR [AUTH]; the session stays usable; PASS takes the rest of the line', async () => {
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      assert.match(await c.command('PASS whatever'), /^-ERR Send USER first/);
      assert.match(await c.command('USER erin@example.test'), /^\+OK/);
      assert.match(await c.command('PASS wrong password'), /^-ERR \[AUTH\] /);
      assert.match(await c.command(`PASS ${PASSWORD}`), /^-ERR Send USER first/, 'USER again after a failure');
      assert.match(await c.command('USER nobody@example.test'), /^\+OK/, 'USER does not tell whether the user exists');
      assert.match(await c.command('PASS password1'), /^-ERR \[AUTH\] /);
      assert.match(await c.command('USER spaced@example.test'), /^\+OK/);
      assert.match(await c.command('PASS correct horse battery'), /^-ERR \[AUTH\] /);
      assert.match(await c.command('USER spaced@example.test'), /^\+OK/);
      assert.match(await c.command(`PASS ${SPACED_PASSWORD}`), /^\+OK Logged in/);
      assert.match(await c.command('USER spaced@example.test'), /^-ERR Already logged in/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
    assert.ok(LONG_ADDRESS.length > 40);
    const long = await pop3Login(ports().pop3, LONG_ADDRESS);
    assert.match(await long.command('QUIT'), /^\+OK/);
    long.close();
    assert.ok(server.stderr().includes('"event":"auth-failure","protocol":"pop3"'));
  });

  it('AUTH PLAIN with an initial response, AUTH PLAIN and LOGIN with challenges, "*" cancels (RFC 5034)', async () => {
    const frank = 'frank@example.test';
    const plain = Buffer.from(`\0${frank}\0${PASSWORD}`).toString('base64');
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      assert.deepEqual(await c.multi('AUTH'), { status: '+OK', lines: ['PLAIN', 'LOGIN'] });
      assert.match(await c.command('AUTH CRAM-MD5'), /^-ERR Unsupported mechanism/);
      assert.equal(await c.command('AUTH PLAIN'), '+ ');
      assert.match(await c.command('*'), /^-ERR Authentication cancelled/);
      assert.equal(await c.command('AUTH LOGIN'), `+ ${Buffer.from('Username:').toString('base64')}`);
      assert.equal(await c.command(Buffer.from(frank).toString('base64')), `+ ${Buffer.from('Password:').toString('base64')}`);
      assert.match(await c.command(Buffer.from('nope').toString('base64')), /^-ERR \[AUTH\] /);
      assert.match(await c.command('AUTH PLAIN not*base64'), /^-ERR Invalid base64/);
      assert.match(await c.command(`AUTH PLAIN ${Buffer.from(`\0${frank}\0wrong`).toString('base64')}`), /^-ERR \[AUTH\] /);
      assert.match(await c.command(`AUTH PLAIN ${Buffer.from(`erin@example.test\0${frank}\0${PASSWORD}`).toString('base64')}`), /^-ERR \[AUTH\] /);
      assert.match(await c.command(`AUTH PLAIN ${plain}`), /^\+OK Logged in/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
    const d = await RawLines.connect(ports().pop3);
    try {
      await d.line();
      assert.equal(await d.command('AUTH PLAIN'), '+ ');
      assert.match(await d.command(plain), /^\+OK Logged in/);
      assert.match(await d.command('QUIT'), /^\+OK/);
    } finally {
      d.close();
    }
    const e = await RawLines.connect(ports().pop3);
    try {
      await e.line();
      assert.equal(await e.command(`AUTH LOGIN ${Buffer.from(frank).toString('base64')}`), `+ ${Buffer.from('Password:').toString('base64')}`);
      assert.match(await e.command(Buffer.from(PASSWORD).toString('base64')), /^\+OK Logged in/);
      assert.match(await e.command('QUIT'), /^\+OK/);
    } finally {
      e.close();
    }
  });

  it('STLS: TLS begins, what was pipelined after STLS is discarded, CAPA drops STLS; poplib stls() too', async () => {
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      // An injection attempt: USER after STLS in the same packet must not run inside TLS.
      c.write('STLS\r\nUSER frank@example.test\r\n');
      assert.equal(await c.line(), '+OK Begin TLS negotiation');
      await c.startTls();
      assert.match(await c.command(`PASS ${PASSWORD}`), /^-ERR Send USER first/, 'the pipelined USER was discarded');
      const capa = await c.multi('CAPA');
      assert.ok(!capa.lines.includes('STLS'));
      assert.ok(capa.lines.includes('USER'));
      assert.match(await c.command('STLS'), /^-ERR TLS is already active/);
      assert.match(await c.command('USER frank@example.test'), /^\+OK/);
      assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK Logged in/);
      assert.match(await c.command('STLS'), /^-ERR/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
    const out = runPython(PY_SESSION, [String(ports().pop3), 'frank@example.test', PASSWORD, 'stls']);
    assert.match(String(out.stls), /^\+OK/);
    assert.ok('STLS' in (out.capa as object) && !('STLS' in (out.capa_tls as object)));
    assert.match(String(out.pass), /^\+OK Logged in/);
  });

  it('pipelined commands in one write are answered in order (RFC 2449 PIPELINING)', async () => {
    const grace = 'grace@example.test';
    await deliver(ports().smtp, grace, message(grace, 'piped', DOTTED_BODY));
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      c.write(`USER ${grace}\r\nPASS ${PASSWORD}\r\nSTAT\r\nLIST\r\nUIDL 1\r\nRETR 1\r\nTOP 1 0\r\nXYZZ\r\nDELE 1\r\nRSET\r\nNOOP\r\nQUIT\r\n`);
      assert.match(await c.line(), /^\+OK Send PASS/);
      assert.match(await c.line(), /^\+OK Logged in; 1 message/);
      const stat = await c.line();
      const size = Number(stat.split(' ')[2]);
      assert.equal(stat, `+OK 1 ${size}`);
      assert.equal(await c.line(), `+OK 1 message (${size} octets)`);
      assert.equal((await c.body()).toString('latin1'), `1 ${size}\r\n`);
      assert.match(await c.line(), /^\+OK 1 \d+\.\d+$/);
      assert.equal(await c.line(), `+OK ${size} octets`);
      assert.equal(unstuff(await c.body()).length, size);
      assert.match(await c.line(), /^\+OK/);
      assert.match((await c.body()).toString('latin1'), /\r\n\r\n$/);
      assert.equal(await c.line(), '-ERR Unknown command XYZZ');
      assert.match(await c.line(), /^\+OK Message 1 marked deleted/);
      assert.match(await c.line(), /^\+OK 1 message unmarked/);
      assert.equal(await c.line(), '+OK');
      assert.match(await c.line(), /^\+OK .*signing off \(1 message left\)/);
      assert.equal(await c.waitClosed(), true);
    } finally {
      c.close();
    }
  });

  it('many pipelined commands and large answers the client reads late all arrive, in order', async () => {
    const heidi = 'heidi@example.test';
    const bigBody = Array.from({ length: 4000 }, (_, i) => `.line ${i} ${'x'.repeat(40)}`).join('\r\n') + '\r\n';
    await deliver(ports().smtp, heidi, message(heidi, 'big', bigBody));
    const c = await pop3Login(ports().pop3, heidi);
    try {
      const size = Number((await c.command('LIST 1')).split(' ')[2]);
      assert.ok(size > 180_000);
      c.write('NOOP\r\n'.repeat(300) + 'RETR 1\r\n'.repeat(30) + 'STAT\r\n');
      await new Promise((r) => setTimeout(r, 500)); // let the server run into a full socket
      for (let i = 0; i < 300; i++) assert.equal(await c.line(), '+OK', `NOOP ${i}`);
      for (let i = 0; i < 30; i++) {
        assert.equal(await c.line(), `+OK ${size} octets`);
        assert.equal(unstuff(await c.body()).length, size);
      }
      assert.equal(await c.line(), `+OK 1 ${size}`);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
  });

  it('garbage, bad arguments and unknown commands get -ERR; the session stays usable', async () => {
    const ivan = 'ivan@example.test';
    await deliver(ports().smtp, ivan, message(ivan, 'garbage'));
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      const before: Array<[string | Buffer, RegExp]> = [
        ['STAT', /^-ERR Log in first/],
        ['RETR 1', /^-ERR Log in first/],
        ['HELO there', /^-ERR Unknown command HELO/],
        ['GET / HTTP/1.1', /^-ERR Unknown command GET/],
        ['APOP ivan c4c9334bac560ecc979e58001b3e22fb', /^-ERR APOP is not supported/],
        ['', /^-ERR Empty command line/],
        [Buffer.from([0xff, 0xfe, 0x00, 0x01]), /^-ERR /],
        ['USER  ivan@example.test', /^-ERR Arguments are separated by single spaces/],
        [`USER ${'a'.repeat(256)}`, /^-ERR Argument too long \(at most 255 characters\)/],
        [`TOP ${'1'.repeat(41)} 1`, /^-ERR Argument too long \(at most 40 characters\)/],
        ['USER', /^-ERR USER needs one argument/],
        ['CAPA now', /^-ERR CAPA takes no arguments/],
        ['\t\t', /^-ERR /],
      ];
      for (const [line, re] of before) {
        c.write(Buffer.concat([typeof line === 'string' ? Buffer.from(line, 'latin1') : line, Buffer.from('\r\n')]));
        assert.match(await c.line(), re, JSON.stringify(line.toString()));
      }
      assert.match(await c.command(`USER ${ivan}`), /^\+OK/);
      assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK/);
      const after: Array<[string, RegExp]> = [
        ['RETR', /^-ERR RETR needs one message number/],
        ['RETR abc', /^-ERR Invalid message number/],
        ['RETR -1', /^-ERR Invalid message number/],
        ['RETR 0', /^-ERR Invalid message number/],
        ['RETR 2', /^-ERR No such message/],
        ['RETR 99999999999999999999', /^-ERR No such message/],
        ['RETR 1 2', /^-ERR RETR needs one message number/],
        ['TOP 1', /^-ERR TOP needs a message number and a number of lines/],
        ['TOP 1 x', /^-ERR Invalid number of lines/],
        ['LIST 1 2', /^-ERR LIST takes at most one message number/],
        ['DELE', /^-ERR DELE needs one message number/],
        ['STAT 1', /^-ERR STAT takes no arguments/],
        ['NOOP x', /^-ERR NOOP takes no arguments/],
        ['PASS x', /^-ERR Already logged in/],
        ['STLS', /^-ERR STLS is only allowed before logging in/],
        ['XTND XMIT', /^-ERR Unknown command XTND/],
        ['\x01\x02\x03', /^-ERR /],
        ['LIST 1\x00', /^-ERR /],
      ];
      for (const [line, re] of after) assert.match(await c.command(line), re, JSON.stringify(line));
      assert.equal(await c.command('NOOP'), '+OK');
      assert.match(await c.command('LIST 1'), /^\+OK 1 \d+$/);
      assert.match(await c.command('QUIT'), /\(1 message left\)/);
    } finally {
      c.close();
    }
  });

  it('an over-long line gets -ERR and the session goes on; a line without end beyond the hard limit closes it', async () => {
    const c = await RawLines.connect(ports().pop3);
    try {
      await c.line();
      assert.match(await c.command(`NOOP ${'x'.repeat(5000)}`), /^-ERR Line too long \(at most 4096 bytes\)/);
      assert.match(await c.command(`USER ${'u'.repeat(4091)}`), /^-ERR Argument too long/, 'a line of exactly 4096 bytes is read');
      assert.match(await c.command(`USER ${'u'.repeat(4092)}`), /^-ERR Line too long/);
      assert.match(await c.command('USER ivan@example.test'), /^\+OK/);
      assert.match(await c.command(`PASS ${PASSWORD}`), /^\+OK/);
      assert.match(await c.command('STAT'), /^\+OK 1 /);
      c.write('x'.repeat(70_000));
      assert.match(await c.line(), /^-ERR Line too long .*closing/);
      assert.equal(await c.waitClosed(), true);
    } finally {
      c.close();
    }
    // Nothing was deleted, and the maildrop is free again.
    const d = await eventually(
      async () => {
        const s = await RawLines.connect(ports().pop3);
        await s.line();
        await s.command('USER ivan@example.test');
        const reply = await s.command(`PASS ${PASSWORD}`);
        if (!reply.startsWith('+OK')) s.close();
        return { s, reply };
      },
      (r) => r.reply.startsWith('+OK'),
      'the maildrop is free again',
    );
    assert.match(d.reply, /1 message/);
    d.s.close();
  });

  it('a message stored with bare LFs (IMAP APPEND) is counted and sent with CRLF, at the size LIST gave', async () => {
    const judy = 'judy@example.test';
    const client = flowClient(ports().imap, judy);
    await client.connect();
    const raw = 'From: judy@example.test\nSubject: bare LF\n\nline 1\n.dotted\nlast line without end';
    try {
      await client.append('INBOX', Buffer.from(raw), []);
    } finally {
      await client.logout().catch(() => undefined);
    }
    const expected = raw.replace(/\n/g, '\r\n') + '\r\n';
    assert.notEqual(expected.length, raw.length);
    for (let session = 0; session < 2; session++) {
      const c = await pop3Login(ports().pop3, judy);
      try {
        assert.equal(await c.command('STAT'), `+OK 1 ${expected.length}`);
        assert.equal(await c.command('LIST 1'), `+OK 1 ${expected.length}`);
        c.write('RETR 1\r\n');
        assert.equal(await c.line(), `+OK ${expected.length} octets`);
        const wire = await c.body();
        assert.match(wire.toString('latin1'), /\r\n\.\.dotted\r\n/);
        assert.equal(unstuff(wire).toString('latin1'), expected);
        c.write('TOP 1 1\r\n');
        assert.match(await c.line(), /^\+OK/);
        assert.equal(unstuff(await c.body()).toString('latin1'), 'From: judy@example.test\r\nSubject: bare LF\r\n\r\nline 1\r\n');
        assert.match(await c.command('QUIT'), /^\+OK/);
      } finally {
        c.close();
      }
    }
    assert.ok(!server.stderr().includes('size differs'), 'LIST announced what RETR sent');
  });

  it('every connection writes one log line with user, ip, retrieved and deleted counts', async () => {
    const logs = pop3Logs(server);
    assert.ok(logs.length > 5);
    for (const l of logs) {
      for (const key of ['session', 'ip', 'user', 'tls', 'retrieved', 'deleted', 'commands', 'ms']) assert.ok(key in l, `${key} in ${JSON.stringify(l)}`);
    }
    assert.ok(logs.some((l) => l.user === 'heidi@example.test' && l.retrieved === 1));
    const sessions = logs.map((l) => l.session);
    assert.equal(new Set(sessions).size, sessions.length, 'one line per connection');
  });
});

describe('POP3 where plaintext is not allowed', () => {
  const dir = makeDataDir('yubin-pop3-tls-');
  let server: RunningYubin;
  const BOB = 'bob@example.test';

  before(async () => {
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', BOB, '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = 0\nplaintext = "never"\n');
    server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--pop3', '127.0.0.1:0', '--pop3s', '127.0.0.1:0']);
    await deliver(server.ports.smtp!, BOB, message(BOB, 'secure', DOTTED_BODY));
  });

  after(async () => {
    await server?.stop();
  });

  it('USER, PASS and AUTH are refused with [AUTH] before STLS; CAPA offers STLS but no USER or SASL', async () => {
    const c = await RawLines.connect(server.ports.pop3!);
    try {
      await c.line();
      const capa = await c.multi('CAPA');
      assert.ok(capa.lines.includes('STLS'));
      assert.ok(!capa.lines.includes('USER') && !capa.lines.some((l) => l.startsWith('SASL')));
      assert.equal(await c.command(`USER ${BOB}`), '-ERR [AUTH] Plaintext authentication is disabled; use STLS');
      assert.match(await c.command(`PASS ${PASSWORD}`), /^-ERR Send USER first/);
      assert.equal(await c.command(`AUTH PLAIN ${Buffer.from(`\0${BOB}\0${PASSWORD}`).toString('base64')}`), '-ERR [AUTH] Plaintext authentication is disabled; use STLS');
      assert.equal(await c.command('AUTH LOGIN'), '-ERR [AUTH] Plaintext authentication is disabled; use STLS');
      assert.equal(await c.command('AUTH'), '-ERR [AUTH] Plaintext authentication is disabled; use STLS');
      assert.equal(await c.command('STLS'), '+OK Begin TLS negotiation');
      await c.startTls();
      const capa2 = await c.multi('CAPA');
      assert.ok(capa2.lines.includes('USER') && capa2.lines.includes('SASL PLAIN LOGIN') && !capa2.lines.includes('STLS'));
      assert.match(await c.command(`AUTH PLAIN ${Buffer.from(`\0${BOB}\0${PASSWORD}`).toString('base64')}`), /^\+OK Logged in; 1 message/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
  });

  it('pop3s (implicit TLS) with poplib.POP3_SSL and a raw TLS socket', async () => {
    const out = runPython(PY_SESSION, [String(server.ports.pop3s), BOB, PASSWORD, 'ssl']);
    assert.ok(!('STLS' in (out.capa as object)) && 'USER' in (out.capa as object));
    assert.match(String(out.pass), /^\+OK Logged in; 1 message/);
    const retr = (out.retr as Array<{ b64: string }>)[0]!;
    assert.ok(b64(retr.b64).toString('latin1').endsWith(DOTTED_BODY));
    const c = await pop3Login(server.ports.pop3s!, BOB, PASSWORD, true);
    try {
      assert.match(await c.command('STAT'), /^\+OK 1 \d+$/);
      assert.match(await c.command('QUIT'), /^\+OK/);
    } finally {
      c.close();
    }
  });

  it('stopping the server ends POP3 sessions without deleting anything', async () => {
    const c = await pop3Login(server.ports.pop3s!, BOB, PASSWORD, true);
    assert.match(await c.command('DELE 1'), /^\+OK/);
    assert.equal(await server.stop(), 0);
    assert.equal(await c.waitClosed(), true);
    assert.equal(c.pendingText(), '-ERR [SYS/TEMP] Server shutting down; nothing was deleted\r\n');
    c.close();
    server = await startYubin(dir, ['--pop3s', '127.0.0.1:0']);
    const d = await pop3Login(server.ports.pop3s!, BOB, PASSWORD, true);
    try {
      assert.match(await d.command('STAT'), /^\+OK 1 /);
      assert.match(await d.command('QUIT'), /^\+OK/);
    } finally {
      d.close();
    }
  });
});

describe('POP3 connection limits', () => {
  const dir = makeDataDir('yubin-pop3-limits-');
  let server: RunningYubin;

  before(async () => {
    writeConfig(dir, '[pop3]\nmax_connections_per_ip = 2\n');
    server = await startYubin(dir, ['--pop3', '127.0.0.1:0']);
  });

  after(async () => {
    await server?.stop();
  });

  it('connections beyond max_connections_per_ip get -ERR [SYS/TEMP] and are closed; a freed slot is usable', async () => {
    const port = server.ports.pop3!;
    const a = await RawLines.connect(port);
    const b = await RawLines.connect(port);
    try {
      assert.match(await a.line(), /^\+OK/);
      assert.match(await b.line(), /^\+OK/);
      const c = await RawLines.connect(port);
      assert.equal(await c.line(), '-ERR [SYS/TEMP] Too many connections, try again later');
      assert.equal(await c.waitClosed(), true);
      c.close();
      assert.match(await a.command('QUIT'), /^\+OK/);
      await a.waitClosed();
      const d = await eventually(
        async () => {
          const s = await RawLines.connect(port);
          const greeting = await s.line();
          if (!greeting.startsWith('+OK')) s.close();
          return { s, greeting };
        },
        (r) => r.greeting.startsWith('+OK'),
        'a slot is free again',
      );
      assert.equal(await d.s.command('NOOP'), '-ERR Log in first');
      d.s.close();
    } finally {
      a.close();
      b.close();
    }
  });
});
