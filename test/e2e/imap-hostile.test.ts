// The IMAP server against hostile clients, over raw sockets: absurd nesting, endless lines,
// literals announced at 4 GiB, literal floods, garbage, STARTTLS command injection, clients that
// never log in. Each attack must end in BAD, NO or BYE, with memory bounded, the connection
// usable where the protocol allows, and the server up for everyone else.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const PASSWORD = 'password1';
const SERVE_ARGS = ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0', '--imaps', '127.0.0.1:0'];

// -------------------------------------------------------------------------------------------
// A raw IMAP client: exact bytes out, whole responses (with their literals) in.

interface Reply {
  tag: string;
  status: string;
  tagged: string;
  untagged: string[];
}

class RawImap {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private tags = 0;
  closed = false;
  closedAt = 0;

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
      this.closedAt = Date.now();
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  static connect(port: number): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawImap(socket)));
      socket.once('error', reject);
    });
  }

  get raw(): net.Socket | tls.TLSSocket {
    return this.socket;
  }

  write(data: string | Buffer): boolean {
    if (this.closed || this.socket.destroyed) return false;
    return this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private take(): string | null {
    let pos = 0;
    for (;;) {
      const lf = this.buf.indexOf('\r\n', pos);
      if (lf < 0) return null;
      const m = /~?\{(\d+)\}$/.exec(this.buf.toString('latin1', Math.max(pos, lf - 30), lf));
      if (m) {
        const end = lf + 2 + Number(m[1]);
        if (this.buf.length < end) return null;
        pos = end;
        continue;
      }
      const text = this.buf.toString('latin1', 0, lf);
      this.buf = this.buf.subarray(lf + 2);
      return text;
    }
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

  async next(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.take();
      if (r !== null) return r;
      if (this.closed) throw new Error(`connection closed; pending ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      if (Date.now() >= deadline) throw new Error(`no response within ${timeoutMs} ms; pending ${JSON.stringify(this.buf.toString('latin1').slice(0, 300))}`);
      await this.waitData(deadline);
    }
  }

  async until(re: RegExp, timeoutMs = 15_000): Promise<{ match: string; before: string[] }> {
    const before: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.next(Math.max(1, deadline - Date.now()));
      if (re.test(r)) return { match: r, before };
      before.push(r);
    }
  }

  /** Every complete response that arrives within ms (or until the close). */
  async collect(ms: number): Promise<string[]> {
    const deadline = Date.now() + ms;
    while (!this.closed && Date.now() < deadline) await this.waitData(deadline);
    const out: string[] = [];
    for (let r = this.take(); r !== null; r = this.take()) out.push(r);
    return out;
  }

  async command(text: string, timeoutMs = 15_000): Promise<Reply> {
    const tag = `T${++this.tags}`;
    this.write(`${tag} ${text}\r\n`);
    return this.tagged(tag, timeoutMs);
  }

  async tagged(tag: string, timeoutMs = 15_000): Promise<Reply> {
    const { match, before } = await this.until(new RegExp(`^${tag} `), timeoutMs);
    return { tag, status: match.split(' ')[1] ?? '', tagged: match, untagged: before };
  }

  async ok(text: string): Promise<Reply> {
    const r = await this.command(text);
    assert.equal(r.status, 'OK', `${text.slice(0, 60)}: ${r.tagged}`);
    return r;
  }

  /** Bytes received but not yet read as responses. */
  pendingText(): string {
    return this.buf.toString('latin1');
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

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.waitData(deadline);
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

async function greeted(port: number): Promise<RawImap> {
  const c = await RawImap.connect(port);
  assert.match(await c.next(), /^\* OK /);
  return c;
}

async function loggedIn(port: number, user = 'bob@example.test'): Promise<RawImap> {
  const c = await greeted(port);
  await c.ok(`LOGIN ${user} ${PASSWORD}`);
  return c;
}

/** Proves the server still serves: a new connection logs in and selects INBOX. */
async function assertServerUp(server: RunningYubin, port: number): Promise<void> {
  assert.equal(server.proc.exitCode, null, `server exited: ${server.stderr().slice(-2000)}`);
  const c = await loggedIn(port);
  try {
    await c.ok('SELECT INBOX');
    await c.ok('NOOP');
  } finally {
    c.close();
  }
}

/** Resident memory of a process in bytes (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function deliver(port: number, to: string, data: string): Promise<void> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, name: 'client.test', ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => conn.send({ from: 'alice@sender.example', to: [to] }, data, (err) => (err ? reject(err) : resolve())));
  conn.quit();
}

function parens(depth: number): string {
  return '('.repeat(depth) + ')'.repeat(depth);
}

// -------------------------------------------------------------------------------------------
describe('IMAP hostile input', () => {
  const dir = makeDataDir('yubin-imap-hostile-');
  let server: RunningYubin;
  let imap: number;

  before(async () => {
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = 0\n');
    server = await startYubin(dir, SERVE_ARGS);
    imap = server.ports.imap!;
    await deliver(server.ports.smtp!, 'bob@example.test', 'From: a@sender.example\r\nSubject: hostile\r\nMessage-ID: <h@sender.example>\r\n\r\nbody\r\n');
  });

  after(async () => {
    await server?.stop();
  });

  it('100,000 nested parentheses on one line: BAD or BYE, and the server stays up', async () => {
    const c = await greeted(imap);
    try {
      c.write(`n1 LOGIN ${parens(100_000)}\r\n`);
      const r = await c.next();
      assert.match(r, /^(n1 BAD|\* BYE|n1 NO \[TOOBIG\])/, r);
      if (r.startsWith('* BYE')) assert.ok(await c.waitClosed(3000), 'closed after BYE');
      else await c.ok('NOOP');
    } finally {
      c.close();
    }
    await assertServerUp(server, imap);
  });

  it('100,000 nested parentheses within the line limit (split by literals) reach the parser: BAD, connection usable', async () => {
    const depth = 100_000;
    const half = depth / 2;
    // Every line stays under max_line_length; the nesting spans literals.
    const nested = (tag: string, cmd: string) => `${tag} ${cmd} ${'('.repeat(half)}{1+}\r\nx${'('.repeat(half)}{1+}\r\nx${')'.repeat(half)}{1+}\r\nx${')'.repeat(half)}\r\n`;
    const c = await greeted(imap);
    try {
      const t0 = Date.now();
      c.write(nested('p1', 'LOGIN'));
      const pre = await c.tagged('p1');
      assert.equal(pre.status, 'BAD', pre.tagged);
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      await c.ok('SELECT INBOX');
      c.write(nested('p2', 'FETCH 1'));
      const post = await c.tagged('p2');
      assert.equal(post.status, 'BAD', post.tagged);
      c.write(`p3 FETCH 1 ${parens(30_000)}\r\n`);
      assert.equal((await c.tagged('p3')).status, 'BAD');
      assert.ok(Date.now() - t0 < 5000, `rejected quickly: ${Date.now() - t0} ms`);
      await c.ok('FETCH 1 (FLAGS)');
    } finally {
      c.close();
    }
  });

  it('a 10 MB line without CRLF: BYE and closed, memory bounded', async (t) => {
    const c = await greeted(imap);
    const pid = server.proc.pid!;
    const rssBefore = rssOf(pid);
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    try {
      const chunk = Buffer.alloc(64 * 1024, 'A');
      let sent = 0;
      while (sent < 10 * 1024 * 1024 && !c.closed) {
        if (!c.write(chunk)) await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 200);
          c.raw.once('drain', () => {
            clearTimeout(t);
            resolve();
          });
        });
        sent += chunk.length;
      }
      const bye = await c.until(/^\* BYE/, 5000);
      assert.match(bye.match, /^\* BYE /);
      assert.ok(await c.waitClosed(5000), 'the server closed the connection');
    } finally {
      clearInterval(sampler);
      c.close();
    }
    const growth = peak - rssBefore;
    t.diagnostic(`server RSS ${(rssBefore / 1048576).toFixed(1)} MiB before, peak ${(peak / 1048576).toFixed(1)} MiB`);
    assert.ok(growth < 48 * 1024 * 1024, `server RSS grew by ${(growth / 1048576).toFixed(1)} MiB for a 10 MB line`);
    await assertServerUp(server, imap);
  });

  it('APPEND announcing {4294967296}: NO [TOOBIG] at once, no continuation, connection usable', async () => {
    const c = await loggedIn(imap);
    try {
      const t0 = Date.now();
      c.write('big1 APPEND INBOX {4294967296}\r\n');
      const r = await c.next(3000);
      assert.match(r, /^big1 (NO \[TOOBIG\]|BAD)/, `no "+" continuation: ${r}`);
      assert.ok(Date.now() - t0 < 2000, 'answered without waiting for the bytes');
      await c.ok('NOOP');
      await c.ok('SELECT INBOX');
      // The same before login, and with an absurdly long number.
      const d = await greeted(imap);
      try {
        d.write('big2 LOGIN {4294967296}\r\n');
        assert.match(await d.next(3000), /^big2 (NO \[TOOBIG\]|BAD)/);
        d.write('big3 LOGIN {99999999999999999999999999}\r\n');
        assert.match(await d.next(3000), /^big3 (NO \[TOOBIG\]|BAD)/);
        await d.ok(`LOGIN bob@example.test ${PASSWORD}`);
      } finally {
        d.close();
      }
    } finally {
      c.close();
    }
  });

  it('a non-synchronizing {4294967296+}: BYE and closed', async () => {
    const c = await loggedIn(imap);
    try {
      c.write('big4 APPEND INBOX {4294967296+}\r\nxxxxxxxx');
      const r = await c.until(/^\* BYE|^big4 /, 3000);
      assert.match(r.match, /^\* BYE/);
      assert.ok(await c.waitClosed(3000));
    } finally {
      c.close();
    }
    await assertServerUp(server, imap);
  });

  it('a flood of small literals in one command: BAD, server up', async () => {
    const c = await greeted(imap);
    try {
      const t0 = Date.now();
      c.write('f1 LOGIN' + ' {1+}\r\nx'.repeat(2000) + '\r\n');
      const r = await c.tagged('f1', 10_000);
      assert.equal(r.status, 'BAD', r.tagged);
      // Synchronizing literals, each sent after its "+".
      c.write('f2 LOGIN {1}\r\n');
      for (let i = 0; i < 2000; i++) {
        const plus = await c.next();
        assert.match(plus, /^\+/);
        c.write(i < 1999 ? 'x {1}\r\n' : 'x\r\n');
      }
      assert.equal((await c.tagged('f2')).status, 'BAD');
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      await c.ok('SELECT INBOX');
      // 20,000 literals in one FETCH: more tokens than the parser allows.
      c.write('f3 FETCH 1 (' + ' {1+}\r\nx'.repeat(20_000) + ')\r\n');
      const f3 = await c.until(/^f3 |^\* BYE/, 10_000);
      assert.match(f3.match, /^(f3 BAD|\* BYE)/);
      if (f3.match.startsWith('f3')) await c.ok('NOOP');
      assert.ok(Date.now() - t0 < 15_000);
    } finally {
      c.close();
    }
    await assertServerUp(server, imap);
  });

  it('garbage bytes: BAD for each line, and the connection stays usable', async () => {
    const c = await greeted(imap);
    try {
      const lines: Buffer[] = [
        Buffer.from([0, 1, 2, 3, 0xff, 0xfe, 0x20, 0x41]),
        Buffer.alloc(100, 0),
        Buffer.from('abc \xff\xfe\xfd', 'latin1'),
        Buffer.from('* LOGIN bob@example.test password1'),
        Buffer.from('+ LOGIN bob@example.test password1'),
        Buffer.from('tag'),
        Buffer.from('tag "unterminated'),
        Buffer.from('tag LOGIN "a\\'),
        Buffer.from('tag LOGIN ((('),
        Buffer.from('tag LOGIN )))'),
        Buffer.from('tag FETCH 1 BODY[<>'),
        Buffer.from('tag LOGIN {abc}'),
        Buffer.from('\x1b[31mred\x1b[0m'),
      ];
      for (let i = 0; i < 20; i++) {
        const bytes = crypto.randomBytes(200).filter((b) => b !== 0x0a && b !== 0x0d && b !== 0x7b && b !== 0x7d);
        lines.push(Buffer.from(bytes));
      }
      c.write(Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\r\n')])));
      c.write('ok1 NOOP\r\n');
      const { match, before } = await c.until(/^ok1 /, 10_000);
      assert.match(match, /^ok1 OK/);
      assert.equal(before.length, lines.length, `one answer per garbage line:\n${before.join('\n')}`);
      for (const r of before) assert.match(r, /^\S+ BAD /, `garbage answered with BAD: ${JSON.stringify(r)}`);
      assert.equal((await c.command('SELECT INBOX')).status, 'BAD', 'the injected LOGIN lines did not log in');
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      // After login too.
      c.write(Buffer.concat([crypto.randomBytes(300).filter((b) => b !== 0x0a && b !== 0x7b && b !== 0x7d), Buffer.from('\r\nok2 SELECT INBOX\r\n')]));
      const after2 = await c.until(/^ok2 /);
      assert.match(after2.match, /^ok2 OK/);
      assert.ok(after2.before.some((l) => / BAD /.test(l)));
    } finally {
      c.close();
    }
  });

  it('hostile FETCH arguments are answered (BAD, NO or OK), never crash the session', async () => {
    const c = await loggedIn(imap);
    try {
      await c.ok('SELECT INBOX');
      const cases: Array<[string, RegExp]> = [
        ['FETCH 1 (BODY.PEEK[]<4294967295.4294967295>)', /^(OK|BAD|NO)$/],
        ['FETCH 1 (BODY.PEEK[]<0.99999999999999999999>)', /^(BAD|NO)$/],
        ['FETCH 1 (BODY.PEEK[TEXT]<5.0>)', /^(BAD|NO|OK)$/],
        [`FETCH 1 (BODY.PEEK[${Array.from({ length: 500 }, (_, i) => i + 1).join('.')}])`, /^(OK|BAD|NO)$/],
        [`FETCH 1 (BODY.PEEK[HEADER.FIELDS (${Array.from({ length: 5000 }, (_, i) => `X-H${i}`).join(' ')})])`, /^(OK|BAD|NO)$/],
        ['FETCH 1 (BODY.PEEK[0])', /^(BAD|NO)$/],
        ['FETCH 1 (BINARY.PEEK[99])', /^(NO|BAD|OK)$/],
        ['FETCH 0 (FLAGS)', /^BAD$/],
        ['FETCH 2 (FLAGS)', /^BAD$/],
        ['FETCH 1:4294967295 (FLAGS)', /^(BAD|OK)$/],
        ['UID FETCH 1:99999999999999999999 (FLAGS)', /^BAD$/],
        [`FETCH ${Array(5000).fill('1').join(',')} (FLAGS)`, /^OK$/],
        ['FETCH 1 (FLAGS) (CHANGEDSINCE 99999999999999999999999)', /^BAD$/],
        ['FETCH 1 ()', /^BAD$/],
        ['STORE 1 +FLAGS (' + Array.from({ length: 5000 }, (_, i) => `$k${i}`).join(' ') + ')', /^(BAD|NO)$/],
        ['SEARCH ' + parens(60), /^(BAD|NO)$/],
      ];
      for (const [cmd, expected] of cases) {
        const r = await c.command(cmd);
        assert.match(r.status, expected, `${cmd.slice(0, 70)}: ${r.tagged}`);
        assert.doesNotMatch(r.tagged, /SERVERBUG/, `${cmd.slice(0, 70)}: ${r.tagged}`);
      }
      const many = await c.ok(`FETCH ${Array(5000).fill('1').join(',')} (UID)`);
      assert.equal(many.untagged.length, 1, 'a message named 5000 times is answered once');
      await c.ok('FETCH 1 (FLAGS)');
    } finally {
      c.close();
    }
  });

  it('IDLE answered with garbage instead of DONE: BAD, and the connection goes on', async () => {
    const c = await loggedIn(imap);
    try {
      await c.ok('SELECT INBOX');
      c.write('i1 IDLE\r\n');
      assert.match(await c.next(), /^\+ /);
      c.write('NOT-DONE at all\r\n');
      const r = await c.tagged('i1');
      assert.equal(r.status, 'BAD', r.tagged);
      await c.ok('NOOP');
      // DONE outside IDLE is just a bad command.
      c.write('DONE\r\n');
      assert.match(await c.next(), /BAD/);
      await c.ok('NOOP');
    } finally {
      c.close();
    }
  });

  it('a pipelined flood of 5,000 commands: all answered in order, or BYE; server up', async (t) => {
    const c = await loggedIn(imap);
    try {
      let burst = '';
      for (let i = 0; i < 5000; i++) burst += `q${i} NOOP\r\n`;
      c.write(burst);
      let answered = 0;
      let bye = false;
      for (;;) {
        let r: string;
        try {
          r = await c.next(10_000);
        } catch {
          break;
        }
        if (r.startsWith('* BYE')) {
          bye = true;
          break;
        }
        const m = /^q(\d+) OK/.exec(r);
        if (m) {
          assert.equal(Number(m[1]), answered, 'answers in order');
          answered++;
          if (answered === 5000) break;
        }
      }
      t.diagnostic(`answered ${answered}, BYE ${bye}`);
      assert.ok(answered === 5000 || bye, `answered ${answered}, BYE ${bye}`);
    } finally {
      c.close();
    }
    await assertServerUp(server, imap);
  });

  it('STARTTLS injection: a command pipelined after STARTTLS in plaintext is not executed', async () => {
    const c = await greeted(imap);
    try {
      c.write('a STARTTLS\r\nb LOGIN bob@example.test password1\r\n');
      const ok = await c.next();
      assert.match(ok, /^a OK/);
      assert.equal(c.pendingText(), '', 'nothing after the STARTTLS OK in plaintext');
      await c.startTls();
      const cap = await c.command('CAPABILITY');
      assert.equal(cap.status, 'OK');
      const caps = cap.untagged.find((l) => l.startsWith('* CAPABILITY '))!;
      assert.match(caps, /AUTH=PLAIN/, 'still the pre-login capabilities');
      assert.doesNotMatch(caps, /\bIDLE\b/, 'not logged in');
      assert.doesNotMatch(caps, /STARTTLS/);
      assert.ok(!cap.untagged.some((l) => l.startsWith('b ')), '"b" was never answered');
      assert.equal((await c.command('SELECT INBOX')).status, 'BAD', 'the injected LOGIN did not run');
      const late = await c.collect(300);
      assert.ok(!late.some((l) => l.startsWith('b ')), `"b" never answered: ${late.join(' | ')}`);
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      await c.ok('SELECT INBOX');
      assert.equal((await c.command('STARTTLS')).status, 'BAD', 'STARTTLS after login');
    } finally {
      c.close();
    }
  });

  it('CREATE with an absurd hierarchy is refused (bounded name length / depth)', async () => {
    const c = await loggedIn(imap);
    try {
      const deep = Array.from({ length: 2000 }, () => 'd').join('/');
      const r = await c.command(`CREATE "${deep}"`, 30_000);
      assert.match(r.status, /^(NO|BAD)$/, r.tagged);
      const long = await c.command(`CREATE "${'L'.repeat(60_000)}"`, 30_000);
      assert.match(long.status, /^(NO|BAD)$/, long.tagged);
    } finally {
      c.close();
    }
  });

  it('no internal errors were logged, and the server is still up', async () => {
    await assertServerUp(server, imap);
    assert.doesNotMatch(server.stderr(), /imap command failed/, 'an IMAP command failed with an internal error');
  });
});

// -------------------------------------------------------------------------------------------
describe('IMAP timeouts and connection limits', () => {
  const dir = makeDataDir('yubin-imap-timeouts-');
  let server: RunningYubin;
  let imap: number;

  before(async () => {
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    // failure_delay 2 s: a failed LOGIN keeps the command queue busy (the pipelining test below).
    writeConfig(dir, '[auth]\nfailure_delay = "2s"\n\n[imap]\nlogin_timeout = "2s"\nmax_connections_per_ip = 6\n');
    server = await startYubin(dir, SERVE_ARGS);
    imap = server.ports.imap!;
  });

  after(async () => {
    await server?.stop();
  });

  it('login_timeout = "2s": a silent unauthenticated connection gets BYE within ~4 s; a logged-in one stays', async () => {
    const silent = await greeted(imap);
    const t0 = Date.now();
    const authed = await loggedIn(imap);
    try {
      const bye = await silent.until(/^\* BYE/, 6000);
      const ms = Date.now() - t0;
      assert.match(bye.match, /^\* BYE /);
      assert.ok(ms >= 1500 && ms <= 4500, `BYE after ${ms} ms`);
      assert.ok(await silent.waitClosed(3000), 'closed after the BYE');
      await new Promise((r) => setTimeout(r, Math.max(0, 3000 - (Date.now() - t0))));
      await authed.ok('NOOP');
      assert.ok(!authed.closed, 'a logged-in session is not bound by login_timeout');
    } finally {
      silent.close();
      authed.close();
    }
  });

  it('login_timeout is a deadline: NOOPs do not keep an unauthenticated connection open', async () => {
    const c = await greeted(imap);
    const t0 = Date.now();
    try {
      while (!c.closed && Date.now() - t0 < 5000) {
        c.write('k NOOP\r\n');
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(c.closed, 'still open after 5 s without logging in');
      assert.ok(c.closedAt - t0 <= 4500, `closed after ${c.closedAt - t0} ms`);
    } finally {
      c.close();
    }
  });

  it('commands pipelined behind a slow one are not buffered without bound (pre-login)', async (t) => {
    const c = await greeted(imap);
    const pid = server.proc.pid!;
    const rssBefore = rssOf(pid);
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 20);
    try {
      c.write('slow LOGIN bob@example.test wrong-password\r\n');
      const literal = Buffer.alloc(1024 * 1024, 'x');
      const t0 = Date.now();
      for (let i = 0; i < 200 && !c.closed && Date.now() - t0 < 1800; i++) {
        const more = c.write(Buffer.concat([Buffer.from(`p${i} NOOP {${literal.length}+}\r\n`), literal, Buffer.from('\r\n')]));
        if (!more) await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 500);
          c.raw.once('drain', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      await c.until(/^slow /, 10_000).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      clearInterval(sampler);
      c.close();
    }
    const growth = peak - rssBefore;
    t.diagnostic(`server RSS ${(rssBefore / 1048576).toFixed(1)} MiB before, peak ${(peak / 1048576).toFixed(1)} MiB`);
    assert.equal(server.proc.exitCode, null, 'server up');
    assert.ok(growth < 64 * 1024 * 1024, `server RSS grew by ${(growth / 1048576).toFixed(1)} MiB while one unauthenticated client pipelined 200 MB`);
  });

  it('max_connections_per_ip: the connection over the limit gets BYE; a slot frees when one closes', async () => {
    const open: RawImap[] = [];
    try {
      for (let i = 0; i < 6; i++) open.push(await loggedIn(imap));
      const extra = await RawImap.connect(imap);
      const line = await extra.next(3000);
      assert.match(line, /^\* BYE /);
      assert.ok(await extra.waitClosed(3000));
      open.shift()!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await loggedIn(imap);
      open.push(again);
      await again.ok('NOOP');
    } finally {
      for (const c of open) c.close();
    }
  });
});
