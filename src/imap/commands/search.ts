// SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731), SEARCHRES
// (RFC 5182), WITHIN (RFC 5032) and CONDSTORE's MODSEQ key (RFC 7162 §3.1.5); SORT and THREAD
// (RFC 5256). The search program is parsed by ../search/query.ts and evaluated per message by
// ../search/evaluate.ts; decoded message text comes from the per-blob cache in
// ../search/content.ts, and is read only for messages whose outcome depends on it.

import { ok, no, bad, type CommandSpec, type Session } from '../context.js';
import { ImapSyntaxError, type ImapToken } from '../protocol/types.js';
import type { ViewMessage } from '../selected.js';
import { compressUids } from '../sequence.js';
import { headerCache, headerSection, textCache, type MessageText } from '../search/content.js';
import { evaluate, type SearchEnv, type SearchMessage } from '../search/evaluate.js';
import {
  BadCharsetError,
  needsBody,
  needsContent,
  parseSearchCommand,
  parseSortCommand,
  parseThreadCommand,
  usesModSeq,
  type ReturnOption,
  type SearchKey,
  type SortCriterion,
} from '../search/query.js';
import { asciiCaseKey, baseSubject, firstMailbox } from '../search/sortkeys.js';
import { formatThreads, threadOrderedSubject, threadReferences, type ThreadMessage } from '../search/thread.js';
import { searchFold } from '../../mime/search-text.js';

/** Messages whose text is read at the same time (the store serves them concurrently). */
const READ_CONCURRENCY = 8;

interface Match {
  message: ViewMessage;
  seq: number;
}

/** What the command reports about a message: its UID, or its sequence number. */
function reported(match: Match, uid: boolean): number {
  return uid ? match.message.uid : match.seq;
}

function searchEnv(session: Session): SearchEnv {
  const view = session.selected!;
  const messages = view.messages;
  const folded = new Map<string, string>();
  return {
    now: Date.now(),
    maxSeq: messages.length,
    maxUid: messages.length > 0 ? messages[messages.length - 1]!.uid : 0,
    saved: new Set(session.savedSearch),
    contains(haystack, needle) {
      // Content in the cache is already search-folded; fold each needle once per command.
      let n = folded.get(needle);
      if (n === undefined) {
        n = searchFold(needle);
        folded.set(needle, n);
      }
      return haystack.includes(n);
    },
  };
}

/** The decoded text of a message (cached per blob); null when it cannot be read. */
async function messageText(session: Session, message: ViewMessage, headersOnly = false): Promise<MessageText | null> {
  try {
    // Keyed by message copy, not blob: the per-recipient header prefix (Delivered-To) must never
    // be searchable by another recipient of the same content (a Bcc would show). UIDVALIDITY is
    // store-wide unique, so (UIDVALIDITY, UID) is never reused; row ids can be.
    const key = `${session.selected!.mailbox.uidValidity}:${message.uid}`;
    const read = () => session.services.store.readMessageById(message.id, { mailboxId: session.selected!.mailbox.id, uid: message.uid });
    if (headersOnly) {
      // A whole text already cached serves too.
      const whole = textCache.get(key);
      if (whole) return whole;
      return await headerCache.load(key, async () => headerSection(await read()));
    }
    return await textCache.load(key, read);
  } catch (err) {
    session.services.log.warn({ session: session.id, messageId: message.id, err: (err as Error)?.message ?? String(err) }, 'search: message unreadable');
    return null;
  }
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping order. */
async function mapConcurrent<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, () => worker()));
  return results;
}

/**
 * The messages of the selected mailbox that match `key`, in mailbox order. Messages expunged
 * by others but not yet announced keep their sequence numbers and never match.
 */
async function runSearch(session: Session, key: SearchKey, uid: boolean): Promise<Match[]> {
  // Catch up with flag changes and new mail first (and, for the UID form, expunges: RFC 9051
  // §7.5.1 forbids EXPUNGE responses only during the sequence-number form).
  await session.flushUpdates(uid);
  const view = session.selected!;
  const env = searchEnv(session);
  const snapshot = [...view.messages];
  const matches: Match[] = [];
  const undecided: Match[] = [];
  const content = needsContent(key);
  snapshot.forEach((message, index) => {
    if (message.expunged) return;
    const candidate: Match = { message, seq: index + 1 };
    const result = evaluate(key, searchMessage(candidate), null, env);
    if (result === true) matches.push(candidate);
    else if (result === null && content) undecided.push(candidate);
  });
  if (undecided.length > 0) {
    const headersOnly = !needsBody(key);
    const texts = await mapConcurrent(undecided, READ_CONCURRENCY, (m) => messageText(session, m.message, headersOnly));
    undecided.forEach((candidate, i) => {
      const text = texts[i];
      if (text && evaluate(key, searchMessage(candidate), text, env) === true) matches.push(candidate);
    });
    matches.sort((a, b) => a.seq - b.seq);
  }
  return matches;
}

