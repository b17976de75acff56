// Delivery status notifications: the bounce, delay and success reports Yubin writes.
//
// RFC 3464 (message/delivery-status), RFC 6522 (multipart/report), RFC 3461 (ORCPT, ENVID, RET),
// RFC 3463 (enhanced status codes), RFC 6533 (UTF-8 addresses: message/global-delivery-status,
// message/global, message/global-headers), RFC 3834 (Auto-Submitted), RFC 2047 (Subject).
//
// The report has three parts:
//   1. text/plain (UTF-8, base64): what happened to each recipient and what to do, in plain words,
//      in one or two languages (primary first). This is what people read.
//   2. message/delivery-status: the machine-readable fields.
//   3. the original message (message/rfc822, byte for byte) or its header section
//      (text/rfc822-headers), as RET asked.
//
// A pure module: Buffer in, Buffer out. Every line ends in CRLF and is at most 998 octets.

import { hasEightBit } from '../mime/seven-bit.js';
import { randomBytes } from 'node:crypto';
import libmime from 'libmime';
import type { SmtpReplyRecord } from '../store/types.js';
import { actionPhrase, buildSubject, explainStatus, formatHumanDate, primaryAction } from './explanations.js';
import { rfc5322Date } from '../mime/headers.js';

export type DsnLocale = 'en' | 'ja';
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded';

export interface DsnRecipient {
  /** Final recipient (rfc822). */
  address: string;
  /** RFC 3461 ORCPT as received, e.g. "rfc822;bob@example.com" -> Original-Recipient. */
  orcpt: string | null;
  action: DsnAction;
  /** Enhanced status code, e.g. "5.1.1", "4.2.2", "2.0.0". */
  status: string;
  /** Last remote reply -> Remote-MTA and Diagnostic-Code: smtp; <code> <text verbatim>. */
  reply: SmtpReplyRecord | null;
  lastAttemptAt: Date | null;
  /** For delayed: when Yubin gives up. */
  willRetryUntil?: Date | null;
  attempts?: number;
  /** For 5.3.4 explanations: the size limit in bytes the refusing server announced, if known (overrides DsnInput.messageSizeLimit). */
  messageSizeLimit?: number | null;
}

export interface DsnInput {
  /** Our host name (Reporting-MTA: dns; host). */
  reportingMta: string;
  arrivalDate: Date;
  /** Original-Envelope-Id (xtext-decoded value as given). */
  envid: string | null;
  /** The envelope sender the report is written to (To: header). */
  originalSender: string;
  /** Languages of the human-readable part, primary first. */
  locales: DsnLocale[];
  recipients: DsnRecipient[];
  /** The original message, CRLF line ends. */
  original: Buffer;
  /** RET=FULL: the whole message; else the header section only. */
  returnContent: 'full' | 'headers';
  /** For 5.3.4 explanations: the limit in bytes, if known. */
  messageSizeLimit?: number | null;
  /** A sentence or URL about sending big files as a link instead (used for 5.3.4). */
  fileTransferHint?: string | null;
  /** Date: header; default now. */
  now?: Date;
  /** Message-ID for the report; default <random@reportingMta>. */
  messageId?: string;
}

const CRLF = '\r\n';
const MAX_LINE = 998;
/** Header lines are folded to this length where the value has blanks to fold at. */
const FOLD_AT = 78;

// ---------------------------------------------------------------------------------------------
// Small helpers

export { rfc5322Date };

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}

/** Control characters (CR, LF, tabs, NUL...) turned into single spaces; trimmed. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

/** An address with anything that could break a header or a field removed. */
function cleanAddress(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x20\x7f<>]+/g, '');
}

/**
 * One header field, folded (RFC 5322 §2.2.3) at blanks to about 78 octets per line; a run of
 * non-blank characters longer than a line is cut so that no line exceeds 998 octets.
 */
