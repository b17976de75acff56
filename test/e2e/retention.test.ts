// Retention with `yubin maintenance run --now`: POP3 "leave on server for N days" (messages
// retrieved with Python's poplib), Trash/Junk and named-mailbox expiry (messages appended with old
// internal dates over IMAP), the usage safety valve, a dry run that changes nothing, CAPA EXPIRE,
// and an IMAP session selected on INBOX that is told of the expunges.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { cliOk, makeDataDir, python, startYubin, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox } from '../helpers/mailbox.js';

const PASSWORD = 'password1';
const SERVE_ARGS = ['--smtp', '127.0.0.1:0', '--pop3', '127.0.0.1:0', '--imap', '127.0.0.1:0'];
const DAY = 24 * 60 * 60 * 1000;

interface Removal {
  account: string;
  mailbox: string;
  uid: number;
  size: number;
  reason: string;
  why: string;
}
interface Report {
  now: string;
  dryRun: boolean;
  retention: { removed: Removal[]; bytesFreed: number };
}

const SEND = `
import smtplib, sys
port, to, subject, lines = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
body = 'Subject: ' + subject + '\\r\\n\\r\\n' + ('x' * 70 + '\\r\\n') * lines
s = smtplib.SMTP('127.0.0.1', port)
s.sendmail('sender@example.org', [to], body)
s.quit()
`;

/** Logs in over POP3, RETRs the given message numbers, QUITs without deleting; prints CAPA before and after login. */
const RETRIEVE = `
import json, poplib, sys
port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
numbers = [int(n) for n in sys.argv[4:]]
p = poplib.POP3('127.0.0.1', port)
before = p.capa()
p.user(user)
p.pass_(password)
after = p.capa()
for n in numbers:
    p.retr(n)
p.quit()
print(json.dumps({'before': before.get('EXPIRE'), 'after': after.get('EXPIRE')}))
`;

