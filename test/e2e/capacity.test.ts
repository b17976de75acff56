// A mailbox driven to full over SMTP tells the whole story: a warning at each level (once, and
// again only after usage dropped below it), a clear 452, a digest of the mail the user missed
// (one for many attempts), and with over_quota = "hold" the mail held within the grace.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cliOk, makeDataDir, python, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, type StoredMail } from '../helpers/mailbox.js';
import { waitFor } from '../helpers/wait.js';


/** Sends one message of about `bodyBytes` over SMTP; returns "250 ..." or the refusal "452 4.2.2 ...". */
function send(port: number, to: string, subject: string, bodyBytes: number, from = 'partner@partner.test'): string {
  const result = python(
    `
import smtplib, sys
port, to, subject, size, sender = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
body = ('x' * 70 + '\\r\\n') * (size // 72)
msg = 'From: %s\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\n%s' % (sender, to, subject, body)
s = smtplib.SMTP('127.0.0.1', port)
try:
    code, text = s.ehlo()
    s.mail(sender, ['SIZE=%d' % len(msg)])
    code, text = s.rcpt(to)
    if code != 250:
        print(code, text.decode()); s.rset()
    else:
        code, text = s.data(msg)
        print(code, text.decode())
finally:
    s.quit()
`,
    [String(port), to, subject, String(bodyBytes), from],
  );
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.trim();
}

function decodeNotice(mail: StoredMail): { subject: string; body: string } {
  const text = mail.bytes.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const rawSubject = /^Subject: (.*)$/m.exec(head)?.[1] ?? '';
  const subject = rawSubject.replace(/=\?UTF-8\?B\?([^?]*)\?=\s*/gi, (_, b64: string) => Buffer.from(b64, 'base64').toString('utf8'));
  return { subject, body: Buffer.from(text.slice(split + 4).replace(/\r\n/g, ''), 'base64').toString('utf8') };
}

const notices = (mails: StoredMail[]) => mails.filter((m) => /^Auto-Submitted: auto-generated/m.test(m.text));