export function foldField(name: string, value: string): string {
  const first = `${name}:`;
  const lines: string[] = [];
  let line = first;
  for (const word of value.split(' ')) {
    if (word === '') continue;
    // A single word too long for any line is cut into pieces (the value gains blanks there).
    for (let rest = word; rest !== ''; ) {
      const piece = cutToBytes(rest, 900);
      rest = rest.slice(piece.length);
      if (line !== first && Buffer.byteLength(line) + 1 + Buffer.byteLength(piece) > FOLD_AT) {
        lines.push(line);
        line = ` ${piece}`;
      } else {
        line = `${line} ${piece}`;
      }
    }
  }
  lines.push(line);
  return lines.join(CRLF) + CRLF;
}

/** The longest prefix of s (whole code points) that fits in maxBytes UTF-8 octets. */
function cutToBytes(s: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, Math.max(end, 1));
}

/** RFC 3461 §4 xtext decoded ("bob+2Bx" -> "bob+x"); RFC 6533 \x{HHHH} too when unicode is set. */
export function decodeXtext(text: string, unicode = false): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(text[i] ?? '', 'utf8'));
    }
  }
  let out = Buffer.from(bytes).toString('utf8');
  if (unicode) {
    out = out.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (all, hex: string) => {
      const cp = parseInt(hex, 16);
      return cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
    });
  }
  return out;
}

/** ORCPT "addr-type;xtext" to [addr-type, decoded address]; null when unusable. */
export function parseOrcpt(orcpt: string): { type: string; address: string } | null {
  const semi = orcpt.indexOf(';');
  const type = semi === -1 ? 'rfc822' : orcpt.slice(0, semi).trim();
  const raw = semi === -1 ? orcpt : orcpt.slice(semi + 1);
  if (!/^[A-Za-z0-9-]+$/.test(type)) return null;
  const address = clean(decodeXtext(raw.trim(), type.toLowerCase() === 'utf-8'));
  if (address === '') return null;
  return { type, address };
}

/** The header section of a message: its field lines up to (not including) the empty line. */
export function headerSection(message: Buffer): Buffer {
  if (message.length >= 2 && message[0] === 0x0d && message[1] === 0x0a) return Buffer.alloc(0);
  if (message.length >= 1 && message[0] === 0x0a) return Buffer.alloc(0);
  const crlf = message.indexOf('\r\n\r\n');
  const lf = message.indexOf('\n\n');
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return message.subarray(0, crlf + 2);
  if (lf !== -1) return message.subarray(0, lf + 1);
  return message;
}

/** The original Subject, unfolded and RFC 2047-decoded; null when there is none. */
export function originalSubject(message: Buffer, maxChars = 100): string | null {
  const headers = headerSection(message).toString('utf8');
  const m = /(?:^|\n)subject[ \t]*:([^\n]*(?:\r?\n[ \t][^\n]*)*)/i.exec(headers);
  if (!m) return null;
  const raw = (m[1] ?? '').replace(/\r?\n(?=[ \t])/g, '');
  let decoded: string;
  try {
    decoded = raw.includes('=?') ? libmime.decodeWords(raw) : raw;
  } catch {
    decoded = raw;
  }
  decoded = clean(decoded);
  if (decoded === '') return null;
  const chars = Array.from(decoded);
  return chars.length > maxChars ? `${chars.slice(0, maxChars).join('')}…` : decoded;
}

/** How message bytes can be carried: 7bit, 8bit, or only encoded (over-long lines, bare CR/LF, NUL). */
function transferClass(bytes: Buffer): '7bit' | '8bit' | 'binary' {
  let eight = false;
  let lineLength = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x0d) {
      if (bytes[i + 1] !== 0x0a) return 'binary';
      i++;
      lineLength = 0;
      continue;
    }
    if (b === 0x0a || b === 0x00) return 'binary';
    if (b >= 0x80) eight = true;
    if (++lineLength > MAX_LINE) return 'binary';
  }
  return eight ? '8bit' : '7bit';
}


function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join(CRLF) + (lines.length > 0 ? CRLF : '');
}

/** A header value: as is when ASCII, else RFC 2047 B-encoded words (folded by foldField). */
function encodeHeaderText(text: string): string {
  return isAscii(text) ? text : libmime.encodeWord(text, 'B', 52);
}

// ---------------------------------------------------------------------------------------------
// Part 1: the human-readable explanation

