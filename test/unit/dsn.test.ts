import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { buildDsn, decodeXtext, foldField, headerSection, originalSubject, type DsnInput, type DsnRecipient } from '../../src/dsn/report.js';
import { buildSubject, classifyStatus, explainStatus, type ExplainContext } from '../../src/dsn/explanations.js';

const ARRIVAL = new Date('2026-12-01T09:00:00Z');
const LAST = new Date('2026-12-01T18:05:00Z');
const UNTIL = new Date('2026-12-06T09:00:00Z');

const ORIGINAL = Buffer.from(
  'From: Alice <alice@example.org>\r\n' +
    'To: Bob <bob@example.com>\r\n' +
    'Subject: Quarterly figures\r\n' +
    'Message-ID: <orig-1@example.org>\r\n' +
    'MIME-Version: 1.0\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    '\r\n' +
    'Hello Bob,\r\n' +
    '\r\n' +
    'the figures are attached.\r\n',
);

function failedUnknownUser(): DsnRecipient {
  return {
    address: 'bob@example.com',
    orcpt: 'rfc822;bob+2Bx@example.com',
    action: 'failed',
    status: '5.1.1',
    reply: { code: 550, enhanced: '5.1.1', text: '<bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table', remoteMta: 'mx1.example.com' },
    lastAttemptAt: new Date('2026-12-01T09:00:05Z'),
  };
}

function delayedFull(): DsnRecipient {
  return {
    address: 'carol@example.net',
    orcpt: null,
    action: 'delayed',
    status: '4.2.2',
    reply: { code: 452, enhanced: '4.2.2', text: 'Mailbox full', remoteMta: 'mx.example.net' },
    lastAttemptAt: LAST,
    willRetryUntil: UNTIL,
    attempts: 5,
  };
}

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    reportingMta: 'mail.example.org',
    arrivalDate: ARRIVAL,
    envid: 'QQ314159',
    originalSender: 'alice@example.org',
    locales: ['en'],
    recipients: [failedUnknownUser()],
    original: ORIGINAL,
    returnContent: 'headers',
    now: new Date('2026-12-01T18:06:00Z'),
    messageId: '<dsn-1@mail.example.org>',
    ...over,
  };
}

// ---------------------------------------------------------------------------------------------
// A small raw MIME reader, independent of the code under test.

interface RawPart {
  headers: string;
  body: Buffer;
}

function splitHead(entity: Buffer): RawPart {
  const end = entity.indexOf('\r\n\r\n');
  assert.notEqual(end, -1, 'entity has a header section');
  return { headers: entity.subarray(0, end + 2).toString('utf8'), body: entity.subarray(end + 4) };
}

function header(headers: string, name: string): string | null {
  const unfolded = headers.replace(/\r\n[ \t]/g, ' ');
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(unfolded);
  return m ? (m[1] ?? '').trim() : null;
}

function parts(message: Buffer): { top: RawPart; parts: RawPart[] } {
  const top = splitHead(message);
  const ct = header(top.headers, 'Content-Type') ?? '';
  const boundary = /boundary="([^"]+)"/.exec(ct)?.[1];
  assert.ok(boundary, 'multipart boundary');
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const out: RawPart[] = [];
  let pos = message.indexOf(delimiter);
  assert.notEqual(pos, -1);
  for (;;) {
    const after = pos + delimiter.length;
    if (message.subarray(after, after + 2).toString() === '--') break;
    assert.equal(message.subarray(after, after + 2).toString(), '\r\n', 'delimiter line ends in CRLF');
    const next = message.indexOf(delimiter, after);
    assert.notEqual(next, -1, 'close delimiter present');
    out.push(splitHead(message.subarray(after + 2, next)));
    pos = next;
  }
  return { top, parts: out };
}

function humanPart(message: Buffer): string {
  const p = parts(message).parts[0]!;
  assert.match(header(p.headers, 'Content-Type') ?? '', /^text\/plain; charset=utf-8/);
  assert.equal(header(p.headers, 'Content-Transfer-Encoding'), 'base64');
  return Buffer.from(p.body.toString('ascii'), 'base64').toString('utf8');
}

