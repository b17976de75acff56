// IMAP protocol units: framer (client input → commands), parser (command → tokens), encoder
// (response pieces, modified UTF-7, dates). Examples from RFC 9051 / RFC 3501 / RFC 7888 /
// RFC 3516, limits and hostile input, and fast-check properties (chunking equivalence, only
// ImapSyntaxError escapes the parser, round trips).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ImapFramer, tagOf } from '../../src/imap/protocol/framer.js';
import {
  MAX_LIST_DEPTH,
  parseCommand,
  parseDateTime,
  parseSearchDate,
  parseSequenceSet,
  tokenText,
} from '../../src/imap/protocol/parser.js';
import {
  astring,
  decodeModifiedUtf7,
  encodeMailboxName,
  encodeModifiedUtf7,
  formatInternalDate,
  joinWire,
  list,
  literal,
  nstring,
  quoteOrLiteral,
  responseLine,
  type Wire,
} from '../../src/imap/protocol/encoder.js';
import { ImapSyntaxError, type FrameEvent, type FramerLimits, type ImapToken } from '../../src/imap/protocol/types.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const atom = (value: string): ImapToken => ({ type: 'atom', value });
const quoted = (value: string): ImapToken => ({ type: 'string', value: Buffer.from(value, 'utf8'), literal: false });
const lit = (value: string | Buffer): ImapToken => ({
  type: 'string',
  value: typeof value === 'string' ? Buffer.from(value, 'latin1') : value,
  literal: true,
});
const lst = (...items: ImapToken[]): ImapToken => ({ type: 'list', items });

/** Message from the RFC 9051 §6.3.12 APPEND example, CRLF line endings. */
const RFC_MESSAGE = [
  'Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)',
  'From: Fred Foobar <foobar@Blurdybloop.example>',
  'Subject: afternoon meeting',
  'To: mooch@owatagu.siam.edu.example',
  'Message-Id: <B27397-0100000@Blurdybloop.example>',
  'MIME-Version: 1.0',
  'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII',
  '',
  'Hello Joe, do you think we can meet at 3:30 tomorrow?',
  '',
].join('\r\n');

const LIMITS: FramerLimits = { maxLineLength: 8192, maxLiteralSize: 1024 * 1024, maxCommandSize: 2 * 1024 * 1024, literalPlus: true };

/** Events in a comparable plain form (Buffers as latin1 text). */
function plain(events: FrameEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === 'command' ? { ...e, bytes: e.bytes.toString('latin1'), literals: e.literals.map((l) => l.toString('latin1')) } : e,
  );
}

function frameAll(input: Buffer, limits: FramerLimits = LIMITS): FrameEvent[] {
  return new ImapFramer(limits).push(input);
}

function frameChunks(chunks: Buffer[], limits: FramerLimits = LIMITS): FrameEvent[] {
  const framer = new ImapFramer(limits);
  return chunks.flatMap((c) => framer.push(c));
}

function bytewise(input: Buffer): Buffer[] {
  return [...input].map((b) => Buffer.from([b]));
}

function expectSyntaxError(input: string | Buffer, tag: string | null, message?: RegExp): void {
  assert.throws(
    () => parseCommand(typeof input === 'string' ? B(input) : input),
    (e: unknown) => {
      assert.ok(e instanceof ImapSyntaxError, `expected ImapSyntaxError, got ${String(e)}`);
      assert.equal(e.tag, tag, `tag for ${JSON.stringify(String(input))}`);
      if (message) assert.match(e.message, message);
      return true;
    },
  );
}

