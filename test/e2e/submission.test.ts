// Submission end to end against the real server on loopback: implicit TLS (the port 465 role,
// RFC 8314) with nodemailer and Python's smtplib.SMTP_SSL, delivery to local recipients (at once,
// into the INBOX, never through the queue), the size limit and the quota rules on that path, and
// the throttling of failed AUTH per IP address and per account (src/auth/throttle.ts).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import nodemailer from 'nodemailer';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, pythonAsync, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, usageOf, type StoredMail } from '../helpers/mailbox.js';
import { RawSmtp, expectReply, type SmtpReply } from '../helpers/smtp-raw.js';

const HOSTNAME = 'mx.example.test';
const PASSWORD = 'correct horse battery staple';
const LISTENERS = ['--submission', '127.0.0.1:0', '--submissions', '127.0.0.1:0'];

type Reply = SmtpReply;

function token(): string {
  return crypto.randomBytes(6).toString('hex');
}

/** A message from alice with a unique tag in its subject; no Message-ID or Date unless given. */
function message(tag: string, to: string, options: { body?: string; headers?: string } = {}): string {
  return (
    `From: Alice <alice@example.test>\r\n` +
    `To: ${to}\r\n` +
    `Subject: submission ${tag}\r\n` +
    (options.headers ?? '') +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `\r\n` +
    `Hello,\r\nthis is message ${tag}.\r\n` +
    (options.body ?? '')
  );
}

/** Escapes lines starting with "." (RFC 5321 §4.5.2) and appends the end-of-data line. */
function dotStuff(data: string): string {
  const stuffed = data.replace(/(^|\r\n)\./g, '$1..');
  return stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n';
}

/** A raw submission session on the STARTTLS port: greeting, EHLO, STARTTLS, EHLO, AUTH PLAIN. */
async function openSubmission(port: number, user = 'alice@example.test'): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  try {
    expectReply(await c.reply(), 220, null, 'greeting');
    expectReply(await c.command('EHLO client.test'), 250, null, 'EHLO');
    expectReply(await c.command('STARTTLS'), 220, null, 'STARTTLS');
    await c.startTls();
    expectReply(await c.command('EHLO client.test'), 250, null, 'EHLO after STARTTLS');
    expectReply(await c.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64')}`), 235, '2.7.0', 'AUTH PLAIN');
    return c;
  } catch (err) {
    c.close();
    throw err;
  }
}

/** A complete transaction over a raw session (no SIZE declared); DATA only when a recipient was accepted. */
async function rawTransaction(c: RawSmtp, rcpts: string[], data: string): Promise<{ rcpts: Reply[]; end: Reply | null }> {
  expectReply(await c.command('MAIL FROM:<alice@example.test>'), 250, '2.1.0', 'MAIL FROM');
  const replies: Reply[] = [];
  for (const r of rcpts) replies.push(await c.command(`RCPT TO:<${r}>`));
  if (!replies.some((r) => r.code === 250)) return { rcpts: replies, end: null };
  expectReply(await c.command('DATA'), 354, null, 'DATA');
  c.write(dotStuff(data));
  return { rcpts: replies, end: await c.reply() };
}

function withTag(mails: StoredMail[], tag: string): StoredMail[] {
  return mails.filter((m) => m.text.includes(`Subject: submission ${tag}\r\n`));
}

/** Mail minus Yubin's own capacity notices (Auto-Submitted: auto-generated), which go in whatever the quota. */
function withoutNotices(mails: StoredMail[]): StoredMail[] {
  return mails.filter((m) => !/^Auto-Submitted: auto-generated/m.test(m.text));
}

function headerLines(text: string, name: string): string[] {
  const head = text.slice(0, text.indexOf('\r\n\r\n') + 2);
  return [...head.matchAll(new RegExp(`^${name}:[ \\t]*(.*(?:\\r\\n[ \\t].*)*)`, 'gim'))].map((m) => m[1]!);
}

function queueList(dataDir: string): unknown[] {
  return JSON.parse(cliOk(dataDir, ['queue', 'list', '--json'])) as unknown[];
}