/** The delivery-status groups: [per-message fields, per-recipient fields...], unfolded. */
function statusGroups(message: Buffer): Array<Map<string, string>> {
  const p = parts(message).parts[1]!;
  const text = p.body.toString('utf8').replace(/\r\n[ \t]/g, ' ');
  return text
    .split(/\r\n\r\n/)
    .filter((g) => g.trim() !== '')
    .map((g) => {
      const m = new Map<string, string>();
      for (const line of g.split('\r\n')) {
        if (line === '') continue;
        const colon = line.indexOf(':');
        m.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      return m;
    });
}

function assertWellFormedLines(message: Buffer): void {
  let start = 0;
  for (let i = 0; i < message.length; i++) {
    const b = message[i];
    if (b === 0x0a) {
      assert.equal(message[i - 1], 0x0d, `bare LF at offset ${i}`);
      assert.ok(i - 1 - start <= 998, `line at offset ${start} is ${i - 1 - start} octets`);
      start = i + 1;
    } else if (b === 0x0d) {
      assert.equal(message[i + 1], 0x0a, `bare CR at offset ${i}`);
    }
  }
  assert.equal(start, message.length, 'the message ends in CRLF');
}

// ---------------------------------------------------------------------------------------------

test('a failed 5.1.1 report is a multipart/report with the three parts and the RFC 3464 fields', async () => {
  const out = buildDsn(input());
  const { top, parts: p } = parts(out);
  assert.match(header(top.headers, 'Content-Type') ?? '', /^multipart\/report; report-type=delivery-status; boundary="/);
  assert.equal(header(top.headers, 'From'), '"Mail Delivery System" <MAILER-DAEMON@mail.example.org>');
  assert.equal(header(top.headers, 'To'), '<alice@example.org>');
  assert.equal(header(top.headers, 'Subject'), 'Delivery failed: Quarterly figures');
  assert.equal(header(top.headers, 'Date'), 'Tue, 01 Dec 2026 18:06:00 +0000');
  assert.equal(header(top.headers, 'Message-ID'), '<dsn-1@mail.example.org>');
  assert.equal(header(top.headers, 'MIME-Version'), '1.0');
  assert.equal(header(top.headers, 'Auto-Submitted'), 'auto-replied');
  assert.equal(p.length, 3);
  assert.match(header(p[0]!.headers, 'Content-Type') ?? '', /^text\/plain/);
  assert.equal(header(p[1]!.headers, 'Content-Type'), 'message/delivery-status');
  assert.equal(header(p[2]!.headers, 'Content-Type'), 'text/rfc822-headers');

  const [perMessage, rcpt, ...rest] = statusGroups(out);
  assert.equal(rest.length, 0);
  assert.equal(perMessage!.get('reporting-mta'), 'dns; mail.example.org');
  assert.equal(perMessage!.get('original-envelope-id'), 'QQ314159');
  assert.equal(perMessage!.get('arrival-date'), 'Tue, 01 Dec 2026 09:00:00 +0000');
  assert.equal(rcpt!.get('original-recipient'), 'rfc822; bob+x@example.com');
  assert.equal(rcpt!.get('final-recipient'), 'rfc822; bob@example.com');
  assert.equal(rcpt!.get('action'), 'failed');
  assert.equal(rcpt!.get('status'), '5.1.1');
  assert.equal(rcpt!.get('remote-mta'), 'dns; mx1.example.com');
  assert.equal(rcpt!.get('diagnostic-code'), 'smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table');
  assert.equal(rcpt!.get('last-attempt-date'), 'Tue, 01 Dec 2026 09:00:05 +0000');
  assert.equal(rcpt!.has('will-retry-until'), false);

  // The human part names the recipient, the cause, the remedy and the server's reply verbatim.
  const human = humanPart(out);
  assert.match(human, /bob@example\.com/);
  assert.match(human, /does not exist/);
  assert.match(human, /Check the spelling/);
  assert.ok(human.includes('550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table'));
  assert.match(human, /Last attempt: 2026-12-01 09:00 UTC/);
  assert.doesNotMatch(human, /日本語|宛先/);

  // mailparser agrees on the overall shape.
  const parsed = await simpleParser(out);
  assert.equal(parsed.subject, 'Delivery failed: Quarterly figures');
  assert.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
  const ct = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  assert.equal(ct.value, 'multipart/report');
  assert.equal(ct.params['report-type'], 'delivery-status');
  assert.match(parsed.text ?? '', /Check the spelling/);
  assert.ok(parsed.attachments.some((a) => a.contentType === 'text/rfc822-headers'));
});

test('a delayed 4.2.2 report in Japanese explains the full mailbox and the retry deadline', async () => {
  const out = buildDsn(input({ locales: ['ja'], recipients: [delayedFull()], returnContent: 'headers' }));
  const human = humanPart(out);
  assert.ok(human.includes('メールボックスが容量の上限に達しているため'), human);
  assert.ok(human.includes('2026年12月6日 09:00 (UTC)'), 'retry-until date in Japanese');
  assert.ok(human.includes('2026年12月1日 18:05 (UTC)'), 'last attempt in Japanese');
  assert.ok(human.includes('再送していただく必要はありません'));
  assert.ok(human.includes('お電話など別の方法'));
  assert.ok(human.includes('452 4.2.2 Mailbox full'));
  assert.doesNotMatch(human, /What happened/);

  const rcpt = statusGroups(out)[1]!;
  assert.equal(rcpt.get('action'), 'delayed');
  assert.equal(rcpt.get('status'), '4.2.2');
  assert.equal(rcpt.get('will-retry-until'), 'Sun, 06 Dec 2026 09:00:00 +0000');
  assert.equal(rcpt.has('original-recipient'), false);

  const parsed = await simpleParser(out);
  assert.equal(parsed.subject, '配信が遅れています: Quarterly figures');
  assert.equal(parsed.from?.value[0]?.address, 'MAILER-DAEMON@mail.example.org');
  assert.equal(parsed.from?.value[0]?.name, 'メール配信システム');
});

test('both languages are written, primary first, when locales has both', () => {
  for (const locales of [['en', 'ja'], ['ja', 'en']] as const) {
    const human = humanPart(buildDsn(input({ locales: [...locales], recipients: [failedUnknownUser(), delayedFull()] })));
    const en = human.indexOf('What happened');
    const ja = human.indexOf('原因');
    assert.ok(en !== -1 && ja !== -1, 'both languages present');
    assert.equal(en < ja, locales[0] === 'en', `${locales.join(',')}: order`);
    assert.match(human, /={20,}/, 'a separator line between the languages');
    assert.ok(human.includes('The mailbox of <carol@example.net> is full'));
    assert.ok(human.includes('宛先 <carol@example.net> のメールボックスが容量の上限に達しているため'));
  }
  const out = buildDsn(input({ locales: ['en', 'ja'] }));
  assert.equal(header(parts(out).parts[0]!.headers, 'Content-Language'), 'en, ja');
  assert.equal(header(parts(out).top.headers, 'Subject'), 'Delivery failed: Quarterly figures');
});

test('RET=HDRS returns exactly the header section; RET=FULL the whole message byte for byte', () => {
  const hdrs = buildDsn(input({ returnContent: 'headers' }));
  const third = parts(hdrs).parts[2]!;
  assert.equal(header(third.headers, 'Content-Type'), 'text/rfc822-headers');
  const expected = ORIGINAL.subarray(0, ORIGINAL.indexOf('\r\n\r\n') + 2);
  assert.ok(third.body.equals(expected), third.body.toString());
  assert.equal(hdrs.includes(Buffer.from('the figures are attached')), false);

  const full = buildDsn(input({ returnContent: 'full' }));
  const whole = parts(full).parts[2]!;
  assert.equal(header(whole.headers, 'Content-Type'), 'message/rfc822');
  assert.ok(full.includes(ORIGINAL));
  assert.ok(whole.body.subarray(0, ORIGINAL.length).equals(ORIGINAL), 'the part body is the original');
  assert.equal(whole.body.length, ORIGINAL.length, 'and nothing more');

  // 8-bit content is returned unchanged too, declared 8bit.
  const eight = Buffer.concat([ORIGINAL.subarray(0, ORIGINAL.length - 2), Buffer.from(' 日本語\r\n')]);
  const out8 = buildDsn(input({ returnContent: 'full', original: eight }));
  assert.ok(out8.includes(eight));
  assert.equal(header(parts(out8).parts[2]!.headers, 'Content-Transfer-Encoding'), '8bit');
  assert.equal(header(parts(out8).top.headers, 'Content-Transfer-Encoding'), '8bit');
  assertWellFormedLines(out8);

  // A message with lines no SMTP line may carry is still returned intact, as base64 message/global.
  const binary = Buffer.from(`Subject: big\r\n\r\n${'x'.repeat(5000)}\nbare\r\n`);
  const outBin = buildDsn(input({ returnContent: 'full', original: binary }));
  const binPart = parts(outBin).parts[2]!;
  assert.equal(header(binPart.headers, 'Content-Type'), 'message/global');
  assert.ok(Buffer.from(binPart.body.toString('ascii'), 'base64').equals(binary));
  assertWellFormedLines(outBin);
});

const CLASSES: Array<[string, string, string | RegExp, string | RegExp]> = [
  // status, action, English cause marker, Japanese cause marker
  ['5.2.2', 'failed', /mailbox of <bob@example\.com> is full/, 'メールボックスが容量の上限に達している'],
  ['4.2.2', 'delayed', /mailbox of <bob@example\.com> is full/, 'メールボックスが容量の上限に達している'],
  ['5.1.1', 'failed', /does not exist/, '存在しません'],
  ['5.1.2', 'failed', /domain "example\.com".*does not exist/, 'ドメイン「example.com」'],
  ['5.1.10', 'failed', /null MX/, 'Null MX'],
  ['5.3.4', 'failed', /larger than the recipient's server accepts/, 'サイズが'],
  ['5.2.3', 'failed', /larger than the recipient's server accepts/, 'サイズが'],
  ['5.7.1', 'failed', /policy reasons/, 'ポリシー上の理由'],
  ['5.7.26', 'failed', /SPF, DKIM or DMARC/, '送信ドメイン認証'],
  ['4.4.1', 'delayed', /did not answer/, '応答がありませんでした'],
  ['4.4.2', 'delayed', /broken off/, '切断されました'],
  ['4.4.3', 'delayed', /DNS/, 'DNS'],
  ['4.4.7', 'failed', /within the time Yubin keeps trying/, '再試行期間内に'],
  ['5.5.2', 'failed', /mail protocol/, '転送手順'],
  ['5.6.1', 'failed', /content or format/, '内容または形式'],
  ['2.0.0', 'delivered', /delivered successfully/, '正常に配信されました'],
];

function context(action: string, reply: ExplainContext['reply'] = null): ExplainContext {
  return {
    action: action as ExplainContext['action'],
    recipient: 'bob@example.com',
    reply,
    lastAttemptAt: LAST,
    willRetryUntil: action === 'delayed' ? UNTIL : null,
    messageSizeLimit: null,
    fileTransferHint: null,
  };
}

test('every status class gets its own explanation in both languages, never the generic fallback', () => {
  for (const locale of ['en', 'ja'] as const) {
    const generic = explainStatus('5.9.9', locale, context('failed')).cause;
    const seen = new Map<string, string>();
    for (const [status, action, enMarker, jaMarker] of CLASSES) {
      assert.notEqual(classifyStatus(status), 'generic', status);
      const { cause, remedy } = explainStatus(status, locale, context(action));
      assert.notEqual(cause, generic, `${status} ${locale}`);
      assert.ok(remedy.length > 0, `${status} ${locale}: a remedy`);
      const marker = locale === 'en' ? enMarker : jaMarker;
      if (typeof marker === 'string') assert.ok(cause.includes(marker), `${status} ${locale}: ${cause}`);
      else assert.match(cause, marker, `${status} ${locale}`);
      if (locale === 'ja') assert.match(cause + remedy, /[\u3040-\u30ff]/, `${status}: Japanese text`);
      const kind = classifyStatus(status);
      if (seen.has(kind)) continue;
      for (const [otherKind, otherCause] of seen) assert.notEqual(cause, otherCause, `${status} (${kind}) vs ${otherKind}`);
      seen.set(kind, cause);
    }
  }
});

test('the explanations carry the details a reader needs', () => {
  // Mailbox full, delayed: keeps trying until the date, last attempt, contact the recipient another way.
  const full = explainStatus('4.2.2', 'en', context('delayed'));
  assert.match(full.cause, /until 2026-12-06 09:00 UTC/);
  assert.match(full.cause, /last tried at 2026-12-01 18:05 UTC/);
  assert.match(full.cause, /not caused by your message/);
  assert.match(full.remedy, /phone/);
  assert.match(full.remedy, /delete old messages/);
  const fullJa = explainStatus('4.2.2', 'ja', context('delayed'));
  assert.ok(fullJa.cause.includes('2026年12月6日 09:00 (UTC) まで'));
  assert.ok(fullJa.remedy.includes('空き容量'));

  // Message too large: the limit in MB, and the file-transfer link (given or generic).
  const big = explainStatus('5.3.4', 'en', { ...context('failed'), messageSizeLimit: 10 * 1024 * 1024 });
  assert.match(big.cause, /10 MB/);
  assert.match(big.remedy, /file-transfer/);
  const bigJa = explainStatus('5.3.4', 'ja', { ...context('failed'), messageSizeLimit: 25 * 1024 * 1024, fileTransferHint: 'https://files.example.org/' });
  assert.ok(bigJa.cause.includes('25 MB'), bigJa.cause);
  assert.ok(bigJa.remedy.includes('https://files.example.org/'));
  assert.doesNotMatch(explainStatus('5.3.4', 'en', context('failed')).cause, /MB/);
  assert.match(explainStatus('5.3.4', 'en', { ...context('failed'), messageSizeLimit: 20_000_000 }).cause, /about 20 MB/);
  assert.match(explainStatus('5.3.4', 'en', { ...context('failed'), messageSizeLimit: 10_240_000 }).cause, /about 10\.2 MB/);

  // Policy: quotes the reply, do not resend unchanged, SPF/DKIM/DMARC.
  const reply = { code: 550, enhanced: '5.7.1', text: 'Message rejected as spam by Content Filtering.', remoteMta: 'mx.example.com' };
  const policy = explainStatus('5.7.1', 'en', context('failed', reply));
  assert.ok(policy.cause.includes('"550 5.7.1 Message rejected as spam by Content Filtering."'));
  assert.match(policy.remedy, /Do not send the message again unchanged/);
  assert.match(policy.remedy, /SPF, DKIM and DMARC/);
  assert.ok(explainStatus('5.7.1', 'ja', context('failed', reply)).cause.includes('「550 5.7.1 Message rejected as spam by Content Filtering.」'));

  // Network: nothing to fix in the message.
  assert.match(explainStatus('4.4.1', 'en', { ...context('failed'), attempts: 12 }).cause, /tried 12 times and has now given up/);
  assert.match(explainStatus('4.4.1', 'en', context('failed')).remedy, /nothing to fix in your message/);

  // The generic fallback states the code and quotes the reply.
  const odd = { code: 554, enhanced: '5.9.9', text: 'Something unusual', remoteMta: null };
  const generic = explainStatus('5.9.9', 'en', context('failed', odd));
  assert.match(generic.cause, /status 5\.9\.9/);
  assert.ok(generic.cause.includes('"554 5.9.9 Something unusual"'));
  assert.ok(explainStatus('5.9.9', 'ja', context('failed', odd)).cause.includes('ステータス 5.9.9'));
});

test('every line is CRLF-terminated and at most 998 octets, whatever the input', () => {
  const longReply = {
    code: 550,
    enhanced: '5.7.1',
    text: `${'word '.repeat(400)}${'x'.repeat(2000)}\r\nsecond line of a multi-line reply`,
    remoteMta: 'mx.example.com',
  };
  const longSubject = Buffer.from(`Subject: ${'長い件名'.repeat(200)}\r\nFrom: a@example.org\r\n\r\nbody\r\n`);
  for (const locales of [['en'], ['ja'], ['en', 'ja']] as const) {
    for (const returnContent of ['full', 'headers'] as const) {
      const out = buildDsn(
        input({
          locales: [...locales],
          returnContent,
          original: longSubject,
          recipients: [
            { ...failedUnknownUser(), status: '5.7.1', reply: longReply },
            delayedFull(),
            { address: 'dave@example.com', orcpt: null, action: 'delivered', status: '2.0.0', reply: null, lastAttemptAt: null },
          ],
        }),
      );
      assertWellFormedLines(out);
      const rcpt = statusGroups(out)[1]!;
      assert.match(rcpt.get('diagnostic-code') ?? '', /^smtp; 550 5\.7\.1 word word/);
      assert.match(rcpt.get('diagnostic-code') ?? '', /second line of a multi-line reply$/);
    }
  }
  const folded = foldField('Diagnostic-Code', `smtp; ${'y'.repeat(3000)}`);
  for (const line of folded.split('\r\n')) assert.ok(Buffer.byteLength(line) <= 998);
});

test('a non-ASCII original Subject is decoded and RFC 2047-encoded in the report', async () => {
  const subject = '見積書の件（至急）';
  const original = Buffer.from(`From: a@example.org\r\nSubject: =?UTF-8?B?${Buffer.from(subject).toString('base64')}?=\r\n\r\nbody\r\n`);
  assert.equal(originalSubject(original), subject);
  for (const locales of [['en'], ['ja']] as const) {
    const out = buildDsn(input({ locales: [...locales], original }));
    const top = parts(out).top;
    const raw = header(top.headers, 'Subject') ?? '';
    assert.match(raw, /^(=\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=\s*)+$/, raw);
    assert.ok(/^[\x20-\x7e\r\n\t]*$/.test(top.headers), 'the report header section is ASCII');
    const parsed = await simpleParser(out);
    assert.equal(parsed.subject, buildSubject('failed', locales[0], subject));
  }
  // Raw UTF-8 subjects (SMTPUTF8) and long ones are handled too.
  assert.equal(originalSubject(Buffer.from('Subject: 日本語\r\n\r\n')), '日本語');
  assert.equal(Array.from(originalSubject(Buffer.from(`Subject: ${'a'.repeat(300)}\r\n\r\n`)) ?? '').length, 101);
  assert.equal(originalSubject(Buffer.from('From: a@b\r\n\r\nSubject: not a header\r\n')), null);
  const parsed = await simpleParser(buildDsn(input({ original: Buffer.from('From: a@b\r\n\r\nx\r\n') })));
  assert.equal(parsed.subject, 'Delivery failed: (no subject)');
});

test('non-ASCII addresses use the utf-8 address type in message/global-delivery-status', () => {
  const out = buildDsn(
    input({
      recipients: [{ ...failedUnknownUser(), address: 'ユーザー@例え.jp', orcpt: 'utf-8;\\x{30E6}\\x{30FC}\\x{30B6}\\x{30FC}@\\x{4F8B}\\x{3048}.jp' }],
    }),
  );
  const p = parts(out).parts[1]!;
  assert.equal(header(p.headers, 'Content-Type'), 'message/global-delivery-status');
  const rcpt = statusGroups(out)[1]!;
  assert.equal(rcpt.get('final-recipient'), 'utf-8; ユーザー@例え.jp');
  assert.equal(rcpt.get('original-recipient'), 'utf-8; ユーザー@例え.jp');
  assertWellFormedLines(out);
  assert.equal(statusGroups(buildDsn(input()))[1]!.get('final-recipient'), 'rfc822; bob@example.com');
});

test('helpers: xtext, header section, subjects', () => {
  assert.equal(decodeXtext('bob+2Bx@example.com'), 'bob+x@example.com');
  assert.equal(decodeXtext('a+3Db+2b'), 'a=b+');
  assert.equal(decodeXtext('\\x{65E5}+2B', true), '日+');
  assert.equal(headerSection(Buffer.from('A: 1\r\nB: 2\r\n\r\nbody')).toString(), 'A: 1\r\nB: 2\r\n');
  assert.equal(headerSection(Buffer.from('A: 1\r\n')).toString(), 'A: 1\r\n');
  assert.equal(buildSubject('delayed', 'en', 'Hi'), 'Delivery delayed: Hi');
  assert.equal(buildSubject('delivered', 'en', 'Hi'), 'Delivered: Hi');
  assert.equal(buildSubject('failed', 'ja', 'Hi'), '配信できませんでした: Hi');
  assert.equal(buildSubject('delivered', 'ja', null), '配信しました: (件名なし)');
  // Mixed actions: the subject reports the most important one; every recipient gets a block.
  const out = buildDsn(input({ recipients: [delayedFull(), failedUnknownUser()] }));
  assert.equal(header(parts(out).top.headers, 'Subject'), 'Delivery failed: Quarterly figures');
  assert.equal(statusGroups(out).length, 3);
});
