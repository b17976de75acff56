// Building blocks of server responses (RFC 9051 §4 data formats, §7 responses).
//
// No writer object: every function returns a wire piece, `string` (ASCII, or UTF-8 text when a
// UTF-8 quoted string was allowed) or `Buffer` (when a literal carries raw bytes). The session
// assembles pieces with `responseLine` / `joinWire` and writes the resulting Buffer.

import { isUtf8 } from 'node:buffer';
import { ImapSyntaxError } from './types.js';

/** A piece of a response. Strings are encoded as UTF-8 when joined. */
export type Wire = string | Buffer;

export interface StringOptions {
  /**
   * The client accepts UTF-8 in quoted strings (IMAP4rev2, or UTF8=ACCEPT enabled: RFC 9051
   * §4.3, RFC 6855 §3). Otherwise any 8-bit byte forces a literal.
   */
  utf8?: boolean;
}

/** Longest content sent as a quoted string; longer values go as literals. */
const MAX_QUOTED = 1000;

const CRLF = Buffer.from('\r\n');

/** Whether `bytes` may be sent as a quoted string (RFC 9051 §4.3 / §9 quoted). */
function quotable(bytes: Buffer, utf8: boolean): boolean {
  if (bytes.length >= MAX_QUOTED) return false;
  let eightBit = false;
  for (const c of bytes) {
    if (c === 0x00 || c === 0x0d || c === 0x0a) return false;
    if (c >= 0x80) eightBit = true;
  }
  return !eightBit || (utf8 && isUtf8(bytes));
}

