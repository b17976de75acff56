// Parsing of one framed IMAP command (RFC 9051 §9 formal syntax, compatible with RFC 3501):
//
//   command = tag SP command-name [SP args] CRLF
//
// The parser is generic: it tokenizes arguments into atoms, strings (quoted or literal), nested
// lists and fetch-att sections; each command handler then interprets its own tokens. It never
// recurses (explicit stack, bounded depth and token count), so hostile input ends in an
// ImapSyntaxError, never in a RangeError or a runaway allocation. It throws nothing else.
//
// Leniencies (deliberate, common among servers): a bare LF may end the command (as the framer
// accepts it), the final CRLF may be missing, and runs of spaces between arguments are accepted.
//
// Known limit: "[" after BODY, BODY.PEEK, BINARY, BINARY.PEEK or BINARY.SIZE always starts a
// section, so an unquoted mailbox atom like `body[1]` comes back as a section token (tokenText
// rebuilds it, with the name upper-cased). Other atoms keep "[" as an ordinary ATOM-CHAR.
// Helpers that get text, not a command (parseSequenceSet, dates), throw with tag null: the
// handler knows the tag.

import { isTagChar } from './framer.js';
import { ImapSyntaxError, type ImapCommand, type ImapToken, type SequenceRange, type SequenceSet } from './types.js';

/** Deepest nesting of parenthesized lists (and of parentheses inside a section). */
export const MAX_LIST_DEPTH = 64;
/** Most tokens (atoms, strings, lists, sections, at any depth) in one command. */
export const MAX_TOKENS = 10_000;

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const LPAREN = 0x28;
const RPAREN = 0x29;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const TILDE = 0x7e;
const PLUS = 0x2b;
const LT = 0x3c;
const GT = 0x3e;
const DOT = 0x2e;

