// `yubin cleanup` against a real server: mail delivered over SMTP (Python's smtplib) and appended
// with old internal dates over IMAP (imapflow). Each selector and their AND; the dry run prints
// exactly what the real run then removes; the bytes the real run reports are the bytes
// `yubin user list --json` loses; an IMAP client in IDLE is told of the expunges while the server
// runs; a bare `cleanup ADDRESS` is refused.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { ImapFlow } from 'imapflow';
import { CLI, cli, cliOk, makeDataDir, python, startYubin, userRow, type CliResult, type RunningYubin , smtpSendWithPython } from '../helpers/yubin.js';
import type { CleanupReport, UsageReport } from '../../src/usage/report.js';

const PASSWORD = 'password1';
const DAY = 86_400_000;
const CRLF = '\r\n';


const message = (headers: string[], body: string) => [...headers, '', body, ''].join(CRLF);
const filler = (lines: number, tag: string) => Array.from({ length: lines }, (_, i) => `${tag} ${i} ${'y'.repeat(60)}`).join(CRLF);

/** The CLI without blocking this process (an IMAP client must keep reading meanwhile). */
function cliAsync(dataDir: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function assertOneLineError(result: CliResult, exitCode: number, pattern: RegExp): void {
  assert.equal(result.status, exitCode, `exit code; stdout: ${result.stdout}; stderr: ${result.stderr}`);
  const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, result.stderr);
  assert.match(lines[0]!, pattern);
  assert.equal(result.stdout, '');
}

/** The per-message lines of the text output, with the dry run's verb made the real one's. */
const itemLines = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .filter((l) => /^(would remove|removed) /.test(l))
    .map((l) => l.replace(/^would remove /, 'removed '));

