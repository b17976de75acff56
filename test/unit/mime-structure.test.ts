import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkMimeStructure, headerValue, splitHeaderSection, type MimeCheck, type MimeLimits } from '../../src/mime/structure.js';

const LIMITS: MimeLimits = { maxDepth: 100, maxParts: 10_000, maxHeaderBytes: 64 * 1024 };

function msg(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

function crlf(lines: string[]): string {
  return lines.join('\r\n');
}

function expectOk(result: MimeCheck, parts: number, depth: number): void {
  assert.equal(result.ok, true, result.ok ? '' : result.detail);
  if (result.ok) {
    assert.equal(result.parts, parts, 'parts');
    assert.equal(result.depth, depth, 'depth');
  }
}

function expectFail(result: MimeCheck, reason: 'depth' | 'parts' | 'header-size'): string {
  assert.equal(result.ok, false, 'expected the check to fail');
  if (result.ok) return '';
  assert.equal(result.reason, reason);
  assert.ok(result.detail.length > 0);
  return result.detail;
}

/** `levels` nested multipart containers around one text part: depth = parts = levels + 1. */
function nestedMultiparts(levels: number): Buffer {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 1; i <= levels; i++) {
    open.push(`Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n`);
    close.push(`\r\n--b${i}--\r\n`);
  }
  return msg(open.join('') + 'Content-Type: text/plain\r\n\r\nhello' + close.reverse().join(''));
}

/** A multipart/mixed message with `count` body parts: parts = count + 1. */
function manyParts(count: number): Buffer {
  return msg('Content-Type: multipart/mixed; boundary=p\r\n\r\n' + '--p\r\n\r\nx\r\n'.repeat(count) + '--p--\r\n');
}