describe('parseCommand: RFC examples', () => {
  const cases: Array<{ input: string | Buffer; tag: string; name: string; args: ImapToken[] }> = [
    { input: 'A142 SELECT INBOX\r\n', tag: 'A142', name: 'SELECT', args: [atom('INBOX')] },
    {
      input: `A003 APPEND saved-messages (\\Seen) {${RFC_MESSAGE.length}}\r\n${RFC_MESSAGE}\r\n`,
      tag: 'A003',
      name: 'APPEND',
      args: [atom('saved-messages'), lst(atom('\\Seen')), lit(RFC_MESSAGE)],
    },
    {
      input: 'A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n',
      tag: 'A654',
      name: 'FETCH',
      args: [atom('2:4'), lst(atom('FLAGS'), { type: 'section', name: 'BODY', section: 'HEADER.FIELDS (DATE FROM)' })],
    },
    {
      input: 'a UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE 12345)\r\n',
      tag: 'a',
      name: 'UID FETCH',
      args: [atom('1:*'), lst(atom('UID'), atom('FLAGS')), lst(atom('CHANGEDSINCE'), atom('12345'))],
    },
    {
      input: 'A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
      tag: 'A282',
      name: 'SEARCH',
      args: [atom('FLAGGED'), atom('SINCE'), atom('1-Feb-1994'), atom('NOT'), atom('FROM'), quoted('Smith')],
    },
    {
      input: 'A1 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n',
      tag: 'A1',
      name: 'LOGIN',
      args: [lit('FRED FOOBAR'), lit('fat man')],
    },
    {
      input: 'A1 LOGIN {11}\r\nFRED FOOBAR {7}\r\nfat man\r\n',
      tag: 'A1',
      name: 'LOGIN',
      args: [lit('FRED FOOBAR'), lit('fat man')],
    },
    {
      input: 't STORE 2:4 +FLAGS.SILENT (\\Deleted)\r\n',
      tag: 't',
      name: 'STORE',
      args: [atom('2:4'), atom('+FLAGS.SILENT'), lst(atom('\\Deleted'))],
    },
    { input: 'a LIST "" "%"\r\n', tag: 'a', name: 'LIST', args: [quoted(''), quoted('%')] },
    { input: 'A101 LIST "" *\r\n', tag: 'A101', name: 'LIST', args: [quoted(''), atom('*')] },
    {
      input: 'a LOGIN "fr\\"ed" "pa\\\\ss"\r\n',
      tag: 'a',
      name: 'LOGIN',
      args: [quoted('fr"ed'), quoted('pa\\ss')],
    },
    {
      input: 'a FETCH 1 BODY.PEEK[1.2.MIME]<0.1024>\r\n',
      tag: 'a',
      name: 'FETCH',
      args: [atom('1'), { type: 'section', name: 'BODY.PEEK', section: '1.2.MIME', partial: { offset: 0, length: 1024 } }],
    },
    {
      input: 'a FETCH 1 (BINARY[1] BINARY.SIZE[1] BODY[] BINARY.PEEK[1.2]<100.5>)\r\n',
      tag: 'a',
      name: 'FETCH',
      args: [
        atom('1'),
        lst(
          { type: 'section', name: 'BINARY', section: '1' },
          { type: 'section', name: 'BINARY.SIZE', section: '1' },
          { type: 'section', name: 'BODY', section: '' },
          { type: 'section', name: 'BINARY.PEEK', section: '1.2', partial: { offset: 100, length: 5 } },
        ),
      ],
    },
    {
      // Section names are case-insensitive; the section text is kept as written.
      input: 'a fetch 1 (body.peek[header.fields.not ("X-A]b" Bar)])\r\n',
      tag: 'a',
      name: 'FETCH',
      args: [atom('1'), lst({ type: 'section', name: 'BODY.PEEK', section: 'header.fields.not ("X-A]b" Bar)' })],
    },
    {
      // A literal inside a header list is legal (astring) and normalised to a quoted string.
      input: 'a FETCH 1 BODY[HEADER.FIELDS ({4}\r\nDATE)]\r\n',
      tag: 'a',
      name: 'FETCH',
      args: [atom('1'), { type: 'section', name: 'BODY', section: 'HEADER.FIELDS ("DATE")' }],
    },
    {
      input: Buffer.concat([B('A2 APPEND INBOX ~{3}\r\n'), Buffer.from([0x61, 0x00, 0x62]), B('\r\n')]),
      tag: 'A2',
      name: 'APPEND',
      args: [atom('INBOX'), { type: 'string', value: Buffer.from([0x61, 0x00, 0x62]), literal: true, binary: true }],
    },
    { input: 'a select [Gmail]/Sent\r\n', tag: 'a', name: 'SELECT', args: [atom('[Gmail]/Sent')] },
    { input: 'a SELECT foo[bar]/baz\r\n', tag: 'a', name: 'SELECT', args: [atom('foo[bar]/baz')] },
    { input: 'a uid store 1 FLAGS (\\Seen)\r\n', tag: 'a', name: 'UID STORE', args: [atom('1'), atom('FLAGS'), lst(atom('\\Seen'))] },
    { input: 'a X NIL nil\r\n', tag: 'a', name: 'X', args: [atom('NIL'), atom('nil')] },
    { input: 'a X (1 (2 (3)) ())\r\n', tag: 'a', name: 'X', args: [lst(atom('1'), lst(atom('2'), lst(atom('3'))), lst())] },
    { input: 'a NOOP\r\n', tag: 'a', name: 'NOOP', args: [] },
    { input: 'a NOOP\n', tag: 'a', name: 'NOOP', args: [] },
    { input: 'a NOOP', tag: 'a', name: 'NOOP', args: [] },
    { input: 'a] CAPABILITY\r\n', tag: 'a]', name: 'CAPABILITY', args: [] },
    { input: 'a STATUS blurdybloop (UIDNEXT MESSAGES)\r\n', tag: 'a', name: 'STATUS', args: [atom('blurdybloop'), lst(atom('UIDNEXT'), atom('MESSAGES'))] },
    { input: 'a SEARCH UTF8 "Entwürfe"\r\n', tag: 'a', name: 'SEARCH', args: [atom('UTF8'), quoted('Entwürfe')] },
    { input: 'a X {0}\r\n\r\n', tag: 'a', name: 'X', args: [lit('')] },
    { input: 'a X {2}\n\r\n\n', tag: 'a', name: 'X', args: [lit('\r\n')] },
    { input: 'a X  two   spaces \r\n', tag: 'a', name: 'X', args: [atom('two'), atom('spaces')] },
  ];
  for (const c of cases) {
    it(JSON.stringify(String(c.input)).slice(0, 90), () => {
      const input = typeof c.input === 'string' ? Buffer.from(c.input, 'utf8') : c.input;
      assert.deepEqual(parseCommand(input), { tag: c.tag, name: c.name, args: c.args });
    });
  }
});

