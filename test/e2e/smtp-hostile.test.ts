// The receiving server (MX) against hostile or broken input, over raw sockets so that the exact
// bytes reach the server: pipelining, SMTP smuggling, STARTTLS command injection, over-long lines,
// MIME bombs, slow senders, huge bodies and garbage. Each refusal is checked on the wire (reply
// code and enhanced status code), each "nothing stored" against the store, and after each attack
// the server must still serve the next client.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { cliOk, makeDataDir, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, usageOf } from '../helpers/mailbox.js';
import { RawSmtp } from '../helpers/smtp-raw.js';

const HOSTNAME = 'mx.yubin.test';

type Reply = Awaited<ReturnType<RawSmtp['reply']>>;

function token(): string {
  return crypto.randomBytes(6).toString('hex');
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Asserts the reply code and that every line of the reply carries the enhanced status code. */
function expectReply(r: Reply, code: number, enhanced: string | null, what: string): void {
  assert.equal(r.code, code, `${what}: expected ${code}, got ${JSON.stringify(r.text)}`);
  if (enhanced !== null) {
    for (const line of r.lines) {
      assert.match(line, new RegExp(`^${code}[ -]${escapeRe(enhanced)}( |$)`), `${what}: expected ${code} ${enhanced}, got ${JSON.stringify(r.text)}`);
    }
  }
}

async function openRaw(port: number, helo: string | null = 'client.test'): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port);
  expectReply(await c.reply(), 220, null, 'greeting');
  if (helo !== null) expectReply(await c.command(`EHLO ${helo}`), 250, null, 'EHLO');
  return c;
}

/** Asserts that no further reply arrives within `ms` (a second reply to one command would show up here). */
async function expectSilence(c: RawSmtp, ms = 300): Promise<void> {
  await sleep(ms);
  assert.equal(c.pending(), '', `no unexpected reply: ${JSON.stringify(c.pending())}`);
}

/** A simple, well-formed message with CRLF line ends. */
function message(tag: string, extraHeaders = '', body = 'hello\r\n'): string {
  return `From: alice@sender.example\r\nTo: bob@example.test\r\nSubject: test ${tag}\r\n${extraHeaders}\r\n${body}`;
}

function dotStuff(data: string): string {
  const stuffed = data.replace(/(^|\r\n)\./g, '$1..');
  return stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n';
}

/** MAIL, RCPT bob, DATA, the message, end of data: returns the reply to the end of data. */
async function deliver(c: RawSmtp, data: string, rcpt = 'bob@example.test'): Promise<Reply> {
  expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
  expectReply(await c.command(`RCPT TO:<${rcpt}>`), 250, '2.1.5', 'RCPT');
  expectReply(await c.command('DATA'), 354, null, 'DATA');
  c.write(dotStuff(data));
  return c.reply(30_000);
}

/** The server still accepts and stores a normal message on a new connection. */
async function assertStillServing(port: number, dataDir: string): Promise<void> {
  const tag = token();
  const c = await openRaw(port);
  try {
    expectReply(await deliver(c, message(tag)), 250, '2.6.0', 'a normal message afterwards');
  } finally {
    c.close();
  }
  const stored = (await readMailbox(dataDir, 'bob@example.test')).filter((m) => m.text.includes(tag));
  assert.equal(stored.length, 1, 'the normal message is stored once');
}

/** RFC 5322 line ends: every bare CR and bare LF becomes CRLF (an independent statement of the rule). */
function crlfNormalized(text: string): string {
  return text.replace(/\r\n|\r|\n/g, '\r\n');
}

function nestedMime(levels: number): string {
  // Entity depth: the message is level 1, each multipart adds one level around its child.
  let inner = 'Content-Type: text/plain\r\n\r\nleaf\r\n';
  for (let n = 2; n <= levels; n++) inner = `Content-Type: multipart/mixed; boundary="b${n}"\r\n\r\n--b${n}\r\n${inner}--b${n}--\r\n`;
  return inner;
}

function manyParts(count: number): string {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push('--p\r\n\r\nx\r\n');
  return `Content-Type: multipart/mixed; boundary="p"\r\n\r\n${parts.join('')}--p--\r\n`;
}

