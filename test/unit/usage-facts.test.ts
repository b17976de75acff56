// messageFacts: sender, subject, bulk and attachment bytes of one stored message, byte-exact,
// on hand-built messages; and on arbitrary bytes and MIME-shaped noise (fast-check) it never throws
// and never counts more attachment bytes than the message has.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_SUBJECT_CHARS, attachmentsOf, firstAddress, messageFacts } from '../../src/usage/message-facts.js';
import { parseMessage } from '../../src/mime/message-parts.js';

const CRLF = '\r\n';
const msg = (...lines: string[]) => Buffer.from(lines.join(CRLF), 'utf8');

/** Base64 of `n` bytes in 76-character lines joined by CRLF (no final line end): what a part body holds. */
function base64Body(n: number, seed = 7): string {
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes.toString('base64').match(/.{1,76}/g)!.join(CRLF);
}

describe('messageFacts: sender and subject', () => {
  it('takes the first From address, lower case, with encoded-word subjects decoded', () => {
    const f = messageFacts(
      msg('Return-Path: <bounce@lists.example>', 'From: "Müller, Jörg" <Joerg.Mueller@Example.DE>, other@example.org', 'Subject: =?UTF-8?B?R3LDvMOfZQ==?= =?UTF-8?Q?_aus_K=C3=B6ln?=', '', 'hi', ''),
    );
    assert.equal(f.sender, 'joerg.mueller@example.de');
    assert.equal(f.subject, 'Grüße aus Köln');
    assert.equal(f.bulk, false);
    assert.equal(f.attachmentBytes, 0);
    assert.equal(f.attachmentParts, 0);
  });

  it('decodes ISO-2022-JP subjects', () => {
    const f = messageFacts(msg('From: taro@example.jp', 'Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=', '', 'x'));
    assert.equal(f.subject, 'こんにちは');
  });

  it('falls back to the Return-Path; null when neither names an address', () => {
    assert.equal(messageFacts(msg('Return-Path: <Sender@Example.ORG>', 'Subject: x', '', 'b')).sender, 'sender@example.org');
    assert.equal(messageFacts(msg('Return-Path: <>', 'From: undisclosed-recipients:;', '', 'b')).sender, null);
    assert.equal(messageFacts(msg('Subject: nothing', '', 'b')).sender, null);
    assert.equal(messageFacts(msg('From: nobody', '', 'b')).sender, null);
  });

  it('keeps UTF-8 addresses (RFC 6532)', () => {
    assert.equal(firstAddress(Buffer.from('Jörg <jörg@bücher.example>')), 'jörg@bücher.example');
  });

  it('has no subject without a Subject field, and cuts long ones', () => {
    assert.equal(messageFacts(msg('From: a@b.example', '', 'x')).subject, null);
    const long = messageFacts(msg('From: a@b.example', `Subject: ${'s'.repeat(5000)}`, '', 'x')).subject!;
    assert.equal(long.length, MAX_SUBJECT_CHARS);
    assert.ok(long.endsWith('…'));
  });
});

describe('messageFacts: bulk mail', () => {
  const cases: Array<[string, string[], boolean]> = [
    ['List-Unsubscribe', ['List-Unsubscribe: <mailto:u@x.example>'], true],
    ['List-Id', ['List-Id: Deals <deals.shop.example>'], true],
    ['Precedence: bulk', ['Precedence: bulk'], true],
    ['Precedence: LIST with a comment', ['Precedence: (mailing list) LIST'], true],
    ['Precedence: junk', ['Precedence: junk'], true],
    ['Precedence: first-class', ['Precedence: first-class'], false],
    ['Auto-Submitted alone', ['Auto-Submitted: auto-generated'], false],
    ['a List-Id inside a part is not the message', [], false],
  ];
  for (const [name, headers, bulk] of cases) {
    it(name, () => {
      const raw =
        name === 'a List-Id inside a part is not the message'
          ? msg('From: a@b.example', 'Content-Type: multipart/mixed; boundary=b', '', '--b', 'List-Id: <x.example>', '', 'x', '--b--', '')
          : msg('From: a@b.example', ...headers, '', 'x');
      assert.equal(messageFacts(raw).bulk, bulk);
    });
  }
});

