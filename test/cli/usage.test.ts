// `yubin usage ADDRESS` and `yubin usage --over PERCENT` against a real server: the fixture
// mailbox is built by delivering over SMTP (Python's smtplib), appending with given internal
// dates over IMAP (imapflow) and downloading over POP3 (poplib); every figure of the report is
// checked exactly against what the clients see (RFC822.SIZE, INTERNALDATE) and against
// `yubin user list --json`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ImapFlow } from 'imapflow';
import { cli, cliOk, listUsers, makeDataDir, python, startYubin, userRow, type CliResult, type RunningYubin , smtpSendWithPython } from '../helpers/yubin.js';
import { formatSize } from '../../src/config/size.js';
import type { OverQuotaReport, UsageReport } from '../../src/usage/report.js';

const PASSWORD = 'password1';
const DAY = 86_400_000;
const CRLF = '\r\n';


/** RETRs the given message numbers and QUITs without deleting anything. */
const RETRIEVE = `
import poplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
p = poplib.POP3('127.0.0.1', port)
p.user(user)
p.pass_(password)
for n in sys.argv[4:]:
    p.retr(int(n))
p.quit()
`;

/** Base64 of n bytes, 76 characters a line, CRLF between lines: exactly what the part body holds. */
function base64Body(n: number, seed: number): string {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 131 + seed * 17) & 0xff;
  return bytes.toString('base64').match(/.{1,76}/g)!.join(CRLF);
}

const message = (headers: string[], body: string) => [...headers, '', body, ''].join(CRLF);
const filler = (lines: number, tag: string) => Array.from({ length: lines }, (_, i) => `${tag} line ${i} ${'x'.repeat(60)}`).join(CRLF);