describe('checkMimeStructure', () => {
  it('counts a plain message as one part at depth one', () => {
    const m = msg(crlf(['From: a@example.com', 'Subject: hi', '', 'hello', '']));
    const result = checkMimeStructure(m, LIMITS);
    expectOk(result, 1, 1);
    assert.ok(result.ok && result.headerBytes === splitHeaderSection(m).headerEnd);
  });

  it('handles an empty message', () => {
    expectOk(checkMimeStructure(Buffer.alloc(0), LIMITS), 1, 1);
  });

  it('counts multipart/mixed with three parts', () => {
    const m = msg(
      crlf([
        'From: a@example.com',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed;',
        '\tboundary="frontier"',
        '',
        'This is the preamble.',
        '--frontier',
        'Content-Type: text/plain',
        '',
        'one',
        '--frontier',
        'Content-Type: text/html',
        '',
        '<p>two</p>',
        '--frontier',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: base64',
        '',
        'AAAA',
        '--frontier--',
        '',
      ]),
    );
    expectOk(checkMimeStructure(m, LIMITS), 4, 2);
  });

  it('matches the boundary parameter case-insensitively and unquoted', () => {
    const m = msg(crlf(['Content-Type: Multipart/Mixed; BOUNDARY=abc', '', '--abc', '', 'one', '--abc', '', 'two', '--abc--', '']));
    expectOk(checkMimeStructure(m, LIMITS), 3, 2);
  });

  it('joins an RFC 2231 continued boundary', () => {
    const m = msg(crlf(['Content-Type: multipart/mixed; boundary*0="ab"; boundary*1="cd"', '', '--abcd', '', 'one', '--abcd--', '']));
    expectOk(checkMimeStructure(m, LIMITS), 2, 2);
  });

  it('descends into multipart/alternative inside multipart/mixed', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=outer',
        '',
        '--outer',
        'Content-Type: multipart/alternative; boundary=inner',
        '',
        '--inner',
        'Content-Type: text/plain',
        '',
        'plain',
        '--inner',
        'Content-Type: text/html',
        '',
        '<p>html</p>',
        '--inner--',
        '',
        '--outer',
        'Content-Type: image/png',
        '',
        'PNG',
        '--outer--',
        '',
      ]),
    );
    expectOk(checkMimeStructure(m, LIMITS), 5, 3);
  });

  it('closes inner multiparts when an outer delimiter appears', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=outer',
        '',
        '--outer',
        'Content-Type: multipart/alternative; boundary=inner',
        '',
        '--inner',
        '',
        'never closed',
        '--outer',
        '',
        'second outer part',
        '--inner',
        '',
        'not a delimiter any more',
        '--outer--',
        '',
      ]),
    );
    // top, alternative, its one part, second outer part
    expectOk(checkMimeStructure(m, LIMITS), 4, 3);
  });

  it('scans a message/rfc822 attachment that holds a multipart', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=outer',
        '',
        '--outer',
        'Content-Type: text/plain',
        '',
        'see attached',
        '--outer',
        'Content-Type: message/rfc822',
        '',
        'From: b@example.com',
        'Content-Type: multipart/alternative; boundary=inner',
        '',
        '--inner',
        'Content-Type: text/plain',
        '',
        'plain',
        '--inner',
        'Content-Type: text/html',
        '',
        'html',
        '--inner--',
        '',
        '--outer--',
        '',
      ]),
    );
    // top, text, message/rfc822, the enclosed message, two alternatives
    expectOk(checkMimeStructure(m, LIMITS), 6, 4);
  });

  it('treats the parts of multipart/digest as messages by default', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/digest; boundary=d',
        '',
        '--d',
        '',
        'Subject: one',
        '',
        'body one',
        '--d',
        'Content-Type: text/plain',
        '',
        'plain text',
        '--d--',
        '',
      ]),
    );
    // top, message/rfc822 part, enclosed message, text part
    expectOk(checkMimeStructure(m, LIMITS), 4, 3);
  });

  it('rejects nesting beyond the depth limit and accepts exactly the limit', () => {
    expectOk(checkMimeStructure(nestedMultiparts(99), LIMITS), 100, 100);
    const detail = expectFail(checkMimeStructure(nestedMultiparts(100), LIMITS), 'depth');
    assert.match(detail, /101 levels deep; the limit is 100/);
    expectFail(checkMimeStructure(nestedMultiparts(150), LIMITS), 'depth');
  });

  it('counts message/rfc822 wrappers towards depth', () => {
    const m = msg('Content-Type: message/rfc822\r\n\r\n'.repeat(5) + 'Subject: inner\r\n\r\nbody\r\n');
    expectOk(checkMimeStructure(m, LIMITS), 6, 6);
    expectFail(checkMimeStructure(m, { ...LIMITS, maxDepth: 5 }), 'depth');
  });

  it('rejects more parts than the limit and accepts exactly the limit', () => {
    const detail = expectFail(checkMimeStructure(manyParts(10_001), LIMITS), 'parts');
    assert.match(detail, /10000/);
    expectOk(checkMimeStructure(manyParts(9_999), LIMITS), 10_000, 2);
  });

  it('rejects an oversized top-level header section', () => {
    const limits = { ...LIMITS, maxHeaderBytes: 1024 };
    const small = msg('Subject: ' + 'x'.repeat(900) + '\r\n\r\nbody\r\n');
    const result = checkMimeStructure(small, limits);
    expectOk(result, 1, 1);
    assert.ok(result.ok && result.headerBytes === 911);
    const big = msg('Subject: ' + 'x'.repeat(2000) + '\r\n\r\nbody\r\n');
    assert.match(expectFail(checkMimeStructure(big, limits), 'header-size'), /message header/);
    // Without an empty line every byte is header.
    expectFail(checkMimeStructure(msg('X: y\r\n'.repeat(300)), limits), 'header-size');
  });

  it('rejects an oversized part header section', () => {
    const limits = { ...LIMITS, maxHeaderBytes: 1024 };
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=b',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'fine',
        '--b',
        'Content-Type: text/plain',
        ...Array.from({ length: 100 }, (_, i) => `X-Filler-${i}: ${'y'.repeat(20)}`),
        '',
        'body',
        '--b--',
        '',
      ]),
    );
    assert.match(expectFail(checkMimeStructure(m, limits), 'header-size'), /MIME part 3/);
    const result = checkMimeStructure(m, LIMITS);
    expectOk(result, 3, 2);
    assert.ok(result.ok && result.headerBytes > 1024);
  });

  it('stops a 100,000-level nesting quickly without overflowing the stack', () => {
    const m = nestedMultiparts(100_000);
    const started = performance.now();
    const detail = expectFail(checkMimeStructure(m, LIMITS), 'depth');
    const elapsed = performance.now() - started;
    assert.match(detail, /101 levels deep/);
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  });

  it('scans a 100,000-level nesting completely in linear time when the limits allow it', () => {
    const m = nestedMultiparts(100_000);
    const started = performance.now();
    const result = checkMimeStructure(m, { maxDepth: 1_000_000, maxParts: 1_000_000, maxHeaderBytes: 1_000_000 });
    const elapsed = performance.now() - started;
    expectOk(result, 100_001, 100_001);
    assert.ok(elapsed < 2000, `took ${elapsed} ms`);
  });

  it('tolerates bare LF line ends', () => {
    const m = msg(
      [
        'Content-Type: multipart/mixed; boundary=lf',
        '',
        '--lf',
        'Content-Type: text/plain',
        '',
        'one',
        '--lf',
        '',
        'two',
        '--lf  ',
        '',
        'three',
        '--lf--',
        '',
      ].join('\n'),
    );
    expectOk(checkMimeStructure(m, LIMITS), 4, 2);
    const split = splitHeaderSection(m);
    assert.equal(split.headerEnd, 'Content-Type: multipart/mixed; boundary=lf\n'.length);
    assert.equal(split.bodyStart, split.headerEnd + 1);
  });

  it('does not split on a boundary in the middle of a line or on a longer boundary', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=b',
        '',
        '--b',
        '',
        'text --b more text',
        'x--b',
        ' --b',
        '--bb',
        '--b-',
        '--b---',
        '--b--',
        '',
      ]),
    );
    expectOk(checkMimeStructure(m, LIMITS), 2, 2);
  });

  it('ignores the epilogue after the close delimiter', () => {
    const m = msg(
      crlf([
        'Content-Type: multipart/mixed; boundary=b',
        '',
        'preamble',
        '--b',
        '',
        'one',
        '--b--',
        'epilogue text',
        '--b',
        '',
        'still epilogue',
        '',
      ]),
    );
    expectOk(checkMimeStructure(m, LIMITS), 2, 2);
  });

  it('ends an unterminated multipart at the end of the message', () => {
    const m = msg(crlf(['Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'one', '--b', 'Content-Type: text/plain']));
    expectOk(checkMimeStructure(m, LIMITS), 3, 2);
  });

  it('treats multipart without a boundary as a single part', () => {
    const m = msg(crlf(['Content-Type: multipart/mixed', '', '--b', '', 'one', '--b--', '']));
    expectOk(checkMimeStructure(m, LIMITS), 1, 1);
  });
});

describe('splitHeaderSection and headerValue', () => {
  it('splits and unfolds the header section', () => {
    const m = msg(crlf(['Subject: hello', '\tworld', 'X-Empty:', 'Content-Type : text/plain; charset="utf-8"', 'subject: second', '', 'body', '']));
    const { headerEnd, bodyStart, fields } = splitHeaderSection(m);
    assert.equal(m.subarray(headerEnd, bodyStart).toString(), '\r\n');
    assert.equal(m.subarray(bodyStart).toString(), 'body\r\n');
    assert.deepEqual(fields, [
      { name: 'Subject', value: 'hello\tworld' },
      { name: 'X-Empty', value: '' },
      { name: 'Content-Type', value: 'text/plain; charset="utf-8"' },
      { name: 'subject', value: 'second' },
    ]);
    assert.equal(headerValue(fields, 'SUBJECT'), 'hello\tworld');
    assert.equal(headerValue(fields, 'content-type'), 'text/plain; charset="utf-8"');
    assert.equal(headerValue(fields, 'To'), undefined);
  });

  it('decodes raw UTF-8 header bytes', () => {
    const { fields } = splitHeaderSection(msg('Subject: 郵便\r\n\r\n'));
    assert.equal(headerValue(fields, 'subject'), '郵便');
  });

  it('treats a message without an empty line as all header', () => {
    const m = msg('Subject: x\r\nFrom: y');
    const { headerEnd, bodyStart, fields } = splitHeaderSection(m);
    assert.equal(headerEnd, m.length);
    assert.equal(bodyStart, m.length);
    assert.equal(fields.length, 2);
  });

  it('handles a message that starts with the empty line', () => {
    const { headerEnd, bodyStart, fields } = splitHeaderSection(msg('\r\nbody'));
    assert.equal(headerEnd, 0);
    assert.equal(bodyStart, 2);
    assert.deepEqual(fields, []);
  });
});

describe('never throws (property)', () => {
  const limitsArb = fc.record({
    maxDepth: fc.integer({ min: 0, max: 8 }),
    maxParts: fc.integer({ min: 0, max: 40 }),
    maxHeaderBytes: fc.integer({ min: 0, max: 400 }),
  });

  function assertWellFormed(message: Buffer, limits: MimeLimits): void {
    const result = checkMimeStructure(message, limits);
    if (result.ok) {
      assert.ok(Number.isInteger(result.parts) && result.parts >= 1 && result.parts <= limits.maxParts);
      assert.ok(Number.isInteger(result.depth) && result.depth >= 1 && result.depth <= limits.maxDepth);
      assert.ok(result.depth <= result.parts);
      assert.ok(Number.isInteger(result.headerBytes) && result.headerBytes >= 0);
      assert.ok(result.headerBytes <= message.length && result.headerBytes <= limits.maxHeaderBytes);
    } else {
      assert.ok(['depth', 'parts', 'header-size'].includes(result.reason));
      assert.equal(typeof result.detail, 'string');
      assert.ok(result.detail.length > 0);
    }
    const split = splitHeaderSection(message);
    assert.ok(split.headerEnd >= 0 && split.headerEnd <= split.bodyStart && split.bodyStart <= message.length);
    const gap = split.bodyStart - split.headerEnd;
    assert.ok(gap === 1 || gap === 2 || (gap === 0 && split.bodyStart === message.length));
    for (const field of split.fields) {
      assert.equal(typeof field.name, 'string');
      assert.ok(field.name.length > 0);
      assert.equal(typeof field.value, 'string');
    }
    if (result.ok) assert.ok(result.headerBytes >= split.headerEnd);
  }

  it('holds for arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), limitsArb, (bytes, limits) => {
        assertWellFormed(Buffer.from(bytes), limits);
      }),
      { numRuns: 500 },
    );
  });

  const pieces = [
    '--b\r\n',
    '--b--\r\n',
    '--c\r\n',
    '--c--\r\n',
    'Content-Type: multipart/mixed; boundary=b\r\n',
    'Content-Type: multipart/alternative; boundary="c"\r\n',
    'Content-Type: multipart/digest; boundary=b\r\n',
    'Content-Type: message/rfc822\r\n',
    'Content-Type: multipart/mixed; boundary*0=b\r\n',
    'Content-Type: multipart/mixed; boundary="\r\n',
    'Content-Transfer-Encoding: base64\r\n',
    ' folded; boundary=c\r\n',
    '\r\n',
    'x',
    ' ',
    ':',
    '--',
    '\n',
  ];
  const structured = fc.array(fc.constantFrom(...pieces), { maxLength: 60 }).map((list) => list.join(''));

  it('holds for messages built from MIME-ish pieces', () => {
    fc.assert(
      fc.property(structured, limitsArb, (text, limits) => {
        assertWellFormed(Buffer.from(text, 'latin1'), limits);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives the same structure with bare LF as with CRLF', () => {
    const generous = { maxDepth: 1000, maxParts: 1000, maxHeaderBytes: 1_000_000 };
    fc.assert(
      fc.property(structured, (text) => {
        if (/\r(?!\n)/.test(text)) return; // only CRLF pairs can be rewritten one-to-one
        const withCrlf = checkMimeStructure(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1'), generous);
        const withLf = checkMimeStructure(Buffer.from(text.replace(/\r\n/g, '\n'), 'latin1'), generous);
        assert.ok(withCrlf.ok && withLf.ok);
        if (withCrlf.ok && withLf.ok) {
          assert.equal(withLf.parts, withCrlf.parts);
          assert.equal(withLf.depth, withCrlf.depth);
        }
      }),
      { numRuns: 500 },
    );
  });
});
