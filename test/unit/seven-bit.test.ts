// 7-bit conversion for servers without 8BITMIME (src/mime/seven-bit.ts, RFC 6152 §3): the result
// has no 8-bit octet, says how each changed part is encoded, and decodes (with mailparser, which
// we did not write) to exactly what the original said; a signature of ours is made again
// (src/dkim/sign.ts signAgain) and verifies with mailauth. Also through the SMTP client against a
// smtp-server peer that hides 8BITMIME.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser, type ParsedMail } from 'mailparser';
import { dkimVerify } from 'mailauth';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { downgradeTo7bit, encodeQuotedPrintable } from '../../src/mime/seven-bit.js';
import { generateDkimKey } from '../../src/dkim/keys.js';
import { dkimTxtRecord } from '../../src/dkim/keys.js';
import { signAgain, signMessage } from '../../src/dkim/sign.js';
import { SmtpClient, type OutboundMessage } from '../../src/queue/smtp-client.js';
import type { Destination } from '../../src/queue/routing.js';
import type { DkimKey } from '../../src/store/types.js';

const crlf = (lines: string[]) => Buffer.from(lines.join('\r\n'), 'utf8');
const eightBit = (b: Buffer) => b.some((byte) => byte >= 0x80);

const SINGLE = crlf([
  'From: 佐藤 <sato@example.com>'.replace('佐藤', '=?UTF-8?B?5L2Q6Jek?='),
  'To: bob@example.net',
  'Subject: drawings',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: 8bit',
  '',
  '図面を添付します。 ',
  '.a line starting with a dot, and = an equals sign, and a long line: ' + 'あいうえお'.repeat(20),
  'café',
  '',
]);

const ATTACHMENT = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 37) % 256));

const MULTIPART = Buffer.concat([
  crlf([
    'From: sato@example.com',
    'To: bob@example.net',
    'Subject: parts',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    'preamble',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Grüße aus Tōkyō',
    '--b1',
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 8bit',
    '',
    'plain ascii, labelled 8bit',
    '--b1',
    'Content-Type: application/octet-stream; name="drawing.bin"',
    'Content-Disposition: attachment; filename="drawing.bin"',
    'Content-Transfer-Encoding: binary',
    '',
    '',
  ]),
  ATTACHMENT,
  crlf(['', '--b1', 'Content-Type: message/rfc822', '', 'Subject: inner', 'Content-Type: text/plain; charset=utf-8', 'MIME-Version: 1.0', '', 'innerer Text: Straße', '--b1--', '']),
]);

function assertSevenBitLines(bytes: Buffer): void {
  assert.equal(eightBit(bytes), false, 'no 8-bit octet left');
  for (const line of bytes.toString('latin1').split('\r\n')) assert.ok(line.length <= 998, 'RFC 5322 §2.1.1 line length');
  assert.ok(!/[^\r]\n|\r[^\n]/.test(bytes.toString('latin1')), 'CRLF line ends only');
}

