// ENVELOPE and BODY/BODYSTRUCTURE (RFC 9051 §7.5.2, formal syntax §9) of a parsed message, as an
// intermediate value, and the renderer that writes such a value in IMAP wire form.
//
// The intermediate value (ImapValue) is a tree of:
//   string  - an IMAP string (quoted, or a literal when it cannot be quoted), text as UTF-8
//   Buffer  - an IMAP string of exactly these bytes (header values are kept as raw bytes)
//   number  - an IMAP number
//   null    - NIL
//   array   - a parenthesized list
//
// Choices where the RFC leaves room (documented so that clients and tests can rely on them):
// - Media type, subtype, parameter names, transfer encoding and disposition type are upper case.
// - Parameter values are as in the message, except that RFC 2231 continuations are joined into
//   one parameter: `name*` = charset'lang'%XX... when any section was encoded, `name` otherwise.
// - A part without Content-Type has the parameters ("CHARSET" "us-ascii") (RFC 2045 §5.2).
// - Header values (ENVELOPE fields, addresses, Content-ID/-Description/-MD5/-Location) are the
//   raw bytes of the field, unfolded; encoded-words are not decoded (clients decode them).
// - An address without a domain has host "" (NIL would mean group syntax).
// - A name that is only in a comment (`user@host (Full Name)`) becomes addr-name.
// - Content-Language is always sent as a list.

import { isUtf8 } from 'node:buffer';
import { fieldBytes, firstField, type MimePart, type ParsedMessage, type WireParam } from './message-parts.js';

export type ImapValue = string | number | null | Buffer | ImapValue[];

const JOINED = Symbol('imap.joined');

/**
 * Marks the first `count` items of `list` (all by default) to be written without a space between
 * them, as the grammar wants for `1*body` in a multipart and `1*address` in an address list
 * (RFC 9051 §9: `((...)(...) "MIXED")`). Returns `list`.
 */
export function joined<T extends ImapValue[]>(list: T, count: number = list.length): T {
  Object.defineProperty(list, JOINED, { value: count, enumerable: false });
  return list;
}

function joinedCount(list: ImapValue[]): number {
  const n = (list as unknown as Record<symbol, unknown>)[JOINED];
  return typeof n === 'number' ? n : 0;
}

// ---------------------------------------------------------------------------------------------
// RFC 5322 address lists (§3.4), lenient

/** One ENVELOPE address: (addr-name addr-adl addr-mailbox addr-host); strings are latin1 (one char per byte). */
export interface EnvelopeAddress {
  name: string | null;
  adl: string | null;
  mailbox: string | null;
  host: string | null;
}

type Token =
  | { kind: 'word'; text: string; space: boolean } // atom or quoted-string (unquoted)
  | { kind: 'literal'; text: string; space: boolean } // domain literal, brackets kept
  | { kind: 'special'; text: string; space: boolean } // < > @ , ; : .
  | { kind: 'comment'; text: string; space: boolean };

const SPECIALS = '<>@,;:.';

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  const n = s.length;
  let i = 0;
  let space = false;
  while (i < n) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
      continue;
    }
    if (c === '(') {
      let depth = 0;
      let text = '';
      while (i < n) {
        const d = s[i]!;
        if (d === '\\' && i + 1 < n) {
          if (depth > 0) text += s[i + 1];
          i += 2;
          continue;
        }
        if (d === '(') {
          if (depth > 0) text += d;
          depth++;
        } else if (d === ')') {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
          text += d;
        } else {
          text += d;
        }
        i++;
      }
      tokens.push({ kind: 'comment', text, space });
      space = true;
      continue;
    }
    if (c === '"') {
      let text = '';
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) i++;
        text += s[i];
        i++;
      }
      i++; // closing quote (or past the end)
      tokens.push({ kind: 'word', text, space });
    } else if (c === '[') {
      const start = i;
      i++;
      while (i < n && s[i] !== ']') {
        if (s[i] === '\\' && i + 1 < n) i++;
        i++;
      }
      i = Math.min(n, i + 1);
      tokens.push({ kind: 'literal', text: s.slice(start, i), space });
    } else if (SPECIALS.includes(c)) {
      tokens.push({ kind: 'special', text: c, space });
      i++;
    } else {
      const start = i;
      while (i < n) {
        const d = s[i]!;
        if (d === ' ' || d === '\t' || d === '\r' || d === '\n' || d === '(' || d === '"' || d === '[' || SPECIALS.includes(d)) break;
        i++;
      }
      tokens.push({ kind: 'word', text: s.slice(start, i), space });
    }
    space = false;
  }
  return tokens;
}

/** Words joined with one space where the message had blanks or comments between them. */
function phrase(tokens: Token[]): string {
  let out = '';
  for (const t of tokens) {
    if (t.kind === 'comment') continue;
    if (out.length > 0 && t.space) out += ' ';
    out += t.text;
  }
  return out;
}

/** Words joined without blanks (local part, domain, route). */
function tight(tokens: Token[]): string {
  let out = '';
  for (const t of tokens) if (t.kind !== 'comment') out += t.text;
  return out;
}

