// SELECT / EXAMINE (RFC 9051 §6.3.2-3, with CONDSTORE and QRESYNC parameters, RFC 7162 §3.2.5),
// CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), IDLE (RFC 2177),
// COMPRESS (RFC 4978).

import { ok, no, bad, SilentResult, type CommandSpec, type Session } from '../context.js';
import { parseSequenceSet, tokenText } from '../protocol/parser.js';
import type { ImapToken } from '../protocol/types.js';
import { SelectedMailbox } from '../selected.js';
import { mailboxNameIn, mailboxNameOut, SEPARATOR } from '../names.js';
import { compressUids, resolveSet } from '../sequence.js';
import { flagList } from '../updates.js';

const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

async function select(session: Session, args: ImapToken[], readOnly: boolean) {
  if (!session.user) throw no('Not logged in');
  if (args.length < 1) throw bad('SELECT needs a mailbox name');
  // RFC 9051 §6.3.2: a SELECT first deselects, whatever its outcome.
  session.selected = null;
  session.state = 'authenticated';
  const name = mailboxNameIn(session, tokenText(args[0]!));
  const store = session.services.store;
  const mailbox = await store.getMailbox(session.user.account.id, name);
  if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');

  let qresync: { uidValidity: number; modSeq: number; knownUids: string | null } | null = null;
  const params = args[1];
  if (params) {
    if (params.type !== 'list') throw bad('SELECT parameters must be a list');
    for (let i = 0; i < params.items.length; i++) {
      const word = tokenText(params.items[i]!).toUpperCase();
      if (word === 'CONDSTORE') session.enabled.add('CONDSTORE');
      else if (word === 'QRESYNC') {
        if (!session.enabled.has('QRESYNC')) throw bad('QRESYNC must be enabled first (ENABLE QRESYNC)');
        const spec = params.items[++i];
        if (!spec || spec.type !== 'list' || spec.items.length < 2) throw bad('QRESYNC needs (uidvalidity modseq [known-uids])');
        qresync = {
          uidValidity: Number(tokenText(spec.items[0]!)),
          modSeq: Number(tokenText(spec.items[1]!)),
          knownUids: spec.items[2] && spec.items[2].type !== 'list' ? tokenText(spec.items[2]) : null,
        };
        if (!Number.isSafeInteger(qresync.uidValidity) || !Number.isSafeInteger(qresync.modSeq)) throw bad('Invalid QRESYNC numbers');
      } else throw bad(`Unknown SELECT parameter ${word.slice(0, 30)}`);
    }
  }

  const views = session.services.views;
  const view = await SelectedMailbox.open(store, mailbox, readOnly, views ? await views.snapshot(store, mailbox) : undefined);
  const keywords = new Set<string>();
  for (const message of view.messages) for (const flag of message.flags) if (!flag.startsWith('\\')) keywords.add(flag);
  const flags = [...SYSTEM_FLAGS, ...keywords];
  const rev2 = session.enabled.has('IMAP4REV2');
  session.send(`* ${view.exists} EXISTS\r\n`);
  if (!rev2) session.send('* 0 RECENT\r\n');
  session.send(`* FLAGS ${flagList(flags)}\r\n`);
  session.send(`* OK [PERMANENTFLAGS ${readOnly ? '()' : flagList([...flags, '\\*'])}] Flags permitted\r\n`);
  if (!rev2) {
    const firstUnseen = view.messages.findIndex((m) => !m.flags.includes('\\Seen'));
    if (firstUnseen >= 0) session.send(`* OK [UNSEEN ${firstUnseen + 1}] First unseen\r\n`);
  }
  session.send(`* OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid\r\n`);
  session.send(`* OK [UIDNEXT ${view.uidNext}] Predicted next UID\r\n`);
  session.send(`* OK [HIGHESTMODSEQ ${view.highestModSeq}] Highest\r\n`);
  if (rev2) session.send(Buffer.concat([Buffer.from(`* LIST () "${SEPARATOR}" `), toBuffer(mailboxNameOut(session, mailbox.name)), Buffer.from('\r\n')]));

  if (qresync && qresync.uidValidity === mailbox.uidValidity) {
    // RFC 7162 §3.2.5.1: what the client missed since its MODSEQ.
    const changes = await store.changesSince(mailbox.id, qresync.modSeq);
    let vanished = changes.expunged;
    if (qresync.knownUids) {
      const known = parseSequenceSet(qresync.knownUids);
      if (known !== '$') vanished = vanished.filter((uid) => known.some((r) => uid >= Math.min(r.from, r.to) && uid <= Math.max(r.from, r.to)));
    }
    if (vanished.length > 0) session.send(`* VANISHED (EARLIER) ${compressUids(vanished)}\r\n`);
    for (const summary of changes.changed) {
      const seq = view.seqOf(summary.uid);
      if (seq > 0) session.send(`* ${seq} FETCH (UID ${summary.uid} FLAGS ${flagList(summary.flags)} MODSEQ (${summary.modSeq}))\r\n`);
    }
  }
  session.selected = view;
  session.state = 'selected';
  // RFC 5182 §2.1: the saved search result is emptied by a successful SELECT/EXAMINE.
  session.savedSearch = [];
  return ok(`${readOnly ? 'EXAMINE' : 'SELECT'} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE');
}

function toBuffer(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

/** Removes \Deleted messages (all, or those in uids); returns the UIDs removed. */
async function expungeDeleted(session: Session, only: Set<number> | null): Promise<number[]> {
  const view = session.selected!;
  if (view.readOnly) throw no('Mailbox is read-only', 'READ-ONLY');
  // Catch up first, so that flags set by other sessions count.
  await session.flushUpdates(false);
  const doomed = view.messages.filter((m) => !m.expunged && m.flags.some((f) => f.toLowerCase() === '\\deleted') && (!only || only.has(m.uid))).map((m) => m.uid);
  if (doomed.length === 0) return [];
  return session.services.store.expungeMessages(view.mailbox.id, doomed);
}

function announceExpunged(session: Session, uids: number[]): void {
  const view = session.selected!;
  if (session.enabled.has('QRESYNC')) {
    view.removeOwn(uids);
    if (uids.length > 0) session.send(`* VANISHED ${compressUids(uids)}\r\n`);
    return;
  }
  // removeOwn yields sequence numbers highest first; each EXPUNGE then leaves the others valid.
  for (const seq of view.removeOwn(uids)) session.send(`* ${seq} EXPUNGE\r\n`);
}

export const selectCommands: CommandSpec[] = [
  { name: 'SELECT', states: ['authenticated', 'selected'], handle: ({ session, args }) => select(session, args, false) },
  { name: 'EXAMINE', states: ['authenticated', 'selected'], handle: ({ session, args }) => select(session, args, true) },
  {
    name: 'CLOSE',
    states: ['selected'],
    async handle({ session }) {
      const view = session.selected!;
      if (!view.readOnly) {
        // Flags other sessions changed count (CLOSE sends no untagged EXPUNGE, so refresh only).
        await view.refresh(session.services.store);
        const doomed = view.messages.filter((m) => !m.expunged && m.flags.some((f) => f.toLowerCase() === '\\deleted')).map((m) => m.uid);
        if (doomed.length > 0) await session.services.store.expungeMessages(view.mailbox.id, doomed);
      }
      session.selected = null;
      session.state = 'authenticated';
      return ok('CLOSE completed');
    },
  },
  {
    name: 'UNSELECT',
    states: ['selected'],
    async handle({ session }) {
      session.selected = null;
      session.state = 'authenticated';
      return ok('UNSELECT completed');
    },
  },
  {
    name: 'EXPUNGE',
    states: ['selected'],
    uidForm: true,
    async handle({ session, args, uid }) {
      let only: Set<number> | null = null;
      if (uid) {
        if (args.length !== 1) throw bad('UID EXPUNGE needs a UID set');
        const set = parseSequenceSet(tokenText(args[0]!));
        only = new Set(resolveSet(session.selected!, set, true, session.savedSearch).map((m) => m.uid));
      } else if (args.length > 0) throw bad('EXPUNGE takes no arguments');
      const removed = await expungeDeleted(session, only);
      announceExpunged(session, removed);
      return ok('EXPUNGE completed', session.enabled.has('CONDSTORE') ? `HIGHESTMODSEQ ${(await session.services.store.getMailboxById(session.selected!.mailbox.id))?.highestModSeq ?? 0}` : undefined);
    },
  },
  {
    name: 'IDLE',
    states: ['authenticated', 'selected'],
    async handle({ session }) {
      const outcome = await session.idle();
      if (outcome === 'closed') throw new SilentResult();
      return ok('IDLE terminated');
    },
  },
  {
    name: 'COMPRESS',
    states: ['authenticated', 'selected'],
    async handle({ session, tag, args }) {
      if (args.length !== 1 || tokenText(args[0]!).toUpperCase() !== 'DEFLATE') throw bad('Only COMPRESS DEFLATE is supported');
      if (session.connection.compressed) throw no('Compression is already active', 'COMPRESSIONACTIVE');
      session.send(`${tag} OK DEFLATE active\r\n`);
      session.connection.startCompression();
      throw new SilentResult();
    },
  },
];