describe('retention (yubin maintenance run)', () => {
  let dataDir: string;
  let yubin: RunningYubin;

  const send = (to: string, subject: string, lines = 5) => {
    const result = python(SEND, [String(yubin.ports.smtp), to, subject, String(lines)]);
    assert.equal(result.status, 0, result.stderr);
  };
  const retrieve = (user: string, numbers: number[]): { before: string[] | undefined; after: string[] | undefined } => {
    const result = python(RETRIEVE, [String(yubin.ports.pop3), user, PASSWORD, ...numbers.map(String)]);
    assert.equal(result.status, 0, result.stderr);
    return JSON.parse(result.stdout) as { before: string[] | undefined; after: string[] | undefined };
  };
  const run = (now: Date, dryRun = false): Report =>
    JSON.parse(cliOk(dataDir, ['maintenance', 'run', '--now', now.toISOString(), '--json', ...(dryRun ? ['--dry-run'] : [])])) as Report;
  const uids = async (user: string, mailbox = 'INBOX') => (await readMailbox(dataDir, user, mailbox)).map((m) => m.uid);
  const imap = async (user: string) => {
    const client = new ImapFlow({ host: '127.0.0.1', port: yubin.ports.imap!, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await client.connect();
    return client;
  };

  before(async () => {
    dataDir = makeDataDir('yubin-retention-');
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    for (const user of ['bob', 'carol', 'dave']) cliOk(dataDir, ['user', 'add', `${user}@example.test`, '--password', PASSWORD]);
    yubin = await startYubin(dataDir, SERVE_ARGS);
  });

  after(async () => {
    await yubin?.stop();
  });

  it('pop3.keep_after_retrieval: retrieved-and-expired messages go, never-retrieved ones stay; CAPA EXPIRE; dry run changes nothing; IMAP sees EXPUNGE', async () => {
    const bob = 'bob@example.test';
    cliOk(dataDir, ['user', 'set', bob, 'pop3.keep_after_retrieval', '14']);
    assert.equal(cliOk(dataDir, ['user', 'get', bob, 'pop3.keep_after_retrieval']).trim(), '14');
    assert.match(cliOk(dataDir, ['domain', 'get', 'example.test']), /pop3\.keep_after_retrieval = forever\t\(config\)/);
    for (const n of [1, 2, 3]) send(bob, `bob ${n}`);
    const capa = retrieve(bob, [1, 2]);
    // Before login the server-wide default; after login the user's own value (RFC 2449 §6.7).
    assert.deepEqual(capa.before, ['NEVER']);
    assert.deepEqual(capa.after, ['14']);
    const startedAt = new Date();

    const client = await imap(bob);
    try {
      const expunged: number[] = [];
      client.on('expunge', (event: { seq: number }) => expunged.push(event.seq));
      await client.mailboxOpen('INBOX');
      assert.equal(client.mailbox && client.mailbox.exists, 3);

      // Not yet 14 days after the retrieval: nothing for bob.
      assert.deepEqual(run(new Date(startedAt.getTime() + 13 * DAY), true).retention.removed.filter((r) => r.account === bob), []);

      const later = new Date(startedAt.getTime() + 15 * DAY);
      const usersBefore = cliOk(dataDir, ['user', 'list', '--json']);
      const dry = run(later, true);
      assert.equal(dry.dryRun, true);
      const dryBob = dry.retention.removed.filter((r) => r.account === bob);
      assert.deepEqual(
        dryBob.map((r) => [r.mailbox, r.uid, r.reason]),
        [
          ['INBOX', 1, 'pop3-kept'],
          ['INBOX', 2, 'pop3-kept'],
        ],
      );
      assert.equal(cliOk(dataDir, ['user', 'list', '--json']), usersBefore, 'a dry run changes nothing');
      assert.deepEqual(await uids(bob), [1, 2, 3]);
      const text = cliOk(dataDir, ['maintenance', 'run', '--now', later.toISOString(), '--dry-run']);
      assert.match(text, /would remove bob@example\.test INBOX uid 1 \(\d+ bytes\): pop3-kept: /);
      assert.match(text, /nothing changed/);

      const real = run(later);
      assert.deepEqual(real.retention.removed, dry.retention.removed, 'the dry run printed what the real run did');
      assert.equal(real.retention.bytesFreed, dry.retention.bytesFreed);
      assert.deepEqual(await uids(bob), [3], 'the never-retrieved message stays');
      assert.notEqual(cliOk(dataDir, ['user', 'list', '--json']), usersBefore);

      // The selected IMAP session is told (the CLI is another process: seen via data_version).
      const deadline = Date.now() + 10_000;
      while (expunged.length < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        await client.noop();
      }
      assert.equal(expunged.length, 2);
      assert.equal(client.mailbox && client.mailbox.exists, 1);

      // A second run removes nothing more.
      assert.deepEqual(run(later).retention.removed.filter((r) => r.account === bob), []);
    } finally {
      await client.logout();
    }
  });

  it('Trash, Junk and named mailboxes expire by internal date', async () => {
    const carol = 'carol@example.test';
    cliOk(dataDir, ['user', 'set', carol, 'retention.junk', '60']);
    cliOk(dataDir, ['user', 'set', carol, 'retention.mailboxes', 'Newsletters=14']);
    const now = new Date();
    const client = await imap(carol);
    try {
      await client.mailboxCreate('Newsletters');
      const put = (mailbox: string, daysAgo: number) =>
        client.append(mailbox, `Subject: ${mailbox} ${daysAgo}\r\n\r\nold\r\n`, ['\\Seen'], new Date(now.getTime() - daysAgo * DAY));
      await put('Trash', 40); // uid 1: past 30 days
      await put('Trash', 5); // uid 2
      await put('Junk', 40); // uid 1: within 60 days
      await put('Junk', 100); // uid 2: past 60 days
      await put('Newsletters', 20); // uid 1: past 14 days
      await put('Newsletters', 1); // uid 2
      await put('Archive', 400); // no retention
    } finally {
      await client.logout();
    }
    const report = run(now);
    assert.deepEqual(
      report.retention.removed.filter((r) => r.account === carol).map((r) => [r.mailbox, r.uid, r.reason]),
      [
        ['Trash', 1, 'trash'],
        ['Junk', 2, 'junk'],
        ['Newsletters', 1, 'mailbox'],
      ],
    );
    assert.deepEqual(await uids(carol, 'Trash'), [2]);
    assert.deepEqual(await uids(carol, 'Junk'), [1]);
    assert.deepEqual(await uids(carol, 'Newsletters'), [2]);
    assert.deepEqual(await uids(carol, 'Archive'), [1]);
  });

  it('the safety valve removes POP3-retrieved INBOX messages, oldest retrieval first, never unretrieved ones', async () => {
    const dave = 'dave@example.test';
    for (const n of [1, 2, 3, 4]) send(dave, `dave ${n}`, 40);
    retrieve(dave, [3]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    retrieve(dave, [2]);
    const mail = await readMailbox(dataDir, dave);
    const used = mail.reduce((sum, m) => sum + m.size, 0);
    const size3 = mail.find((m) => m.uid === 3)!.size;
    const quota = 100 * 1024;
    cliOk(dataDir, ['user', 'set', dave, 'quota', String(quota)]);
    // A mark just below the usage: removing one message is enough.
    const percent = (((used - size3 / 2) / quota) * 100).toFixed(2);
    cliOk(dataDir, ['user', 'set', dave, 'pop3.expire_when_usage_above', `${percent}%`]);
    const now = new Date();
    const first = run(now);
    assert.deepEqual(
      first.retention.removed.filter((r) => r.account === dave).map((r) => [r.mailbox, r.uid, r.reason]),
      [['INBOX', 3, 'pop3-usage']],
    );
    assert.deepEqual(await uids(dave), [1, 2, 4]);

    // A mark nothing can reach: every retrieved message goes, the never-retrieved ones stay.
    cliOk(dataDir, ['user', 'set', dave, 'pop3.expire_when_usage_above', '1%']);
    const second = run(now);
    assert.deepEqual(
      second.retention.removed.filter((r) => r.account === dave).map((r) => [r.uid, r.reason]),
      [[2, 'pop3-usage']],
    );
    assert.deepEqual(await uids(dave), [1, 4]);
    assert.deepEqual(run(now).retention.removed.filter((r) => r.account === dave), []);
  });

  it('counts removals per user for the storage report', async () => {
    const { SqliteStore } = await import('../../src/store/sqlite/sqlite-store.js');
    const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
    try {
      const totals = await store.retentionTotals();
      const byAccount = new Map<number, (typeof totals)[number]>(totals.map((t) => [t.accountId, t]));
      const bob = (await store.getAccount('bob@example.test'))!;
      const carol = (await store.getAccount('carol@example.test'))!;
      const dave = (await store.getAccount('dave@example.test'))!;
      assert.equal(byAccount.get(bob.id)?.messages, 2);
      assert.equal(byAccount.get(bob.id)?.byReason['pop3-kept']?.messages, 2);
      assert.equal(byAccount.get(carol.id)?.messages, 3);
      assert.deepEqual(Object.keys(byAccount.get(carol.id)!.byReason).sort(), ['junk', 'mailbox', 'trash']);
      assert.equal(byAccount.get(dave.id)?.byReason['pop3-usage']?.messages, 2);
    } finally {
      await store.close();
    }
  });
});
