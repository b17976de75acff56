// The MIME structure of a stored message, parsed once for IMAP FETCH and SEARCH.
//
// RFC 5322 (header fields), RFC 2045/2046 (MIME entities, multipart), RFC 2231 (parameter
// continuations and charsets), RFC 9051 §6.4.5 (section numbers and section text),
// RFC 3516 (BINARY: content with the transfer encoding undone).
//
// A pure module: Buffer in, plain objects out, no I/O. `parseMessage` walks the raw message once,
// line by line, like the limits scanner in ./structure.ts: it keeps an explicit stack of the
// entities that are open at the current position and of the multipart boundaries that can end
// them, so it never recurses and its cost is linear in the size of the message. Entities nested
// more than MAX_DEPTH deep are not opened: a container at that depth is kept as a leaf. It never
// throws: malformed MIME is read the way RFC 2045 §5.2 and RFC 2046 §5.1 suggest (an invalid
// Content-Type means text/plain; a missing close delimiter ends at the end of the enclosing entity).
//
// Lines end in CRLF; a bare LF is tolerated as a line end too (the CR, if any, belongs to it).

import { isUtf8 } from 'node:buffer';
import libmime from 'libmime';
import { decode as libmimeDecode } from 'libmime/lib/charset.js';

/** Entities are nested at most this deep (the message itself is at depth 1). */
export const MAX_DEPTH = 100;

/** One header field of an entity. */
export interface HeaderField {
  /** The field name as written (bytes read as latin1, so ASCII names are exact). */
  name: string;
  /** The value unfolded (RFC 5322 §2.2.3) with surrounding blanks trimmed; raw, not MIME-decoded; bytes read as UTF-8. */
  value: string;
  /** Offset in the raw message of the field's first byte. */
  start: number;
  /** Offset just after the colon. */
  valueStart: number;
  /** Offset after the field's last line end (clipped to the end of the header section). */
  end: number;
}

/** A MIME parameter in the form it is sent in BODYSTRUCTURE (continuations joined, see `wireParams`). */
export interface WireParam {
  /** Lower-case name; ends in `*` when the value is RFC 2231 extended (`charset'lang'%XX...`). */
  name: string;
  /** The value as in the message (quotes removed), bytes. */
  value: Buffer;
}

export interface Disposition {
  /** Lower-case disposition type, e.g. "attachment", "inline". */
  type: string;
  /** Decoded parameters (RFC 2231 and RFC 2047 undone, UTF-8), lower-case names without `*`. */
  params: Map<string, string>;
  wireParams: WireParam[];
}

/** Why an entity is not what its Content-Type says (it is then a leaf of another type). */
export type Degraded =
  | 'invalid-type' // Content-Type present but not type/subtype: text/plain (RFC 2045 §5.2)
  | 'no-boundary' // multipart without a boundary: text/plain (RFC 2045 §5.2, the type is invalid)
  | 'no-parts' // multipart in which no delimiter line was found: text/plain
  | 'encoded-message' // message/rfc822|global with a non-identity transfer encoding: application/octet-stream
  | 'depth'; // a container at MAX_DEPTH: application/octet-stream

export interface MimePart {
  /**
   * The IMAP part number of this entity: "" for the message itself, "1", "1.2", ...; the root
   * entity of an encapsulated message has the number of its message/rfc822 part.
   */
  section: string;
  /** 1 for the message itself, +1 for each multipart or message/rfc822 level. */
  depth: number;
  /** Offset of the first header byte. */
  headerStart: number;
  /** Offset of the empty line that ends the header section; equals `bodyStart` when there is none. */
  headerEnd: number;
  /** Offset of the first body byte (after the empty line). */
  bodyStart: number;
  /** Offset after the last body byte (the line end before a delimiter line belongs to the delimiter). */
  bodyEnd: number;
  headers: HeaderField[];
  /** Effective media type and subtype, lower case (what BODYSTRUCTURE reports). */
  type: string;
  subtype: string;
  /** "type/subtype" as declared in Content-Type (lower case), or null when absent or invalid. */
  declaredType: string | null;
  degraded: Degraded | null;
  /** Decoded Content-Type parameters (RFC 2231 and RFC 2047 undone, UTF-8), lower-case names without `*`. */
  params: Map<string, string>;
  /** Content-Type parameters as they go on the wire. */
  wireParams: WireParam[];
  /** Content-ID, Content-Description, Content-Location, Content-MD5: raw values, or null. */
  id: string | null;
  description: string | null;
  location: string | null;
  md5: string | null;
  /** Content-Transfer-Encoding, lower case, comments removed; "7bit" when absent. */
  encoding: string;
  disposition: Disposition | null;
  /** Content-Language tags, or null. */
  language: string[] | null;
  /** Body size in octets (bodyEnd - bodyStart) and in lines (a last line without line end counts). */
  size: number;
  lines: number;
  /** Body parts of a multipart; empty otherwise. */
  children: MimePart[];
  /** The encapsulated message of a message/rfc822 or message/global part. */
  message: ParsedMessage | null;
}