describe('parseCommand: syntax errors', () => {
  const cases: Array<[string, string | null, RegExp?]> = [
    ['', null, /tag/i],
    ['\r\n', null, /tag/i],
    ['+ foo\r\n', null],
    ['* OK\r\n', null],
    ['a(b NOOP\r\n', null, /tag/i],
    ['a1\r\n', 'a1', /command/i],
    ['a1 \r\n', 'a1', /command/i],
    ['a1 UID\r\n', 'a1', /UID/],
    ['a1 UID \r\n', 'a1', /UID/],
    ['a1 FETCH (1\r\n', 'a1', /Unterminated list/],
    ['a1 FETCH 1)\r\n', 'a1', /Unbalanced/],
    ['a1 X "abc\r\n', 'a1', /Unterminated quoted/],
    ['a1 X "a\\b"\r\n', 'a1', /escape/],
    ['a1 X "a\0b"\r\n', 'a1', /NUL/],
    ['a1 X {5}\r\nab', 'a1', /truncated/],
    ['a1 X {5}abc\r\n', 'a1', /end the line/],
    ['a1 X {}\r\n', 'a1', /number/],
    ['a1 X {5\r\n', 'a1', /Malformed literal/],
    ['a1 X {9999999999999999}\r\n', 'a1', /too large/],
    ['a1 FETCH 1 BODY[1\r\n', 'a1', /Unterminated section/],
    ['a1 FETCH 1 BODY[1]<0>\r\n', 'a1', /Partial/],
    ['a1 FETCH 1 BODY[1]<0.0>\r\n', 'a1', /zero/],
    ['a1 FETCH 1 BODY[1]<0.5\r\n', 'a1', /partial/],
    ['a1 FETCH 1 BODY[1]x\r\n', 'a1', /Expected SP/],
    ['a1 FETCH 1 BODY[(]\r\n', 'a1', /Unterminated section/],
    ['a1 FETCH 1 BODY[)]\r\n', 'a1', /Unbalanced/],
    ['a1 X "a""b"\r\n', 'a1', /Expected SP/],
    ['a1 X (a)(b)\r\n', 'a1', /Expected SP/],
    ['a1 X abc\r\nextra', 'a1', /after the end/],
    ['a1 X a\rb\r\n', 'a1'],
    ['a1 X \u00e9\r\n', 'a1', /Unexpected character/],
    ['a1 X \x01\r\n', 'a1', /Unexpected character/],
  ];
  for (const [input, tag, message] of cases) {
    it(JSON.stringify(input), () => expectSyntaxError(input, tag, message));
  }

  it('100,000 nested parentheses: ImapSyntaxError, not RangeError', () => {
    expectSyntaxError(`a X ${'('.repeat(100_000)}${')'.repeat(100_000)}\r\n`, 'a', /nested too deeply/);
    expectSyntaxError(`a FETCH 1 BODY[${'('.repeat(100_000)}]\r\n`, 'a', /nested too deeply/);
  });

  it('accepts nesting up to the limit', () => {
    const depth = MAX_LIST_DEPTH;
    const cmd = parseCommand(B(`a X ${'('.repeat(depth)}x${')'.repeat(depth)}\r\n`));
    let t: ImapToken | undefined = cmd.args[0];
    for (let i = 0; i < depth; i++) {
      assert.equal(t?.type, 'list');
      t = t?.type === 'list' ? t.items[0] : undefined;
    }
    assert.deepEqual(t, atom('x'));
    expectSyntaxError(`a X ${'('.repeat(depth + 1)}x${')'.repeat(depth + 1)}\r\n`, 'a', /nested too deeply/);
  });

  it('limits the number of tokens', () => {
    expectSyntaxError(`a X ${'1 '.repeat(10_001)}\r\n`, 'a', /Too many/);
    assert.equal(parseCommand(B(`a X ${'1 '.repeat(10_000)}\r\n`)).args.length, 10_000);
  });
});

describe('parseSequenceSet', () => {
  const ok: Array<[string, ReturnType<typeof parseSequenceSet>]> = [
    ['1', [{ from: 1, to: 1 }]],
    ['1:*', [{ from: 1, to: Infinity }]],
    ['*', [{ from: Infinity, to: Infinity }]],
    ['*:4', [{ from: 4, to: Infinity }]],
    ['5:2', [{ from: 2, to: 5 }]],
    [
      '2,4:7,9,12:*',
      [
        { from: 2, to: 2 },
        { from: 4, to: 7 },
        { from: 9, to: 9 },
        { from: 12, to: Infinity },
      ],
    ],
    ['4294967295', [{ from: 4294967295, to: 4294967295 }]],
    ['$', '$'],
  ];
  for (const [text, expected] of ok) it(`parses ${text}`, () => assert.deepEqual(parseSequenceSet(text), expected));

  for (const bad of ['', '0', '1:0', '0:*', '1,,2', ',1', '1,', 'a', '1:', ':1', '01', '4294967296', '1,$', ' 1', '1:2:3', '-1', '1.5']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseSequenceSet(bad), ImapSyntaxError));
  }
});