function firstComment(tokens: Token[]): string | null {
  for (const t of tokens) {
    if (t.kind === 'comment') {
      const text = t.text.trim();
      if (text.length > 0) return text;
    }
  }
  return null;
}

function addrSpec(tokens: Token[]): { mailbox: string; host: string } {
  let at = -1;
  for (let i = tokens.length - 1; i >= 0; i--) {
    const t = tokens[i]!;
    if (t.kind === 'special' && t.text === '@') {
      at = i;
      break;
    }
  }
  if (at === -1) return { mailbox: phrase(tokens), host: '' };
  return { mailbox: tight(tokens.slice(0, at)), host: tight(tokens.slice(at + 1)) };
}

function mailboxOf(tokens: Token[]): EnvelopeAddress | null {
  if (!tokens.some((t) => t.kind !== 'comment')) return null;
  const lt = tokens.findIndex((t) => t.kind === 'special' && t.text === '<');
  if (lt === -1) {
    const spec = addrSpec(tokens);
    if (spec.mailbox === '' && spec.host === '') return null;
    return { name: firstComment(tokens), adl: null, mailbox: spec.mailbox, host: spec.host };
  }
  let gt = tokens.findIndex((t, i) => i > lt && t.kind === 'special' && t.text === '>');
  if (gt === -1) gt = tokens.length;
  let inside = tokens.slice(lt + 1, gt);
  let adl: string | null = null;
  const first = inside.find((t) => t.kind !== 'comment');
  if (first && first.kind === 'special' && first.text === '@') {
    const colon = inside.findIndex((t) => t.kind === 'special' && t.text === ':');
    if (colon !== -1) {
      adl = tight(inside.slice(0, colon));
      inside = inside.slice(colon + 1);
    }
  }
  const spec = addrSpec(inside);
  const name = phrase(tokens.slice(0, lt)) || firstComment(tokens.slice(gt)) || firstComment(tokens.slice(0, lt));
  return { name: name || null, adl, mailbox: spec.mailbox, host: spec.host };
}

/**
 * Parses an address list (From, To, ... ) into ENVELOPE addresses, groups as
 * (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). `value` is the raw field value; strings in the
 * result are latin1 (one char per byte), so raw UTF-8 survives `Buffer.from(s, 'latin1')`.
 * Never throws; what is not an address is skipped.
 */
export function parseAddressList(value: Buffer | string): EnvelopeAddress[] {
  const s = typeof value === 'string' ? value : value.toString('latin1');
  const out: EnvelopeAddress[] = [];
  let pending: Token[] = [];
  let angle = false;
  let inGroup = false;
  const flush = (): void => {
    const address = mailboxOf(pending);
    if (address) out.push(address);
    pending = [];
    angle = false;
  };
  for (const t of tokenize(s)) {
    if (t.kind === 'special') {
      if (t.text === '<') angle = true;
      else if (t.text === '>') angle = false;
      else if (!angle && t.text === ',') {
        flush();
        continue;
      } else if (!angle && t.text === ':' && !inGroup) {
        out.push({ name: null, adl: null, mailbox: phrase(pending), host: null });
        inGroup = true;
        pending = [];
        continue;
      } else if (!angle && t.text === ';') {
        flush();
        if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
        inGroup = false;
        continue;
      }
    }
    pending.push(t);
  }
  flush();
  if (inGroup) out.push({ name: null, adl: null, mailbox: null, host: null });
  return out;
}

// ---------------------------------------------------------------------------------------------
// ENVELOPE

function latin1Buffer(s: string | null): Buffer | null {
  return s === null ? null : Buffer.from(s, 'latin1');
}

function headerBytes(raw: Buffer, part: MimePart, lowerName: string): Buffer | null {
  const field = firstField(part, lowerName);
  return field ? fieldBytes(raw, field) : null;
}

function addressList(raw: Buffer, part: MimePart, lowerName: string): ImapValue[] | null {
  const bytes = headerBytes(raw, part, lowerName);
  if (bytes === null) return null;
  const list = parseAddressList(bytes);
  if (list.length === 0) return null;
  return joined(list.map((a) => [latin1Buffer(a.name), latin1Buffer(a.adl), latin1Buffer(a.mailbox), latin1Buffer(a.host)]));
}

/**
 * ENVELOPE of a message (RFC 9051 §7.5.2): (date subject from sender reply-to to cc bcc
 * in-reply-to message-id). Sender and Reply-To default to From when absent or empty.
 */
export function envelope(parsed: ParsedMessage, raw: Buffer): ImapValue[] {
  const root = parsed.root;
  const from = addressList(raw, root, 'from');
  return [
    headerBytes(raw, root, 'date'),
    headerBytes(raw, root, 'subject'),
    from,
    addressList(raw, root, 'sender') ?? from,
    addressList(raw, root, 'reply-to') ?? from,
    addressList(raw, root, 'to'),
    addressList(raw, root, 'cc'),
    addressList(raw, root, 'bcc'),
    headerBytes(raw, root, 'in-reply-to'),
    headerBytes(raw, root, 'message-id'),
  ];
}

