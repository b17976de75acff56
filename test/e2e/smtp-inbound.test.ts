// The receiving server (MX) with well-behaved clients: nodemailer's SMTPConnection, Python's
// smtplib and exact command lines over a raw socket. Every refusal is checked on the wire with
// its reply code AND its enhanced status code (RFC 3463), and every acceptance against what the
// store really holds afterwards.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, python, startYubin, userRow, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { waitFor } from '../helpers/wait.js';
import { readMailbox, usageOf, type StoredMail } from '../helpers/mailbox.js';
import { RawSmtp, escapeRe, expectReply, type SmtpReply } from '../helpers/smtp-raw.js';

const HOSTNAME = 'mx.yubin.test';

type Reply = SmtpReply;

function token(): string {
  return crypto.randomBytes(6).toString('hex');
}

/** Opens a raw session, reads the greeting and (unless helo is null) says EHLO. */
async function openRaw(port: number, helo: string | null = 'client.test'): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  expectReply(await c.reply(), 220, null, 'greeting');
  if (helo !== null) expectReply(await c.command(`EHLO ${helo}`), 250, null, 'EHLO');
  return c;
}

/** A message with CRLF line ends and a unique subject. */
function message(tag: string, extraBody = ''): string {
  return (
    `From: Alice <alice@sender.example>\r\n` +
    `To: bob@example.test\r\n` +
    `Subject: test ${tag}\r\n` +
    `Message-ID: <${tag}@sender.example>\r\n` +
    `Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n` +
    `\r\n` +
    `Hello Bob,\r\nthis is message ${tag}.\r\n` +
    extraBody
  );
}

/** Escapes lines starting with "." (RFC 5321 §4.5.2) and appends the end-of-data line. */
function dotStuff(data: string): string {
  const stuffed = data.replace(/(^|\r\n)\./g, '$1..');
  return stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n';
}

/** A complete transaction over a raw session; returns every reply. DATA is sent only when a recipient was accepted. */
async function rawTransaction(
  c: RawSmtp,
  from: string,
  rcpts: string[],
  data: string,
): Promise<{ mail: Reply; rcpts: Reply[]; data: Reply | null; end: Reply | null }> {
  const mail = await c.command(`MAIL FROM:<${from}>`);
  const rcptReplies: Reply[] = [];
  for (const r of rcpts) rcptReplies.push(await c.command(`RCPT TO:<${r}>`));
  if (!rcptReplies.some((r) => r.code === 250)) return { mail, rcpts: rcptReplies, data: null, end: null };
  const dataReply = await c.command('DATA');
  if (dataReply.code !== 354) return { mail, rcpts: rcptReplies, data: dataReply, end: null };
  c.write(dotStuff(data));
  return { mail, rcpts: rcptReplies, data: dataReply, end: await c.reply() };
}

/** Message files on disk (DATA/blobs/ab/abcdef..., see src/store/blobs/file-blob-store.ts), temporary files aside. */
/** Mail minus Yubin's own capacity notices (Auto-Submitted: auto-generated). */
function withoutNotices<T extends { text: string }>(mails: T[]): T[] {
  return mails.filter((m) => !/^Auto-Submitted: auto-generated/m.test(m.text));
}

function blobFiles(dataDir: string): number {
  const root = path.join(dataDir, 'blobs');
  let count = 0;
  for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
    if (entry.isDirectory() && entry.name !== 'tmp') count += fs.readdirSync(path.join(root, entry.name)).length;
  }
  return count;
}

function withToken(mails: StoredMail[], tag: string): StoredMail[] {
  return mails.filter((m) => m.text.includes(tag));
}

function connectClient(port: number, options: Partial<SMTPConnection.Options> = {}): Promise<SMTPConnection> {
  const conn = new SMTPConnection({
    host: '127.0.0.1',
    port,
    name: 'client.test',
    tls: { rejectUnauthorized: false },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
    ...options,
  });
  conn.on('error', () => undefined);
  return new Promise((resolve, reject) => {
    conn.connect((err) => (err ? reject(err) : resolve(conn)));
  });
}

function sendWith(conn: SMTPConnection, envelope: SMTPConnection.Envelope, data: string | Buffer): Promise<SMTPConnection.SentMessageInfo> {
  return new Promise((resolve, reject) => {
    conn.send(envelope, data, (err, info) => (err ? reject(err) : resolve(info!)));
  });
}

/** Checks that usage kept by the store equals the stored sizes, and what `user list` shows. */
async function assertUsageConsistent(dataDir: string, address: string): Promise<void> {
  const mails = await readMailbox(dataDir, address);
  const total = mails.reduce((sum, m) => sum + m.size, 0);
  for (const m of mails) assert.equal(m.size, m.bytes.length, `stored size of uid ${m.uid} equals its bytes`);
  const row = userRow(dataDir, address);
  assert.equal(row.used, total, `${address}: user list "used" equals the summed stored sizes`);
  assert.equal(row.messages, mails.length, `${address}: user list "messages"`);
  const usage = await usageOf(dataDir, address);
  assert.deepEqual(usage.kept, usage.summed, `${address}: kept usage equals recomputed usage`);
  assert.deepEqual(usage.kept, { bytes: total, messages: mails.length });
}