// -------------------------------------------------------------------------------------------
describe('SMTP hostile input', () => {
  const dataDir = makeDataDir('yubin-hostile-');
  let server: RunningYubin;
  let port: number;

  before(async () => {
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    cliOk(dataDir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
    cliOk(dataDir, ['user', 'add', 'carol@example.test', '--password', 'password1']);
    // 256K leaves room for the 10,000-part message, whose parts are ~10 bytes each.
    writeConfig(
      dataDir,
      `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_message_size = "256K"\ndata_timeout = "2s"\nmax_header_size = "8K"\n`,
    );
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0']);
    port = server.ports.smtp!;
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('PIPELINING: MAIL, RCPT, RCPT(unknown), DATA in one write get their replies in order', async () => {
    const before = (await readMailbox(dataDir, 'bob@example.test')).length;
    const tag1 = token();
    const tag2 = token();
    const c = await openRaw(port);
    try {
      c.write('MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n');
      expectReply(await c.reply(), 250, '2.1.0', 'pipelined MAIL');
      expectReply(await c.reply(), 250, '2.1.5', 'pipelined RCPT bob');
      expectReply(await c.reply(), 550, '5.1.1', 'pipelined RCPT unknown');
      expectReply(await c.reply(), 354, null, 'pipelined DATA');
      // RFC 2920: message content may be the first "command" of a group, followed by the next envelope.
      c.write(dotStuff(message(tag1)) + 'MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
      expectReply(await c.reply(), 250, '2.6.0', 'end of data 1');
      expectReply(await c.reply(), 250, '2.1.0', 'MAIL 2');
      expectReply(await c.reply(), 250, '2.1.5', 'RCPT 2');
      expectReply(await c.reply(), 354, null, 'DATA 2');
      c.write(dotStuff(message(tag2)) + 'QUIT\r\n');
      expectReply(await c.reply(), 250, '2.6.0', 'end of data 2');
      expectReply(await c.reply(), 221, null, 'QUIT');
      assert.equal(await c.waitClosed(5000), true);
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.filter((m) => m.text.includes(tag1)).length, 1, 'first message stored once');
    assert.equal(bob.filter((m) => m.text.includes(tag2)).length, 1, 'second message stored once');
    assert.equal(bob.length, before + 2);
  });

  const variants: Array<[string, string]> = [
    ['\\n.\\n', '\n.\n'],
    ['\\r.\\r', '\r.\r'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r\\n.\\n', '\r\n.\n'],
    ['\\r\\r\\n.\\r\\r\\n', '\r\r\n.\r\r\n'],
  ];
  for (const [name, variant] of variants) {
    it(`SMTP smuggling with ${name}: one message, the smuggled commands stay data`, async () => {
      const bobBefore = await readMailbox(dataDir, 'bob@example.test');
      const carolBefore = await readMailbox(dataDir, 'carol@example.test');
      const body =
        'Subject: a\r\n\r\nfirst' +
        variant +
        'MAIL FROM:<evil@x.org>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n' +
        '\r\n.\r\n';
      const c = await openRaw(port);
      try {
        expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
        expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT');
        expectReply(await c.command('DATA'), 354, null, 'DATA');
        c.write(Buffer.from(body, 'latin1'));
        expectReply(await c.reply(), 250, '2.6.0', 'end of data');
        await expectSilence(c); // exactly one reply: no 250/250/354 for smuggled commands
        assert.equal(c.closed, false, 'the session is still open');
        // the session goes on normally
        const tag = token();
        expectReply(await deliver(c, message(tag)), 250, '2.6.0', 'the next transaction');
        await expectSilence(c, 100);
      } finally {
        c.close();
      }
      const bobAfter = await readMailbox(dataDir, 'bob@example.test');
      assert.equal(bobAfter.length, bobBefore.length + 2, 'bob: the smuggling message and the next one');
      const smuggling = bobAfter.filter((m) => m.text.includes('first') && m.text.includes('MAIL FROM:<evil@x.org>') && !bobBefore.some((b) => b.uid === m.uid));
      assert.equal(smuggling.length, 1, 'exactly one new message carries the smuggling attempt as data');
      const stored = smuggling[0]!.text;
      assert.match(stored, /\r\n\r\nsmuggled\r\n/, 'the smuggled text is data of the first message');
      // Stored with CRLF only, everything after the trace header exactly as sent, bare CR/LF normalised.
      const expected = crlfNormalized(body.slice(0, -3)); // without the terminating ".\r\n"
      assert.ok(stored.endsWith(expected), `stored content normalised to CRLF: ${JSON.stringify(stored.slice(-220))}`);
      assert.doesNotMatch(stored.replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF left');
      const carolAfter = await readMailbox(dataDir, 'carol@example.test');
      assert.equal(carolAfter.length, carolBefore.length, 'carol received nothing');
      assert.equal(carolAfter.length, 0);
    });
  }

  it('STARTTLS injection: plaintext pipelined after STARTTLS is discarded', async () => {
    const c = await openRaw(port);
    try {
      c.write('STARTTLS\r\nMAIL FROM:<evil@x.org>\r\n');
      expectReply(await c.reply(), 220, '2.0.0', 'STARTTLS');
      await c.startTls();
      await expectSilence(c); // nothing answers the injected command inside TLS
      // RFC 3207 §4.2: state from before TLS is forgotten, and the injected MAIL never ran.
      const ehlo = await c.command('EHLO client.test');
      expectReply(ehlo, 250, null, 'EHLO inside TLS');
      assert.match(ehlo.lines[0]!, new RegExp(`^250-${escapeRe(HOSTNAME)}`), `the reply is to EHLO: ${ehlo.text}`);
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 503, '5.5.1', 'RCPT without MAIL: no injected transaction exists');
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'own MAIL (not 503 nested MAIL)');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'own RCPT');
      expectReply(await c.command('RSET'), 250, '2.0.0', 'RSET');
    } finally {
      c.close();
    }
  });

  it('STARTTLS injection of a whole transaction: nothing of it runs or is stored', async () => {
    const bobBefore = (await readMailbox(dataDir, 'bob@example.test')).length;
    const c = await openRaw(port);
    try {
      c.write(
        'STARTTLS\r\nEHLO evil.test\r\nMAIL FROM:<evil@x.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: injected\r\n\r\ninjected\r\n.\r\n',
      );
      expectReply(await c.reply(), 220, '2.0.0', 'STARTTLS');
      await c.startTls();
      await expectSilence(c);
      // no EHLO yet inside TLS: the injected EHLO was forgotten too
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 503, '5.5.1', 'MAIL before EHLO inside TLS');
      expectReply(await c.command('EHLO client.test'), 250, null, 'EHLO');
      expectReply(await c.command('DATA'), 503, '5.5.1', 'DATA without a transaction');
    } finally {
      c.close();
    }
    await sleep(200);
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.length, bobBefore, 'nothing stored');
    assert.equal(bob.filter((m) => m.text.includes('injected')).length, 0);
  });

  it('a command line longer than max_line_length: refused and closed, the server stays up', async () => {
    for (const ending of ['', '\r\n']) {
      const c = await openRaw(port, ending === '' ? null : 'client.test');
      try {
        c.write('MAIL FROM:<' + 'a'.repeat(10 * 1024) + '@x.org>' + ending);
        let r: Reply | null = null;
        try {
          r = await c.reply(5000);
        } catch {
          r = null; // closed without a reply is acceptable
        }
        if (r) {
          assert.ok(r.code === 500 || r.code === 421, `over-long line answered 500 or 421: ${r.text}`);
          assert.match(r.lines.at(-1)!, /^\d{3} [45]\.\d{1,3}\.\d{1,3} /, `with an enhanced code: ${r.text}`);
        }
        assert.equal(await c.waitClosed(5000), true, 'the connection is closed');
      } finally {
        c.close();
      }
    }
    assert.equal(server.proc.exitCode, null, 'the process is still running');
    await assertStillServing(port, dataDir);
  });

  it('MIME nesting 101 deep: 554 5.6.0 at end of data, nothing stored; 100 deep is accepted', async () => {
    const before = (await readMailbox(dataDir, 'bob@example.test')).length;
    const tooDeep = token();
    const deepOk = token();
    const c = await openRaw(port);
    try {
      const r = await deliver(c, `Subject: deep ${tooDeep}\r\nMIME-Version: 1.0\r\n${nestedMime(101)}`);
      expectReply(r, 554, '5.6.0', 'nesting 101 deep');
      expectReply(await deliver(c, `Subject: deep ${deepOk}\r\nMIME-Version: 1.0\r\n${nestedMime(100)}`), 250, '2.6.0', 'nesting 100 deep');
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.filter((m) => m.text.includes(tooDeep)).length, 0, 'too deep: not stored');
    assert.equal(bob.filter((m) => m.text.includes(deepOk)).length, 1, 'at the limit: stored');
    assert.equal(bob.length, before + 1);
  });

  it('10,001 MIME parts: 554 5.6.0 at end of data, nothing stored; 9,999 parts are accepted', async () => {
    const before = (await readMailbox(dataDir, 'bob@example.test')).length;
    const tooMany = token();
    const fine = token();
    const c = await openRaw(port);
    try {
      expectReply(await deliver(c, `Subject: parts ${tooMany}\r\nMIME-Version: 1.0\r\n${manyParts(10_001)}`), 554, '5.6.0', '10,001 parts');
      expectReply(await deliver(c, `Subject: parts ${fine}\r\nMIME-Version: 1.0\r\n${manyParts(9_999)}`), 250, '2.6.0', '9,999 parts');
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.filter((m) => m.text.includes(tooMany)).length, 0);
    assert.equal(bob.filter((m) => m.text.includes(fine)).length, 1);
    assert.equal(bob.length, before + 1);
  });

  it('a header section over max_header_size (8K): 552 5.3.4, in the message or in a MIME part; nothing stored', async () => {
    const before = await readMailbox(dataDir, 'bob@example.test');
    const usageBefore = await usageOf(dataDir, 'bob@example.test');
    const big = token();
    const bigPart = token();
    const fine = token();
    const filler = (bytes: number) => {
      let out = '';
      for (let i = 0; out.length < bytes; i++) out += `X-Filler-${i}: ${'f'.repeat(60)}\r\n`;
      return out;
    };
    const c = await openRaw(port);
    try {
      expectReply(await deliver(c, message(big, filler(9 * 1024))), 552, '5.3.4', 'top-level header of 9K');
      const part =
        `Subject: part ${bigPart}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="h"\r\n\r\n` +
        `--h\r\n${filler(9 * 1024)}\r\nbody\r\n--h--\r\n`;
      expectReply(await deliver(c, part), 552, '5.3.4', 'MIME part header of 9K');
      expectReply(await deliver(c, message(fine, filler(7 * 1024))), 250, '2.6.0', 'header of 7K');
    } finally {
      c.close();
    }
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.filter((m) => m.text.includes(big) || m.text.includes(bigPart)).length, 0, 'refused ones not stored');
    assert.equal(bob.filter((m) => m.text.includes(fine)).length, 1);
    assert.equal(bob.length, before.length + 1);
    const usage = await usageOf(dataDir, 'bob@example.test');
    assert.equal(usage.kept.messages, usageBefore.kept.messages + 1);
    assert.deepEqual(usage.kept, usage.summed);
  });

  it('data timeout (2s): a client that trickles data after DATA gets 421 4.4.2 and is closed; nothing stored', async () => {
    const before = (await readMailbox(dataDir, 'bob@example.test')).length;
    const tag = token();
    const c = await openRaw(port);
    let trickle: NodeJS.Timeout | undefined;
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      const started = Date.now();
      c.write(`Subject: slow ${tag}\r\n\r\npartial`);
      // one byte every 300 ms: never idle, never done
      trickle = setInterval(() => {
        if (!c.closed) c.write('x');
      }, 300);
      const r = await c.reply(8000);
      const elapsed = Date.now() - started;
      expectReply(r, 421, '4.4.2', 'data timeout');
      assert.ok(elapsed >= 1500, `not before the configured 2 s (${elapsed} ms)`);
      assert.ok(elapsed <= 5000, `within ~5 s (${elapsed} ms)`);
      assert.equal(await c.waitClosed(5000), true, 'closed after the 421');
    } finally {
      clearInterval(trickle);
      c.close();
    }
    await sleep(200);
    const bob = await readMailbox(dataDir, 'bob@example.test');
    assert.equal(bob.filter((m) => m.text.includes(tag)).length, 0, 'nothing stored');
    assert.equal(bob.length, before);
    await assertStillServing(port, dataDir);
  });

  it('a client that stalls after DATA without sending anything gets 421 4.4.2 too', async () => {
    const c = await openRaw(port);
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 250, '2.1.5', 'RCPT');
      expectReply(await c.command('DATA'), 354, null, 'DATA');
      c.write('Subject: stalled\r\n\r\nand then nothing');
      expectReply(await c.reply(8000), 421, '4.4.2', 'data timeout');
      assert.equal(await c.waitClosed(5000), true);
    } finally {
      c.close();
    }
  });

  it('garbage bytes and unknown commands get 500 5.5.2, bad sequences 503; the session stays usable', async () => {
    const c = await openRaw(port, null);
    try {
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 503, '5.5.1', 'MAIL before EHLO');
      c.write(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x20, 0x67, 0x61, 0x72, 0x62, 0x61, 0x67, 0x65, 0x0d, 0x0a]));
      expectReply(await c.reply(), 500, '5.5.2', 'binary garbage');
      expectReply(await c.command('XYZZY plugh'), 500, '5.5.2', 'unknown command');
      expectReply(await c.command(''), 500, '5.5.2', 'empty line');
      expectReply(await c.command('EHLO client.test'), 250, null, 'EHLO');
      expectReply(await c.command('RCPT TO:<bob@example.test>'), 503, '5.5.1', 'RCPT before MAIL');
      expectReply(await c.command('DATA'), 503, '5.5.1', 'DATA before MAIL');
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 250, '2.1.0', 'MAIL');
      expectReply(await c.command('MAIL FROM:<alice@sender.example>'), 503, '5.5.1', 'nested MAIL');
      const nul = await c.command('RCPT TO:<bob\u0000@example.test>');
      assert.equal(nul.code, 501, `NUL in an address: ${nul.text}`);
      assert.match(nul.lines[0]!, /^501 5\.\d{1,3}\.\d{1,3} /);
      const junkAddr = await c.command('RCPT TO:bob@example.test> <<>>');
      assert.equal(junkAddr.code, 501, `malformed path: ${junkAddr.text}`);
      expectReply(await c.command('DATA'), 503, '5.5.1', 'DATA without an accepted recipient');
      expectReply(await c.command('RSET'), 250, '2.0.0', 'RSET');
      const tag = token();
      expectReply(await deliver(c, message(tag)), 250, '2.6.0', 'a message after all that');
      assert.equal((await readMailbox(dataDir, 'bob@example.test')).filter((m) => m.text.includes(tag)).length, 1);
    } finally {
      c.close();
    }
  });

  it('ten unknown commands in a row: 421 and the connection is closed; an HTTP request is refused', async () => {
    const c = await openRaw(port);
    try {
      const codes: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await c.command(`BOGUS${i}`);
        codes.push(r.code);
        if (r.code === 421) break;
      }
      assert.deepEqual(codes.slice(0, -1), Array(codes.length - 1).fill(500) as number[]);
      assert.equal(codes.at(-1), 421, `the last one closes: ${codes.join(',')}`);
      assert.equal(await c.waitClosed(5000), true);
    } finally {
      c.close();
    }
    const h = await RawSmtp.connect(port);
    try {
      await h.reply(); // greeting
      const r = await h.command('POST / HTTP/1.1');
      assert.equal(r.code, 421, `HTTP refused: ${r.text}`);
      assert.equal(await h.waitClosed(5000), true);
    } finally {
      h.close();
    }
    await assertStillServing(port, dataDir);
  });

  it('a client that talks before the greeting gets 421 and is closed ("you talk too soon")', async () => {
    // Sent as soon as the connection is up, before the 220.
    const early = await new Promise<{ got: string; closed: boolean }>((resolve) => {
      let got = '';
      const socket = net.connect(port, '127.0.0.1', () => socket.write('EHLO early.test\r\nMAIL FROM:<a@x.org>\r\n'));
      const timer = setTimeout(() => {
        socket.destroy();
        resolve({ got, closed: false });
      }, 5000);
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (got += d));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ got, closed: true });
      });
    });
    assert.match(early.got, /^421 /, `refused: ${JSON.stringify(early.got)}`);
    assert.doesNotMatch(early.got, /^2\d\d[ -]/m, `nothing the early talker sent was accepted: ${JSON.stringify(early.got)}`);
    assert.equal(early.closed, true, 'closed by the server');
    assert.equal(server.proc.exitCode, null);
  });
});

