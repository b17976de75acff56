// Sending mail end to end: Yubin hosts on 127.0.0.2, 127.0.0.3, ... (port 25), found through MX
// records in a test DNS server, with submission by nodemailer and Python's smtplib. Covers DKIM
// signing and checking, SPF and DMARC, routing (MX order, A fallback, null MX), retries of a full
// mailbox, bounces in the sender's language, success reports, forwarding, and a SIGKILL.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { parseReport } from '../helpers/dsn-report.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startMailHost, PASSWORD, type MailHost } from '../helpers/mail-hosts.js';
import { readMailbox } from '../helpers/mailbox.js';
import { cli, cliOk, pythonAsync } from '../helpers/yubin.js';
import { waitFor } from '../helpers/wait.js';


/** Waits until the mailbox holds at least `count` messages; returns them all. */
async function inbox(host: MailHost, address: string, count: number, timeoutMs = 20_000) {
  return waitFor(`${count} message(s) for ${address}`, async () => {
    const messages = await readMailbox(host.dataDir, address);
    return messages.length >= count ? messages : null;
  }, timeoutMs);
}

function submitter(host: MailHost, user: string) {
  return nodemailer.createTransport({
    host: host.ip,
    port: host.server.ports.submission,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user, pass: PASSWORD },
  });
}

function raw(from: string, to: string, subject: string, body = 'Hello.\r\n', extra = ''): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\n${extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;
}

interface QueueJson {
  id: number;
  sender: string;
  recipients: Array<{ address: string; state: string; attempts: number; lastReply: { code: number; enhanced: string | null; text: string } | null }>;
}

function queueOf(host: MailHost): QueueJson[] {
  return JSON.parse(cliOk(host.dataDir, ['queue', 'list', '--json'])) as QueueJson[];
}


