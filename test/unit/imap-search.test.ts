// The pure parts of SEARCH / SORT / THREAD: the search-key parser, the three-valued evaluator,
// base subjects, addresses and dates, the threading algorithms, and the decoded-text cache.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Encoding from 'encoding-japanese';
import { parseCommand } from '../../src/imap/protocol/parser.js';
import { ImapSyntaxError } from '../../src/imap/protocol/types.js';
import {
  BadCharsetError,
  needsBody,
  needsContent,
  parseSearchCommand,
  parseSearchKeys,
  parseSortCommand,
  parseThreadCommand,
  usesModSeq,
  type SearchKey,
} from '../../src/imap/search/query.js';
import { evaluate, type SearchEnv, type SearchMessage } from '../../src/imap/search/evaluate.js';
import { baseSubject, extractBaseSubject, firstMailbox, parseSentDate } from '../../src/imap/search/sortkeys.js';
import { formatThreads, threadOrderedSubject, threadReferences, type ThreadMessage } from '../../src/imap/search/thread.js';
import { buildMessageText, headerSection, TextCache, type MessageText } from '../../src/imap/search/content.js';
import { searchFold } from '../../src/mime/search-text.js';

/** The argument tokens of "t SEARCH <text>" as the real parser produces them. */
function args(text: string): ReturnType<typeof parseCommand>['args'] {
  return parseCommand(Buffer.from(`t SEARCH ${text}\r\n`)).args;
}

function keys(text: string): SearchKey {
  return parseSearchKeys(args(text));
}

function iso2022jp(text: string): Buffer {
  return Buffer.from(Encoding.convert(Encoding.stringToCode(text), { to: 'JIS', from: 'UNICODE', type: 'array' }));
}

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 10, 2, 12, 0, 0);

function env(overrides: Partial<SearchEnv> = {}): SearchEnv {
  return {
    now: NOW,
    maxSeq: 10,
    maxUid: 100,
    saved: new Set<number>(),
    contains: (h, n) => h.includes(searchFold(n)),
    ...overrides,
  };
}

function msg(overrides: Partial<SearchMessage> = {}): SearchMessage {
  return { seq: 1, uid: 10, flags: [], size: 1000, internalDate: new Date(Date.UTC(2026, 10, 1, 23, 30)), modSeq: 5, ...overrides };
}

const ISO_MAIL = Buffer.concat([
  Buffer.from(
    'From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <yamada@example.jp>\r\n' +
      'To: Bob <bob@example.test>\r\n' +
      `Subject: =?ISO-2022-JP?B?${iso2022jp('会議の件').toString('base64')}?=\r\n` +
      'Date: Tue, 03 Nov 2026 01:30:00 +0900\r\n' +
      'Message-ID: <kaigi@example.jp>\r\n' +
      'MIME-Version: 1.0\r\n' +
      'Content-Type: text/plain; charset=ISO-2022-JP\r\n' +
      'Content-Transfer-Encoding: 7bit\r\n' +
      '\r\n',
  ),
  iso2022jp('添付ファイルをご確認ください。'),
  Buffer.from('\r\n'),
]);

const PLAIN_MAIL = Buffer.from(
  'From: "Alice Example" <Alice@Sender.Example>\r\n' +
    'To: bob@example.test\r\n' +
    'Cc: carol@example.test\r\n' +
    'Subject: Quarterly REPORT\r\n' +
    'Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n' +
    'X-Tracking: abc123\r\n' +
    '\r\n' +
    'Hello Bob,\r\nthe numbers are in.\r\n',
);