function englishWrap(text: string, indent: string, width = 76): string[] {
  const out: string[] = [];
  for (const paragraph of text.split('\n')) {
    const words = paragraph.split(' ').filter((w) => w !== '');
    let line = '';
    for (const w of words) {
      if (line !== '' && indent.length + line.length + 1 + w.length > width) {
        out.push(indent + line);
        line = w;
      } else {
        line = line === '' ? w : `${line} ${w}`;
      }
    }
    out.push(indent + line);
  }
  return out;
}

/** Text lines for one language; English is wrapped at 76 columns, Japanese left to the reader's client. */
function textLines(text: string, indent: string, locale: DsnLocale): string[] {
  if (locale === 'en') return englishWrap(text, indent);
  return text.split('\n').map((l) => indent + l);
}

interface HumanLabels {
  intro: (host: string) => string;
  summary: Record<DsnAction, (n: number, total: number) => string>;
  subject: string;
  received: string;
  recipient: string;
  result: string;
  cause: string;
  remedy: string;
  reply: (mta: string | null) => string;
  lastAttempt: string;
  retryUntil: string;
  status: string;
  attached: (full: boolean) => string;
  otherLanguage: string;
  noSubject: string;
}

function jaWhich(n: number, total: number): string {
  return total === 1 ? '以下の宛先' : `以下の宛先のうち ${n} 件`;
}

const LABELS: Record<DsnLocale, HumanLabels> = {
  en: {
    intro: (host) => `This is the mail system (Yubin) at ${host}. This report was written automatically.`,
    summary: {
      failed: (n, total) => `Your message could not be delivered to ${total === 1 ? 'the recipient below' : `${n} of the recipients below`}.`,
      delayed: (n, total) =>
        `Delivery of your message to ${total === 1 ? 'the recipient below' : `${n} of the recipients below`} is delayed. Yubin is still trying; you do not need to send it again.`,
      delivered: (n, total) => `Your message was delivered to ${total === 1 ? 'the recipient below' : `${n} of the recipients below`}.`,
      relayed: (n, total) => `Your message was passed on to the mail system of ${total === 1 ? 'the recipient below' : `${n} of the recipients below`}.`,
      expanded: (n, total) => `Your message was delivered to ${total === 1 ? 'the forwarding address below' : `${n} forwarding addresses below`}.`,
    },
    subject: 'Subject',
    received: 'Received by Yubin',
    recipient: 'Recipient',
    result: 'Result',
    cause: 'What happened',
    remedy: 'What to do',
    reply: (mta) => (mta ? `Reply from the recipient's server (${mta})` : "Reply from the recipient's server"),
    lastAttempt: 'Last attempt',
    retryUntil: 'Yubin keeps trying until',
    status: 'Status code',
    attached: (full) =>
      full
        ? 'The original message and a machine-readable report are attached.'
        : 'The header of the original message and a machine-readable report are attached.',
    otherLanguage: '(日本語の説明は下にあります。)',
    noSubject: '(no subject)',
  },
  ja: {
    intro: (host) => `このメールは ${host} のメール配信システム (Yubin) から自動的に送信されています。`,
    summary: {
      failed: (n, total) => `お送りいただいたメッセージを、${jaWhich(n, total)}に配信できませんでした。`,
      delayed: (n, total) => `お送りいただいたメッセージの、${jaWhich(n, total)}への配信が遅れています。現在も配信を再試行していますので、再送していただく必要はありません。`,
      delivered: (n, total) => `お送りいただいたメッセージを、${jaWhich(n, total)}に配信しました。`,
      relayed: (n, total) => `お送りいただいたメッセージを、${jaWhich(n, total)}のメールシステムに引き渡しました。`,
      expanded: (n, total) => `お送りいただいたメッセージを、${jaWhich(n, total)}（転送用アドレス）に配信しました。`,
    },
    subject: '件名',
    received: '受付日時',
    recipient: '宛先',
    result: '結果',
    cause: '原因',
    remedy: '対処方法',
    reply: (mta) => (mta ? `受信側サーバー (${mta}) の応答` : '受信側サーバーの応答'),
    lastAttempt: '最終試行日時',
    retryUntil: '再試行の期限',
    status: 'ステータスコード',
    attached: (full) =>
      full ? '元のメッセージと、機械処理用の配信状況レポートを添付しています。' : '元のメッセージのヘッダーと、機械処理用の配信状況レポートを添付しています。',
    otherLanguage: '(An English explanation follows below.)',
    noSubject: '(件名なし)',
  },
};