// ---------------------------------------------------------------------------------------------
// BODY and BODYSTRUCTURE

function paramList(params: WireParam[]): ImapValue[] | null {
  if (params.length === 0) return null;
  const out: ImapValue[] = [];
  for (const p of params) out.push(p.name.toUpperCase(), p.value);
  return out;
}

function extensionTail(raw: Buffer, part: MimePart): ImapValue[] {
  const dsp = part.disposition ? [part.disposition.type.toUpperCase(), paramList(part.disposition.wireParams)] : null;
  const lang = part.language ? part.language.map((t) => Buffer.from(t, 'latin1')) : null;
  return [dsp, lang, headerBytes(raw, part, 'content-location')];
}

/**
 * BODYSTRUCTURE (extended = true) or BODY (extended = false) of a message, RFC 9051 §7.5.2.
 * Single part: (type subtype params id description encoding octets [lines | envelope body lines]
 * [md5 disposition language location]); multipart: (part... subtype [params disposition language location]).
 */
export function bodyStructure(parsed: ParsedMessage, raw: Buffer, extended: boolean): ImapValue[] {
  return structureOf(parsed.root, raw, extended);
}

function structureOf(part: MimePart, raw: Buffer, extended: boolean): ImapValue[] {
  if (part.children.length > 0) {
    const out: ImapValue[] = joined(
      part.children.map((child) => structureOf(child, raw, extended)),
      part.children.length,
    );
    out.push(part.subtype.toUpperCase());
    if (extended) out.push(paramList(part.wireParams), ...extensionTail(raw, part));
    return out;
  }
  const out: ImapValue[] = [
    part.type.toUpperCase(),
    part.subtype.toUpperCase(),
    paramList(part.wireParams),
    headerBytes(raw, part, 'content-id'),
    headerBytes(raw, part, 'content-description'),
    part.encoding.toUpperCase(),
    part.size,
  ];
  if (part.message) {
    out.push(envelope(part.message, raw), structureOf(part.message.root, raw, extended), part.lines);
  } else if (part.type === 'text') {
    out.push(part.lines);
  }
  if (extended) out.push(headerBytes(raw, part, 'content-md5'), ...extensionTail(raw, part));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wire form

export interface RenderOptions {
  /**
   * Send valid UTF-8 in quoted strings (IMAP4rev2, or UTF8=ACCEPT enabled, RFC 9051 §9 QUOTED-CHAR).
   * Otherwise any 8-bit string is sent as a literal (CHAR8, allowed in IMAP4rev1 literals).
   */
  utf8?: boolean;
}

function renderString(bytes: Buffer, utf8: boolean, out: Buffer[]): void {
  let literal = false;
  let eightBit = false;
  let nul = false;
  let escapes = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) nul = true;
    else if (b === 0x0d || b === 0x0a) literal = true;
    else if (b >= 0x80) eightBit = true;
    else if (b === 0x22 || b === 0x5c) escapes++;
  }
  // NUL cannot be sent in a string or a (non-binary) literal at all: it is left out.
  let data = bytes;
  if (nul) data = Buffer.from(bytes.filter((b) => b !== 0));
  if (eightBit && !(utf8 && isUtf8(data))) literal = true;
  if (literal) {
    out.push(Buffer.from(`{${data.length}}\r\n`, 'latin1'), data);
    return;
  }
  if (escapes === 0) {
    out.push(Buffer.from('"'), data, Buffer.from('"'));
    return;
  }
  const q = Buffer.allocUnsafe(data.length + escapes + 2);
  let o = 0;
  q[o++] = 0x22;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === 0x22 || b === 0x5c) q[o++] = 0x5c;
    q[o++] = b;
  }
  q[o++] = 0x22;
  out.push(q.subarray(0, o));
}

/** Writes an ImapValue in IMAP wire form (strings quoted or as literals, NIL, numbers, lists). */
export function renderImapValue(value: ImapValue, options: RenderOptions = {}): Buffer {
  const out: Buffer[] = [];
  const utf8 = options.utf8 === true;
  // Explicit stack: items to write, with markers for list ends and separators.
  type Job = { value: ImapValue } | { text: string };
  const stack: Job[] = [{ value }];
  while (stack.length > 0) {
    const job = stack.pop()!;
    if ('text' in job) {
      out.push(Buffer.from(job.text, 'latin1'));
      continue;
    }
    const v = job.value;
    if (v === null || v === undefined) out.push(Buffer.from('NIL'));
    else if (typeof v === 'number') out.push(Buffer.from(String(Number.isFinite(v) ? Math.max(0, Math.trunc(v)) : 0)));
    else if (typeof v === 'string') renderString(Buffer.from(v, 'utf8'), utf8, out);
    else if (Buffer.isBuffer(v)) renderString(v, utf8, out);
    else if (Array.isArray(v)) {
      out.push(Buffer.from('('));
      stack.push({ text: ')' });
      const glued = joinedCount(v);
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ value: v[i] ?? null });
        if (i > 0 && i >= glued) stack.push({ text: ' ' });
      }
    } else {
      out.push(Buffer.from('NIL'));
    }
  }
  return Buffer.concat(out);
}
