// COPY and UID COPY (RFC 9051 §6.4.7), MOVE and UID MOVE (RFC 6851), with UIDPLUS COPYUID
// (RFC 4315 §3) and quotas (RFC 9208 §4.3: a copy that does not fit fails whole with
// NO [OVERQUOTA]; the store copies all or nothing in one transaction).

import type { QuotaLimit } from '../../store/types.js';
import { ok, no, bad, type CommandSpec, type Session } from '../context.js';
import { parseSequenceSet, tokenText } from '../protocol/parser.js';
import type { ImapToken } from '../protocol/types.js';
import { mailboxNameIn } from '../names.js';
import { compressUids, resolveSet } from '../sequence.js';
import type { ViewMessage } from '../selected.js';
import { accountQuota } from './quota.js';

/** "NO [OVERQUOTA] ..." text: what is used and what the limit is, in the units that matter. */
export function overQuotaText(usage: { bytes: number; messages: number }, limit: QuotaLimit, adding: { bytes: number; messages: number }): string {
  if (limit.messages !== null && usage.messages + adding.messages > limit.messages) {
    return `Over quota: ${usage.messages} of ${limit.messages} messages used, ${adding.messages} more do not fit`;
  }
  if (limit.bytes !== null) return `Over quota: ${usage.bytes} of ${limit.bytes} bytes used, ${adding.bytes} more do not fit`;
  return 'Over quota';
}

async function copyOrMove(session: Session, args: ImapToken[], byUid: boolean, move: boolean) {
  const command = move ? 'MOVE' : 'COPY';
  if (args.length !== 2) throw bad(`${command} needs a message set and a mailbox name`);
  const set = parseSequenceSet(tokenText(args[0]!));
  const view = session.selected!;
  let messages: ViewMessage[];
  try {
    messages = resolveSet(view, set, byUid, session.savedSearch);
  } catch (err) {
    if (err instanceof RangeError) throw bad('Invalid message sequence number');
    throw err;
  }
  const name = mailboxNameIn(session, tokenText(args[1]!));
  // RFC 6851 §3.3: MOVE expunges, which a read-only mailbox does not allow.
  if (move && view.readOnly) throw no('Mailbox is read-only', 'READ-ONLY');
  const store = session.services.store;
  const target = await store.getMailbox(session.user!.account.id, name);
  if (!target) throw no('No such mailbox', 'TRYCREATE');

  // Messages another session expunged are gone from the store: nothing to copy for them.
  messages = messages.filter((m) => !(view.byUidGet(m.uid) ?? m).expunged);
  // RFC 4315 §3: nothing copied (e.g. UID COPY of UIDs that no longer exist) is OK without COPYUID.
  if (messages.length === 0) return ok(`${command} completed; nothing to ${command.toLowerCase()}`);

  const quota = await accountQuota(session);
  const result = await store.copyMessages(
    view.mailbox.id,
    messages.map((m) => m.uid),
    target.id,
    move,
    quota,
  );
  if (!result.ok) {
    const adding = { bytes: messages.reduce((sum, m) => sum + m.size, 0), messages: messages.length };
    throw no(overQuotaText(result.usage, result.limit, adding), 'OVERQUOTA');
  }
  if (result.uidMap.length === 0) return ok(`${command} completed; nothing to ${command.toLowerCase()}`);
  const copyUid = `COPYUID ${result.uidValidity} ${compressUids(result.uidMap.map(([from]) => from))} ${compressUids(result.uidMap.map(([, to]) => to))}`;
  if (!move) return ok('COPY completed', copyUid);

  // RFC 6851 §4.3 / §4.4: COPYUID in an untagged OK before the expunges, then the expunges.
  session.send(`* OK [${copyUid}] Moved\r\n`);
  const moved = result.uidMap.map(([from]) => from);
  const seqs = view.removeOwn(moved);
  if (session.enabled.has('QRESYNC')) session.send(`* VANISHED ${compressUids(moved)}\r\n`);
  else for (const seq of seqs) session.send(`* ${seq} EXPUNGE\r\n`);
  return ok('MOVE completed');
}

export const copyCommands: CommandSpec[] = [
  {
    name: 'COPY',
    states: ['selected'],
    uidForm: true,
    handle: ({ session, args, uid }) => copyOrMove(session, args, uid, false),
  },
  {
    name: 'MOVE',
    states: ['selected'],
    uidForm: true,
    handle: ({ session, args, uid }) => copyOrMove(session, args, uid, true),
  },
];