/** Fills a user's mailbox with one message of about `bytes` (as alice, over submission). */
async function fill(port: number, address: string, bytes: number): Promise<void> {
  const c = await openSubmission(port);
  try {
    const t = await rawTransaction(c, [address], message(token(), address, { body: `${'f'.repeat(98)}\r\n`.repeat(Math.ceil(bytes / 100)) }));
    expectReply(t.end!, 250, '2.6.0', `filling ${address}`);
  } finally {
    c.close();
  }
}

// -------------------------------------------------------------------------------------------
// One server for the whole file (each server and each user costs a process start). The throttle
// tests use client addresses (127.0.0.11 and up) and accounts that no other test fails with.

/** auth.failure_delay in ms: each further failure within the window doubles it (src/auth/throttle.ts). */
const BASE = 750;
const dataDir = makeDataDir('yubin-submission-');
let server: RunningYubin;
let submission: number;
let submissions: number;

before(async () => {
  cliOk(dataDir, ['domain', 'add', 'example.test']);
  for (const user of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'henry']) {
    cliOk(dataDir, ['user', 'add', `${user}@example.test`, '--password', PASSWORD]);
  }
  writeConfig(dataDir, `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_message_size = "64K"\n\n[auth]\nfailure_delay = "${BASE / 1000}s"\n`);
  server = await startYubin(dataDir, LISTENERS);
  submission = server.ports.submission!;
  submissions = server.ports.submissions!;
  assert.ok(submission > 0 && submissions > 0, `both submission ports: ${JSON.stringify(server.ports)}`);
});

