// Hostile-content limits for MIME structure (RFC 2045, RFC 2046, RFC 5322).
//
// A pure scanner: it walks the raw message once, line by line, keeping only a stack of the
// multipart boundaries that are open at the current position. It builds no tree, uses no
// recursion (so 100,000 nesting levels cannot overflow the JS stack) and stops as soon as a
// limit is crossed. Every line is looked at a bounded number of times, so the cost is linear
// in the size of the message. It never throws, whatever the bytes.
//
// Lines end in CRLF (RFC 5322 §2.1); a bare LF is tolerated as a line end too.

import { constants as bufferConstants } from 'node:buffer';

export interface MimeLimits {
  maxDepth: number;
  maxParts: number;
  maxHeaderBytes: number;
}

export type MimeCheck =
  | { ok: true; parts: number; depth: number; headerBytes: number }
  | { ok: false; reason: 'depth' | 'parts' | 'header-size'; detail: string };

/** One header field: `value` is unfolded (RFC 5322 §2.2.3), raw (not MIME-decoded), bytes decoded as UTF-8. */
export interface HeaderField {
  name: string;
  value: string;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const HYPHEN = 0x2d;
const COLON = 0x3a;

/** Content-Type and Content-Transfer-Encoding values are only read up to this many bytes. */
const MAX_COLLECTED_FIELD_CHARS = 1 << 20;

function asBuffer(input: unknown): Buffer {
  if (Buffer.isBuffer(input)) return input;
  if (input instanceof Uint8Array) return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  return Buffer.alloc(0);
}

function isWsp(byte: number | undefined): boolean {
  return byte === SP || byte === HT;
}

// ---------------------------------------------------------------------------------------------
// Header section of the top-level message

/**
 * Splits off the header section: `headerEnd` is the offset of the empty line that ends it,
 * `bodyStart` the first byte after that empty line. Without an empty line the whole message is
 * header, and both are `message.length`. Lines that are neither fields nor continuations are skipped.
 */
export function splitHeaderSection(message: Buffer): { headerEnd: number; bodyStart: number; fields: HeaderField[] } {
  const buf = asBuffer(message);
  const len = buf.length;
  const fields: HeaderField[] = [];
  let name: string | null = null;
  let pieces: Buffer[] = [];
  const flush = (): void => {
    if (name !== null) fields.push({ name, value: decodeFieldValue(pieces) });
    name = null;
    pieces = [];
  };

  let pos = 0;
  while (pos < len) {
    const lf = buf.indexOf(LF, pos);
    const next = lf === -1 ? len : lf + 1;
    let end = lf === -1 ? len : lf;
    if (lf !== -1 && end > pos && buf[end - 1] === CR) end--;

    if (end === pos) {
      // The empty line (only possible when a line end was found, since pos < len).
      flush();
      return { headerEnd: pos, bodyStart: next, fields };
    }
    if (isWsp(buf[pos])) {
      // Continuation line: unfolding removes only the line break, the whitespace stays.
      if (name !== null) pieces.push(buf.subarray(pos, end));
    } else {
      flush();
      const colon = buf.subarray(pos, end).indexOf(COLON);
      if (colon > 0) {
        let nameEnd = pos + colon;
        while (nameEnd > pos && isWsp(buf[nameEnd - 1])) nameEnd--;
        if (nameEnd > pos) {
          name = buf.toString('utf8', pos, nameEnd);
          pieces = [buf.subarray(pos + colon + 1, end)];
        }
      }
    }
    pos = next;
  }
  flush();
  return { headerEnd: len, bodyStart: len, fields };
}

function decodeFieldValue(pieces: Buffer[]): string {
  const joined = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  let start = 0;
  let end = joined.length;
  while (start < end && isWsp(joined[start])) start++;
  while (end > start && isWsp(joined[end - 1])) end--;
  // A field longer than the largest JS string is cut rather than allowed to throw.
  if (end - start > bufferConstants.MAX_STRING_LENGTH) end = start + bufferConstants.MAX_STRING_LENGTH;
  return joined.toString('utf8', start, end);
}

/** The first field called `name` (ASCII case-insensitive), or undefined. */
export function headerValue(fields: HeaderField[], name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const field of fields) {
    if (field.name.toLowerCase() === wanted) return field.value;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Content-Type parsing (RFC 2045 §5.1, RFC 2231 §3-4)

interface ContentType {
  type: string; // "type/subtype", lower case
  params: Map<string, string>; // names lower case, values unquoted
}

function parseContentType(raw: string): ContentType | undefined {
  const n = raw.length;
  let semi = raw.indexOf(';');
  if (semi === -1) semi = n;
  let typeEnd = raw.indexOf('(');
  if (typeEnd === -1 || typeEnd > semi) typeEnd = semi;
  let type = '';
  for (let i = 0; i < typeEnd; i++) {
    const c = raw[i]!;
    if (c !== ' ' && c !== '\t' && c !== '\r' && c !== '\n') type += c;
  }
  type = type.toLowerCase();
  const slash = type.indexOf('/');
  if (slash <= 0 || slash === type.length - 1) return undefined; // RFC 2045 §5.2: treat as text/plain

  const params = new Map<string, string>();
  let i = semi + 1;
  while (i < n) {
    while (i < n && (raw[i] === ';' || raw[i] === ' ' || raw[i] === '\t' || raw[i] === '\r' || raw[i] === '\n')) i++;
    const nameStart = i;
    while (i < n && raw[i] !== '=' && raw[i] !== ';') i++;
    const name = raw.slice(nameStart, i).trim().toLowerCase();
    if (i >= n || raw[i] === ';') continue; // a parameter without a value
    i++; // '='
    while (i < n && (raw[i] === ' ' || raw[i] === '\t' || raw[i] === '\r' || raw[i] === '\n')) i++;
    let value: string;
    if (raw[i] === '"') {
      i++;
      const chunks: string[] = [];
      let chunkStart = i;
      while (i < n && raw[i] !== '"') {
        if (raw[i] === '\\' && i + 1 < n) {
          chunks.push(raw.slice(chunkStart, i));
          i++; // keep the escaped character
          chunkStart = i;
        }
        i++;
      }
      chunks.push(raw.slice(chunkStart, i));
      value = chunks.join('');
      if (i < n) i++; // closing quote
      while (i < n && raw[i] !== ';') i++; // ignore anything after the quoted string
    } else {
      const valueStart = i;
      while (i < n && raw[i] !== ';') i++;
      value = raw.slice(valueStart, i).trim();
    }
    if (name.length > 0 && !params.has(name)) params.set(name, value);
  }
  return { type, params };
}

/** RFC 2231 §4: charset'language'%XX-encoded; with `hasCharset` false only the %XX decoding applies. */
function decode2231(value: string, hasCharset: boolean): string {
  let text = value;
  if (hasCharset) {
    const q1 = text.indexOf("'");
    const q2 = q1 === -1 ? -1 : text.indexOf("'", q1 + 1);
    if (q2 !== -1) text = text.slice(q2 + 1);
  }
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '%' && i + 2 < text.length && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(text.slice(i + 1, i + 3), 16)); // a byte, as latin1
      i += 3;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The boundary parameter (RFC 2046 §5.1.1), with RFC 2231 forms; undefined when absent or empty. */
function boundaryOf(params: Map<string, string>): string | undefined {
  let boundary = params.get('boundary');
  if (boundary === undefined) {
    const extended = params.get('boundary*');
    if (extended !== undefined) {
      boundary = decode2231(extended, true);
    } else {
      let joined = '';
      let found = false;
      for (let k = 0; k <= params.size; k++) {
        const plain = params.get(`boundary*${k}`);
        const encoded = params.get(`boundary*${k}*`);
        if (plain !== undefined) joined += plain;
        else if (encoded !== undefined) joined += decode2231(encoded, k === 0);
        else break;
        found = true;
      }
      if (found) boundary = joined;
    }
  }
  if (boundary === undefined) return undefined;
  // A boundary cannot end in a space (RFC 2046 bcharsnospace); trailing blanks on delimiter lines are dropped.
  let end = boundary.length;
  while (end > 0 && (boundary[end - 1] === ' ' || boundary[end - 1] === '\t')) end--;
  return end > 0 ? boundary.slice(0, end) : undefined;
}

function isIdentityEncoding(cte: string | undefined): boolean {
  if (cte === undefined) return true;
  let value = cte;
  const paren = value.indexOf('(');
  if (paren !== -1) value = value.slice(0, paren);
  value = value.trim().toLowerCase();
  return value === '' || value === '7bit' || value === '8bit' || value === 'binary';
}

// ---------------------------------------------------------------------------------------------
// Structure check

interface Frame {
  boundary: string;
  depth: number; // depth of the multipart entity; its body parts are at depth + 1
  digest: boolean; // multipart/digest: body parts default to message/rfc822 (RFC 2046 §5.1.5)
}

interface Entity {
  number: number; // 1 = the message itself
  depth: number;
  start: number; // offset of the first header byte
  digestDefault: boolean;
  contentType: string | undefined;
  transferEncoding: string | undefined;
  collecting: 'ct' | 'cte' | null; // which field continuation lines belong to
}

type Outcome = 'leaf' | { boundary: string; digest: boolean } | 'message';

function classify(entity: Entity): Outcome {
  const parsed = entity.contentType === undefined ? undefined : parseContentType(entity.contentType);
  const type = parsed?.type ?? (entity.digestDefault ? 'message/rfc822' : 'text/plain');
  if (type.startsWith('multipart/')) {
    const boundary = parsed ? boundaryOf(parsed.params) : undefined;
    return boundary === undefined ? 'leaf' : { boundary, digest: type === 'multipart/digest' };
  }
  if (type === 'message/rfc822' || type === 'message/global') {
    // An encoded body (allowed for message/global, RFC 6532 §3.5) is not a readable entity.
    return isIdentityEncoding(entity.transferEncoding) ? 'message' : 'leaf';
  }
  return 'leaf';
}

/**
 * Scans the MIME structure of a raw message and checks nesting depth, number of entities and
 * the size of every entity's header section against `limits`. The message itself is part 1 at
 * depth 1; multipart containers and message/rfc822 wrappers count as parts too.
 */
export function checkMimeStructure(message: Buffer, limits: MimeLimits): MimeCheck {
  const buf = asBuffer(message);
  const len = buf.length;
  const { maxDepth, maxParts, maxHeaderBytes } = limits;

  const stack: Frame[] = [];
  const open = new Map<string, number[]>(); // boundary -> indexes in `stack`, innermost last
  let longestBoundary = 0;

  let parts = 0;
  let deepest = 0;
  let largestHeader = 0;
  let inHeader = false;
  let entity: Entity | undefined;

  const begin = (depth: number, start: number, digestDefault: boolean): MimeCheck | null => {
    parts++;
    if (depth > maxDepth) {
      return { ok: false, reason: 'depth', detail: `MIME nesting is ${depth} levels deep; the limit is ${maxDepth}` };
    }
    if (parts > maxParts) {
      return { ok: false, reason: 'parts', detail: `the message has more than ${maxParts} MIME parts; the limit is ${maxParts}` };
    }
    if (depth > deepest) deepest = depth;
    entity = {
      number: parts,
      depth,
      start,
      digestDefault,
      contentType: undefined,
      transferEncoding: undefined,
      collecting: null,
    };
    inHeader = true;
    return null;
  };

  const endHeader = (at: number): void => {
    inHeader = false;
    if (entity && at - entity.start > largestHeader) largestHeader = at - entity.start;
  };

  const popTo = (size: number): void => {
    while (stack.length > size) {
      const frame = stack.pop()!;
      const indexes = open.get(frame.boundary);
      if (indexes) {
        indexes.pop();
        if (indexes.length === 0) open.delete(frame.boundary);
      }
    }
  };

  /** Index in `stack` of the innermost boundary this line delimits, and whether it closes it. */
  const matchDelimiter = (pos: number, end: number): { index: number; close: boolean } | null => {
    if (stack.length === 0 || end - pos < 2 || buf[pos] !== HYPHEN || buf[pos + 1] !== HYPHEN) return null;
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
    return index < 0 ? null : { index, close };
  };

  const readHeaderLine = (current: Entity, pos: number, end: number): void => {
    if (isWsp(buf[pos])) {
      if (current.collecting === 'ct' && current.contentType !== undefined && current.contentType.length < MAX_COLLECTED_FIELD_CHARS) {
        current.contentType += buf.toString('latin1', pos, Math.min(end, pos + MAX_COLLECTED_FIELD_CHARS));
      } else if (current.collecting === 'cte' && current.transferEncoding !== undefined && current.transferEncoding.length < MAX_COLLECTED_FIELD_CHARS) {
        current.transferEncoding += buf.toString('latin1', pos, Math.min(end, pos + MAX_COLLECTED_FIELD_CHARS));
      }
      return;
    }
    current.collecting = null;
    const colon = buf.subarray(pos, end).indexOf(COLON);
    if (colon <= 0) return;
    let nameEnd = pos + colon;
    while (nameEnd > pos && isWsp(buf[nameEnd - 1])) nameEnd--;
    const nameLength = nameEnd - pos;
    const valueStart = pos + colon + 1;
    const valueEnd = Math.min(end, valueStart + MAX_COLLECTED_FIELD_CHARS);
    if (nameLength === 12 && current.contentType === undefined && buf.toString('latin1', pos, nameEnd).toLowerCase() === 'content-type') {
      current.contentType = buf.toString('latin1', valueStart, valueEnd);
      current.collecting = 'ct';
    } else if (
      nameLength === 25 &&
      current.transferEncoding === undefined &&
      buf.toString('latin1', pos, nameEnd).toLowerCase() === 'content-transfer-encoding'
    ) {
      current.transferEncoding = buf.toString('latin1', valueStart, valueEnd);
      current.collecting = 'cte';
    }
  };

  const headerTooBig = (current: Entity, size: number): MimeCheck => ({
    ok: false,
    reason: 'header-size',
    detail:
      current.number === 1
        ? `the message header section is at least ${size} bytes; the limit is ${maxHeaderBytes}`
        : `the header section of MIME part ${current.number} is at least ${size} bytes; the limit is ${maxHeaderBytes}`,
  });

  const first = begin(1, 0, false);
  if (first) return first;

  let pos = 0;
  while (pos < len) {
    const lf = buf.indexOf(LF, pos);
    const next = lf === -1 ? len : lf + 1;
    let end = lf === -1 ? len : lf;
    if (lf !== -1 && end > pos && buf[end - 1] === CR) end--;

    // A delimiter line ends whatever is open inside its multipart, header or body alike.
    const delimiter = matchDelimiter(pos, end);
    if (delimiter) {
      if (inHeader) endHeader(pos);
      if (delimiter.close) {
        popTo(delimiter.index);
        inHeader = false; // the epilogue, part of the enclosing content
      } else {
        popTo(delimiter.index + 1);
        const frame = stack[delimiter.index]!;
        const failed = begin(frame.depth + 1, next, frame.digest);
        if (failed) return failed;
      }
      pos = next;
      continue;
    }

    if (inHeader && entity) {
      const current = entity;
      if (end === pos) {
        // The empty line: the header section ends, the body follows.
        endHeader(pos);
        const outcome = classify(current);
        if (outcome === 'message') {
          const failed = begin(current.depth + 1, next, false);
          if (failed) return failed;
        } else if (outcome !== 'leaf') {
          const index = stack.length;
          stack.push({ boundary: outcome.boundary, depth: current.depth, digest: outcome.digest });
          const indexes = open.get(outcome.boundary);
          if (indexes) indexes.push(index);
          else open.set(outcome.boundary, [index]);
          if (outcome.boundary.length > longestBoundary) longestBoundary = outcome.boundary.length;
        }
      } else {
        const size = next - current.start;
        if (size > maxHeaderBytes) return headerTooBig(current, size);
        readHeaderLine(current, pos, end);
      }
    }
    pos = next;
  }
  if (inHeader) endHeader(len);
  return { ok: true, parts, depth: deepest, headerBytes: largestHeader };
}