describe('search-key parser', () => {
  it('parses every simple key', () => {
    const simple = ['ALL', 'ANSWERED', 'DELETED', 'DRAFT', 'FLAGGED', 'NEW', 'OLD', 'RECENT', 'SEEN', 'UNANSWERED', 'UNDELETED', 'UNDRAFT', 'UNFLAGGED', 'UNSEEN'];
    for (const word of simple) assert.doesNotThrow(() => keys(word), word);
    assert.deepEqual(keys('seen'), { kind: 'flag', flag: '\\Seen', set: true });
    assert.deepEqual(keys('UNSEEN'), { kind: 'flag', flag: '\\Seen', set: false });
  });

  it('parses keys with arguments', () => {
    assert.deepEqual(keys('FROM alice'), { kind: 'header', field: 'from', value: 'alice' });
    assert.deepEqual(keys('SUBJECT "two words"'), { kind: 'header', field: 'subject', value: 'two words' });
    assert.deepEqual(keys('HEADER X-Tracking ""'), { kind: 'header', field: 'x-tracking', value: '' });
    assert.deepEqual(keys('BODY {5}\r\nhello'), { kind: 'body', value: 'hello' });
    assert.deepEqual(keys('LARGER 100'), { kind: 'size', op: 'larger', n: 100 });
    assert.deepEqual(keys('SMALLER 5'), { kind: 'size', op: 'smaller', n: 5 });
    assert.deepEqual(keys('KEYWORD $Important'), { kind: 'flag', flag: '$Important', set: true });
    assert.deepEqual(keys('UNKEYWORD foo'), { kind: 'flag', flag: 'foo', set: false });
    assert.deepEqual(keys('SINCE 1-Feb-1994'), { kind: 'date', field: 'internal', op: 'since', date: new Date(Date.UTC(1994, 1, 1)) });
    assert.deepEqual(keys('SENTON "02-Nov-2026"'), { kind: 'date', field: 'sent', op: 'on', date: new Date(Date.UTC(2026, 10, 2)) });
    assert.deepEqual(keys('OLDER 3600'), { kind: 'within', op: 'older', seconds: 3600 });
    assert.deepEqual(keys('YOUNGER 60'), { kind: 'within', op: 'younger', seconds: 60 });
    assert.deepEqual(keys('MODSEQ 12'), { kind: 'modseq', modSeq: 12 });
    assert.deepEqual(keys('MODSEQ "/flags/\\\\draft" all 620162338'), { kind: 'modseq', modSeq: 620162338 });
    assert.deepEqual(keys('UID 1:*'), { kind: 'uid', set: [{ from: 1, to: Infinity }] });
    assert.deepEqual(keys('UID $'), { kind: 'uid', set: '$' });
    assert.deepEqual(keys('2,4:6'), { kind: 'seq', set: [{ from: 2, to: 2 }, { from: 4, to: 6 }] });
    assert.deepEqual(keys('$'), { kind: 'seq', set: '$' });
  });

  it('parses NOT, OR, groups and implicit AND', () => {
    assert.deepEqual(keys('NOT SEEN'), { kind: 'not', key: { kind: 'flag', flag: '\\Seen', set: true } });
    assert.deepEqual(keys('OR SEEN (FLAGGED DELETED)'), {
      kind: 'or',
      a: { kind: 'flag', flag: '\\Seen', set: true },
      b: { kind: 'and', keys: [{ kind: 'flag', flag: '\\Flagged', set: true }, { kind: 'flag', flag: '\\Deleted', set: true }] },
    });
    const k = keys('FLAGGED FROM x OR 1:3 NOT UID 5');
    assert.equal(k.kind, 'and');
    assert.equal(k.kind === 'and' && k.keys.length, 3);
  });

  it('refuses what is not a search program', () => {
    for (const bad of ['', 'FOO', 'FROM', 'LARGER x', 'LARGER -1', 'SINCE 31-Feb-2020', 'SINCE yesterday', 'OR SEEN', 'NOT', 'UID x', '()', 'HEADER "" x', 'OLDER 0', 'KEYWORD (a)']) {
      assert.throws(() => parseSearchKeys(bad === '' ? [] : args(bad)), ImapSyntaxError, bad);
    }
  });

  it('bounds nesting depth', () => {
    assert.doesNotThrow(() => keys('NOT '.repeat(500) + 'SEEN'));
    assert.throws(() => keys('NOT '.repeat(2000) + 'SEEN'), ImapSyntaxError);
  });

  it('parses RETURN and CHARSET', () => {
    const p = parseSearchCommand(args('RETURN (MIN MAX COUNT ALL SAVE) CHARSET utf-8 TEXT x'));
    assert.deepEqual([...p.returns!].sort(), ['ALL', 'COUNT', 'MAX', 'MIN', 'SAVE']);
    assert.equal(p.charset, 'UTF-8');
    assert.deepEqual([...parseSearchCommand(args('RETURN () ALL')).returns!], ['ALL']);
    assert.equal(parseSearchCommand(args('ALL')).returns, null);
    assert.equal(parseSearchCommand(args('CHARSET US-ASCII ALL')).charset, 'US-ASCII');
    assert.throws(() => parseSearchCommand(args('CHARSET KOI8-R ALL')), BadCharsetError);
    assert.throws(() => parseSearchCommand(args('RETURN (PARTIAL) ALL')), ImapSyntaxError);
    assert.throws(() => parseSearchCommand(args('RETURN ALL')), ImapSyntaxError);
  });

  it('parses SORT and THREAD arguments', () => {
    const s = parseSortCommand(args('(REVERSE DATE subject) UTF-8 ALL'));
    assert.deepEqual(s.criteria, [
      { key: 'DATE', reverse: true },
      { key: 'SUBJECT', reverse: false },
    ]);
    assert.throws(() => parseSortCommand(args('(REVERSE) UTF-8 ALL')), ImapSyntaxError);
    assert.throws(() => parseSortCommand(args('(NAME) UTF-8 ALL')), ImapSyntaxError);
    assert.throws(() => parseSortCommand(args('(DATE)')), ImapSyntaxError);
    assert.throws(() => parseSortCommand(args('(DATE) UTF-8')), ImapSyntaxError);
    assert.throws(() => parseSortCommand(args('(DATE) BIG5 ALL')), BadCharsetError);
    assert.equal(parseThreadCommand(args('references utf-8 ALL')).algorithm, 'REFERENCES');
    assert.equal(parseThreadCommand(args('ORDEREDSUBJECT US-ASCII SEEN')).algorithm, 'ORDEREDSUBJECT');
    assert.throws(() => parseThreadCommand(args('JWZ UTF-8 ALL')), ImapSyntaxError);
  });

  it('knows which programs need content or report MODSEQ', () => {
    assert.equal(needsContent(keys('SEEN LARGER 5 SINCE 1-Jan-2020')), false);
    assert.equal(needsContent(keys('OR SEEN NOT SUBJECT x')), true);
    assert.equal(needsContent(keys('SENTSINCE 1-Jan-2020')), true);
    assert.equal(usesModSeq(keys('OR SEEN MODSEQ 4')), true);
    assert.equal(usesModSeq(keys('SEEN')), false);
  });
});