describe('tokenText', () => {
  it('gives atoms, strings (UTF-8) and sections as text; lists throw', () => {
    assert.equal(tokenText(atom('INBOX')), 'INBOX');
    assert.equal(tokenText(quoted('Entwürfe')), 'Entwürfe');
    assert.equal(tokenText(lit('x y')), 'x y');
    assert.equal(tokenText({ type: 'section', name: 'BODY', section: '1', partial: { offset: 0, length: 5 } }), 'BODY[1]<0.5>');
    assert.throws(() => tokenText(lst()), ImapSyntaxError);
  });
});

describe('dates', () => {
  it('parseDateTime (APPEND date-time, RFC 9051 §9)', () => {
    assert.equal(parseDateTime('17-Jul-1996 02:44:25 -0700').toISOString(), '1996-07-17T09:44:25.000Z');
    assert.equal(parseDateTime(' 7-Feb-1994 21:52:25 -0800').toISOString(), '1994-02-08T05:52:25.000Z');
    assert.equal(parseDateTime('07-feb-1994 21:52:25 +0130').toISOString(), '1994-02-07T20:22:25.000Z');
    assert.equal(parseDateTime('7-Feb-1994 21:52:25 +0000').toISOString(), '1994-02-07T21:52:25.000Z');
    assert.equal(parseDateTime('29-Feb-2000 00:00:00 +0000').toISOString(), '2000-02-29T00:00:00.000Z');
    for (const bad of [
      '',
      '31-Feb-1994 21:52:25 -0800',
      '29-Feb-1900 00:00:00 +0000',
      '17-Jul-1996 24:00:00 +0000',
      '17-Jul-1996 23:60:00 +0000',
      '17-Foo-1996 02:44:25 -0700',
      '17-Jul-96 02:44:25 -0700',
      '17-Jul-1996 02:44:25',
      '17-Jul-1996 02:44:25 0700',
      '17-Jul-1996 02:44:25 -07000',
      '"17-Jul-1996 02:44:25 -0700"',
      '117-Jul-1996 02:44:25 -0700',
    ]) {
      assert.throws(() => parseDateTime(bad), ImapSyntaxError, bad);
    }
  });

  it('parseSearchDate (RFC 9051 §9 date)', () => {
    assert.equal(parseSearchDate('1-Feb-1994').toISOString(), '1994-02-01T00:00:00.000Z');
    assert.equal(parseSearchDate('01-feb-1994').toISOString(), '1994-02-01T00:00:00.000Z');
    assert.equal(parseSearchDate('31-Dec-0099').getUTCFullYear(), 99);
    for (const bad of ['', '1-Feb-94', '30-Feb-2000', '1 Feb 1994', '001-Feb-1994', '1-February-1994', '0-Feb-1994']) {
      assert.throws(() => parseSearchDate(bad), ImapSyntaxError, bad);
    }
  });

  it('formatInternalDate', () => {
    assert.equal(formatInternalDate(new Date(Date.UTC(1996, 6, 17, 9, 44, 25))), '17-Jul-1996 09:44:25 +0000');
    assert.equal(formatInternalDate(new Date(Date.UTC(2024, 0, 5, 0, 0, 7))), '05-Jan-2024 00:00:07 +0000');
    assert.throws(() => formatInternalDate(new Date(NaN)), RangeError);
  });

  it('property: parseDateTime(formatInternalDate(d)) is d to the second', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), (d) => {
        const seconds = Math.floor(d.getTime() / 1000) * 1000;
        assert.equal(parseDateTime(formatInternalDate(d)).getTime(), seconds);
      }),
    );
  });
});