function replyLines(reply: SmtpReplyRecord): string[] {
  const lines = reply.text.split(/\r\n|\r|\n/).map((l) => l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ' '));
  const first = lines.shift() ?? '';
  const head = [String(reply.code)];
  if (reply.enhanced && !first.trimStart().startsWith(reply.enhanced)) head.push(reply.enhanced);
  head.push(first);
  return [head.join(' ').trimEnd(), ...lines.filter((l) => l.trim() !== '')];
}

function humanText(input: DsnInput, locale: DsnLocale, withOther: boolean, subject: string | null): string[] {
  const L = LABELS[locale];
  const sep = locale === 'ja' ? '：' : ': ';
  const out: string[] = [];
  if (withOther) out.push(L.otherLanguage, '');
  out.push(...textLines(L.intro(input.reportingMta), '', locale), '');
  const byAction = new Map<DsnAction, number>();
  for (const r of input.recipients) byAction.set(r.action, (byAction.get(r.action) ?? 0) + 1);
  for (const action of ['failed', 'delayed', 'delivered', 'relayed', 'expanded'] as const) {
    const n = byAction.get(action);
    if (n) out.push(...textLines(L.summary[action](n, input.recipients.length), '', locale));
  }
  out.push('');
  out.push(`  ${L.subject}${sep}${subject ?? L.noSubject}`);
  out.push(`  ${L.received}${sep}${formatHumanDate(input.arrivalDate, locale)}`);
  for (const r of input.recipients) {
    const status = normalizeStatus(r.status, r.action);
    const { cause, remedy } = explainStatus(status, locale, {
      action: r.action,
      recipient: r.address,
      reply: r.reply,
      lastAttemptAt: r.lastAttemptAt,
      willRetryUntil: r.willRetryUntil ?? null,
      messageSizeLimit: r.messageSizeLimit ?? input.messageSizeLimit ?? null,
      fileTransferHint: input.fileTransferHint ?? null,
      attempts: r.attempts ?? null,
    });
    out.push('', '-'.repeat(60), '');
    out.push(`${L.recipient}${sep}${r.address}`);
    out.push(`${L.result}${sep}${actionPhrase(r.action, status, locale)}`);
    out.push('', `${L.cause}${sep.trimEnd()}`, ...textLines(cause, '  ', locale));
    out.push('', `${L.remedy}${sep.trimEnd()}`, ...textLines(remedy, '  ', locale), '');
    if (r.reply) {
      out.push(`${L.reply(r.reply.remoteMta)}${sep.trimEnd()}`);
      for (const l of replyLines(r.reply)) out.push(`  ${l}`);
    }
    if (r.lastAttemptAt) out.push(`${L.lastAttempt}${sep}${formatHumanDate(r.lastAttemptAt, locale)}`);
    if (r.action === 'delayed' && r.willRetryUntil) out.push(`${L.retryUntil}${sep}${formatHumanDate(r.willRetryUntil, locale)}`);
    out.push(`${L.status}${sep}${status}`);
  }
  out.push('', '-'.repeat(60), '');
  out.push(...textLines(L.attached(input.returnContent === 'full'), '', locale));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Part 2: the machine-readable delivery status

const STATUS_RE = /^[245]\.\d{1,3}\.\d{1,3}$/;

/** A valid RFC 3463 status; a placeholder from the action when the given one is malformed. */
function normalizeStatus(status: string, action: DsnAction): string {
  const s = status.trim();
  if (STATUS_RE.test(s)) return s;
  return action === 'failed' ? '5.0.0' : action === 'delayed' ? '4.0.0' : '2.0.0';
}

interface StatusPart {
  text: string;
  global: boolean;
}

function deliveryStatus(input: DsnInput): StatusPart {
  const recipients = input.recipients.map((r) => {
    const orcpt = r.orcpt ? parseOrcpt(r.orcpt) : null;
    const address = cleanAddress(r.address);
    const diag = r.reply ? clean(replyLines(r.reply).join(' ')) : null;
    return { r, orcpt, address, diag };
  });
  const envid = input.envid !== null ? clean(input.envid) : '';
  // RFC 6533: anything non-ASCII makes this a message/global-delivery-status (UTF-8 allowed).
  const global =
    !isAscii(envid) ||
    recipients.some((x) => !isAscii(x.address) || (x.orcpt && !isAscii(x.orcpt.address)) || (x.diag && !isAscii(x.diag)) || !isAscii(x.r.reply?.remoteMta ?? ''));

  const perMessage: string[] = [];
  perMessage.push(foldField('Reporting-MTA', `dns; ${clean(input.reportingMta)}`));
  if (envid !== '') perMessage.push(foldField('Original-Envelope-Id', envid));
  perMessage.push(foldField('Arrival-Date', rfc5322Date(input.arrivalDate)));

  const blocks = [perMessage.join('')];
  for (const { r, orcpt, address, diag } of recipients) {
    const f: string[] = [];
    if (orcpt) {
      const type = isAscii(orcpt.address) ? orcpt.type : 'utf-8';
      f.push(foldField('Original-Recipient', `${type}; ${orcpt.address}`));
    }
    f.push(foldField('Final-Recipient', `${isAscii(address) ? 'rfc822' : 'utf-8'}; ${address}`));
    f.push(foldField('Action', r.action));
    f.push(foldField('Status', normalizeStatus(r.status, r.action)));
    if (r.reply?.remoteMta) f.push(foldField('Remote-MTA', `dns; ${clean(r.reply.remoteMta)}`));
    if (diag) f.push(foldField('Diagnostic-Code', `smtp; ${diag}`));
    if (r.lastAttemptAt) f.push(foldField('Last-Attempt-Date', rfc5322Date(r.lastAttemptAt)));
    if (r.action === 'delayed' && r.willRetryUntil) f.push(foldField('Will-Retry-Until', rfc5322Date(r.willRetryUntil)));
    blocks.push(f.join(''));
  }
  return { text: blocks.join(CRLF), global };
}

// ---------------------------------------------------------------------------------------------
// The whole report

interface Part {
  headers: string[];
  body: Buffer;
  eightBit: boolean;
}

function returnedPart(input: DsnInput): Part {
  if (input.returnContent === 'full') {
    const original = input.original;
    const kind = transferClass(original);
    const utf8Headers = hasEightBit(headerSection(original));
    if (kind === 'binary') {
      // Not carriable as is (over-long lines, bare CR or LF): RFC 6532 §3.5 lets message/global
      // be base64-encoded, which keeps every byte.
      return {
        headers: ['Content-Type: message/global' + CRLF, 'Content-Description: Original message' + CRLF, 'Content-Transfer-Encoding: base64' + CRLF],
        body: Buffer.from(base64Lines(original)),
        eightBit: false,
      };
    }
    const type = utf8Headers ? 'message/global' : 'message/rfc822';
    const headers = [`Content-Type: ${type}${CRLF}`, 'Content-Description: Original message' + CRLF];
    if (kind === '8bit') headers.push('Content-Transfer-Encoding: 8bit' + CRLF);
    return { headers, body: original, eightBit: kind === '8bit' };
  }
  const section = headerSection(input.original);
  const kind = transferClass(section);
  const type = hasEightBit(section) ? 'message/global-headers' : 'text/rfc822-headers';
  const headers = [`Content-Type: ${type}${CRLF}`, 'Content-Description: Header of the original message' + CRLF];
  if (kind === 'binary') {
    headers.push('Content-Transfer-Encoding: base64' + CRLF);
    return { headers, body: Buffer.from(base64Lines(section)), eightBit: false };
  }
  if (kind === '8bit') headers.push('Content-Transfer-Encoding: 8bit' + CRLF);
  return { headers, body: section, eightBit: kind === '8bit' };
}

function newBoundary(): string {
  return `=_yubin-dsn-${randomBytes(12).toString('hex')}`;
}

/** The complete report: an RFC 5322 message with CRLF line ends. */
export function buildDsn(input: DsnInput): Buffer {
  if (input.recipients.length === 0) throw new Error('buildDsn: a report needs at least one recipient');
  const locales: DsnLocale[] = [];
  for (const l of input.locales) if ((l === 'en' || l === 'ja') && !locales.includes(l)) locales.push(l);
  if (locales.length === 0) locales.push('en', 'ja');
  const primary = locales[0]!;

  const host = clean(input.reportingMta).replace(/[\s<>]/g, '') || 'localhost';
  const subjectOriginal = originalSubject(input.original);
  const action = primaryAction(input.recipients.map((r) => r.action));

  // Part 1: the explanation, every language in one text/plain part, primary first.
  const textParts = locales.map((l, i) => humanText(input, l, locales.length > 1 && i === 0, subjectOriginal).join(CRLF));
  const human = textParts.join(CRLF + CRLF + '='.repeat(60) + CRLF + CRLF) + CRLF;
  const part1: Part = {
    headers: [
      'Content-Type: text/plain; charset=utf-8' + CRLF,
      `Content-Language: ${locales.join(', ')}${CRLF}`,
      'Content-Description: Notification' + CRLF,
      'Content-Transfer-Encoding: base64' + CRLF,
    ],
    body: Buffer.from(base64Lines(Buffer.from(human, 'utf8'))),
    eightBit: false,
  };

  // Part 2: message/delivery-status (or its RFC 6533 global form).
  const status = deliveryStatus(input);
  const part2: Part = {
    headers: [
      `Content-Type: ${status.global ? 'message/global-delivery-status' : 'message/delivery-status'}${CRLF}`,
      'Content-Description: Delivery report' + CRLF,
      ...(status.global ? ['Content-Transfer-Encoding: 8bit' + CRLF] : []),
    ],
    body: Buffer.from(status.text, 'utf8'),
    eightBit: status.global,
  };

  // Part 3: what RET asked for.
  const part3 = returnedPart(input);
  const parts = [part1, part2, part3];

  let boundary = newBoundary();
  while (parts.some((p) => p.body.includes(`--${boundary}`))) boundary = newBoundary();

  const eightBit = parts.some((p) => p.eightBit);
  const sender = cleanAddress(input.originalSender);
  const fromName = primary === 'ja' ? libmime.encodeWord('メール配信システム', 'B') : '"Mail Delivery System"';
  const messageId = input.messageId ? clean(input.messageId) : `<${randomBytes(16).toString('hex')}@${host}>`;
  const subject = buildSubject(action, primary, subjectOriginal);

  const head: string[] = [
    foldField('From', `${fromName} <MAILER-DAEMON@${host}>`),
    sender === '' ? `To: undisclosed-recipients:;${CRLF}` : foldField('To', `<${sender}>`),
    foldField('Subject', encodeHeaderText(subject)),
    foldField('Date', rfc5322Date(input.now ?? new Date())),
    foldField('Message-ID', messageId.startsWith('<') ? messageId : `<${messageId}>`),
    `MIME-Version: 1.0${CRLF}`,
    `Auto-Submitted: auto-replied${CRLF}`,
    `Content-Type: multipart/report; report-type=delivery-status;${CRLF} boundary="${boundary}"${CRLF}`,
  ];
  if (eightBit) head.push(`Content-Transfer-Encoding: 8bit${CRLF}`);

  const chunks: Buffer[] = [Buffer.from(head.join('') + CRLF + 'This is a MIME-formatted delivery status notification (RFC 3464).' + CRLF)];
  for (const p of parts) {
    chunks.push(Buffer.from(`${CRLF}--${boundary}${CRLF}${p.headers.join('')}${CRLF}`));
    chunks.push(p.body);
  }
  chunks.push(Buffer.from(`${CRLF}--${boundary}--${CRLF}`));
  return Buffer.concat(chunks);
}