describe('messageFacts: attachments, by their encoded size', () => {
  it('counts a base64 attachment body exactly (the line end before the delimiter is not the part\'s)', () => {
    const body = base64Body(3000);
    const raw = msg(
      'From: a@b.example',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="XYZ"',
      '',
      '--XYZ',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'See the drawing.',
      '--XYZ',
      'Content-Type: application/pdf',
      'Content-Disposition: attachment; filename="drawing.pdf"',
      'Content-Transfer-Encoding: base64',
      '',
      body,
      '--XYZ--',
      '',
    );
    const f = messageFacts(raw);
    assert.equal(f.attachmentParts, 1);
    assert.equal(f.attachmentBytes, Buffer.byteLength(body));
  });

  it('counts inline parts with a file name and Content-Type name=, not plain inline text', () => {
    const png = base64Body(500, 1);
    const doc = base64Body(900, 2);
    const raw = msg(
      'From: a@b.example',
      'Content-Type: multipart/mixed; boundary=outer',
      '',
      '--outer',
      'Content-Type: multipart/related; boundary=inner',
      '',
      '--inner',
      'Content-Type: text/html',
      'Content-Disposition: inline',
      '',
      '<p>logo</p>',
      '--inner',
      'Content-Type: image/png',
      'Content-Disposition: inline; filename*=UTF-8\'\'%E3%83%AD%E3%82%B4.png',
      'Content-Transfer-Encoding: base64',
      '',
      png,
      '--inner--',
      '--outer',
      'Content-Type: application/msword; name="old.doc"',
      'Content-Transfer-Encoding: base64',
      '',
      doc,
      '--outer--',
      '',
    );
    const f = messageFacts(raw);
    assert.equal(f.attachmentParts, 2);
    assert.equal(f.attachmentBytes, Buffer.byteLength(png) + Buffer.byteLength(doc));
  });

  it('an attached message counts whole; an inline forwarded message is looked into', () => {
    const innerBody = base64Body(200, 3);
    const inner = [
      'From: c@d.example',
      'Subject: inner',
      'Content-Type: multipart/mixed; boundary=in',
      '',
      '--in',
      'Content-Type: text/plain',
      '',
      'inner text',
      '--in',
      'Content-Type: application/zip',
      'Content-Disposition: attachment; filename=a.zip',
      'Content-Transfer-Encoding: base64',
      '',
      innerBody,
      '--in--',
    ].join(CRLF);
    const attached = msg('From: a@b.example', 'Content-Type: multipart/mixed; boundary=o', '', '--o', 'Content-Type: message/rfc822', 'Content-Disposition: attachment', '', inner, '--o--', '');
    const fa = messageFacts(attached);
    assert.equal(fa.attachmentParts, 1);
    assert.equal(fa.attachmentBytes, Buffer.byteLength(inner));

    const inline = msg('From: a@b.example', 'Content-Type: multipart/mixed; boundary=o', '', '--o', 'Content-Type: message/rfc822', '', inner, '--o--', '');
    const fi = messageFacts(inline);
    assert.equal(fi.attachmentParts, 1);
    assert.equal(fi.attachmentBytes, Buffer.byteLength(innerBody));
  });

  it('a single-part message that is an attachment counts its body (read from the header alone)', () => {
    const body = base64Body(1234);
    const raw = msg('Return-Path: <a@b.example>', 'From: a@b.example', 'Content-Type: application/pdf', 'Content-Disposition: attachment; filename=x.pdf', 'Content-Transfer-Encoding: base64', '', body + CRLF);
    const f = messageFacts(raw);
    assert.equal(f.attachmentParts, 1);
    assert.equal(f.attachmentBytes, Buffer.byteLength(body + CRLF));
    // The same figure as the full MIME parse gives.
    const parts = attachmentsOf(parseMessage(raw).root);
    assert.equal(parts.length, 1);
    assert.equal(parts[0]!.size, f.attachmentBytes);
  });

  it('no attachments in a multipart/alternative of text and HTML', () => {
    const raw = msg('From: a@b.example', 'Content-Type: multipart/alternative; boundary=a', '', '--a', 'Content-Type: text/plain', '', 'x', '--a', 'Content-Type: text/html', '', '<p>x</p>', '--a--', '');
    assert.deepEqual([messageFacts(raw).attachmentParts, messageFacts(raw).attachmentBytes], [0, 0]);
  });
});

describe('messageFacts: hostile input', () => {
  it('never throws on arbitrary bytes; attachment bytes stay within the message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        const raw = Buffer.from(bytes);
        const f = messageFacts(raw);
        assert.ok(f.attachmentBytes >= 0 && f.attachmentBytes <= raw.length);
        assert.ok(f.attachmentParts >= 0);
        assert.ok(f.subject === null || f.subject.length <= MAX_SUBJECT_CHARS);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on MIME-shaped noise; the header-only shortcut agrees with the full parse', () => {
    const line = fc.oneof(
      fc.constantFrom(
        'Content-Type: multipart/mixed; boundary=b',
        'Content-Type: message/rfc822',
        'Content-Type: application/pdf; name=x.pdf',
        'Content-Disposition: attachment',
        'Content-Disposition: inline; filename=y',
        'From: a@b.example',
        'Subject: =?UTF-8?B?w7w=?=',
        'List-Id: <l.example>',
        '--b',
        '--b--',
        '',
        ' folded',
      ),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 40 }), (lines) => {
        const raw = Buffer.from(lines.join(CRLF), 'utf8');
        const f = messageFacts(raw);
        assert.ok(f.attachmentBytes <= raw.length);
        const full = attachmentsOf(parseMessage(raw).root);
        assert.equal(f.attachmentParts, full.length);
        assert.equal(
          f.attachmentBytes,
          full.reduce((sum, p) => sum + p.size, 0),
        );
      }),
      { numRuns: 1000 },
    );
  });
});