describe('encoder', () => {
  const str = (w: Wire): string => (typeof w === 'string' ? w : w.toString('utf8'));

  it('quoteOrLiteral (RFC 9051 §4.3)', () => {
    assert.equal(quoteOrLiteral('hello'), '"hello"');
    assert.equal(quoteOrLiteral(''), '""');
    assert.equal(quoteOrLiteral('a"b\\c'), '"a\\"b\\\\c"');
    assert.deepEqual(quoteOrLiteral('a\r\nb'), B('{4}\r\na\r\nb'));
    assert.deepEqual(quoteOrLiteral(Buffer.from([0x61, 0])), Buffer.from([...B('{2}\r\n'), 0x61, 0]));
    assert.deepEqual(quoteOrLiteral('Entwürfe'), Buffer.concat([B('{9}\r\n'), Buffer.from('Entwürfe')]));
    assert.equal(quoteOrLiteral('Entwürfe', { utf8: true }), '"Entwürfe"');
    assert.ok(Buffer.isBuffer(quoteOrLiteral(Buffer.from([0xff, 0xfe]), { utf8: true })), 'invalid UTF-8 is a literal');
    assert.equal(quoteOrLiteral('x'.repeat(999)), `"${'x'.repeat(999)}"`);
    assert.ok(Buffer.isBuffer(quoteOrLiteral('x'.repeat(1000))));
  });

  it('nstring, astring, list, literal, responseLine', () => {
    assert.equal(nstring(null), 'NIL');
    assert.equal(nstring('x'), '"x"');
    assert.equal(astring('INBOX'), 'INBOX');
    assert.equal(astring('[Gmail]/Sent'), '[Gmail]/Sent');
    assert.equal(astring('Sent Items'), '"Sent Items"');
    assert.equal(astring('NIL'), '"NIL"');
    assert.equal(astring('a%b'), '"a%b"');
    assert.equal(astring('a*'), '"a*"');
    assert.equal(astring(''), '""');
    assert.equal(list(['FLAGS', list(['\\Seen', '\\Answered'])]), '(FLAGS (\\Seen \\Answered))');
    assert.equal(list([]), '()');
    assert.deepEqual(list(['BODY[]', literal(B('ab'))]), B('(BODY[] {2}\r\nab)'));
    assert.deepEqual(literal(Buffer.from([0]), { binary: true }), Buffer.from([...B('~{1}\r\n'), 0]));
    assert.deepEqual(
      responseLine('*', 'LIST', list(['\\HasNoChildren']), quoteOrLiteral('/'), encodeMailboxName('Entwürfe', { utf8: false })),
      B('* LIST (\\HasNoChildren) "/" Entw&APw-rfe\r\n'),
    );
    assert.equal(str(encodeMailboxName('Entwürfe', { utf8: true })), '"Entwürfe"');
    assert.equal(encodeMailboxName('INBOX', { utf8: true }), 'INBOX');
    assert.deepEqual(joinWire(['a', B(' b'), ' ü']), Buffer.from('a b ü'));
  });

  it('modified UTF-7 (RFC 3501 §5.1.3)', () => {
    const pairs: Array<[string, string]> = [
      ['Entwürfe', 'Entw&APw-rfe'],
      ['台北', '&U,BTFw-'],
      ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
      ['&', '&-'],
      ['A&B', 'A&-B'],
      ['INBOX', 'INBOX'],
      ['', ''],
      ['\u{1F600}', '&2D3eAA-'],
    ];
    for (const [text, wire] of pairs) {
      assert.equal(encodeModifiedUtf7(text), wire, text);
      assert.equal(decodeModifiedUtf7(wire), text, wire);
    }
    for (const bad of ['&', '&U,BTFw', '&U,BTF-', '&AGE-', '&2D0-', '&3gA-', 'é', 'a\tb', '&U/BTFw-', '&U,BTFx-', '&AOQ']) {
      assert.throws(() => decodeModifiedUtf7(bad), ImapSyntaxError, bad);
    }
  });

  it('property: modified UTF-7 round trip; decoding throws only ImapSyntaxError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const wire = encodeModifiedUtf7(s);
        assert.match(wire, /^[\x20-\x7e]*$/);
        assert.equal(decodeModifiedUtf7(wire), s);
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('&', '-', 'A', 'Q', ',', '+', '/', 'a', '2', 'D', 'é'), maxLength: 20 }), (s) => {
        try {
          decodeModifiedUtf7(s);
        } catch (e) {
          if (!(e instanceof ImapSyntaxError)) throw e;
        }
      }),
    );
  });

  it('property: what the encoder writes, the parser reads back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.boolean(), (bytes, utf8) => {
        const value = Buffer.from(bytes);
        const cmd = parseCommand(joinWire(['a X ', nstring(value, { utf8 }), '\r\n']));
        const t = cmd.args[0];
        assert.equal(t?.type, 'string');
        assert.deepEqual(t.type === 'string' ? t.value : null, value);
      }),
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 50 }), (s) => {
        fc.pre(!s.includes('['));
        const cmd = parseCommand(joinWire(['a X ', astring(s, { utf8: true }), '\r\n']));
        const t = cmd.args[0];
        assert.ok(t);
        assert.equal(tokenText(t), s);
      }),
    );
  });
});

describe('tagOf', () => {
  const cases: Array<[string, string | null]> = [
    ['A1 NOOP', 'A1'],
    ['abc', 'abc'],
    ['a]b X', 'a]b'],
    ['+ x', null],
    ['a+ x', null],
    ['* OK', null],
    ['', null],
    [' a', null],
    ['a(b', null],
    ['a\tb', null],
  ];
  for (const [line, tag] of cases) it(JSON.stringify(line), () => assert.equal(tagOf(line), tag));
});

