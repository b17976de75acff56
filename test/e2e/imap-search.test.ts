// SEARCH, UID SEARCH, ESEARCH, SEARCHRES, SORT and THREAD against a real server. Messages arrive
// over SMTP (Python's smtplib), including an ISO-2022-JP one (encoded-word subject, 7-bit JIS
// body) and UTF-8 ones (quoted-printable, base64 HTML); they are searched with Python's imaplib,
// imapflow, and exact command lines over a raw socket for the responses the libraries hide
// (ESEARCH, MODSEQ, BADCHARSET, EXPUNGE timing). Each answer is compared with what the messages
// were built to match.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import Encoding from 'encoding-japanese';
import { ImapFlow } from 'imapflow';
import { cliOk, makeDataDir, python, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const PASSWORD = 'correct-horse-42';
const DOMAIN = 'example.test';

interface Reply {
  untagged: string[];
  tagged: string;
  status: 'OK' | 'NO' | 'BAD';
  tag: string;
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

  static async login(port: number, user: string): Promise<RawImap> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawImap(socket);
    assert.match(await client.line(), /^\* OK /);
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

  async line(): Promise<string> {
    let out = '';
    for (;;) {
      await this.waitFor(() => this.buffer.indexOf('\r\n') >= 0);
      const end = this.buffer.indexOf('\r\n');
      const text = this.buffer.toString('utf8', 0, end);
      this.buffer = this.buffer.subarray(end + 2);
      out += text;
      const literal = /\{(\d+)\}$/.exec(text);
      if (!literal) return out;
      const size = Number(literal[1]);
      await this.waitFor(() => this.buffer.length >= size);
      out += '\r\n' + this.buffer.toString('utf8', 0, size);
      this.buffer = this.buffer.subarray(size);
    }
  }

  /** Sends `tag text` (text may hold LITERAL+ literals) and collects the reply. */
  async command(text: string | Buffer): Promise<Reply> {
    const tag = `t${++this.tagCounter}`;
    this.socket.write(Buffer.concat([Buffer.from(`${tag} `), Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'), Buffer.from('\r\n')]));
    const untagged: string[] = [];
    for (;;) {
      const line = await this.line();
      if (line.startsWith(`${tag} `)) {
        const status = line.slice(tag.length + 1).split(' ')[0] as Reply['status'];
        return { untagged, tagged: line, status, tag };
      }
      untagged.push(line);
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.socket.write('z LOGOUT\r\n');
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

// ---------------------------------------------------------------------------------------------
// The test messages

function iso2022jp(text: string): Buffer {
  return Buffer.from(Encoding.convert(Encoding.stringToCode(text), { to: 'JIS', from: 'UNICODE', type: 'array' }));
}

function qp(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += byte > 126 || byte === 0x3d ? `=${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  return out;
}

function b64word(text: string): string {
  return `=?UTF-8?B?${Buffer.from(text, 'utf8').toString('base64')}?=`;
}

const crlf = (lines: string[]): string => lines.join('\r\n') + '\r\n';

/** Six messages; seq n is message n. Sent dates (UTC): 4 < 1 < 2 < 3 < 5 < 6. */
function testMessages(): Buffer[] {
  const m1 = crlf([
    'From: "Alice Example" <alice@sender.example>',
    `To: Bob <bob@${DOMAIN}>`,
    'Subject: Quarterly report',
    'Date: Mon, 02 Nov 2026 10:00:00 +0000',
    'Message-ID: <m1@sender.example>',
    'X-Tracking: abc123',
    '',
    'Hello Bob,',
    'the numbers are in.',
  ]);
  const m2 = Buffer.concat([
    Buffer.from(
      crlf([
        `From: =?ISO-2022-JP?B?${iso2022jp('山田太郎').toString('base64')}?= <yamada@example.jp>`,
        `To: bob@${DOMAIN}`,
        `Subject: =?ISO-2022-JP?B?${iso2022jp('会議の件').toString('base64')}?=`,
        'Date: Tue, 03 Nov 2026 01:30:00 +0900',
        'Message-ID: <m2@example.jp>',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=ISO-2022-JP',
        'Content-Transfer-Encoding: 7bit',
        '',
      ]),
    ),
    iso2022jp('山田です。\r\n添付ファイルをご確認ください。\r\n'),
  ]);
  const m3 = crlf([
    `From: ${b64word('Zoë Müller')} <zoe@example.de>`,
    `To: bob@${DOMAIN}`,
    `Cc: Dave <dave@${DOMAIN}>`,
    'Subject: Re: Quarterly report',
    'Date: Wed, 04 Nov 2026 09:00:00 +0100',
    'Message-ID: <m3@example.de>',
    'In-Reply-To: <m1@sender.example>',
    'References: <m1@sender.example>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=UTF-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    qp('Grüße aus München, Straße 5.'),
    qp('日本語も大丈夫です。'),
  ]);
  const html = '<html><body><p>Let&#39;s meet at the <b>Café</b> tomorrow.</p></body></html>';
  const m4 = crlf([
    'From: Carol <carol@example.org>',
    `To: Team <team@${DOMAIN}>`,
    `Subject: ${b64word('Zebra lunch café')}`,
    'Date: Sun, 01 Nov 2026 12:00:00 +0000',
    'Message-ID: <m4@example.org>',
    'MIME-Version: 1.0',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(html, 'utf8').toString('base64'),
  ]);
  const filler: string[] = [];
  for (let i = 0; i < 400; i++) filler.push(`Line ${i}: lorem ipsum dolor sit amet, consectetur adipiscing elit.`);
  const m5 = crlf([
    'From: Alice <alice@sender.example>',
    `To: bob@${DOMAIN}`,
    `Subject: Fwd: ${b64word('Zebra lunch café')}`,
    'Date: Thu, 05 Nov 2026 08:00:00 +0000',
    'Message-ID: <m5@sender.example>',
    'In-Reply-To: <m4@example.org>',
    '',
    ...filler,
    'needle-in-a-haystack',
  ]);
  const m6 = crlf([
    `From: Dave <dave@${DOMAIN}>`,
    `To: bob@${DOMAIN}`,
    'Subject: Different topic',
    'Date: Fri, 06 Nov 2026 10:00:00 +0000',
    'Message-ID: <m6@example.test>',
    'References: <m1@sender.example>',
    '',
    'Unrelated, but a reply to the report.',
  ]);
  return [Buffer.from(m1), m2, Buffer.from(m3), Buffer.from(m4), Buffer.from(m5), Buffer.from(m6)];
}

/** Delivers messages over SMTP with Python's smtplib, in order, in one session. */
function deliver(port: number, to: string, messages: Buffer[]): void {
  const script = [
    'import sys, json, base64, smtplib',
    'port = int(sys.argv[1]); rcpt = sys.argv[2]',
    'messages = [base64.b64decode(m) for m in json.load(sys.stdin)]',
    "with smtplib.SMTP('127.0.0.1', port, timeout=30) as s:",
    "    s.ehlo('client.test')",
    '    for m in messages:',
    "        s.sendmail('sender@sender.example', [rcpt], m)",
    "print('sent', len(messages))",
  ].join('\n');
  const result = python(script, [String(port), to], JSON.stringify(messages.map((m) => m.toString('base64'))));
  assert.equal(result.status, 0, result.stderr);
}

/** "* SEARCH 1 2 3" → [1, 2, 3] (the numbers only; a trailing "(MODSEQ n)" is left out). */
function searchNumbers(reply: Reply, name = 'SEARCH'): number[] {
  assert.equal(reply.status, 'OK', reply.tagged);
  const lines = reply.untagged.filter((l) => l.startsWith(`* ${name}`));
  assert.equal(lines.length, 1, `expected one ${name} response: ${JSON.stringify(reply.untagged)}`);
  return lines[0]!
    .slice(`* ${name}`.length)
    .replace(/\(MODSEQ \d+\)/, '')
    .trim()
    .split(' ')
    .filter((s) => s !== '')
    .map(Number);
}

function imapDate(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${date.getUTCDate()}-${months[date.getUTCMonth()]}-${date.getUTCFullYear()}`;
}

describe('IMAP SEARCH, SORT and THREAD', () => {
  let dataDir: string;
  let server: RunningYubin;
  let port: number;
  let bob: RawImap;
  const uidOf: number[] = []; // uidOf[seq]
  const clients: Array<{ close(): Promise<unknown> }> = [];
  const BOB = `bob@${DOMAIN}`;

  async function raw(address: string): Promise<RawImap> {
    const c = await RawImap.login(port, address);
    clients.push(c);
    return c;
  }

  async function search(criteria: string, c: RawImap = bob): Promise<number[]> {
    return searchNumbers(await c.command(`SEARCH ${criteria}`));
  }

  /** SEARCH CHARSET UTF-8 <key> <literal+> */
  async function searchUtf8(key: string, value: string, c: RawImap = bob, command = 'SEARCH'): Promise<Reply> {
    const bytes = Buffer.from(value, 'utf8');
    return c.command(Buffer.concat([Buffer.from(`${command} CHARSET UTF-8 ${key} {${bytes.length}+}\r\n`), bytes]));
  }

  before(async () => {
    dataDir = makeDataDir('yubin-imap-search-');
    writeConfig(dataDir, '[auth]\nfailure_delay = 0\n');
    cliOk(dataDir, ['domain', 'add', DOMAIN]);
    for (const name of ['bob', 'carl', 'dora']) cliOk(dataDir, ['user', 'add', `${name}@${DOMAIN}`, '--password', PASSWORD]);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0']);
    port = server.ports.imap!;
    assert.ok(port, `no imap port: ${server.stdout()}`);
    deliver(server.ports.smtp!, BOB, testMessages());
    bob = await raw(BOB);
    const selected = await bob.command('SELECT INBOX');
    assert.equal(selected.status, 'OK', selected.tagged);
    assert.ok(selected.untagged.includes('* 6 EXISTS'), JSON.stringify(selected.untagged));
    const uids = searchNumbers(await bob.command('UID SEARCH ALL'));
    assert.equal(uids.length, 6);
    uids.forEach((uid, i) => (uidOf[i + 1] = uid));
    // Flags: \Seen on 1, \Flagged on 2 and 4, $Important on 3, \Deleted on 5.
    for (const [set, flag] of [['1', '\\Seen'], ['2,4', '\\Flagged'], ['3', '$Important'], ['5', '\\Deleted']] as const) {
      const stored = await bob.command(`STORE ${set} +FLAGS.SILENT (${flag})`);
      assert.equal(stored.status, 'OK', stored.tagged);
    }
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await server?.stop();
  });

  describe('search keys (raw)', () => {
    it('flags', async () => {
      const cases: Array<[string, number[]]> = [
        ['ALL', [1, 2, 3, 4, 5, 6]],
        ['SEEN', [1]],
        ['UNSEEN', [2, 3, 4, 5, 6]],
        ['FLAGGED', [2, 4]],
        ['UNFLAGGED', [1, 3, 5, 6]],
        ['DELETED', [5]],
        ['UNDELETED', [1, 2, 3, 4, 6]],
        ['ANSWERED', []],
        ['UNANSWERED', [1, 2, 3, 4, 5, 6]],
        ['DRAFT', []],
        ['UNDRAFT', [1, 2, 3, 4, 5, 6]],
        ['KEYWORD $Important', [3]],
        ['KEYWORD $important', [3]],
        ['UNKEYWORD $Important', [1, 2, 4, 5, 6]],
        ['RECENT', []],
        ['NEW', []],
        ['OLD', [1, 2, 3, 4, 5, 6]],
      ];
      for (const [criteria, expected] of cases) assert.deepEqual(await search(criteria), expected, criteria);
    });

    it('addresses, subject, body, text and header fields, case-insensitively', async () => {
      const cases: Array<[string, number[]]> = [
        ['FROM alice', [1, 5]],
        ['FROM ALICE@SENDER.EXAMPLE', [1, 5]],
        ['FROM "Alice Example"', [1]],
        ['FROM carol', [4]],
        ['TO team', [4]],
        [`TO bob@${DOMAIN}`, [1, 2, 3, 5, 6]],
        ['CC dave', [3]],
        ['BCC bob', []],
        ['SUBJECT "quarterly REPORT"', [1, 3]],
        ['SUBJECT re:', [3]],
        ['BODY NUMBERS', [1]],
        ['BODY needle-in-a-haystack', [5]],
        ['BODY <b>', []], // HTML is searched as text
        ['TEXT abc123', [1]], // in a header field
        ['TEXT x-tracking', [1]], // a field name
        ['TEXT report', [1, 3, 6]],
        ['HEADER X-Tracking abc', [1]],
        ['HEADER x-tracking ""', [1]],
        ['HEADER Message-ID example.jp', [2]],
        ['HEADER In-Reply-To ""', [3, 5]],
        ['HEADER X-Missing ""', []],
      ];
      for (const [criteria, expected] of cases) assert.deepEqual(await search(criteria), expected, criteria);
    });

    it('decoded non-ASCII text: ISO-2022-JP, encoded-words, quoted-printable, base64 HTML', async () => {
      const cases: Array<[string, string, number[]]> = [
        ['SUBJECT', '会議', [2]],
        ['SUBJECT', '会議の件', [2]],
        ['BODY', '添付ファイル', [2]],
        ['TEXT', '会議の件', [2]],
        ['TEXT', '添付ファイル', [2]],
        ['FROM', '山田', [2]],
        ['BODY', '会議', []],
        ['FROM', 'zoë', [3]],
        ['FROM', 'ZOË MÜLLER', [3]],
        ['BODY', 'MÜNCHEN', [3]],
        ['BODY', 'straße', [3]],
        ['BODY', '日本語', [3]],
        ['BODY', 'café', [4]],
        ['BODY', "let's meet", [4]],
        ['SUBJECT', 'CAFÉ', [4, 5]],
        ['TEXT', 'café', [4, 5]],
      ];
      for (const [key, value, expected] of cases) assert.deepEqual(searchNumbers(await searchUtf8(key, value)), expected, `${key} ${value}`);
      // US-ASCII is accepted too.
      assert.deepEqual(await search('CHARSET US-ASCII FROM carol'), [4]);
    });

    it('sizes, sequence sets, UIDs, NOT, OR and groups', async () => {
      const cases: Array<[string, number[]]> = [
        ['LARGER 20000', [5]],
        ['SMALLER 20000', [1, 2, 3, 4, 6]],
        ['2:4', [2, 3, 4]],
        ['4:2', [2, 3, 4]],
        ['*', [6]],
        ['1,3,5:*', [1, 3, 5, 6]],
        ['2:4 NOT 3', [2, 4]],
        [`UID ${uidOf[2]}:${uidOf[3]}`, [2, 3]],
        [`UID ${uidOf[6]! + 100}:*`, [6]],
        ['NOT FROM alice', [2, 3, 4, 6]],
        ['OR FROM carol FLAGGED', [2, 4]],
        ['OR FROM carol OR SEEN KEYWORD $Important', [1, 3, 4]],
        ['(FROM alice LARGER 1000)', [5]],
        ['NOT (FROM alice LARGER 1000)', [1, 2, 3, 4, 6]],
        ['OR (FROM alice SEEN) (CC dave)', [1, 3]],
        ['UNSEEN UNDELETED NOT FLAGGED', [3, 6]],
      ];
      for (const [criteria, expected] of cases) assert.deepEqual(await search(criteria), expected, criteria);
    });

    it('dates: internal (today) and sent (the Date: header, its own day)', async () => {
      const today = new Date();
      const tomorrow = new Date(today.getTime() + 86_400_000);
      const cases: Array<[string, number[]]> = [
        [`ON ${imapDate(today)}`, [1, 2, 3, 4, 5, 6]],
        [`SINCE ${imapDate(today)}`, [1, 2, 3, 4, 5, 6]],
        [`BEFORE ${imapDate(today)}`, []],
        [`SINCE ${imapDate(tomorrow)}`, []],
        [`BEFORE "${imapDate(tomorrow)}"`, [1, 2, 3, 4, 5, 6]],
        ['SENTON 3-Nov-2026', [2]], // 01:30 +0900 is still 2 Nov in UTC
        ['SENTON 2-Nov-2026', [1]],
        ['SENTBEFORE 2-Nov-2026', [4]],
        ['SENTSINCE 4-Nov-2026', [3, 5, 6]],
        ['SENTSINCE 2-Nov-2026 SENTBEFORE 4-Nov-2026', [1, 2]],
        ['YOUNGER 3600', [1, 2, 3, 4, 5, 6]],
        ['OLDER 3600', []],
      ];
      for (const [criteria, expected] of cases) assert.deepEqual(await search(criteria), expected, criteria);
    });

    it('UID SEARCH answers UIDs', async () => {
      assert.deepEqual(searchNumbers(await bob.command('UID SEARCH FROM alice')), [uidOf[1], uidOf[5]]);
      assert.deepEqual(searchNumbers(await searchUtf8('BODY', '添付ファイル', bob, 'UID SEARCH')), [uidOf[2]]);
      assert.deepEqual(searchNumbers(await bob.command('UID SEARCH 2:3')), [uidOf[2], uidOf[3]]);
    });

    it('refuses unknown charsets and bad syntax', async () => {
      const charset = await bob.command('SEARCH CHARSET KOI8-R FROM alice');
      assert.equal(charset.status, 'NO');
      assert.match(charset.tagged, /^\S+ NO \[BADCHARSET \(UTF-8\)\]/);
      for (const bad of ['SEARCH', 'SEARCH FOO', 'SEARCH FROM', 'SEARCH LARGER x', 'SEARCH SINCE 31-Feb-2026', 'SEARCH OR SEEN', 'SEARCH RETURN (BOGUS) ALL', 'SEARCH (SEEN']) {
        const reply = await bob.command(bad);
        assert.equal(reply.status, 'BAD', `${bad}: ${reply.tagged}`);
      }
      const unselected = await raw(BOB);
      assert.equal((await unselected.command('SEARCH ALL')).status, 'BAD');
    });
  });

  describe('ESEARCH, SEARCHRES and CONDSTORE', () => {
    function esearch(reply: Reply): string {
      assert.equal(reply.status, 'OK', reply.tagged);
      const lines = reply.untagged.filter((l) => l.startsWith('* ESEARCH'));
      assert.equal(lines.length, 1, JSON.stringify(reply.untagged));
      return lines[0]!;
    }

    it('RETURN (MIN MAX COUNT ALL), for sequence numbers and UIDs', async () => {
      let reply = await bob.command('SEARCH RETURN (MIN MAX COUNT ALL) NOT FROM alice');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") MIN 2 MAX 6 COUNT 4 ALL 2:4,6`);
      reply = await bob.command('UID SEARCH RETURN (COUNT ALL) 1:4');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") UID COUNT 4 ALL ${uidOf[1]}:${uidOf[4]}`);
      reply = await bob.command('SEARCH RETURN () FLAGGED');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") ALL 2,4`);
      reply = await bob.command('SEARCH RETURN (MIN MAX COUNT ALL) FROM nobody');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") COUNT 0`);
      assert.ok(!reply.untagged.some((l) => l.startsWith('* SEARCH')));
    });

    it('RETURN (SAVE) keeps the result for "$"', async () => {
      let reply = await bob.command('SEARCH RETURN (SAVE) FROM alice');
      assert.equal(reply.status, 'OK', reply.tagged);
      assert.deepEqual(reply.untagged.filter((l) => /^\* (E?SEARCH)/.test(l)), [], 'SAVE alone answers nothing');
      assert.deepEqual(await search('$'), [1, 5]);
      assert.deepEqual(searchNumbers(await bob.command('UID SEARCH UID $')), [uidOf[1], uidOf[5]]);
      assert.deepEqual(await search('$ SEEN'), [1]);
      assert.deepEqual(await search('OR $ FLAGGED'), [1, 2, 4, 5]);
      // With MIN (and neither ALL nor COUNT) only the minimum is saved.
      reply = await bob.command('UID SEARCH RETURN (SAVE MIN) NOT FROM alice');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") UID MIN ${uidOf[2]}`);
      assert.deepEqual(await search('$'), [2]);
      reply = await bob.command('SEARCH RETURN (SAVE COUNT MAX) UNSEEN');
      assert.equal(esearch(reply), `* ESEARCH (TAG "${reply.tag}") MAX 6 COUNT 5`);
      assert.deepEqual(await search('$'), [2, 3, 4, 5, 6]);
      // "$" works in other commands too.
      const stored = await bob.command('UID STORE $ +FLAGS.SILENT (saved-flag)');
      assert.equal(stored.status, 'OK', stored.tagged);
      assert.deepEqual(await search('KEYWORD saved-flag'), [2, 3, 4, 5, 6]);
      // A failed SEARCH ... SAVE empties the saved result (RFC 5182 §2.1).
      assert.equal((await bob.command('SEARCH RETURN (SAVE) FOO')).status, 'BAD');
      assert.deepEqual(await search('$'), []);
    });

    it('MODSEQ: the answer ends with the highest MODSEQ of the matches', async () => {
      const all = await bob.command('SEARCH MODSEQ 1');
      const line = all.untagged.find((l) => l.startsWith('* SEARCH'));
      const highest = Number(/\(MODSEQ (\d+)\)$/.exec(line ?? '')?.[1]);
      assert.ok(highest > 0, `no MODSEQ in ${line}`);
      assert.deepEqual(searchNumbers(all), [1, 2, 3, 4, 5, 6]);
      const stored = await bob.command('STORE 6 +FLAGS.SILENT (touched)');
      assert.equal(stored.status, 'OK', stored.tagged);
      const after = await bob.command(`SEARCH MODSEQ ${highest + 1}`);
      const afterLine = after.untagged.find((l) => l.startsWith('* SEARCH'));
      assert.match(afterLine ?? '', /^\* SEARCH 6 \(MODSEQ (\d+)\)$/);
      const newest = Number(/\(MODSEQ (\d+)\)$/.exec(afterLine!)![1]);
      assert.ok(newest > highest);
      const none = await bob.command(`SEARCH MODSEQ ${newest + 1}`);
      assert.ok(none.untagged.includes('* SEARCH'), JSON.stringify(none.untagged));
      const e = await bob.command(`UID SEARCH RETURN (ALL) MODSEQ ${highest + 1}`);
      assert.equal(esearch(e), `* ESEARCH (TAG "${e.tag}") UID ALL ${uidOf[6]} MODSEQ ${newest}`);
      const entry = await bob.command(`SEARCH MODSEQ "/flags/\\\\draft" all ${highest + 1}`);
      assert.deepEqual(searchNumbers(entry), [6]);
      const status = await bob.command('STATUS INBOX (HIGHESTMODSEQ)');
      assert.ok(status.untagged.some((l) => l.includes(`HIGHESTMODSEQ ${newest}`)), JSON.stringify(status.untagged));
    });

    it('under IMAP4rev2 the answer is always ESEARCH', async () => {
      const c = await raw(BOB);
      assert.equal((await c.command('ENABLE IMAP4rev2')).status, 'OK');
      assert.equal((await c.command('SELECT INBOX')).status, 'OK');
      const reply = await c.command('SEARCH FLAGGED');
      assert.equal(reply.status, 'OK', reply.tagged);
      assert.deepEqual(reply.untagged, [`* ESEARCH (TAG "${reply.tag}") ALL 2,4`]);
      const empty = await c.command('UID SEARCH FROM nobody');
      assert.deepEqual(empty.untagged, [`* ESEARCH (TAG "${empty.tag}") UID`]);
    });
  });

  describe('SORT and THREAD (raw)', () => {
    it('SORT by each criterion, REVERSE, several keys, with search keys', async () => {
      const sort = async (criteria: string, keys = 'ALL', uid = false): Promise<number[]> => searchNumbers(await bob.command(`${uid ? 'UID ' : ''}SORT ${criteria} UTF-8 ${keys}`), 'SORT');
      assert.deepEqual(await sort('(DATE)'), [4, 1, 2, 3, 5, 6]);
      assert.deepEqual(await sort('(REVERSE DATE)'), [6, 5, 3, 2, 1, 4]);
      assert.deepEqual(await sort('(ARRIVAL)'), [1, 2, 3, 4, 5, 6]);
      assert.deepEqual(await sort('(FROM)'), [1, 5, 4, 6, 2, 3]);
      assert.deepEqual(await sort('(SUBJECT)'), [6, 1, 3, 4, 5, 2]);
      assert.deepEqual(await sort('(SUBJECT REVERSE DATE)'), [6, 3, 1, 5, 4, 2]);
      assert.deepEqual(await sort('(CC)'), [1, 2, 4, 5, 6, 3]);
      assert.deepEqual(await sort('(TO DATE)'), [1, 2, 3, 5, 6, 4]);
      const bySize = await sort('(SIZE)');
      assert.equal(bySize[5], 5);
      assert.deepEqual([...bySize].sort(), [1, 2, 3, 4, 5, 6]);
      assert.equal((await sort('(REVERSE SIZE)'))[0], 5);
      assert.deepEqual(await sort('(DATE)', 'FROM alice'), [1, 5]);
      assert.deepEqual(await sort('(REVERSE ARRIVAL)', 'NOT FROM alice', true), [uidOf[6], uidOf[4], uidOf[3], uidOf[2]]);
      const value = Buffer.from('café', 'utf8');
      const utf8 = await bob.command(Buffer.concat([Buffer.from(`SORT (REVERSE DATE) UTF-8 SUBJECT {${value.length}+}\r\n`), value]));
      assert.deepEqual(searchNumbers(utf8, 'SORT'), [5, 4]);
    });

    it('THREAD ORDEREDSUBJECT and REFERENCES', async () => {
      const thread = async (command: string): Promise<string> => {
        const reply = await bob.command(command);
        assert.equal(reply.status, 'OK', reply.tagged);
        const lines = reply.untagged.filter((l) => l.startsWith('* THREAD'));
        assert.equal(lines.length, 1, JSON.stringify(reply.untagged));
        return lines[0]!;
      };
      assert.equal(await thread('THREAD ORDEREDSUBJECT UTF-8 ALL'), '* THREAD (4 5)(1 3)(2)(6)');
      assert.equal(await thread('THREAD REFERENCES UTF-8 ALL'), '* THREAD (4 5)(1 (3)(6))(2)');
      // Without 1, its two replies share a missing parent: a nameless thread root with two children.
      assert.equal(await thread('THREAD REFERENCES US-ASCII NOT 1'), '* THREAD (4 5)(2)((3)(6))');
      const u = uidOf;
      assert.equal(await thread('UID THREAD REFERENCES UTF-8 ALL'), `* THREAD (${u[4]} ${u[5]})(${u[1]} (${u[3]})(${u[6]}))(${u[2]})`);
      assert.equal(await thread('THREAD REFERENCES UTF-8 FROM nobody'), '* THREAD');
      assert.equal((await bob.command('THREAD JWZ UTF-8 ALL')).status, 'BAD');
      const charset = await bob.command('SORT (DATE) ISO-8859-9 ALL');
      assert.match(charset.tagged, /^\S+ NO \[BADCHARSET/);
    });
  });

  describe('mailbox changes', () => {
    it('messages expunged by another session are left out, and EXPUNGE waits until after SEARCH', async () => {
      const carl = `carl@${DOMAIN}`;
      deliver(server.ports.smtp!, carl, testMessages().slice(0, 3));
      const a = await raw(carl);
      const b = await raw(carl);
      assert.equal((await a.command('SELECT INBOX')).status, 'OK');
      assert.equal((await b.command('SELECT INBOX')).status, 'OK');
      assert.equal((await b.command('STORE 2 +FLAGS.SILENT (\\Deleted)')).status, 'OK');
      assert.equal((await b.command('EXPUNGE')).status, 'OK');
      const reply = await a.command('SEARCH ALL');
      assert.deepEqual(searchNumbers(reply), [1, 3]);
      assert.ok(!reply.untagged.some((l) => /EXPUNGE/.test(l)), `EXPUNGE during SEARCH: ${JSON.stringify(reply.untagged)}`);
      const noop = await a.command('NOOP');
      assert.ok(noop.untagged.includes('* 2 EXPUNGE'), JSON.stringify(noop.untagged));
      assert.deepEqual(await search('ALL', a), [1, 2]);
      // New mail is seen by the next search.
      deliver(server.ports.smtp!, carl, testMessages().slice(5));
      const later = await a.command('SEARCH FROM dave');
      assert.deepEqual(searchNumbers(later), [3]);
      assert.ok(later.untagged.includes('* 3 EXISTS'), JSON.stringify(later.untagged));
    });

    it('internal dates from APPEND: BEFORE, ON, SINCE, OLDER, YOUNGER', async () => {
      const c = await raw(`dora@${DOMAIN}`);
      const dates = ['15-Jan-2020 10:00:00 +0000', '20-Feb-2021 23:30:00 +0000', null];
      for (const date of dates) {
        const bytes = Buffer.from(crlf(['Subject: dated', '', 'x']));
        const reply = await c.command(Buffer.concat([Buffer.from(`APPEND INBOX ${date ? `"${date}" ` : ''}{${bytes.length}+}\r\n`), bytes]));
        assert.equal(reply.status, 'OK', reply.tagged);
      }
      assert.equal((await c.command('SELECT INBOX')).status, 'OK');
      const cases: Array<[string, number[]]> = [
        ['BEFORE 1-Jan-2021', [1]],
        ['BEFORE 20-Feb-2021', [1]],
        ['ON 20-Feb-2021', [2]],
        ['SINCE 20-Feb-2021', [2, 3]],
        ['SINCE 21-Feb-2021', [3]],
        ['OLDER 86400', [1, 2]],
        ['YOUNGER 86400', [3]],
        ['OR ON 15-Jan-2020 YOUNGER 60', [1, 3]],
      ];
      for (const [criteria, expected] of cases) assert.deepEqual(await search(criteria, c), expected, criteria);
    });
  });

  describe('Python imaplib', () => {
    it('search, uid search, UTF-8 literals, sort and thread', () => {
      const script = String.raw`
import imaplib, json, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login(sys.argv[2], sys.argv[3])
m.select('INBOX')
out = {}
def nums(r):
    typ, data = r
    assert typ == 'OK', (typ, data)
    return [int(x) for x in (data[0] or b'').split()]
out['from'] = nums(m.search(None, 'FROM', 'alice'))
out['or'] = nums(m.search(None, 'OR', 'FROM', 'carol', 'FLAGGED'))
out['uid'] = nums(m.uid('SEARCH', 'FROM', 'alice'))
out['quoted'] = nums(m.search(None, 'SUBJECT', '"quarterly report"'))
m.literal = '会議'.encode('utf-8')
out['subject_jp'] = nums(m.search('UTF-8', 'SUBJECT'))
m.literal = '添付ファイル'.encode('utf-8')
out['body_jp'] = nums(m.search('UTF-8', 'BODY'))
m.literal = 'münchen'.encode('utf-8')
out['uid_body_de'] = nums(m.uid('SEARCH', 'CHARSET', 'UTF-8', 'BODY'))
try:
    typ, data = m.search('KOI8-R', 'ALL')
    out['koi8'] = typ + ' ' + data[0].decode()
except imaplib.IMAP4.error as e:
    out['koi8'] = str(e)
out['sort'] = nums(m.sort('(REVERSE DATE)', 'UTF-8', 'ALL'))
out['uid_sort'] = nums(m.uid('SORT', '(SUBJECT)', 'UTF-8', 'NOT', 'DELETED'))
typ, data = m.thread('REFERENCES', 'UTF-8', 'ALL')
out['thread'] = data[0].decode()
typ, data = m.thread('ORDEREDSUBJECT', 'UTF-8', 'ALL')
out['ordered'] = data[0].decode()
m.logout()
print(json.dumps(out))
`;
      const result = python(script, [String(port), BOB, PASSWORD]);
      assert.equal(result.status, 0, result.stderr);
      const out = JSON.parse(result.stdout) as Record<string, unknown>;
      const u = uidOf;
      assert.deepEqual(out.from, [1, 5]);
      assert.deepEqual(out.or, [2, 4]);
      assert.deepEqual(out.uid, [u[1], u[5]]);
      assert.deepEqual(out.quoted, [1, 3]);
      assert.deepEqual(out.subject_jp, [2]);
      assert.deepEqual(out.body_jp, [2]);
      assert.deepEqual(out.uid_body_de, [u[3]]);
      assert.match(String(out.koi8), /BADCHARSET/);
      assert.deepEqual(out.sort, [6, 5, 3, 2, 1, 4]);
      assert.deepEqual(out.uid_sort, [u[6], u[1], u[3], u[4], u[2]]);
      assert.equal(out.thread, '(4 5)(1 (3)(6))(2)');
      assert.equal(out.ordered, '(4 5)(1 3)(2)(6)');
    });
  });

  describe('imapflow', () => {
    it('search objects, UTF-8, UIDs, dates (WITHIN) and ESEARCH return options', async () => {
      const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user: BOB, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
      await client.connect();
      clients.push({ close: () => client.logout().catch(() => undefined) });
      const lock = await client.getMailboxLock('INBOX');
      try {
        const u = uidOf;
        assert.deepEqual(await client.search({ from: 'alice' }), [1, 5]);
        assert.deepEqual(await client.search({ subject: '会議' }), [2]);
        assert.deepEqual(await client.search({ body: '添付ファイル' }, { uid: true }), [u[2]]);
        assert.deepEqual(await client.search({ text: 'CAFÉ' }), [4, 5]);
        assert.deepEqual(await client.search({ or: [{ from: 'carol' }, { seen: true }] }), [1, 4]);
        assert.deepEqual(await client.search({ not: { from: 'alice' }, flagged: false }), [3, 6]);
        assert.deepEqual(await client.search({ header: { 'x-tracking': 'abc' } }), [1]);
        assert.deepEqual(await client.search({ larger: 20_000 }), [5]);
        assert.deepEqual(await client.search({ keyword: '$Important' }), [3]);
        assert.deepEqual(await client.search({ since: new Date(Date.now() - 3_600_000) }), [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(await client.search({ before: new Date(Date.now() - 3_600_000) }), []);
        assert.deepEqual(await client.search({ sentBefore: new Date('2026-11-02T00:00:00Z') }), [4]);
        assert.deepEqual(await client.search({ uid: `${u[2]}:${u[4]}` }), [2, 3, 4]);
        assert.deepEqual(await client.search({ all: true }), [1, 2, 3, 4, 5, 6]);
        const e = (await client.search({ from: 'alice' }, { returnOptions: ['MIN', 'MAX', 'COUNT', 'ALL'] })) as unknown as Record<string, unknown>;
        assert.equal(e.min, 1);
        assert.equal(e.max, 5);
        assert.equal(e.count, 2);
        assert.equal(e.all, '1,5');
      } finally {
        lock.release();
      }
    });
  });

  describe('text cache', () => {
    it('repeated searches over many messages are fast', async () => {
      const dora = `dora@${DOMAIN}`;
      const many: Buffer[] = [];
      for (let i = 0; i < 150; i++) many.push(testMessages()[i % 6]!);
      deliver(server.ports.smtp!, dora, many);
      const c = await raw(dora);
      await c.command('SELECT INBOX');
      const first = Date.now();
      const hits = searchNumbers(await searchUtf8('BODY', '添付ファイル', c));
      const cold = Date.now() - first;
      assert.equal(hits.length, 25);
      const start = Date.now();
      for (let i = 0; i < 5; i++) searchNumbers(await searchUtf8('TEXT', '会議の件', c));
      const warm = (Date.now() - start) / 5;
      assert.ok(warm < 1000, `warm search took ${warm} ms (cold ${cold} ms)`);
    });
  });
});