describe('downgradeTo7bit', () => {
  it('single part: 8-bit text becomes quoted-printable and decodes to the same text; headers stay', async () => {
    const out = downgradeTo7bit(SINGLE)!;
    assert.ok(out);
    assertSevenBitLines(out);
    const head = out.toString('latin1').split('\r\n\r\n')[0]!;
    assert.match(head, /^Content-Transfer-Encoding: quoted-printable$/m);
    assert.doesNotMatch(head, /8bit/);
    assert.ok(out.toString('latin1').startsWith(SINGLE.toString('latin1').split('Content-Transfer-Encoding')[0]!), 'fields before it unchanged');
    const a = await simpleParser(SINGLE);
    const b = await simpleParser(out);
    assert.equal(b.text, a.text);
    assert.equal(b.subject, a.subject);
    for (const line of out.toString('latin1').split('\r\n\r\n')[1]!.split('\r\n')) assert.ok(line.length <= 76, `QP line of ${line.length}`);
  });

  it('multipart: only the 8-bit parts change (text → QP, binary → base64), labels fixed, nested message converted', async () => {
    const out = downgradeTo7bit(MULTIPART)!;
    assert.ok(out);
    assertSevenBitLines(out);
    const text = out.toString('latin1');
    assert.ok(text.includes('preamble\r\n--b1\r\n'), 'preamble and delimiters kept');
    assert.ok(text.includes('Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain ascii, labelled 8bit\r\n'), 'ASCII part relabelled only');
    assert.match(text, /filename="drawing.bin"\r\nContent-Transfer-Encoding: base64\r\n/);
    const a: ParsedMail = await simpleParser(MULTIPART);
    const b: ParsedMail = await simpleParser(out);
    assert.equal(b.text, a.text);
    assert.equal(b.attachments.length, a.attachments.length);
    const bin = b.attachments.find((x) => x.filename === 'drawing.bin');
    assert.ok(bin?.content.equals(ATTACHMENT), 'the attachment decodes to the same octets');
    const inner = b.attachments.find((x) => x.contentType === 'message/rfc822');
    assert.ok(inner);
    assert.equal((await simpleParser(inner.content)).text?.trim(), 'innerer Text: Straße');
  });

  it('a plain message without MIME headers becomes MIME (text/plain; utf-8, QP)', async () => {
    const plain = crlf(['From: a@example.com', 'Subject: x', '', 'héllo', '']);
    const out = downgradeTo7bit(plain)!;
    assertSevenBitLines(out);
    assert.match(out.toString('latin1'), /^MIME-Version: 1\.0\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/m);
    assert.equal((await simpleParser(out)).text?.trim(), 'héllo');
  });

  it('nothing to do: a 7-bit message comes back as it is; impossible cases give null', () => {
    const ascii = crlf(['From: a@example.com', 'Subject: x', '', 'hello', '']);
    assert.deepEqual(downgradeTo7bit(ascii), ascii);
    // Raw UTF-8 in a header field can not be made 7-bit without rewriting it.
    assert.equal(downgradeTo7bit(crlf(['From: a@example.com', 'Subject: café', '', 'x', ''])), null);
    // 8-bit octets inside a body that claims base64: not valid MIME.
    assert.equal(downgradeTo7bit(crlf(['From: a@example.com', 'MIME-Version: 1.0', 'Content-Transfer-Encoding: base64', '', 'é', ''])), null);
    // 8-bit octets between the parts of a multipart.
    assert.equal(downgradeTo7bit(crlf(['From: a@example.com', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=z', '', 'préambule', '--z', '', 'x', '--z--', ''])), null);
  });

  it('quoted-printable keeps hard line breaks, encodes trailing blanks, "=" and a leading dot', () => {
    assert.equal(encodeQuotedPrintable(Buffer.from('a = b \r\n.x\t\r\n', 'latin1')).toString('latin1'), 'a =3D b=20\r\n=2Ex=09\r\n');
    const long = encodeQuotedPrintable(Buffer.from('x'.repeat(200))).toString('latin1');
    for (const line of long.split('\r\n')) assert.ok(line.length <= 76);
    assert.equal(long.replace(/=\r\n/g, ''), 'x'.repeat(200));
  });
});

describe('signAgain', () => {
  const key: DkimKey = { domain: 'example.com', selector: 'yubin', algorithm: 'rsa', ...generateDkimKey('rsa'), createdAt: new Date() };
  const other: DkimKey = { domain: 'sender.example', selector: 's1', algorithm: 'ed25519', ...generateDkimKey('ed25519'), createdAt: new Date() };
  const txt: Record<string, string> = {
    'yubin._domainkey.example.com': dkimTxtRecord(key),
    's1._domainkey.sender.example': dkimTxtRecord(other),
  };
  const resolver = async (name: string, rrtype: string): Promise<string[][]> => {
    const record = rrtype === 'TXT' ? txt[name.toLowerCase().replace(/\.$/, '')] : undefined;
    if (!record) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return [record.match(/.{1,255}/g) ?? ['']];
  };
  const verdicts = async (bytes: Buffer) => Object.fromEntries((await dkimVerify(bytes, { resolver })).results.map((r) => [r.signingDomain, r.status.result]));

  it('after the conversion our signature verifies again; a foreign one is kept (and no longer verifies)', async () => {
    const signed = await signMessage(await signMessage(SINGLE, [other]), [key]);
    assert.deepEqual(await verdicts(signed), { 'example.com': 'pass', 'sender.example': 'pass' });
    const converted = downgradeTo7bit(signed)!;
    assert.notEqual((await verdicts(converted))['example.com'], 'pass', 'the conversion broke it');
    const again = await signAgain(converted, [key]);
    assert.equal((again.toString('latin1').match(/^DKIM-Signature:/gim) ?? []).length, 2, 'ours replaced, not added');
    const result = await verdicts(again);
    assert.equal(result['example.com'], 'pass');
    assert.notEqual(result['sender.example'], 'pass');
    assert.equal(eightBit(again), false);
    // Without a signature of ours there is nothing to make again.
    assert.deepEqual(await signAgain(converted, [{ ...key, selector: 'other' }]), converted);
  });
});

describe('SMTP client and a server without 8BITMIME', () => {
  it('sends the converted message with the downgrade hook, fails 5.6.3 without it or when it can not be converted', async () => {
    const received: Buffer[] = [];
    let bodyTypes: string[] = [];
    const server = new SMTPServer({
      hide8BITMIME: true,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push(Buffer.concat(chunks));
          bodyTypes.push(String(session.envelope.bodyType));
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.server.address() as AddressInfo).port;
    const options = { heloName: 'mx.example.com', connectTimeoutSeconds: 5, commandTimeoutSeconds: 5, maxPerDestination: 2, maxConnections: 4, connectionReuse: false, maxMessagesPerConnection: 10 };
    const message = (content: Buffer): OutboundMessage => ({ from: 'sato@example.com', recipients: [{ address: 'bob@example.net', notify: null, orcpt: null }], content, envid: null, ret: null, smtpUtf8: false, eightBit: true });
    const destination: Destination[] = [{ host: 'mx.example.net', port, addresses: ['127.0.0.1'], preference: 10 }];
    const withHook = new SmtpClient({ ...options, downgrade: async (c) => downgradeTo7bit(c) });
    const without = new SmtpClient(options);
    try {
      const sent = await withHook.send(destination, message(SINGLE));
      assert.equal(sent[0]!.outcome, 'delivered', JSON.stringify(sent[0]!.reply));
      assert.equal(received.length, 1);
      assert.equal(eightBit(received[0]!), false, 'the server got 7-bit data');
      assert.equal((await simpleParser(received[0]!)).text, (await simpleParser(SINGLE)).text);
      assert.notEqual(bodyTypes[0], '8bitmime', 'no BODY=8BITMIME');

      const refused = await without.send(destination, message(SINGLE));
      assert.equal(refused[0]!.outcome, 'permanent');
      assert.equal(refused[0]!.reply.enhanced, '5.6.3');
      const header8 = await withHook.send(destination, message(crlf(['From: a@example.com', 'Subject: café', '', 'x', ''])));
      assert.equal(header8[0]!.outcome, 'permanent');
      assert.equal(header8[0]!.reply.enhanced, '5.6.3');
      assert.equal(received.length, 1, 'nothing else was sent');
    } finally {
      await withHook.close();
      await without.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      bodyTypes = [];
    }
  });
});