describe('yubin cleanup', () => {
  let dataDir: string;
  let yubin: RunningYubin;
  const frank = 'frank@example.test';
  const grace = 'grace@example.test';
  let now: Date;

  const send = (to: string, from: string, data: string) => smtpSendWithPython(yubin.ports.smtp!, from, to, data);
  const imap = async (user: string) => {
    const client = new ImapFlow({ host: '127.0.0.1', port: yubin.ports.imap!, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await client.connect();
    return client;
  };
  /** mailbox → UIDs, over IMAP. */
  const uids = async (user: string, mailbox: string) => {
    const client = await imap(user);
    try {
      const box = await client.mailboxOpen(mailbox, { readOnly: true });
      if (box.exists === 0) return [];
      const out: number[] = [];
      for await (const m of client.fetch('1:*', { uid: true })) out.push(m.uid);
      return out;
    } finally {
      await client.logout();
    }
  };
  const json = (args: string[]) => JSON.parse(cliOk(dataDir, ['cleanup', ...args, '--json'])) as CleanupReport;
  const usersJson = () => cliOk(dataDir, ['user', 'list', '--json']);

  before(async () => {
    dataDir = makeDataDir('yubin-cleanup-');
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    for (const user of [frank, grace]) cliOk(dataDir, ['user', 'add', user, '--password', PASSWORD, '--quota', '2M']);
    yubin = await startYubin(dataDir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0']);

    // INBOX (uids 1..6)
    const news = (n: number, extra: string[]) =>
      message(['From: Shop <news@shop.example>', 'To: frank@example.test', `Subject: =?UTF-8?B?${Buffer.from(`Angebote ${n} für Sie`).toString('base64')}?=`, ...extra], filler(30, `news${n}`));
    send(frank, 'bounce@shop.example', news(1, ['List-Id: <news.shop.example>'])); // 1
    send(frank, 'bounce@shop.example', news(2, ['List-Unsubscribe: <https://shop.example/u>'])); // 2
    send(frank, 'promo@mail.shop.example', message(['From: promo@mail.shop.example', 'Subject: promo', 'Precedence: bulk'], filler(10, 'promo'))); // 3: a subdomain
    send(frank, 'friend@example.org', message(['From: friend@example.org', 'Subject: dinner'], 'Tomorrow?')); // 4
    send(frank, 'boss@corp.example', message(['From: boss@corp.example', 'Subject: big report'], filler(600, 'report'))); // 5: ~40K
    send(frank, 'news@shop.example', message(['From: news@shop.example', 'Subject: personal note from the shop'], 'Thanks for your order')); // 6: not bulk
    // grace gets the same newsletter: never touched by frank's cleanup.
    send(grace, 'bounce@shop.example', news(1, ['List-Id: <news.shop.example>']));

    // Archive over IMAP with given internal dates (uids 1..5).
    now = new Date(Math.floor(Date.now() / 1000) * 1000 + 60_000);
    const client = await imap(frank);
    try {
      const put = (daysAgo: number, from: string, subject: string, lines: number, extra: string[] = []) =>
        client.append('Archive', message([`From: ${from}`, `Subject: ${subject}`, ...extra], filler(lines, subject)), ['\\Seen'], new Date(now.getTime() - daysAgo * DAY));
      await put(200, 'news@shop.example', 'old news', 20, ['List-Id: <news.shop.example>']); // 1
      await put(200, 'friend@example.org', 'old letter', 20); // 2
      await put(10, 'news@shop.example', 'recent news', 20, ['List-Id: <news.shop.example>']); // 3
      await put(400, 'boss@corp.example', 'old big report', 500); // 4: ~33K
      await put(90, 'boss@corp.example', 'exactly 90 days', 200); // 5: ~14K, not *older* than 90 days
    } finally {
      await client.logout();
    }
  });

  after(async () => {
    await yubin?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a bare cleanup and bad selectors with one line, changing nothing', () => {
    const before = usersJson();
    assertOneLineError(cli(dataDir, ['cleanup', frank]), 2, /^yubin: give at least one of --mailbox, --older-than, --bulk, --from, --larger-than/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--dry-run', '--json']), 2, /at least one of/);
    assertOneLineError(cli(dataDir, ['cleanup']), 2, /^yubin: usage: yubin cleanup ADDRESS/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--older-than', '90']), 2, /invalid age "90"/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--from', 'shop.example']), 2, /--from expects an address/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--larger-than', 'big']), 2, /invalid size "big"/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--bulk', '--now', 'soon']), 2, /--now expects/);
    assertOneLineError(cli(dataDir, ['cleanup', frank, '--mailbox', 'Nope']), 1, /^yubin: frank@example\.test has no mailbox "Nope"$/);
    assertOneLineError(cli(dataDir, ['cleanup', 'nobody@example.test', '--bulk']), 1, /^yubin: no user nobody@example\.test$/);
    assert.equal(usersJson(), before);
    assert.match(cliOk(dataDir, ['cleanup', '--help']), /^yubin cleanup ADDRESS \[--mailbox NAME\]/m);
    assert.match(cliOk(dataDir, ['--help']), /^yubin cleanup ADDRESS /m);
  });

  it('--bulk --from @DOMAIN: the dry run prints what the real run removes; an IDLE client sees the EXPUNGEs; usage drops by exactly the bytes reported', async () => {
    const args = ['cleanup', frank, '--bulk', '--from', '@shop.example', '--now', now.toISOString()];
    const usersBefore = usersJson();
    const before = userRow(dataDir, frank);
    const dry = json([...args.slice(1), '--dry-run']);
    const dryText = cliOk(dataDir, [...args, '--dry-run']);
    assert.equal(usersJson(), usersBefore, 'a dry run changes nothing');
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.selectors, { mailbox: null, olderThanSeconds: null, bulk: true, from: '@shop.example', largerThan: null });
    // Not promo@mail.shop.example (another domain), not the shop's personal note (not bulk).
    assert.deepEqual(
      dry.removed.map((r) => [r.mailbox, r.uid, r.sender, r.bulk]),
      [
        ['INBOX', 1, 'news@shop.example', true],
        ['INBOX', 2, 'news@shop.example', true],
        ['Archive', 1, 'news@shop.example', true],
        ['Archive', 3, 'news@shop.example', true],
      ],
    );
    assert.equal(dry.removed[0]!.subject, 'Angebote 1 für Sie');
    assert.deepEqual(dry.usageBefore, { bytes: before.used, messages: before.messages });
    assert.deepEqual(dry.usageAfter, { bytes: before.used - dry.freed.bytes, messages: before.messages - 4 });
    assert.equal(dry.freed.bytes, dry.removed.reduce((s, r) => s + r.size, 0));
    assert.match(dryText, /nothing changed$/m);

    // An IMAP client idling on INBOX while the CLI (another process) removes two of its messages.
    const client = await imap(frank);
    try {
      const box = await client.mailboxOpen('INBOX');
      const exists = box.exists;
      const expunged: number[] = [];
      client.on('expunge', (e: { seq: number }) => expunged.push(e.seq));
      const idling = client.idle();
      await new Promise((r) => setTimeout(r, 300));
      const real = await cliAsync(dataDir, args);
      assert.equal(real.status, 0, real.stderr);
      const deadline = Date.now() + 10_000;
      while (expunged.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      // Messages 1 and 2 went, announced during IDLE without any command: "2 then 1" or "1 then 1".
      assert.ok(JSON.stringify(expunged) === '[2,1]' || JSON.stringify(expunged) === '[1,1]', `EXPUNGE sequence numbers: ${JSON.stringify(expunged)}`);
      assert.equal(client.mailbox && client.mailbox.exists, exists - 2);
      void idling.catch(() => undefined);

      // Same lines, the real verb; the reported bytes are the bytes user list lost.
      assert.deepEqual(itemLines(real.stdout), itemLines(dryText));
      assert.equal(itemLines(real.stdout).length, 4);
      assert.match(real.stdout, /^removed INBOX uid 1 {2}\d{4}-\d\d-\d\d {2}[\d.]+ KiB {2}news@shop\.example {2}Angebote 1 für Sie$/m);
      const total = /^cleanup of frank@example\.test: removed 4 messages, freed .* \((\d+) bytes\); usage .* → .* of 2 MiB$/m.exec(real.stdout);
      assert.ok(total, real.stdout);
      const afterRow = userRow(dataDir, frank);
      assert.equal(before.used - afterRow.used, Number(total[1]));
      assert.equal(Number(total[1]), dry.freed.bytes);
      assert.equal(afterRow.messages, before.messages - 4);
    } finally {
      await client.logout();
    }
    assert.deepEqual(await uids(frank, 'INBOX'), [3, 4, 5, 6]);
    assert.deepEqual(await uids(frank, 'Archive'), [2, 4, 5]);
    assert.equal(userRow(dataDir, grace).messages, 1, "another user's mail is untouched");
    // A second run finds nothing.
    const again = json(args.slice(1));
    assert.deepEqual([again.removed, again.freed], [[], { messages: 0, bytes: 0 }]);
  });

  it('--mailbox --older-than --larger-than combine with AND; the JSON of the dry run equals the real run', () => {
    const args = [frank, '--mailbox', 'Archive', '--older-than', '90d', '--larger-than', '10K', '--now', now.toISOString()];
    const before = userRow(dataDir, frank);
    const dry = json([...args, '--dry-run']);
    // Archive 2 is old but small; 5 is large but exactly 90 days old; INBOX 5 is large but recent.
    assert.deepEqual(
      dry.removed.map((r) => [r.mailbox, r.uid, r.subject]),
      [['Archive', 4, 'old big report']],
    );
    assert.equal(dry.selectors.olderThanSeconds, 90 * 86400);
    assert.equal(dry.selectors.largerThan, 10 * 1024);
    const real = json(args);
    assert.equal(real.dryRun, false);
    assert.deepEqual(real.removed, dry.removed);
    assert.deepEqual(real.freed, dry.freed);
    assert.deepEqual(real.usageBefore, { bytes: before.used, messages: before.messages });
    const afterRow = userRow(dataDir, frank);
    assert.deepEqual(real.usageAfter, { bytes: afterRow.used, messages: afterRow.messages });
    assert.deepEqual(real.usageAfter, dry.usageAfter);
    assert.equal(before.used - afterRow.used, real.freed.bytes);
  });

  it('--from ADDRESS and --mailbox inbox (any case); --older-than in weeks', async () => {
    const dry = json([frank, '--from', 'Friend@Example.ORG', '--mailbox', 'inbox', '--dry-run']);
    assert.deepEqual(
      dry.removed.map((r) => [r.mailbox, r.uid]),
      [['INBOX', 4]],
    );
    assert.equal(dry.selectors.mailbox, 'INBOX');
    const weeks = json([frank, '--older-than', '26w', '--now', now.toISOString(), '--dry-run']);
    assert.deepEqual(
      weeks.removed.map((r) => [r.mailbox, r.uid]),
      [['Archive', 2]],
      'only the 200-day-old letter is older than 26 weeks (182 days)',
    );
    const text = cliOk(dataDir, ['cleanup', frank, '--larger-than', '1G', '--dry-run']);
    assert.match(text, /^cleanup dry run for frank@example\.test: would remove 0 messages, freeing 0 bytes; usage would go (\S+ \S+) → \1 of 2 MiB; nothing changed\n$/);
  });

  it('removals are logged with reason "cleanup" and show in the storage report', () => {
    const report = JSON.parse(cliOk(dataDir, ['usage', frank, '--json'])) as UsageReport;
    assert.equal(report.removals.byReason.cleanup?.messages, 5);
    assert.deepEqual(Object.keys(report.removals.byReason), ['cleanup']);
    assert.equal(report.usage.bytes, userRow(dataDir, frank).used);
  });
});