// -------------------------------------------------------------------------------------------
describe('SMTP hostile input: a huge body', () => {
  const dataDir = makeDataDir('yubin-hugebody-');
  let server: RunningYubin;
  let port: number;

  before(async () => {
    cliOk(dataDir, ['domain', 'add', 'example.test']);
    cliOk(dataDir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
    writeConfig(dataDir, `hostname = "${HOSTNAME}"\n\n[smtp]\nmax_message_size = "64K"\n`);
    server = await startYubin(dataDir, ['--smtp', '127.0.0.1:0']);
    port = server.ports.smtp!;
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function memory(field: 'VmRSS' | 'VmHWM'): number | null {
    try {
      const status = fs.readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
      const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
      return m ? Number(m[1]) * 1024 : null;
    } catch {
      return null; // not Linux: the reply is still checked
    }
  }

  it('a 96 MB body with max_message_size 64K: 552 5.3.4, nothing stored, memory stays bounded, server keeps serving', async () => {
    const bodyMb = 96;
    const sock = net.connect(port, '127.0.0.1');
    sock.setEncoding('latin1');
    let received = '';
    sock.on('data', (d: string) => (received += d));
    sock.on('error', () => undefined);
    const waitFor = async (re: RegExp, ms = 30_000): Promise<string> => {
      const deadline = Date.now() + ms;
      while (!re.test(received)) {
        if (Date.now() > deadline) throw new Error(`no ${re} within ${ms} ms; got ${JSON.stringify(received)}`);
        await sleep(10);
      }
      const m = re.exec(received)![0];
      received = received.slice(received.indexOf(m) + m.length);
      return m;
    };
    try {
      await waitFor(/^220 [^\r\n]*\r\n/m);
      sock.write('EHLO client.test\r\n');
      await waitFor(/^250 [^\r\n]*\r\n/m);
      sock.write('MAIL FROM:<alice@sender.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n');
      await waitFor(/^250 2\.1\.0[^\r\n]*\r\n/m);
      await waitFor(/^250 2\.1\.5[^\r\n]*\r\n/m);
      await waitFor(/^354 [^\r\n]*\r\n/m);
      const rssBefore = memory('VmRSS');
      const line = Buffer.from('z'.repeat(998) + '\r\n');
      const megabyte = Buffer.concat(Array<Buffer>(1024).fill(line));
      sock.write('Subject: huge\r\n\r\n');
      for (let i = 0; i < bodyMb; i++) {
        if (!sock.write(megabyte)) await new Promise((resolve) => sock.once('drain', resolve));
      }
      sock.write('.\r\n');
      const reply = await waitFor(/^\d{3} [^\r\n]*\r\n/m, 60_000);
      assert.match(reply, /^552 5\.3\.4 /, `huge body refused: ${JSON.stringify(reply)}`);
      const peak = memory('VmHWM');
      if (rssBefore !== null && peak !== null) {
        const growth = peak - rssBefore;
        assert.ok(growth < (bodyMb * 1024 * 1024 * 2) / 3, `server memory grew by ${Math.round(growth / 1e6)} MB for a ${bodyMb} MB body`);
      }
      // the same session goes on
      sock.write('NOOP\r\n');
      assert.match(await waitFor(/^\d{3} [^\r\n]*\r\n/m), /^250 /);
    } finally {
      sock.destroy();
    }
    assert.equal(server.proc.exitCode, null, 'still running');
    assert.deepEqual(await readMailbox(dataDir, 'bob@example.test'), [], 'nothing stored');
    const usage = await usageOf(dataDir, 'bob@example.test');
    assert.deepEqual(usage.kept, { bytes: 0, messages: 0 });
    await assertStillServing(port, dataDir);
  });
});
