// Conversion of a message with 8-bit content to 7-bit, for a server that does not offer 8BITMIME:
// RFC 6152 §3 lets the sender "convert the message to 7 bit" (RFC 1652 §3) instead of returning
// it. Every leaf part whose body holds 8-bit octets is re-encoded (RFC 2045 §6): text as
// quoted-printable (readable, and hardly larger for mostly-ASCII text), anything else as base64,
// and its Content-Transfer-Encoding says so. Everything else stays byte for byte as it was.
// Header fields with 8-bit octets (raw UTF-8) can not be converted without rewriting them as
// encoded words, which would change addresses; such a message is left alone (null).

import { parseMessage, type MimePart } from './message-parts.js';

const MAX_QP_LINE = 76; // RFC 2045 §6.7 rule 5: encoded lines at most 76 characters
const BASE64_LINE = 76;

/** Whether any octet of bytes[start, end) is above 127 (RFC 6152: 8-bit data). */
export function hasEightBit(bytes: Buffer, start = 0, end = bytes.length): boolean {
  // A native regex scan over the latin1 view, not a JS loop over the bytes.
  return end > start && /[\x80-\xff]/.test(bytes.toString('latin1', start, end));
}

/** RFC 2045 §6.7 quoted-printable: line ends kept as hard line breaks, soft breaks at 76. */
export function encodeQuotedPrintable(body: Buffer): Buffer {
  const out: string[] = [];
  let line = '';
  const hex = (byte: number) => '=' + byte.toString(16).toUpperCase().padStart(2, '0');
  const put = (token: string) => {
    // Room for the soft break's "=" (rule 5).
    if (line.length + token.length > MAX_QP_LINE - 1) {
      out.push(line + '=\r\n');
      line = '';
    }
    line += token;
  };
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (byte === 0x0d && body[i + 1] === 0x0a) {
      // Rule 3: a space or tab at the end of an encoded line is encoded.
      const last = line.charCodeAt(line.length - 1);
      if (last === 0x20 || last === 0x09) line = line.slice(0, -1) + hex(last);
      out.push(line + '\r\n');
      line = '';
      i++;
      continue;
    }
    // Rule 2: printable ASCII other than "=" as itself; rule 1: everything else as =XX. A "." at
    // the start of a line is encoded too, so that no line can be taken for the end of data.
    const literal = (byte >= 0x21 && byte <= 0x7e && byte !== 0x3d && !(byte === 0x2e && line.length === 0)) || byte === 0x20 || byte === 0x09;
    put(literal ? String.fromCharCode(byte) : hex(byte));
  }
  const last = line.charCodeAt(line.length - 1);
  if (last === 0x20 || last === 0x09) line = line.slice(0, -1) + hex(last);
  if (line.length > 0) out.push(line);
  return Buffer.from(out.join(''), 'latin1');
}

/** RFC 2045 §6.8 base64 in lines of 76 characters, each ended by CRLF. */
export function encodeBase64Lines(body: Buffer): Buffer {
  const text = body.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += BASE64_LINE) lines.push(text.slice(i, i + BASE64_LINE));
  return Buffer.from(lines.join('\r\n') + (lines.length > 0 ? '\r\n' : ''), 'latin1');
}

interface Edit {
  start: number;
  end: number;
  bytes: Buffer;
}

function transferEncodingEdit(part: MimePart, value: string): Edit {
  const field = part.headers.find((h) => h.name.toLowerCase() === 'content-transfer-encoding');
  const bytes = Buffer.from(`Content-Transfer-Encoding: ${value}\r\n`, 'latin1');
  // Replaced where it is, or added at the end of the header section (before the empty line).
  return field ? { start: field.start, end: field.end, bytes } : { start: part.headerEnd, end: part.headerEnd, bytes };
}

/**
 * The message with every 8-bit body re-encoded, or null when it can not be made 7-bit (8-bit
 * octets in a header section or between the parts of a multipart, or a body already declared
 * base64 or quoted-printable that holds 8-bit octets: not valid MIME to begin with).
 */
export function downgradeTo7bit(message: Buffer): Buffer | null {
  const edits: Edit[] = [];
  let possible = true;
  const visit = (part: MimePart): void => {
    if (!possible) return;
    if (hasEightBit(message, part.headerStart, part.bodyStart)) {
      possible = false;
      return;
    }
    const declared = part.encoding;
    if (part.message) {
      // RFC 2046 §5.2.1: message/rfc822 is 7bit, 8bit or binary; its content is converted inside.
      if (!hasEightBit(message, part.bodyStart, part.bodyEnd)) return;
      visit(part.message.root);
      if (possible && declared !== '7bit') edits.push(transferEncodingEdit(part, '7bit'));
      return;
    }
    if (part.children.length > 0) {
      // Preamble, delimiter lines and epilogue: only the parts can be re-encoded.
      let at = part.bodyStart;
      for (const child of part.children) {
        if (hasEightBit(message, at, child.headerStart)) {
          possible = false;
          return;
        }
        visit(child);
        at = child.bodyEnd;
      }
      if (hasEightBit(message, at, part.bodyEnd)) possible = false;
      return;
    }
    if (!hasEightBit(message, part.bodyStart, part.bodyEnd)) {
      // 7-bit octets labelled 8bit or binary: only the label changes.
      if (declared === '8bit' || declared === 'binary') edits.push(transferEncodingEdit(part, '7bit'));
      return;
    }
    if (declared !== '7bit' && declared !== '8bit' && declared !== 'binary') {
      possible = false;
      return;
    }
    const body = message.subarray(part.bodyStart, part.bodyEnd);
    const asText = part.type === 'text';
    if (part.depth === 1 && !part.headers.some((h) => h.name.toLowerCase() === 'mime-version')) {
      // A plain RFC 5322 message with 8-bit text: it becomes a MIME message (RFC 2045 §4).
      const charset = isUtf8(body) ? 'utf-8' : 'unknown-8bit';
      edits.push({ start: part.headerEnd, end: part.headerEnd, bytes: Buffer.from(`MIME-Version: 1.0\r\n${part.declaredType ? '' : `Content-Type: text/plain; charset=${charset}\r\n`}`, 'latin1') });
    }
    edits.push(transferEncodingEdit(part, asText ? 'quoted-printable' : 'base64'));
    edits.push({ start: part.bodyStart, end: part.bodyEnd, bytes: asText ? encodeQuotedPrintable(body) : encodeBase64Lines(body) });
  };
  const parsed = parseMessage(message);
  if (parsed.root.degraded) return null;
  visit(parsed.root);
  if (!possible) return null;
  // Insertions at the same offset keep their order (the MIME-Version line before the encoding).
  edits.sort((a, b) => a.start - b.start);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const edit of edits) {
    if (edit.start < at) return null; // overlapping edits: not a structure this handles
    pieces.push(message.subarray(at, edit.start), edit.bytes);
    at = edit.end;
  }
  pieces.push(message.subarray(at));
  const out = Buffer.concat(pieces);
  return hasEightBit(out, 0, out.length) ? null : out;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}
