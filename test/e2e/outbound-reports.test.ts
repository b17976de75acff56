// Delivery reports of the outbound queue, end to end between two Yubin hosts (127.0.0.30 and
// 127.0.0.31, port 25) found through MX records in a test DNS server: no report to the null
// sender, no report about a report, NOTIFY and RET on submission, a too-large refusal explained
// with the peer's limit, and `yubin queue retry --all` / `yubin queue list` on deferred mail.
//
// Host a (ra.test) retries hourly, so a deferred recipient waits unless an admin retries it.
// Host b (rb.test) retries hourly too, but its messages live 10 s: the attempt after the first
// falls on the expiry. b accepts messages up to 1 MiB.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { parseReport } from '../helpers/dsn-report.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startMailHost, PASSWORD, type MailHost } from '../helpers/mail-hosts.js';
import { readMailbox } from '../helpers/mailbox.js';
import { cliOk, pythonAsync } from '../helpers/yubin.js';
import { waitFor } from '../helpers/wait.js';

const LIFETIME_B = 10;

interface QueueJson {
  id: number;
  sender: string;
  kind: string;
  recipients: Array<{
    address: string;
    state: string;
    attempts: number;
    nextAttemptAt: string | null;
    lastAttemptAt: string | null;
    lastReply: { code: number; enhanced: string | null; text: string } | null;
  }>;
}

interface LogEvent {
  /** ISO 8601 (pino.stdTimeFunctions.isoTime). */
  time: string;
  event?: string;
  to?: string;
  from?: string;
  result?: string;
  code?: number;
  kind?: string;
  delivery?: string;
  [key: string]: unknown;
}

function queueOf(host: MailHost): QueueJson[] {
  return JSON.parse(cliOk(host.dataDir, ['queue', 'list', '--json'])) as QueueJson[];
}

/** The server's structured log lines (JSON on stderr) written after `mark` (a length of stderr). */
function logSince(host: MailHost, mark: number): LogEvent[] {
  const out: LogEvent[] = [];
  for (const line of host.server.stderr().slice(mark).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogEvent);
    } catch {
      // a line still being written
    }
  }
  return out;
}

const mark = (host: MailHost) => host.server.stderr().length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function mailbox(host: MailHost, address: string) {
  return readMailbox(host.dataDir, address);
}

/** Waits until the mailbox holds at least `count` messages; returns them all. */
async function inbox(host: MailHost, address: string, count: number, timeoutMs = 30_000) {
  return waitFor(`${count} message(s) for ${address}`, async () => {
    const messages = await mailbox(host, address);
    return messages.length >= count ? messages : null;
  }, timeoutMs);
}

function raw(from: string, to: string, subject: string, body = 'Hello.\r\n'): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;
}

interface Outgoing {
  from: string;
  to: string[];
  data: string;
  mail?: string[];
  rcpt?: string[];
}

const SEND = `
import json, smtplib, ssl, sys
job = json.loads(sys.stdin.read())
s = smtplib.SMTP(job['host'], job['port'], timeout=60)
if job.get('user'):
    s.starttls(context=ssl._create_unverified_context())
    s.login(job['user'], job['password'])
for m in job['messages']:
    s.sendmail(m['from'], m['to'], m['data'].encode('utf-8'), mail_options=m.get('mail', []), rcpt_options=m.get('rcpt', []))
s.quit()
`;

/** Hands messages in with Python's smtplib: on submission (STARTTLS, AUTH) as `user`, or on the MX. */
async function send(host: MailHost, messages: Outgoing[], user?: string): Promise<void> {
  const job = { host: host.ip, port: user ? host.server.ports.submission : 25, user: user ?? null, password: PASSWORD, messages };
  const result = await pythonAsync(SEND, [], JSON.stringify(job));
  assert.equal(result.status, 0, `smtplib: ${result.stderr}`);
}


const isReport = (m: { text: string }) => /^Content-Type: multipart\/report/im.test(m.text);

