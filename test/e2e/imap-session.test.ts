// The IMAP server with well-behaved clients: imapflow, Python's imaplib, and exact command lines
// over a raw socket (for the bytes a client library would hide). Mail arrives the real way, over
// SMTP, and every answer is checked against what was sent: the delivered bytes, the attachment,
// the UIDs, flags and MODSEQs that other sessions changed.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { ImapFlow } from 'imapflow';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, python, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const PASSWORD = 'password1';
const SERVE_ARGS = ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0', '--imaps', '127.0.0.1:0'];

// -------------------------------------------------------------------------------------------
// A raw IMAP client: exact bytes out, whole responses (with their literals) in.

interface Reply {
  tag: string;
  status: string;
  /** The tagged line. */
  tagged: string;
  /** Untagged and continuation responses before the tagged one, literals in place (latin1). */
  untagged: string[];
}

class RawImap {
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private tags = 0;
  private deflater: zlib.DeflateRaw | null = null;
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

  static connect(port: number, secure = false): Promise<RawImap> {
    return new Promise((resolve, reject) => {
      const socket = secure
        ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => resolve(new RawImap(socket)))
        : net.connect(port, '127.0.0.1', () => resolve(new RawImap(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.deflater) {
      this.deflater.write(bytes);
      this.deflater.flush(zlib.constants.Z_SYNC_FLUSH);
    } else this.socket.write(bytes);
  }

  /** One complete response (a line, with any literals it announces) from the buffer, or null. */
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

  /** The next response; throws when none comes in time or the connection closed. */
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

  /** Waits for a response matching re; returns it and everything before it. */
  async until(re: RegExp, timeoutMs = 15_000): Promise<{ match: string; before: string[] }> {
    const before: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.next(Math.max(1, deadline - Date.now()));
      if (re.test(r)) return { match: r, before };
      before.push(r);
    }
  }

  /** Responses already complete in the buffer, without waiting. */
  pending(): string[] {
    const out: string[] = [];
    for (let r = this.take(); r !== null; r = this.take()) out.push(r);
    return out;
  }

  newTag(): string {
    return `T${++this.tags}`;
  }

  /** Sends "TAG text" and collects the responses up to the tagged one. */
  async command(text: string | Buffer, timeoutMs = 15_000): Promise<Reply> {
    const tag = this.newTag();
    this.write(Buffer.concat([Buffer.from(`${tag} `), typeof text === 'string' ? Buffer.from(text, 'utf8') : text, Buffer.from('\r\n')]));
    return this.tagged(tag, timeoutMs);
  }

  async tagged(tag: string, timeoutMs = 15_000): Promise<Reply> {
    const { match, before } = await this.until(new RegExp(`^${tag} `), timeoutMs);
    return { tag, status: match.split(' ')[1] ?? '', tagged: match, untagged: before };
  }

  async ok(text: string, timeoutMs = 15_000): Promise<Reply> {
    const r = await this.command(text, timeoutMs);
    assert.equal(r.status, 'OK', `${text.slice(0, 60)}: ${r.tagged}`);
    return r;
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

  /** RFC 4978: after the tagged OK to COMPRESS DEFLATE, both directions are raw DEFLATE. */
  startCompression(): void {
    const inflater = zlib.createInflateRaw();
    inflater.on('data', this.onData);
    inflater.on('error', () => this.socket.destroy());
    this.socket.off('data', this.onData);
    this.socket.on('data', (d: Buffer) => inflater.write(d));
    // zlib is asynchronous: the connection counts as closed only once the inflater has given
    // out everything that arrived before the close.
    this.socket.removeAllListeners('close');
    this.socket.on('close', () => inflater.end());
    inflater.on('end', () => {
      this.closed = true;
      this.wake();
    });
    inflater.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.deflater = zlib.createDeflateRaw();
    this.deflater.on('data', (d: Buffer) => this.socket.write(d));
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

/** The value of a FETCH item in a response: a literal's bytes, a quoted string, or null (NIL / absent). */
function fetchItem(response: string, item: string): Buffer | null {
  const escaped = item.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`[ (]${escaped} (~?\\{(\\d+)\\}\\r\\n|"((?:[^"\\\\]|\\\\.)*)"|NIL)`, 'i').exec(response);
  if (!m) return null;
  if (m[2] !== undefined) {
    const start = m.index + m[0].length;
    return Buffer.from(response.slice(start, start + Number(m[2])), 'latin1');
  }
  if (m[3] !== undefined) return Buffer.from(m[3].replace(/\\(.)/g, '$1'), 'latin1');
  return null;
}

/** Atom or parenthesized value of a FETCH item (FLAGS, MODSEQ, UID, RFC822.SIZE ...). */
function fetchAtom(response: string, item: string): string | null {
  const m = new RegExp(`[ (]${item.replace(/[.[\]]/g, '\\$&')} (\\([^)]*\\)|[^ )]+)`, 'i').exec(response);
  return m ? m[1]! : null;
}

function flagsOf(response: string): string[] {
  const v = fetchAtom(response, 'FLAGS');
  assert.ok(v, `FLAGS in ${response}`);
  return v.slice(1, -1).split(' ').filter(Boolean);
}

function codeValue(lines: string[], code: string): string | null {
  for (const line of lines) {
    const m = new RegExp(`\\[${code} ([^\\]]*)\\]`).exec(line);
    if (m) return m[1]!;
  }
  return null;
}

function capsOf(line: string): string[] {
  const m = /CAPABILITY ([^\]\r\n]*)/.exec(line);
  assert.ok(m, `capabilities in ${line}`);
  return m[1]!.trim().split(/\s+/);
}

async function rawLogin(port: number, user: string, secure = false): Promise<RawImap> {
  const c = await RawImap.connect(port, secure);
  assert.match(await c.next(), /^\* OK /);
  await c.ok(`LOGIN ${user} ${PASSWORD}`);
  return c;
}

/** UIDs in the selected mailbox, in sequence order. */
async function uidsOf(c: RawImap): Promise<number[]> {
  const r = await c.ok('UID FETCH 1:* (UID)');
  return r.untagged.filter((l) => / FETCH /.test(l)).map((l) => Number(fetchAtom(l, 'UID')));
}

// -------------------------------------------------------------------------------------------
// Mail delivery over SMTP.

async function deliver(port: number, to: string, data: string | Buffer): Promise<number> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, name: 'client.test', ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => {
    conn.send({ from: 'alice@sender.example', to: [to] }, data, (err) => (err ? reject(err) : resolve()));
  });
  const at = Date.now();
  conn.quit();
  return at;
}

function simpleMessage(to: string, subject: string): string {
  const id = crypto.randomBytes(6).toString('hex');
  return (
    `From: Alice <alice@sender.example>\r\n` +
    `To: ${to}\r\n` +
    `Subject: ${subject}\r\n` +
    `Message-ID: <${id}@sender.example>\r\n` +
    `Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n` +
    `\r\n` +
    `Hello,\r\nthis is ${subject}.\r\n`
  );
}

/** A multipart/mixed message: text, a base64 attachment (with NUL bytes), and a message/rfc822. */
function multipartMessage() {
  const attachment = crypto.randomBytes(300);
  attachment[0] = 0;
  attachment[150] = 0;
  const b64 = attachment.toString('base64').replace(/.{1,76}/g, '$&\r\n');
  const textBody = 'Hello Bob,\r\nhere is the file.';
  const part1Mime = 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n';
  const part2Mime = 'Content-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\n';
  const part3Mime = 'Content-Type: message/rfc822\r\n\r\n';
  const innerHeader =
    'From: Carol <carol@inner.example>\r\nTo: Bob <bob@example.test>\r\nSubject: Inner message\r\nDate: Tue, 03 Nov 2026 11:00:00 +0100\r\nMessage-ID: <inner@inner.example>\r\n\r\n';
  const innerBody = 'Inner body line 1.\r\nInner body line 2.';
  const header =
    'From: Alice Example <alice@sender.example>\r\n' +
    'To: Bob <bob@example.test>\r\n' +
    'Cc: carol@example.test\r\n' +
    'Subject: Multipart fetch test\r\n' +
    'Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n' +
    'Message-ID: <multipart@sender.example>\r\n' +
    'MIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="outer-boundary"\r\n' +
    '\r\n';
  const raw =
    header +
    'This is a multi-part message in MIME format.\r\n' +
    '--outer-boundary\r\n' +
    part1Mime +
    textBody +
    '\r\n--outer-boundary\r\n' +
    part2Mime +
    b64 +
    '--outer-boundary\r\n' +
    part3Mime +
    innerHeader +
    innerBody +
    '\r\n--outer-boundary--\r\n';
  return { raw, attachment, b64Part: b64.slice(0, -2), textBody, part2Mime, innerHeader, innerBody };
}

// -------------------------------------------------------------------------------------------
// Python imaplib scripts. Output is one JSON object.

const PY_PRELUDE = String.raw`
import base64, hashlib, imaplib, json, re, ssl, sys
def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c
def text(x):
    return x.decode('utf-8', 'replace') if isinstance(x, bytes) else str(x)
`;

const PY_LOGIN = PY_PRELUDE + String.raw`
port, user, pw, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
out = {}
if mode == 'ssl':
    M = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx())
else:
    M = imaplib.IMAP4('127.0.0.1', port)
out['welcome'] = text(M.welcome)
out['caps_before'] = sorted(M.capabilities)
if mode == 'starttls':
    typ, data = M.starttls(ssl_context=ctx())
    out['starttls'] = typ
    out['caps_tls'] = sorted(M.capabilities)
typ, data = M.login(user, pw)
out['login'] = typ
typ, data = M.capability()
out['caps_after'] = text(data[0]).split()
typ, data = M.select('INBOX')
out['select'] = typ
out['exists'] = int(data[0])
typ, data = M.logout()
out['logout'] = typ
print(json.dumps(out))
`;

const PY_UTF7 = PY_PRELUDE + String.raw`
def mutf7_encode(s):
    out, buf = [], []
    def flush():
        if buf:
            b = ''.join(buf).encode('utf-16-be')
            out.append('&' + base64.b64encode(b).decode().rstrip('=').replace('/', ',') + '-')
            buf.clear()
    for ch in s:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append('&-' if ch == '&' else ch)
        else:
            buf.append(ch)
    flush()
    return ''.join(out)
def mutf7_decode(s):
    def rep(m):
        if m.group(1) == '':
            return '&'
        b = m.group(1).replace(',', '/')
        b += '=' * (-len(b) % 4)
        return base64.b64decode(b).decode('utf-16-be')
    return re.sub(r'&([^-]*)-', rep, s)
port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
names = json.loads(sys.argv[4])
M = imaplib.IMAP4('127.0.0.1', port)
M.login(user, pw)
out = {'encoded': [], 'create': [], 'select': []}
for n in names:
    enc = mutf7_encode(n)
    out['encoded'].append(enc)
    out['create'].append(M.create('"' + enc + '"')[0])
typ, data = M.list('""', '"*"')
out['list_raw'] = [text(d) for d in data]
decoded = []
for d in data:
    m = re.match(r'\((.*?)\) "(.)" (.*)$', text(d))
    name = m.group(3)
    if name.startswith('"'):
        name = name[1:-1]
    decoded.append(mutf7_decode(name))
out['decoded'] = decoded
for n in names:
    out['select'].append(M.select('"' + mutf7_encode(n) + '"')[0])
M.logout()
print(json.dumps(out))
`;

const PY_FETCH = PY_PRELUDE + String.raw`
port, user, pw, uid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
M = imaplib.IMAP4('127.0.0.1', port)
M.login(user, pw)
M.select('INBOX')
typ, data = M.uid('FETCH', uid, '(RFC822.SIZE BODY.PEEK[])')
meta, body = data[0]
size = int(re.search(rb'RFC822\.SIZE (\d+)', meta).group(1))
typ2, data2 = M.uid('FETCH', uid, '(BINARY.PEEK[2] BINARY.SIZE[2])')
bmeta, binary = data2[0]
rest = b''.join(d if isinstance(d, bytes) else b''.join(d) for d in data2[1:])
bsize = int(re.search(rb'BINARY\.SIZE\[2\] (\d+)', bmeta + rest).group(1))
typ3, data3 = M.uid('FETCH', uid, '(FLAGS)')
M.logout()
print(json.dumps({'size': size, 'len': len(body), 'sha': hashlib.sha256(body).hexdigest(),
                  'binary_sha': hashlib.sha256(binary).hexdigest(), 'binary_len': len(binary), 'binary_size': bsize,
                  'flags': text(data3[0])}))
`;

function runPython(script: string, args: string[]): Record<string, unknown> {
  const r = python(script, args);
  assert.equal(r.status, 0, `python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

function flowClient(port: number, user: string, extra: Record<string, unknown> = {}): ImapFlow {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false }, ...extra });
  client.on('error', () => undefined);
  return client;
}

function sha(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

// -------------------------------------------------------------------------------------------
describe('IMAP session', () => {
  const dir = makeDataDir('yubin-imap-');
  let server: RunningYubin;
  let imap: number;
  let imaps: number;
  let smtp: number;
  const USERS = ['bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'hank'].map((u) => `${u}@example.test`);
  /** Passwords that need quoting, a literal, or UTF-8. */
  const ODD_PASSWORD = 'p a"s\\s{3}';
  const UTF8_PASSWORD = 'pä ss wörd 日本';

  before(async () => {
    cliOk(dir, ['domain', 'add', 'example.test']);
    for (const u of USERS) cliOk(dir, ['user', 'add', u, '--password', PASSWORD]);
    cliOk(dir, ['user', 'add', 'ivan@example.test', '--password', ODD_PASSWORD]);
    cliOk(dir, ['user', 'add', 'judy@example.test', '--password', UTF8_PASSWORD]);
    // snapshot_min_messages = 0: every SELECT here goes through the shared mailbox snapshots.
    writeConfig(dir, '[auth]\nfailure_delay = 0\n\n[imap]\nmax_literal = "20M"\nsnapshot_min_messages = 0\n');
    server = await startYubin(dir, SERVE_ARGS);
    ({ imap, imaps, smtp } = server.ports as { imap: number; imaps: number; smtp: number });
  });

  after(async () => {
    await server?.stop();
  });

  // ----- greeting, capabilities, login -----

  it('greets with IMAP4rev2/IMAP4rev1, STARTTLS and AUTH=PLAIN; the full list after login', async () => {
    const c = await RawImap.connect(imap);
    try {
      const greeting = await c.next();
      assert.match(greeting, /^\* OK \[CAPABILITY /);
      const pre = capsOf(greeting);
      for (const cap of ['IMAP4rev2', 'IMAP4rev1', 'STARTTLS', 'AUTH=PLAIN', 'SASL-IR', 'ID', 'ENABLE', 'LITERAL+']) assert.ok(pre.includes(cap), `${cap} before login: ${greeting}`);
      for (const cap of ['IDLE', 'LOGINDISABLED', 'COMPRESS=DEFLATE']) assert.ok(!pre.includes(cap), `no ${cap} before login`);
      const capReply = await c.ok('CAPABILITY');
      assert.deepEqual(capsOf(capReply.untagged.find((l) => l.startsWith('* CAPABILITY '))!), pre, 'CAPABILITY equals the greeting list');
      const id = await c.ok('ID NIL');
      assert.ok(id.untagged.some((l) => /^\* ID /.test(l)), 'ID response');

      const login = await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      const inOk = capsOf(login.tagged);
      const capAfter = capsOf((await c.ok('CAPABILITY')).untagged.find((l) => l.startsWith('* CAPABILITY '))!);
      assert.deepEqual(inOk, capAfter, 'the CAPABILITY code in the LOGIN OK equals CAPABILITY');
      for (const cap of ['IMAP4rev2', 'IMAP4rev1', 'IDLE', 'NAMESPACE', 'UIDPLUS', 'MOVE', 'UNSELECT', 'SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS', 'CONDSTORE', 'QRESYNC', 'BINARY', 'ENABLE', 'COMPRESS=DEFLATE', 'STATUS=SIZE']) {
        assert.ok(capAfter.includes(cap), `${cap} after login: ${capAfter.join(' ')}`);
      }
      // [imap] max_literal = "20M" in the config: APPENDLIMIT (RFC 7889) says so.
      assert.ok(capAfter.includes(`APPENDLIMIT=${20 * 1024 * 1024}`), `APPENDLIMIT from the config: ${capAfter.join(' ')}`);
      for (const cap of capAfter) assert.ok(!/^(AUTH=|STARTTLS$|LOGINDISABLED$)/.test(cap), `no ${cap} after login`);
    } finally {
      c.close();
    }
  });

  it('LOGIN with imaplib (plain, STARTTLS, implicit TLS)', async () => {
    await deliver(smtp, 'hank@example.test', simpleMessage('hank@example.test', 'for imaplib'));
    for (const mode of ['plain', 'starttls', 'ssl']) {
      const out = runPython(PY_LOGIN, [String(mode === 'ssl' ? imaps : imap), 'hank@example.test', PASSWORD, mode]);
      assert.equal(out.login, 'OK', mode);
      assert.equal(out.select, 'OK', mode);
      assert.equal(out.exists, 1, `${mode}: the delivered message is there`);
      assert.equal(out.logout, 'BYE', mode);
      const after = out.caps_after as string[];
      assert.ok(after.includes('IDLE') && after.includes('UIDPLUS'), `${mode}: ${after.join(' ')}`);
      if (mode === 'starttls') {
        assert.equal(out.starttls, 'OK');
        assert.ok((out.caps_before as string[]).includes('STARTTLS'));
        assert.ok(!(out.caps_tls as string[]).includes('STARTTLS'), 'no STARTTLS once TLS is on');
        assert.ok((out.caps_tls as string[]).includes('AUTH=PLAIN'));
      }
      if (mode === 'ssl') assert.ok(!(out.caps_before as string[]).includes('STARTTLS'), 'no STARTTLS on imaps');
    }
  });

  it('AUTHENTICATE PLAIN with SASL-IR, PLAIN with a continuation, LOGIN, and cancel', async () => {
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    // SASL-IR (RFC 4959): the response on the command line.
    let c = await RawImap.connect(imap);
    try {
      await c.next();
      const r = await c.command(`AUTHENTICATE PLAIN ${b64(`\0bob@example.test\0${PASSWORD}`)}`);
      assert.equal(r.status, 'OK', r.tagged);
      assert.ok(capsOf(r.tagged).includes('IDLE'), 'post-login capabilities in the OK');
      await c.ok('SELECT INBOX');
    } finally {
      c.close();
    }
    // No initial response: "+ " continuation, then the response; authzid equal to authcid is fine.
    c = await RawImap.connect(imap);
    try {
      await c.next();
      c.write('p1 AUTHENTICATE PLAIN\r\n');
      assert.match(await c.next(), /^\+/);
      c.write(b64(`bob@example.test\0bob@example.test\0${PASSWORD}`) + '\r\n');
      const r = await c.tagged('p1');
      assert.equal(r.status, 'OK', r.tagged);
      await c.ok('SELECT INBOX');
    } finally {
      c.close();
    }
    // AUTHENTICATE LOGIN: "Username:" then "Password:" challenges, base64.
    c = await RawImap.connect(imap);
    try {
      await c.next();
      c.write('l1 AUTHENTICATE LOGIN\r\n');
      const ch1 = await c.next();
      assert.match(ch1, /^\+ /);
      assert.match(Buffer.from(ch1.slice(2), 'base64').toString(), /user/i);
      c.write(b64('bob@example.test') + '\r\n');
      const ch2 = await c.next();
      assert.match(Buffer.from(ch2.slice(2), 'base64').toString(), /pass/i);
      c.write(b64(PASSWORD) + '\r\n');
      const r = await c.tagged('l1');
      assert.equal(r.status, 'OK', r.tagged);
    } finally {
      c.close();
    }
    // "*" cancels (RFC 9051 §6.2.2) with BAD; the connection stays usable and unauthenticated.
    c = await RawImap.connect(imap);
    try {
      await c.next();
      c.write('x1 AUTHENTICATE PLAIN\r\n');
      assert.match(await c.next(), /^\+/);
      c.write('*\r\n');
      const r = await c.tagged('x1');
      assert.equal(r.status, 'BAD', r.tagged);
      assert.equal((await c.command('SELECT INBOX')).status, 'BAD', 'still not logged in');
      await c.ok('NOOP');
      // A different authorization identity is refused.
      const other = await c.command(`AUTHENTICATE PLAIN ${b64(`carol@example.test\0bob@example.test\0${PASSWORD}`)}`);
      assert.equal(other.status, 'NO', other.tagged);
    } finally {
      c.close();
    }
  });

  it('LOGIN with quoted strings, synchronizing literals and LITERAL+; UTF-8 passwords', async () => {
    const c = await RawImap.connect(imap);
    try {
      await c.next();
      // Quoted, with \" and \\ escapes (RFC 9051 §4.3).
      const quoted = `"${ODD_PASSWORD.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
      await c.ok(`LOGIN "ivan@example.test" ${quoted}`);
    } finally {
      c.close();
    }
    const pw = Buffer.from(UTF8_PASSWORD, 'utf8');
    const d = await RawImap.connect(imap);
    try {
      await d.next();
      // Synchronizing literals: wait for "+" before each.
      d.write('s1 LOGIN {17}\r\n');
      assert.match(await d.next(), /^\+/);
      d.write(`judy@example.test {${pw.length}}\r\n`);
      assert.match(await d.next(), /^\+/);
      d.write(Buffer.concat([pw, Buffer.from('\r\n')]));
      assert.equal((await d.tagged('s1')).status, 'OK');
    } finally {
      d.close();
    }
    const e = await RawImap.connect(imap);
    try {
      await e.next();
      // LITERAL+ (RFC 7888): no waiting; and a wrong UTF-8 password is refused.
      e.write(Buffer.concat([Buffer.from(`n1 LOGIN judy@example.test {${pw.length - 1}+}\r\n`), pw.subarray(1), Buffer.from('\r\n')]));
      assert.match((await e.tagged('n1')).tagged, /NO \[AUTHENTICATIONFAILED\]/);
      e.write(Buffer.concat([Buffer.from(`n2 LOGIN judy@example.test {${pw.length}+}\r\n`), pw, Buffer.from('\r\n')]));
      assert.equal((await e.tagged('n2')).status, 'OK');
    } finally {
      e.close();
    }
    // AUTHENTICATE PLAIN carries UTF-8 (RFC 4616).
    const f = await RawImap.connect(imap);
    try {
      await f.next();
      await f.ok(`AUTHENTICATE PLAIN ${Buffer.from(`\0judy@example.test\0${UTF8_PASSWORD}`, 'utf8').toString('base64')}`);
    } finally {
      f.close();
    }
    // imaplib quotes the odd password itself.
    const out = runPython(PY_LOGIN, [String(imap), 'ivan@example.test', ODD_PASSWORD, 'plain']);
    assert.equal(out.login, 'OK');
  });

  it('implicit TLS with imapflow', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: imaps, secure: true, auth: { user: 'hank@example.test', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    client.on('error', () => undefined);
    await client.connect();
    try {
      assert.ok(client.capabilities.has('IDLE'));
      const box = await client.mailboxOpen('INBOX');
      assert.equal(box.exists, 1);
      const msg = await client.fetchOne('1', { envelope: true });
      assert.ok(msg);
      assert.equal(msg.envelope?.subject, 'for imaplib');
    } finally {
      await client.logout();
    }
  });

  it('a wrong password gets NO [AUTHENTICATIONFAILED], with raw LOGIN, AUTHENTICATE and imapflow', async () => {
    const c = await RawImap.connect(imap);
    try {
      await c.next();
      const r = await c.command('LOGIN bob@example.test wrong-password');
      assert.match(r.tagged, /^T\d+ NO \[AUTHENTICATIONFAILED\]/);
      const nobody = await c.command('LOGIN nobody@example.test wrong-password');
      assert.match(nobody.tagged, /^T\d+ NO \[AUTHENTICATIONFAILED\]/, 'unknown user: the same answer');
      const plain = await c.command(`AUTHENTICATE PLAIN ${Buffer.from('\0bob@example.test\0nope').toString('base64')}`);
      assert.match(plain.tagged, /^T\d+ NO \[AUTHENTICATIONFAILED\]/);
      assert.equal((await c.command('SELECT INBOX')).status, 'BAD', 'still not logged in');
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
    } finally {
      c.close();
    }
    const client = new ImapFlow({ host: '127.0.0.1', port: imap, secure: false, auth: { user: 'bob@example.test', pass: 'nope' }, logger: false, tls: { rejectUnauthorized: false } });
    client.on('error', () => undefined);
    await assert.rejects(client.connect(), (err: Error & { authenticationFailed?: boolean }) => err.authenticationFailed === true);
  });

  it('commands before login get BAD; unknown commands get BAD and the connection stays usable', async () => {
    const c = await RawImap.connect(imap);
    try {
      await c.next();
      for (const cmd of ['SELECT INBOX', 'LIST "" "*"', 'FETCH 1 (FLAGS)', 'STATUS INBOX (MESSAGES)', 'CREATE Foo']) {
        const r = await c.command(cmd);
        assert.equal(r.status, 'BAD', `${cmd} before login: ${r.tagged}`);
      }
      const unknown = await c.command('FROBNICATE now');
      assert.equal(unknown.status, 'BAD');
      await c.ok('NOOP');
      await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
      assert.equal((await c.command('XYZZY')).status, 'BAD');
      assert.equal((await c.command('FETCH 1 (FLAGS)')).status, 'BAD', 'FETCH without a selected mailbox');
      assert.equal((await c.command('LOGIN bob@example.test password1')).status, 'BAD', 'LOGIN twice');
      await c.ok('SELECT INBOX');
      await c.ok('NOOP');
    } finally {
      c.close();
    }
  });

  // ----- mailboxes -----

  it('LIST shows the special-use mailboxes; LIST (SPECIAL-USE), RETURN STATUS, LSUB, NAMESPACE', async () => {
    await deliver(smtp, 'bob@example.test', simpleMessage('bob@example.test', 'list one'));
    await deliver(smtp, 'bob@example.test', simpleMessage('bob@example.test', 'list two'));
    const c = await rawLogin(imap, 'bob@example.test');
    try {
      const list = await c.ok('LIST "" "*"');
      const boxes = new Map<string, string[]>();
      for (const line of list.untagged) {
        const m = /^\* LIST \(([^)]*)\) "\/" "?([^"]*)"?$/.exec(line);
        assert.ok(m, `LIST line ${line}`);
        boxes.set(m[2]!, m[1]!.split(' ').filter(Boolean));
      }
      const expected: Record<string, string | null> = { INBOX: null, Sent: '\\Sent', Drafts: '\\Drafts', Trash: '\\Trash', Junk: '\\Junk', Archive: '\\Archive' };
      for (const [name, use] of Object.entries(expected)) {
        assert.ok(boxes.has(name), `${name} listed: ${[...boxes.keys()].join(', ')}`);
        if (use) assert.ok(boxes.get(name)!.includes(use), `${name} has ${use}: ${boxes.get(name)!.join(' ')}`);
      }

      const special = await c.ok('LIST (SPECIAL-USE) "" "*"');
      const specialNames = special.untagged.map((l) => /"\/" "?([^"]*)"?$/.exec(l)?.[1]).sort();
      assert.deepEqual(specialNames, ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);

      const withStatus = await c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))');
      const inboxStatus = withStatus.untagged.find((l) => /^\* STATUS "?INBOX"? /.test(l));
      assert.ok(inboxStatus, `STATUS for INBOX: ${withStatus.untagged.join(' | ')}`);
      assert.match(inboxStatus, /MESSAGES 2\b/);
      assert.match(inboxStatus, /UNSEEN 2\b/);
      assert.equal(withStatus.untagged.filter((l) => l.startsWith('* STATUS ')).length, boxes.size, 'a STATUS for each mailbox');

      const lsub = await c.ok('LSUB "" "*"');
      assert.ok(lsub.untagged.some((l) => /^\* LSUB \([^)]*\) "\/" "?INBOX"?$/.test(l)), lsub.untagged.join(' | '));

      const ns = await c.ok('NAMESPACE');
      assert.ok(ns.untagged.includes('* NAMESPACE (("" "/")) NIL NIL'), ns.untagged.join(' | '));

      const delim = await c.ok('LIST "" ""');
      assert.match(delim.untagged[0] ?? '', /^\* LIST \(\\Noselect\) "\/" ""$/);
    } finally {
      c.close();
    }
    const client = flowClient(imap, 'bob@example.test');
    await client.connect();
    try {
      const listed = await client.list();
      const uses = Object.fromEntries(listed.map((m) => [m.path, m.specialUse ?? null]));
      assert.equal(uses.Sent, '\\Sent');
      assert.equal(uses.Drafts, '\\Drafts');
      assert.equal(uses.Trash, '\\Trash');
      assert.equal(uses.Junk, '\\Junk');
      assert.equal(uses.Archive, '\\Archive');
      assert.equal(uses.INBOX, '\\Inbox');
      const status = await client.status('INBOX', { messages: true, unseen: true, uidNext: true });
      assert.ok(status, 'imapflow STATUS');
      assert.equal(status.messages, 2);
      assert.equal(status.unseen, 2);
    } finally {
      await client.logout();
    }
  });

  it('CREATE, RENAME, DELETE, SUBSCRIBE and UNSUBSCRIBE; special-use mailboxes are protected', async () => {
    const c = await rawLogin(imap, 'gina@example.test');
    const listed = async () => {
      const r = await c.ok('LIST "" "*"');
      return new Map(r.untagged.map((l) => {
        const m = /^\* LIST \(([^)]*)\) "\/" "?([^"]*)"?$/.exec(l)!;
        return [m[2]!, m[1]!] as const;
      }));
    };
    const subscribed = async () => (await c.ok('LSUB "" "*"')).untagged.map((l) => /"\/" "?([^"]*)"?$/.exec(l)![1]!);
    try {
      await c.ok('CREATE "A/B"');
      let boxes = await listed();
      assert.ok(boxes.has('A'), 'the superior A was created too');
      assert.ok(boxes.has('A/B'));
      assert.match(boxes.get('A')!, /\\HasChildren/);
      assert.match(boxes.get('A/B')!, /\\HasNoChildren/);
      assert.match((await c.command('CREATE "A/B"')).tagged, /NO \[ALREADYEXISTS\]/);
      await c.ok('SELECT "A/B"');

      await c.ok('RENAME "A/B" "A/C"');
      boxes = await listed();
      assert.ok(!boxes.has('A/B') && boxes.has('A/C'), [...boxes.keys()].join(', '));
      await c.ok('RENAME "A" "Top"');
      boxes = await listed();
      assert.ok(!boxes.has('A') && !boxes.has('A/C') && boxes.has('Top') && boxes.has('Top/C'), `inferiors move with RENAME: ${[...boxes.keys()].join(', ')}`);

      await c.ok('DELETE "Top/C"');
      await c.ok('DELETE "Top"');
      boxes = await listed();
      assert.ok(!boxes.has('Top') && !boxes.has('Top/C'));
      assert.match((await c.command('DELETE "Top"')).tagged, /^T\d+ NO /, 'deleting what is gone');

      for (const name of ['Sent', 'Drafts', 'Trash', 'Junk', 'Archive', 'INBOX']) {
        const r = await c.command(`DELETE ${name}`);
        assert.equal(r.status, 'NO', `DELETE ${name}: ${r.tagged}`);
      }
      assert.equal((await c.command('RENAME Sent Outbox')).status, 'NO', 'RENAME of a special-use mailbox');
      assert.ok((await listed()).has('Sent'));

      await c.ok('CREATE Lists');
      await c.ok('SUBSCRIBE Lists');
      assert.ok((await subscribed()).includes('Lists'));
      const lsubList = await c.ok('LIST (SUBSCRIBED) "" "*"');
      assert.ok(lsubList.untagged.some((l) => /\\Subscribed.*Lists"?$/.test(l)), lsubList.untagged.join(' | '));
      await c.ok('UNSUBSCRIBE Lists');
      assert.ok(!(await subscribed()).includes('Lists'));
      assert.ok((await listed()).has('Lists'), 'UNSUBSCRIBE does not delete');

      // RENAME INBOX (RFC 9051 §6.3.6): the messages move, an empty INBOX stays, new mail lands there.
      await deliver(smtp, 'gina@example.test', simpleMessage('gina@example.test', 'rename inbox'));
      const inboxUidNext = Number(/UIDNEXT (\d+)/.exec((await c.ok('STATUS INBOX (UIDNEXT)')).untagged[0]!)![1]);
      await c.ok('RENAME INBOX "Old Inbox"');
      boxes = await listed();
      assert.ok(boxes.has('INBOX') && boxes.has('Old Inbox'));
      assert.match((await c.ok('STATUS "Old Inbox" (MESSAGES)')).untagged[0]!, /MESSAGES 1\b/);
      assert.match((await c.ok('STATUS INBOX (MESSAGES)')).untagged[0]!, /MESSAGES 0\b/);
      await deliver(smtp, 'gina@example.test', simpleMessage('gina@example.test', 'after rename'));
      const sel = await c.ok('SELECT INBOX');
      assert.match(sel.untagged.join('\n'), /^\* 1 EXISTS$/m);
      const newUid = (await uidsOf(c))[0]!;
      assert.ok(newUid >= inboxUidNext, `UIDs in INBOX are not reused after RENAME INBOX (UIDVALIDITY unchanged): ${newUid} < ${inboxUidNext}`);
    } finally {
      c.close();
    }
  });

  it('DELETE of a mailbox with inferiors: NO with [HASCHILDREN] (RFC 9051 §6.3.5)', async () => {
    const c = await rawLogin(imap, 'gina@example.test');
    try {
      await c.ok('CREATE "P/Q"');
      const r = await c.command('DELETE P');
      assert.equal(r.status, 'NO');
      assert.match(r.tagged, /\[HASCHILDREN\]/);
    } finally {
      c.close();
    }
  });

  it('STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ) agrees with SELECT and FETCH', async () => {
    const c = await rawLogin(imap, 'bob@example.test');
    try {
      const st = await c.ok('STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE HIGHESTMODSEQ)');
      const line = st.untagged.find((l) => l.startsWith('* STATUS '))!;
      const num = (k: string) => Number(new RegExp(`${k} (\\d+)`).exec(line)?.[1]);
      const sel = await c.ok('SELECT INBOX');
      const exists = Number(/^\* (\d+) EXISTS/m.exec(sel.untagged.join('\n'))?.[1]);
      assert.equal(num('MESSAGES'), exists);
      assert.equal(num('UIDVALIDITY'), Number(codeValue(sel.untagged, 'UIDVALIDITY')));
      assert.equal(num('UIDNEXT'), Number(codeValue(sel.untagged, 'UIDNEXT')));
      assert.equal(num('HIGHESTMODSEQ'), Number(codeValue(sel.untagged, 'HIGHESTMODSEQ')));
      const f = await c.ok('FETCH 1:* (UID RFC822.SIZE FLAGS)');
      const fetches = f.untagged.filter((l) => / FETCH /.test(l));
      assert.equal(num('SIZE'), fetches.reduce((s, l) => s + Number(fetchAtom(l, 'RFC822.SIZE')), 0), 'SIZE is the sum of RFC822.SIZE');
      assert.equal(num('UNSEEN'), fetches.filter((l) => !flagsOf(l).includes('\\Seen')).length);
      assert.ok(num('UIDNEXT') > Math.max(...fetches.map((l) => Number(fetchAtom(l, 'UID')))));
      // STATUS follows changes.
      await c.ok('STORE 1 +FLAGS.SILENT (\\Seen)');
      const st2 = (await c.ok('STATUS INBOX (UNSEEN HIGHESTMODSEQ)')).untagged.find((l) => l.startsWith('* STATUS '))!;
      assert.match(st2, new RegExp(`UNSEEN ${num('UNSEEN') - 1}\\b`));
      assert.ok(Number(/HIGHESTMODSEQ (\d+)/.exec(st2)![1]) > num('HIGHESTMODSEQ'), 'HIGHESTMODSEQ grows with a flag change');
      await c.ok('STORE 1 -FLAGS.SILENT (\\Seen)');
      assert.match((await c.command('STATUS Nowhere (MESSAGES)')).tagged, /^T\d+ NO /);
    } finally {
      c.close();
    }
  });

  it('non-ASCII mailbox names round-trip: modified UTF-7 with imaplib, UTF-8 with imapflow', async () => {
    const out = runPython(PY_UTF7, [String(imap), 'gina@example.test', PASSWORD, JSON.stringify(['Entwürfe', '日本語', 'R&D'])]);
    assert.deepEqual(out.encoded, ['Entw&APw-rfe', '&ZeVnLIqe-', 'R&-D']);
    assert.deepEqual(out.create, ['OK', 'OK', 'OK']);
    assert.deepEqual(out.select, ['OK', 'OK', 'OK']);
    const raw = (out.list_raw as string[]).join('\n');
    assert.match(raw, /"\/" "?Entw&APw-rfe"?/, 'LIST to an IMAP4rev1 client: modified UTF-7');
    assert.match(raw, /"\/" "?&ZeVnLIqe-"?/);
    for (const n of ['Entwürfe', '日本語', 'R&D']) assert.ok((out.decoded as string[]).includes(n), `${n} in ${JSON.stringify(out.decoded)}`);

    // imapflow (enables UTF8=ACCEPT / IMAP4rev2) sees the same names decoded, and creates its own.
    const client = flowClient(imap, 'gina@example.test');
    await client.connect();
    try {
      let paths = (await client.list()).map((m) => m.path);
      for (const n of ['Entwürfe', '日本語', 'R&D']) assert.ok(paths.includes(n), `imapflow lists ${n}: ${paths.join(', ')}`);
      await client.mailboxCreate('Ordner/Größe');
      await client.mailboxRename('日本語', '中文');
      paths = (await client.list()).map((m) => m.path);
      assert.ok(paths.includes('Ordner/Größe') && paths.includes('中文') && !paths.includes('日本語'), paths.join(', '));
      const box = await client.mailboxOpen('Ordner/Größe');
      assert.equal(box.path, 'Ordner/Größe');
    } finally {
      await client.logout();
    }
    // And back: a raw IMAP4rev1 session sees modified UTF-7; after ENABLE UTF8=ACCEPT, UTF-8.
    const c = await rawLogin(imap, 'gina@example.test');
    try {
      const l1 = (await c.ok('LIST "" "*"')).untagged.join('\n');
      assert.match(l1, /Ordner\/Gr&APYA3w-e/, 'Größe in modified UTF-7');
      assert.match(l1, /&Ti1lhw-/, '中文 in modified UTF-7');
      await c.ok('SELECT "Ordner/Gr&APYA3w-e"');
      const en = await c.ok('ENABLE UTF8=ACCEPT');
      assert.ok(en.untagged.some((l) => /^\* ENABLED UTF8=ACCEPT/.test(l)));
      const l2 = Buffer.from((await c.ok('LIST "" "*"')).untagged.join('\n'), 'latin1').toString('utf8');
      assert.ok(l2.includes('Ordner/Größe') && l2.includes('中文') && l2.includes('Entwürfe'), `UTF-8 names after ENABLE: ${l2}`);
    } finally {
      c.close();
    }
  });

  // ----- SELECT / EXAMINE -----

  it('SELECT and EXAMINE: EXISTS, FLAGS, PERMANENTFLAGS, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, READ-WRITE/READ-ONLY', async () => {
    const c = await rawLogin(imap, 'bob@example.test');
    try {
      await c.ok('SELECT INBOX');
      const uids = await uidsOf(c);
      await c.ok(`UID STORE ${uids[0]} +FLAGS.SILENT ($Forwarded)`);
      const sel = await c.ok('SELECT INBOX');
      assert.match(sel.tagged, /OK \[READ-WRITE\]/);
      const all = sel.untagged.join('\n');
      assert.match(all, new RegExp(`^\\* ${uids.length} EXISTS$`, 'm'));
      const flags = /^\* FLAGS \(([^)]*)\)$/m.exec(all)?.[1]?.split(' ') ?? [];
      for (const f of ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft', '$Forwarded']) assert.ok(flags.includes(f), `FLAGS has ${f}: ${flags.join(' ')}`);
      const perm = codeValue(sel.untagged, 'PERMANENTFLAGS');
      assert.ok(perm && perm.includes('\\*') && perm.includes('\\Seen'), `PERMANENTFLAGS ${perm}`);
      const uidValidity = Number(codeValue(sel.untagged, 'UIDVALIDITY'));
      assert.ok(uidValidity > 0);
      assert.ok(Number(codeValue(sel.untagged, 'UIDNEXT')) > Math.max(...uids));
      assert.ok(Number(codeValue(sel.untagged, 'HIGHESTMODSEQ')) > 0);

      const ex = await c.ok('EXAMINE INBOX');
      assert.match(ex.tagged, /OK \[READ-ONLY\]/);
      assert.equal(codeValue(ex.untagged, 'PERMANENTFLAGS'), '()');
      assert.equal(Number(codeValue(ex.untagged, 'UIDVALIDITY')), uidValidity);
      assert.match((await c.command('STORE 1 +FLAGS (\\Flagged)')).tagged, /^T\d+ NO /, 'STORE in a read-only mailbox');
      // A body fetch without PEEK does not set \Seen in EXAMINE.
      const before = flagsOf((await c.ok('FETCH 1 (FLAGS)')).untagged[0]!);
      await c.ok('FETCH 1 (BODY[TEXT])');
      assert.deepEqual(flagsOf((await c.ok('FETCH 1 (FLAGS)')).untagged[0]!), before);
      assert.match((await c.command('SELECT Nowhere')).tagged, /^T\d+ NO /);
      assert.equal((await c.command('FETCH 1 (FLAGS)')).status, 'BAD', 'a failed SELECT deselects');
    } finally {
      c.close();
    }
  });

  // ----- FETCH -----

  it('FETCH every item of a multipart message (raw), and \\Seen only without PEEK', async () => {
    const mp = multipartMessage();
    await deliver(smtp, 'carol@example.test', mp.raw);
    await deliver(smtp, 'carol@example.test', mp.raw);
    const c = await rawLogin(imap, 'carol@example.test');
    try {
      await c.ok('SELECT INBOX');
      const [uid1, uid2] = await uidsOf(c);
      assert.ok(uid1 && uid2);
      const r = await c.ok(`UID FETCH ${uid1} (FLAGS UID INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[])`);
      const line = r.untagged.find((l) => / FETCH /.test(l))!;
      assert.ok(line, r.untagged.join('\n'));
      assert.deepEqual(flagsOf(line), [], 'a new message has no flags');
      assert.equal(Number(fetchAtom(line, 'UID')), uid1);
      const full = fetchItem(line, 'BODY[]')!;
      assert.ok(full, 'BODY[]');
      assert.ok(full.toString('latin1').endsWith(mp.raw), 'BODY[] ends with the message as sent');
      assert.equal(Number(fetchAtom(line, 'RFC822.SIZE')), full.length, 'RFC822.SIZE is exactly the length of BODY[]');
      const internal = /INTERNALDATE "([^"]+)"/.exec(line)?.[1];
      const dm = /^ ?(\d{1,2})-([A-Z][a-z]{2})-(\d{4}) (\d\d:\d\d:\d\d) ([+-]\d{4})$/.exec(internal ?? '');
      assert.ok(dm, `INTERNALDATE format (RFC 9051 date-time): ${internal}`);
      const arrival = Date.parse(`${dm[1]} ${dm[2]} ${dm[3]} ${dm[4]} ${dm[5]}`);
      assert.ok(Math.abs(arrival - Date.now()) < 10 * 60_000, `INTERNALDATE is the arrival time: ${internal}`);
      assert.match(line, /ENVELOPE \("Mon, 02 Nov 2026 10:00:00 \+0000" "Multipart fetch test" \(\("Alice Example" NIL "alice" "sender\.example"\)\)/);
      assert.match(line, /"<multipart@sender\.example>"\)/, 'message-id ends the envelope');
      const bs = /BODYSTRUCTURE (\(.*?) BODY \(/.exec(line)?.[1] ?? '';
      assert.match(bs, /"attachment"/i, 'BODYSTRUCTURE has the disposition (extension data)');
      assert.match(bs, /"mixed"/i);
      const body = /BODY (\(.*?) BODY\[\]/.exec(line)?.[1] ?? '';
      assert.ok(body.length > 0, 'BODY');
      assert.doesNotMatch(body, /attachment/i, 'BODY has no extension data');
      assert.match(body, /"message" "rfc822"/i);

      const headerEnd = full.indexOf('\r\n\r\n') + 4;
      const sections = await c.ok(
        `UID FETCH ${uid1} (BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[HEADER.FIELDS (Subject From)] BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[]<0.10> RFC822.HEADER BODY.PEEK[3] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[2])`,
      );
      const s = sections.untagged.find((l) => / FETCH /.test(l))!;
      assert.deepEqual(fetchItem(s, 'BODY[HEADER]'), full.subarray(0, headerEnd));
      assert.deepEqual(fetchItem(s, 'BODY[TEXT]'), full.subarray(headerEnd));
      assert.equal(fetchItem(s, 'BODY[HEADER.FIELDS (Subject From)]')?.toString(), 'From: Alice Example <alice@sender.example>\r\nSubject: Multipart fetch test\r\n\r\n');
      assert.equal(fetchItem(s, 'BODY[1]')?.toString(), mp.textBody);
      assert.equal(fetchItem(s, 'BODY[2.MIME]')?.toString(), mp.part2Mime);
      assert.equal(fetchItem(s, 'BODY[2]')?.toString(), mp.b64Part);
      assert.deepEqual(fetchItem(s, 'BODY[]<0>'), full.subarray(0, 10), 'partial BODY[]<0.10>');
      assert.deepEqual(fetchItem(s, 'RFC822.HEADER'), full.subarray(0, headerEnd));
      assert.equal(fetchItem(s, 'BODY[3]')?.toString(), mp.innerHeader + mp.innerBody);
      assert.equal(fetchItem(s, 'BODY[3.HEADER]')?.toString(), mp.innerHeader);
      assert.equal(fetchItem(s, 'BODY[3.TEXT]')?.toString(), mp.innerBody);

      const bin = await c.ok(`UID FETCH ${uid1} (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1] BODY.PEEK[]<10.20>)`);
      const b = bin.untagged.find((l) => / FETCH /.test(l))!;
      assert.deepEqual(fetchItem(b, 'BINARY[2]'), mp.attachment, 'BINARY[2] is the attachment, decoded');
      assert.match(b, /BINARY\[2\] ~\{300\}/, 'NUL bytes go as literal8');
      assert.equal(Number(fetchAtom(b, 'BINARY.SIZE[2]')), mp.attachment.length);
      assert.equal(fetchItem(b, 'BINARY[1]')?.toString(), mp.textBody);
      assert.deepEqual(fetchItem(b, 'BODY[]<10>'), full.subarray(10, 30));
      assert.deepEqual(flagsOf((await c.ok(`UID FETCH ${uid1} (FLAGS)`)).untagged[0]!), [], 'PEEK left \\Seen unset');

      // Without PEEK: \Seen is set, and the FETCH response says so.
      const seen = await c.ok(`UID FETCH ${uid1} (BODY[])`);
      assert.ok(flagsOf(seen.untagged.find((l) => / FETCH /.test(l))!).includes('\\Seen'), `FLAGS in the response: ${seen.untagged[0]?.slice(0, 80)}`);
      assert.ok(flagsOf((await c.ok(`UID FETCH ${uid1} (FLAGS)`)).untagged[0]!).includes('\\Seen'));
      const bin2 = await c.ok(`UID FETCH ${uid2} (BINARY[2])`);
      assert.deepEqual(fetchItem(bin2.untagged.find((l) => / FETCH /.test(l))!, 'BINARY[2]'), mp.attachment);
      assert.ok(flagsOf((await c.ok(`UID FETCH ${uid2} (FLAGS)`)).untagged[0]!).includes('\\Seen'), 'BINARY[] sets \\Seen');

      // Non-UID FETCH by sequence number, macros, and errors.
      const fast = await c.ok('FETCH 1:2 FAST');
      assert.equal(fast.untagged.filter((l) => /^\* [12] FETCH \(/.test(l) && /RFC822\.SIZE/.test(l) && /INTERNALDATE/.test(l)).length, 2);
      assert.equal((await c.command('FETCH 5 (FLAGS)')).status, 'BAD', 'sequence number out of range');
      assert.equal((await c.command('FETCH 1 (BOGUS)')).status, 'BAD');
      assert.equal((await c.ok('UID FETCH 999999 (FLAGS)')).untagged.length, 0, 'a UID that is not there: nothing, OK');
    } finally {
      c.close();
    }
  });

  it('FETCH with imapflow (fetchOne, fetch, download) and imaplib agree with the message', async () => {
    const mp = multipartMessage();
    await deliver(smtp, 'carol@example.test', mp.raw);
    const client = flowClient(imap, 'carol@example.test');
    await client.connect();
    let uid: number;
    try {
      const box = await client.mailboxOpen('INBOX');
      const msg = await client.fetchOne(String(box.exists), { uid: true, flags: true, envelope: true, bodyStructure: true, internalDate: true, size: true, source: true, headers: ['subject', 'from'], bodyParts: ['1', '2.mime'] });
      assert.ok(msg);
      uid = msg.uid;
      assert.ok(msg.source!.toString('latin1').endsWith(mp.raw));
      assert.equal(msg.size, msg.source!.length);
      assert.equal(msg.flags?.size, 0, 'fetchOne peeks');
      assert.ok(msg.internalDate instanceof Date && Math.abs(msg.internalDate.getTime() - Date.now()) < 10 * 60_000);
      const env = msg.envelope!;
      assert.equal(env.subject, 'Multipart fetch test');
      assert.equal(env.messageId, '<multipart@sender.example>');
      assert.equal(new Date(env.date ?? 0).toISOString(), '2026-11-02T10:00:00.000Z');
      assert.deepEqual(env.from, [{ name: 'Alice Example', address: 'alice@sender.example' }]);
      assert.deepEqual(env.sender, env.from, 'sender defaults to From');
      assert.deepEqual(env.replyTo, env.from, 'reply-to defaults to From');
      assert.deepEqual(env.to, [{ name: 'Bob', address: 'bob@example.test' }]);
      assert.equal(env.cc?.length, 1, 'one Cc');
      assert.equal(env.cc?.[0]?.address, 'carol@example.test');

      const bs = msg.bodyStructure!;
      assert.equal(bs.type, 'multipart/mixed');
      assert.equal(bs.parameters?.boundary, 'outer-boundary');
      const [p1, p2, p3] = bs.childNodes!;
      assert.equal(p1!.part, '1');
      assert.equal(p1!.type, 'text/plain');
      assert.equal(p1!.parameters?.charset, 'utf-8');
      assert.equal(p1!.size, mp.textBody.length, 'part 1 size is the length of BODY[1]');
      assert.ok(p1!.lineCount === 1 || p1!.lineCount === 2, `text lines: ${p1!.lineCount}`);
      assert.equal(p2!.part, '2');
      assert.equal(p2!.type, 'application/octet-stream');
      assert.equal(p2!.encoding, 'base64');
      assert.equal(p2!.size, mp.b64Part.length, 'part 2 size is the length of BODY[2]');
      assert.equal(p2!.disposition, 'attachment');
      assert.equal(p2!.dispositionParameters?.filename, 'data.bin');
      assert.equal(p2!.parameters?.name, 'data.bin');
      assert.equal(p3!.part, '3');
      assert.equal(p3!.type, 'message/rfc822');
      assert.equal(p3!.size, (mp.innerHeader + mp.innerBody).length);
      assert.equal(p3!.envelope?.subject, 'Inner message');
      assert.equal(p3!.envelope?.from?.[0]?.address, 'carol@inner.example');

      assert.equal(msg.bodyParts?.get('1')?.toString(), mp.textBody);
      assert.equal(msg.bodyParts?.get('2.mime')?.toString(), mp.part2Mime);
      assert.equal(msg.headers?.toString(), 'From: Alice Example <alice@sender.example>\r\nSubject: Multipart fetch test\r\n\r\n');

      const { content, meta } = await client.download(String(uid), '2', { uid: true });
      assert.ok(content && meta, 'download');
      const chunks: Buffer[] = [];
      for await (const chunk of content) chunks.push(chunk as Buffer);
      assert.deepEqual(Buffer.concat(chunks), mp.attachment, 'download decodes the attachment to the original bytes');
      assert.equal(meta.filename, 'data.bin');

      let count = 0;
      for await (const m of client.fetch('1:*', { uid: true, size: true, flags: true })) {
        assert.ok(m.uid > 0 && (m.size ?? 0) > 0);
        count++;
      }
      assert.equal(count, box.exists);
    } finally {
      await client.logout();
    }
    const py = runPython(PY_FETCH, [String(imap), 'carol@example.test', PASSWORD, String(uid)]);
    assert.equal(py.size, py.len, 'imaplib: RFC822.SIZE equals len(BODY[])');
    assert.equal(py.binary_sha, sha(mp.attachment), 'imaplib: BINARY[2] is the attachment');
    assert.equal(py.binary_len, 300);
    assert.equal(py.binary_size, 300);
    assert.doesNotMatch(String(py.flags), /\\Seen/, 'imaplib: PEEK left \\Seen unset');
  });

  // ----- IDLE -----

  it('IDLE: new mail is announced within 1 s of the 250 (raw IDLE and imapflow idle())', async () => {
    const c = await rawLogin(imap, 'erin@example.test');
    try {
      const sel = await c.ok('SELECT INBOX');
      const exists = Number(/^\* (\d+) EXISTS/m.exec(sel.untagged.join('\n'))![1]);
      c.write('I1 IDLE\r\n');
      assert.match(await c.next(), /^\+ /);
      const sent = deliver(smtp, 'erin@example.test', simpleMessage('erin@example.test', 'idle one'));
      const { match } = await c.until(/^\* \d+ EXISTS$/, 10_000);
      const seen = Date.now();
      const at250 = await sent;
      assert.equal(match, `* ${exists + 1} EXISTS`);
      assert.ok(seen - at250 < 1000, `EXISTS ${seen - at250} ms after the 250`);
      c.write('DONE\r\n');
      const done = await c.tagged('I1');
      assert.equal(done.status, 'OK');
      await c.ok('NOOP');
      assert.equal((await c.ok('FETCH 1:* (UID)')).untagged.length, exists + 1);

      // Another session's flag change and expunge arrive during IDLE too.
      c.write('I2 IDLE\r\n');
      assert.match(await c.next(), /^\+ /);
      const other = await rawLogin(imap, 'erin@example.test');
      try {
        await other.ok('SELECT INBOX');
        await other.ok('STORE 1 +FLAGS (\\Flagged)');
        const flagged = await c.until(/^\* 1 FETCH /, 3000);
        assert.ok(flagsOf(flagged.match).includes('\\Flagged'));
        await other.ok('STORE 1 +FLAGS.SILENT (\\Deleted)');
        await other.ok('EXPUNGE');
        assert.equal((await c.until(/EXPUNGE/, 3000)).match, '* 1 EXPUNGE');
      } finally {
        other.close();
      }
      c.write('done\r\n');
      assert.equal((await c.tagged('I2')).status, 'OK', 'DONE is case-insensitive');
      assert.equal((await c.ok('FETCH 1:* (UID)')).untagged.length, exists);
    } finally {
      c.close();
    }

    const client = flowClient(imap, 'erin@example.test');
    await client.connect();
    try {
      const box = await client.mailboxOpen('INBOX');
      const before = box.exists;
      const announced = new Promise<{ count: number; at: number }>((resolve) => client.on('exists', (e: { count: number }) => resolve({ count: e.count, at: Date.now() })));
      const idling = client.idle();
      await new Promise((r) => setTimeout(r, 200));
      const at250 = await deliver(smtp, 'erin@example.test', simpleMessage('erin@example.test', 'idle two'));
      const got = await Promise.race([announced, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
      assert.ok(got, 'imapflow got an exists event');
      assert.equal(got.count, before + 1);
      assert.ok(got.at - at250 < 1000, `imapflow: ${got.at - at250} ms after the 250`);
      void idling.catch(() => undefined);
    } finally {
      await client.logout();
    }
  });

  // ----- two sessions -----

  it('concurrent sessions: flag changes at NOOP; EXPUNGE at NOOP but not during a FETCH', async () => {
    for (let i = 1; i <= 3; i++) await deliver(smtp, 'dave@example.test', simpleMessage('dave@example.test', `conc ${i}`));
    const a = await rawLogin(imap, 'dave@example.test');
    const b = await rawLogin(imap, 'dave@example.test');
    try {
      await a.ok('SELECT INBOX');
      await b.ok('SELECT INBOX');
      const uids = await uidsOf(a);
      assert.equal(uids.length, 3);

      await b.ok('STORE 1 +FLAGS (\\Flagged)');
      const n1 = await a.ok('NOOP');
      const flagged = n1.untagged.find((l) => /^\* 1 FETCH \(/.test(l));
      assert.ok(flagged, `A sees the flag change at NOOP: ${n1.untagged.join(' | ')}`);
      assert.ok(flagsOf(flagged).includes('\\Flagged'));
      assert.equal(Number(fetchAtom(flagged, 'UID') ?? uids[0]), uids[0]);

      await b.ok('STORE 2 +FLAGS.SILENT (\\Deleted)');
      const ex = await b.ok('EXPUNGE');
      assert.ok(ex.untagged.includes('* 2 EXPUNGE'), `B's own EXPUNGE: ${ex.untagged.join(' | ')}`);

      // A's FETCH by sequence number: no EXPUNGE while it runs (RFC 9051 §7.5.1); sequence numbers
      // still as A knows them, so message 3 is still the third UID.
      const f = await a.ok('FETCH 1:3 (UID)');
      assert.ok(!f.untagged.some((l) => /EXPUNGE/.test(l)), `no EXPUNGE during FETCH: ${f.untagged.join(' | ')}`);
      const third = f.untagged.find((l) => /^\* 3 FETCH /.test(l));
      assert.ok(third, `message 3 keeps its number: ${f.untagged.join(' | ')}`);
      assert.equal(Number(fetchAtom(third, 'UID')), uids[2]);
      const s = await a.ok('STORE 3 +FLAGS (\\Answered)');
      assert.ok(!s.untagged.some((l) => /EXPUNGE/.test(l)), 'no EXPUNGE during STORE');

      const n2 = await a.ok('NOOP');
      assert.ok(n2.untagged.includes('* 2 EXPUNGE'), `EXPUNGE at NOOP: ${n2.untagged.join(' | ')}`);
      assert.deepEqual(await uidsOf(a), [uids[0], uids[2]]);
      // B hears about A's \Answered.
      const n3 = await b.ok('NOOP');
      assert.ok(n3.untagged.some((l) => /^\* 2 FETCH \(/.test(l) && flagsOf(l).includes('\\Answered')), n3.untagged.join(' | '));
      // New mail reaches both at their next command.
      await deliver(smtp, 'dave@example.test', simpleMessage('dave@example.test', 'conc 4'));
      assert.ok((await a.ok('NOOP')).untagged.includes('* 3 EXISTS'));
      assert.ok((await b.ok('NOOP')).untagged.includes('* 3 EXISTS'));
    } finally {
      a.close();
      b.close();
    }
  });

  // ----- CONDSTORE / QRESYNC -----

  it('QRESYNC: SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE ... VANISHED) report what changed', async () => {
    for (let i = 1; i <= 4; i++) await deliver(smtp, 'frank@example.test', simpleMessage('frank@example.test', `qr ${i}`));
    const a = await rawLogin(imap, 'frank@example.test');
    let uidValidity: number;
    let modseq: number;
    let uids: number[];
    try {
      const en = await a.ok('ENABLE QRESYNC');
      assert.ok(en.untagged.some((l) => /^\* ENABLED .*QRESYNC/.test(l)), en.untagged.join(' | '));
      const sel = await a.ok('SELECT INBOX');
      uidValidity = Number(codeValue(sel.untagged, 'UIDVALIDITY'));
      modseq = Number(codeValue(sel.untagged, 'HIGHESTMODSEQ'));
      uids = await uidsOf(a);
      assert.equal(uids.length, 4);
      const ms = await a.ok('FETCH 1:* (MODSEQ)');
      for (const l of ms.untagged) assert.ok(Number(/MODSEQ \((\d+)\)/.exec(l)![1]) <= modseq, 'no MODSEQ above HIGHESTMODSEQ');
      await a.ok('LOGOUT');
    } finally {
      a.close();
    }

    const b = await rawLogin(imap, 'frank@example.test');
    try {
      await b.ok('SELECT INBOX');
      await b.ok(`UID STORE ${uids[1]} +FLAGS (\\Answered $Label1)`);
      await b.ok(`UID STORE ${uids[2]} +FLAGS (\\Deleted)`);
      await b.ok(`UID EXPUNGE ${uids[2]}`);
    } finally {
      b.close();
    }

    const c = await rawLogin(imap, 'frank@example.test');
    try {
      await c.ok('ENABLE QRESYNC');
      const sel = await c.ok(`SELECT INBOX (QRESYNC (${uidValidity} ${modseq}))`);
      assert.ok(sel.untagged.includes(`* VANISHED (EARLIER) ${uids[2]}`), `VANISHED (EARLIER): ${sel.untagged.join(' | ')}`);
      const fetches = sel.untagged.filter((l) => / FETCH /.test(l));
      assert.equal(fetches.length, 1, `only the changed message: ${fetches.join(' | ')}`);
      assert.equal(Number(fetchAtom(fetches[0]!, 'UID')), uids[1]);
      assert.ok(flagsOf(fetches[0]!).includes('\\Answered') && flagsOf(fetches[0]!).includes('$Label1'));
      const newModseq = Number(/MODSEQ \((\d+)\)/.exec(fetches[0]!)?.[1]);
      assert.ok(newModseq > modseq, 'the change has a higher MODSEQ');
      assert.ok(Number(codeValue(sel.untagged, 'HIGHESTMODSEQ')) >= newModseq);
      assert.match(sel.untagged.join('\n'), /^\* 3 EXISTS$/m);

      const uf = await c.ok(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq} VANISHED)`);
      assert.ok(uf.untagged.includes(`* VANISHED (EARLIER) ${uids[2]}`), uf.untagged.join(' | '));
      const uff = uf.untagged.filter((l) => / FETCH /.test(l));
      assert.equal(uff.length, 1);
      assert.equal(Number(fetchAtom(uff[0]!, 'UID')), uids[1]);
      assert.equal(Number(/MODSEQ \((\d+)\)/.exec(uff[0]!)?.[1]), newModseq);

      const cs = await c.ok(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq})`);
      assert.equal(cs.untagged.filter((l) => / FETCH /.test(l)).length, 1, 'CHANGEDSINCE without VANISHED');

      // known-uids limit VANISHED to what the client knows (RFC 7162 §3.2.5).
      const known = await c.ok(`SELECT INBOX (QRESYNC (${uidValidity} ${modseq} ${uids[0]}:${uids[1]}))`);
      assert.ok(!known.untagged.some((l) => l.startsWith('* VANISHED')), known.untagged.join(' | '));
      // A UIDVALIDITY that does not match: no incremental data at all.
      const stale = await c.ok(`SELECT INBOX (QRESYNC (${uidValidity + 1} ${modseq}))`);
      assert.ok(!stale.untagged.some((l) => l.startsWith('* VANISHED') || / FETCH /.test(l)), stale.untagged.join(' | '));

      // Live, with QRESYNC enabled, another session's expunge arrives as VANISHED, not EXPUNGE.
      const d = await rawLogin(imap, 'frank@example.test');
      try {
        await d.ok('SELECT INBOX');
        await d.ok(`UID STORE ${uids[3]} +FLAGS.SILENT (\\Deleted)`);
        await d.ok(`UID EXPUNGE ${uids[3]}`);
      } finally {
        d.close();
      }
      const n = await c.ok('NOOP');
      assert.ok(n.untagged.includes(`* VANISHED ${uids[3]}`), n.untagged.join(' | '));
      assert.ok(!n.untagged.some((l) => /EXPUNGE/.test(l)));

      // CONDSTORE STORE UNCHANGEDSINCE: a stale modseq fails with [MODIFIED].
      const cond = await c.command(`UID STORE ${uids[1]} (UNCHANGEDSINCE ${modseq}) +FLAGS (\\Flagged)`);
      assert.match(cond.tagged, new RegExp(`OK \\[MODIFIED ${uids[1]}\\]`));
      const cond2 = await c.ok(`UID STORE ${uids[1]} (UNCHANGEDSINCE ${newModseq}) +FLAGS (\\Flagged)`);
      assert.ok(cond2.untagged.some((l) => /MODSEQ \(\d+\)/.test(l) && flagsOf(l).includes('\\Flagged')));
    } finally {
      c.close();
    }

    // imapflow with qresync: true, resynchronizing from the first session's state.
    const client = flowClient(imap, 'frank@example.test', { qresync: true });
    const expunged: Array<{ uid?: number; vanished: boolean; earlier?: boolean }> = [];
    const flagEvents: Array<{ uid?: number; flags: Set<string> }> = [];
    client.on('expunge', (e: { uid?: number; vanished: boolean; earlier?: boolean }) => expunged.push(e));
    client.on('flags', (e: { uid?: number; flags: Set<string> }) => flagEvents.push(e));
    await client.connect();
    try {
      assert.ok(client.enabled.has('QRESYNC'));
      await client.mailboxOpen('INBOX', { uidValidity, changedSince: modseq });
      const vanishedUids = expunged.filter((e) => e.vanished && e.earlier).map((e) => e.uid).sort((x, y) => x! - y!);
      assert.deepEqual(vanishedUids, [uids[2], uids[3]], `imapflow expunge events: ${JSON.stringify(expunged)}`);
      const changed = flagEvents.find((e) => e.uid === uids[1]);
      assert.ok(changed, `imapflow flags events: ${JSON.stringify(flagEvents.map((e) => ({ uid: e.uid, flags: [...e.flags] })))}`);
      assert.ok(changed.flags.has('\\Answered') && changed.flags.has('\\Flagged'));
      const msgs = [];
      for await (const m of client.fetch('1:*', { flags: true }, { uid: true, changedSince: BigInt(modseq) })) msgs.push(m);
      assert.deepEqual(msgs.map((m) => m.uid), [uids[1]]);
    } finally {
      await client.logout();
    }
  });

  // ----- COMPRESS -----

  it('COMPRESS DEFLATE: commands and answers round-trip compressed', async () => {
    const c = await rawLogin(imap, 'bob@example.test');
    try {
      const r = await c.command('COMPRESS DEFLATE');
      assert.equal(r.status, 'OK', r.tagged);
      c.startCompression();
      const noop = await c.command('NOOP');
      assert.equal(noop.status, 'OK', noop.tagged);
      const caps = capsOf((await c.ok('CAPABILITY')).untagged.find((l) => l.startsWith('* CAPABILITY '))!);
      assert.ok(!caps.includes('COMPRESS=DEFLATE'), 'not offered again');
      assert.match((await c.command('COMPRESS DEFLATE')).tagged, /NO \[COMPRESSIONACTIVE\]/);
      await c.ok('SELECT INBOX');
      const body = await c.ok('FETCH 1 (RFC822.SIZE BODY.PEEK[])');
      const line = body.untagged.find((l) => / FETCH /.test(l))!;
      assert.equal(fetchItem(line, 'BODY[]')?.length, Number(fetchAtom(line, 'RFC822.SIZE')));
      const big = await c.ok('FETCH 1:* (BODY.PEEK[] BODYSTRUCTURE)');
      assert.ok(big.untagged.length >= 1);
    } finally {
      c.close();
    }
  });

  it('COMPRESS DEFLATE: LOGOUT still gets BYE and OK before the close', async () => {
    const c = await rawLogin(imap, 'bob@example.test');
    try {
      assert.equal((await c.command('COMPRESS DEFLATE')).status, 'OK');
      c.startCompression();
      await c.ok('NOOP');
      c.write('Z LOGOUT\r\n');
      const bye = await c.until(/^Z /, 3000);
      assert.ok(bye.before.some((l) => l.startsWith('* BYE')));
      assert.match(bye.match, /^Z OK/);
      assert.ok(await c.waitClosed(3000));
    } finally {
      c.close();
    }
  });

  it('LOGOUT: BYE, then OK, then the server closes', async () => {
    const c = await RawImap.connect(imap);
    try {
      await c.next();
      const r = await c.command('LOGOUT');
      assert.equal(r.status, 'OK');
      assert.equal(r.untagged.length, 1);
      assert.match(r.untagged[0]!, /^\* BYE /);
      assert.ok(await c.waitClosed(3000), 'closed after LOGOUT');
    } finally {
      c.close();
    }
    const d = await rawLogin(imap, 'bob@example.test');
    try {
      await d.ok('SELECT INBOX');
      const r = await d.command('LOGOUT');
      assert.match(r.untagged.join('\n'), /^\* BYE /m);
      assert.equal(r.status, 'OK');
      assert.ok(await d.waitClosed(3000));
    } finally {
      d.close();
    }
  });

  // ----- restart (last: it replaces the server) -----

  it('UIDVALIDITY and UIDs are stable across a server restart', async () => {
    const snapshot = async () => {
      const c = await rawLogin(imap, 'bob@example.test');
      try {
        const sel = await c.ok('SELECT INBOX');
        const r = await c.ok('UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (Message-ID)])');
        const map = r.untagged.filter((l) => / FETCH /.test(l)).map((l) => `${fetchAtom(l, 'UID')} ${fetchItem(l, 'BODY[HEADER.FIELDS (Message-ID)]')?.toString().trim()}`);
        return { uidValidity: Number(codeValue(sel.untagged, 'UIDVALIDITY')), uidNext: Number(codeValue(sel.untagged, 'UIDNEXT')), map };
      } finally {
        c.close();
      }
    };
    const before = await snapshot();
    assert.ok(before.map.length >= 2);
    // A connected session is told when the server shuts down.
    const watcher = await rawLogin(imap, 'bob@example.test');
    await watcher.ok('SELECT INBOX');
    const stopped = server.stop();
    const bye = await watcher.until(/^\* BYE/, 10_000);
    assert.match(bye.match, /^\* BYE /);
    assert.ok(await watcher.waitClosed(5000));
    assert.equal(await stopped, 0, 'clean exit on SIGTERM');
    server = await startYubin(dir, SERVE_ARGS);
    ({ imap, imaps, smtp } = server.ports as { imap: number; imaps: number; smtp: number });
    const afterRestart = await snapshot();
    assert.equal(afterRestart.uidValidity, before.uidValidity);
    assert.deepEqual(afterRestart.map, before.map);
    assert.equal(afterRestart.uidNext, before.uidNext);
    await deliver(smtp, 'bob@example.test', simpleMessage('bob@example.test', 'after restart'));
    const later = await snapshot();
    assert.equal(Number(later.map.at(-1)!.split(' ')[0]), before.uidNext, 'the next message gets the predicted UIDNEXT');
  });
});

// -------------------------------------------------------------------------------------------
describe('IMAP authentication policy', () => {
  it('plaintext = "never": LOGINDISABLED and NO [PRIVACYREQUIRED] until STARTTLS', async () => {
    const dir = makeDataDir('yubin-imap-never-');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nplaintext = "never"\nfailure_delay = 0\n');
    const server = await startYubin(dir, SERVE_ARGS);
    try {
      const c = await RawImap.connect(server.ports.imap!);
      try {
        const caps = capsOf(await c.next());
        assert.ok(caps.includes('LOGINDISABLED') && caps.includes('STARTTLS'), caps.join(' '));
        assert.ok(!caps.some((x) => x.startsWith('AUTH=')), `no AUTH= mechanisms without TLS: ${caps.join(' ')}`);
        assert.match((await c.command(`LOGIN bob@example.test ${PASSWORD}`)).tagged, /^T\d+ NO \[PRIVACYREQUIRED\]/);
        assert.match((await c.command(`AUTHENTICATE PLAIN ${Buffer.from(`\0bob@example.test\0${PASSWORD}`).toString('base64')}`)).tagged, /^T\d+ NO /);
        assert.equal((await c.command('SELECT INBOX')).status, 'BAD', 'not logged in');
        const st = await c.command('STARTTLS');
        assert.equal(st.status, 'OK');
        await c.startTls();
        const tlsCaps = capsOf((await c.ok('CAPABILITY')).untagged.find((l) => l.startsWith('* CAPABILITY '))!);
        assert.ok(!tlsCaps.includes('LOGINDISABLED') && !tlsCaps.includes('STARTTLS') && tlsCaps.includes('AUTH=PLAIN'), tlsCaps.join(' '));
        await c.ok(`LOGIN bob@example.test ${PASSWORD}`);
        await c.ok('SELECT INBOX');
      } finally {
        c.close();
      }
      // Implicit TLS is fine from the start.
      const s = await RawImap.connect(server.ports.imaps!, true);
      try {
        const caps = capsOf(await s.next());
        assert.ok(caps.includes('AUTH=PLAIN') && !caps.includes('LOGINDISABLED'));
        await s.ok(`LOGIN bob@example.test ${PASSWORD}`);
      } finally {
        s.close();
      }
    } finally {
      await server.stop();
    }
  });

  it('failure throttle: with failure_delay = "1s" the second wrong attempt from one IP takes >= 2 s', async () => {
    const dir = makeDataDir('yubin-imap-throttle-');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    cliOk(dir, ['user', 'add', 'carol@example.test', '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = "1s"\n');
    const server = await startYubin(dir, SERVE_ARGS);
    try {
      const c = await RawImap.connect(server.ports.imap!);
      try {
        await c.next();
        const timed = async (cmd: string) => {
          const t0 = Date.now();
          const r = await c.command(cmd, 40_000);
          return { r, ms: Date.now() - t0 };
        };
        const first = await timed('LOGIN bob@example.test wrong1');
        assert.match(first.r.tagged, /NO \[AUTHENTICATIONFAILED\]/);
        assert.ok(first.ms >= 900, `first failure delayed ~1 s: ${first.ms} ms`);
        // Another account, same IP: the IP's count doubles the delay.
        const second = await timed('LOGIN carol@example.test wrong2');
        assert.match(second.r.tagged, /NO \[AUTHENTICATIONFAILED\]/);
        assert.ok(second.ms >= 1900, `second failure from the same IP delayed ~2 s: ${second.ms} ms`);
        // The right password is not delayed.
        const good = await timed(`LOGIN bob@example.test ${PASSWORD}`);
        assert.equal(good.r.status, 'OK');
        // After two failures the next delay would be 4 s; a success must not wait for it.
        assert.ok(good.ms < 3000, `success is not throttled: ${good.ms} ms`);
      } finally {
        c.close();
      }
    } finally {
      await server.stop();
    }
  });
});

// -------------------------------------------------------------------------------------------
describe('IMAP: a mailbox deleted while another session has it selected', () => {
  async function scenario(useIdle: boolean): Promise<void> {
    const dir = makeDataDir('yubin-imap-deleted-');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = 0\n');
    const server = await startYubin(dir, SERVE_ARGS);
    const imap = server.ports.imap!;
    const a = await rawLogin(imap, 'bob@example.test');
    const b = await rawLogin(imap, 'bob@example.test');
    try {
      await a.ok('CREATE Doomed');
      await a.ok('SELECT Doomed');
      if (useIdle) {
        a.write('I IDLE\r\n');
        assert.match(await a.next(), /^\+ /);
      }
      await b.ok('DELETE Doomed');
      let saidBye = false;
      if (useIdle) {
        a.write('DONE\r\n');
        const r = await a.until(/^I |^\* BYE/, 3000);
        assert.doesNotMatch(r.match, /SERVERBUG/, r.match);
        saidBye = r.match.startsWith('* BYE');
      }
      if (saidBye) {
        // The session was told its mailbox is gone and closed: that is an answer.
        assert.ok(await a.waitClosed(3000), 'closed after BYE');
      } else {
        // A's next command: an answer (or BYE), never a dead server.
        a.write('T99 NOOP\r\n');
        const noop = await a.until(/^T99 |^\* BYE/, 3000).catch((err: Error) => ({ match: `no answer: ${err.message}`, before: [] }));
        assert.match(noop.match, /^(T99 (OK|NO|BAD)|\* BYE)/, noop.match);
        assert.doesNotMatch(noop.match, /SERVERBUG/);
      }
      await new Promise((res) => setTimeout(res, 200));
      assert.equal(server.proc.exitCode, null, `the server died: ${server.stderr().split('\n').filter((l) => /Error/.test(l)).slice(0, 3).join('\n')}`);
      await b.ok('NOOP');
    } finally {
      a.close();
      b.close();
      await server.stop();
    }
  }

  it('NOOP in the other session: an answer, and the server stays up', async () => {
    await scenario(false);
  });

  it('IDLE in the other session: an answer, and the server stays up', async () => {
    await scenario(true);
  });
});