const PY_SEND = String.raw`
import json, smtplib, ssl, sys
host, port, mode, sender, rcpt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
msg = sys.stdin.buffer.read()
s = smtplib.SMTP(host, port, local_hostname='py.client.test', timeout=30)
out = {}
out['ehlo'] = list(s.ehlo())[0]
if mode == 'tls':
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    out['starttls'] = s.starttls(context=ctx)[0]
    out['ehlo2'] = s.ehlo()[0]
    out['features'] = sorted(s.esmtp_features.keys())
out['mail'] = s.mail(sender)[0]
out['rcpt'] = s.rcpt(rcpt)[0]
code, resp = s.data(msg)
out['data'] = code
out['dataText'] = resp.decode('latin1')
s.quit()
print(json.dumps(out))
`;

// -------------------------------------------------------------------------------------------
describe('SMTP inbound: accepting mail', () => {
  const dataDir = makeDataDir('yubin-inbound-');
  let server: RunningYubin;
  let port: number;

  before(async () => {
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    cliOk(dataDir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
    cliOk(dataDir, ['user', 'add', 'carol@example.test', '--password', 'password1']);
    cliOk(dataDir, ['alias', 'add', 'team@example.test', 'bob@example.test,carol@example.test']);
    cliOk(dataDir, ['alias', 'add', 'postmaster@example.test', 'bob@example.test']);
    writeConfig(dataDir, `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_message_size = "64K"\n`);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0']);
    port = server.ports.smtp!;
    assert.ok(port > 0, 'smtp port');
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('EHLO advertises PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES, STARTTLS and no AUTH', async () => {
    const c = await openRaw(port, null);
    try {
      const ehlo = await c.command('EHLO client.test');
      expectReply(ehlo, 250, null, 'EHLO');
      const keywords = ehlo.lines.slice(1).map((l) => l.slice(4));
      assert.match(ehlo.lines[0]!, new RegExp(`^250-${escapeRe(HOSTNAME)}\\b`), 'first line names the server');
      for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'DSN']) {
        assert.ok(keywords.includes(ext), `EHLO advertises ${ext}: ${ehlo.text}`);
      }
      assert.ok(keywords.includes(`SIZE ${64 * 1024}`), `EHLO advertises SIZE 65536: ${ehlo.text}`);
      assert.ok(!keywords.some((k) => /^AUTH\b/i.test(k)), `no AUTH on the MX: ${ehlo.text}`);

      // After STARTTLS: still no AUTH, and no second STARTTLS.
      expectReply(await c.command('STARTTLS'), 220, '2.0.0', 'STARTTLS');
      await c.startTls();
      const secure = await c.command('EHLO client.test');
      expectReply(secure, 250, null, 'EHLO after TLS');
      const secureKeywords = secure.lines.slice(1).map((l) => l.slice(4));
      assert.ok(!secureKeywords.some((k) => /^AUTH\b/i.test(k)), `no AUTH after TLS: ${secure.text}`);
      assert.ok(!secureKeywords.includes('STARTTLS'), `no STARTTLS once secure: ${secure.text}`);
      assert.ok(secureKeywords.includes(`SIZE ${64 * 1024}`));
      // AUTH is not a command here at all.
      const auth = await c.command('AUTH PLAIN AGJvYgBwYXNzd29yZDE=');
      assert.ok(auth.code >= 500 && auth.code < 600, `AUTH refused: ${auth.text}`);
    } finally {
      c.close();
    }
  });

  it('nodemailer with STARTTLS: stored once, with Return-Path, Delivered-To, a TLS Received header and the exact bytes', async () => {
    const tag = token();
    // 8-bit text, a line that needs dot-stuffing, trailing spaces and a long line: all must survive.
    const original = message(tag, `.a line starting with a dot\r\n..two dots\r\nnon-ASCII: caf\u00e9 \u90f5\u4fbf   \r\n${'x'.repeat(900)}\r\n`);
    const conn = await connectClient(port, { requireTLS: true });
    let info: SMTPConnection.SentMessageInfo;
    try {
      assert.equal(conn.secure, true, 'nodemailer upgraded with STARTTLS');
      info = await sendWith(conn, { from: 'alice@sender.example', to: ['bob@example.test'] }, Buffer.from(original, 'utf8'));
    } finally {
      conn.quit();
    }
    assert.deepEqual(info.accepted, ['bob@example.test']);
    assert.deepEqual(info.rejected, []);
    assert.match(info.response, /^250 2\.6\.0 /, info.response);

    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1, 'stored exactly once');
    const bytes = mine[0]!.bytes;
    const prefix = Buffer.from('Return-Path: <alice@sender.example>\r\nDelivered-To: bob@example.test\r\n', 'utf8');
    assert.ok(bytes.subarray(0, prefix.length).equals(prefix), `starts with Return-Path and Delivered-To: ${JSON.stringify(bytes.subarray(0, 120).toString('latin1'))}`);
    const originalBytes = Buffer.from(original, 'utf8');
    assert.ok(bytes.subarray(bytes.length - originalBytes.length).equals(originalBytes), 'ends with the original message, byte for byte');
    const trace = bytes.subarray(prefix.length, bytes.length - originalBytes.length).toString('latin1');
    // Exactly two header fields: "Received:", then the sender checks (RFC 8601), each folded, CRLF-terminated.
    assert.match(
      trace,
      /^Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*Authentication-Results: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*$/,
      `one folded Received field and one Authentication-Results field: ${JSON.stringify(trace)}`,
    );
    assert.match(trace, /^Authentication-Results: mx\.yubin\.test;[\s\S]*spf=[\s\S]*dkim=[\s\S]*dmarc=/m, trace);
    assert.match(trace, /\bfrom client\.test\b/, trace);
    assert.match(trace, /\[127\.0\.0\.1\]/, trace);
    assert.match(trace, new RegExp(`\\bby ${escapeRe(HOSTNAME)}\\b`), trace);
    assert.match(trace, /\bwith ESMTPS\b/, trace);
    assert.match(trace, /TLSv1\.[23]/, `TLS version in Received: ${trace}`);
    assert.match(trace, /with cipher [A-Z0-9_-]+/, trace);
    assert.match(trace, /for <bob@example\.test>;/, trace);
    assert.match(trace, /;\s+\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r\nAuthentication-Results: /, `RFC 5322 date at the end of Received: ${trace}`);
    await assertUsageConsistent(dataDir, 'bob@example.test');
  });

  it('nodemailer without TLS: Received says ESMTP with no TLS details', async () => {
    const tag = token();
    const conn = await connectClient(port, { ignoreTLS: true });
    try {
      assert.equal(conn.secure, false);
      const info = await sendWith(conn, { from: 'alice@sender.example', to: 'bob@example.test' }, message(tag));
      assert.match(info.response, /^250 2\.6\.0 /);
    } finally {
      conn.quit();
    }
    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1);
    assert.match(mine[0]!.text, new RegExp(`Received: from client\\.test [^\\r\\n]*\\r\\n\\tby ${escapeRe(HOSTNAME)} \\(Yubin\\) with ESMTP\\r\\n`));
    assert.doesNotMatch(mine[0]!.text, /TLSv1/);
  });

  for (const mode of ['plain', 'tls'] as const) {
    it(`Python smtplib (${mode === 'tls' ? 'with starttls()' : 'plain'}) delivers to bob`, async () => {
      const tag = token();
      const original = message(tag);
      const result = python(PY_SEND, ['127.0.0.1', String(port), mode, 'py@sender.example', 'bob@example.test'], original);
      assert.equal(result.status, 0, `python failed: ${result.stderr}`);
      const out = JSON.parse(result.stdout) as Record<string, unknown>;
      assert.equal(out.ehlo, 250);
      if (mode === 'tls') {
        assert.equal(out.starttls, 220);
        assert.equal(out.ehlo2, 250);
        assert.ok(!(out.features as string[]).includes('auth'), 'no AUTH after TLS');
      }
      assert.equal(out.mail, 250);
      assert.equal(out.rcpt, 250);
      assert.equal(out.data, 250);
      assert.match(String(out.dataText), /^2\.6\.0 /, `enhanced code on the DATA reply: ${String(out.dataText)}`);

      const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
      assert.equal(mine.length, 1, 'stored once');
      const text = mine[0]!.text;
      assert.ok(text.startsWith('Return-Path: <py@sender.example>\r\nDelivered-To: bob@example.test\r\nReceived: from py.client.test '), text.slice(0, 200));
      assert.ok(text.endsWith(original), 'original bytes at the end');
      if (mode === 'tls') assert.match(text, /with ESMTPS \(TLSv1\.[23] with cipher /);
      else assert.doesNotMatch(text, /TLSv1/);
      await assertUsageConsistent(dataDir, 'bob@example.test');
    });
  }

  it('the null sender (bounces) is accepted: Return-Path: <>', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, '', ['bob@example.test'], message(tag));
      expectReply(t.mail, 250, '2.1.0', 'MAIL FROM:<>');
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT');
      expectReply(t.end!, 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1);
    assert.ok(mine[0]!.text.startsWith('Return-Path: <>\r\nDelivered-To: bob@example.test\r\n'));
  });

  it('refuses unknown users (550 5.1.1), other domains (554 5.7.1) and every routing trick; nothing is stored', async () => {
    const before = await readMailbox(dataDir, 'bob@example.test');
    const c = await openRaw(port);
    try {
      expectReply(await c.command('MAIL FROM:<mallory@sender.example>'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('RCPT TO:<nobody@example.test>'), 550, '5.1.1', 'unknown local user');
      expectReply(await c.command('RCPT TO:<bob@other.org>'), 554, '5.7.1', 'other domain');
      expectReply(await c.command('RCPT TO:<bob@example.test.other.org>'), 554, '5.7.1', 'local domain as a prefix of another');
      expectReply(await c.command('RCPT TO:<bob%other.org@example.test>'), 554, '5.7.1', 'percent hack');
      expectReply(await c.command('RCPT TO:<other.org!bob@example.test>'), 554, '5.7.1', 'bang path');
      expectReply(await c.command('RCPT TO:<"bob%other.org"@example.test>'), 554, '5.7.1', 'quoted percent hack');
      const quoted = await c.command('RCPT TO:<"bob@other.org"@example.test>');
      assert.ok(quoted.code >= 500 && quoted.code < 600, `quoted local part with @ refused: ${quoted.text}`);
      assert.match(quoted.lines.at(-1)!, /^5\d\d 5\.\d{1,3}\.\d{1,3} /, `enhanced code on the refusal: ${quoted.text}`);
      expectReply(await c.command('RCPT TO:<@example.test:bob@other.org>'), 554, '5.7.1', 'source route');
      expectReply(await c.command('RCPT TO:<@example.test,@example.test:bob@other.org>'), 554, '5.7.1', 'source route with two hops');
      expectReply(await c.command('RCPT TO:<bob@[127.0.0.1]>'), 554, '5.7.1', 'IP literal');
      expectReply(await c.command('RCPT TO:<bob@[IPv6:::1]>'), 554, '5.7.1', 'IPv6 literal');
      // Nothing accepted, so there is no transaction to send data for.
      expectReply(await c.command('DATA'), 503, '5.5.1', 'DATA without an accepted recipient');
      expectReply(await c.command('RSET'), 250, '2.0.0', 'RSET');
    } finally {
      c.close();
    }
    const afterwards = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(afterwards.length, before.length, 'nothing stored');
  });

  it('domains are case-insensitive: bob@EXAMPLE.TEST is accepted and delivered to bob', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['bob@EXAMPLE.TEST'], message(tag));
      expectReply(t.mail, 250, '2.1.0', 'MAIL');
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT bob@EXAMPLE.TEST');
      expectReply(t.end!, 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1);
    assert.match(mine[0]!.text, /^Return-Path: <alice@sender\.example>\r\nDelivered-To: bob@example\.test\r\n/);
  });

  it('an alias to two users delivers one copy to each; alias plus one of its targets still one copy each', async () => {
    const bobBefore = (await readMailbox(dataDir, 'bob@example.test')).length;
    const carolBefore = (await readMailbox(dataDir, 'carol@example.test')).length;
    const tag1 = token();
    const tag2 = token();
    const c = await openRaw(port);
    try {
      const one = await rawTransaction(c, 'alice@sender.example', ['team@example.test'], message(tag1));
      expectReply(one.rcpts[0]!, 250, '2.1.5', 'RCPT alias');
      expectReply(one.end!, 250, '2.6.0', 'end of data (alias)');
      const two = await rawTransaction(c, 'alice@sender.example', ['team@example.test', 'bob@example.test', 'Carol@Example.Test'], message(tag2));
      for (const r of two.rcpts) expectReply(r, 250, '2.1.5', 'RCPT alias + targets');
      expectReply(two.end!, 250, '2.6.0', 'end of data (alias + targets)');
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    const carol = await readMailbox(dataDir, 'carol@example.test');
    assert.equal(withToken(bob, tag1).length, 1, 'bob: one copy via the alias');
    assert.equal(withToken(carol, tag1).length, 1, 'carol: one copy via the alias');
    assert.equal(withToken(bob, tag2).length, 1, 'bob: one copy although named twice');
    assert.equal(withToken(carol, tag2).length, 1, 'carol: one copy although named twice');
    assert.equal(bob.length, bobBefore + 2);
    assert.equal(carol.length, carolBefore + 2);
    // Each copy names its own mailbox in Delivered-To.
    assert.match(withToken(carol, tag1)[0]!.text, /^Return-Path: <alice@sender\.example>\r\nDelivered-To: carol@example\.test\r\n/);
    assert.match(withToken(bob, tag1)[0]!.text, /^Return-Path: <alice@sender\.example>\r\nDelivered-To: bob@example\.test\r\n/);
    await assertUsageConsistent(dataDir, 'bob@example.test');
    await assertUsageConsistent(dataDir, 'carol@example.test');
  });

  it('Received: the TCP-info of a client without reverse DNS is just its address literal (RFC 5321 §4.4)', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      expectReply((await rawTransaction(c, 'alice@sender.example', ['bob@example.test'], message(tag))).end!, 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1);
    // TCP-info = address-literal / ( Domain FWS address-literal )
    assert.match(mine[0]!.text, /\r\nReceived: from client\.test \((?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)* )?\[127\.0\.0\.1\]\)\r\n/, mine[0]!.text.slice(0, 300));
  });

  it('RCPT TO:<postmaster> without a domain is accepted (RFC 5321 §4.1.1.3) when the domains have a postmaster', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['postmaster'], message(tag));
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT TO:<postmaster>');
      expectReply(t.end!, 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    assert.equal(withToken(await readMailbox(dataDir, 'bob@example.test'), tag).length, 1);
  });

  it('VRFY discloses nothing: 252 for an existing and for an unknown user alike', async () => {
    const c = await openRaw(port);
    try {
      const known = await c.command('VRFY bob@example.test');
      const unknown = await c.command('VRFY nobody@example.test');
      expectReply(known, 252, '2.1.5', 'VRFY existing');
      expectReply(unknown, 252, '2.1.5', 'VRFY unknown');
      assert.equal(known.text, unknown.text, 'identical answers');
      assert.doesNotMatch(known.text, /bob/i);
    } finally {
      c.close();
    }
  });

  it('DSN: NOTIFY and ORCPT are accepted; ENVID or ORCPT carrying CR LF as xtext is refused and the session stays usable', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      expectReply(await c.command(`MAIL FROM:<alice@sender.example> RET=HDRS ENVID=${tag}`), 250, '2.1.0', 'MAIL with RET and ENVID');
      expectReply(await c.command('RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.test'), 250, '2.1.5', 'RCPT with NOTIFY and ORCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      c.write(dotStuff(message(tag)));
      expectReply(await c.reply(), 250, '2.6.0', 'end of data');

      // ENVID with an encoded CR LF: refused, nothing of it echoed as a second line.
      const envid = await c.command('MAIL FROM:<alice@sender.example> ENVID=abc+0D+0AX-Injected:+20yes');
      assert.ok(envid.code >= 500 && envid.code < 600, `ENVID with CR LF refused: ${envid.text}`);
      assert.equal(envid.lines.length, 1, 'a single reply line');
      assert.match(envid.lines[0]!, /^5\d\d 5\.\d{1,3}\.\d{1,3} /);
      assert.equal(c.pending(), '', 'no stray reply lines');
      // The session still works: a MAIL is possible (no transaction was opened) ...
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL after the refused ENVID');
      // ... and an ORCPT with an encoded CR LF is refused without harming the transaction.
      const orcpt = await c.command('RCPT TO:<bob@example.test> ORCPT=rfc822;bob@example.test+0D+0ARCPT+20TO:<carol@example.test>');
      assert.ok(orcpt.code >= 500 && orcpt.code < 600, `ORCPT with CR LF refused: ${orcpt.text}`);
      assert.match(orcpt.lines[0]!, /^5\d\d 5\.\d{1,3}\.\d{1,3} /);
      assert.equal(c.pending(), '');
      const tag2 = token();
      expectReply(await c.command('RCPT TO:<bob@example.test> NOTIFY=NEVER'), 250, '2.1.5', 'RCPT after the refused ORCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      c.write(dotStuff(message(tag2)));
      expectReply(await c.reply(), 250, '2.6.0', 'end of data');
      expectReply(await c.command('QUIT'), 221, null, 'QUIT');
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(withToken(bob, tag).length, 1);
    const carol = await readMailbox(dataDir, 'carol@example.test');
    assert.equal(carol.filter((m) => m.text.includes('X-Injected')).length, 0);
    assert.equal(bob.filter((m) => m.text.includes('X-Injected')).length, 0);
  });

  it('SMTPUTF8: a UTF-8 sender and body are stored byte-exact', async () => {
    const tag = token();
    const sender = '\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae@example.org'; // δοκιμή@example.org
    const body =
      `From: ${sender}\r\nTo: bob@example.test\r\nSubject: \u90f5\u4fbf ${tag}\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
      `\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \u2014 \u03b5\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \ud83d\udce8\r\n`;
    const c = await openRaw(port);
    try {
      expectReply(await c.command(`MAIL FROM:<${sender}> SMTPUTF8 BODY=8BITMIME`), 250, '2.1.0', 'MAIL with SMTPUTF8');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      c.write(Buffer.from(dotStuff(body), 'utf8'));
      expectReply(await c.reply(), 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    const mine = withToken(await readMailbox(dataDir, 'bob@example.test'), tag);
    assert.equal(mine.length, 1);
    const bytes = mine[0]!.bytes;
    const prefix = Buffer.from(`Return-Path: <${sender}>\r\nDelivered-To: bob@example.test\r\n`, 'utf8');
    assert.ok(bytes.subarray(0, prefix.length).equals(prefix), `UTF-8 Return-Path: ${JSON.stringify(bytes.subarray(0, 80).toString('utf8'))}`);
    const original = Buffer.from(body, 'utf8');
    assert.ok(bytes.subarray(bytes.length - original.length).equals(original), 'body byte-exact');
    // The Received header is plain ASCII whatever the client sent; Authentication-Results may name
    // the UTF-8 sender (RFC 8601 §2.2 with RFC 6532), as valid UTF-8.
    const trace = bytes.subarray(prefix.length, bytes.length - original.length);
    const received = trace.subarray(0, trace.indexOf('Authentication-Results:'));
    assert.ok(received.length > 0 && [...received].every((b) => b < 0x80), 'Received header is ASCII');
    assert.equal(Buffer.from(trace.toString('utf8'), 'utf8').compare(trace), 0, 'the trace is valid UTF-8');
  });
});

// -------------------------------------------------------------------------------------------
describe('SMTP inbound: limits and quotas', () => {
  const dataDir = makeDataDir('yubin-limits-');
  let server: RunningYubin;
  let port: number;

  before(async () => {
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    for (const user of ['bob', 'carol', 'dave', 'erin', 'frank', 'quota']) {
      cliOk(dataDir, ['user', 'add', `${user}@example.test`, '--password', 'password1']);
    }
    cliOk(dataDir, ['alias', 'add', 'all@example.test', 'bob@example.test']);
    cliOk(dataDir, ['user', 'quota', 'frank@example.test', '4K']);
    writeConfig(dataDir, `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_message_size = "64K"\nmax_recipients = 3\n`);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0']);
    port = server.ports.smtp!;
    // quota@: a 30K mailbox already holding about 16K, so that a 20 KB message does not fit now
    // but would fit an emptier mailbox (a message larger than the whole quota is another case).
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['quota@example.test'], message(token(), `${'s'.repeat(98)}\r\n`.repeat(160)));
      expectReply(t.end!, 250, '2.6.0', 'seed message for quota@');
    } finally {
      c.close();
    }
    assert.ok(userRow(dataDir, 'quota@example.test').used > 16000);
    cliOk(dataDir, ['user', 'quota', 'quota@example.test', '30K']);
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('bob with room and carol full in one transaction: 250 for bob, 452 4.2.2 for carol, bob gets it once', async () => {
    // Fill carol: a 3 KB message, then her quota is lowered below her usage with the CLI
    // while the server runs.
    const seed = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['carol@example.test'], message(seed, `${'y'.repeat(76)}\r\n`.repeat(40)));
      expectReply(t.end!, 250, '2.6.0', 'seed message for carol');
    } finally {
      c.close();
    }
    assert.ok(userRow(dataDir, 'carol@example.test').used > 2048);
    cliOk(dataDir, ['user', 'quota', 'carol@example.test', '2K']);
    const carolBefore = await readMailbox(dataDir, 'carol@example.test');

    const tag = token();
    const conn = await connectClient(port, { ignoreTLS: true });
    let info: SMTPConnection.SentMessageInfo;
    try {
      info = await sendWith(conn, { from: 'alice@sender.example', to: ['bob@example.test', 'carol@example.test'] }, message(tag));
    } finally {
      conn.quit();
    }
    assert.deepEqual(info.accepted, ['bob@example.test']);
    assert.deepEqual(info.rejected, ['carol@example.test']);
    const carolError = info.rejectedErrors?.[0];
    assert.ok(carolError, 'an error for carol');
    assert.match(String(carolError.response), /^452 4\.2\.2 .*carol@example\.test.*full/i, String(carolError.response));
    assert.equal(carolError.responseCode, 452);
    assert.match(info.response, /^250 2\.6\.0 /, info.response);

    assert.equal(withToken(await readMailbox(dataDir, 'bob@example.test'), tag).length, 1, 'bob has it once');
    const carolAfter = await readMailbox(dataDir, 'carol@example.test');
    assert.equal(withToken(carolAfter, tag).length, 0, 'carol has nothing');
    // Apart from the notice telling her what she missed (delivered whatever her quota).
    assert.equal(withoutNotices(carolAfter).length, withoutNotices(carolBefore).length);
    // the Received header names the one recipient it was delivered for
    assert.match(withToken(await readMailbox(dataDir, 'bob@example.test'), tag)[0]!.text, /for <bob@example\.test>;/);
    await assertUsageConsistent(dataDir, 'bob@example.test');
    await assertUsageConsistent(dataDir, 'carol@example.test');
  });

  it('SIZE larger than max_message_size: 552 5.3.4 at MAIL FROM', async () => {
    const c = await openRaw(port);
    try {
      expectReply(await c.command(`MAIL FROM:<alice@sender.example> SIZE=${64 * 1024 + 1}`), 552, '5.3.4', 'MAIL with SIZE over the limit');
      // exactly the limit is fine
      expectReply(await c.command(`MAIL FROM:<alice@sender.example> SIZE=${64 * 1024}`), 250, '2.1.0', 'MAIL with SIZE at the limit');
    } finally {
      c.close();
    }
  });

  it('a body over max_message_size without SIZE: 552 5.3.4 at end of data, nothing stored, session usable', async () => {
    const before = await readMailbox(dataDir, 'bob@example.test');
    const usageBefore = await usageOf(dataDir, 'bob@example.test');
    const tag = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['bob@example.test'], message(tag, `${'z'.repeat(98)}\r\n`.repeat(700)));
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT');
      expectReply(t.end!, 552, '5.3.4', 'end of data over the limit');
      // the same connection goes on
      const tag2 = token();
      const ok = await rawTransaction(c, 'alice@sender.example', ['bob@example.test'], message(tag2));
      expectReply(ok.end!, 250, '2.6.0', 'next message on the same connection');
    } finally {
      c.close();
    }
    const afterwards = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(withToken(afterwards, tag).length, 0, 'the big one is not stored');
    assert.equal(afterwards.length, before.length + 1);
    const usage = await usageOf(dataDir, 'bob@example.test');
    assert.equal(usage.kept.messages, usageBefore.kept.messages + 1);
    await assertUsageConsistent(dataDir, 'bob@example.test');
  });

  it('quota at RCPT: SIZE=20000 for a 30K mailbox holding 16K gets 452 4.2.2 "mailbox ... full"', async () => {
    const c = await openRaw(port);
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example> SIZE=20000'), 250, '2.1.0', 'MAIL with SIZE');
      const r = await c.command('RCPT TO:<quota@example.test>');
      expectReply(r, 452, '4.2.2', 'RCPT over quota');
      assert.match(r.text, /mailbox of <quota@example\.test> is full/i);
      // a recipient with room in the same transaction is unaffected
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT with room');
      expectReply(await c.command('RSET'), 250, '2.0.0', 'RSET');
      // a small declared size fits
      expectReply(await c.command('MAIL FROM:<alice@sender.example> SIZE=2000'), 250, '2.1.0', 'MAIL small SIZE');
      expectReply(await c.command('RCPT TO:<quota@example.test>'), 250, '2.1.5', 'RCPT that fits');
    } finally {
      c.close();
    }
  });

  it('quota at end of data: no SIZE, RCPT 250, 20 KB body gets 452 4.2.2, nothing stored, usage unchanged', async () => {
    const beforeUids = new Set((await readMailbox(dataDir, 'quota@example.test')).map((m) => m.uid));
    const tag = token();
    const c = await openRaw(port);
    try {
      const t = await rawTransaction(c, 'alice@sender.example', ['quota@example.test'], message(tag, `${'q'.repeat(98)}\r\n`.repeat(200)));
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT without SIZE');
      expectReply(t.end!, 452, '4.2.2', 'end of data over quota');
      assert.match(t.end!.text, /quota@example\.test.*full/i);
      // the session is still usable
      expectReply(await c.command('NOOP'), 250, '2.0.0', 'NOOP');
    } finally {
      c.close();
    }
    // Yubin's own digests of missed mail land in the INBOX whatever the quota, written in the
    // background: once usage and the mailbox agree, the only new messages are such notices, and
    // usage is exactly the sum of what is stored.
    const settled = await waitFor('usage to agree with the mailbox', async () => {
      const usage = await usageOf(dataDir, 'quota@example.test');
      const after = await readMailbox(dataDir, 'quota@example.test');
      const bytes = after.reduce((sum, m) => sum + m.size, 0);
      return usage.kept.bytes === bytes && usage.kept.messages === after.length && usage.summed.bytes === bytes ? after : null;
    });
    assert.equal(withToken(settled, tag).length, 0, 'nothing stored');
    const arrived = settled.filter((m) => !beforeUids.has(m.uid));
    assert.ok(arrived.every((m) => /^Auto-Submitted: auto-generated/m.test(m.text)), 'nothing but notices arrived');
  });

  it('over_quota reject, set with the CLI while the server runs: 552 5.2.2 at RCPT and at end of data', async () => {
    cliOk(dataDir, ['user', 'set', 'quota@example.test', 'over_quota', 'reject']);
    try {
      const usageBefore = await usageOf(dataDir, 'quota@example.test');
      const tag = token();
      const c = await openRaw(port);
      try {
        expectReply(await c.command('MAIL FROM:<alice@sender.example> SIZE=20000'), 250, '2.1.0', 'MAIL with SIZE');
        const rcpt = await c.command('RCPT TO:<quota@example.test>');
        expectReply(rcpt, 552, '5.2.2', 'RCPT over quota with reject');
        assert.match(rcpt.text, /quota@example\.test.*full/i);
        expectReply(await c.command('RSET'), 250, '2.0.0', 'RSET');
        const t = await rawTransaction(c, 'alice@sender.example', ['quota@example.test'], message(tag, `${'q'.repeat(98)}\r\n`.repeat(200)));
        if (t.rcpts[0]!.code === 250) {
          expectReply(t.end!, 552, '5.2.2', 'end of data over quota with reject');
        } else {
          // the server remembers the size of the message it refused before and refuses at RCPT
          expectReply(t.rcpts[0]!, 552, '5.2.2', 'RCPT without SIZE, after an earlier refusal');
        }
      } finally {
        c.close();
      }
      assert.equal(withToken(await readMailbox(dataDir, 'quota@example.test'), tag).length, 0);
      assert.deepEqual(await usageOf(dataDir, 'quota@example.test'), usageBefore);
    } finally {
      cliOk(dataDir, ['user', 'set', 'quota@example.test', 'over_quota', 'inherit']);
    }
    // back to the default, again without a restart
    const c = await openRaw(port);
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example> SIZE=20000'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('RCPT TO:<quota@example.test>'), 452, '4.2.2', 'RCPT after over_quota inherit');
    } finally {
      c.close();
    }
  });

  it('a quota raised with the CLI while the server runs applies to the next message', async () => {
    cliOk(dataDir, ['user', 'quota', 'quota@example.test', '100K']);
    try {
      const tag = token();
      const c = await openRaw(port);
      try {
        expectReply(await c.command('MAIL FROM:<alice@sender.example> SIZE=20000'), 250, '2.1.0', 'MAIL');
        expectReply(await c.command('RCPT TO:<quota@example.test>'), 250, '2.1.5', 'RCPT after the quota was raised');
        expectReply(await c.command('DATA'), 354, null, 'DATA');
        c.write(dotStuff(message(tag, `${'q'.repeat(98)}\r\n`.repeat(190))));
        expectReply(await c.reply(), 250, '2.6.0', 'end of data');
      } finally {
        c.close();
      }
      assert.equal(withToken(await readMailbox(dataDir, 'quota@example.test'), tag).length, 1);
      await assertUsageConsistent(dataDir, 'quota@example.test');
    } finally {
      cliOk(dataDir, ['user', 'quota', 'quota@example.test', '10K']);
    }
  });

  it('an over-quota refusal at end of data leaves no message file behind', async () => {
    const filesBefore = blobFiles(dataDir);
    const c = await openRaw(port);
    try {
      // frank: empty mailbox, 4K quota; without SIZE the RCPT passes, but the 20 KB message is
      // larger than the whole mailbox: refused for good at end of data (552 5.2.3) ...
      const big = message(token(), `${'q'.repeat(98)}\r\n`.repeat(200));
      const t = await rawTransaction(c, 'alice@sender.example', ['frank@example.test'], big);
      expectReply(t.rcpts[0]!, 250, '2.1.5', 'RCPT');
      expectReply(t.end!, 552, '5.2.3', 'end of data: larger than the mailbox');
      // ... and a retry of that message is refused at RCPT already.
      const again = await rawTransaction(c, 'alice@sender.example', ['frank@example.test'], big);
      expectReply(again.rcpts[0]!, 552, '5.2.3', 'retry: RCPT refused');
    } finally {
      c.close();
    }
    assert.deepEqual(withoutNotices(await readMailbox(dataDir, 'frank@example.test')), [], 'nothing stored but the notice of missed mail');
    assert.equal(blobFiles(dataDir), filesBefore, 'no new message files for refused messages');
  });

  it('a recipient found full only at end of data does not hold back the others when the sender retries', async () => {
    // erin: 4K of room left; an 8K message without SIZE passes RCPT but not the end-of-data check.
    const used = userRow(dataDir, 'erin@example.test').used;
    cliOk(dataDir, ['user', 'quota', 'erin@example.test', String(used + 4096)]);
    try {
      const tag = token();
      const data = message(tag, `${'r'.repeat(98)}\r\n`.repeat(80));
      const c = await openRaw(port);
      try {
        const first = await rawTransaction(c, 'alice@sender.example', ['dave@example.test', 'erin@example.test'], data);
        expectReply(first.rcpts[0]!, 250, '2.1.5', 'RCPT dave');
        expectReply(first.rcpts[1]!, 250, '2.1.5', 'RCPT erin (room left, size unknown)');
        expectReply(first.end!, 452, '4.2.2', 'first attempt: erin is found full at end of data');
        assert.equal(withToken(await readMailbox(dataDir, 'dave@example.test'), tag).length, 0, 'all or nothing: dave has nothing yet');
        // The sending server retries the same transaction.
        const retry = await rawTransaction(c, 'alice@sender.example', ['dave@example.test', 'erin@example.test'], data);
        expectReply(retry.rcpts[0]!, 250, '2.1.5', 'retry: RCPT dave');
        if (retry.end) assert.notEqual(retry.end.code, 452, `retry: not deferred again for everyone: ${retry.end.text}`);
        // The remembered size is that sender's: a small message from someone else, also
        // without SIZE, still fits erin's remaining room and is taken.
        const small = token();
        const other = await rawTransaction(c, 'carol@elsewhere.example', ['erin@example.test'], message(small, 'short\r\n'));
        expectReply(other.rcpts[0]!, 250, '2.1.5', 'another sender without SIZE');
        expectReply(other.end!, 250, '2.6.0', 'another sender: stored');
        assert.equal(withToken(await readMailbox(dataDir, 'erin@example.test'), small).length, 1, "erin gets the other sender's small message");
      } finally {
        c.close();
      }
      assert.equal(withToken(await readMailbox(dataDir, 'dave@example.test'), tag).length, 1, 'dave gets the message on the retry');
      assert.equal(withToken(await readMailbox(dataDir, 'erin@example.test'), tag).length, 0, 'erin does not');
    } finally {
      cliOk(dataDir, ['user', 'quota', 'erin@example.test', 'inherit']);
    }
  });

  it('max_recipients = 3: the 4th RCPT gets 452 4.5.3, the message goes to the first three', async () => {
    const tag = token();
    const c = await openRaw(port);
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT 1');
      expectReply(await c.command('RCPT TO:<dave@example.test>'), 250, '2.1.5', 'RCPT 2');
      expectReply(await c.command('RCPT TO:<erin@example.test>'), 250, '2.1.5', 'RCPT 3');
      expectReply(await c.command('RCPT TO:<all@example.test>'), 452, '4.5.3', 'RCPT 4');
      // a repeated recipient is not a new one
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'repeated RCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      c.write(dotStuff(message(tag)));
      expectReply(await c.reply(), 250, '2.6.0', 'end of data');
    } finally {
      c.close();
    }
    for (const user of ['bob', 'dave', 'erin']) {
      assert.equal(withToken(await readMailbox(dataDir, `${user}@example.test`), tag).length, 1, `${user} has it once`);
    }
  });
});

// -------------------------------------------------------------------------------------------
describe('SMTP inbound: connections per IP', () => {
  const dataDir = makeDataDir('yubin-perip-');
  let server: RunningYubin;
  let port: number;

  before(async () => {
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    cliOk(dataDir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
    writeConfig(dataDir, `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_connections_per_ip = 2\n`);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0']);
    port = server.ports.smtp!;
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('max_connections_per_ip = 2: the third concurrent connection gets 421 4.7.0 and is closed; a freed slot is reusable', async () => {
    const first = await openRaw(port);
    const second = await openRaw(port);
    try {
      const third = await RawSmtp.connect(port);
      try {
        const r = await third.reply();
        expectReply(r, 421, '4.7.0', 'third connection');
        assert.equal(await third.waitClosed(5000), true, 'the third connection is closed');
      } finally {
        third.close();
      }
      // the two admitted sessions still work
      expectReply(await first.command('NOOP'), 250, '2.0.0', 'first still works');
      expectReply(await second.command('NOOP'), 250, '2.0.0', 'second still works');
      expectReply(await second.command('QUIT'), 221, null, 'QUIT');
      await second.waitClosed(5000);
      // once the slot is freed a new connection is welcome again (the server may need a moment)
      let greeted: Reply | null = null;
      for (let attempt = 0; attempt < 20 && !greeted; attempt++) {
        const again = await RawSmtp.connect(port);
        const r = await again.reply();
        if (r.code === 220) greeted = r;
        again.close();
        if (!greeted) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(greeted, 'a new connection is greeted once a slot is free');
    } finally {
      first.close();
      second.close();
    }
  });
});