function searchMessage(match: Match): SearchMessage {
  const m = match.message;
  return { seq: match.seq, uid: m.uid, flags: m.flags, size: m.size, internalDate: m.internalDate, modSeq: m.modSeq };
}

function highestModSeq(matches: Match[]): number {
  let highest = 0;
  for (const m of matches) if (m.message.modSeq > highest) highest = m.message.modSeq;
  return highest;
}

function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Turns parse failures into the tagged replies they call for. */
function asReply(err: unknown): never {
  if (err instanceof BadCharsetError) throw no(err.message, 'BADCHARSET (UTF-8)');
  if (err instanceof ImapSyntaxError) throw bad(err.message);
  throw err;
}

/** Whether the arguments ask for RETURN (... SAVE ...): a failed command then empties "$" (RFC 5182 §2.1). */
function asksToSave(args: ImapToken[]): boolean {
  const first = args[0];
  const list = args[1];
  return (
    first?.type === 'atom' &&
    first.value.toUpperCase() === 'RETURN' &&
    list?.type === 'list' &&
    list.items.some((t) => t.type === 'atom' && t.value.toUpperCase() === 'SAVE')
  );
}

async function search(session: Session, tag: string, args: ImapToken[], uid: boolean) {
  const saving = asksToSave(args);
  try {
    let program;
    try {
      program = parseSearchCommand(args);
    } catch (err) {
      asReply(err);
    }
    const modseq = usesModSeq(program.key);
    // RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE-enabling command.
    if (modseq) session.enabled.add('CONDSTORE');
    const matches = await runSearch(session, program.key, uid);

    let returns: Set<ReturnOption> | null = program.returns;
    // RFC 9051 §6.4.4: under IMAP4rev2 the answer is always ESEARCH; no RETURN means RETURN (ALL).
    if (!returns && session.enabled.has('IMAP4REV2')) returns = new Set(['ALL']);
    if (!returns) {
      const numbers = matches.map((m) => reported(m, uid));
      const modseqText = modseq && matches.length > 0 ? ` (MODSEQ ${highestModSeq(matches)})` : '';
      session.send(`* SEARCH${numbers.map((n) => ` ${n}`).join('')}${modseqText}\r\n`);
      return ok(`${uid ? 'UID SEARCH' : 'SEARCH'} completed`);
    }

    const first = matches[0];
    const last = matches[matches.length - 1];
    const everything = returns.has('ALL') || returns.has('COUNT');
    if (returns.has('SAVE')) {
      // RFC 5182 §2.4: with MIN and/or MAX but neither ALL nor COUNT, only those are saved.
      const saved = everything || (!returns.has('MIN') && !returns.has('MAX')) ? matches : [returns.has('MIN') ? first : undefined, returns.has('MAX') ? last : undefined];
      session.savedSearch = [...new Set(saved.filter((m): m is Match => m !== undefined).map((m) => m.message.uid))].sort((a, b) => a - b);
    }
    const shown = [...returns].filter((r) => r !== 'SAVE');
    // RFC 5182 §2.2: SAVE alone produces no ESEARCH response.
    if (shown.length > 0) {
      let line = `* ESEARCH (TAG ${quoted(tag)})${uid ? ' UID' : ''}`;
      if (returns.has('MIN') && first) line += ` MIN ${reported(first, uid)}`;
      if (returns.has('MAX') && last) line += ` MAX ${reported(last, uid)}`;
      if (returns.has('COUNT')) line += ` COUNT ${matches.length}`;
      if (returns.has('ALL') && matches.length > 0) line += ` ALL ${compressUids(matches.map((m) => reported(m, uid)))}`;
      if (modseq && matches.length > 0) {
        // RFC 7162 §3.1.5: the highest MODSEQ of the messages the response is about.
        const about = everything ? matches : [returns.has('MIN') ? first : undefined, returns.has('MAX') ? last : undefined].filter((m): m is Match => m !== undefined);
        line += ` MODSEQ ${highestModSeq(about)}`;
      }
      session.send(`${line}\r\n`);
    }
    return ok(`${uid ? 'UID SEARCH' : 'SEARCH'} completed`);
  } catch (err) {
    if (saving) session.savedSearch = [];
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// SORT

type SortValue = number | string;

function sortValue(criterion: SortCriterion, match: Match, text: MessageText | null): SortValue {
  const m = match.message;
  switch (criterion.key) {
    case 'ARRIVAL':
      return m.internalDate.getTime();
    case 'SIZE':
      return m.size;
    case 'DATE':
      return text?.sentTime ?? m.internalDate.getTime();
    case 'FROM':
      return asciiCaseKey(firstMailbox(text?.sort.from));
    case 'TO':
      return asciiCaseKey(firstMailbox(text?.sort.to));
    case 'CC':
      return asciiCaseKey(firstMailbox(text?.sort.cc));
    case 'SUBJECT':
      return asciiCaseKey(baseSubject(text?.sort.subject ?? ''));
  }
}

async function textsFor(session: Session, matches: Match[]): Promise<Array<MessageText | null>> {
  // SORT and THREAD read header fields only.
  return mapConcurrent(matches, READ_CONCURRENCY, (m) => messageText(session, m.message, true));
}

async function sort(session: Session, args: ImapToken[], uid: boolean) {
  let parsed;
  try {
    parsed = parseSortCommand(args);
  } catch (err) {
    asReply(err);
  }
  const modseq = usesModSeq(parsed.key);
  if (modseq) session.enabled.add('CONDSTORE');
  const matches = await runSearch(session, parsed.key, uid);
  const needText = parsed.criteria.some((c) => c.key !== 'ARRIVAL' && c.key !== 'SIZE');
  const texts = needText ? await textsFor(session, matches) : matches.map(() => null);
  const rows = matches.map((match, i) => ({ match, values: parsed.criteria.map((c) => sortValue(c, match, texts[i] ?? null)) }));
  rows.sort((a, b) => {
    for (let i = 0; i < parsed.criteria.length; i++) {
      const x = a.values[i]!;
      const y = b.values[i]!;
      if (x === y) continue;
      const order = x < y ? -1 : 1;
      return parsed.criteria[i]!.reverse ? -order : order;
    }
    // RFC 5256 §3: messages equal by every criterion keep their mailbox order.
    return a.match.seq - b.match.seq;
  });
  const numbers = rows.map((r) => reported(r.match, uid));
  const modseqText = modseq && matches.length > 0 ? ` (MODSEQ ${highestModSeq(matches)})` : '';
  session.send(`* SORT${numbers.map((n) => ` ${n}`).join('')}${modseqText}\r\n`);
  return ok(`${uid ? 'UID SORT' : 'SORT'} completed`);
}

// ---------------------------------------------------------------------------------------------
// THREAD

/** The message ids (without angle brackets) in a Message-ID, References or In-Reply-To value. */
export function messageIds(value: string): string[] {
  const ids: string[] = [];
  for (const m of value.matchAll(/<([^<>\s]+)>/g)) ids.push(m[1]!);
  return ids;
}

function threadMessage(match: Match, text: MessageText | null, uid: boolean): ThreadMessage {
  const sort = text?.sort;
  const ownId = sort ? (messageIds(sort.messageId)[0] ?? (sort.messageId.trim() || null)) : null;
  let references = sort ? messageIds(sort.references) : [];
  if (references.length === 0 && sort) references = messageIds(sort.inReplyTo).slice(0, 1);
  return {
    id: reported(match, uid),
    order: match.seq,
    sent: text?.sentTime ?? match.message.internalDate.getTime(),
    subject: sort?.subject ?? '',
    messageId: ownId,
    references: references.filter((r) => r !== ownId),
  };
}

async function thread(session: Session, args: ImapToken[], uid: boolean) {
  let parsed;
  try {
    parsed = parseThreadCommand(args);
  } catch (err) {
    asReply(err);
  }
  const matches = await runSearch(session, parsed.key, uid);
  const texts = await textsFor(session, matches);
  const messages = matches.map((match, i) => threadMessage(match, texts[i] ?? null, uid));
  const roots = parsed.algorithm === 'REFERENCES' ? threadReferences(messages) : threadOrderedSubject(messages);
  const threads = formatThreads(roots);
  session.send(`* THREAD${threads ? ` ${threads}` : ''}\r\n`);
  return ok(`${uid ? 'UID THREAD' : 'THREAD'} completed`);
}

export const searchCommands: CommandSpec[] = [
  { name: 'SEARCH', states: ['selected'], uidForm: true, handle: ({ session, tag, args, uid }) => search(session, tag, args, uid) },
  { name: 'SORT', states: ['selected'], uidForm: true, handle: ({ session, args, uid }) => sort(session, args, uid) },
  { name: 'THREAD', states: ['selected'], uidForm: true, handle: ({ session, args, uid }) => thread(session, args, uid) },
];
