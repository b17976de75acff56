import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  MAX_DEPTH,
  SectionError,
  allParts,
  binarySize,
  decodeBase64,
  decodeQuotedPrintable,
  decodedPart,
  parseMessage,
  parseSectionSpec,
  partSection,
  sectionBytes,
  type MimePart,
  type ParsedMessage,
} from '../../src/mime/message-parts.js';
import { bodyStructure, envelope, joined, parseAddressList, renderImapValue, type ImapValue } from '../../src/mime/imap-structures.js';
import { matchesText, searchableText } from '../../src/mime/search-text.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(here, '../../../test/fixtures/mime');

function msg(lines: string[]): Buffer {
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

function wire(value: ImapValue): string {
  return renderImapValue(value).toString('utf8');
}

type Bytes = string | { latin1: string } | { base64: string } | { utf8: string };

function expectedBytes(value: Bytes): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if ('latin1' in value) return Buffer.from(value.latin1, 'latin1');
  if ('base64' in value) return Buffer.from(value.base64, 'base64');
  return Buffer.from(value.utf8, 'utf8');
}

interface Expected {
  derivation: string;
  bodystructure: string;
  body: string;
  envelope: string;
  sections: Record<string, Bytes>;
  binary: Record<string, Bytes & { size: number }>;
  search: { headers: Record<string, string[]>; bodyContains: string[]; bodyNotContains: string[] };
  params?: Record<string, { type?: Record<string, string>; disposition?: Record<string, string> }>;
}