/** Fetch attributes that take a bracketed section (RFC 9051 §6.4.5, RFC 3516 §4.2). */
const SECTION_NAMES = new Set(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK', 'BINARY.SIZE']);

/**
 * Characters of an argument atom: ATOM-CHAR (RFC 9051 §9) plus what the grammar builds from
 * atoms with otherwise special characters: "\" for flags (\Seen), "%" and "*" for list-wildcards
 * and sequence sets (1:*), "]" (ASTRING-CHAR, e.g. mailbox "[Gmail]/Sent"). Excluded: SP, CTL,
 * 8-bit, "(", ")", "{" and DQUOTE, which start or end other tokens.
 */
function isAtomChar(c: number): boolean {
  return c > SP && c < 0x7f && c !== LPAREN && c !== RPAREN && c !== LBRACE && c !== DQUOTE;
}

function isDigit(c: number | undefined): c is number {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

class Reader {
  pos = 0;
  tag: string | null = null;
  tokens = 0;

  constructor(readonly buf: Buffer) {}

  peek(offset = 0): number | undefined {
    return this.buf[this.pos + offset];
  }

  fail(message: string): never {
    throw new ImapSyntaxError(message, this.tag);
  }

  countToken(): void {
    if (++this.tokens > MAX_TOKENS) this.fail('Too many arguments');
  }

  /** End of the command: CRLF, bare LF, or the end of the input (the last CRLF is optional). */
  atLineEnd(): boolean {
    const c = this.peek();
    return c === undefined || c === LF || (c === CR && this.peek(1) === LF);
  }

  /** Consumes the line end and requires that nothing follows it. */
  finish(): void {
    const c = this.peek();
    if (c === CR) this.pos += 2;
    else if (c === LF) this.pos += 1;
    if (this.pos < this.buf.length) this.fail('Unexpected data after the end of the command');
  }

  /** A run of ATOM-CHARs (possibly empty). */
  readAtomChars(stopAtBracket: boolean): string {
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === undefined || !isAtomChar(c) || (stopAtBracket && c === LBRACKET)) break;
      this.pos++;
    }
    return this.buf.toString('latin1', start, this.pos);
  }

  /** An unsigned decimal number of at most 15 digits (safe as a JS number). */
  readNumber(what: string): number {
    const start = this.pos;
    while (isDigit(this.peek())) this.pos++;
    const n = this.pos - start;
    if (n === 0) this.fail(`Expected a number in ${what}`);
    if (n > 15) this.fail(`Number too large in ${what}`);
    return Number(this.buf.toString('latin1', start, this.pos));
  }

  /** quoted = DQUOTE *QUOTED-CHAR DQUOTE (RFC 9051 §9); escapes are \" and \\ only. */
  readQuoted(): Buffer {
    this.pos++; // opening DQUOTE
    const parts: Buffer[] = [];
    let runStart = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === CR || c === LF) this.fail('Unterminated quoted string');
      if (c === 0) this.fail('NUL in quoted string');
      if (c === DQUOTE) {
        parts.push(this.buf.subarray(runStart, this.pos));
        this.pos++;
        return Buffer.concat(parts);
      }
      if (c === BACKSLASH) {
        const next = this.peek(1);
        if (next !== DQUOTE && next !== BACKSLASH) this.fail('Invalid escape in quoted string');
        parts.push(this.buf.subarray(runStart, this.pos));
        this.pos++; // the escaped character starts the next run
        runStart = this.pos;
      }
      this.pos++;
    }
  }

  /**
   * literal = "{" number64 ["+"] "}" CRLF *CHAR8 (RFC 9051 §9, RFC 7888), literal8 = "~{" ...
   * (RFC 3516). `pos` is at "{". NUL bytes in a plain literal are left to the handler to judge.
   */
  readLiteral(): Buffer {
    this.pos++; // {
    const size = this.readNumber('literal size');
    if (this.peek() === PLUS) this.pos++;
    if (this.peek() !== RBRACE) this.fail('Malformed literal');
    this.pos++;
    if (this.peek() === CR && this.peek(1) === LF) this.pos += 2;
    else if (this.peek() === LF) this.pos += 1;
    else this.fail('Literal announcement must end the line');
    if (size > this.buf.length - this.pos) this.fail('Literal truncated');
    const value = this.buf.subarray(this.pos, this.pos + size);
    this.pos += size;
    return value;
  }

  /**
   * The bracketed part of a fetch-att (RFC 9051 §9 section / section-binary), `pos` at "[".
   * Returns the raw text between the brackets: it may hold a parenthesized header list whose
   * names are astrings (quoted strings are kept as written; a literal, allowed by the grammar
   * but never seen in practice, is rewritten as the equivalent quoted string).
   */
  readSectionText(): string {
    this.pos++; // [
    let text = '';
    let depth = 0;
    let runStart = this.pos;
    const flush = (): void => {
      text += this.buf.toString('latin1', runStart, this.pos);
    };
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === CR || c === LF) this.fail('Unterminated section');
      if (c === RBRACKET && depth === 0) {
        flush();
        this.pos++;
        return text;
      }
      if (c === DQUOTE) {
        // Kept as written (part of the current run); only checked.
        if (!isPrintableAscii(this.readQuoted())) this.fail('Invalid characters in section');
        continue;
      }
      if (c === LBRACE || (c === TILDE && this.peek(1) === LBRACE)) {
        flush();
        if (c === TILDE) this.pos++;
        const value = this.readLiteral();
        if (!isPrintableAscii(value)) this.fail('Invalid characters in section');
        text += quoteAscii(value.toString('latin1'));
        runStart = this.pos;
        continue;
      }
      if (c === LPAREN) {
        if (++depth > MAX_LIST_DEPTH) this.fail('Section nested too deeply');
      } else if (c === RPAREN) {
        if (--depth < 0) this.fail('Unbalanced parenthesis in section');
      } else if (c < SP || c >= 0x7f) {
        this.fail('Invalid characters in section');
      }
      this.pos++;
    }
  }

  /** partial = "<" number64 "." nz-number64 ">" (RFC 9051 §9), `pos` at "<". */
  readPartial(): { offset: number; length: number } {
    this.pos++; // <
    const offset = this.readNumber('partial');
    if (this.peek() !== DOT) this.fail('Partial needs <offset.length>');
    this.pos++;
    const length = this.readNumber('partial');
    if (length === 0) this.fail('Partial length must not be zero');
    if (this.peek() !== GT) this.fail('Unterminated partial');
    this.pos++;
    return { offset, length };
  }

  /** One argument that is not a list: quoted, literal, literal8, section, or atom. */
  readToken(): ImapToken {
    const c = this.peek();
    if (c === DQUOTE) return { type: 'string', value: this.readQuoted(), literal: false };
    if (c === LBRACE) return { type: 'string', value: this.readLiteral(), literal: true };
    if (c === TILDE && this.peek(1) === LBRACE) {
      this.pos++;
      return { type: 'string', value: this.readLiteral(), literal: true, binary: true };
    }
    if (c === undefined || !isAtomChar(c)) this.fail('Unexpected character');
    const head = this.readAtomChars(true);
    if (this.peek() === LBRACKET) {
      const name = head.toUpperCase();
      if (SECTION_NAMES.has(name)) {
        const section = this.readSectionText();
        if (this.peek() === LT) return { type: 'section', name, section, partial: this.readPartial() };
        return { type: 'section', name, section };
      }
      // Not a fetch attribute: "[" is an ordinary ATOM-CHAR (e.g. mailbox foo[bar]).
      return { type: 'atom', value: head + this.readAtomChars(false) };
    }
    return { type: 'atom', value: head };
  }
}

