// IMAP STORE, COPY, MOVE, APPEND and QUOTA against a real server: imapflow, Python's imaplib and
// exact command lines over a raw socket (for the untagged responses and response codes the
// libraries swallow). Every acceptance is checked against what the store holds afterwards, and
// every quota refusal against the account's usage (nothing half-written). FETCH is not used:
// state is observed through STORE responses, STATUS, COPYUID/APPENDUID and the store itself.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import { cliOk, makeDataDir, python, startYubin, userRow, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox } from '../helpers/mailbox.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const PASSWORD = 'correct-horse-42';
const DOMAIN = 'example.test';

interface Reply {
  untagged: string[];
  tagged: string;
  status: 'OK' | 'NO' | 'BAD';
}

/** A minimal IMAP client: command lines in, response lines out (literals inlined). */
class RawImap {
  private buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private closed = false;
  private tagCounter = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<RawImap> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawImap(socket);
    const greeting = await client.line();
    assert.match(greeting, /^\* OK /);
    return client;
  }

  static async login(port: number, user: string): Promise<RawImap> {
    const client = await RawImap.connect(port);
    const reply = await client.command(`LOGIN ${user} ${PASSWORD}`);
    assert.equal(reply.status, 'OK', reply.tagged);
    return client;
  }

  private async waitFor(predicate: () => boolean): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (!predicate()) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error(`timeout; have ${JSON.stringify(this.buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 200).unref();
      });
      this.wake = null;
    }
  }

  /** One response line without CRLF; a literal at its end is inlined (as latin1). */
  async line(): Promise<string> {
    let out = '';
    for (;;) {
      await this.waitFor(() => this.buffer.indexOf('\r\n') >= 0);
      const end = this.buffer.indexOf('\r\n');
      const text = this.buffer.toString('latin1', 0, end);
      this.buffer = this.buffer.subarray(end + 2);
      out += text;
      const literal = /\{(\d+)\}$/.exec(text);
      if (!literal) return out;
      const size = Number(literal[1]);
      await this.waitFor(() => this.buffer.length >= size);
      out += '\r\n' + this.buffer.toString('latin1', 0, size);
      this.buffer = this.buffer.subarray(size);
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Sends `tag text` (raw bytes may follow in `extra`, e.g. a LITERAL+ body) and collects the reply. */
  async command(text: string, extra?: Buffer): Promise<Reply> {
    const tag = `t${++this.tagCounter}`;
    const head = Buffer.from(`${tag} ${text}${extra ? '' : '\r\n'}`, 'latin1');
    this.write(extra ? Buffer.concat([head, extra, Buffer.from('\r\n')]) : head);
    return this.collect(tag);
  }

  async collect(tag: string): Promise<Reply> {
    const untagged: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line.startsWith(`${tag} `)) {
        const status = line.slice(tag.length + 1).split(' ')[0] as Reply['status'];
        return { untagged, tagged: line, status };
      }
      untagged.push(line);
    }
  }

  /** APPEND with a LITERAL+ body (no continuation round trip). */
  append(mailbox: string, bytes: Buffer, options: { flags?: string; date?: string } = {}): Promise<Reply> {
    const parts = [`APPEND ${mailbox}`];
    if (options.flags !== undefined) parts.push(options.flags);
    if (options.date !== undefined) parts.push(`"${options.date}"`);
    parts.push(`{${bytes.length}+}\r\n`);
    return this.command(parts.join(' '), bytes);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.write('z LOGOUT\r\n');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        this.socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.socket.destroy();
  }
}

interface StoredDetail {
  uid: number;
  flags: string[];
  internalDate: Date;
  size: number;
  bytes: Buffer;
  modSeq: number;
}

/** Messages of a mailbox as the store holds them, with flags and dates. */
async function stored(dataDir: string, address: string, mailboxName = 'INBOX'): Promise<StoredDetail[]> {
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  try {
    const account = await store.getAccount(address);
    if (!account) throw new Error(`no account ${address}`);
    const mailbox = (await store.listMailboxes(account.id)).find((m) => m.name === mailboxName);
    if (!mailbox) throw new Error(`no mailbox ${mailboxName}`);
    const out: StoredDetail[] = [];
    for (const m of await store.listMessages(mailbox.id)) {
      out.push({ uid: m.uid, flags: m.flags, internalDate: m.internalDate, size: m.size, bytes: await store.readMessage(m), modSeq: m.modSeq });
    }
    return out;
  } finally {
    await store.close();
  }
}

function message(tag: string, body = ''): Buffer {
  return Buffer.from(
    `From: Alice <alice@sender.example>\r\nTo: someone@${DOMAIN}\r\nSubject: test ${tag}\r\nMessage-ID: <${tag}@sender.example>\r\n` +
      `Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\nHello,\r\nthis is message ${tag}.\r\n${body}`,
    'utf8',
  );
}

/** "* STATUS box (MESSAGES 2 UNSEEN 1 SIZE 400)" → { MESSAGES: 2, ... } */
async function status(c: RawImap, mailbox: string, items = 'MESSAGES UNSEEN SIZE UIDNEXT'): Promise<Record<string, number>> {
  const reply = await c.command(`STATUS ${mailbox} (${items})`);
  assert.equal(reply.status, 'OK', reply.tagged);
  const line = reply.untagged.find((l) => l.startsWith('* STATUS '));
  assert.ok(line, `no STATUS response: ${JSON.stringify(reply)}`);
  const inner = /\(([^)]*)\)$/.exec(line)![1]!.split(' ');
  const out: Record<string, number> = {};
  for (let i = 0; i + 1 < inner.length; i += 2) out[inner[i]!] = Number(inner[i + 1]);
  return out;
}

function codeOf(tagged: string): string | null {
  const m = /^\S+ (?:OK|NO|BAD) \[([^\]]*)\]/.exec(tagged);
  return m ? m[1]! : null;
}

/** Expands "1:3,7" into [1, 2, 3, 7]. */
function expandSet(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split(':').map(Number) as [number, number | undefined];
    for (let n = a; n <= (b ?? a); n++) out.push(n);
  }
  return out;
}

function sameSet(a: string[], b: string[]): void {
  assert.deepEqual([...a].sort(), [...b].sort());
}

describe('IMAP STORE, COPY, MOVE, APPEND and QUOTA', () => {
  let dataDir: string;
  let server: RunningYubin;
  let port: number;
  const clients: Array<{ close(): Promise<unknown> }> = [];

  function user(name: string, quota?: string): string {
    const address = `${name}@${DOMAIN}`;
    cliOk(dataDir, ['user', 'add', address, '--password', PASSWORD, ...(quota ? ['--quota', quota] : [])]);
    return address;
  }

  async function raw(address: string): Promise<RawImap> {
    const c = await RawImap.login(port, address);
    clients.push(c);
    return c;
  }

  async function flow(address: string): Promise<ImapFlow> {
    const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: address, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await client.connect();
    clients.push({ close: () => client.logout().catch(() => undefined) });
    return client;
  }

  before(async () => {
    dataDir = makeDataDir('yubin-imap-sca-');
    // Every SELECT through the shared mailbox snapshots (src/imap/mailbox-views.ts).
    writeConfig(dataDir, '[auth]\nfailure_delay = 0\n[imap]\nsnapshot_min_messages = 0\n');
    cliOk(dataDir, ['domain', 'add', DOMAIN]);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0']);
    port = server.ports.imap!;
    assert.ok(port, `no imap port: ${server.stdout()}`);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await server?.stop();
  });

  describe('APPEND', () => {
    it('stores the octets given, with flags and date, and answers APPENDUID (imapflow)', async () => {
      const address = user('app1');
      const client = await flow(address);
      // Mixed line ends on purpose: APPEND stores the message with CRLF line ends only (RFC 5322
      // §2.3; what IMAP counts and POP3 sends must agree), otherwise exactly as given.
      const sent = Buffer.concat([message('flow-1'), Buffer.from('bare LF line\nand a CRLF one\r\n')]);
      const bytes = Buffer.from(sent.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
      const date = new Date('2024-03-05T06:07:08Z');
      const appended = await client.append('INBOX', sent, ['\\Seen', '$Forwarded'], date);
      assert.ok(appended, 'append failed');
      assert.equal(appended.uid, 1);
      assert.ok(appended.uidValidity, 'no APPENDUID uidvalidity');
      const status = await client.status('INBOX', { messages: true, unseen: true, uidValidity: true, uidNext: true });
      assert.equal(status && status.messages, 1);
      assert.equal(status && status.unseen, 0);
      assert.equal(status && status.uidValidity, appended.uidValidity);
      assert.equal(status && status.uidNext, 2);

      const [m] = await stored(dataDir, address);
      assert.ok(m);
      assert.equal(m.uid, 1);
      assert.ok(m.bytes.equals(bytes), 'stored octets differ from the appended ones (CRLF-normalised)');
      assert.equal(m.size, bytes.length);
      sameSet(m.flags, ['\\Seen', '$Forwarded']);
      assert.equal(m.internalDate.getTime(), date.getTime());
      assert.equal(userRow(dataDir, address).used, bytes.length);
    });

    it('answers APPENDUID to imaplib, with flags and a zoned date', async () => {
      const address = user('app2');
      const result = python(
        `
import imaplib, json, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login(sys.argv[2], sys.argv[3])
msg = b'Subject: py\\r\\n\\r\\nfrom python\\r\\n'
typ, data = M.append('INBOX', r'(\\Flagged \\Draft)', '"05-Mar-2024 15:07:08 +0900"', msg)
out = {'append': [typ, data[0].decode()]}
typ, data = M.append('INBOX', None, None, msg)
out['plain'] = [typ, data[0].decode()]
typ, data = M.status('INBOX', '(MESSAGES UNSEEN)')
out['status'] = [typ, data[0].decode()]
M.logout()
print(json.dumps(out))
`,
        [String(port), address, PASSWORD],
      );
      assert.equal(result.status, 0, result.stderr);
      const out = JSON.parse(result.stdout) as Record<string, [string, string]>;
      assert.equal(out.append![0], 'OK');
      assert.match(out.append![1], /^\[APPENDUID \d+ 1\] /);
      assert.match(out.plain![1], /^\[APPENDUID \d+ 2\] /);
      assert.match(out.status![1], /\(MESSAGES 2 UNSEEN 2\)/);
      const messages = await stored(dataDir, address);
      assert.equal(messages.length, 2);
      sameSet(messages[0]!.flags, ['\\Flagged', '\\Draft']);
      assert.equal(messages[0]!.internalDate.toISOString(), '2024-03-05T06:07:08.000Z');
      assert.deepEqual(messages[1]!.flags, []);
    });

    it('refuses a missing mailbox with TRYCREATE, an empty message and bad flags with BAD', async () => {
      const address = user('app3');
      const c = await raw(address);
      const missing = await c.append('Nowhere', message('x'));
      assert.equal(missing.status, 'NO');
      assert.equal(codeOf(missing.tagged), 'TRYCREATE');
      const empty = await c.append('INBOX', Buffer.alloc(0));
      assert.equal(empty.status, 'BAD', empty.tagged);
      const badFlag = await c.append('INBOX', message('y'), { flags: '(\\Bogus)' });
      assert.equal(badFlag.status, 'BAD', badFlag.tagged);
      const badDate = await c.append('INBOX', message('y'), { date: '31-Feb-2024 00:00:00 +0000' });
      assert.equal(badDate.status, 'BAD', badDate.tagged);
      // \Recent cannot be stored: ignored, not refused.
      const recent = await c.append('INBOX', message('z'), { flags: '(\\Recent \\Seen)' });
      assert.equal(recent.status, 'OK', recent.tagged);
      assert.match(codeOf(recent.tagged) ?? '', /^APPENDUID \d+ 1$/);
      const messages = await stored(dataDir, address);
      assert.equal(messages.length, 1);
      assert.deepEqual(messages[0]!.flags, ['\\Seen']);
      assert.equal(userRow(dataDir, address).messages, 1);
    });

    it('announces a message appended to the selected mailbox (EXISTS before the tagged OK)', async () => {
      const address = user('app4');
      const c = await raw(address);
      await c.append('INBOX', message('a'));
      const select = await c.command('SELECT INBOX');
      assert.ok(select.untagged.includes('* 1 EXISTS'), JSON.stringify(select.untagged));
      const reply = await c.append('INBOX', message('b'));
      assert.equal(reply.status, 'OK');
      assert.ok(reply.untagged.includes('* 2 EXISTS'), JSON.stringify(reply.untagged));
    });

    it('accepts the UTF8 (~{n}) form after ENABLE UTF8=ACCEPT, and not before', async () => {
      const address = user('app5');
      const c = await raw(address);
      const bytes = Buffer.from('Subject: =?utf-8?q?x?=\r\nFrom: 郵便 <yubin@example.test>\r\n\r\nこんにちは\r\n', 'utf8');
      const early = await c.command(`APPEND INBOX UTF8 (~{${bytes.length}+}\r\n`, Buffer.concat([bytes, Buffer.from(')')]));
      assert.equal(early.status, 'BAD', early.tagged);
      assert.equal((await c.command('ENABLE UTF8=ACCEPT')).status, 'OK');
      const reply = await c.command(`APPEND INBOX () "01-Jan-2025 00:00:00 +0000" UTF8 (~{${bytes.length}+}\r\n`, Buffer.concat([bytes, Buffer.from(')')]));
      assert.equal(reply.status, 'OK', reply.tagged);
      const [m] = await stored(dataDir, address);
      assert.ok(m && m.bytes.equals(bytes));
      assert.equal(m.internalDate.toISOString(), '2025-01-01T00:00:00.000Z');
    });
  });

  describe('STORE', () => {
    it('adds, removes and replaces flags, with FETCH responses (and none for .SILENT)', async () => {
      const address = user('st1');
      const c = await raw(address);
      for (const tag of ['1', '2', '3']) assert.equal((await c.append('INBOX', message(tag))).status, 'OK');
      await c.command('SELECT INBOX');

      let r = await c.command('STORE 1 +FLAGS (\\Seen \\Flagged)');
      assert.equal(r.status, 'OK', r.tagged);
      assert.deepEqual(r.untagged, ['* 1 FETCH (FLAGS (\\Seen \\Flagged))']);

      r = await c.command('STORE 1:2 -FLAGS \\Flagged');
      assert.equal(r.status, 'OK', r.tagged);
      assert.deepEqual(r.untagged, ['* 1 FETCH (FLAGS (\\Seen))', '* 2 FETCH (FLAGS ())']);

      r = await c.command('UID STORE 3 FLAGS ($Work \\answered \\Recent)');
      assert.equal(r.status, 'OK', r.tagged);
      assert.deepEqual(r.untagged, ['* 3 FETCH (UID 3 FLAGS ($Work \\Answered))']);

      r = await c.command('STORE 2:3 +FLAGS.SILENT (\\Deleted)');
      assert.equal(r.status, 'OK', r.tagged);
      assert.deepEqual(r.untagged, []);

      r = await c.command('STORE 3 FLAGS.SILENT ()');
      assert.equal(r.status, 'OK', r.tagged);
      assert.deepEqual(r.untagged, []);

      const messages = await stored(dataDir, address);
      assert.deepEqual(messages.map((m) => [...m.flags].sort()), [['\\Seen'], ['\\Deleted'], []]);
      const s = await status(c, 'INBOX', 'MESSAGES UNSEEN DELETED');
      assert.deepEqual(s, { MESSAGES: 3, UNSEEN: 2, DELETED: 1 });
    });

    it('answers BAD to bad syntax and out-of-range sequence numbers, and changes nothing', async () => {
      const address = user('st2');
      const c = await raw(address);
      await c.append('INBOX', message('1'));
      await c.command('SELECT INBOX');
      for (const command of ['STORE 2 +FLAGS (\\Seen)', 'STORE 1 +FLAGS (\\Bogus)', 'STORE 1 FROBNICATE (\\Seen)', 'STORE 1 +FLAGS', 'STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)', 'STORE 1 +FLAGS ("quoted")']) {
        const r = await c.command(command);
        assert.equal(r.status, 'BAD', `${command}: ${r.tagged}`);
      }
      // A UID set naming no message is not an error.
      const none = await c.command('UID STORE 99 +FLAGS (\\Seen)');
      assert.equal(none.status, 'OK', none.tagged);
      assert.deepEqual(none.untagged, []);
      assert.deepEqual((await stored(dataDir, address))[0]!.flags, []);
    });

    it('works through imapflow (add, remove, set)', async () => {
      const address = user('st3');
      const client = await flow(address);
      await client.append('INBOX', message('1'));
      await client.append('INBOX', message('2'));
      await client.mailboxOpen('INBOX');
      assert.equal(await client.messageFlagsAdd('1:*', ['\\Seen', '$Label1']), true);
      assert.equal(await client.messageFlagsRemove('2', ['$Label1']), true);
      assert.equal(await client.messageFlagsSet('1', ['\\Answered'], { uid: true }), true);
      const messages = await stored(dataDir, address);
      assert.deepEqual(messages.map((m) => [...m.flags].sort()), [['\\Answered'], ['\\Seen']]);
      const st = await client.status('INBOX', { unseen: true });
      assert.equal(st && st.unseen, 1);
    });

    it('works through imaplib', () => {
      const address = user('st4');
      const result = python(
        `
import imaplib, json, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login(sys.argv[2], sys.argv[3])
M.append('INBOX', None, None, b'Subject: a\\r\\n\\r\\nbody\\r\\n')
M.select('INBOX')
out = {}
typ, data = M.store('1', '+FLAGS', r'(\\Seen \\Flagged)')
out['add'] = [typ, [d.decode() for d in data]]
typ, data = M.store('1', '-FLAGS', r'(\\Flagged)')
out['remove'] = [typ, [d.decode() for d in data]]
typ, data = M.uid('STORE', '1', 'FLAGS', r'(\\Draft)')
out['replace'] = [typ, [d.decode() for d in data]]
M.logout()
print(json.dumps(out))
`,
        [String(port), address, PASSWORD],
      );
      assert.equal(result.status, 0, result.stderr);
      const out = JSON.parse(result.stdout) as Record<string, [string, string[]]>;
      assert.deepEqual(out.add, ['OK', ['1 (FLAGS (\\Seen \\Flagged))']]);
      assert.deepEqual(out.remove, ['OK', ['1 (FLAGS (\\Seen))']]);
      assert.deepEqual(out.replace, ['OK', ['1 (UID 1 FLAGS (\\Draft))']]);
    });

    it('is refused in a mailbox opened with EXAMINE', async () => {
      const address = user('st5');
      const c = await raw(address);
      await c.append('INBOX', message('1'));
      const examine = await c.command('EXAMINE INBOX');
      assert.match(examine.tagged, /OK \[READ-ONLY\]/);
      for (const command of ['STORE 1 +FLAGS (\\Seen)', 'UID STORE 1 +FLAGS.SILENT (\\Seen)', 'MOVE 1 Archive']) {
        const r = await c.command(command);
        assert.equal(r.status, 'NO', `${command}: ${r.tagged}`);
        assert.equal(codeOf(r.tagged), 'READ-ONLY');
      }
      // COPY out of a read-only mailbox is fine.
      const copy = await c.command('COPY 1 Archive');
      assert.equal(copy.status, 'OK', copy.tagged);
      assert.deepEqual((await stored(dataDir, address))[0]!.flags, []);
      assert.equal((await stored(dataDir, address)).length, 1);
    });

    it('CONDSTORE: UNCHANGEDSINCE conflicts come back as MODIFIED, the others are stored with MODSEQ', async () => {
      const address = user('cs1');
      const a = await raw(address);
      const b = await raw(address);
      for (const tag of ['1', '2', '3']) await a.append('INBOX', message(tag));
      const select = await a.command('SELECT INBOX (CONDSTORE)');
      const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(select.untagged.join('\n'))![1]);
      assert.ok(highest > 0);
      await b.command('SELECT INBOX');

      // A plain STORE in a CONDSTORE session reports MODSEQ.
      let r = await a.command('STORE 1 +FLAGS ($A)');
      const m1 = /^\* 1 FETCH \(FLAGS \(\$A\) MODSEQ \((\d+)\)\)$/.exec(r.untagged[0] ?? '');
      assert.ok(m1, JSON.stringify(r.untagged));
      const modseq1 = Number(m1[1]);
      assert.ok(modseq1 > highest);

      // Another session changes message 2 after that.
      r = await b.command('STORE 2 +FLAGS (\\Seen)');
      assert.equal(r.status, 'OK');

      // Messages 1 and 3 are unchanged since modseq1; message 2 is not.
      r = await a.command(`STORE 1:3 (UNCHANGEDSINCE ${modseq1}) +FLAGS (\\Flagged)`);
      assert.equal(r.status, 'OK', r.tagged);
      assert.equal(codeOf(r.tagged), 'MODIFIED 2');
      const fetches = r.untagged.filter((l) => / FETCH \(FLAGS \([^)]*\\Flagged/.test(l));
      assert.equal(fetches.length, 2, JSON.stringify(r.untagged));
      assert.match(fetches[0]!, /^\* 1 FETCH \(FLAGS \(\$A \\Flagged\) MODSEQ \(\d+\)\)$/);
      assert.match(fetches[1]!, /^\* 3 FETCH \(FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$/);
      let messages = await stored(dataDir, address);
      assert.deepEqual(messages.map((m) => [...m.flags].sort()), [['$A', '\\Flagged'], ['\\Seen'], ['\\Flagged']]);

      // UID form: MODIFIED lists UIDs; UNCHANGEDSINCE 0 fails for every message. .SILENT still
      // reports nothing for failed messages.
      r = await a.command('UID STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Deleted)');
      assert.equal(r.status, 'OK', r.tagged);
      assert.equal(codeOf(r.tagged), 'MODIFIED 1:3');
      assert.ok(!r.untagged.some((l) => /\\Deleted/.test(l)), JSON.stringify(r.untagged));
      messages = await stored(dataDir, address);
      assert.ok(messages.every((m) => !m.flags.includes('\\Deleted')));

      // .SILENT with CONDSTORE: the new MODSEQ is still reported for changed messages (RFC 7162 §3.1.3).
      const current = Math.max(...messages.map((m) => m.modSeq));
      r = await a.command(`UID STORE 3 (UNCHANGEDSINCE ${current}) +FLAGS.SILENT (\\Deleted)`);
      assert.equal(r.status, 'OK', r.tagged);
      assert.equal(codeOf(r.tagged), null);
      assert.ok(r.untagged.some((l) => /^\* 3 FETCH \(UID 3 MODSEQ \(\d+\)\)$/.test(l)), JSON.stringify(r.untagged));
    });

    it('tells other sessions about the change, and does not tell the storing session twice', async () => {
      const address = user('st7');
      const a = await raw(address);
      const b = await raw(address);
      await a.append('INBOX', message('1'));
      await a.command('SELECT INBOX');
      await b.command('SELECT INBOX');
      const r = await a.command('STORE 1 +FLAGS (\\Seen)');
      assert.deepEqual(r.untagged, ['* 1 FETCH (FLAGS (\\Seen))']);
      assert.deepEqual((await a.command('NOOP')).untagged, []);
      const seen = await b.command('NOOP');
      assert.deepEqual(seen.untagged, ['* 1 FETCH (UID 1 FLAGS (\\Seen))']);
    });

    it('skips messages expunged by another session', async () => {
      const address = user('st6');
      const a = await raw(address);
      const b = await raw(address);
      for (const tag of ['1', '2']) await a.append('INBOX', message(tag));
      await a.command('SELECT INBOX');
      await b.command('SELECT INBOX');
      await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)');
      const expunge = await b.command('EXPUNGE');
      assert.ok(expunge.untagged.includes('* 1 EXPUNGE'));
      // a has not been told: message 1 keeps its number during STORE, and is skipped.
      const r = await a.command('STORE 1:2 +FLAGS (\\Seen)');
      assert.equal(r.status, 'OK', r.tagged);
      assert.ok(r.untagged.includes('* 2 FETCH (FLAGS (\\Seen))'), JSON.stringify(r.untagged));
      assert.ok(!r.untagged.some((l) => /^\* 1 FETCH/.test(l)), JSON.stringify(r.untagged));
      const noop = await a.command('NOOP');
      assert.ok(noop.untagged.includes('* 1 EXPUNGE'), JSON.stringify(noop.untagged));
      const messages = await stored(dataDir, address);
      assert.deepEqual(messages.map((m) => [m.uid, m.flags]), [[2, ['\\Seen']]]);
    });
  });

  describe('COPY and MOVE', () => {
    it('COPY answers COPYUID and copies bytes and flags; usage grows by the copies (imapflow)', async () => {
      const address = user('cp1');
      const client = await flow(address);
      await client.append('INBOX', message('1'), ['\\Seen']);
      await client.append('INBOX', message('2'), ['$Keep']);
      await client.append('INBOX', message('3'));
      const usageBefore = userRow(dataDir, address);
      await client.mailboxOpen('INBOX');
      const copied = await client.messageCopy('1,3', 'Archive');
      assert.ok(copied, 'copy failed');
      assert.ok(copied.uidValidity);
      assert.deepEqual([...(copied.uidMap ?? new Map()).entries()], [[1, 1], [3, 2]]);
      const source = await stored(dataDir, address);
      const archive = await stored(dataDir, address, 'Archive');
      assert.equal(source.length, 3);
      assert.equal(archive.length, 2);
      assert.ok(archive[0]!.bytes.equals(source[0]!.bytes));
      assert.ok(archive[1]!.bytes.equals(source[2]!.bytes));
      assert.deepEqual(archive[0]!.flags, ['\\Seen']);
      assert.equal(archive[0]!.internalDate.getTime(), source[0]!.internalDate.getTime());
      const afterRow = userRow(dataDir, address);
      assert.equal(afterRow.used, usageBefore.used + source[0]!.size + source[2]!.size);
      assert.equal(afterRow.messages, 5);
      const st = await client.status('Archive', { messages: true, uidValidity: true });
      assert.equal(st && st.messages, 2);
      assert.equal(st && st.uidValidity, copied.uidValidity);
    });

    it('COPY and UID COPY answer COPYUID to imaplib; TRYCREATE for a missing mailbox', () => {
      const address = user('cp2');
      const result = python(
        `
import imaplib, json, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login(sys.argv[2], sys.argv[3])
for i in range(3):
    M.append('INBOX', None, None, b'Subject: %d\\r\\n\\r\\nbody\\r\\n' % i)
M.select('INBOX')
out = {}
typ, data = M.copy('2:3', 'Trash')
out['copy'] = [typ, data[0].decode()]
# imaplib's uid() returns FETCH data; the tagged text carries the COPYUID
typ, data = M._simple_command('UID', 'COPY', '1', 'Trash')
out['uidcopy'] = [typ, data[0].decode()]
typ, data = M.copy('1', 'NoSuchBox')
out['missing'] = [typ, data[0].decode()]
typ, data = M.status('Trash', '(MESSAGES UIDVALIDITY)')
out['status'] = [typ, data[0].decode()]
M.logout()
print(json.dumps(out))
`,
        [String(port), address, PASSWORD],
      );
      assert.equal(result.status, 0, result.stderr);
      const out = JSON.parse(result.stdout) as Record<string, [string, string]>;
      const uidValidity = /UIDVALIDITY (\d+)/.exec(out.status![1])![1];
      assert.deepEqual(out.copy, ['OK', `[COPYUID ${uidValidity} 2:3 1:2] COPY completed`]);
      assert.deepEqual(out.uidcopy, ['OK', `[COPYUID ${uidValidity} 1 3] COPY completed`]);
      assert.equal(out.missing![0], 'NO');
      assert.match(out.missing![1], /^\[TRYCREATE\] /);
      assert.match(out.status![1], /MESSAGES 3/);
    });

    it('COPY into the selected mailbox itself announces the new messages', async () => {
      const address = user('cp3');
      const c = await raw(address);
      await c.append('INBOX', message('1'));
      await c.command('SELECT INBOX');
      const r = await c.command('COPY 1 INBOX');
      assert.equal(r.status, 'OK', r.tagged);
      assert.match(codeOf(r.tagged) ?? '', /^COPYUID \d+ 1 2$/);
      assert.ok(r.untagged.includes('* 2 EXISTS'), JSON.stringify(r.untagged));
      const messages = await stored(dataDir, address);
      assert.deepEqual(messages.map((m) => m.uid), [1, 2]);
      assert.ok(messages[0]!.bytes.equals(messages[1]!.bytes));
    });

    it('MOVE sends COPYUID untagged, then the expunges, and empties the source; usage is unchanged', async () => {
      const address = user('mv1');
      const c = await raw(address);
      for (const tag of ['1', '2', '3', '4']) await c.append('INBOX', message(tag));
      const usageBefore = userRow(dataDir, address);
      const bytesBefore = (await stored(dataDir, address)).map((m) => m.bytes);
      await c.command('SELECT INBOX');
      const r = await c.command('MOVE 2:3 Archive');
      assert.equal(r.status, 'OK', r.tagged);
      const copyUid = /^\* OK \[COPYUID (\d+) (\S+) (\S+)\]/.exec(r.untagged[0] ?? '');
      assert.ok(copyUid, JSON.stringify(r.untagged));
      assert.deepEqual(expandSet(copyUid[2]!), [2, 3]);
      assert.deepEqual(expandSet(copyUid[3]!), [1, 2]);
      // Expunges after the COPYUID; each sequence number is valid at the time it is sent.
      assert.deepEqual(r.untagged.slice(1), ['* 3 EXPUNGE', '* 2 EXPUNGE']);
      const inbox = await stored(dataDir, address);
      const archive = await stored(dataDir, address, 'Archive');
      assert.deepEqual(inbox.map((m) => m.uid), [1, 4]);
      assert.deepEqual(archive.map((m) => m.uid), [1, 2]);
      assert.ok(archive[0]!.bytes.equals(bytesBefore[1]!) && archive[1]!.bytes.equals(bytesBefore[2]!));
      assert.deepEqual(userRow(dataDir, address), usageBefore);

      // The session's numbering follows: message 2 is now the old message 4.
      const st = await c.command('UID STORE 4 +FLAGS (\\Seen)');
      assert.deepEqual(st.untagged, ['* 2 FETCH (UID 4 FLAGS (\\Seen))']);
      // Everything left: the source is emptied.
      const all = await c.command('UID MOVE 1:* Trash');
      assert.equal(all.status, 'OK', all.tagged);
      assert.deepEqual(all.untagged.slice(1), ['* 2 EXPUNGE', '* 1 EXPUNGE']);
      assert.equal((await status(c, 'INBOX')).MESSAGES, 0);
      assert.equal((await status(c, 'Trash')).MESSAGES, 2);
    });

    it('MOVE with QRESYNC enabled reports VANISHED', async () => {
      const address = user('mv2');
      const c = await raw(address);
      for (const tag of ['1', '2', '3']) await c.append('INBOX', message(tag));
      await c.command('ENABLE QRESYNC');
      await c.command('SELECT INBOX');
      const r = await c.command('UID MOVE 1,3 Archive');
      assert.equal(r.status, 'OK', r.tagged);
      assert.match(r.untagged[0] ?? '', /^\* OK \[COPYUID \d+ 1,3 1:2\]/);
      assert.deepEqual(r.untagged.slice(1), ['* VANISHED 1,3']);
    });

    it('MOVE through imapflow: uidMap and expunge events', async () => {
      const address = user('mv3');
      const client = await flow(address);
      for (const tag of ['1', '2']) await client.append('INBOX', message(tag));
      await client.mailboxOpen('INBOX');
      const expunged: number[] = [];
      client.on('expunge', (event: { seq?: number }) => {
        if (event.seq) expunged.push(event.seq);
      });
      const moved = await client.messageMove('1:*', 'Junk');
      assert.ok(moved, 'move failed');
      assert.deepEqual([...(moved.uidMap ?? new Map()).entries()], [[1, 1], [2, 2]]);
      assert.deepEqual(expunged, [2, 1]);
      assert.equal(client.mailbox && client.mailbox.exists, 0);
      assert.equal((await readMailbox(dataDir, address, 'Junk')).length, 2);
      assert.equal((await readMailbox(dataDir, address)).length, 0);
    });

    it('MOVE and COPY to a missing mailbox get TRYCREATE and change nothing', async () => {
      const address = user('mv4');
      const c = await raw(address);
      await c.append('INBOX', message('1'));
      await c.command('SELECT INBOX');
      for (const command of ['MOVE 1 Gone', 'UID COPY 1 Gone/Deeper']) {
        const r = await c.command(command);
        assert.equal(r.status, 'NO', r.tagged);
        assert.equal(codeOf(r.tagged), 'TRYCREATE');
        assert.deepEqual(r.untagged, []);
      }
      assert.equal((await stored(dataDir, address)).length, 1);
      assert.equal((await c.command('COPY 2 Archive')).status, 'BAD');
    });
  });

  describe('quota', () => {
    it('APPEND and COPY over quota get NO [OVERQUOTA] and nothing is written; MOVE still works', async () => {
      const address = user('q1', '3000');
      const c = await raw(address);
      const filler = Buffer.from('x'.repeat(900) + '\r\n');
      assert.equal((await c.append('INBOX', message('1', filler.toString()))).status, 'OK');
      assert.equal((await c.append('INBOX', message('2', filler.toString()))).status, 'OK');
      const usageBefore = userRow(dataDir, address);
      assert.equal(usageBefore.messages, 2);
      assert.ok(usageBefore.used > 2000 && usageBefore.used < 3000, String(usageBefore.used));

      const big = await c.append('INBOX', message('3', filler.toString()));
      assert.equal(big.status, 'NO', big.tagged);
      assert.equal(codeOf(big.tagged), 'OVERQUOTA');
      assert.deepEqual(userRow(dataDir, address), usageBefore);

      await c.command('SELECT INBOX');
      // Two messages do not fit; neither is copied (all or nothing).
      const copy = await c.command('COPY 1:2 Archive');
      assert.equal(copy.status, 'NO', copy.tagged);
      assert.equal(codeOf(copy.tagged), 'OVERQUOTA');
      assert.deepEqual(userRow(dataDir, address), usageBefore);
      assert.equal((await status(c, 'Archive')).MESSAGES, 0);
      assert.equal((await readMailbox(dataDir, address, 'Archive')).length, 0);

      // A move takes no extra room.
      const move = await c.command('MOVE 1 Archive');
      assert.equal(move.status, 'OK', move.tagged);
      assert.deepEqual(userRow(dataDir, address), usageBefore);

      // After the quota is raised (CLI), the same APPEND fits without a new login.
      cliOk(dataDir, ['user', 'quota', address, '10K']);
      const later = await c.append('INBOX', message('3', filler.toString()));
      assert.equal(later.status, 'OK', later.tagged);
    });

    it('imapflow sees APPEND over quota fail with OVERQUOTA', async () => {
      const address = user('q2', '1000');
      const client = await flow(address);
      await assert.rejects(client.append('INBOX', Buffer.concat([message('big'), Buffer.alloc(1200, 0x61)])), (err: { serverResponseCode?: string }) => {
        assert.equal(err.serverResponseCode, 'OVERQUOTA');
        return true;
      });
      assert.equal(userRow(dataDir, address).used, 0);
    });

    it('the message-count quota applies to APPEND and COPY', async () => {
      const address = user('q3');
      cliOk(dataDir, ['user', 'set', address, 'quota_messages', '2']);
      const c = await raw(address);
      assert.equal((await c.append('INBOX', message('1'))).status, 'OK');
      await c.command('SELECT INBOX');
      assert.equal((await c.command('COPY 1 Archive')).status, 'OK');
      const third = await c.append('INBOX', message('3'));
      assert.equal(codeOf(third.tagged), 'OVERQUOTA');
      const copy = await c.command('COPY 1 Trash');
      assert.equal(codeOf(copy.tagged), 'OVERQUOTA');
      assert.equal(userRow(dataDir, address).messages, 2);
      const root = await c.command('GETQUOTAROOT INBOX');
      const quota = root.untagged.find((l) => l.startsWith('* QUOTA '));
      assert.match(quota ?? '', /^\* QUOTA "" \(STORAGE \d+ 1048576 MESSAGE 2 2\)$/);
    });

    it('GETQUOTAROOT / GETQUOTA report usage in KiB rounded up, as user list shows it', async () => {
      const address = user('q4', '5M');
      const c = await raw(address);
      await c.append('INBOX', message('1', 'y'.repeat(1500)));
      await c.append('Sent', message('2', 'z'.repeat(300)));
      const row = userRow(dataDir, address);
      const usedKib = Math.ceil(row.used / 1024);
      assert.ok(row.used % 1024 !== 0, 'pick sizes that need rounding');

      const root = await c.command('GETQUOTAROOT inbox');
      assert.equal(root.status, 'OK', root.tagged);
      assert.deepEqual(root.untagged, ['* QUOTAROOT INBOX ""', `* QUOTA "" (STORAGE ${usedKib} ${5 * 1024})`]);
      const sent = await c.command('GETQUOTAROOT Sent');
      assert.deepEqual(sent.untagged, ['* QUOTAROOT Sent ""', `* QUOTA "" (STORAGE ${usedKib} ${5 * 1024})`]);

      const quota = await c.command('GETQUOTA ""');
      assert.deepEqual(quota.untagged, [`* QUOTA "" (STORAGE ${usedKib} ${5 * 1024})`]);
      const unknown = await c.command('GETQUOTA "other"');
      assert.equal(unknown.status, 'NO');
      const missing = await c.command('GETQUOTAROOT Nowhere');
      assert.equal(missing.status, 'NO');
      const set = await c.command('SETQUOTA "" (STORAGE 100)');
      assert.equal(set.status, 'NO');
      assert.equal(codeOf(set.tagged), 'NOPERM');

      const client = await flow(address);
      const q = await client.getQuota('INBOX');
      assert.ok(q && q.storage);
      assert.equal(q.storage.usage, usedKib * 1024);
      assert.equal(q.storage.limit, 5 * 1024 * 1024);
    });

    it('imaplib getquotaroot; no quota at all means no quota root', () => {
      const address = user('q5');
      cliOk(dataDir, ['user', 'quota', address, 'none']);
      const result = python(
        `
import imaplib, json, sys
M = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
M.login(sys.argv[2], sys.argv[3])
typ, data = M.getquotaroot('INBOX')
out = {'root': [typ, [[x.decode() if isinstance(x, bytes) else x for x in d] for d in data]]}
typ, data = M.getquota('""')
out['quota'] = [typ, [d.decode() if isinstance(d, bytes) else d for d in data]]
M.logout()
print(json.dumps(out))
`,
        [String(port), address, PASSWORD],
      );
      assert.equal(result.status, 0, result.stderr);
      const out = JSON.parse(result.stdout) as { root: [string, string[][]]; quota: [string, unknown[]] };
      assert.equal(out.root[0], 'OK');
      assert.deepEqual(out.root[1][0], ['INBOX']);
      assert.equal(out.quota[0], 'NO');
    });
  });
});