describe('mailbox capacity that never surprises anyone', () => {
  let dir: string;
  let server: RunningYubin;
  let port: number;

  before(async () => {
    dir = makeDataDir('yubin-capacity-');
    writeConfig(dir, '[auth]\nfailure_delay = 0\n[maintenance]\ninterval = 0\n');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'kenji@example.test', '--password', 'password1', '--quota', '200000']);
    cliOk(dir, ['user', 'set', 'kenji@example.test', 'locale', 'ja']);
    cliOk(dir, ['user', 'add', 'amy@example.test', '--password', 'password1', '--quota', '200000']);
    cliOk(dir, ['user', 'add', 'hana@example.test', '--password', 'password1', '--quota', '100000']);
    cliOk(dir, ['user', 'set', 'hana@example.test', 'over_quota', 'hold']);
    server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0']);
    port = server.ports.smtp!;
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('warns at 80% and 90% once each, in Japanese, then 452 4.2.2 and one digest of the missed mail', async () => {
    const replies: string[] = [];
    // About 15.5 KB stored each: the 11th passes 80%, the 12th 90%, the 13th does not fit.
    for (let i = 1; i <= 12; i++) replies.push(send(port, 'kenji@example.test', `drawing ${i}`, 15000));
    assert.ok(replies.every((r) => r.startsWith('250')), replies.join('\n'));
    const warned = await waitFor('two warnings', async () => {
      const n = notices(await readMailbox(dir, 'kenji@example.test'));
      return n.length >= 2 ? n : null;
    });
    const [first, second] = warned.map(decodeNotice);
    assert.match(first!.subject, /メールボックスの使用量が 8\d% になりました/);
    assert.match(first!.body, /80% を超えました/);
    assert.match(first!.body, /INBOX: /);
    assert.match(first!.body, /大きいメール/);
    assert.match(first!.body, /partner@partner\.test/);
    assert.match(first!.body, /空きを作るには/);
    assert.match(second!.body, /90% を超えました/);

    // Full: the sender is told clearly, and the user gets one digest however many retries.
    for (let attempt = 0; attempt < 3; attempt++) assert.match(send(port, 'kenji@example.test', 'big plans', 15000), /^452 .*4\.2\.2.*full/);
    const digest = await waitFor('the digest', async () => {
      const n = notices(await readMailbox(dir, 'kenji@example.test'));
      return n.length >= 3 ? decodeNotice(n[2]!) : null;
    });
    assert.match(digest.subject, /メールボックスが一杯のため届かなかったメールがあります（1 件）/);
    assert.match(digest.body, /partner@partner\.test/);
    assert.match(digest.body, /回/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(notices(await readMailbox(dir, 'kenji@example.test')).length, 3, 'no second digest within the hour, no repeated warnings');

    // The retries were of mail the user was already told about: the next maintenance run, hours
    // later, has nothing more to report; new mail turned away would be.
    const run = JSON.parse(cliOk(dir, ['maintenance', 'run', '--json', '--now', new Date(Date.now() + 2 * 3600_000).toISOString()])) as { digests: number };
    assert.equal(run.digests, 0);
    // New mail turned away within the hour waits for the next digest, which the maintenance run sends.
    assert.match(send(port, 'kenji@example.test', 'invoice', 15000, 'billing@vendor.test'), /^452 /);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(notices(await readMailbox(dir, 'kenji@example.test')).length, 3);
    const later = JSON.parse(cliOk(dir, ['maintenance', 'run', '--json', '--now', new Date(Date.now() + 2 * 3600_000).toISOString()])) as { digests: number };
    assert.equal(later.digests, 1);
    const last = notices(await readMailbox(dir, 'kenji@example.test')).map(decodeNotice);
    assert.equal(last.length, 4);
    assert.match(last[3]!.body, /billing@vendor\.test/);
    assert.doesNotMatch(last[3]!.body, /partner@partner\.test/);

    // The admin frees room (a dry run first, which changes nothing), and the sender's retry gets in.
    const dry = cliOk(dir, ['cleanup', 'kenji@example.test', '--mailbox', 'INBOX', '--from', 'partner@partner.test', '--dry-run']);
    assert.match(dry, /drawing 1/);
    assert.equal(notices(await readMailbox(dir, 'kenji@example.test')).length, 4);
    assert.equal((await readMailbox(dir, 'kenji@example.test')).length, 16, 'the dry run removed nothing');
    cliOk(dir, ['cleanup', 'kenji@example.test', '--mailbox', 'INBOX', '--from', 'partner@partner.test']);
    assert.match(send(port, 'kenji@example.test', 'big plans', 15000), /^250 /);
    const now = await readMailbox(dir, 'kenji@example.test');
    assert.deepEqual(now.filter((m) => !/Auto-Submitted/.test(m.text)).map((m) => /^Subject: (.*)$/m.exec(m.text)?.[1]), ['big plans']);
  });

  it('warns again only after usage dropped below a level and crossed it again (hysteresis)', async () => {
    for (let i = 1; i <= 11; i++) assert.match(send(port, 'amy@example.test', `report ${i}`, 15000), /^250/);
    await waitFor('the 80% warning', async () => notices(await readMailbox(dir, 'amy@example.test')).length === 1);
    assert.match(decodeNotice(notices(await readMailbox(dir, 'amy@example.test'))[0]!).subject, /^Your mailbox is 8\d% full/);
    // Another message at the same level: no new warning.
    // Make room over IMAP (delete and expunge four messages), then fill again past 80%.
    const imap = python(
      `
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1])); m.login('amy@example.test', 'password1'); m.select('INBOX')
typ, data = m.search(None, 'SUBJECT', 'report')
ids = data[0].split()[:4]
m.store(b','.join(ids).decode(), '+FLAGS', '\\\\Deleted'); m.expunge(); m.logout()
print(len(ids))
`,
      [String(server.ports.imap!)],
    );
    assert.equal(imap.stdout.trim(), '4', imap.stderr);
    assert.match(send(port, 'amy@example.test', 'after cleanup', 200), /^250/); // usage now well below 80%: re-armed
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let i = 12; i <= 15; i++) assert.match(send(port, 'amy@example.test', `report ${i}`, 15000), /^250/);
    const again = await waitFor('a second 80% warning', async () => {
      const n = notices(await readMailbox(dir, 'amy@example.test'));
      return n.length >= 2 ? n : null;
    });
    assert.equal(again.length, 2);
    assert.match(decodeNotice(again[1]!).body, /has passed 80% of its capacity/);
  });

  it('over_quota = "hold" accepts mail within the grace, says so in the 250, and tells the user at once', async () => {
    // Quota 100 KB, grace 10%: six messages of about 15.5 KB and a warning, then one more within the grace.
    for (let i = 1; i <= 6; i++) assert.match(send(port, 'hana@example.test', `plan ${i}`, 15000), /^250/);
    const held = send(port, 'hana@example.test', 'urgent order', 12000);
    assert.match(held, /^250 .*full; the message is held/);
    const digest = await waitFor('the held-mail notice', async () => {
      const n = notices(await readMailbox(dir, 'hana@example.test')).map(decodeNotice).find((x) => /affected by your full mailbox/.test(x.subject));
      return n ?? null;
    });
    assert.match(digest.body, /urgent order/);
    assert.match(digest.body, /delivered to your INBOX over the quota/);
    // The 100% warning and the held-mail notice are written independently after delivery: wait for both.
    const full = await waitFor('the 100% warning', async () => {
      const warnings = notices(await readMailbox(dir, 'hana@example.test')).map(decodeNotice).filter((x) => /^Your mailbox is/.test(x.subject));
      return warnings.find((x) => /has passed 100% of its capacity/.test(x.body)) ?? null;
    });
    assert.match(full.body, /has passed 100% of its capacity: it is now 10\d% full/);
    assert.match(full.body, /It is full/);
    // Beyond the grace: deferred like any full mailbox.
    assert.match(send(port, 'hana@example.test', 'too much', 5000), /^452 /);
  });
});
