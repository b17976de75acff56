// Deduplication of identical attachments. A message body whose MIME structure holds large leaf
// parts is stored as a composition: the bytes between those parts ("literal" bytes: headers,
// boundaries, small text parts) kept with the message's blob row, and each large part body as
// its own content-addressed blob, shared by every message that carries the same bytes (the same
// drawing sent to ten partners, forwarded, or saved again to Sent). Reading concatenates the
// pieces in order, so a message comes back byte for byte as it arrived; the blob id is still
// the SHA-256 of the whole, and quotas still count each message's whole size.
//
// The split works on the raw part bytes as they are on the wire (RFC 2045 §6 encoded), so the
// same attachment encoded the same way is shared; the same file encoded with different line
// lengths is not.

import { parseMessage, type MimePart } from '../mime/message-parts.js';

/** One piece of a composed blob: the next `literal` bytes kept with it, or a shared part blob. */
export type Segment = { literal: number } | { part: string; size: number };

/** Where the large leaf bodies are: [start, end) byte ranges of `bytes`, in order, not overlapping. */
export function largeLeafRanges(bytes: Buffer, minPartSize: number): Array<[number, number]> {
  if (minPartSize <= 0 || bytes.length < minPartSize) return [];
  const ranges: Array<[number, number]> = [];
  // The parser reads the whole buffer in one pass: every offset, inside encapsulated messages
  // (message/rfc822) too, is an offset into `bytes`.
  const visit = (part: MimePart) => {
    if (part.message) visit(part.message.root);
    else if (part.children.length > 0) for (const child of part.children) visit(child);
    else if (part.bodyEnd - part.bodyStart >= minPartSize) ranges.push([part.bodyStart, part.bodyEnd]);
  };
  visit(parseMessage(bytes).root);
  // Defensive: the parser's ranges are ordered and disjoint; anything else is not split.
  let last = 0;
  for (const [start, end] of ranges) {
    if (start < last || end <= start || end > bytes.length) return [];
    last = end;
  }
  return ranges;
}

/** The composition of `bytes` around the given ranges: the literal bytes and the segment list. */
export function compose(bytes: Buffer, ranges: Array<[number, number]>, partIds: string[]): { literal: Buffer; segments: Segment[] } {
  const literals: Buffer[] = [];
  const segments: Segment[] = [];
  let at = 0;
  ranges.forEach(([start, end], i) => {
    if (start > at) {
      literals.push(bytes.subarray(at, start));
      segments.push({ literal: start - at });
    }
    segments.push({ part: partIds[i]!, size: end - start });
    at = end;
  });
  if (at < bytes.length) {
    literals.push(bytes.subarray(at));
    segments.push({ literal: bytes.length - at });
  }
  return { literal: Buffer.concat(literals), segments };
}

/** The whole bytes again: literal pieces and part bodies in segment order. */
export async function assemble(literal: Buffer, segments: Segment[], readPart: (id: string) => Promise<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  let at = 0;
  for (const segment of segments) {
    if ('literal' in segment) {
      pieces.push(literal.subarray(at, at + segment.literal));
      at += segment.literal;
    } else {
      const part = await readPart(segment.part);
      if (part.length !== segment.size) throw new Error(`part ${segment.part} has ${part.length} bytes, expected ${segment.size}`);
      pieces.push(part);
    }
  }
  return Buffer.concat(pieces);
}

/** The segment list as stored with the blob row (compact JSON: numbers and [id, size] pairs). */
export function encodeSegments(segments: Segment[]): string {
  return JSON.stringify(segments.map((s) => ('literal' in s ? s.literal : [s.part, s.size])));
}

export function decodeSegments(text: string): Segment[] {
  const raw = JSON.parse(text) as Array<number | [string, number]>;
  return raw.map((s) => (typeof s === 'number' ? { literal: s } : { part: s[0], size: s[1] }));
}