describe('search evaluator', () => {
  it('matches flags, sizes, sets, MODSEQ and WITHIN without content', () => {
    const m = msg({ flags: ['\\Seen', '$Label1'], size: 500, seq: 3, uid: 30, modSeq: 7 });
    const e = env();
    const yes = ['ALL', 'SEEN', 'UNFLAGGED', 'KEYWORD $label1', 'UNKEYWORD other', 'LARGER 499', 'SMALLER 501', '3', '1:*', '2:4', 'UID 30', 'UID 25:*', 'MODSEQ 7', 'OLD', 'NOT RECENT', 'OR FLAGGED SEEN', 'YOUNGER 86400'];
    const no = ['UNSEEN', 'FLAGGED', 'KEYWORD other', 'LARGER 500', 'SMALLER 500', '4', 'UID 31', 'MODSEQ 8', 'NEW', 'RECENT', 'NOT SEEN', 'OLDER 86400', '(SEEN FLAGGED)'];
    for (const k of yes) assert.equal(evaluate(keys(k), m, null, e), true, k);
    for (const k of no) assert.equal(evaluate(keys(k), m, null, e), false, k);
  });

  it('"*" is the last message, whatever the range order', () => {
    const m = msg({ seq: 10, uid: 100 });
    assert.equal(evaluate(keys('UID 500:*'), m, null, env()), true); // n:* with n above the largest UID
    assert.equal(evaluate(keys('*:8'), m, null, env()), true);
    assert.equal(evaluate(keys('UID 99'), m, null, env()), false);
  });

  it('"$" is the saved result (UIDs), as a set and after UID', () => {
    const e = env({ saved: new Set([10, 12]) });
    assert.equal(evaluate(keys('$'), msg({ uid: 10 }), null, e), true);
    assert.equal(evaluate(keys('UID $'), msg({ uid: 12 }), null, e), true);
    assert.equal(evaluate(keys('$'), msg({ uid: 11, seq: 10 }), null, e), false);
  });

  it('compares internal dates by UTC day', () => {
    const m = msg({ internalDate: new Date(Date.UTC(2026, 10, 1, 23, 30)) });
    assert.equal(evaluate(keys('ON 1-Nov-2026'), m, null, env()), true);
    assert.equal(evaluate(keys('SINCE 1-Nov-2026'), m, null, env()), true);
    assert.equal(evaluate(keys('BEFORE 1-Nov-2026'), m, null, env()), false);
    assert.equal(evaluate(keys('BEFORE 2-Nov-2026'), m, null, env()), true);
    assert.equal(evaluate(keys('SINCE 2-Nov-2026'), m, null, env()), false);
  });

  it('is three-valued: content keys are unknown until the content is there', () => {
    const e = env();
    const m = msg({ flags: [] });
    assert.equal(evaluate(keys('SUBJECT x'), m, null, e), null);
    assert.equal(evaluate(keys('FLAGGED SUBJECT x'), m, null, e), false); // decided without content
    assert.equal(evaluate(keys('OR UNFLAGGED SUBJECT x'), m, null, e), true);
    assert.equal(evaluate(keys('NOT BODY x'), m, null, e), null);
    assert.equal(evaluate(keys('OR FLAGGED BODY x'), m, null, e), null);
  });

  it('matches decoded text case-insensitively', () => {
    const text = buildMessageText(PLAIN_MAIL);
    const m = msg();
    const e = env();
    const yes = ['FROM alice', 'FROM SENDER.example', 'FROM "Alice Example"', 'TO bob', 'CC carol', 'SUBJECT report', 'SUBJECT "quarterly report"', 'BODY NUMBERS', 'TEXT numbers', 'TEXT quarterly', 'TEXT x-tracking', 'HEADER X-Tracking ABC', 'HEADER x-tracking ""', 'SENTON 2-Nov-2026', 'SENTSINCE 2-Nov-2026', 'SENTBEFORE 3-Nov-2026', 'BODY ""'];
    const no = ['FROM bob', 'BCC bob', 'BODY quarterly', 'SUBJECT numbers', 'HEADER X-Other ""', 'HEADER X-Tracking zzz', 'SENTBEFORE 2-Nov-2026', 'SENTSINCE 3-Nov-2026', 'TEXT absent'];
    for (const k of yes) assert.equal(evaluate(keys(k), m, text, e), true, k);
    for (const k of no) assert.equal(evaluate(keys(k), m, text, e), false, k);
  });

  it('finds Japanese words in an ISO-2022-JP body and an encoded-word subject', () => {
    const text = buildMessageText(ISO_MAIL);
    const e = env();
    const utf8 = (s: string): string => s; // strings arrive decoded from UTF-8 by the parser
    assert.equal(evaluate(parseSearchKeys(args(`CHARSET UTF-8 SUBJECT {${Buffer.byteLength('会議')}}\r\n会議`).slice(2)), msg(), text, e), true);
    assert.equal(evaluate({ kind: 'body', value: utf8('添付ファイル') }, msg(), text, e), true);
    assert.equal(evaluate({ kind: 'text', value: '会議の件' }, msg(), text, e), true);
    assert.equal(evaluate({ kind: 'header', field: 'from', value: '山田' }, msg(), text, e), true);
    assert.equal(evaluate({ kind: 'body', value: '会議' }, msg(), text, e), false);
    // The Date: header's own day counts for SENT*, not the UTC day (2 Nov 16:30 UTC).
    assert.equal(evaluate(keys('SENTON 3-Nov-2026'), msg(), text, e), true);
    assert.equal(text.sort.subject, '会議の件');
  });

  it('treats a message without Date: as matching no SENT* key', () => {
    const text = buildMessageText(Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    for (const k of ['SENTON 1-Jan-2020', 'SENTBEFORE 1-Jan-2100', 'SENTSINCE 1-Jan-1970']) assert.equal(evaluate(keys(k), msg(), text, env()), false, k);
  });
});

describe('sort keys', () => {
  it('extracts base subjects (RFC 5256 §2.1)', () => {
    const cases: Array<[string, string, boolean]> = [
      ['Hello', 'Hello', false],
      ['Re: Hello', 'Hello', true],
      ['RE:  re: Fwd: Hello', 'Hello', true],
      ['Re[2]: Hello', 'Hello', true],
      ['[list] Re: Hello', 'Hello', true],
      ['Hello (fwd)', 'Hello', true],
      ['[Fwd: Re: Hello]', 'Hello', true],
      ['[PATCH] fix it', 'fix it', false],
      ['[PATCH]', '[PATCH]', false],
      ['  spaced\t  out  ', 'spaced out', false],
      ['Réponse: x', 'Réponse: x', false],
      ['', '', false],
    ];
    for (const [input, base, reply] of cases) assert.deepEqual(extractBaseSubject(input), { base, replyOrForward: reply }, input);
    assert.equal(baseSubject('Re: 会議の件'), '会議の件');
  });

  it('finds the first mailbox of an address field', () => {
    assert.equal(firstMailbox('"Doe, John" <john.doe@example.com>, other@example.com'), 'john.doe');
    assert.equal(firstMailbox('alice@example.com (Alice)'), 'alice');
    assert.equal(firstMailbox('Team: a@x.test, b@x.test;'), 'a');
    assert.equal(firstMailbox('"quoted local"@x.test'), 'quoted local');
    assert.equal(firstMailbox('undisclosed-recipients:;'), '');
    assert.equal(firstMailbox(undefined), '');
    assert.equal(firstMailbox('<@route.test:user@host.test>'), 'user');
  });

  it('parses sent dates', () => {
    assert.deepEqual(parseSentDate('Tue, 3 Nov 2026 01:30:00 +0900'), { time: Date.UTC(2026, 10, 2, 16, 30), day: Date.UTC(2026, 10, 3) });
    assert.equal(parseSentDate('3 Nov 26 01:30 GMT')?.time, Date.UTC(2026, 10, 3, 1, 30));
    assert.equal(parseSentDate('Mon, 02 Nov 2026 10:00:00 -0500 (EST)')?.time, Date.UTC(2026, 10, 2, 15, 0));
    assert.equal(parseSentDate('02 Nov 2026 10:00:00 PDT')?.time, Date.UTC(2026, 10, 2, 17, 0));
    assert.equal(parseSentDate('31 Feb 2026 10:00:00 +0000'), null);
    assert.equal(parseSentDate('yesterday'), null);
    assert.equal(parseSentDate(undefined), null);
  });
});

function tm(id: number, subject: string, sent: number, messageId: string | null = null, references: string[] = []): ThreadMessage {
  return { id, order: id, sent, subject, messageId, references };
}

describe('threading', () => {
  it('ORDEREDSUBJECT groups by base subject, threads by first date', () => {
    const roots = threadOrderedSubject([
      tm(1, 'Apples', 100),
      tm(2, 'Re: apples', 300),
      tm(3, 'Bananas', 200),
      tm(4, 'RE: Apples', 250),
      tm(5, 'Cherries', 50),
      tm(6, 'Fwd: Bananas', 400),
    ]);
    assert.equal(formatThreads(roots), '(5)(1 (4)(2))(3 6)');
  });

  it('REFERENCES follows the reference chains', () => {
    const roots = threadReferences([
      tm(1, 'Plan', 100, 'a@x'),
      tm(2, 'Re: Plan', 200, 'b@x', ['a@x']),
      tm(3, 'Re: Plan', 300, 'c@x', ['a@x', 'b@x']),
      tm(4, 'Re: Plan', 250, 'd@x', ['a@x']),
      tm(5, 'Other', 150, 'e@x'),
      tm(6, 'Re: Lost', 500, 'f@x', ['gone@x']),
      tm(7, 'Re: Lost', 600, 'g@x', ['gone@x']),
    ]);
    // 6 and 7 share a missing parent: a dummy root with two children.
    assert.equal(formatThreads(roots), '(1 (2 3)(4))(5)((6)(7))');
  });

  it('REFERENCES merges threads by subject and survives loops and duplicates', () => {
    const roots = threadReferences([
      tm(1, 'Topic', 100, 'a@x'),
      tm(2, 'Re: Topic', 200, 'b@x'), // no references: joined by subject under 1
      tm(3, 'Loop', 300, 'c@x', ['d@x']),
      tm(4, 'Re: Loop', 400, 'd@x', ['c@x']),
      tm(5, 'Dup', 500, 'a@x'),
      tm(6, '', 600, null),
    ]);
    // 3 names 4's id as its parent first; 4's reference to 3 would close a loop and is dropped.
    assert.equal(formatThreads(roots), '(1 2)(4 3)(5)(6)');
  });

  it('formats deep threads without recursion', () => {
    const chain: ThreadMessage[] = [];
    for (let i = 1; i <= 20_000; i++) chain.push(tm(i, 'deep', i, `m${i}@x`, i > 1 ? [`m${i - 1}@x`] : []));
    const out = formatThreads(threadReferences(chain));
    assert.ok(out.startsWith('(1 2 3 ') && out.endsWith(' 20000)'));
  });

  it('formats nothing as nothing', () => {
    assert.equal(formatThreads(threadReferences([])), '');
  });
});

describe('text cache', () => {
  function entry(chars: number): MessageText {
    return { headers: new Map(), body: '', sentDay: null, sentTime: null, sort: { subject: '', from: '', to: '', cc: '', date: null, messageId: '', references: '', inReplyTo: '' }, chars };
  }

  it('evicts the least recently used entry', () => {
    const cache = new TextCache({ maxEntries: 2, maxChars: 1000 });
    cache.set('a', entry(1));
    cache.set('b', entry(1));
    cache.get('a');
    cache.set('c', entry(1));
    assert.ok(cache.get('a'));
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('c'));
  });

  it('keeps within its character budget and skips huge entries', () => {
    const cache = new TextCache({ maxEntries: 100, maxChars: 100 });
    cache.set('big', entry(60));
    assert.equal(cache.size, 0);
    for (const k of ['a', 'b', 'c', 'd', 'e']) cache.set(k, entry(25));
    assert.equal(cache.size, 4);
    assert.equal(cache.get('a'), undefined);
  });

  it('reads a blob once, even for overlapping loads', async () => {
    const cache = new TextCache();
    let reads = 0;
    const read = async (): Promise<Buffer> => {
      reads++;
      await new Promise((r) => setTimeout(r, 5));
      return PLAIN_MAIL;
    };
    const [a, b] = await Promise.all([cache.load('x', read), cache.load('x', read)]);
    assert.equal(a, b);
    await cache.load('x', read);
    assert.equal(reads, 1);
    assert.equal(cache.hits, 1);
  });
});