describe('ImapFramer', () => {
  it('frames a simple command', () => {
    assert.deepEqual(plain(frameAll(B('A142 SELECT INBOX\r\n'))), [
      { kind: 'command', bytes: 'A142 SELECT INBOX\r\n', literals: [], line: 'A142 SELECT INBOX' },
    ]);
  });

  it('frames pipelined commands, bare LF, and skips empty lines', () => {
    assert.deepEqual(plain(frameAll(B('\r\na NOOP\r\n\nb CHECK\nc'))), [
      { kind: 'command', bytes: 'a NOOP\r\n', literals: [], line: 'a NOOP' },
      { kind: 'command', bytes: 'b CHECK\n', literals: [], line: 'b CHECK' },
    ]);
  });

  it('asks for a synchronising literal, then assembles the command (RFC 9051 APPEND example)', () => {
    const framer = new ImapFramer(LIMITS);
    const head = `A003 APPEND saved-messages (\\Seen) {${RFC_MESSAGE.length}}\r\n`;
    assert.deepEqual(framer.push(B(head)), [{ kind: 'continue', size: RFC_MESSAGE.length }]);
    assert.deepEqual(framer.push(B(RFC_MESSAGE.slice(0, 100))), []);
    const events = framer.push(B(`${RFC_MESSAGE.slice(100)}\r\nA004 NOOP\r\n`));
    assert.deepEqual(plain(events), [
      { kind: 'command', bytes: `${head}${RFC_MESSAGE}\r\n`, literals: [RFC_MESSAGE], line: head.slice(0, -2) },
      { kind: 'command', bytes: 'A004 NOOP\r\n', literals: [], line: 'A004 NOOP' },
    ]);
    const first = events[0];
    assert.ok(first?.kind === 'command');
    assert.deepEqual(parseCommand(first.bytes).args[2], lit(RFC_MESSAGE));
  });

  it('LITERAL+: no continuation requests (RFC 7888 example)', () => {
    const input = 'A1 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man\r\n';
    assert.deepEqual(plain(frameAll(B(input))), [
      { kind: 'command', bytes: input, literals: ['FRED FOOBAR', 'fat man'], line: 'A1 LOGIN {11+}' },
    ]);
  });

  it('zero-length and binary literals', () => {
    const input = Buffer.concat([B('a X {0}\r\n ~{3}\r\n'), Buffer.from([0, 0x0d, 0x0a]), B(' ~{2+}\r\n\n\n\r\n')]);
    const events = frameAll(input);
    assert.deepEqual(events.map((e) => e.kind), ['continue', 'continue', 'command']);
    assert.deepEqual(events[1], { kind: 'continue', size: 3 });
    const cmd = events[2];
    assert.ok(cmd?.kind === 'command');
    assert.deepEqual(cmd.literals, [Buffer.alloc(0), Buffer.from([0, 0x0d, 0x0a]), B('\n\n')]);
    assert.deepEqual(cmd.bytes, input);
  });

  it('refuses an over-limit synchronising literal without reading it (TOOBIG, not fatal)', () => {
    const limits = { ...LIMITS, maxLiteralSize: 100 };
    const framer = new ImapFramer(limits);
    assert.deepEqual(framer.push(B('a APPEND INBOX {101}\r\n')), [
      { kind: 'error', tag: 'a', code: 'TOOBIG', fatal: false, text: 'Literal too big' },
    ]);
    assert.equal(framer.bufferedBytes, 0);
    assert.deepEqual(plain(framer.push(B('b NOOP\r\n'))), [{ kind: 'command', bytes: 'b NOOP\r\n', literals: [], line: 'b NOOP' }]);
    // Exactly at the limit is fine.
    assert.deepEqual(new ImapFramer(limits).push(B('a APPEND INBOX {100}\r\n')), [{ kind: 'continue', size: 100 }]);
  });

  it('refuses a synchronising literal that would overflow the command size', () => {
    const limits = { ...LIMITS, maxLiteralSize: 100, maxCommandSize: 120 };
    const events = frameAll(B('a LOGIN {50}\r\n' + 'x'.repeat(50) + ' {50}\r\nc NOOP\r\n'), limits);
    assert.deepEqual(plain(events), [
      { kind: 'continue', size: 50 },
      { kind: 'error', tag: 'a', code: 'TOOBIG', fatal: false, text: 'Literal too big' },
      { kind: 'command', bytes: 'c NOOP\r\n', literals: [], line: 'c NOOP' },
    ]);
  });

  it('an over-limit non-synchronising literal is fatal and nothing more is read', () => {
    const framer = new ImapFramer({ ...LIMITS, maxLiteralSize: 100 });
    const events = framer.push(B('a APPEND INBOX {101+}\r\n' + 'x'.repeat(101) + '\r\nb NOOP\r\n'));
    assert.deepEqual(events, [{ kind: 'error', tag: 'a', code: 'TOOBIG', fatal: true, text: 'Literal too big' }]);
    assert.equal(framer.closed, true);
    assert.equal(framer.bufferedBytes, 0);
    assert.deepEqual(framer.push(B('c NOOP\r\n')), []);
  });

  it('LITERAL- (no LITERAL+): non-synchronising literals up to 4096 only (RFC 7888 §5)', () => {
    const limits = { ...LIMITS, literalPlus: false };
    assert.deepEqual(frameAll(B('a LOGIN {4096+}\r\n'), limits), []);
    const [e] = frameAll(B('a LOGIN {4097+}\r\n'), limits);
    assert.equal(e?.kind, 'error');
    assert.ok(e?.kind === 'error' && e.fatal && e.code === 'TOOBIG' && e.tag === 'a');
    // Synchronising literals are unaffected.
    assert.deepEqual(frameAll(B('a LOGIN {5000}\r\n'), limits), [{ kind: 'continue', size: 5000 }]);
    // Absurd sizes are just too big.
    assert.deepEqual(frameAll(B('a LOGIN {99999999999999999999999}\r\n')), [
      { kind: 'error', tag: 'a', code: 'TOOBIG', fatal: false, text: 'Literal too big' },
    ]);
  });

  it('a 10 MB line without CRLF is fatal after about the limit, with bounded memory', () => {
    const limits = { ...LIMITS, maxLineLength: 8192 };
    const framer = new ImapFramer(limits);
    const chunk = Buffer.alloc(1000, 0x61);
    chunk.write('t1 ', 0, 'latin1');
    let fed = 0;
    let maxBuffered = 0;
    let events: FrameEvent[] = [];
    while (fed < 10 * 1024 * 1024 && events.length === 0) {
      events = framer.push(fed === 0 ? chunk : chunk.fill(0x61));
      fed += chunk.length;
      maxBuffered = Math.max(maxBuffered, framer.bufferedBytes);
    }
    assert.deepEqual(events, [{ kind: 'error', tag: 't1', code: 'TOOBIG', fatal: true, text: 'Line too long' }]);
    assert.ok(fed <= limits.maxLineLength + 2 * chunk.length, `fed ${fed}`);
    assert.ok(maxBuffered <= limits.maxLineLength + 1, `buffered ${maxBuffered}`);
    assert.equal(framer.bufferedBytes, 0);
  });

  it('line limit: content of exactly maxLineLength passes, one more byte is fatal, in any chunking', () => {
    const limits = { ...LIMITS, maxLineLength: 20 };
    const okLine = B('a X ' + 'y'.repeat(16) + '\r\n');
    const longLine = B('a X ' + 'y'.repeat(17) + '\r\n');
    for (const split of [(b: Buffer) => [b], bytewise]) {
      assert.equal(frameChunks(split(okLine), limits)[0]?.kind, 'command');
      assert.deepEqual(frameChunks(split(longLine), limits), [{ kind: 'error', tag: 'a', code: 'TOOBIG', fatal: true, text: 'Line too long' }]);
      // The limit applies to continuation lines after a literal, too.
      const cont = Buffer.concat([B('b X {1+}\r\nz'), longLine]);
      assert.deepEqual(frameChunks(split(cont), limits), [{ kind: 'error', tag: 'b', code: 'TOOBIG', fatal: true, text: 'Line too long' }]);
    }
  });

  it('command size limit applies to lines too', () => {
    const limits = { ...LIMITS, maxLineLength: 30, maxCommandSize: 40 };
    const events = frameAll(B('a X {1+}\r\nz ' + 'y'.repeat(24) + ' {1}\r\nb NOOP\r\n'), limits);
    assert.deepEqual(plain(events), [
      { kind: 'error', tag: 'a', code: 'TOOBIG', fatal: false, text: 'Command too long' },
      { kind: 'command', bytes: 'b NOOP\r\n', literals: [], line: 'b NOOP' },
    ]);
    const fatal = frameAll(B('a X {1+}\r\nz ' + 'y'.repeat(24) + ' {1+}\r\nb NOOP\r\n'), limits);
    assert.deepEqual(fatal, [{ kind: 'error', tag: 'a', code: 'TOOBIG', fatal: true, text: 'Command too long' }]);
  });

  it('byte-by-byte feeding gives the same events as one chunk', () => {
    const script = Buffer.concat([
      B('\r\nA1 CAPABILITY\r\nA2 LOGIN {11}\r\nFRED FOOBAR {7+}\r\nfat man\r\n'),
      B(`A3 APPEND saved-messages (\\Seen) {${RFC_MESSAGE.length}}\r\n${RFC_MESSAGE}\r\n`),
      B('A4 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\nA5 APPEND x ~{2}\r\n\0\0\r\n'),
      B('A6 APPEND INBOX {2000000}\r\nA7 NOOP\r\n'),
    ]);
    const whole = frameAll(script);
    assert.deepEqual(
      whole.map((e) => e.kind),
      ['command', 'continue', 'command', 'continue', 'command', 'command', 'continue', 'command', 'error', 'command'],
    );
    assert.deepEqual(plain(frameChunks(bytewise(script))), plain(whole));
  });
});