export interface ParsedMessage {
  root: MimePart;
  /** Size in octets of the whole message (for an encapsulated message, of the part body). */
  size: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const HYPHEN = 0x2d;
const COLON = 0x3a;

function isWsp(byte: number | undefined): boolean {
  return byte === SP || byte === HT;
}

function asBuffer(input: unknown): Buffer {
  if (Buffer.isBuffer(input)) return input;
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return Buffer.alloc(0);
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Header bytes of a value: line breaks removed (unfolding), blanks around trimmed. */
export function unfoldBytes(buf: Buffer, start: number, end: number): Buffer {
  let s = start;
  let e = end;
  const slice = buf.subarray(s, e);
  if (slice.indexOf(LF) === -1 && slice.indexOf(CR) === -1) {
    while (s < e && isWsp(buf[s])) s++;
    while (e > s && isWsp(buf[e - 1])) e--;
    return buf.subarray(s, e);
  }
  const out = Buffer.allocUnsafe(e - s);
  let o = 0;
  for (let i = s; i < e; i++) {
    const b = buf[i]!;
    if (b !== CR && b !== LF) out[o++] = b;
  }
  let a = 0;
  while (a < o && isWsp(out[a])) a++;
  while (o > a && isWsp(out[o - 1])) o--;
  return out.subarray(a, o);
}

/** The raw (unfolded, trimmed) bytes of a header field's value. */
export function fieldBytes(raw: Buffer, field: HeaderField): Buffer {
  return unfoldBytes(raw, Math.min(field.valueStart, field.end), field.end);
}

const ISO2022_ESCAPE = /\x1b[$(][@BJ]/;

/**
 * Bytes whose charset is not declared: UTF-8 when they are valid UTF-8 (ASCII included),
 * ISO-2022-JP when they carry its escape sequences, else `hint` (a charset declared elsewhere
 * in the message) or windows-1252.
 */
export function decodeUnlabelled(bytes: Buffer, hint?: string | null): string {
  if (isUtf8(bytes)) {
    if (bytes.indexOf(0x1b) !== -1 && ISO2022_ESCAPE.test(bytes.toString('latin1'))) return decodeCharset(bytes, 'ISO-2022-JP');
    return bytes.toString('utf8');
  }
  if (hint && !/^(us-ascii|ascii|utf-?8)$/i.test(hint)) return decodeCharset(bytes, hint);
  return decodeCharset(bytes, 'windows-1252');
}

/** Bytes in a declared charset to a string; unknown charsets read as UTF-8. Never throws. */
export function decodeCharset(bytes: Buffer, charset: string | null | undefined): string {
  const name = (charset ?? '').trim();
  if (name === '' || /^(us-ascii|ascii|utf-?8|7bit|8bit)$/i.test(name)) return bytes.toString('utf8');
  try {
    return libmimeDecode(bytes, name);
  } catch {
    return bytes.toString('utf8');
  }
}

/** RFC 2047 encoded-words decoded (any charset libmime knows); the input returned on failure. */
export function decodeEncodedWords(text: string): string {
  if (text.indexOf('=?') === -1) return text;
  try {
    return libmime.decodeWords(text);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------------------------
// Structured MIME header values (RFC 2045 §5.1, RFC 2183, RFC 2231)

export interface RawParam {
  name: string; // lower case
  value: string; // latin1 (one char per byte), quotes removed
}

function skipComment(s: string, i: number): number {
  // s[i] === '('; returns the index after the matching ')' (or the end)
  let depth = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return n;
}

function readQuoted(s: string, i: number): { value: string; next: number } {
  // s[i] === '"'
  const n = s.length;
  let out = '';
  i++;
  while (i < n && s[i] !== '"') {
    if (s[i] === '\\' && i + 1 < n) i++;
    out += s[i];
    i++;
  }
  return { value: out, next: i < n ? i + 1 : n };
}

function isBlankChar(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

/** Splits `value; a=b; c="d"` into the leading value (comments and blanks removed) and parameters. */
export function parseStructuredValue(s: string): { value: string; params: RawParam[] } {
  const n = s.length;
  let i = 0;
  let value = '';
  while (i < n && s[i] !== ';') {
    const c = s[i]!;
    if (c === '(') {
      i = skipComment(s, i);
    } else if (c === '"') {
      const q = readQuoted(s, i);
      value += q.value;
      i = q.next;
    } else {
      if (!isBlankChar(c)) value += c;
      i++;
    }
  }
  const params: RawParam[] = [];
  while (i < n) {
    const c = s[i];
    if (c === ';' || isBlankChar(c)) {
      i++;
      continue;
    }
    if (c === '(') {
      i = skipComment(s, i);
      continue;
    }
    const nameStart = i;
    while (i < n && s[i] !== '=' && s[i] !== ';') i++;
    const name = s.slice(nameStart, i).replace(/[\s]+/g, '').toLowerCase();
    if (i >= n || s[i] === ';') continue; // a parameter without a value
    i++; // '='
    while (i < n && isBlankChar(s[i])) i++;
    let v: string;
    if (s[i] === '"') {
      const q = readQuoted(s, i);
      v = q.value;
      i = q.next;
      while (i < n && s[i] !== ';') i++;
    } else {
      const start = i;
      while (i < n && s[i] !== ';') i++;
      v = s.slice(start, i).trim();
      // A comment after the value (`boundary=b (comment)`); a parenthesis inside the token stays.
      const m = /^(\S+)[ \t\r\n]+\(/.exec(v);
      if (m) v = m[1]!;
    }
    if (name.length > 0) params.push({ name, value: v });
  }
  return { value, params };
}

function percentDecode(text: string): Buffer {
  const out = Buffer.allocUnsafe(text.length);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && i + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out[o++] = parseInt(text.slice(i + 1, i + 3), 16);
      i += 2;
    } else {
      out[o++] = c & 0xff;
    }
  }
  return out.subarray(0, o);
}

/** RFC 2231 attribute-char: CHAR except SPACE, CTLs, "*", "'", "%" and tspecials. */
function percentEncode(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i) & 0xff;
    const ch = String.fromCharCode(c);
    if (c > 0x20 && c < 0x7f && !`*'%()<>@,;:\\"/[]?=`.includes(ch)) out += ch;
    else out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

interface AssembledParams {
  decoded: Map<string, string>;
  /** Decoded bytes before charset conversion (boundaries are compared as bytes). */
  bytes: Map<string, Buffer>;
  wire: WireParam[];
}

/** Joins RFC 2231 continuations, decodes extended values and encoded-words. */
function assembleParams(raw: RawParam[], hint: string | null): AssembledParams {
  interface Group {
    single: string | undefined;
    sections: Map<number, { value: string; encoded: boolean }>;
  }
  type Entry = { kind: 'plain'; name: string; value: string } | { kind: 'ext'; name: string; group: Group };
  const entries: Entry[] = [];
  const plainSeen = new Set<string>();
  const groups = new Map<string, Group>();
  for (const p of raw) {
    const m = p.name.indexOf('*') === -1 ? null : /^([^*]+)\*(?:(\d{1,6})(\*)?)?$/.exec(p.name);
    if (!m) {
      if (!plainSeen.has(p.name)) {
        plainSeen.add(p.name);
        entries.push({ kind: 'plain', name: p.name, value: p.value });
      }
      continue;
    }
    const base = m[1]!;
    let group = groups.get(base);
    if (!group) {
      group = { single: undefined, sections: new Map() };
      groups.set(base, group);
      entries.push({ kind: 'ext', name: base, group });
    }
    if (m[2] === undefined) {
      if (group.single === undefined) group.single = p.value;
    } else {
      const index = Number(m[2]);
      if (!group.sections.has(index)) group.sections.set(index, { value: p.value, encoded: m[3] === '*' });
    }
  }

  const decoded = new Map<string, string>();
  const bytes = new Map<string, Buffer>();
  const extDecoded = new Map<string, string>();
  const extBytes = new Map<string, Buffer>();
  const wire: WireParam[] = [];
  const splitCharset = (v: string): { charset: string; lang: string; text: string } | null => {
    const q1 = v.indexOf("'");
    const q2 = q1 === -1 ? -1 : v.indexOf("'", q1 + 1);
    if (q2 === -1) return null;
    return { charset: v.slice(0, q1), lang: v.slice(q1 + 1, q2), text: v.slice(q2 + 1) };
  };
  for (const entry of entries) {
    if (entry.kind === 'plain') {
      const b = Buffer.from(entry.value, 'latin1');
      wire.push({ name: entry.name, value: b });
      bytes.set(entry.name, b);
      decoded.set(entry.name, decodeEncodedWords(decodeUnlabelled(b, hint)));
      continue;
    }
    const { group } = entry;
    if (group.single !== undefined) {
      wire.push({ name: `${entry.name}*`, value: Buffer.from(group.single, 'latin1') });
      const parts = splitCharset(group.single);
      const b = percentDecode(parts ? parts.text : group.single);
      if (!extBytes.has(entry.name)) {
        extBytes.set(entry.name, b);
        extDecoded.set(entry.name, parts && parts.charset ? decodeCharset(b, parts.charset) : decodeUnlabelled(b, hint));
      }
    }
    if (group.sections.size > 0) {
      const indexes = [...group.sections.keys()].sort((a, b) => a - b);
      const anyEncoded = indexes.some((k) => group.sections.get(k)!.encoded);
      let charset = '';
      let lang = '';
      const chunks: Buffer[] = [];
      let wireText = '';
      for (const k of indexes) {
        const section = group.sections.get(k)!;
        let text = section.value;
        if (section.encoded) {
          if (k === indexes[0]) {
            const parts = splitCharset(text);
            if (parts) {
              charset = parts.charset;
              lang = parts.lang;
              text = parts.text;
            }
          }
          chunks.push(percentDecode(text));
          wireText += text;
        } else {
          chunks.push(Buffer.from(text, 'latin1'));
          wireText += anyEncoded ? percentEncode(text) : text;
        }
      }
      const b = Buffer.concat(chunks);
      if (anyEncoded) wire.push({ name: `${entry.name}*`, value: Buffer.from(`${charset}'${lang}'${wireText}`, 'latin1') });
      else wire.push({ name: entry.name, value: Buffer.from(wireText, 'latin1') });
      if (!extBytes.has(entry.name)) {
        extBytes.set(entry.name, b);
        const text = charset ? decodeCharset(b, charset) : decodeUnlabelled(b, hint);
        extDecoded.set(entry.name, anyEncoded ? text : decodeEncodedWords(text));
      }
    }
  }
  // An RFC 2231 value wins over a plain one of the same name (RFC 2231 §4.1: it is the better one).
  for (const [k, v] of extDecoded) decoded.set(k, v);
  for (const [k, v] of extBytes) bytes.set(k, v);
  return { decoded, bytes, wire };
}

function stripComments(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '(') i = skipComment(s, i);
    else if (c === '"') {
      const q = readQuoted(s, i);
      out += q.value;
      i = q.next;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const TOKEN = /^[!#$%&'*+\-.^_`{|}~0-9a-z]+$/;

// ---------------------------------------------------------------------------------------------
// The parser

interface Building {
  part: MimePart;
  inHeader: boolean;
  fieldOpen: boolean; // continuation lines extend the last field
  bodyStartLf: number; // LFs before bodyStart
  digestDefault: boolean;
}

interface Frame {
  boundary: string; // latin1
  chainIndex: number; // the multipart entity in `chain`
  digest: boolean;
}

function newPart(section: string, depth: number, start: number): MimePart {
  return {
    section,
    depth,
    headerStart: start,
    headerEnd: start,
    bodyStart: start,
    bodyEnd: start,
    headers: [],
    type: 'text',
    subtype: 'plain',
    declaredType: null,
    degraded: null,
    params: new Map(),
    wireParams: [],
    id: null,
    description: null,
    location: null,
    md5: null,
    encoding: '7bit',
    disposition: null,
    language: null,
    size: 0,
    lines: 0,
    children: [],
    message: null,
  };
}

/** The first header field of `part` called `lowerName` (give it in lower case), or undefined. */
export function firstField(part: MimePart, lowerName: string): HeaderField | undefined {
  for (const f of part.headers) if (f.name.toLowerCase() === lowerName) return f;
  return undefined;
}

function setDefaultTextPlain(part: MimePart): void {
  part.type = 'text';
  part.subtype = 'plain';
  part.params = new Map([['charset', 'us-ascii']]);
  part.wireParams = [{ name: 'charset', value: Buffer.from('us-ascii') }];
}

const IDENTITY = new Set(['7bit', '8bit', 'binary']);

/** Fills the content fields of `part` from its header; says what its body is. */
function interpretHeader(
  buf: Buffer,
  part: MimePart,
  digestDefault: boolean,
  hint: string | null,
): { kind: 'leaf' } | { kind: 'multipart'; boundary: string; digest: boolean } | { kind: 'message' } {
  const latin1Of = (f: HeaderField): string => fieldBytes(buf, f).toString('latin1');

  const cte = firstField(part, 'content-transfer-encoding');
  if (cte) {
    const enc = stripComments(latin1Of(cte)).trim().toLowerCase();
    if (enc !== '') part.encoding = enc;
  }
  const id = firstField(part, 'content-id');
  if (id) part.id = id.value;
  const desc = firstField(part, 'content-description');
  if (desc) part.description = desc.value;
  const loc = firstField(part, 'content-location');
  if (loc) part.location = loc.value;
  const md5 = firstField(part, 'content-md5');
  if (md5) part.md5 = md5.value;
  const lang = firstField(part, 'content-language');
  if (lang) {
    const tags = stripComments(latin1Of(lang))
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t.length > 0);
    if (tags.length > 0) part.language = tags;
  }
  const dsp = firstField(part, 'content-disposition');
  if (dsp) {
    const parsed = parseStructuredValue(latin1Of(dsp));
    const type = parsed.value.toLowerCase();
    if (type.length > 0) {
      const a = assembleParams(parsed.params, hint);
      part.disposition = { type, params: a.decoded, wireParams: a.wire };
    }
  }

  let boundaryBytes: Buffer | undefined;
  const ct = firstField(part, 'content-type');
  let valid = false;
  if (ct) {
    const parsed = parseStructuredValue(latin1Of(ct));
    const full = parsed.value.toLowerCase();
    const slash = full.indexOf('/');
    const type = slash === -1 ? '' : full.slice(0, slash);
    const subtype = slash === -1 ? '' : full.slice(slash + 1);
    if (TOKEN.test(type) && TOKEN.test(subtype)) {
      valid = true;
      part.type = type;
      part.subtype = subtype;
      part.declaredType = `${type}/${subtype}`;
      const a = assembleParams(parsed.params, hint);
      part.params = a.decoded;
      part.wireParams = a.wire;
      boundaryBytes = a.bytes.get('boundary');
    } else {
      part.degraded = digestDefault ? null : 'invalid-type';
    }
  }
  if (!valid) {
    if (digestDefault) {
      part.type = 'message';
      part.subtype = 'rfc822';
    } else {
      setDefaultTextPlain(part);
    }
  }

  const canNest = part.depth < MAX_DEPTH;
  if (part.type === 'multipart') {
    let boundary = boundaryBytes?.toString('latin1');
    if (boundary !== undefined) {
      let end = boundary.length;
      while (end > 0 && (boundary[end - 1] === ' ' || boundary[end - 1] === '\t')) end--;
      boundary = boundary.slice(0, end);
    }
    if (boundary === undefined || boundary.length === 0) {
      part.degraded = 'no-boundary';
      setDefaultTextPlain(part);
      return { kind: 'leaf' };
    }
    if (!canNest) {
      part.degraded = 'depth';
      part.type = 'application';
      part.subtype = 'octet-stream';
      return { kind: 'leaf' };
    }
    return { kind: 'multipart', boundary, digest: part.subtype === 'digest' };
  }
  if (part.type === 'message' && (part.subtype === 'rfc822' || part.subtype === 'global')) {
    if (!IDENTITY.has(part.encoding) || !canNest) {
      part.degraded = canNest ? 'encoded-message' : 'depth';
      part.type = 'application';
      part.subtype = 'octet-stream';
      return { kind: 'leaf' };
    }
    return { kind: 'message' };
  }
  return { kind: 'leaf' };
}

function parse(buf: Buffer): ParsedMessage {
  const len = buf.length;
  const chain: Building[] = [];
  const frames: Frame[] = [];
  const open = new Map<string, number[]>(); // boundary -> indexes in `frames`, innermost last
  let longestBoundary = 0;
  let lfBefore = 0; // LFs before `pos`
  let prevEol = 0; // length of the line end of the previous line
  let hint: string | null = null; // charset of the top-level Content-Type, for unlabelled 8-bit parameters

  const messages = new Map<MimePart, ParsedMessage>();

  const begin = (section: string, depth: number, start: number, digestDefault: boolean): Building => {
    const b: Building = { part: newPart(section, depth, start), inHeader: true, fieldOpen: false, bodyStartLf: 0, digestDefault };
    chain.push(b);
    return b;
  };

  const popFramesFrom = (frameIndex: number): void => {
    while (frames.length > frameIndex) {
      const frame = frames.pop()!;
      const list = open.get(frame.boundary);
      if (list) {
        list.pop();
        if (list.length === 0) open.delete(frame.boundary);
      }
    }
  };

  const endHeader = (b: Building, blankAt: number, bodyStart: number, lfAtBody: number, hasBlank: boolean): void => {
    const part = b.part;
    b.inHeader = false;
    b.fieldOpen = false;
    part.headerEnd = blankAt;
    part.bodyStart = bodyStart;
    b.bodyStartLf = lfAtBody;
    for (const f of part.headers) {
      if (f.end > blankAt) f.end = blankAt;
      f.value = fieldBytes(buf, f).toString('utf8');
    }
    if (part.depth === 1) {
      const ct = firstField(part, 'content-type');
      if (ct) {
        const m = /charset\s*=\s*"?([A-Za-z0-9_.:+-]+)/i.exec(ct.value);
        if (m) hint = m[1]!;
      }
    }
    const outcome = interpretHeader(buf, part, b.digestDefault, hint);
    if (!hasBlank) {
      // No body: nothing is opened. An encapsulated message is still there, empty, so that a
      // message/rfc822 part always has one (its BODYSTRUCTURE needs an envelope and a body).
      if (outcome.kind === 'message') {
        const root = newPart(part.section === '' ? '1' : part.section, part.depth + 1, bodyStart);
        setDefaultTextPlain(root);
        part.message = { root, size: 0 };
      }
      return;
    }
    if (outcome.kind === 'multipart') {
      const index = frames.length;
      frames.push({ boundary: outcome.boundary, chainIndex: chain.length - 1, digest: outcome.digest });
      const list = open.get(outcome.boundary);
      if (list) list.push(index);
      else open.set(outcome.boundary, [index]);
      if (outcome.boundary.length > longestBoundary) longestBoundary = outcome.boundary.length;
    } else if (outcome.kind === 'message') {
      const inner = begin(part.section === '' ? '1' : part.section, part.depth + 1, bodyStart, false);
      const msg: ParsedMessage = { root: inner.part, size: 0 };
      part.message = msg;
      messages.set(part, msg);
    }
  };

  const finish = (b: Building, at: number, lfAt: number): void => {
    const part = b.part;
    if (b.inHeader) {
      const end = Math.max(at, part.headerStart);
      endHeader(b, end, end, lfAt, false);
    }
    const bodyEnd = Math.max(at, part.bodyStart);
    part.bodyEnd = bodyEnd;
    part.size = bodyEnd - part.bodyStart;
    if (part.size > 0) {
      part.lines = Math.max(0, lfAt - b.bodyStartLf) + (buf[bodyEnd - 1] === LF ? 0 : 1);
    }
    if (part.type === 'multipart' && part.children.length === 0) {
      part.degraded = 'no-parts';
      setDefaultTextPlain(part);
    }
    const msg = messages.get(part);
    if (msg) msg.size = part.size;
  };

  /** Closes the entities above `index` in the chain (they end at `at`). */
  const closeAbove = (index: number, at: number, lfAt: number): void => {
    while (chain.length > index + 1) {
      finish(chain.pop()!, at, lfAt);
    }
    let f = frames.length;
    while (f > 0 && frames[f - 1]!.chainIndex >= chain.length) f--;
    popFramesFrom(f);
  };

  const matchDelimiter = (pos: number, end: number): { frameIndex: number; close: boolean } | null => {
    if (frames.length === 0 || end - pos < 2 || buf[pos] !== HYPHEN || buf[pos + 1] !== HYPHEN) return null;
    let e = end;
    while (e > pos + 2 && isWsp(buf[e - 1])) e--;
    if (e - pos - 2 > longestBoundary + 2) return null;
    const rest = buf.toString('latin1', pos + 2, e);
    let index = -1;
    let close = false;
    const asOpen = open.get(rest);
    if (asOpen) index = asOpen[asOpen.length - 1] ?? -1;
    if (rest.length > 2 && rest.endsWith('--')) {
      const asClose = open.get(rest.slice(0, -2));
      const closeIndex = asClose ? (asClose[asClose.length - 1] ?? -1) : -1;
      if (closeIndex > index) {
        index = closeIndex;
        close = true;
      }
    }
    return index < 0 ? null : { frameIndex: index, close };
  };

  const root = begin('', 1, 0, false).part;

  let pos = 0;
  while (pos < len) {
    const lf = buf.indexOf(LF, pos);
    const next = lf === -1 ? len : lf + 1;
    let end = lf === -1 ? len : lf;
    if (lf !== -1 && end > pos && buf[end - 1] === CR) end--;
    const eol = next - end;

    const delimiter = matchDelimiter(pos, end);
    if (delimiter) {
      const frame = frames[delimiter.frameIndex]!;
      const at = pos - prevEol;
      const lfAt = lfBefore - (prevEol > 0 ? 1 : 0);
      closeAbove(frame.chainIndex, at, lfAt);
      popFramesFrom(delimiter.frameIndex + 1);
      if (delimiter.close) {
        popFramesFrom(delimiter.frameIndex);
      } else {
        const parent = chain[frame.chainIndex]!.part;
        const n = parent.children.length + 1;
        const child = begin(parent.section === '' ? String(n) : `${parent.section}.${n}`, parent.depth + 1, next, frame.digest);
        parent.children.push(child.part);
      }
    } else {
      const current = chain[chain.length - 1]!;
      if (current.inHeader) {
        if (end === pos && lf !== -1) {
          endHeader(current, pos, next, lfBefore + 1, true);
        } else if (isWsp(buf[pos])) {
          if (current.fieldOpen) current.part.headers[current.part.headers.length - 1]!.end = next;
        } else {
          current.fieldOpen = false;
          const colon = buf.subarray(pos, end).indexOf(COLON);
          if (colon > 0) {
            let nameEnd = pos + colon;
            while (nameEnd > pos && isWsp(buf[nameEnd - 1])) nameEnd--;
            if (nameEnd > pos) {
              current.part.headers.push({
                name: buf.toString('latin1', pos, nameEnd),
                value: '',
                start: pos,
                valueStart: pos + colon + 1,
                end: next,
              });
              current.fieldOpen = true;
            }
          }
        }
      }
    }
    if (lf !== -1) lfBefore++;
    prevEol = eol;
    pos = next;
  }
  closeAbove(-1, len, lfBefore);
  return { root, size: len };
}

function fallback(buf: Buffer): ParsedMessage {
  const part = newPart('', 1, 0);
  setDefaultTextPlain(part);
  part.headerEnd = part.bodyStart = 0;
  part.bodyEnd = part.size = buf.length;
  return { root: part, size: buf.length };
}

/** Parses the MIME structure of a raw message. Never throws. */
export function parseMessage(raw: Buffer): ParsedMessage {
  const buf = asBuffer(raw);
  try {
    return parse(buf);
  } catch {
    return fallback(buf);
  }
}

// ---------------------------------------------------------------------------------------------
// Section numbers (RFC 9051 §6.4.5)

/**
 * The entity an IMAP section number ("1", "1.2", ...) refers to, or null. Part 1 of a
 * non-multipart entity is that entity's body, so the entity itself is returned; the parts of an
 * encapsulated message/rfc822 are numbered under the number of the message part.
 */
export function partSection(parsed: ParsedMessage, section: string | readonly number[]): MimePart | null {
  let numbers: readonly number[];
  if (typeof section === 'string') {
    if (!/^[1-9][0-9]*(\.[1-9][0-9]*)*$/.test(section)) return null;
    numbers = section.split('.').map(Number);
  } else {
    numbers = section;
  }
  if (numbers.length === 0) return null;
  let entity: MimePart = parsed.root;
  for (let i = 0; i < numbers.length; i++) {
    const n = numbers[i]!;
    if (!Number.isSafeInteger(n) || n < 1) return null;
    if (i > 0 && entity.children.length === 0) {
      // Going into a part that is not a multipart: only an encapsulated message has parts.
      if (!entity.message) return null;
      entity = entity.message.root;
    }
    if (entity.children.length > 0) {
      const child = entity.children[n - 1];
      if (!child) return null;
      entity = child;
    } else if (n !== 1) {
      return null;
    }
  }
  return entity;
}

// ---------------------------------------------------------------------------------------------
// Section text for FETCH BODY[...] (RFC 9051 §6.4.5)

export class SectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SectionError';
  }
}

export type SectionText = '' | 'HEADER' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT' | 'TEXT' | 'MIME';

export interface SectionSpec {
  /** Part numbers; empty for the message itself. */
  part: number[];
  text: SectionText;
  /** Field names for HEADER.FIELDS and HEADER.FIELDS.NOT, as given. */
  fields: string[];
}

function parseHeaderList(s: string, start: number): { fields: string[]; next: number } {
  // s[start] === '('
  const fields: string[] = [];
  let i = start + 1;
  const n = s.length;
  for (;;) {
    if (i >= n) throw new SectionError('unterminated header field list');
    const c = s[i]!;
    if (c === ')') {
      if (fields.length === 0) throw new SectionError('empty header field list');
      return { fields, next: i + 1 };
    }
    if (fields.length > 0) {
      if (c !== ' ') throw new SectionError('header field names must be separated by a space');
      while (s[i] === ' ') i++;
      if (s[i] === ')') continue;
    }
    const d = s[i];
    if (d === '"') {
      let value = '';
      i++;
      for (;;) {
        if (i >= n) throw new SectionError('unterminated quoted string');
        const q = s[i]!;
        if (q === '"') break;
        if (q === '\\') {
          const e = s[i + 1];
          if (e !== '"' && e !== '\\') throw new SectionError('bad escape in quoted string');
          value += e;
          i += 2;
          continue;
        }
        if (q === '\r' || q === '\n') throw new SectionError('line break in quoted string');
        value += q;
        i++;
      }
      i++;
      fields.push(value);
    } else if (d === '{') {
      const m = /^\{(\d{1,9})\+?\}\r\n/.exec(s.slice(i, i + 16));
      if (!m) throw new SectionError('bad literal');
      const size = Number(m[1]);
      i += m[0].length;
      if (i + size > n) throw new SectionError('truncated literal');
      fields.push(s.slice(i, i + size));
      i += size;
    } else {
      const atomStart = i;
      while (i < n) {
        const a = s.charCodeAt(i);
        if (a <= 0x20 || a === 0x7f || a === 0x28 || a === 0x29 || a === 0x7b || a === 0x22 || a === 0x5c || a === 0x25 || a === 0x2a)
          break;
        i++;
      }
      if (i === atomStart) throw new SectionError(`unexpected character in header field list`);
      fields.push(s.slice(atomStart, i));
    }
  }
}

/** Parses the text between the brackets of BODY[...] (case-insensitive). Throws SectionError. */
export function parseSectionSpec(spec: string): SectionSpec {
  if (typeof spec !== 'string') throw new SectionError('section must be a string');
  const part: number[] = [];
  let i = 0;
  const n = spec.length;
  // section-part = nz-number *("." nz-number)
  while (i < n && spec.charCodeAt(i) >= 0x30 && spec.charCodeAt(i) <= 0x39) {
    const start = i;
    while (i < n && spec.charCodeAt(i) >= 0x30 && spec.charCodeAt(i) <= 0x39) i++;
    const digits = spec.slice(start, i);
    if (digits[0] === '0') throw new SectionError(`bad part number "${digits}"`);
    const value = Number(digits);
    if (!Number.isSafeInteger(value) || value > 0xffffffff) throw new SectionError(`part number too large "${digits}"`);
    part.push(value);
    if (i >= n) return { part, text: '', fields: [] };
    if (spec[i] !== '.') throw new SectionError(`unexpected "${spec[i]}" after a part number`);
    i++;
    if (i >= n) throw new SectionError('a section cannot end with "."');
  }
  const rest = spec.slice(i);
  const upper = rest.toUpperCase();
  if (upper === '') {
    if (part.length > 0) throw new SectionError('empty section text');
    return { part, text: '', fields: [] };
  }
  if (upper === 'HEADER' || upper === 'TEXT') return { part, text: upper, fields: [] };
  if (upper === 'MIME') {
    if (part.length === 0) throw new SectionError('MIME needs a part number');
    return { part, text: 'MIME', fields: [] };
  }
  let text: SectionText;
  let after: number;
  if (upper.startsWith('HEADER.FIELDS.NOT')) {
    text = 'HEADER.FIELDS.NOT';
    after = 'HEADER.FIELDS.NOT'.length;
  } else if (upper.startsWith('HEADER.FIELDS')) {
    text = 'HEADER.FIELDS';
    after = 'HEADER.FIELDS'.length;
  } else {
    throw new SectionError(`unknown section text "${rest.slice(0, 40)}"`);
  }
  if (rest[after] !== ' ') throw new SectionError(`${text} needs a list of field names`);
  let j = after;
  while (rest[j] === ' ') j++;
  if (rest[j] !== '(') throw new SectionError(`${text} needs a parenthesized list of field names`);
  const list = parseHeaderList(rest, j);
  if (list.next !== rest.length) throw new SectionError('unexpected text after the field list');
  for (const f of list.fields) {
    if (f.length === 0 || /[\x00-\x20\x7f-\uffff:]/.test(f)) throw new SectionError(`bad header field name "${f.slice(0, 40)}"`);
  }
  return { part, text, fields: list.fields };
}

function headerBlock(raw: Buffer, entity: MimePart): Buffer {
  return raw.subarray(entity.headerStart, entity.bodyStart);
}

function headerSubset(raw: Buffer, entity: MimePart, names: string[], not: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const chunks: Buffer[] = [];
  for (const f of entity.headers) {
    if (wanted.has(f.name.toLowerCase()) === not) continue;
    const bytes = raw.subarray(f.start, f.end);
    chunks.push(bytes);
    if (bytes.length === 0 || bytes[bytes.length - 1] !== LF) chunks.push(Buffer.from('\r\n'));
  }
  // The empty line that ends the header is part of every header fetch, when the message has one.
  if (entity.headerEnd < entity.bodyStart) chunks.push(Buffer.from('\r\n'));
  return Buffer.concat(chunks);
}

/**
 * The bytes of BODY[spec] (RFC 9051 §6.4.5). `spec` is the text between the brackets, or an
 * already parsed SectionSpec. A part that does not exist, or HEADER/TEXT of a part that is not a
 * message/rfc822, gives an empty buffer. Throws SectionError for a syntactically bad spec.
 */
export function sectionBytes(raw: Buffer, parsed: ParsedMessage, spec: string | SectionSpec): Buffer {
  const s = typeof spec === 'string' ? parseSectionSpec(spec) : spec;
  const buf = asBuffer(raw);
  const empty = Buffer.alloc(0);
  let entity: MimePart;
  if (s.part.length === 0) {
    if (s.text === '') return buf.subarray(0, parsed.size);
    entity = parsed.root;
  } else {
    const found = partSection(parsed, s.part);
    if (!found) return empty;
    if (s.text === '') return buf.subarray(found.bodyStart, found.bodyEnd);
    if (s.text === 'MIME') return headerBlock(buf, found);
    if (!found.message) return empty;
    entity = found.message.root;
  }
  switch (s.text) {
    case 'HEADER':
      return headerBlock(buf, entity);
    case 'TEXT':
      return buf.subarray(entity.bodyStart, entity.bodyEnd);
    case 'HEADER.FIELDS':
      return headerSubset(buf, entity, s.fields, false);
    case 'HEADER.FIELDS.NOT':
      return headerSubset(buf, entity, s.fields, true);
    default:
      return empty;
  }
}

// ---------------------------------------------------------------------------------------------
// Content transfer decoding (RFC 2045 §6, RFC 3516)

const KNOWN_ENCODINGS = new Set(['7bit', '8bit', 'binary', 'base64', 'quoted-printable']);

/** Whether the part's Content-Transfer-Encoding is one BINARY can undo (else: NO [UNKNOWN-CTE]). */
export function hasKnownEncoding(part: MimePart): boolean {
  return KNOWN_ENCODINGS.has(part.encoding) || part.children.length > 0 || part.message !== null;
}

const B64 = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;
B64[0x2d] = 62; // '-' (base64url), tolerated
B64[0x5f] = 63; // '_'

/** Base64 decoding (RFC 2045 §6.8): characters outside the alphabet are ignored, "=" ends the data. */
export function decodeBase64(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(Math.floor((input.length * 3) / 4) + 3);
  let o = 0;
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === 0x3d) break; // padding: the end of the data (RFC 2045 §6.8)
    const v = B64[c]!;
    if (v < 0) continue;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Quoted-printable decoding (RFC 2045 §6.7); what is not valid is kept as it is. */
export function decodeQuotedPrintable(input: Buffer): Buffer {
  const out = Buffer.allocUnsafe(input.length);
  let o = 0;
  let pos = 0;
  const len = input.length;
  while (pos < len) {
    const lf = input.indexOf(LF, pos);
    const next = lf === -1 ? len : lf + 1;
    let end = lf === -1 ? len : lf;
    if (lf !== -1 && end > pos && input[end - 1] === CR) end--;
    // Trailing blanks were added in transport and are removed (rule 3).
    while (end > pos && isWsp(input[end - 1])) end--;
    let soft = false;
    for (let i = pos; i < end; i++) {
      const c = input[i]!;
      if (c === 0x3d) {
        if (i === end - 1) {
          soft = true;
          break;
        }
        const h = hexValue(input[i + 1]);
        const l = hexValue(input[i + 2]);
        if (h >= 0 && l >= 0 && i + 2 < end) {
          out[o++] = (h << 4) | l;
          i += 2;
          continue;
        }
      }
      out[o++] = c;
    }
    if (!soft && lf !== -1) {
      // the line break as it was (CRLF, or a bare LF)
      if (input[lf - 1] === CR && lf - 1 >= pos) out[o++] = CR;
      out[o++] = LF;
    }
    pos = next;
  }
  return out.subarray(0, o);
}

/**
 * The body of `part` with its Content-Transfer-Encoding undone (RFC 3516 BINARY[part]); for a
 * ParsedMessage, the whole message (BINARY[]). Multipart and message/rfc822 bodies are returned as
 * they are. Null when the encoding is not one of 7bit, 8bit, binary, base64, quoted-printable: the
 * server then answers NO [UNKNOWN-CTE].
 */
export function decodedPart(raw: Buffer, part: MimePart | ParsedMessage): Buffer | null {
  const buf = asBuffer(raw);
  if ('root' in part) return buf.subarray(part.root.headerStart, part.root.bodyEnd);
  const body = buf.subarray(part.bodyStart, part.bodyEnd);
  if (part.children.length > 0 || part.message !== null) return body;
  if (part.encoding === 'base64') return decodeBase64(body);
  if (part.encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (!KNOWN_ENCODINGS.has(part.encoding)) return null;
  return body;
}

/** The size of the decoded body (BINARY.SIZE, RFC 3516 §4.2); null for an unknown encoding. */
export function binarySize(raw: Buffer, part: MimePart | ParsedMessage): number | null {
  if ('root' in part) return part.root.bodyEnd - part.root.headerStart;
  if (part.children.length > 0 || part.message !== null) return part.size;
  if (part.encoding === 'base64' || part.encoding === 'quoted-printable') return decodedPart(raw, part)?.length ?? null;
  if (!KNOWN_ENCODINGS.has(part.encoding)) return null;
  return part.size;
}

/** Every entity of the message, in part-number order (explicit stack; encapsulated messages included). */
export function allParts(parsed: ParsedMessage): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [parsed.root];
  while (stack.length > 0) {
    const part = stack.pop()!;
    out.push(part);
    if (part.message) stack.push(part.message.root);
    for (let i = part.children.length - 1; i >= 0; i--) stack.push(part.children[i]!);
  }
  return out;
}
