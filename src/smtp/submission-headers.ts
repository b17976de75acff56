// What message submission (RFC 6409) reads from and adds to a message's header: the From:
// addresses, which must belong to the authenticated user (§8.1 allows the server to check), and
// Message-ID and Date, added when missing (§8.2, §8.3). Pure functions on bytes.

import crypto from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';

/** Byte offset where the header section ends (the blank line's first CRLF), or the message length. */
function headerLength(message: Buffer): number {
  const blank = message.indexOf('\r\n\r\n');
  if (blank >= 0) return blank + 2;
  if (message.subarray(0, 2).toString('latin1') === '\r\n') return 0;
  return message.length;
}

/** The unfolded values of every field named `name` (case-insensitive), in order. */
export function headerValues(message: Buffer, name: string): string[] {
  const head = message.subarray(0, headerLength(message)).toString('utf8');
  const wanted = name.toLowerCase();
  const values: string[] = [];
  let current: { name: string; value: string } | null = null;
  const flush = () => {
    if (current && current.name === wanted) values.push(current.value.trim());
  };
  for (const line of head.split('\r\n')) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && current) {
      current.value += line;
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    current = colon > 0 ? { name: line.slice(0, colon).trim().toLowerCase(), value: line.slice(colon + 1) } : null;
  }
  flush();
  return values;
}

type Parsed = { address?: string; name?: string; group?: Parsed[] };

/** The addresses in every From: field (groups flattened), lower-cased; [] when there is none. */
export function fromAddresses(message: Buffer): string[] {
  const addresses: string[] = [];
  const walk = (list: Parsed[]) => {
    for (const entry of list) {
      if (entry.group) walk(entry.group);
      else if (entry.address) addresses.push(entry.address.toLowerCase());
    }
  };
  for (const value of headerValues(message, 'from')) walk(addressparser(value) as Parsed[]);
  return addresses;
}

export function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** RFC 6409 §8.2, §8.3: Message-ID and Date when the message has none. Returns the lines to add (CRLF-terminated). */
export function missingSubmissionHeaders(message: Buffer, hostname: string, now: Date): string {
  let add = '';
  if (headerValues(message, 'date').length === 0) add += `Date: ${formatDate(now)}\r\n`;
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