after(async () => {
  await server?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('submission: implicit TLS and local recipients', () => {
  it('implicit TLS: nodemailer (secure) submits to a local user, stored in the INBOX before the 250, with Message-ID and Date added, nothing queued', async () => {
    const tag = token();
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: submissions,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@example.test', pass: PASSWORD },
    });
    const sentAt = Date.now();
    let info;
    try {
      info = await transport.sendMail({ envelope: { from: 'alice@example.test', to: ['bob@example.test'] }, raw: message(tag, 'bob@example.test') });
    } finally {
      transport.close();
    }
    assert.match(String(info.response), /^250 2\.6\.0 Message accepted as \w+: 1 mailbox\(es\)$/, String(info.response));
    assert.deepEqual(info.accepted, ['bob@example.test']);

    // Read at once, without waiting: the 250 comes only after the message is stored.
    const stored = withTag(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(stored.length, 1, 'bob has the message once, in his INBOX');
    const text = stored[0]!.text;
    assert.match(text, /^Return-Path: <alice@example\.test>\r\n/, 'Return-Path on top');
    assert.deepEqual(headerLines(text, 'Delivered-To'), ['bob@example.test']);
    const received = headerLines(text, 'Received');
    assert.equal(received.length, 1, 'one Received header');
    assert.match(received[0]!, /by mx\.example\.test \(Yubin\) with ESMTPSA \(TLSv1\.[23] with cipher /, `authenticated, over TLS: ${received[0]}`);
    const ids = headerLines(text, 'Message-ID');
    assert.equal(ids.length, 1, `one Message-ID: ${ids.join(' | ')}`);
    assert.match(ids[0]!, /^<[^@<>\s]+@mx\.example\.test>$/);
    const dates = headerLines(text, 'Date');
    assert.equal(dates.length, 1, `one Date: ${dates.join(' | ')}`);
    const date = Date.parse(dates[0]!);
    assert.ok(Number.isFinite(date), `a parsable Date: ${dates[0]}`);
    assert.ok(Math.abs(date - sentAt) < 5 * 60_000, `the Date is the time of submission: ${dates[0]}`);
    assert.deepEqual(queueList(dataDir), [], 'a local recipient never goes through the queue');
  });

  it('implicit TLS: a plaintext client gets no SMTP greeting; the STARTTLS port greets in plaintext', async () => {
    // A plaintext SMTP server greets at once; a client that speaks first gets its EHLO answered.
    // Implicit TLS reads the first bytes as a TLS ClientHello, which EHLO is not, and hangs up.
    const socket = net.connect(submissions, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 15_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.write('EHLO plaintext.test\r\n');
    const wasClosed = await closed;
    socket.destroy();
    assert.ok(wasClosed, `the server closes a connection that does not start with TLS; received ${JSON.stringify(received)}`);
    assert.doesNotMatch(received, /\d{3}[ -]|ESMTP|Yubin/, `no SMTP text in plaintext: ${JSON.stringify(received)}`);

    // The same probe on the STARTTLS port: greeting and EHLO in plaintext (so the probe above
    // would have seen them), with STARTTLS offered.
    const c = await RawSmtp.connect(submission);
    try {
      expectReply(await c.reply(), 220, null, 'STARTTLS port greeting');
      const ehlo = await c.command('EHLO plaintext.test');
      expectReply(ehlo, 250, null, 'EHLO');
      assert.match(ehlo.text, /STARTTLS/);
    } finally {
      c.close();
    }

    // And implicit TLS greets once TLS is up, with AUTH offered at once.
    const conn = new SMTPConnection({ host: '127.0.0.1', port: submissions, secure: true, tls: { rejectUnauthorized: false }, name: 'client.test', connectionTimeout: 10_000, greetingTimeout: 10_000 });
    conn.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
      assert.equal(conn.secure, true, 'TLS from the first byte');
      assert.ok(conn.allowsAuth, 'AUTH offered over implicit TLS');
    } finally {
      conn.close();
    }
  });

  it('implicit TLS: Python smtplib.SMTP_SSL logs in and submits; a Message-ID and Date of its own are kept, not doubled', async () => {
    const tag = token();
    const messageId = `<${tag}@client.example>`;
    const dateHeader = 'Mon, 02 Nov 2026 10:00:00 +0000';
    const sent = await pythonAsync(
      String.raw`
import json, smtplib, ssl, sys
port, password = int(sys.argv[1]), sys.argv[2]
msg = sys.stdin.buffer.read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {}
s = smtplib.SMTP_SSL('127.0.0.1', port, context=ctx, timeout=30)
out['ehlo'] = s.ehlo()[0]
out['tls'] = s.sock.version()
out['login'] = s.login('alice@example.test', password)[0]
out['refused'] = s.sendmail('alice@example.test', ['carol@example.test'], msg)
s.quit()
print(json.dumps(out))
`,
      [String(submissions), PASSWORD],
      message(tag, 'carol@example.test', { headers: `Message-ID: ${messageId}\r\nDate: ${dateHeader}\r\n` }),
    );
    assert.equal(sent.status, 0, sent.stderr);
    const out = JSON.parse(sent.stdout) as { ehlo: number; tls: string; login: number; refused: Record<string, unknown> };
    assert.equal(out.ehlo, 250);
    assert.match(out.tls, /^TLSv1\.[23]$/);
    assert.equal(out.login, 235);
    assert.deepEqual(out.refused, {});

    const stored = withTag(await readMailbox(dataDir, 'carol@example.test'), tag);
    assert.equal(stored.length, 1, 'carol has it once');
    assert.deepEqual(headerLines(stored[0]!.text, 'Message-ID'), [messageId]);
    assert.deepEqual(headerLines(stored[0]!.text, 'Date'), [dateHeader]);
  });

  it('size limit: SIZE over max_message_size gets 552 5.3.4 at MAIL FROM; an undeclared oversized body 552 5.3.4 at end of data, nothing stored', async () => {
    const before = await readMailbox(dataDir, 'bob@example.test');
    const usageBefore = await usageOf(dataDir, 'bob@example.test');
    const tag = token();
    const c = await openSubmission(submission);
    try {
      expectReply(await c.command(`MAIL FROM:<alice@example.test> SIZE=${64 * 1024 + 1}`), 552, '5.3.4', 'MAIL with SIZE over the limit');
      expectReply(await c.command('RSET'), 250, null, 'RSET');
      // About 70 KB, SIZE not declared: the limit is found while the data arrives.
      const t = await rawTransaction(c, ['bob@example.test'], message(tag, 'bob@example.test', { body: `${'z'.repeat(98)}\r\n`.repeat(700) }));
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT');
      expectReply(t.end!, 552, '5.3.4', 'end of data over the limit');
      // The session goes on: a small message on the same connection is delivered.
      const small = token();
      const ok = await rawTransaction(c, ['bob@example.test'], message(small, 'bob@example.test'));
      expectReply(ok.end!, 250, '2.6.0', 'a small message after the refusal');
      assert.equal(withTag(await readMailbox(dataDir, 'bob@example.test'), small).length, 1);
    } finally {
      c.close();
    }
    const afterwards = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(withTag(afterwards, tag).length, 0, 'the oversized message is not stored');
    assert.equal(afterwards.length, before.length + 1, 'only the small message arrived');
    const usage = await usageOf(dataDir, 'bob@example.test');
    assert.equal(usage.kept.messages, usageBefore.kept.messages + 1);
    assert.deepEqual(usage.kept, usage.summed, 'usage equals what is stored');
  });

  it('quota at RCPT: a full recipient gets 452 4.2.2 (552 5.2.2 with over_quota = reject) and nothing; the other recipient gets the message', async () => {
    await fill(submission, 'dave@example.test', 3000);
    assert.ok((await usageOf(dataDir, 'dave@example.test')).kept.bytes > 2048);
    cliOk(dataDir, ['user', 'quota', 'dave@example.test', '2K']);
    const daveBefore = withoutNotices(await readMailbox(dataDir, 'dave@example.test')).length;

    for (const policy of ['defer', 'reject'] as const) {
      if (policy === 'reject') cliOk(dataDir, ['user', 'set', 'dave@example.test', 'over_quota', 'reject']);
      const tag = token();
      const c = await openSubmission(submission);
      try {
        const t = await rawTransaction(c, ['dave@example.test', 'erin@example.test'], message(tag, 'dave@example.test, erin@example.test'));
        if (policy === 'defer') expectReply(t.rcpts[0]!, 452, '4.2.2', 'RCPT dave (full, defer)');
        else expectReply(t.rcpts[0]!, 552, '5.2.2', 'RCPT dave (full, reject)');
        assert.match(t.rcpts[0]!.text, /mailbox of <dave@example\.test> is full/);
        expectReply(t.rcpts[1]!, 250, '2.1.5', `RCPT erin (${policy})`);
        expectReply(t.end!, 250, '2.6.0', `end of data (${policy})`);
        assert.match(t.end!.text, /: 1 mailbox\(es\)$/);
      } finally {
        c.close();
      }
      assert.equal(withTag(await readMailbox(dataDir, 'erin@example.test'), tag).length, 1, `erin has it once (${policy})`);
      const dave = await readMailbox(dataDir, 'dave@example.test');
      assert.equal(withTag(dave, tag).length, 0, `dave has nothing (${policy})`);
      assert.equal(withoutNotices(dave).length, daveBefore, `dave has nothing but Yubin's notices (${policy})`);
    }
  });

  it('quota at end of data (no SIZE): all or nothing, 452 4.2.2; the retry refuses the full recipient at RCPT and delivers to the other', async () => {
    await fill(submission, 'frank@example.test', 10_000);
    cliOk(dataDir, ['user', 'quota', 'frank@example.test', String((await usageOf(dataDir, 'frank@example.test')).kept.bytes + 4096)]);
    const tag = token();
    // About 8 KB: more than frank's 4K of room, less than his whole quota.
    const data = message(tag, 'erin@example.test, frank@example.test', { body: `${'r'.repeat(98)}\r\n`.repeat(80) });
    const c = await openSubmission(submission);
    try {
      const first = await rawTransaction(c, ['erin@example.test', 'frank@example.test'], data);
      expectReply(first.rcpts[0]!, 250, '2.1.5', 'RCPT erin');
      expectReply(first.rcpts[1]!, 250, '2.1.5', 'RCPT frank (room left, size unknown)');
      expectReply(first.end!, 452, '4.2.2', 'end of data: frank is full for this message');
      assert.match(first.end!.text, /mailbox of <frank@example\.test> is full/);
      assert.equal(withTag(await readMailbox(dataDir, 'erin@example.test'), tag).length, 0, 'all or nothing: erin has nothing yet');
      assert.equal(withTag(await readMailbox(dataDir, 'frank@example.test'), tag).length, 0, 'frank has nothing');

      // The client retries the same message: frank is refused at RCPT now, erin gets it.
      const retry = await rawTransaction(c, ['erin@example.test', 'frank@example.test'], data);
      expectReply(retry.rcpts[0]!, 250, '2.1.5', 'retry: RCPT erin');
      expectReply(retry.rcpts[1]!, 452, '4.2.2', 'retry: RCPT frank');
      expectReply(retry.end!, 250, '2.6.0', 'retry: end of data');
    } finally {
      c.close();
    }
    assert.equal(withTag(await readMailbox(dataDir, 'erin@example.test'), tag).length, 1, 'erin has it once');
    assert.equal(withTag(await readMailbox(dataDir, 'frank@example.test'), tag).length, 0, 'frank does not');
  });

  it('quota at end of data with over_quota = reject: 452 4.2.2 while another recipient could take it; the retry gets 552 5.2.2 at RCPT and the other gets it', async () => {
    await fill(submission, 'henry@example.test', 10_000);
    cliOk(dataDir, ['user', 'quota', 'henry@example.test', String((await usageOf(dataDir, 'henry@example.test')).kept.bytes + 4096)]);
    cliOk(dataDir, ['user', 'set', 'henry@example.test', 'over_quota', 'reject']);
    const tag = token();
    const data = message(tag, 'erin@example.test, henry@example.test', { body: `${'h'.repeat(98)}\r\n`.repeat(80) });
    const c = await openSubmission(submission);
    try {
      const first = await rawTransaction(c, ['henry@example.test', 'erin@example.test'], data);
      expectReply(first.rcpts[0]!, 250, '2.1.5', 'RCPT henry (room left, size unknown)');
      expectReply(first.rcpts[1]!, 250, '2.1.5', 'RCPT erin');
      // Permanent only when every recipient failed for good (src/delivery/local-delivery.ts).
      expectReply(first.end!, 452, '4.2.2', 'end of data: henry full, erin not');
      assert.equal(withTag(await readMailbox(dataDir, 'erin@example.test'), tag).length, 0, 'all or nothing: erin has nothing yet');

      const retry = await rawTransaction(c, ['henry@example.test', 'erin@example.test'], data);
      expectReply(retry.rcpts[0]!, 552, '5.2.2', 'retry: RCPT henry (reject)');
      assert.match(retry.rcpts[0]!.text, /mailbox of <henry@example\.test> is full/);
      expectReply(retry.rcpts[1]!, 250, '2.1.5', 'retry: RCPT erin');
      expectReply(retry.end!, 250, '2.6.0', 'retry: end of data');
    } finally {
      c.close();
    }
    assert.equal(withTag(await readMailbox(dataDir, 'erin@example.test'), tag).length, 1, 'erin has it once');
    assert.equal(withTag(await readMailbox(dataDir, 'henry@example.test'), tag).length, 0, 'henry does not');
    // Nothing of this describe went to the queue: local recipients are delivered or refused at once.
    assert.deepEqual(queueList(dataDir), [], 'the outbound queue is empty');
  });
});

// -------------------------------------------------------------------------------------------
describe('submission: failed AUTH is slowed per IP address and per account', () => {
  /**
   * Connects over implicit TLS from `localAddress` and times AUTH alone (connection, TLS and
   * EHLO are done before the clock starts).
   */
  async function timedLogin(localAddress: string, user: string, pass: string): Promise<{ ok: boolean; ms: number; response: string }> {
    const conn = new SMTPConnection({
      host: '127.0.0.1',
      port: submissions,
      secure: true,
      localAddress,
      tls: { rejectUnauthorized: false },
      name: 'client.test',
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 60_000,
    });
    conn.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
      const started = performance.now();
      const err = await new Promise<SMTPConnection.SMTPError | undefined>((resolve) => conn.login({ user, pass }, (e) => resolve(e ?? undefined)));
      const ms = performance.now() - started;
      return { ok: !err, ms, response: err ? String(err.response ?? err.message) : '' };
    } finally {
      conn.close();
    }
  }

  function expectRefused(r: { ok: boolean; response: string }, what: string): void {
    assert.equal(r.ok, false, `${what}: refused`);
    assert.match(r.response, /^535 5\.7\.8 /, `${what}: ${r.response}`);
  }

  /** The server waits at least this long; timers never fire early, so this bound cannot fail by load. */
  function atLeast(ms: number, delay: number, what: string): void {
    assert.ok(ms >= delay - 5, `${what}: delayed at least ${delay} ms, took ${Math.round(ms)} ms`);
  }

  it('per IP: each failure from one address, whatever the account, doubles the delay; another address is not slowed; the right password is not delayed', async (t) => {
    const ip = '127.0.0.11';
    // Three accounts, one failure each: only the address's count can make them slower.
    const first = await timedLogin(ip, 'bob@example.test', 'wrong 1');
    const second = await timedLogin(ip, 'carol@example.test', 'wrong 2');
    const third = await timedLogin(ip, 'dave@example.test', 'wrong 3');
    for (const [r, what] of [[first, 'first'], [second, 'second'], [third, 'third']] as const) expectRefused(r, what);
    atLeast(first.ms, BASE, 'first failure');
    atLeast(second.ms, 2 * BASE, 'second failure from the same address');
    atLeast(third.ms, 4 * BASE, 'third failure from the same address');
    assert.ok(third.ms - first.ms >= BASE, `the third failure is measurably slower than the first: ${Math.round(first.ms)} ms, then ${Math.round(third.ms)} ms`);

    // Another client, a fresh account: the first address's failures do not slow it.
    const other = await timedLogin('127.0.0.12', 'erin@example.test', 'wrong 4');
    expectRefused(other, 'another address');
    atLeast(other.ms, BASE, 'failure from another address');
    assert.ok(third.ms - other.ms >= BASE, `another address waits the base delay only: ${Math.round(other.ms)} ms against ${Math.round(third.ms)} ms`);

    // The right password from the throttled address works, and without the next delay (8 × base).
    const good = await timedLogin(ip, 'bob@example.test', PASSWORD);
    assert.equal(good.ok, true, `the right password after failures works: ${good.response}`);
    t.diagnostic(`ms: ${[first, second, third, other, good].map((r) => Math.round(r.ms)).join(', ')} (base ${BASE})`);
    assert.ok(good.ms < 4 * BASE, `a success is not throttled (the next failure would wait ${8 * BASE} ms): ${Math.round(good.ms)} ms`);
  });

  it('per account: failures against one account slow the next attempt on it from another address; a success clears that', async (t) => {
    // Two failures against frank from one address ...
    const a1 = await timedLogin('127.0.0.21', 'frank@example.test', 'wrong 1');
    const a2 = await timedLogin('127.0.0.21', 'frank@example.test', 'wrong 2');
    expectRefused(a1, 'first failure against frank');
    expectRefused(a2, 'second failure against frank');
    atLeast(a2.ms, 2 * BASE, 'second failure against frank');
    // ... then one from an address with no failures of its own: the account's count applies.
    const moved = await timedLogin('127.0.0.22', 'frank@example.test', 'wrong 3');
    expectRefused(moved, 'frank from another address');
    atLeast(moved.ms, 4 * BASE, 'third failure against frank, from a fresh address');
    // The same kind of attempt against an account without failures, from a fresh address.
    const control = await timedLogin('127.0.0.23', 'henry@example.test', 'wrong 4');
    expectRefused(control, 'henry from a fresh address');
    atLeast(control.ms, BASE, 'a first failure');
    assert.ok(
      moved.ms - control.ms >= BASE,
      `frank's failures slow the next attempt on frank from another address: ${Math.round(moved.ms)} ms, against ${Math.round(control.ms)} ms for a fresh account`,
    );

    // The right password still works, from the address that was just slowed, without waiting.
    const good = await timedLogin('127.0.0.22', 'frank@example.test', PASSWORD);
    assert.equal(good.ok, true, `the right password after failures works: ${good.response}`);
    assert.ok(good.ms < 4 * BASE, `a success is not throttled: ${Math.round(good.ms)} ms`);
    // A success clears the account's count: a later failure on frank from a fresh address
    // waits the base delay, not 8 × base.
    const later = await timedLogin('127.0.0.24', 'frank@example.test', 'wrong 5');
    expectRefused(later, 'frank after a success');
    atLeast(later.ms, BASE, 'a failure after the success');
    t.diagnostic(`ms: ${[a1, a2, moved, control, good, later].map((r) => Math.round(r.ms)).join(', ')} (base ${BASE})`);
    assert.ok(later.ms < 4 * BASE, `the account's count starts over after a success: ${Math.round(later.ms)} ms`);
  });
});