/** Offsets are ordered and nested; sizes agree; containers are what they say. */
function checkInvariants(parsed: ParsedMessage, length: number): void {
  const stack: Array<{ part: MimePart; lo: number; hi: number }> = [{ part: parsed.root, lo: 0, hi: length }];
  while (stack.length > 0) {
    const { part, lo, hi } = stack.pop()!;
    assert.ok(lo <= part.headerStart, 'headerStart inside the parent');
    assert.ok(part.headerStart <= part.headerEnd, 'headerStart <= headerEnd');
    assert.ok(part.headerEnd <= part.bodyStart, 'headerEnd <= bodyStart');
    assert.ok(part.bodyStart <= part.bodyEnd, 'bodyStart <= bodyEnd');
    assert.ok(part.bodyEnd <= hi, 'bodyEnd inside the parent');
    assert.equal(part.size, part.bodyEnd - part.bodyStart);
    assert.ok(part.lines >= 0 && part.lines <= part.size);
    assert.ok(part.depth <= MAX_DEPTH);
    if (part.children.length > 0) assert.equal(part.type, 'multipart');
    if (part.message) assert.equal(part.type, 'message');
    if (part.type === 'multipart') assert.ok(part.children.length > 0, 'a multipart leaf must have been degraded');
    let previousEnd = part.bodyStart;
    for (const child of part.children) {
      assert.ok(child.headerStart >= previousEnd, 'siblings do not overlap');
      previousEnd = child.bodyEnd;
      stack.push({ part: child, lo: part.bodyStart, hi: part.bodyEnd });
    }
    if (part.message) {
      assert.equal(part.message.root.headerStart, part.bodyStart);
      assert.equal(part.message.size, part.size);
      stack.push({ part: part.message.root, lo: part.bodyStart, hi: part.bodyEnd });
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: fixtures', () => {
  const names = readdirSync(FIXTURES)
    .filter((f) => f.endsWith('.eml'))
    .map((f) => f.slice(0, -4))
    .sort();

  it('has the fixtures the brief asks for, each with expectations', () => {
    for (const required of ['simple', 'alternative', 'mixed-pdf', 'nested', 'forwarded', 'iso-2022-jp', 'shift-jis', 'utf8-headers', 'malformed-no-boundary', 'malformed-unclosed', 'rfc2231']) {
      assert.ok(names.includes(required), required);
    }
    for (const name of names) assert.ok(existsSync(path.join(FIXTURES, `${name}.expected.json`)), `${name}.expected.json`);
  });

  for (const name of names) {
    describe(name, () => {
      const raw = readFileSync(path.join(FIXTURES, `${name}.eml`));
      const expected = JSON.parse(readFileSync(path.join(FIXTURES, `${name}.expected.json`), 'utf8')) as Expected;
      const parsed = parseMessage(raw);

      it('has consistent offsets', () => checkInvariants(parsed, raw.length));

      it('BODYSTRUCTURE', () => {
        assert.equal(renderImapValue(bodyStructure(parsed, raw, true)).toString('utf8'), expected.bodystructure);
      });

      it('BODY', () => {
        assert.equal(renderImapValue(bodyStructure(parsed, raw, false)).toString('utf8'), expected.body);
      });

      it('ENVELOPE', () => {
        assert.equal(renderImapValue(envelope(parsed, raw)).toString('utf8'), expected.envelope);
      });

      it('section text (BODY[...])', () => {
        for (const [spec, bytes] of Object.entries(expected.sections)) {
          assert.deepEqual(sectionBytes(raw, parsed, spec), expectedBytes(bytes), `BODY[${spec}]`);
        }
      });

      it('BINARY[...] and BINARY.SIZE[...]', () => {
        for (const [section, bytes] of Object.entries(expected.binary)) {
          const part = partSection(parsed, section);
          assert.ok(part, section);
          assert.deepEqual(decodedPart(raw, part), expectedBytes(bytes), `BINARY[${section}]`);
          assert.equal(binarySize(raw, part), bytes.size, `BINARY.SIZE[${section}]`);
        }
      });

      it('search text', () => {
        const text = searchableText(raw, parsed);
        assert.equal(text.size, raw.length);
        for (const [field, values] of Object.entries(expected.search.headers)) {
          assert.deepEqual(text.headers.get(field), values, field);
        }
        for (const needle of expected.search.bodyContains) assert.ok(matchesText(text.body, needle), `body contains ${needle}`);
        for (const needle of expected.search.bodyNotContains) assert.ok(!matchesText(text.body, needle), `body does not contain ${needle}`);
      });

      if (expected.params) {
        it('decoded parameters', () => {
          for (const [section, want] of Object.entries(expected.params!)) {
            const part = partSection(parsed, section);
            assert.ok(part, section);
            for (const [k, v] of Object.entries(want.type ?? {})) assert.equal(part.params.get(k), v, `${section} ${k}`);
            for (const [k, v] of Object.entries(want.disposition ?? {})) assert.equal(part.disposition?.params.get(k), v, `${section} disposition ${k}`);
          }
        });
      }
    });
  }

  it('decodes the Japanese fixtures as the brief says', () => {
    const raw = readFileSync(path.join(FIXTURES, 'iso-2022-jp.eml'));
    const text = searchableText(raw, parseMessage(raw));
    assert.deepEqual(text.headers.get('subject'), ['会議の件']);
    assert.ok(matchesText(text.body, '添付ファイル'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: RFC 9051 examples', () => {
  it('§7.5.2: ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)', () => {
    // 91 lines of 31 characters and one of 23, each with CRLF: 91 * 33 + 25 = 3028 octets, 92 lines.
    const lines: string[] = [];
    for (let i = 0; i < 91; i++) lines.push('x'.repeat(31));
    lines.push('y'.repeat(23));
    const raw = Buffer.from(`Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n${lines.join('\r\n')}\r\n`);
    const parsed = parseMessage(raw);
    assert.equal(wire(bodyStructure(parsed, raw, false)), '("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92)');
  });

  // The example message of §6.4.5, built part by part.
  const leaf = (type: string, body: string, extra: string[] = []): string => [`Content-Type: ${type}`, ...extra, '', body].join('\r\n');
  const multi = (boundary: string, subtype: string, parts: string[], headers: string[] = []): string =>
    [...headers, `Content-Type: multipart/${subtype}; boundary="${boundary}"`, '', ...parts.map((p) => `--${boundary}\r\n${p}`), `--${boundary}--`].join('\r\n');
  const rfc822 = (inner: string): string => `Content-Type: MESSAGE/RFC822\r\n\r\n${inner}`;

  const inner3 = multi('B', 'mixed', [leaf('text/plain', 'part 3.1'), leaf('application/octet-stream', 'part 3.2')], ['Subject: three']);
  const inner42 = multi(
    'D',
    'mixed',
    [leaf('text/plain', 'part 4.2.1'), multi('E', 'alternative', [leaf('text/plain', 'part 4.2.2.1'), leaf('text/richtext', 'part 4.2.2.2')])],
    ['Subject: four-two'],
  );
  const raw = Buffer.from(
    multi(
      'A',
      'mixed',
      [
        leaf('text/plain', 'part 1'),
        leaf('application/octet-stream', 'part 2'),
        rfc822(inner3),
        multi('C', 'mixed', [leaf('image/gif', 'part 4.1', ['Content-ID: <gif>']), rfc822(inner42)]),
      ],
      ['Subject: top', 'MIME-Version: 1.0'],
    ) + '\r\n',
  );
  const parsed = parseMessage(raw);

  it('§6.4.5: part numbers name the parts of the example', () => {
    const types: Record<string, string> = {
      '1': 'text/plain',
      '2': 'application/octet-stream',
      '3': 'message/rfc822',
      '3.1': 'text/plain',
      '3.2': 'application/octet-stream',
      '4': 'multipart/mixed',
      '4.1': 'image/gif',
      '4.2': 'message/rfc822',
      '4.2.1': 'text/plain',
      '4.2.2': 'multipart/alternative',
      '4.2.2.1': 'text/plain',
      '4.2.2.2': 'text/richtext',
    };
    for (const [section, type] of Object.entries(types)) {
      const part = partSection(parsed, section);
      assert.ok(part, section);
      assert.equal(`${part.type}/${part.subtype}`, type, section);
    }
    for (const missing of ['5', '1.1', '3.3', '4.3', '4.2.3', '4.2.2.3', '4.1.1', '0', '', 'x', '1.']) {
      assert.equal(partSection(parsed, missing), null, missing);
    }
    checkInvariants(parsed, raw.length);
  });

  it('§6.4.5: section text of the example', () => {
    const text = (spec: string): string => sectionBytes(raw, parsed, spec).toString('utf8');
    assert.equal(text('1'), 'part 1');
    assert.equal(text('3.1'), 'part 3.1');
    assert.equal(text('4.2.2.1'), 'part 4.2.2.1');
    assert.equal(text('4.2.2.2'), 'part 4.2.2.2');
    assert.equal(text('HEADER'), 'Subject: top\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="A"\r\n\r\n');
    assert.equal(text('3.HEADER'), 'Subject: three\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n');
    assert.equal(text('3.TEXT'), '--B\r\nContent-Type: text/plain\r\n\r\npart 3.1\r\n--B\r\nContent-Type: application/octet-stream\r\n\r\npart 3.2\r\n--B--');
    assert.equal(text('3'), inner3);
    assert.equal(text('4.1.MIME'), 'Content-Type: image/gif\r\nContent-ID: <gif>\r\n\r\n');
    assert.equal(text('4.2.HEADER'), 'Subject: four-two\r\nContent-Type: multipart/mixed; boundary="D"\r\n\r\n');
    assert.equal(text('4.2.HEADER.FIELDS (SUBJECT)'), 'Subject: four-two\r\n\r\n');
    assert.equal(text('4.2.MIME'), 'Content-Type: MESSAGE/RFC822\r\n\r\n');
    assert.ok(text('4.2.TEXT').startsWith('--D\r\nContent-Type: text/plain\r\n\r\npart 4.2.1\r\n--D\r\n'));
    // HEADER and TEXT only apply to message/rfc822 parts.
    assert.equal(text('4.1.HEADER'), '');
    assert.equal(text('4.TEXT'), '');
    assert.equal(text('1.TEXT'), '');
  });

  it('§7.5.2: BODYSTRUCTURE of the example is well formed', () => {
    const out = wire(bodyStructure(parsed, raw, true));
    assert.ok(out.startsWith('(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 1 NIL NIL NIL NIL)("APPLICATION" "OCTET-STREAM" NIL NIL NIL "7BIT" 6 NIL NIL NIL NIL)("MESSAGE" "RFC822" NIL NIL NIL "7BIT"'), out);
    assert.ok(out.includes('("IMAGE" "GIF" NIL "<gif>" NIL "7BIT" 8 NIL NIL NIL NIL)("MESSAGE" "RFC822"'), out);
    assert.ok(out.endsWith(' "MIXED" ("BOUNDARY" "A") NIL NIL NIL)'), out);
    const body = wire(bodyStructure(parsed, raw, false));
    assert.ok(body.includes('("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 1)(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 12 1)("TEXT" "RICHTEXT" NIL NIL NIL "7BIT" 12 1) "ALTERNATIVE") "MIXED")'), body);
    assert.ok(body.endsWith(' "MIXED")'), body);
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: section specs', () => {
  it('parses the RFC 9051 forms, case-insensitively', () => {
    assert.deepEqual(parseSectionSpec(''), { part: [], text: '', fields: [] });
    assert.deepEqual(parseSectionSpec('header'), { part: [], text: 'HEADER', fields: [] });
    assert.deepEqual(parseSectionSpec('Text'), { part: [], text: 'TEXT', fields: [] });
    assert.deepEqual(parseSectionSpec('1.2.3'), { part: [1, 2, 3], text: '', fields: [] });
    assert.deepEqual(parseSectionSpec('1.mime'), { part: [1], text: 'MIME', fields: [] });
    assert.deepEqual(parseSectionSpec('2.HEADER'), { part: [2], text: 'HEADER', fields: [] });
    assert.deepEqual(parseSectionSpec('2.TEXT'), { part: [2], text: 'TEXT', fields: [] });
    assert.deepEqual(parseSectionSpec('HEADER.FIELDS (A B)'), { part: [], text: 'HEADER.FIELDS', fields: ['A', 'B'] });
    assert.deepEqual(parseSectionSpec('header.fields.not (Date)'), { part: [], text: 'HEADER.FIELDS.NOT', fields: ['Date'] });
    assert.deepEqual(parseSectionSpec('2.HEADER.FIELDS (X)'), { part: [2], text: 'HEADER.FIELDS', fields: ['X'] });
    assert.deepEqual(parseSectionSpec('HEADER.FIELDS ("Subject" {4}\r\nDate)'), { part: [], text: 'HEADER.FIELDS', fields: ['Subject', 'Date'] });
  });

  it('throws SectionError for bad specs', () => {
    for (const bad of [
      'MIME',
      '0',
      '01',
      '1.',
      '.1',
      '1..2',
      'FOO',
      '1.FOO',
      'HEADER.FIELDS',
      'HEADER.FIELDS ()',
      'HEADER.FIELDS (A',
      'HEADER.FIELDS(A)',
      'HEADER.FIELDS (A) x',
      'HEADER.FIELDS (A:B)',
      'HEADER.FIELDS ({9}\r\nA)',
      'TEXT.MIME',
      ' HEADER',
      'HEADER ',
      '1.MIME.TEXT',
      '1.2.0',
      '99999999999999999999',
      '1 HEADER',
    ]) {
      assert.throws(() => parseSectionSpec(bad), SectionError, JSON.stringify(bad));
      assert.throws(() => sectionBytes(Buffer.from('a: b\r\n\r\nc'), parseMessage(Buffer.from('a: b\r\n\r\nc')), bad), SectionError, JSON.stringify(bad));
    }
  });

  it('HEADER.FIELDS keeps folding and order, and the blank line only when there is one', () => {
    const raw = Buffer.from('Subject: one\r\n two\r\nX-A: 1\r\nFrom: f@x\r\nx-a: 2\r\n\r\nbody');
    const parsed = parseMessage(raw);
    assert.equal(sectionBytes(raw, parsed, 'HEADER.FIELDS (x-a subject)').toString(), 'Subject: one\r\n two\r\nX-A: 1\r\nx-a: 2\r\n\r\n');
    assert.equal(sectionBytes(raw, parsed, 'HEADER.FIELDS.NOT (x-a subject)').toString(), 'From: f@x\r\n\r\n');
    const headerOnly = Buffer.from('Subject: s\r\nFrom: f@x');
    const p2 = parseMessage(headerOnly);
    assert.equal(sectionBytes(headerOnly, p2, 'HEADER.FIELDS (Subject)').toString(), 'Subject: s\r\n');
    assert.equal(sectionBytes(headerOnly, p2, 'HEADER').toString(), 'Subject: s\r\nFrom: f@x');
    assert.equal(sectionBytes(headerOnly, p2, 'TEXT').length, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: addresses and ENVELOPE', () => {
  const addr = (s: string): string => wire(parseAddressList(Buffer.from(s, 'utf8')).map((a) => [a.name, a.adl, a.mailbox, a.host].map((v) => (v === null ? null : Buffer.from(v, 'latin1')))));

  it('parses mailboxes, quoted names, comments and routes', () => {
    assert.equal(addr('Fred Foobar <foobar@Blurdybloop.example>'), '(("Fred Foobar" NIL "foobar" "Blurdybloop.example"))');
    assert.equal(addr('"Doe, John" <john@example.com>, jane@example.com (Jane Doe)'), '(("Doe, John" NIL "john" "example.com") ("Jane Doe" NIL "jane" "example.com"))');
    assert.equal(addr('John Q. Public <jqp@example.com>'), '(("John Q. Public" NIL "jqp" "example.com"))');
    assert.equal(addr('"Joe \\"The Man\\" Smith" <joe@x.test>'), '(("Joe \\"The Man\\" Smith" NIL "joe" "x.test"))');
    assert.equal(addr('<@route1,@route2:user@host.test>'), '((NIL "@route1,@route2" "user" "host.test"))');
    assert.equal(addr('"quoted local"@example.com'), '((NIL NIL "quoted local" "example.com"))');
    assert.equal(addr('root'), '((NIL NIL "root" ""))');
    assert.equal(addr('user@[192.0.2.1]'), '((NIL NIL "user" "[192.0.2.1]"))');
    // RFC 5322 Appendix A.5
    assert.equal(addr('Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>'), '(("Pete" NIL "pete" "silly.test"))');
    assert.equal(addr('=?UTF-8?B?5bGx55Sw?= <t@example.jp>'), '(("=?UTF-8?B?5bGx55Sw?=" NIL "t" "example.jp"))');
  });

  it('parses groups (RFC 5322 §3.4, Appendix A.1.3)', () => {
    assert.equal(addr('undisclosed-recipients:;'), '((NIL NIL "undisclosed-recipients" NIL) (NIL NIL NIL NIL))');
    assert.equal(
      addr('A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;'),
      '((NIL NIL "A Group" NIL) ("Ed Jones" NIL "c" "a.test") (NIL NIL "joe" "where.test") ("John" NIL "jdoe" "one.test") (NIL NIL NIL NIL))',
    );
    assert.equal(addr('Team: a@x.test; c@z.test'), '((NIL NIL "Team" NIL) (NIL NIL "a" "x.test") (NIL NIL NIL NIL) (NIL NIL "c" "z.test"))');
    assert.equal(addr('Open group: a@x.test'), '((NIL NIL "Open group" NIL) (NIL NIL "a" "x.test") (NIL NIL NIL NIL))');
  });

  it('does not throw on malformed lists', () => {
    for (const s of ['', ',,,', '<<<>>>', '@@@', '"unterminated', '(unterminated comment', 'a@b <c@d', ':;:;', '<>', ';;', '\\', '[', 'a@', '@b']) {
      assert.doesNotThrow(() => parseAddressList(Buffer.from(s)), s);
    }
    assert.deepEqual(parseAddressList(Buffer.from(',,,')), []);
  });

  it('ENVELOPE: Sender and Reply-To default to From, absent fields are NIL, groups and multiple addresses', () => {
    const raw = msg([
      'From: a@x.test',
      'Sender:',
      'To: undisclosed-recipients:;',
      'Cc: b@y.test, "C" <c@z.test>',
      'Bcc: d@w.test',
      'In-Reply-To: <parent@x.test>',
      'Subject: =?UTF-8?Q?caf=C3=A9?=',
      '',
      'body',
    ]);
    const env = wire(envelope(parseMessage(raw), raw));
    assert.equal(
      env,
      '(NIL "=?UTF-8?Q?caf=C3=A9?=" ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "b" "y.test")("C" NIL "c" "z.test")) ((NIL NIL "d" "w.test")) "<parent@x.test>" NIL)',
    );
    const empty = Buffer.from('\r\nno header');
    assert.equal(wire(envelope(parseMessage(empty), empty)), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: wire rendering', () => {
  it('renders atoms of the intermediate form', () => {
    assert.equal(wire(null), 'NIL');
    assert.equal(wire(42), '42');
    assert.equal(wire(''), '""');
    assert.equal(wire('abc'), '"abc"');
    assert.equal(wire('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(wire('line\r\nbreak'), '{11}\r\nline\r\nbreak');
    assert.equal(wire('café'), '{5}\r\ncafé');
    assert.equal(renderImapValue('café', { utf8: true }).toString('utf8'), '"café"');
    assert.deepEqual(renderImapValue(Buffer.from([0x61, 0xff]), { utf8: true }), Buffer.concat([Buffer.from('{2}\r\n'), Buffer.from([0x61, 0xff])]));
    assert.equal(wire(Buffer.from('a\0b')), '"ab"');
    assert.equal(wire([1, ['a', null], []]), '(1 ("a" NIL) ())');
    assert.equal(wire(joined([[1], [2], 'X', [3]], 2)), '((1)(2) "X" (3))');
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: structure edge cases', () => {
  it('caps nesting at MAX_DEPTH: 150 nested multiparts', () => {
    const levels = 150;
    let text = 'Content-Type: text/plain\r\n\r\ninnermost';
    for (let i = levels; i >= 1; i--) text = `Content-Type: multipart/mixed; boundary="b${i}"\r\n\r\n--b${i}\r\n${text}\r\n--b${i}--`;
    const raw = Buffer.from(text);
    const parsed = parseMessage(raw);
    checkInvariants(parsed, raw.length);
    const deepest = allParts(parsed).reduce((a, b) => (b.depth > a.depth ? b : a));
    assert.equal(deepest.depth, MAX_DEPTH);
    assert.equal(deepest.degraded, 'depth');
    assert.equal(`${deepest.type}/${deepest.subtype}`, 'application/octet-stream');
    assert.equal(partSection(parsed, Array(MAX_DEPTH - 1).fill('1').join('.')), deepest);
    assert.ok(wire(bodyStructure(parsed, raw, true)).length > 0);
  });

  it('caps nesting at MAX_DEPTH: 150 nested message/rfc822', () => {
    let text = 'Subject: innermost\r\n\r\ntext';
    for (let i = 0; i < 150; i++) text = `Subject: level ${i}\r\nContent-Type: message/rfc822\r\n\r\n${text}`;
    const raw = Buffer.from(text);
    const parsed = parseMessage(raw);
    checkInvariants(parsed, raw.length);
    assert.equal(Math.max(...allParts(parsed).map((p) => p.depth)), MAX_DEPTH);
    assert.ok(wire(bodyStructure(parsed, raw, true)).includes('"APPLICATION" "OCTET-STREAM"'));
    assert.ok(wire(envelope(parsed, raw)).startsWith('(NIL "level 149"'));
  });

  it('is linear on 20,000 nested multiparts (no recursion)', () => {
    const open: string[] = [];
    const close: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      open.push(`Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n`);
      close.push(`\r\n--n${i}--`);
    }
    const raw = Buffer.from(open.join('') + 'x' + close.reverse().join(''));
    const started = Date.now();
    const parsed = parseMessage(raw);
    assert.ok(Date.now() - started < 5000);
    checkInvariants(parsed, raw.length);
  });

  it('reads bare LF line ends', () => {
    const raw = Buffer.from('Subject: lf\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhello\nworld\n--x--\n');
    const parsed = parseMessage(raw);
    assert.equal(sectionBytes(raw, parsed, '1').toString(), 'hello\nworld');
    assert.equal(partSection(parsed, '1')?.lines, 2);
    assert.equal(sectionBytes(raw, parsed, 'HEADER.FIELDS (subject)').toString(), 'Subject: lf\n\r\n');
  });

  it('treats a part with no header as text/plain us-ascii (RFC 2045 §5.2)', () => {
    const raw = msg(['Content-Type: multipart/mixed; boundary=z', '', '--z', '', 'no header', '--z--', '']);
    assert.equal(wire(bodyStructure(parseMessage(raw), raw, false)), '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 9 1) "MIXED")');
  });

  it('a multipart in which no delimiter appears is text/plain', () => {
    const raw = msg(['Content-Type: multipart/mixed; boundary=never', '', 'just text', '']);
    const parsed = parseMessage(raw);
    assert.equal(parsed.root.degraded, 'no-parts');
    assert.equal(wire(bodyStructure(parsed, raw, false)), '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 11 1)');
  });

  it('message/rfc822 with base64 is a leaf; an unknown transfer encoding has no BINARY', () => {
    const raw = msg([
      'Content-Type: multipart/mixed; boundary=q',
      '',
      '--q',
      'Content-Type: message/rfc822',
      'Content-Transfer-Encoding: base64',
      '',
      'U3ViamVjdDogeA0KDQp5',
      '--q',
      'Content-Type: text/plain',
      'Content-Transfer-Encoding: x-uuencode',
      '',
      'begin 644 x',
      '--q--',
    ]);
    const parsed = parseMessage(raw);
    const first = partSection(parsed, '1')!;
    assert.equal(first.degraded, 'encoded-message');
    assert.equal(first.message, null);
    assert.equal(decodedPart(raw, first)?.toString(), 'Subject: x\r\n\r\ny');
    const second = partSection(parsed, '2')!;
    assert.equal(decodedPart(raw, second), null);
    assert.equal(binarySize(raw, second), null);
    assert.equal(decodedPart(raw, parsed)?.length, raw.length);
  });

  it('an invalid Content-Type means text/plain (RFC 2045 §5.2)', () => {
    const raw = msg(['Content-Type: garbage', '', 'x']);
    const parsed = parseMessage(raw);
    assert.equal(parsed.root.degraded, 'invalid-type');
    assert.equal(wire(bodyStructure(parsed, raw, true)), '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1 NIL NIL NIL NIL)');
  });

  it('RFC 2231 plain continuations are joined, comments after values dropped', () => {
    const raw = msg(['Content-Type: multipart/mixed; boundary*0=ab; boundary*1="cd" (comment)', '', '--abcd', '', 'x', '--abcd--']);
    const parsed = parseMessage(raw);
    assert.equal(parsed.root.children.length, 1);
    assert.equal(parsed.root.params.get('boundary'), 'abcd');
    assert.equal(wire(bodyStructure(parsed, raw, true)).endsWith('"MIXED" ("BOUNDARY" "abcd") NIL NIL NIL)'), true);
  });
});

// ---------------------------------------------------------------------------------------------

describe('IMAP MIME: transfer decoding and search text', () => {
  it('decodes quoted-printable (RFC 2045 §6.7)', () => {
    assert.equal(decodeQuotedPrintable(Buffer.from('a=3Db=\r\nc   \r\nd=ZZ')).toString(), 'a=bc\r\nd=ZZ');
    assert.equal(decodeQuotedPrintable(Buffer.from('caf=c3=a9=')).toString(), 'café');
    assert.equal(decodeQuotedPrintable(Buffer.from('x=\ny\n')).toString(), 'xy\n');
  });

  it('decodes base64 leniently (RFC 2045 §6.8)', () => {
    assert.equal(decodeBase64(Buffer.from('SGVs\r\nbG8=')).toString(), 'Hello');
    assert.equal(decodeBase64(Buffer.from('SG!Vs*bG8')).toString(), 'Hello');
    assert.equal(decodeBase64(Buffer.from('SGVsbG8=IGdhcmJhZ2U=')).toString(), 'Hello');
  });

  it('decodes unlabelled ISO-2022-JP and Shift_JIS header bytes', () => {
    const jis = Buffer.from('\x1b$B2q5D$N7o\x1b(B', 'latin1');
    const sjis = Buffer.from([0x8c, 0xa9, 0x90, 0xcf, 0x8f, 0x91]); // 見積書
    const raw = Buffer.concat([
      Buffer.from('Subject: '),
      jis,
      Buffer.from('\r\nX-Sjis: '),
      sjis,
      Buffer.from('\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n'),
      sjis,
      Buffer.from('\r\n'),
    ]);
    const text = searchableText(raw, parseMessage(raw));
    assert.deepEqual(text.headers.get('subject'), ['会議の件']);
    assert.deepEqual(text.headers.get('x-sjis'), ['見積書']);
    assert.ok(matchesText(text.body, '見積書'));
  });

  it('matches case-insensitively, Unicode-aware (RFC 9051 §6.4.4)', () => {
    assert.ok(matchesText('Hello World', 'WORLD'));
    assert.ok(matchesText('CAFÉ au lait', 'café'));
    assert.ok(matchesText('Cafe\u0301', 'CAFÉ')); // NFD against NFC
    assert.ok(matchesText('ΣΟΦΙΑ', 'σοφια'));
    assert.ok(matchesText('ＡＢＣ', 'ａｂｃ'));
    assert.ok(matchesText('会議の件について', '会議の件'));
    assert.ok(!matchesText('会議', '会議の件'));
    assert.ok(matchesText('anything', ''));
    assert.ok(!matchesText('abc', 'abd'));
  });
});

// ---------------------------------------------------------------------------------------------

const SECTION_SUFFIXES = ['', '.MIME', '.HEADER', '.TEXT', '.HEADER.FIELDS (Subject From)', '.HEADER.FIELDS.NOT (Content-Type)'];

/** Runs everything a FETCH or SEARCH could on `raw`: nothing may throw. */
function exercise(raw: Buffer): void {
  const parsed = parseMessage(raw);
  checkInvariants(parsed, raw.length);
  renderImapValue(bodyStructure(parsed, raw, true));
  renderImapValue(bodyStructure(parsed, raw, false));
  renderImapValue(envelope(parsed, raw), { utf8: true });
  searchableText(raw, parsed);
  for (const spec of ['', 'HEADER', 'TEXT', 'HEADER.FIELDS (Subject To)', 'HEADER.FIELDS.NOT (Subject)', '1', '1.MIME', '2.1', '3.HEADER']) {
    sectionBytes(raw, parsed, spec);
  }
  for (const part of allParts(parsed)) {
    if (part.section !== '') for (const suffix of SECTION_SUFFIXES) sectionBytes(raw, parsed, part.section + suffix);
    decodedPart(raw, part);
    binarySize(raw, part);
  }
}

const mimeLine = fc.oneof(
  fc.constantFrom(
    'Content-Type: multipart/mixed; boundary=A',
    'Content-Type: multipart/alternative; boundary="B"',
    'Content-Type: multipart/digest; boundary=A',
    'Content-Type: multipart/mixed',
    'Content-Type: message/rfc822',
    'Content-Type: message/global',
    'Content-Type: text/plain; charset=iso-2022-jp',
    'Content-Type: text/html; charset="shift_jis"',
    "Content-Type: application/octet-stream; name*0*=utf-8''%E6%97%A5; name*1=x; name*=bad'",
    'Content-Type: text/plain; charset=x-unknown-charset',
    'Content-Transfer-Encoding: base64',
    'Content-Transfer-Encoding: quoted-printable',
    'Content-Transfer-Encoding: x-weird',
    'Content-Disposition: attachment; filename="a b.pdf"; filename*=UTF-8\'\'%E2%82%AC',
    'Content-Language: en, (comment) ja',
    'From: "Doe, J" <j@x.test>, group: a@b.test;, (c) <@r:x@y>',
    'To: undisclosed-recipients:;',
    'Subject: =?ISO-2022-JP?B?GyRCMnE1RCRON28bKEI=?= =?utf-8?q?=E2=82=AC?=',
    ' folded continuation',
    '\tfolded with tab',
    '--A',
    '--A--',
    '--B',
    '--B--',
    '--A  ',
    '',
    '',
    'SGVsbG8=',
    '=E2=82=AC=',
    'no colon line',
  ),
  fc.string({ maxLength: 30 }),
);

const lineEnd = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r');

describe('IMAP MIME: properties', () => {
  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        exercise(Buffer.from(bytes));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on MIME-ish input', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(mimeLine, lineEnd), { maxLength: 60 }), (lines) => {
        exercise(Buffer.from(lines.map(([l, e]) => l + e).join(''), 'utf8'));
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary section specs', () => {
    const raw = readFileSync(path.join(FIXTURES, 'forwarded.eml'));
    const parsed = parseMessage(raw);
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.stringMatching(/^([1-9]\.){0,3}(HEADER\.FIELDS(\.NOT)? \([A-Za-z -]*\)|MIME|TEXT|HEADER)?$/)), (spec) => {
        try {
          sectionBytes(raw, parsed, spec);
        } catch (err) {
          assert.ok(err instanceof SectionError, String(err));
        }
      }),
      { numRuns: 500 },
    );
  });

  // A model of a well-formed message: serialized, parsed, and every part's body read back.
  type Model = { kind: 'leaf'; body: string } | { kind: 'multi'; children: Model[] } | { kind: 'msg'; inner: Model };
  const body = fc.array(fc.stringMatching(/^[a-z0-9 .:=]{0,12}$/), { maxLength: 4 }).map((lines) => lines.join('\r\n'));
  const { tree } = fc.letrec<{ tree: Model; leaf: Model; multi: Model; msg: Model }>((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('multi'), tie('msg')),
    leaf: body.map((b): Model => ({ kind: 'leaf', body: b })),
    multi: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }).map((children): Model => ({ kind: 'multi', children })),
    msg: fc.oneof(tie('leaf'), tie('multi')).map((inner): Model => ({ kind: 'msg', inner })),
  }));

  function serialize(model: Model, counter: { n: number }): string {
    if (model.kind === 'leaf') return `Content-Type: text/plain\r\n\r\n${model.body}`;
    if (model.kind === 'msg') return `Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n${serialize(model.inner, counter)}`;
    const boundary = `=_b${counter.n++}`;
    const parts = model.children.map((c) => `--${boundary}\r\n${serialize(c, counter)}\r\n`).join('');
    return `Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n${parts}--${boundary}--`;
  }

  /** [part number, expected BODY[part] (leaves only), type] for every part, with the model's numbering (RFC 9051 §6.4.5). */
  function expectations(model: Model, section: string, messageRoot: boolean, out: Array<[string, string, string]>): void {
    if (model.kind === 'leaf') {
      out.push([messageRoot ? (section === '' ? '1' : `${section}.1`) : section, model.body, 'text/plain']);
    } else if (model.kind === 'multi') {
      model.children.forEach((child, i) => expectations(child, section === '' ? String(i + 1) : `${section}.${i + 1}`, false, out));
    } else {
      out.push([section, '', 'message/rfc822']);
      expectations(model.inner, section, true, out);
    }
  }

  it('reads back every part of generated well-formed messages', () => {
    fc.assert(
      fc.property(
        tree.filter((m) => m.kind !== 'msg'),
        (model) => {
          const raw = Buffer.from(`Subject: outer\r\n${serialize(model, { n: 0 })}`);
          const parsed = parseMessage(raw);
          checkInvariants(parsed, raw.length);
          const out: Array<[string, string, string]> = [];
          expectations(model, '', true, out);
          for (const [section, expected, type] of out) {
            const part = partSection(parsed, section);
            assert.ok(part, section);
            assert.equal(`${part.type}/${part.subtype}`, type, section);
            if (type === 'text/plain') assert.equal(sectionBytes(raw, parsed, section).toString(), expected, section);
          }
          renderImapValue(bodyStructure(parsed, raw, true));
        },
      ),
      { numRuns: 200 },
    );
  });
});
