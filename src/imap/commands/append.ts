// APPEND (RFC 9051 §6.3.12) with UIDPLUS APPENDUID (RFC 4315 §3), literal8 (BINARY, RFC 3516
// §4.2) and the UTF8 data item (RFC 6855 §4):
//
//   APPEND mailbox [SP flag-list] [SP date-time] SP (literal / literal8 / "UTF8" SP "(" literal8 ")")
//
// The octets are stored exactly as sent. The quota is enforced inside the store transaction.
// An APPEND to the selected mailbox is announced (EXISTS) by the normal update mechanism.

import { normalizeLineEndings } from '../../mime/line-endings.js';
import { ok, no, bad, type CommandSpec } from '../context.js';
import { parseDateTime, tokenText } from '../protocol/parser.js';
import type { ImapToken } from '../protocol/types.js';
import { mailboxNameIn } from '../names.js';
import { parseFlagList } from './store.js';
import { accountQuota } from './quota.js';
import { overQuotaText } from './copy.js';

interface AppendRequest {
  mailboxToken: ImapToken;
  flags: string[];
  date: Date | null;
  bytes: Buffer;
}

function parseAppend(args: ImapToken[], utf8Enabled: boolean): AppendRequest {
  if (args.length < 2) throw bad('APPEND needs a mailbox name and a message');
  const mailboxToken = args[0]!;
  let i = 1;
  let flags: string[] = [];
  if (args[i]?.type === 'list') flags = parseFlagList(args[i++]!);
  let date: Date | null = null;
  // A date-time is a (quoted) string followed by the message.
  const maybeDate = args[i];
  if (args.length - i >= 2 && maybeDate?.type === 'string') {
    date = parseDateTime(tokenText(maybeDate));
    i++;
  }
  const data = args[i++];
  if (!data) throw bad('APPEND needs a message');
  let message: ImapToken | undefined = data;
  if (data.type === 'atom' && data.value.toUpperCase() === 'UTF8') {
    // RFC 6855 §4: only after ENABLE UTF8=ACCEPT; the message is a literal8 in parentheses.
    if (!utf8Enabled) throw bad('APPEND UTF8 needs ENABLE UTF8=ACCEPT first');
    const inner = args[i++];
    if (!inner || inner.type !== 'list' || inner.items.length !== 1) throw bad('APPEND UTF8 needs (~{n}message)');
    message = inner.items[0];
    if (!message || message.type !== 'string' || !message.binary) throw bad('APPEND UTF8 needs a literal8 (~{n})');
  }
  if (!message || message.type !== 'string' || !message.literal) throw bad('The message must be sent as a literal');
  // MULTIAPPEND (RFC 3502) is not offered.
  if (i !== args.length) throw bad('Unexpected arguments after the message');
  // RFC 5322 §2.3: lines end in CRLF. Bare CR/LF are stored as CRLF, so that RFC822.SIZE, what
  // BODY[] sends and what POP3 counts all agree.
  const bytes = normalizeLineEndings(message.value);
  if (bytes.length === 0) throw bad('Empty message');
  // RFC 9051 §4.3: a literal is CHAR8 (no NUL); NUL needs a literal8 (RFC 3516 §4.2).
  if (!message.binary && bytes.includes(0)) throw bad('NUL in a literal; send the message as a literal8 (~{n})');
  return { mailboxToken, flags, date, bytes };
}

export const appendCommands: CommandSpec[] = [
  {
    name: 'APPEND',
    states: ['authenticated', 'selected'],
    async handle({ session, args }) {
      if (!session.user) throw no('Not logged in');
      const utf8 = session.enabled.has('UTF8=ACCEPT') || session.enabled.has('IMAP4REV2');
      const request = parseAppend(args, utf8);
      const name = mailboxNameIn(session, tokenText(request.mailboxToken));
      const store = session.services.store;
      const accountId = session.user.account.id;
      const mailbox = await store.getMailbox(accountId, name);
      // RFC 9051 §6.3.12: never created implicitly; TRYCREATE tells the client it could be.
      if (!mailbox) throw no('No such mailbox', 'TRYCREATE');
      const quota = await accountQuota(session);
      const result = await store.appendMessage({
        accountId,
        mailboxId: mailbox.id,
        bytes: request.bytes,
        flags: request.flags,
        internalDate: request.date ?? new Date(),
        quota,
      });
      if (!result.ok) throw no(overQuotaText(result.usage, result.limit, { bytes: request.bytes.length, messages: 1 }), 'OVERQUOTA');
      return ok('APPEND completed', `APPENDUID ${result.uidValidity} ${result.uid}`);
    },
  },
];