function assertOneLineError(result: CliResult, exitCode: number, pattern: RegExp): void {
  assert.equal(result.status, exitCode, `exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
}

interface Seen {
  mailbox: string;
  uid: number;
  size: number;
  internalDate: Date;
}

describe('yubin usage', () => {
  let dataDir: string;
  let yubin: RunningYubin;
  const alice = 'alice@example.test';
  // The attachment bodies as sent: the report must count exactly these bytes.
  const drawing = base64Body(30_000, 1);
  const logo = base64Body(4_000, 2);
  let now: Date;

  const send = (to: string, from: string, data: string) => smtpSendWithPython(yubin.ports.smtp!, from, to, data);
  const imap = async (user: string) => {
    const client = new ImapFlow({ host: '127.0.0.1', port: yubin.ports.imap!, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await client.connect();
    return client;
  };
  /** Every message as an IMAP client sees it: mailbox, UID, RFC822.SIZE, INTERNALDATE. */
  const seenOverImap = async (user: string): Promise<Seen[]> => {
    const client = await imap(user);
    const out: Seen[] = [];
    try {
      for (const box of await client.list()) {
        const status = await client.status(box.path, { messages: true });
        if (!status || !status.messages) continue;
        await client.mailboxOpen(box.path, { readOnly: true });
        for await (const m of client.fetch('1:*', { uid: true, size: true, internalDate: true })) {
          out.push({ mailbox: box.path, uid: m.uid, size: m.size!, internalDate: new Date(m.internalDate!) });
        }
      }
    } finally {
      await client.logout();
    }
    return out;
  };
  const report = (user: string, extra: string[] = []) => JSON.parse(cliOk(dataDir, ['usage', user, '--json', '--now', now.toISOString(), ...extra])) as UsageReport;
  const sum = (list: Seen[]) => list.reduce((s, m) => s + m.size, 0);

  before(async () => {
    dataDir = makeDataDir('yubin-usage-');
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    for (const user of ['alice', 'bob', 'carol', 'dave', 'erin']) cliOk(dataDir, ['user', 'add', `${user}@example.test`, '--password', PASSWORD]);
    cliOk(dataDir, ['user', 'quota', alice, '1M']);
    cliOk(dataDir, ['user', 'quota', 'bob@example.test', '20K']);
    cliOk(dataDir, ['user', 'quota', 'carol@example.test', 'none']);
    cliOk(dataDir, ['user', 'set', 'dave@example.test', 'quota_messages', '3']);
    cliOk(dataDir, ['user', 'set', alice, 'pop3.keep_after_retrieval', '30']);
    yubin = await startYubin(dataDir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);

    // INBOX over SMTP, in this order (POP3 message numbers 1..5).
    send(alice, 'friend@example.org', message(['From: "Friend" <Friend@Example.ORG>', 'To: alice@example.test', 'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?='], 'Hello Alice'));
    for (const n of [1, 2]) {
      send(
        alice,
        'bounces@shop.example',
        message(['From: Shop News <news@shop.example>', 'To: alice@example.test', `Subject: Deals ${n}`, 'List-Unsubscribe: <mailto:unsubscribe@shop.example>'], filler(20 * n, 'deal')),
      );
    }
    send(
      alice,
      'boss@corp.example',
      message(
        ['From: boss@corp.example', 'To: alice@example.test', 'Subject: Drawings', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="==b1"'],
        ['--==b1', 'Content-Type: text/plain', '', 'The drawings, attached.', '--==b1', 'Content-Type: application/pdf', 'Content-Disposition: attachment; filename="drawing.pdf"', 'Content-Transfer-Encoding: base64', '', drawing, '--==b1--'].join(CRLF),
      ),
    );
    send(
      alice,
      'boss@corp.example',
      message(
        ['From: boss@corp.example', 'To: alice@example.test', 'Subject: Logo', 'MIME-Version: 1.0', 'Content-Type: multipart/related; boundary=rel'],
        ['--rel', 'Content-Type: text/html', 'Content-Disposition: inline', '', '<img src="cid:logo">', '--rel', 'Content-Type: image/png', 'Content-ID: <logo>', 'Content-Disposition: inline; filename=logo.png', 'Content-Transfer-Encoding: base64', '', logo, '--rel--'].join(CRLF),
      ),
    );
    // POP3 downloads messages 1 and 2 and leaves them on the server.
    const pop = python(RETRIEVE, [String(yubin.ports.pop3), alice, PASSWORD, '1', '2']);
    assert.equal(pop.status, 0, pop.stderr);

    // Older mail over IMAP APPEND with given internal dates (whole seconds, as IMAP carries them).
    now = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
    const client = await imap(alice);
    try {
      const put = (mailbox: string, daysAgo: number, from: string, subject: string, lines: number, extra: string[] = []) =>
        client.append(mailbox, message([`From: ${from}`, `Subject: ${subject}`, ...extra], filler(lines, subject)), ['\\Seen'], new Date(now.getTime() - daysAgo * DAY));
      await put('Archive', 100, 'old@archive.example', 'Hundred days', 30);
      await put('Archive', 400, 'old@archive.example', 'Four hundred days', 50);
      await put('Archive', 400, 'Digest <digest@lists.example>', 'Old digest', 5, ['List-Id: <digest.lists.example>']);
      await put('Trash', 45, 'news@shop.example', 'Deals 0', 10, ['Precedence: bulk']);
      // Exactly 30 days old: the 30-to-365 bucket.
      await put('Archive', 30, 'old@archive.example', 'Thirty days', 3);
    } finally {
      await client.logout();
    }
  });

  after(async () => {
    await yubin?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports usage, quota, mailboxes and ages exactly as the clients and `user list` see them', async () => {
    const seen = await seenOverImap(alice);
    const r = report(alice);
    const row = userRow(dataDir, alice);
    assert.equal(r.version, 1);
    assert.equal(r.address, alice);
    assert.equal(r.now, now.toISOString());
    assert.deepEqual(r.usage, { bytes: row.used, messages: row.messages });
    assert.equal(r.usage.bytes, sum(seen), 'usage equals the sum of RFC822.SIZE');
    assert.equal(r.usage.messages, 10);
    assert.deepEqual(r.quota, { bytes: 1024 * 1024, messages: null, bytesPercent: Math.round((row.used / (1024 * 1024)) * 1000) / 10, messagesPercent: null });
    assert.deepEqual(r.scanned, { messages: 10, bytes: row.used, vanished: 0 });

    const expectedBoxes = ['INBOX', 'Sent', 'Drafts', 'Trash', 'Junk', 'Archive'].map((name) => {
      const list = seen.filter((m) => m.mailbox === name);
      return { name, messages: list.length, bytes: sum(list) };
    });
    expectedBoxes.sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1));
    assert.deepEqual(
      r.mailboxes.map(({ name, messages, bytes }) => ({ name, messages, bytes })),
      expectedBoxes,
    );
    assert.equal(r.mailboxes.find((m) => m.name === 'Trash')?.specialUse, '\\Trash');

    const age = (m: Seen) => now.getTime() - m.internalDate.getTime();
    const bucket = (test: (ms: number) => boolean) => {
      const list = seen.filter((m) => test(age(m)));
      return { messages: list.length, bytes: sum(list) };
    };
    assert.deepEqual(r.age, {
      under30Days: bucket((ms) => ms < 30 * DAY),
      from30To365Days: bucket((ms) => ms >= 30 * DAY && ms < 365 * DAY),
      over365Days: bucket((ms) => ms >= 365 * DAY),
    });
    assert.deepEqual(
      [r.age.under30Days.messages, r.age.from30To365Days.messages, r.age.over365Days.messages],
      [5, 3, 2],
    );
  });

  it('counts attachment bytes as encoded in the message', () => {
    const r = report(alice);
    assert.deepEqual(r.attachments, { bytes: Buffer.byteLength(drawing) + Buffer.byteLength(logo), parts: 2, messages: 2 });
  });

  it('lists the largest messages with decoded subjects, senders, dates, mailbox and UID', async () => {
    const seen = await seenOverImap(alice);
    const r = report(alice, ['--top', '3']);
    const expected = [...seen].sort((a, b) => b.size - a.size || a.internalDate.getTime() - b.internalDate.getTime()).slice(0, 3);
    assert.deepEqual(
      // IMAP INTERNALDATE has whole seconds; the report keeps what the store has.
      r.largest.map((m) => [m.mailbox, m.uid, m.size, m.internalDate.slice(0, 19)]),
      expected.map((m) => [m.mailbox, m.uid, m.size, m.internalDate.toISOString().slice(0, 19)]),
    );
    assert.deepEqual(r.largest[0]!.subject, 'Drawings');
    assert.deepEqual(r.largest[0]!.sender, 'boss@corp.example');
    const all = report(alice, ['--top', '50']).largest;
    assert.equal(all.length, 10);
    const greeting = all.find((m) => m.sender === 'friend@example.org')!;
    assert.equal(greeting.subject, 'Grüße aus Köln');
    assert.deepEqual([greeting.mailbox, greeting.uid], ['INBOX', 1]);
  });

  it('ranks senders by bytes and marks bulk senders', async () => {
    const seen = await seenOverImap(alice);
    const r = report(alice);
    const largest = report(alice, ['--top', '50']).largest;
    const bytesOf = (sender: string) => {
      const keys = new Set(largest.filter((m) => m.sender === sender).map((m) => `${m.mailbox}/${m.uid}`));
      return seen.filter((m) => keys.has(`${m.mailbox}/${m.uid}`));
    };
    const expected = ['boss@corp.example', 'news@shop.example', 'old@archive.example', 'digest@lists.example', 'friend@example.org'].map((address) => {
      const list = bytesOf(address);
      return { address, messages: list.length, bytes: sum(list) };
    });
    expected.sort((a, b) => b.bytes - a.bytes || b.messages - a.messages);
    assert.deepEqual(
      r.senders.map(({ address, messages, bytes }) => ({ address, messages, bytes })),
      expected,
    );
    const bulk = Object.fromEntries(r.senders.map((s) => [s.address, [s.bulk, s.bulkMessages]]));
    assert.deepEqual(bulk, {
      'boss@corp.example': [false, 0],
      'news@shop.example': [true, 3],
      'old@archive.example': [false, 0],
      'digest@lists.example': [true, 1],
      'friend@example.org': [false, 0],
    });
  });

  it('reports POP3-retrieved mail still on the server', async () => {
    const inbox = (await seenOverImap(alice)).filter((m) => m.mailbox === 'INBOX');
    const r = report(alice);
    const retrieved = inbox.filter((m) => m.uid <= 2);
    const rest = inbox.filter((m) => m.uid > 2);
    assert.deepEqual(r.pop3, {
      retrievedOnServer: { messages: 2, bytes: sum(retrieved) },
      notRetrieved: { messages: 3, bytes: sum(rest) },
      removedAfterRetrieval: { messages: 0, bytes: 0 },
      keepAfterRetrievalDays: 30,
    });
  });

  it('reports removals by retention and by cleanup, per reason', async () => {
    assert.deepEqual(report(alice).removals, { messages: 0, bytes: 0, byReason: {} });
    const trash = (await seenOverImap(alice)).filter((m) => m.mailbox === 'Trash');
    // Retention as of 31 days later: the 45-day-old Trash message goes (retention.trash = 30).
    const later = new Date(now.getTime() + DAY);
    cliOk(dataDir, ['maintenance', 'run', '--now', later.toISOString()]);
    // Cleanup removes the 400-day-old digest.
    const cleaned = JSON.parse(cliOk(dataDir, ['cleanup', alice, '--from', 'digest@lists.example', '--json'])) as { freed: { messages: number; bytes: number } };
    assert.equal(cleaned.freed.messages, 1);
    const r = report(alice);
    assert.deepEqual(r.removals, {
      messages: 2,
      bytes: sum(trash) + cleaned.freed.bytes,
      byReason: { cleanup: cleaned.freed, trash: { messages: 1, bytes: sum(trash) } },
    });
    assert.deepEqual(r.usage, { bytes: userRow(dataDir, alice).used, messages: 8 });
    const text = cliOk(dataDir, ['usage', alice, '--now', now.toISOString()]);
    assert.match(text, /^Removed by retention and cleanup since the log began: 2 messages, /m);
    assert.match(text, /^ {2}cleanup +1 message +/m);
    assert.match(text, /^ {2}trash +1 message +/m);
  });

  it('prints a readable report', () => {
    const r = report(alice);
    const text = cliOk(dataDir, ['usage', alice, '--now', now.toISOString()]);
    assert.match(text, new RegExp(`^Storage report for alice@example\\.test as of ${now.toISOString().replace(/\./g, '\\.')}$`, 'm'));
    assert.ok(text.includes(`Usage: ${formatSize(r.usage.bytes)} of 1 MiB (${r.quota.bytesPercent}%)`), text);
    assert.match(text, /^ {7}8 messages \(no message limit\)$/m);
    assert.match(text, /^ {2}INBOX +5 +[\d.]+ KiB$/m);
    assert.match(text, /^Attachments: [\d.]+ KiB in 2 parts of 2 messages \(\d+(\.\d)?% of the stored bytes\)$/m);
    assert.match(text, /^ +[\d.]+ KiB +\d{4}-\d\d-\d\d +INBOX +4 +boss@corp\.example +Drawings$/m);
    assert.match(text, /^ +[\d.]+ KiB +2 +news@shop\.example +bulk \(2\)$/m);
    assert.match(text, /^ {2}retrieved and still on the server +2 messages +[\d.]+ KiB$/m);
    assert.match(text, /kept on the server after retrieval: 30 days/);
  });

  it('refuses bad arguments with one line', () => {
    assertOneLineError(cli(dataDir, ['usage']), 2, /^yubin: usage: yubin usage ADDRESS/);
    assertOneLineError(cli(dataDir, ['usage', 'nobody@example.test']), 1, /^yubin: no user nobody@example\.test$/);
    assertOneLineError(cli(dataDir, ['usage', alice, '--now', 'yesterday']), 2, /--now expects an ISO-8601/);
    assertOneLineError(cli(dataDir, ['usage', alice, '--top', '0']), 2, /--top expects a whole number/);
    assertOneLineError(cli(dataDir, ['usage', '--over', 'lots']), 2, /invalid share "lots"/);
    assertOneLineError(cli(dataDir, ['usage', alice, '--over', '80%']), 2, /--over lists users/);
    assert.match(cliOk(dataDir, ['usage', '--help']), /^yubin usage --over PERCENT \[--json\]/m);
    assert.match(cliOk(dataDir, ['--help']), /^yubin usage ADDRESS \[--json\] \[--top N\] \[--now ISO-8601\]$/m);
  });

  describe('--over', () => {
    before(() => {
      // bob: 20K quota, about 17.5K used; dave: 3 of 3 messages; carol: no quota, much mail.
      send('bob@example.test', 'x@example.org', message(['From: x@example.org', 'Subject: big'], filler(230, 'b')));
      for (const n of [1, 2, 3]) send('dave@example.test', 'x@example.org', message(['From: x@example.org', `Subject: d${n}`], 'small'));
      send('carol@example.test', 'x@example.org', message(['From: x@example.org', 'Subject: c'], filler(300, 'c')));
    });

    /** The expected rows from `yubin user list --json` (dave's message quota is 3, nobody else has one). */
    const expected = (threshold: number) => {
      const rows = listUsers(dataDir).map((u) => {
        const quotaMessages = u.address === 'dave@example.test' ? 3 : null;
        const shares = [u.quota === null ? null : (u.used / u.quota) * 100, quotaMessages === null ? null : (u.messages / quotaMessages) * 100].filter((s): s is number => s !== null);
        return { address: u.address, used: u.used, quota: u.quota, messages: u.messages, quotaMessages, share: shares.length === 0 ? null : Math.max(...shares) };
      });
      return rows
        .filter((r) => r.share !== null && r.share > threshold)
        .sort((a, b) => b.share! - a.share! || (a.address < b.address ? -1 : 1))
        .map(({ address, used, quota, messages, quotaMessages }) => ({ address, used, quota, messages, quotaMessages }));
    };
    const over = (arg: string) => JSON.parse(cliOk(dataDir, ['usage', '--over', arg, '--json'])) as OverQuotaReport;
    const strip = (r: OverQuotaReport) => r.users.map(({ address, used, quota, messages, quotaMessages }) => ({ address, used, quota, messages, quotaMessages }));

    it('lists exactly the users above the share of their byte or message quota, highest first', () => {
      const bob = userRow(dataDir, 'bob@example.test');
      assert.ok(bob.used > 0.8 * 20 * 1024 && bob.used < 20 * 1024, `bob's fixture: ${bob.used}`);
      const at80 = over('80%');
      assert.equal(at80.threshold, 80);
      assert.deepEqual(strip(at80), expected(80));
      assert.deepEqual(
        at80.users.map((u) => u.address),
        ['dave@example.test', 'bob@example.test'],
      );
      // dave may also hold a capacity notice (delivered whatever the quota): his own figures count.
      const dave = userRow(dataDir, 'dave@example.test');
      assert.ok(dave.messages >= 3);
      const davePercent = Math.round((dave.messages / 3) * 1000) / 10;
      assert.deepEqual(at80.users[0], {
        address: 'dave@example.test',
        used: dave.used,
        quota: 1024 ** 3,
        percent: Math.round((dave.used / 1024 ** 3) * 1000) / 10,
        messages: dave.messages,
        quotaMessages: 3,
        messagesPercent: davePercent,
        share: davePercent,
      });
      assert.equal(at80.users[1]!.percent, Math.round((bob.used / (20 * 1024)) * 1000) / 10);
      assert.deepEqual(strip(over('99.9')), expected(99.9));
      assert.deepEqual(strip(over('100')), expected(100));
      assert.deepEqual(strip(over(String((dave.messages / 3) * 100))), [], 'strictly above: the highest share itself is not above it');
      const all = over('0');
      assert.deepEqual(strip(all), expected(0));
      assert.ok(!all.users.some((u) => u.address === 'carol@example.test'), 'no quota, never listed');
      assert.ok(!all.users.some((u) => u.address === 'erin@example.test'), 'nothing stored is not above 0%');
    });

    it('prints one line per user', () => {
      const text = cliOk(dataDir, ['usage', '--over', '80%']);
      const lines = text.trimEnd().split('\n');
      assert.equal(lines[0], '2 users above 80% of their quota:');
      assert.match(lines[1]!, /^ {2}dave@example\.test {2}\S+ (bytes|KiB) of 1 GiB \([\d.]+%\) +\d+ of 3 messages \([\d.]+%\)$/);
      assert.match(lines[2]!, /^ {2}bob@example\.test {3}[\d.]+ KiB of 20 KiB \(\d+(\.\d)?%\) +\d+ messages?$/);
      assert.equal(cliOk(dataDir, ['usage', '--over', '500']).trim(), 'no user is above 500% of their quota');
    });
  });
});