function isPrintableAscii(b: Buffer): boolean {
  for (const c of b) if (c < SP || c >= 0x7f) return false;
  return true;
}

function quoteAscii(s: string): string {
  return `"${s.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

/**
 * Parses one whole command as framed by ImapFramer (lines and literals in place).
 * Throws ImapSyntaxError (with the tag once it was read) and nothing else.
 */
export function parseCommand(bytes: Buffer): ImapCommand {
  const r: Reader = new Reader(bytes);

  // tag = 1*<any ASTRING-CHAR except "+">
  const tagStart = r.pos;
  while (r.pos < bytes.length && isTagChar(bytes[r.pos] ?? 0)) r.pos++;
  if (r.pos === tagStart) r.fail('Missing tag');
  const tag = bytes.toString('latin1', tagStart, r.pos);
  if (r.peek() !== SP && !r.atLineEnd()) r.fail('Invalid tag');
  r.tag = tag;
  if (r.peek() !== SP) r.fail('Missing command');
  r.pos++;

  // command-name: an atom, case-insensitive; "UID" takes the next word (RFC 9051 §6.4.9).
  let name = r.readAtomChars(false).toUpperCase();
  if (name === '') r.fail('Missing command');
  if (name === 'UID') {
    if (r.peek() !== SP) r.fail('UID needs a command');
    r.pos++;
    const sub = r.readAtomChars(false).toUpperCase();
    if (sub === '') r.fail('UID needs a command');
    name = `UID ${sub}`;
  }

  // args: explicit stack of open lists instead of recursion.
  const args: ImapToken[] = [];
  const stack: ImapToken[][] = [args];
  let needSeparator = true; // an argument must be preceded by SP (or "(")
  for (;;) {
    if (r.atLineEnd()) {
      if (stack.length > 1) r.fail('Unterminated list');
      r.finish();
      break;
    }
    const c = r.peek();
    if (c === SP) {
      r.pos++;
      needSeparator = false;
      continue;
    }
    if (c === RPAREN) {
      if (stack.length === 1) r.fail('Unbalanced ")"');
      stack.pop();
      r.pos++;
      needSeparator = true;
      continue;
    }
    if (needSeparator) r.fail('Expected SP between arguments');
    const current = stack[stack.length - 1];
    if (current === undefined) r.fail('Parser state error');
    r.countToken();
    if (c === LPAREN) {
      if (stack.length > MAX_LIST_DEPTH) r.fail('Lists nested too deeply');
      const items: ImapToken[] = [];
      current.push({ type: 'list', items });
      stack.push(items);
      r.pos++;
      continue; // "(" needs no separator after it
    }
    current.push(r.readToken());
    needSeparator = true;
  }
  return { tag, name, args };
}

/**
 * sequence-set (RFC 9051 §9): comma-separated seq-number / seq-range, seq-number = nz-number / "*",
 * plus "$" (SEARCHRES, RFC 5182). `*` becomes Infinity. Finite ranges are ordered (5:2 → 2:5);
 * a range with `*` keeps `*` in `to`. Note for resolving: `n:*` means the range between n and the
 * largest number, so after substituting `*` a range may need ordering again (5:* with 3 messages
 * is 3:5).
 */
export function parseSequenceSet(text: string): SequenceSet {
  if (text === '$') return '$';
  if (text === '') throw new ImapSyntaxError('Empty sequence set');
  const ranges: SequenceRange[] = [];
  for (const part of text.split(',')) {
    const colon = part.indexOf(':');
    if (colon === -1) {
      const n = parseSeqNumber(part);
      ranges.push({ from: n, to: n });
      continue;
    }
    const a = parseSeqNumber(part.slice(0, colon));
    const b = parseSeqNumber(part.slice(colon + 1));
    ranges.push(a <= b ? { from: a, to: b } : { from: b, to: a });
  }
  return ranges;
}

/** seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT, at most 2^32-1. */
function parseSeqNumber(s: string): number {
  if (s === '*') return Infinity;
  if (!/^[1-9][0-9]{0,9}$/.test(s)) throw new ImapSyntaxError(`Invalid sequence number: ${s.slice(0, 20)}`);
  const n = Number(s);
  if (n > 0xffffffff) throw new ImapSyntaxError(`Sequence number too large: ${s}`);
  return n;
}

/** The text of an atom or string (UTF-8), or the canonical text of a section. Lists throw. */
export function tokenText(t: ImapToken): string {
  switch (t.type) {
    case 'atom':
      return t.value;
    case 'string':
      return t.value.toString('utf8');
    case 'section':
      return `${t.name}[${t.section}]${t.partial ? `<${t.partial.offset}.${t.partial.length}>` : ''}`;
    case 'list':
      throw new ImapSyntaxError('Expected a string, got a list');
  }
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

function monthIndex(s: string): number {
  const m = MONTHS.indexOf(s.toLowerCase());
  if (m === -1) throw new ImapSyntaxError(`Invalid month: ${s}`);
  return m;
}

function utcDate(year: number, month: number, day: number, h = 0, min = 0, sec = 0): Date {
  // Checks the day against the month (no 31-Feb), then builds the date; setUTCFullYear keeps
  // years below 100 literal (Date.UTC would map 0099 to 1999).
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  if (d.getUTCMonth() !== month || d.getUTCDate() !== day) throw new ImapSyntaxError('Invalid date');
  d.setUTCHours(h, min, sec, 0);
  return d;
}

/**
 * APPEND date-time (RFC 9051 §9): date-day-fixed "-" date-month "-" date-year SP time SP zone,
 * e.g. "17-Jul-1996 02:44:25 -0700" (the token's text, without the DQUOTEs). date-day-fixed is
 * (SP DIGIT) / 2DIGIT; a single digit is accepted too.
 */
export function parseDateTime(s: string): Date {
  const m = /^(?: ?(\d)|(\d\d))-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(s);
  if (!m) throw new ImapSyntaxError(`Invalid date-time: ${s.slice(0, 40)}`);
  const [, d1, d2, mon, year, hh, mm, ss, sign, zh, zm] = m;
  const day = Number(d1 ?? d2);
  const h = Number(hh);
  const min = Number(mm);
  const sec = Number(ss);
  const zoneH = Number(zh);
  const zoneM = Number(zm);
  if (h > 23 || min > 59 || sec > 60 || zoneH > 23 || zoneM > 59) throw new ImapSyntaxError(`Invalid date-time: ${s}`);
  const local = utcDate(Number(year), monthIndex(mon ?? ''), day, h, min, sec);
  const offsetMinutes = (sign === '-' ? -1 : 1) * (zoneH * 60 + zoneM);
  return new Date(local.getTime() - offsetMinutes * 60_000);
}

/**
 * SEARCH date (RFC 9051 §9): date-day "-" date-month "-" date-year, e.g. "1-Feb-1994" (the
 * token's text). Returns midnight UTC of that day; SEARCH compares dates only (§6.4.4).
 */
export function parseSearchDate(s: string): Date {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  if (!m) throw new ImapSyntaxError(`Invalid date: ${s.slice(0, 40)}`);
  return utcDate(Number(m[3]), monthIndex(m[2] ?? ''), Number(m[1]));
}
