// Mailbox names on the wire: UTF-8 for clients that enabled IMAP4rev2 or UTF8=ACCEPT, modified
// UTF-7 for IMAP4rev1 clients (RFC 3501 §5.1.3); "/" is the hierarchy separator.

import { astring, decodeModifiedUtf7, encodeModifiedUtf7 } from './protocol/encoder.js';
import type { Session } from './context.js';
import { bad, no } from './context.js';

export const SEPARATOR = '/';

function utf8Mode(session: Session): boolean {
  return session.enabled.has('UTF8=ACCEPT') || session.enabled.has('IMAP4REV2');
}

/** A name or pattern as sent, decoded from modified UTF-7 for IMAP4rev1 clients; not validated. */
export function decodeName(session: Session, raw: string): string {
  return utf8Mode(session) ? raw : decodeModifiedUtf7(raw);
}

/** A mailbox name from a command argument to its stored form. */
export function mailboxNameIn(session: Session, raw: string): string {
  let name = decodeName(session, raw);
  if (name.toUpperCase() === 'INBOX') name = 'INBOX';
  if (name.toUpperCase().startsWith('INBOX/')) name = 'INBOX' + name.slice(5);
  if (name.endsWith(SEPARATOR)) name = name.slice(0, -1);
  if (name === '' || name.includes('\0') || /[\r\n]/.test(name) || name.split(SEPARATOR).some((p) => p === '')) {
    throw bad('Invalid mailbox name');
  }
  const imap = session.services.config().imap;
  if (Buffer.byteLength(name) > imap.max_mailbox_name || name.split(SEPARATOR).length > imap.max_mailbox_depth) {
    throw no(`Mailbox names are limited to ${imap.max_mailbox_name} bytes and ${imap.max_mailbox_depth} levels`, 'LIMIT');
  }
  return name;
}

/** A stored mailbox name as an IMAP astring for responses. */
export function mailboxNameOut(session: Session, name: string): string | Buffer {
  return astring(utf8Mode(session) ? name : encodeModifiedUtf7(name));
}