function quote(text: string): string {
  return `"${text.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
}

/** A literal: `{N}` CRLF followed by the bytes (RFC 9051 §4.3); `~{N}` with binary (RFC 3516). */
export function literal(bytes: Buffer, opts: { binary?: boolean } = {}): Buffer {
  return Buffer.concat([Buffer.from(`${opts.binary ? '~' : ''}{${bytes.length}}\r\n`), bytes]);
}

/**
 * string (RFC 9051 §4.3): a quoted string when the value is short and has no CR, LF, NUL or
 * (unless opts.utf8 allows valid UTF-8) 8-bit bytes; otherwise a literal.
 */
export function quoteOrLiteral(value: string | Buffer, opts: StringOptions = {}): Wire {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (quotable(bytes, opts.utf8 === true)) {
    return quote(typeof value === 'string' ? value : bytes.toString('utf8'));
  }
  return literal(bytes);
}

/** nstring = string / nil (RFC 9051 §4.5). */
export function nstring(value: string | Buffer | null, opts: StringOptions = {}): Wire {
  return value === null ? 'NIL' : quoteOrLiteral(value, opts);
}

/** ASTRING-CHAR (RFC 9051 §9): ATOM-CHAR or "]". */
function isAstringChar(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false;
  switch (c) {
    case 0x28: // (
    case 0x29: // )
    case 0x7b: // {
    case 0x25: // %
    case 0x2a: // *
    case 0x22: // "
    case 0x5c: // \
      return false;
    default:
      return true;
  }
}

/**
 * astring (RFC 9051 §9): a bare atom when every byte is an ASTRING-CHAR (and it is not "NIL",
 * which clients may read as nil), otherwise a quoted string or literal.
 */
export function astring(value: string | Buffer, opts: StringOptions = {}): Wire {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  if (bytes.length > 0 && bytes.length < MAX_QUOTED && bytes.every(isAstringChar)) {
    const text = bytes.toString('latin1');
    if (text.toUpperCase() !== 'NIL') return text;
  }
  return quoteOrLiteral(value, opts);
}

/** A parenthesized list of already-encoded items, separated by SP. */
export function list(items: readonly Wire[]): Wire {
  if (items.every((i): i is string => typeof i === 'string')) return `(${items.join(' ')})`;
  return joinWire(['(', ...interleave(items, ' '), ')']);
}

function interleave(items: readonly Wire[], sep: string): Wire[] {
  const out: Wire[] = [];
  items.forEach((item, i) => {
    if (i > 0) out.push(sep);
    out.push(item);
  });
  return out;
}

/** Concatenates pieces into one Buffer (strings as UTF-8). */
export function joinWire(parts: readonly Wire[]): Buffer {
  // Most lines (FETCH FLAGS, UID, sizes) are all text: one string, one buffer.
  if (parts.every((p) => typeof p === 'string')) return Buffer.from((parts as string[]).join(''), 'utf8');
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)));
}

/** One response line: pieces separated by SP, then CRLF. E.g. responseLine('*', 'OK', 'Hi'). */
export function responseLine(...parts: Wire[]): Buffer {
  return Buffer.concat([joinWire(interleave(parts, ' ')), CRLF]);
}

/**
 * A mailbox name on the wire. IMAP4rev2 and UTF8=ACCEPT clients get UTF-8 as is (RFC 9051 §5.1,
 * RFC 6855 §3); IMAP4rev1 clients get modified UTF-7 (RFC 3501 §5.1.3).
 */
export function encodeMailboxName(name: string, opts: { utf8: boolean }): Wire {
  return opts.utf8 ? astring(name, { utf8: true }) : astring(encodeModifiedUtf7(name));
}

// Modified BASE64 (RFC 3501 §5.1.3, after RFC 2152): "," instead of "/", no padding.
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

function isPrintable(code: number): boolean {
  return code >= 0x20 && code <= 0x7e;
}

/**
 * Modified UTF-7 (RFC 3501 §5.1.3): printable US-ASCII stands for itself ("&" as "&-"); any other
 * run of characters is "&" + modified BASE64 of its UTF-16BE + "-".
 * E.g. "Entwürfe" → "Entw&APw-rfe", "台北" → "&U,BTFw-".
 */
export function encodeModifiedUtf7(name: string): string {
  let out = '';
  let i = 0;
  while (i < name.length) {
    const code = name.charCodeAt(i);
    if (isPrintable(code)) {
      out += code === 0x26 ? '&-' : name[i];
      i++;
      continue;
    }
    // A run of characters needing BASE64, as UTF-16 code units.
    let bits = 0;
    let nbits = 0;
    out += '&';
    while (i < name.length && !isPrintable(name.charCodeAt(i))) {
      bits = (bits << 16) | name.charCodeAt(i);
      nbits += 16;
      while (nbits >= 6) {
        nbits -= 6;
        out += B64[(bits >> nbits) & 0x3f];
      }
      bits &= (1 << nbits) - 1;
      i++;
    }
    if (nbits > 0) out += B64[(bits << (6 - nbits)) & 0x3f];
    out += '-';
  }
  return out;
}

/**
 * Decodes modified UTF-7 (RFC 3501 §5.1.3). Throws ImapSyntaxError on anything RFC 3501 forbids:
 * non-printable characters, an unterminated or malformed BASE64 run, non-zero padding bits,
 * unpaired surrogates, or BASE64 used for printable ASCII.
 */
export function decodeModifiedUtf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (!isPrintable(code)) throw new ImapSyntaxError('Invalid character in mailbox name');
    if (code !== 0x26) {
      out += text[i];
      i++;
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end === -1) throw new ImapSyntaxError('Unterminated modified UTF-7 run in mailbox name');
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const units: number[] = [];
    let bits = 0;
    let nbits = 0;
    for (let j = i + 1; j < end; j++) {
      const v = B64.indexOf(text[j] ?? '');
      if (v === -1) throw new ImapSyntaxError('Invalid modified BASE64 in mailbox name');
      bits = (bits << 6) | v;
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push((bits >> nbits) & 0xffff);
        bits &= (1 << nbits) - 1;
      }
    }
    // Leftover must be padding only: fewer than 6 bits, all zero.
    if (nbits >= 6 || bits !== 0) throw new ImapSyntaxError('Invalid modified BASE64 padding in mailbox name');
    for (let k = 0; k < units.length; k++) {
      const u = units[k] ?? 0;
      if (isPrintable(u)) throw new ImapSyntaxError('Printable ASCII encoded in modified BASE64');
      if (u >= 0xd800 && u <= 0xdbff) {
        const low = units[k + 1];
        if (low === undefined || low < 0xdc00 || low > 0xdfff) throw new ImapSyntaxError('Unpaired surrogate in mailbox name');
        k++;
      } else if (u >= 0xdc00 && u <= 0xdfff) {
        throw new ImapSyntaxError('Unpaired surrogate in mailbox name');
      }
    }
    for (const u of units) out += String.fromCharCode(u);
    i = end + 1;
  }
  return out;
}

const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * date-time (RFC 9051 §9) without the DQUOTEs, in UTC: "17-Jul-1996 09:44:25 +0000".
 * The day is two digits (date-day-fixed allows "07" as well as " 7").
 */
export function formatInternalDate(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('Invalid date');
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const year = String(date.getUTCFullYear()).padStart(4, '0');
  const month = MONTH_NAMES[date.getUTCMonth()] ?? 'Jan';
  return (
    `${p2(date.getUTCDate())}-${month}-${year} ` +
    `${p2(date.getUTCHours())}:${p2(date.getUTCMinutes())}:${p2(date.getUTCSeconds())} +0000`
  );
}