describe('header-only search texts', () => {
  it('header keys and SENT* read no body; BODY and TEXT do', () => {
    assert.equal(needsBody(keys('HEADER Subject "invoice"')), false);
    assert.equal(needsBody(keys('FROM "kenji" SENTSINCE 1-Jan-2026')), false);
    assert.equal(needsBody(keys('OR SUBJECT "a" BODY "b"')), true);
    assert.equal(needsBody(keys('NOT TEXT "x"')), true);
  });

  it('the header section ends with the empty line; a header-only text has the same headers', () => {
    const raw = Buffer.from('Subject: =?UTF-8?B?6KuL5rGC5pu4?= invoice\r\nFrom: Kenji <k@example.test>\r\n\r\nbody text\r\n');
    assert.equal(headerSection(raw).toString(), 'Subject: =?UTF-8?B?6KuL5rGC5pu4?= invoice\r\nFrom: Kenji <k@example.test>\r\n\r\n');
    assert.equal(headerSection(Buffer.from('Subject: x\n\nbody\n')).toString(), 'Subject: x\n\n');
    assert.equal(headerSection(Buffer.from('Subject: no body')).toString(), 'Subject: no body');
    const whole = buildMessageText(raw);
    const headers = buildMessageText(headerSection(raw));
    assert.deepEqual([...headers.headers], [...whole.headers]);
    assert.deepEqual(headers.sort, whole.sort);
    assert.equal(headers.body, '');
  });
});