// ---- properties -----------------------------------------------------------------------------

/** Pieces that make IMAP-looking input, valid or not. */
const IMAP_PIECES = [
  'a', 'A1', 't', ' ', ' ', ' ', 'FETCH', 'UID', 'APPEND', 'LOGIN', 'SEARCH', 'NOOP', 'INBOX', '(', ')', '((', '))',
  '"', '"x y"', '"\\""', '\\', '\\Seen', '{3}\r\nabc', '{0}\r\n', '{2+}\r\n\r\n', '~{2}\r\n\0\0', '{5}\r\n', '{',
  '}', '{1', '+', '~', 'BODY[', 'BODY.PEEK[', 'BINARY[1]', ']', '[', '<0.10>', '<', '.', '>', '<0>',
  'HEADER.FIELDS (DATE FROM)', '1:*', '5:2', '*', '%', '$', 'NIL', '\0', 'é', '\x7f', '\r\n', '\n', '\r', '1', '0',
  '99999999999999999999',
];
const imapish = fc.array(fc.constantFrom(...IMAP_PIECES), { maxLength: 40 }).map((p) => Buffer.from(p.join(''), 'utf8'));

function parsesOrSyntaxError(bytes: Buffer): void {
  try {
    const cmd = parseCommand(bytes);
    assert.equal(typeof cmd.tag, 'string');
    assert.ok(cmd.tag.length > 0);
    assert.equal(cmd.name, cmd.name.toUpperCase());
  } catch (e) {
    if (!(e instanceof ImapSyntaxError)) throw e;
  }
}

