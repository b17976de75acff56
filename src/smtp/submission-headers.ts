// What the SMTP servers add to or remove from a message's header: Message-ID and Date for
// submission (RFC 6409 §8.2, §8.3), and forged Authentication-Results on the MX (RFC 8601 §5).
// Pure functions on bytes.

import crypto from 'node:crypto';
import { headerValues, rfc5322Date } from '../mime/headers.js';

/** Byte offset where the header section ends (the blank line's first CRLF), or the message length. */
function headerLength(message: Buffer): number {
  const blank = message.indexOf('\r\n\r\n');
  if (blank >= 0) return blank + 2;
  if (message.subarray(0, 2).toString('latin1') === '\r\n') return 0;
  return message.length;
}

/** RFC 6409 §8.2, §8.3: Message-ID and Date when the message has none. Returns the lines to add (CRLF-terminated). */
export function missingSubmissionHeaders(message: Buffer, hostname: string, now: Date): string {
  let add = '';
  if (headerValues(message, 'date').length === 0) add += `Date: ${rfc5322Date(now)}\r\n`;
  if (headerValues(message, 'message-id').length === 0) add += `Message-ID: <${crypto.randomUUID()}@${hostname}>\r\n`;
  return add;
}

/**
 * RFC 8601 §5: an MX removes Authentication-Results fields that claim its own authserv-id from
 * arriving mail, so that a sender cannot forge this server's verdict. Returns the message
 * unchanged (the same Buffer) when there is none.
 */
export function removeOwnAuthenticationResults(message: Buffer, hostname: string): Buffer {
  const end = headerLength(message);
  const head = message.subarray(0, end).toString('latin1');
  const own = hostname.toLowerCase();
  const lines = head.split('\r\n');
  const kept: string[] = [];
  let dropping = false;
  let removed = false;
  for (const line of lines) {
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (!continuation) {
      dropping = false;
      const match = /^authentication-results\s*:\s*(?:\([^)]*\)\s*)?([^\s;]+)/i.exec(line);
      if (match && match[1]!.toLowerCase() === own) {
        dropping = true;
        removed = true;
      }
    }
    if (!dropping) kept.push(line);
  }
  if (!removed) return message;
  return Buffer.concat([Buffer.from(kept.join('\r\n'), 'latin1'), message.subarray(end)]);
}