describe('sending between Yubin hosts found through DNS', () => {
  let dns: TestDnsServer;
  let a: MailHost;
  let b: MailHost;

  before(async () => {
    dns = await startDnsServer({
      mx: {
        'nullmx.test': [{ exchange: '.', priority: 0 }],
        // The first MX host is down (nothing listens on 127.0.0.9); the second is b's.
        'backup.test': [
          { exchange: 'dead.backup.test', priority: 10 },
          { exchange: 'mx.b.test', priority: 20 },
        ],
      },
      // No MX: mail goes to the domain's own address (RFC 5321 §5.1 implicit MX).
      a: { 'fallback.test': ['127.0.0.3'], 'dead.backup.test': ['127.0.0.9'] },
    });
    a = await startMailHost({ domain: 'a.test', ip: '127.0.0.2', dns, users: ['alice', 'carol'] });
    b = await startMailHost({ domain: 'b.test', ip: '127.0.0.3', dns, users: ['bob', 'dave'], otherDomains: ['fallback.test', 'backup.test'] });
    cliOk(a.dataDir, ['user', 'set', 'carol@a.test', 'locale', 'ja']);
    cliOk(b.dataDir, ['user', 'add', 'erin@fallback.test', '--password', PASSWORD]);
    cliOk(b.dataDir, ['user', 'add', 'frank@backup.test', '--password', PASSWORD]);
  });

  after(async () => {
    await Promise.allSettled([a?.server.stop(), b?.server.stop()]);
    await dns?.close();
  });

  it('delivers submitted mail to the other host, DKIM-signed, with Message-ID and Date added, and SPF, DKIM and DMARC passing there', async () => {
    const transport = submitter(a, 'alice@a.test');
    const info = await transport.sendMail({
      envelope: { from: 'alice@a.test', to: ['bob@b.test'] },
      raw: raw('Alice <alice@a.test>', 'bob@b.test', 'first letter'),
    });
    transport.close();
    assert.match(String(info.response), /^250 /);
    const [message] = await inbox(b, 'bob@b.test', 1);
    const text = message!.text;
    assert.match(text, /^DKIM-Signature: .*d=a\.test/m);
    assert.match(text, /^Message-ID: <[^>]+@mx\.a\.test>/m);
    assert.match(text, /^Date: /m);
    assert.match(text, /with ESMTPSA/);
    const results = /^Authentication-Results: mx\.b\.test;[\s\S]*?(?=\r\n\S)/m.exec(text)?.[0] ?? '';
    assert.match(results, /dkim=pass[^;]*header\.(d|i)=@?a\.test/);
    assert.match(results, /spf=pass/);
    assert.match(results, /dmarc=pass/);
    await waitFor('an empty queue on a', async () => queueOf(a).length === 0);
  });

  it('refuses to relay without AUTH, AUTH before STARTTLS, wrong passwords, and other people\'s addresses', async () => {
    const probe = await pythonAsync(
      `
import smtplib, ssl, sys
host, port, mx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl._create_unverified_context()
def code(fn):
    try:
        fn(); return 'ok'
    except smtplib.SMTPResponseException as e:
        return '%d %s' % (e.smtp_code, e.smtp_error.decode()[:5])
    except smtplib.SMTPRecipientsRefused as e:
        c, m = list(e.recipients.values())[0]; return '%d %s' % (c, m.decode()[:5])
    except smtplib.SMTPSenderRefused as e:
        return '%d %s' % (e.smtp_code, e.smtp_error.decode()[:5])
s = smtplib.SMTP(host, port); s.ehlo()
print('auth-before-tls', code(lambda: s.login('alice@a.test', '${PASSWORD}')))
s.starttls(context=ctx); s.ehlo()
print('no-auth', code(lambda: s.sendmail('alice@a.test', ['bob@b.test'], 'Subject: x\\r\\n\\r\\nx\\r\\n')))
print('bad-password', code(lambda: s.login('alice@a.test', 'wrong')))
s.login('alice@a.test', '${PASSWORD}')
print('other-sender', code(lambda: s.sendmail('carol@a.test', ['bob@b.test'], 'From: carol@a.test\\r\\nSubject: x\\r\\n\\r\\nx\\r\\n')))
print('other-from', code(lambda: s.sendmail('alice@a.test', ['bob@b.test'], 'From: carol@a.test\\r\\nSubject: x\\r\\n\\r\\nx\\r\\n')))
print('no-from', code(lambda: s.sendmail('alice@a.test', ['bob@b.test'], 'Subject: x\\r\\n\\r\\nx\\r\\n')))
print('percent-hack', code(lambda: s.sendmail('alice@a.test', ['bob%elsewhere.test@b.test'], 'From: alice@a.test\\r\\n\\r\\nx\\r\\n')))
print('no-domain-dot', code(lambda: s.sendmail('alice@a.test', ['bob@localhost'], 'From: alice@a.test\\r\\n\\r\\nx\\r\\n')))
s.quit()
m = smtplib.SMTP(host, mx); m.ehlo()
print('mx-relay', code(lambda: m.sendmail('alice@a.test', ['bob@b.test'], 'From: alice@a.test\\r\\nSubject: x\\r\\n\\r\\nx\\r\\n')))
m.quit()
`,
      [a.ip, String(a.server.ports.submission), '25'],
    );
    assert.equal(probe.status, 0, probe.stderr);
    const lines = Object.fromEntries(probe.stdout.trim().split('\n').map((line) => [line.split(' ')[0], line.split(' ').slice(1).join(' ')]));
    assert.equal(lines['auth-before-tls'], '538 5.7.0');
    assert.equal(lines['no-auth'], '530 5.7.0');
    assert.equal(lines['bad-password'], '535 5.7.8');
    assert.equal(lines['other-sender'], '553 5.7.1');
    assert.equal(lines['other-from'], '553 5.7.1');
    assert.equal(lines['no-from'], '550 5.6.0');
    assert.equal(lines['percent-hack'], '554 5.7.1');
    assert.equal(lines['no-domain-dot'], '553 5.1.3');
    assert.equal(lines['mx-relay'], '554 5.7.1');
    assert.equal(queueOf(a).length, 0, 'nothing was queued');
  });

  it('bounces an unknown recipient at once, in Japanese for a Japanese-speaking sender, with the remote reply verbatim', async () => {
    const transport = submitter(a, 'carol@a.test');
    await transport.sendMail({ envelope: { from: 'carol@a.test', to: ['nobody@b.test'] }, raw: raw('carol@a.test', 'nobody@b.test', 'who is there') });
    transport.close();
    const [bounce] = await inbox(a, 'carol@a.test', 1);
    assert.match(bounce!.text, /^Return-Path: <>/m);
    const report = await parseReport(bounce!.bytes);
    assert.match(report.mail.headers.get('content-type') ? String((report.mail.headers.get('content-type') as { value: string }).value) : '', /multipart\/report/);
    assert.match(report.status, /^Reporting-MTA: dns; ?mx\.a\.test/m);
    assert.match(report.status, /^Final-Recipient: rfc822; ?nobody@b\.test/m);
    assert.match(report.status, /^Action: failed/m);
    assert.match(report.status, /^Status: 5\.1\.1/m);
    assert.match(report.status, /^Remote-MTA: dns; ?mx\.b\.test/m);
    assert.match(report.status, /^Diagnostic-Code: smtp; ?550 5\.1\.1 The mailbox <nobody@b\.test> does not exist/m);
    // The explanation is in Japanese and names the address to check.
    assert.match(report.human, /[\u3040-\u30ff]/, 'Japanese text');
    assert.match(report.human, /nobody@b\.test/);
    assert.match(report.returned, /Subject: who is there/);
    await waitFor('an empty queue on a', async () => queueOf(a).length === 0);
  });

  it('retries a full mailbox (452 4.2.2) and delivers once the recipient has room; the queue shows the last reply', async () => {
    cliOk(b.dataDir, ['user', 'quota', 'dave@b.test', '6K']);
    const filler = await pythonAsync(
      `
import smtplib, sys
s = smtplib.SMTP(sys.argv[1], 25); s.sendmail('someone@elsewhere.test', ['dave@b.test'], 'Subject: filler\\r\\n\\r\\n' + 'x' * 4000 + '\\r\\n'); s.quit()
`,
      [b.ip],
    );
    assert.equal(filler.status, 0, filler.stderr);
    const transport = submitter(a, 'alice@a.test');
    await transport.sendMail({ envelope: { from: 'alice@a.test', to: ['dave@b.test'] }, raw: raw('alice@a.test', 'dave@b.test', 'big drawing', 'y'.repeat(2000) + '\r\n') });
    transport.close();
    const deferred = await waitFor('a deferral recorded on a', async () => {
      const entry = queueOf(a).find((m) => m.recipients.some((r) => r.address === 'dave@b.test' && r.attempts >= 2));
      return entry ?? null;
    });
    const recipient = deferred.recipients.find((r) => r.address === 'dave@b.test')!;
    assert.equal(recipient.state, 'queued');
    assert.equal(recipient.lastReply?.code, 452);
    assert.equal(recipient.lastReply?.enhanced, '4.2.2');
    const notice = (m: { text: string }) => /^Auto-Submitted: auto-generated/m.test(m.text);
    const daveMail = async () => (await readMailbox(b.dataDir, 'dave@b.test')).filter((m) => !notice(m));
    assert.equal((await daveMail()).length, 1, 'not delivered while full');
    // Dave is told what he missed (the mail from alice, deferred).
    const digest = await waitFor('dave\'s missed-mail digest', async () => (await readMailbox(b.dataDir, 'dave@b.test')).find(notice) ?? null);
    assert.match(digest.text, /Subject: Mail affected by your full mailbox/);
    cliOk(b.dataDir, ['user', 'quota', 'dave@b.test', 'none']);
    const messages = await waitFor('the retried message', async () => ((await daveMail()).length >= 2 ? daveMail() : null));
    assert.match(messages[1]!.text, /Subject: big drawing/);
    await waitFor('an empty queue on a', async () => queueOf(a).length === 0);
    assert.equal((await readMailbox(a.dataDir, 'alice@a.test')).length, 0, 'no bounce, no delay notice yet');
  });

  it('bounces a null-MX domain with 5.1.10 without trying, and reaches an A-only domain and a backup MX behind a dead one', async () => {
    const transport = submitter(a, 'alice@a.test');
    await transport.sendMail({
      envelope: { from: 'alice@a.test', to: ['x@nullmx.test', 'erin@fallback.test', 'frank@backup.test'] },
      raw: raw('alice@a.test', 'x@nullmx.test, erin@fallback.test, frank@backup.test', 'three ways'),
    });
    transport.close();
    await inbox(b, 'erin@fallback.test', 1);
    await inbox(b, 'frank@backup.test', 1);
    const [bounce] = await inbox(a, 'alice@a.test', 1);
    const report = await parseReport(bounce!.bytes);
    assert.match(report.status, /^Final-Recipient: rfc822; ?x@nullmx\.test/m);
    assert.match(report.status, /^Status: 5\.1\.10/m);
    assert.doesNotMatch(report.status, /erin@|frank@/, 'only the failed recipient is reported');
    assert.match(report.human, /nullmx\.test/);
    await waitFor('an empty queue on a', async () => queueOf(a).length === 0);
  });

  it('honours NOTIFY=SUCCESS, ENVID, ORCPT and RET=HDRS: the receiving host reports the delivery to the sender', async () => {
    const before = (await readMailbox(a.dataDir, 'alice@a.test')).length;
    const sent = await pythonAsync(
      `
import smtplib, ssl, sys
s = smtplib.SMTP(sys.argv[1], int(sys.argv[2])); s.starttls(context=ssl._create_unverified_context()); s.login('alice@a.test', '${PASSWORD}')
s.sendmail('alice@a.test', ['bob@b.test'], 'From: alice@a.test\\r\\nTo: bob@b.test\\r\\nSubject: tell me\\r\\n\\r\\nbody-not-returned\\r\\n',
           mail_options=['RET=HDRS', 'ENVID=order-4711'], rcpt_options=['NOTIFY=SUCCESS,FAILURE', 'ORCPT=rfc822;bob@b.test'])
s.quit()
`,
      [a.ip, String(a.server.ports.submission)],
    );
    assert.equal(sent.status, 0, sent.stderr);
    const messages = await inbox(a, 'alice@a.test', before + 1);
    const report = await parseReport(messages[before]!.bytes);
    assert.match(report.status, /^Reporting-MTA: dns; ?mx\.b\.test/m);
    assert.match(report.status, /^Original-Envelope-Id: order-4711/m);
    assert.match(report.status, /^Original-Recipient: rfc822; ?bob@b\.test/m);
    assert.match(report.status, /^Action: delivered/m);
    assert.match(report.status, /^Status: 2\.0\.0/m);
    assert.match(report.returned, /Subject: tell me/);
    assert.doesNotMatch(report.returned, /body-not-returned/, 'RET=HDRS returns the headers only');
  });

  it('forwards through an alias to another host, and bounces a forwarding failure to the original sender', async () => {
    cliOk(b.dataDir, ['alias', 'add', 'team@b.test', 'bob@b.test,carol@a.test,ghost@a.test']);
    const bobBefore = (await readMailbox(b.dataDir, 'bob@b.test')).length;
    const carolBefore = (await readMailbox(a.dataDir, 'carol@a.test')).length;
    const aliceBefore = (await readMailbox(a.dataDir, 'alice@a.test')).length;
    const transport = submitter(a, 'alice@a.test');
    await transport.sendMail({ envelope: { from: 'alice@a.test', to: ['team@b.test'] }, raw: raw('alice@a.test', 'team@b.test', 'to the team') });
    transport.close();
    await inbox(b, 'bob@b.test', bobBefore + 1);
    const carol = await inbox(a, 'carol@a.test', carolBefore + 1);
    assert.match(carol[carolBefore]!.text, /Subject: to the team/);
    // ghost@a.test does not exist: b's queue gets 550 5.1.1 from a and reports it to alice.
    const alice = await inbox(a, 'alice@a.test', aliceBefore + 1);
    const report = await parseReport(alice[aliceBefore]!.bytes);
    assert.match(report.status, /^Reporting-MTA: dns; ?mx\.b\.test/m);
    assert.match(report.status, /^Original-Recipient: rfc822; ?team@b\.test/m);
    assert.match(report.status, /^Final-Recipient: rfc822; ?ghost@a\.test/m);
    assert.match(report.status, /^Status: 5\.1\.1/m);
    await waitFor('an empty queue on b', async () => queueOf(b).length === 0);
  });

  it('refuses mail that fails DMARC when the From domain publishes p=reject', async () => {
    const saved = dns.zone.txt!['_dmarc.a.test'];
    dns.zone.txt!['_dmarc.a.test'] = ['v=DMARC1; p=reject'];
    try {
      // Sent from 127.0.0.1, which a.test's SPF (v=spf1 mx -all) does not allow, and unsigned.
      const spoof = await pythonAsync(
        `
import smtplib, sys
try:
    s = smtplib.SMTP(sys.argv[1], 25); s.sendmail('alice@a.test', ['bob@b.test'], 'From: alice@a.test\\r\\nSubject: pay this invoice\\r\\n\\r\\nx\\r\\n'); print('accepted')
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode()[:5])
`,
        [b.ip],
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      const why = b.server.stderr().split('\n').filter((line) => line.includes('pay this') || line.includes('sender authentication')).slice(-3).join('\n');
      assert.equal(spoof.stdout.trim(), '550 5.7.1', `${spoof.stderr} ${why}`);
    } finally {
      dns.zone.txt!['_dmarc.a.test'] = saved!;
    }
  });

  it('keeps a queued message across SIGKILL and delivers it exactly once when the peer comes back', async () => {
    const bobBefore = (await readMailbox(b.dataDir, 'bob@b.test')).length;
    await b.server.stop();
    const transport = submitter(a, 'alice@a.test');
    await transport.sendMail({ envelope: { from: 'alice@a.test', to: ['bob@b.test'] }, raw: raw('alice@a.test', 'bob@b.test', 'survives a crash') });
    transport.close();
    const queued = await waitFor('a failed attempt recorded', async () => queueOf(a).find((m) => m.recipients[0]!.attempts >= 1) ?? null);
    assert.equal(queued.recipients[0]!.state, 'queued');
    assert.match(queued.recipients[0]!.lastReply?.enhanced ?? '', /^4\.4\./);
    await a.server.kill();
    assert.equal(queueOf(a).length, 1, 'still queued after SIGKILL');
    await b.restart();
    await a.restart();
    // An attempt in flight at the SIGKILL left its lease (at least 120 s); the restarted server
    // releases it and tries that recipient again at once (outbound-queue.ts start()).
    const messages = await inbox(b, 'bob@b.test', bobBefore + 1, 60_000);
    await waitFor('an empty queue on a', async () => queueOf(a).length === 0);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const after = await readMailbox(b.dataDir, 'bob@b.test');
    assert.equal(after.length, bobBefore + 1, 'exactly one copy');
    assert.match(messages[bobBefore]!.text, /Subject: survives a crash/);
  });
});

describe('retrying until the lifetime ends', () => {
  let dns: TestDnsServer;
  let c: MailHost;

  before(async () => {
    dns = await startDnsServer({ mx: { 'down.test': [{ exchange: 'mx.down.test', priority: 10 }] }, a: { 'mx.down.test': ['127.0.0.9'] } });
    c = await startMailHost({ domain: 'c.test', ip: '127.0.0.4', dns, users: ['chiyo'], queue: 'retry_schedule = "1s"\nlifetime = "5s"\ndelay_notice = "2s"' });
  });

  after(async () => {
    await c?.server.stop();
    await dns?.close();
  });

  it('sends one delay notice, then the final bounce explaining the network failure, and `queue` commands see it meanwhile', async () => {
    const transport = submitter(c, 'chiyo@c.test');
    await transport.sendMail({ envelope: { from: 'chiyo@c.test', to: ['someone@down.test'] }, raw: raw('chiyo@c.test', 'someone@down.test', 'are you there') });
    transport.close();
    const [entry] = await waitFor('the message in the queue', async () => (queueOf(c).length > 0 ? queueOf(c) : null));
    const shown = cliOk(c.dataDir, ['queue', 'show', String(entry!.id)]);
    assert.match(shown, /someone@down\.test/);
    assert.match(shown, /Subject: are you there/);
    assert.match(cliOk(c.dataDir, ['queue', 'retry', String(entry!.id)]), /recipient\(s\) due now/);
    assert.notEqual(cli(c.dataDir, ['queue', 'delete', '999999']).status, 0);

    const [delay, failure] = await inbox(c, 'chiyo@c.test', 2, 30_000);
    const delayed = await parseReport(delay!.bytes);
    assert.match(delayed.status, /^Action: delayed/m);
    assert.match(delayed.status, /^Status: 4\.4\./m);
    assert.match(delayed.status, /^Will-Retry-Until: /m);
    const failed = await parseReport(failure!.bytes);
    assert.match(failed.status, /^Action: failed/m);
    assert.match(failed.status, /^Final-Recipient: rfc822; ?someone@down\.test/m);
    assert.match(failed.status, /^Last-Attempt-Date: /m);
    assert.match(failed.human, /someone@down\.test/);
    await waitFor('an empty queue on c', async () => queueOf(c).length === 0);
  });

  it('yubin queue delete removes a message without a bounce', async () => {
    const before = (await readMailbox(c.dataDir, 'chiyo@c.test')).length;
    const transport = submitter(c, 'chiyo@c.test');
    await transport.sendMail({ envelope: { from: 'chiyo@c.test', to: ['other@down.test'] }, raw: raw('chiyo@c.test', 'other@down.test', 'never mind') });
    transport.close();
    const [entry] = await waitFor('the message in the queue', async () => (queueOf(c).length > 0 ? queueOf(c) : null));
    assert.match(cliOk(c.dataDir, ['queue', 'delete', String(entry!.id)]), /deleted/);
    assert.equal(queueOf(c).length, 0);
    // Past the message's lifetime (5 s): a message still queued would have bounced by now.
    await new Promise((resolve) => setTimeout(resolve, 7000));
    // A delay notice may have gone out before the delete when this machine is slow (notices
    // after 2 s); a failure report may never come.
    const reports = (await readMailbox(c.dataDir, 'chiyo@c.test')).slice(before);
    for (const report of reports) {
      const parsed = await parseReport(report.bytes);
      assert.doesNotMatch(parsed.status, /^Action: failed/m, 'no bounce for a deleted message');
      assert.match(parsed.status, /^Action: delayed/m);
    }
    assert.ok(reports.length <= 1, `at most one delay notice, got ${reports.length} reports`);
  });
});
