// A message refused as too large: the SMTP client records the SIZE limit the refusing server
// announced (RFC 1870) on X.3.4 refusals only, and the bounce's human-readable part states that
// limit and suggests a file-transfer link; with no known limit it names no number.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { SmtpClient, type Destination, type OutboundMessage } from '../../src/queue/smtp-client.js';
import { buildDsn, type DsnRecipient } from '../../src/dsn/report.js';

interface PeerOptions {
  /** Announced SIZE limit; undefined: no SIZE extension. */
  size?: number;
  rcptReply?: (address: string) => { code: number; message: string } | null;
  dataReply?: { code: number; message: string };
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(closers.map((close) => close()));
});

function withCode(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

async function startPeer(options: PeerOptions): Promise<number> {
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    ...(options.size !== undefined ? { size: options.size } : {}),
    onRcptTo(address, _session, callback) {
      const r = options.rcptReply?.(address.address) ?? null;
      if (r) return callback(withCode(r.code, r.message));
      callback();
    },
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => (options.dataReply ? callback(withCode(options.dataReply.code, options.dataReply.message)) : callback()));
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.server.address() as AddressInfo).port;
}

function client(): SmtpClient {
  const c = new SmtpClient({
    heloName: 'client.test',
    connectTimeoutSeconds: 10,
    commandTimeoutSeconds: 10,
    maxPerDestination: 2,
    maxConnections: 4,
    connectionReuse: false,
    maxMessagesPerConnection: 1,
  });
  closers.unshift(() => c.close());
  return c;
}

function message(bodyBytes: number, recipients = ['bob@example.com']): OutboundMessage {
  return {
    from: 'alice@example.org',
    recipients: recipients.map((address) => ({ address, notify: null, orcpt: null })),
    content: Buffer.concat([Buffer.from('Subject: drawings\r\n\r\n'), Buffer.alloc(bodyBytes, 'a'), Buffer.from('\r\n')]),
    envid: null,
    ret: null,
    smtpUtf8: false,
    eightBit: false,
  };
}

const dest = (port: number): Destination[] => [{ host: 'mx.example.com', preference: 10, addresses: ['127.0.0.1'], port }];

test('a message over the announced SIZE: permanent 5.3.4 carrying the announced limit', async () => {
  const port = await startPeer({ size: 1000 });
  const [result] = await client().send(dest(port), message(5000));
  assert.equal(result!.outcome, 'permanent');
  assert.equal(result!.reply.enhanced, '5.3.4');
  assert.equal(result!.reply.sizeLimit, 1000);
});

test('a refusal as too large at end of data carries the announced limit; other refusals and peers without SIZE carry none', async () => {
  const refusing = await startPeer({ size: 50_000, dataReply: { code: 552, message: '5.3.4 Message too big for this mailbox' } });
  const [tooBig] = await client().send(dest(refusing), message(100));
  assert.equal(tooBig!.outcome, 'permanent');
  assert.deepEqual([tooBig!.reply.code, tooBig!.reply.enhanced, tooBig!.reply.sizeLimit], [552, '5.3.4', 50_000]);

  // SIZE announced, but the refusal is about the address: no limit attached.
  const unknown = await startPeer({ size: 50_000, rcptReply: (a) => (a.startsWith('nobody') ? { code: 550, message: '5.1.1 no such user' } : null) });
  const results = await client().send(dest(unknown), message(100, ['nobody@example.com', 'bob@example.com']));
  assert.equal(results[0]!.reply.enhanced, '5.1.1');
  assert.equal(results[0]!.reply.sizeLimit, undefined);
  assert.equal(results[1]!.outcome, 'delivered');
  assert.equal(results[1]!.reply.sizeLimit, undefined);

  // Too large for that mailbox (5.2.3): its limit is not the announced SIZE.
  const mailboxLimit = await startPeer({ size: 50_000, dataReply: { code: 552, message: '5.2.3 larger than the whole mailbox may hold' } });
  const [overMailbox] = await client().send(dest(mailboxLimit), message(100));
  assert.equal(overMailbox!.reply.enhanced, '5.2.3');
  assert.equal(overMailbox!.reply.sizeLimit, undefined);

  // Too large, but the peer announced no SIZE: no number is known.
  const noSize = await startPeer({ dataReply: { code: 552, message: '5.3.4 Message too big' } });
  const [unsized] = await client().send(dest(noSize), message(100));
  assert.equal(unsized!.reply.enhanced, '5.3.4');
  assert.equal(unsized!.reply.sizeLimit, undefined);
});

function tooLarge(limit: number | null, address = 'bob@example.com'): DsnRecipient {
  return {
    address,
    orcpt: null,
    action: 'failed',
    status: '5.3.4',
    reply: { code: 552, enhanced: '5.3.4', text: 'Message too big', remoteMta: 'mx.example.com', ...(limit ? { sizeLimit: limit } : {}) },
    lastAttemptAt: new Date('2026-12-01T09:00:05Z'),
    messageSizeLimit: limit,
  };
}

async function humanPart(recipients: DsnRecipient[], locales: Array<'en' | 'ja'> = ['en']): Promise<string> {
  const dsn = buildDsn({
    reportingMta: 'mx.example.org',
    arrivalDate: new Date('2026-12-01T09:00:00Z'),
    envid: null,
    originalSender: 'alice@example.org',
    locales,
    recipients,
    original: Buffer.from('Subject: drawings\r\n\r\nbody\r\n'),
    returnContent: 'headers',
  });
  // English is wrapped at 76 columns: compare with single blanks.
  return ((await simpleParser(dsn)).text ?? '').replace(/\s+/g, ' ');
}

test('the bounce states the recipient server\'s limit and suggests sending a link instead', async () => {
  const text = await humanPart([tooLarge(10 * 1024 * 1024)]);
  assert.match(text, /larger than the recipient's server accepts \(its limit is about 10 MB\)/);
  assert.match(text, /Send large files as a link/);
  assert.match(text, /file-transfer or file-sharing service/);
  const ja = await humanPart([tooLarge(25 * 1024 * 1024)], ['ja']);
  assert.ok(ja.includes('上限は約 25 MB'), ja);

  // Each recipient gets its own server's limit.
  const two = await humanPart([tooLarge(10 * 1024 * 1024, 'bob@example.com'), tooLarge(20_000_000, 'carol@example.net')]);
  const bob = two.slice(two.indexOf('bob@example.com'), two.indexOf('carol@example.net'));
  assert.match(bob, /about 10 MB/);
  assert.doesNotMatch(bob, /about 20 MB/);
  assert.match(two.slice(two.indexOf('carol@example.net')), /about 20 MB/);
});

test('with no known limit the bounce names no number, and still suggests a link', async () => {
  const text = await humanPart([tooLarge(null)]);
  assert.match(text, /larger than the recipient's server accepts, so it was not delivered/);
  assert.doesNotMatch(text, /\bMB\b/);
  assert.match(text, /Send large files as a link/);
});