describe('delivery reports of the outbound queue', () => {
  let dns: TestDnsServer;
  let a: MailHost;
  let b: MailHost;

  before(async () => {
    dns = await startDnsServer({
      // Nothing listens on 127.0.0.39: connections are refused.
      mx: { 'dead.test': [{ exchange: 'mx.dead.test', priority: 10 }], 'stall.test': [{ exchange: 'mx.stall.test', priority: 10 }] },
      // 127.0.0.38: a server that first accepts connections and never answers, then a real one.
      a: { 'mx.dead.test': ['127.0.0.39'], 'mx.stall.test': ['127.0.0.38'] },
    });
    [a, b] = await Promise.all([
      startMailHost({ domain: 'ra.test', ip: '127.0.0.30', dns, users: ['alice'], dkim: false, queue: 'retry_schedule = "1h"', extraConfig: '[smtp]\nmax_hops = 8' }),
      startMailHost({
        domain: 'rb.test',
        ip: '127.0.0.31',
        dns,
        users: ['bob', 'dave'],
        dkim: false,
        queue: `retry_schedule = "1h"\nlifetime = "${LIFETIME_B}s"`,
        extraConfig: '[smtp]\nmax_message_size = "1M"\nmax_hops = 8\ndmarc_reject = false',
      }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([a?.server.stop(), b?.server.stop()]);
    await dns?.close();
  });

  it('sends no report for mail from the null sender: a forward from <> that fails permanently is finished silently', async () => {
    cliOk(b.dataDir, ['alias', 'add', 'fwd-null@rb.test', 'ghost1@ra.test']);
    const aliceBefore = (await mailbox(a, 'alice@ra.test')).length;
    const from = mark(b);
    await send(b, [{ from: '', to: ['fwd-null@rb.test'], data: raw('MAILER-DAEMON@elsewhere.test', 'fwd-null@rb.test', 'a report forwarded') }]);
    const refused = await waitFor('the forward refused by ra.test', () =>
      logSince(b, from).find((e) => e.event === 'outbound' && e.to === 'ghost1@ra.test'),
    );
    assert.deepEqual([refused.from, refused.result, refused.code], ['', 'permanent', 550]);
    await waitFor('an empty queue on b', () => queueOf(b).length === 0);
    await sleep(1000);
    const events = logSince(b, from);
    assert.deepEqual(events.filter((e) => e.event === 'dsn'), [], 'no report written');
    assert.deepEqual(events.filter((e) => e.event === 'queued').map((e) => [e.from, e.kind]), [['', 'mail']], 'only the forward was queued');
    assert.equal((await mailbox(a, 'alice@ra.test')).length, aliceBefore);
  });

  it('sends no report about a report that is refused', async () => {
    // nobody@ra.test does not exist: the bounce b writes to it is refused by ra.test in turn.
    cliOk(b.dataDir, ['alias', 'add', 'fwd-loop@rb.test', 'ghost2@ra.test']);
    const from = mark(b);
    await send(b, [{ from: 'nobody@ra.test', to: ['fwd-loop@rb.test'], data: raw('list@elsewhere.test', 'fwd-loop@rb.test', 'loop bait') }]);
    const reportRefused = await waitFor('the report refused by ra.test', () =>
      logSince(b, from).find((e) => e.event === 'outbound' && e.to === 'nobody@ra.test'),
    );
    assert.deepEqual([reportRefused.from, reportRefused.result, reportRefused.code], ['', 'permanent', 550]);
    await waitFor('an empty queue on b', () => queueOf(b).length === 0);
    await sleep(1000);
    const events = logSince(b, from);
    const forward = events.filter((e) => e.event === 'outbound' && e.to === 'ghost2@ra.test');
    assert.deepEqual(forward.map((e) => [e.from, e.result]), [['nobody@ra.test', 'permanent']]);
    // One report (about ghost2), queued to the remote sender; none about that report.
    assert.deepEqual(events.filter((e) => e.event === 'dsn').map((e) => [e.to, e.delivery]), [['nobody@ra.test', 'queued']]);
    assert.deepEqual(events.filter((e) => e.event === 'queued').map((e) => [e.from, e.kind]), [['nobody@ra.test', 'mail'], ['', 'dsn']]);
    assert.equal(events.filter((e) => e.event === 'outbound' && e.to === 'nobody@ra.test').length, 1, 'the report was tried once');
  });

  it('sends no report about a report that cannot be delivered before it expires; its last attempt falls on the expiry', async () => {
    cliOk(b.dataDir, ['alias', 'add', 'fwd-dead@rb.test', 'ghost3@ra.test']);
    const from = mark(b);
    await send(b, [{ from: 'someone@dead.test', to: ['fwd-dead@rb.test'], data: raw('someone@dead.test', 'fwd-dead@rb.test', 'from an unreachable domain') }]);
    const report = await waitFor('the report queued to someone@dead.test', () => queueOf(b).find((m) => m.kind === 'dsn'));
    assert.equal(report.sender, '');
    assert.equal(report.recipients[0]!.address, 'someone@dead.test');
    await waitFor('an empty queue on b', () => queueOf(b).length === 0, (LIFETIME_B + 30) * 1000);
    await sleep(1000);
    const events = logSince(b, from);
    const attempts = events.filter((e) => e.event === 'outbound' && e.to === 'someone@dead.test');
    // Hourly retries, a 10 s lifetime: the first attempt at once, the second (the last) at the expiry.
    assert.deepEqual(attempts.map((e) => [e.from, e.result]), [['', 'temporary'], ['', 'temporary']]);
    const queuedAt = Date.parse(events.find((e) => e.event === 'queued' && e.kind === 'dsn')!.time);
    const last = Date.parse(attempts[1]!.time) - queuedAt;
    assert.ok(last >= (LIFETIME_B - 2) * 1000 && last <= (LIFETIME_B + 15) * 1000, `last attempt ${last} ms after the report was queued`);
    assert.deepEqual(events.filter((e) => e.event === 'dsn').map((e) => e.to), ['someone@dead.test'], 'one report, none about it');
    assert.equal(events.filter((e) => e.event === 'queued').length, 2, 'the forward and its report only');
  });

  it('ends a forwarding loop between two servers at smtp.max_hops with 554 5.4.6, explained to the sender', async () => {
    // Two aliases forwarding to each other across the servers (RFC 5321 §6.3).
    cliOk(a.dataDir, ['alias', 'add', 'loop@ra.test', 'loop@rb.test']);
    cliOk(b.dataDir, ['alias', 'add', 'loop@rb.test', 'loop@ra.test']);
    const before = (await mailbox(a, 'alice@ra.test')).length;
    const [fromA, fromB] = [mark(a), mark(b)];
    await send(a, [{ from: 'alice@ra.test', to: ['loop@ra.test'], data: raw('alice@ra.test', 'loop@ra.test', 'round and round') }], 'alice@ra.test');
    const [bounce] = (await inbox(a, 'alice@ra.test', before + 1, 60_000)).slice(before);
    const report = await parseReport(bounce!.bytes);
    assert.match(report.status, /^Final-Recipient: rfc822; ?loop@r[ab]\.test/m);
    assert.match(report.status, /^Action: failed/m);
    assert.match(report.status, /^Status: 5\.4\.6/m);
    assert.match(report.status, /^Diagnostic-Code: smtp; ?554 5\.4\.6 Mail loop/m);
    await waitFor('empty queues', () => queueOf(a).length === 0 && queueOf(b).length === 0);
    // Each arrival adds a Received field (submission the first); the arrival that finds 9, one
    // more than max_hops, is refused: 8 forwards taken, the 9th refused.
    const hops = [...logSince(a, fromA), ...logSince(b, fromB)].filter((e) => e.event === 'outbound' && (e.to === 'loop@ra.test' || e.to === 'loop@rb.test'));
    assert.equal(hops.length, 9, `attempts: ${hops.map((e) => `${e.to} ${e.result}`).join(', ')}`);
    assert.deepEqual(hops.filter((e) => e.result !== 'delivered').map((e) => [e.result, e.code]), [['permanent', 554]]);
    assert.equal(report.returned.match(/^Received:/gm)?.length ?? 0, 9, 'the returned header carries the 9 Received fields it was refused with');
  });

  it('after a SIGKILL during an attempt, tries that recipient again at once instead of waiting out its lease', async () => {
    // The attempt hangs: the peer takes the connection and says nothing.
    const hung = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      hung.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(25, '127.0.0.38', resolve));
    let sink: SmtpSink | null = null;
    try {
      await send(a, [{ from: 'alice@ra.test', to: ['carol@stall.test'], data: raw('alice@ra.test', 'carol@stall.test', 'interrupted') }], 'alice@ra.test');
      await waitFor('an attempt in flight', () => hung.size > 0);
      await a.server.kill();
      assert.equal(queueOf(a).find((m) => m.recipients[0]!.address === 'carol@stall.test')?.recipients[0]!.state, 'queued', 'still queued after SIGKILL');
      for (const socket of hung) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
      sink = await startSmtpSink('127.0.0.38', 25);
      const received = sink.received;
      const restarted = Date.now();
      await a.restart();
      // The lease of that attempt lasts at least 120 s (outbound-queue.ts); released at the start.
      await waitFor('the message at the peer', () => received.length > 0, 60_000);
      assert.ok(Date.now() - restarted < 60_000, `delivered ${Date.now() - restarted} ms after the restart`);
      assert.match(received[0]!.text, /^Subject: interrupted/m);
      await waitFor('an empty queue on a', () => queueOf(a).length === 0);
      assert.equal(received.length, 1, 'one copy');
    } finally {
      silent.close();
      await sink?.close();
    }
  });

  it('with smtp.dmarc_reject = false takes mail failing DMARC p=reject and records dmarc=fail; by default refuses it', async () => {
    const saved = { a: dns.zone.txt!['_dmarc.ra.test'], b: dns.zone.txt!['_dmarc.rb.test'] };
    dns.zone.txt!['_dmarc.ra.test'] = ['v=DMARC1; p=reject'];
    dns.zone.txt!['_dmarc.rb.test'] = ['v=DMARC1; p=reject'];
    const spoof = (host: MailHost, from: string, to: string, subject: string) =>
      pythonAsync(
        `
import smtplib, sys
try:
    s = smtplib.SMTP(sys.argv[1], 25); s.sendmail(sys.argv[2], [sys.argv[3]], 'From: %s\\r\\nSubject: %s\\r\\n\\r\\nx\\r\\n' % (sys.argv[2], sys.argv[4])); print('accepted')
except smtplib.SMTPDataError as e:
    print(e.smtp_code, e.smtp_error.decode()[:5])
`,
        [host.ip, from, to, subject],
      );
    try {
      // Sent from 127.0.0.1, which neither domain's SPF (v=spf1 mx -all) allows, and unsigned.
      const taken = await spoof(b, 'alice@ra.test', 'bob@rb.test', 'spoofed but taken');
      assert.equal(taken.stdout.trim(), 'accepted', taken.stderr);
      const refused = await spoof(a, 'bob@rb.test', 'alice@ra.test', 'spoofed and refused');
      assert.equal(refused.stdout.trim(), '550 5.7.1', refused.stderr);
      const stored = (await mailbox(b, 'bob@rb.test')).find((m) => m.text.includes('Subject: spoofed but taken'));
      assert.ok(stored, 'stored for bob');
      const results = /^Authentication-Results: mx\.rb\.test;(.*(?:\r\n[ \t].*)*)/m.exec(stored.text)?.[1]?.replace(/\r\n[ \t]+/g, ' ') ?? '';
      assert.match(results, /dmarc=fail/, results);
      assert.match(results, /spf=fail/, results);
      assert.equal((await mailbox(a, 'alice@ra.test')).some((m) => m.text.includes('Subject: spoofed and refused')), false);
    } finally {
      for (const [name, value] of [['_dmarc.ra.test', saved.a], ['_dmarc.rb.test', saved.b]] as const) {
        if (value) dns.zone.txt![name] = value;
        else delete dns.zone.txt![name];
      }
    }
  });

  it('honours NOTIFY on submission: NEVER, DELAY or SUCCESS alone get no bounce; the default does', async () => {
    const before = (await mailbox(a, 'alice@ra.test')).length;
    const from = mark(a);
    const message = (to: string, subject: string, rcpt: string[]): Outgoing => ({ from: 'alice@ra.test', to: [to], data: raw('alice@ra.test', to, subject), rcpt });
    await send(
      a,
      [
        message('never@rb.test', 'notify never', ['NOTIFY=NEVER']),
        message('delayonly@rb.test', 'notify delay', ['NOTIFY=DELAY']),
        message('successonly@rb.test', 'notify success', ['NOTIFY=SUCCESS']),
        message('control@rb.test', 'notify default', []),
      ],
      'alice@ra.test',
    );
    await inbox(a, 'alice@ra.test', before + 1);
    const targets = ['never@rb.test', 'delayonly@rb.test', 'successonly@rb.test', 'control@rb.test'];
    await waitFor('every recipient refused by rb.test', () => {
      const refused = logSince(a, from).filter((e) => e.event === 'outbound' && e.result === 'permanent' && e.code === 550);
      return targets.every((t) => refused.some((e) => e.to === t));
    });
    await waitFor('an empty queue on a', () => queueOf(a).length === 0);
    await sleep(1000);
    const reports = (await mailbox(a, 'alice@ra.test')).slice(before);
    assert.equal(reports.length, 1, 'only the default NOTIFY produced a bounce');
    const report = await parseReport(reports[0]!.bytes);
    assert.match(report.status, /^Final-Recipient: rfc822; ?control@rb\.test/m);
    assert.match(report.status, /^Action: failed/m);
    assert.match(report.status, /^Status: 5\.1\.1/m);
    assert.match(report.returned, /^Subject: notify default/m);
    assert.doesNotMatch(report.status, /never@|delayonly@|successonly@/);
  });

  it('returns the whole message with RET=FULL and the header only with RET=HDRS', async () => {
    const before = (await mailbox(a, 'alice@ra.test')).length;
    await send(
      a,
      [
        { from: 'alice@ra.test', to: ['full@rb.test'], data: raw('alice@ra.test', 'full@rb.test', 'return it all', 'FULL-BODY-LINE-1\r\nFULL-BODY-LINE-2\r\n'), mail: ['RET=FULL'] },
        { from: 'alice@ra.test', to: ['hdrs@rb.test'], data: raw('alice@ra.test', 'hdrs@rb.test', 'headers only please', 'HDRS-BODY-LINE\r\n'), mail: ['RET=HDRS'] },
      ],
      'alice@ra.test',
    );
    const messages = (await inbox(a, 'alice@ra.test', before + 2)).slice(before);
    const reports = await Promise.all(messages.map((m) => parseReport(m.bytes)));
    const full = reports.find((r) => /^Final-Recipient: rfc822; ?full@rb\.test/m.test(r.status));
    const hdrs = reports.find((r) => /^Final-Recipient: rfc822; ?hdrs@rb\.test/m.test(r.status));
    assert.ok(full && hdrs, 'one bounce for each');
    assert.match(full.returnedHead, /Content-Type: message\/rfc822/i);
    assert.match(full.returned, /^Subject: return it all\r$/m);
    assert.match(full.returned, /\r\n\r\nFULL-BODY-LINE-1\r\nFULL-BODY-LINE-2\r\n/, 'the body follows the header');
    assert.match(hdrs.returnedHead, /Content-Type: text\/rfc822-headers/i);
    assert.match(hdrs.returned, /^Subject: headers only please\r$/m);
    assert.doesNotMatch(hdrs.returned, /HDRS-BODY-LINE/);
    assert.match(full.human, /original message and a machine-readable report are attached/);
    assert.match(hdrs.human, /header of the original message and a machine-readable report are attached/);
  });

  it('explains a message too large for the peer with the limit it announced, and suggests a link', async () => {
    const before = (await mailbox(a, 'alice@ra.test')).length;
    const body = ('x'.repeat(998) + '\r\n').repeat(1200); // about 1.2 MB; rb.test takes 1 MiB
    await send(a, [{ from: 'alice@ra.test', to: ['bob@rb.test'], data: raw('alice@ra.test', 'bob@rb.test', 'the big drawings', body) }], 'alice@ra.test');
    const [bounce] = (await inbox(a, 'alice@ra.test', before + 1)).slice(before);
    const report = await parseReport(bounce!.bytes);
    assert.match(report.status, /^Final-Recipient: rfc822; ?bob@rb\.test/m);
    assert.match(report.status, /^Status: 5\.3\.4/m);
    assert.match(report.human, /larger than the recipient's server accepts \(its limit is about 1 MB\)/);
    assert.match(report.human, /Send large files as a link instead of as attachments/);
    assert.equal((await mailbox(b, 'bob@rb.test')).filter((m) => m.text.includes('Subject: the big drawings')).length, 0, 'nothing stored at rb.test');
    await waitFor('an empty queue on a', () => queueOf(a).length === 0);
  });

  it('`yubin queue retry --all` makes deferred recipients due now, and `yubin queue list` shows them', async () => {
    // dave's mailbox has no room left: rb.test defers with 452 4.2.2, and ra.test would wait an hour.
    cliOk(b.dataDir, ['user', 'quota', 'dave@rb.test', '6K']);
    await send(b, [{ from: 'someone@elsewhere.test', to: ['dave@rb.test'], data: raw('someone@elsewhere.test', 'dave@rb.test', 'filler', 'z'.repeat(4000) + '\r\n') }]);
    const filler = 'y'.repeat(2500) + '\r\n';
    await send(
      a,
      [
        { from: 'alice@ra.test', to: ['dave@rb.test'], data: raw('alice@ra.test', 'dave@rb.test', 'waits for room 1', filler) },
        { from: 'alice@ra.test', to: ['dave@rb.test'], data: raw('alice@ra.test', 'dave@rb.test', 'waits for room 2', filler) },
      ],
      'alice@ra.test',
    );
    let seen: QueueJson[] = [];
    const deferred = await waitFor('two deferred messages on a', () => {
      seen = queueOf(a);
      return seen.length === 2 && seen.every((m) => m.recipients[0]!.attempts >= 1) ? seen : null;
    }).catch((err: Error) => {
      throw new Error(`${err.message}; queue: ${JSON.stringify(seen)}`);
    });
    for (const m of deferred) {
      const r = m.recipients[0]!;
      assert.deepEqual([r.address, r.state, r.attempts, r.lastReply?.code, r.lastReply?.enhanced], ['dave@rb.test', 'queued', 1, 452, '4.2.2']);
      const wait = Date.parse(r.nextAttemptAt!) - Date.parse(r.lastAttemptAt!);
      assert.ok(Math.abs(wait - 3600_000) < 5000, `next attempt ${wait} ms after the last, per the hourly schedule`);
    }
    const listed = cliOk(a.dataDir, ['queue', 'list']);
    for (const m of deferred) assert.match(listed, new RegExp(`^${m.id}\\s.*alice@ra\\.test`, 'm'), listed);
    assert.match(listed, /dave@rb\.test\s+queued\s+1 attempt/, listed);
    assert.match(listed, /452 4\.2\.2/, listed);
    assert.match(listed, /next \d{4}-\d\d-\d\dT/, listed);

    // Room is made, but nothing happens before the next attempt is due...
    cliOk(b.dataDir, ['user', 'quota', 'dave@rb.test', 'none']);
    const daveMail = async () => (await mailbox(b, 'dave@rb.test')).filter((m) => /^Subject: waits for room/m.test(m.text));
    await sleep(2000);
    assert.deepEqual(queueOf(a).map((m) => m.recipients[0]!.attempts), [1, 1]);
    assert.equal((await daveMail()).length, 0);
    // ...unless the admin retries.
    assert.match(cliOk(a.dataDir, ['queue', 'retry', '--all']), /^2 recipient\(s\) due now/);
    const delivered = await waitFor('both messages delivered to dave', async () => ((await daveMail()).length >= 2 ? daveMail() : null), 30_000);
    assert.deepEqual(delivered.map((m) => /^Subject: (.*)\r$/m.exec(m.text)?.[1]).sort(), ['waits for room 1', 'waits for room 2']);
    await waitFor('an empty queue on a', () => queueOf(a).length === 0);
    assert.match(cliOk(a.dataDir, ['queue', 'list']), /the queue is empty/);
    assert.equal((await mailbox(a, 'alice@ra.test')).filter(isReport).filter((m) => /dave@rb\.test/.test(m.text)).length, 0, 'no report about dave');
  });
});