describe('properties', () => {
  it('parseCommand over arbitrary bytes throws only ImapSyntaxError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => parsesOrSyntaxError(Buffer.from(b))), { numRuns: 2000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => parsesOrSyntaxError(Buffer.concat([B('a FETCH '), Buffer.from(b)]))),
      { numRuns: 2000 },
    );
  });

  it('parseCommand over IMAP-ish input throws only ImapSyntaxError', () => {
    fc.assert(fc.property(imapish, (b) => parsesOrSyntaxError(b)), { numRuns: 3000 });
    fc.assert(fc.property(imapish, (b) => parsesOrSyntaxError(Buffer.concat([B('a X '), b]))), { numRuns: 3000 });
  });

  it('parseSequenceSet over arbitrary text throws only ImapSyntaxError; valid sets round-trip', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('1', '2', '0', '*', ':', ',', '$', '9', 'x'), maxLength: 20 }), (s) => {
        try {
          parseSequenceSet(s);
        } catch (e) {
          if (!(e instanceof ImapSyntaxError)) throw e;
        }
      }),
    );
    const num = fc.oneof(fc.integer({ min: 1, max: 0xffffffff }), fc.constant(Infinity));
    fc.assert(
      fc.property(fc.array(fc.tuple(num, num), { minLength: 1, maxLength: 10 }), (pairs) => {
        const show = (n: number): string => (n === Infinity ? '*' : String(n));
        const text = pairs.map(([a, b]) => (a === b ? show(a) : `${show(a)}:${show(b)}`)).join(',');
        const expected = pairs.map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) }));
        assert.deepEqual(parseSequenceSet(text), expected);
      }),
    );
  });

  const smallLimits: FramerLimits = { maxLineLength: 48, maxLiteralSize: 24, maxCommandSize: 120, literalPlus: true };
  const framerInput = fc.oneof(
    imapish,
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc
      .array(
        fc.oneof(
          fc.constantFrom(...IMAP_PIECES, '{30}\r\n', '{30+}\r\n', '{24}\r\n', '{24+}\r\n', '{4097+}\r\n', 'x'.repeat(50), '\r\n\r\n'),
          fc.string({ unit: 'binary-ascii', maxLength: 30 }),
        ),
        { maxLength: 30 },
      )
      .map((p) => Buffer.from(p.join(''), 'latin1')),
  );
  const chunked = framerInput.chain((input) =>
    fc
      .uniqueArray(fc.integer({ min: 1, max: Math.max(1, input.length - 1) }), { maxLength: 12 })
      .map((cuts) => ({ input, cuts: cuts.filter((c) => c < input.length).sort((a, b) => a - b) })),
  );

  it('framer: any chunking gives the events of one chunk, and never throws', () => {
    for (const literalPlus of [true, false]) {
      const limits = { ...smallLimits, literalPlus };
      fc.assert(
        fc.property(chunked, ({ input, cuts }) => {
          const chunks: Buffer[] = [];
          let prev = 0;
          for (const c of [...cuts, input.length]) {
            chunks.push(input.subarray(prev, c));
            prev = c;
          }
          const whole = frameAll(input, limits);
          assert.deepEqual(plain(frameChunks(chunks, limits)), plain(whole));
          // Commands respect the limits; only the last event can be fatal.
          whole.forEach((e, i) => {
            if (e.kind === 'command') assert.ok(e.bytes.length <= limits.maxCommandSize);
            if (e.kind === 'error' && e.fatal) assert.equal(i, whole.length - 1);
          });
        }),
        { numRuns: 1500 },
      );
    }
  });

  it('framer: byte-by-byte equals one chunk, and buffered bytes stay bounded', () => {
    fc.assert(
      fc.property(framerInput, (input) => {
        const framer = new ImapFramer(smallLimits);
        const events: FrameEvent[] = [];
        for (const chunk of bytewise(input)) {
          events.push(...framer.push(chunk));
          assert.ok(framer.bufferedBytes <= smallLimits.maxCommandSize + smallLimits.maxLineLength + 1);
        }
        assert.deepEqual(plain(events), plain(frameAll(input, smallLimits)));
      }),
      { numRuns: 500 },
    );
  });

  it('framer output that parses keeps its literals', () => {
    fc.assert(
      fc.property(imapish, (input) => {
        for (const e of frameAll(Buffer.concat([input, B('\r\n')]), smallLimits)) {
          if (e.kind !== 'command') continue;
          parsesOrSyntaxError(e.bytes);
          for (const l of e.literals) assert.ok(e.bytes.includes(l));
        }
      }),
      { numRuns: 1000 },
    );
  });
});
