// What the storage report and `yubin cleanup` need to know about one stored message: its sender,
// subject, whether it is bulk mail, and the bytes of its attachments. Pure (Buffer in, plain object
// out, no I/O); never throws, whatever the bytes. Only the header section is parsed unless the
// message is multipart or an encapsulated message, whose attachments need the MIME structure.

import { fieldBytes, firstField, parseMessage, type MimePart } from '../mime/message-parts.js';
import { parseAddressList } from '../mime/imap-structures.js';
import { decodeHeaderValue } from '../mime/search-text.js';
import { splitHeaderSection } from '../mime/structure.js';

/** Subjects longer than this are cut (with "…"): a report line, not an archive. */
export const MAX_SUBJECT_CHARS = 1000;

export interface MessageFacts {
  /** First address in From, else the Return-Path; lower case; null when there is neither. */
  sender: string | null;
  /** Decoded subject (RFC 2047), at most MAX_SUBJECT_CHARS characters; null without a Subject field. */
  subject: string | null;
  /** List-Unsubscribe (RFC 2369), List-Id (RFC 2919) or Precedence: bulk / list / junk (RFC 3834 §3.1.8). */
  bulk: boolean;
  /** Encoded bytes of the attachment parts (see isAttachment): the part bodies as stored. */
  attachmentBytes: number;
  /** Number of attachment parts. */
  attachmentParts: number;
}

/**
 * An attachment: a part with Content-Disposition: attachment (RFC 2183 §2.2), or one that names a
 * file (disposition `filename`, or the older Content-Type `name`). Multipart containers never are
 * (their parts are looked at instead).
 */
export function isAttachment(part: MimePart): boolean {
  if (part.children.length > 0) return false;
  if (part.disposition?.type === 'attachment') return true;
  if (part.disposition?.params.has('filename')) return true;
  return part.params.has('name');
}

/** Attachment parts of a parsed message, in order: an attached message counts whole, not its parts. */
export function attachmentsOf(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const stack: MimePart[] = [root];
  while (stack.length > 0) {
    const part = stack.pop()!;
    if (isAttachment(part)) {
      out.push(part);
      continue;
    }
    if (part.message) stack.push(part.message.root);
    for (let i = part.children.length - 1; i >= 0; i--) stack.push(part.children[i]!);
  }
  return out;
}

/** latin1 strings of parseAddressList back to text (raw UTF-8 addresses, RFC 6532). */
function utf8(latin1: string): string {
  return Buffer.from(latin1, 'latin1').toString('utf8');
}

/** The first complete address (local@domain) of an address-list value, lower case; null if none. */
export function firstAddress(value: Buffer): string | null {
  for (const a of parseAddressList(value)) {
    if (a.mailbox && a.host) return utf8(`${a.mailbox}@${a.host}`).toLowerCase();
  }
  return null;
}

function cut(text: string): string {
  if (text.length <= MAX_SUBJECT_CHARS) return text;
  return text.slice(0, MAX_SUBJECT_CHARS - 1) + '…';
}

const BULK_PRECEDENCE = new Set(['bulk', 'list', 'junk']);

function isBulk(raw: Buffer, root: MimePart): boolean {
  if (firstField(root, 'list-unsubscribe') || firstField(root, 'list-id')) return true;
  const precedence = firstField(root, 'precedence');
  if (!precedence) return false;
  const value = fieldBytes(raw, precedence).toString('latin1').replace(/\([^)]*\)/g, '').trim().toLowerCase();
  return BULK_PRECEDENCE.has(value);
}

export function messageFacts(raw: Buffer): MessageFacts {
  try {
    return facts(raw);
  } catch {
    // parseMessage never throws; this guards the rest against the unforeseen.
    return { sender: null, subject: null, bulk: false, attachmentBytes: 0, attachmentParts: 0 };
  }
}

function facts(raw: Buffer): MessageFacts {
  // The header section alone first; the whole structure only when there are parts to look at.
  const { bodyStart } = splitHeaderSection(raw);
  let root = parseMessage(raw.subarray(0, bodyStart)).root;
  const declared = root.declaredType ?? '';
  let leafBodySize = raw.length - bodyStart;
  if (declared.startsWith('multipart/') || declared.startsWith('message/')) {
    root = parseMessage(raw).root;
    leafBodySize = root.size;
  }

  const from = firstField(root, 'from');
  const returnPath = firstField(root, 'return-path');
  const sender = (from && firstAddress(fieldBytes(raw, from))) || (returnPath && firstAddress(fieldBytes(raw, returnPath))) || null;
  const subjectField = firstField(root, 'subject');
  const subject = subjectField ? cut(decodeHeaderValue(fieldBytes(raw, subjectField), root.params.get('charset'))) : null;

  let attachmentBytes = 0;
  let attachmentParts = 0;
  if (root.children.length === 0 && root.message === null) {
    // A single-part message (header-only parse): its body is the one candidate.
    if (isAttachment(root)) {
      attachmentBytes = leafBodySize;
      attachmentParts = 1;
    }
  } else {
    for (const part of attachmentsOf(root)) {
      attachmentBytes += part.size;
      attachmentParts++;
    }
  }
  return { sender, subject, bulk: isBulk(raw, root), attachmentBytes, attachmentParts };
}
