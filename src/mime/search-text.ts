// The text of a message as IMAP SEARCH sees it (RFC 9051 §6.4.4): header fields with RFC 2047
// encoded-words decoded, and the body with transfer encodings undone and charsets converted to
// UTF-8. Pure: Buffer in, strings out.

import {
  allParts,
  decodeCharset,
  decodeEncodedWords,
  decodeUnlabelled,
  decodedPart,
  fieldBytes,
  type HeaderField,
  type MimePart,
  type ParsedMessage,
} from './message-parts.js';

export interface SearchableText {
  /** Header fields of the message by lower-case name, values decoded to text, in message order. */
  headers: Map<string, string[]>;
  /**
   * The decoded text of every text/* part (HTML with tags removed), and of the header fields
   * of encapsulated messages (as "Name: value" lines), separated by newlines.
   */
  body: string;
  /** Size of the message in octets (RFC822.SIZE, for LARGER and SMALLER). */
  size: number;
}

/** A header field value as text: undeclared 8-bit bytes guessed (see decodeUnlabelled), then RFC 2047 decoded. */
export function decodeHeaderValue(bytes: Buffer, hint?: string | null): string {
  return decodeEncodedWords(decodeUnlabelled(bytes, hint));
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/** Crude HTML to text: scripts, styles and comments dropped, tags removed, entities decoded. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?(-->|$)/g, ' ')
    .replace(/<(script|style)\b[\s\S]*?(<\/\1\s*>|$)/gi, ' ')
    .replace(/<(br|p|div|tr|li|h[1-6])\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (m, name: string) => {
      if (name[0] === '#') {
        const code = name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff) ? String.fromCodePoint(code) : m;
      }
      return ENTITIES[name.toLowerCase()] ?? m;
    });
}

function charsetHint(parsed: ParsedMessage): string | null {
  for (const part of allParts(parsed)) {
    const cs = part.params.get('charset');
    if (cs && !/^(us-ascii|ascii)$/i.test(cs)) return cs;
  }
  return null;
}

/** The text of a text/* part: transfer encoding undone, charset converted, HTML reduced to text. */
export function partText(raw: Buffer, part: MimePart, hint?: string | null): string {
  const bytes = decodedPart(raw, part) ?? raw.subarray(part.bodyStart, part.bodyEnd);
  const charset = part.params.get('charset');
  const text = !charset || /^(us-ascii|ascii)$/i.test(charset) ? decodeUnlabelled(bytes, hint) : decodeCharset(bytes, charset);
  return part.subtype === 'html' ? htmlToText(text) : text;
}

function headerMap(raw: Buffer, fields: HeaderField[], hint: string | null): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const f of fields) {
    const key = f.name.toLowerCase();
    const value = decodeHeaderValue(fieldBytes(raw, f), hint);
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  }
  return map;
}

/** What SEARCH compares against. Never throws for a message `parseMessage` returned. */
export function searchableText(raw: Buffer, parsed: ParsedMessage): SearchableText {
  const hint = charsetHint(parsed);
  const headers = headerMap(raw, parsed.root.headers, hint);
  const chunks: string[] = [];
  // Depth-first in part order, with an explicit stack.
  const stack: MimePart[] = [parsed.root];
  while (stack.length > 0) {
    const part = stack.pop()!;
    if (part.children.length > 0) {
      for (let i = part.children.length - 1; i >= 0; i--) stack.push(part.children[i]!);
    } else if (part.message) {
      const inner = part.message.root;
      for (const f of inner.headers) chunks.push(`${f.name}: ${decodeHeaderValue(fieldBytes(raw, f), hint)}`);
      stack.push(inner);
    } else if (part.type === 'text') {
      try {
        chunks.push(partText(raw, part, hint));
      } catch {
        chunks.push(raw.toString('utf8', part.bodyStart, part.bodyEnd));
      }
    }
  }
  return { headers, body: chunks.join('\n'), size: parsed.size };
}

/** Search normal form: NFC, then lower case (Unicode-aware; scripts without case are unchanged). */
export function searchFold(text: string): string {
  return text.normalize('NFC').toLowerCase().normalize('NFC');
}

/** Whether `needle` is a substring of `haystack`, ignoring case (RFC 9051 §6.4.4). */
export function matchesText(haystack: string, needle: string): boolean {
  if (needle.length === 0) return true;
  return searchFold(haystack).includes(searchFold(needle));
}
