// STORE and UID STORE (RFC 9051 §6.4.6, §6.4.9) with the CONDSTORE UNCHANGEDSINCE modifier
// (RFC 7162 §3.1.3):
//
//   STORE sequence-set [SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"]
//         SP ["+" / "-"] "FLAGS" [".SILENT"] SP (flag-list / flag *(SP flag))
//
// Also the flag syntax shared with APPEND (RFC 9051 §9 flag / flag-list).

import type { FlagOperation } from '../../store/types.js';
import { ok, no, bad, type CommandSpec } from '../context.js';
import { parseSequenceSet, tokenText } from '../protocol/parser.js';
import type { ImapToken } from '../protocol/types.js';
import { compressUids, resolveSet } from '../sequence.js';
import type { ViewMessage } from '../selected.js';
import { flagList } from '../updates.js';

/** System flags a client may set, by lower-case spelling → canonical spelling (RFC 9051 §2.3.2). */
const SYSTEM_FLAGS = new Map(['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'].map((f) => [f.toLowerCase(), f]));
/** Longest keyword accepted; keywords are short words like $Forwarded or $Junk in practice. */
const MAX_KEYWORD_LENGTH = 200;
/** Most flags in one STORE or APPEND. */
const MAX_FLAGS = 100;
/** mod-sequence-valzer (RFC 7162 §7): 0 ≤ n ≤ 2^63-1; JS numbers are exact up to 2^53. */
const MAX_MODSEQ = Number.MAX_SAFE_INTEGER;

/**
 * flag-keyword = atom (RFC 9051 §9): the parser's atoms may also hold "\", "%", "*" and "]",
 * which an atom may not.
 */
function isKeyword(text: string): boolean {
  return text.length > 0 && text.length <= MAX_KEYWORD_LENGTH && /^[\x21-\x7e]+$/.test(text) && !/[\\%*\]"(){]/.test(text);
}

/**
 * Flags as sent (a flag-list, or flag atoms): system flags in canonical spelling, keywords as
 * given, duplicates removed (case-insensitively). \Recent is dropped: it cannot be stored
 * (RFC 3501 §2.3.2; IMAP4rev2 has no \Recent at all). Anything else throws BAD.
 */
export function parseFlags(tokens: ImapToken[]): string[] {
  const out = new Map<string, string>();
  if (tokens.length > MAX_FLAGS) throw bad('Too many flags');
  for (const token of tokens) {
    if (token.type !== 'atom') throw bad('A flag must be an atom, such as \\Seen or $Forwarded');
    const text = token.value;
    if (text.startsWith('\\')) {
      const lower = text.toLowerCase();
      if (lower === '\\recent') continue;
      const canonical = SYSTEM_FLAGS.get(lower);
      if (!canonical) throw bad(`Unknown system flag ${text.slice(0, 40)}`);
      out.set(lower, canonical);
    } else {
      if (!isKeyword(text)) throw bad(`Invalid keyword ${text.slice(0, 40)}`);
      const lower = text.toLowerCase();
      if (!out.has(lower)) out.set(lower, text);
    }
  }
  return [...out.values()];
}

/** A flag-list token "(...)" as flags. */
export function parseFlagList(token: ImapToken): string[] {
  if (token.type !== 'list') throw bad('Expected a flag list');
  return parseFlags(token.items);
}

function parseModSeq(token: ImapToken | undefined): number {
  const text = token && token.type === 'atom' ? token.value : '';
  if (!/^\d{1,19}$/.test(text)) throw bad('UNCHANGEDSINCE needs a mod-sequence number');
  const n = Number(text);
  if (n > MAX_MODSEQ) throw bad('Mod-sequence too large');
  return n;
}

interface StoreRequest {
  set: ReturnType<typeof parseSequenceSet>;
  unchangedSince: number | undefined;
  op: FlagOperation;
  silent: boolean;
  flags: string[];
}

function parseStore(args: ImapToken[]): StoreRequest {
  if (args.length < 3) throw bad('STORE needs a sequence set, an action and flags');
  const set = parseSequenceSet(tokenText(args[0]!));
  let i = 1;
  let unchangedSince: number | undefined;
  const modifiers = args[i];
  if (modifiers?.type === 'list') {
    i++;
    const items = modifiers.items;
    if (items.length === 0) throw bad('Empty STORE modifier list');
    for (let k = 0; k < items.length; k++) {
      const name = items[k]!.type === 'atom' ? tokenText(items[k]!).toUpperCase() : '';
      if (name !== 'UNCHANGEDSINCE') throw bad(`Unknown STORE modifier ${name.slice(0, 30)}`);
      if (unchangedSince !== undefined) throw bad('UNCHANGEDSINCE given twice');
      unchangedSince = parseModSeq(items[++k]);
    }
  }
  const actionToken = args[i++];
  if (!actionToken || actionToken.type !== 'atom') throw bad('STORE needs FLAGS, +FLAGS or -FLAGS');
  const action = /^([+-]?)FLAGS(\.SILENT)?$/i.exec(actionToken.value);
  if (!action) throw bad(`Unknown STORE item ${actionToken.value.slice(0, 30)}`);
  const op: FlagOperation = action[1] === '+' ? 'add' : action[1] === '-' ? 'remove' : 'replace';
  const rest = args.slice(i);
  if (rest.length === 0) throw bad('STORE needs flags');
  let flags: string[];
  if (rest.length === 1 && rest[0]!.type === 'list') flags = parseFlagList(rest[0]!);
  else flags = parseFlags(rest);
  return { set, unchangedSince, op, silent: action[2] !== undefined, flags };
}

function fetchLine(seq: number, message: { uid: number; flags: readonly string[]; modSeq: number }, opts: { uid: boolean; condstore: boolean; flags: boolean }): string {
  const items: string[] = [];
  if (opts.uid) items.push(`UID ${message.uid}`);
  if (opts.flags) items.push(`FLAGS ${flagList(message.flags)}`);
  if (opts.condstore) items.push(`MODSEQ (${message.modSeq})`);
  return `* ${seq} FETCH (${items.join(' ')})\r\n`;
}

export const storeCommands: CommandSpec[] = [
  {
    name: 'STORE',
    states: ['selected'],
    uidForm: true,
    async handle({ session, args, uid }) {
      const request = parseStore(args);
      const view = session.selected!;
      let targets: ViewMessage[];
      try {
        // Resolved against what the client has been told, before any update is announced.
        targets = resolveSet(view, request.set, uid, session.savedSearch);
      } catch (err) {
        if (err instanceof RangeError) throw bad('Invalid message sequence number');
        throw err;
      }
      if (view.readOnly) throw no('Mailbox is read-only', 'READ-ONLY');
      // RFC 7162 §3.1: STORE with UNCHANGEDSINCE is a CONDSTORE enabling command.
      if (request.unchangedSince !== undefined) session.enabled.add('CONDSTORE');
      const condstore = session.enabled.has('CONDSTORE') || session.enabled.has('QRESYNC');

      // Catch up first (no expunges: sequence numbers stay put), so that flags reported for
      // messages this STORE leaves unchanged are current.
      await session.flushUpdates(false);
      // Current objects after the catch-up (views replace them); messages another session
      // expunged (not yet announced) are skipped.
      targets = targets.flatMap((m) => {
        const current = view.byUidGet(m.uid);
        return current && !current.expunged ? [current] : [];
      });
      if (targets.length === 0) return ok('STORE completed');

      const result = await session.services.store.updateFlags(
        view.mailbox.id,
        targets.map((m) => m.uid),
        request.op,
        request.flags,
        request.unchangedSince,
      );
      const changed = new Map(result.changed.map((s) => [s.uid, s]));
      for (const summary of result.changed) view.applyOwnFlags(summary);
      const conflicts = new Set(result.conflicts);

      for (const message of targets) {
        if (conflicts.has(message.uid)) continue;
        const seq = view.seqOf(message.uid);
        if (seq === 0) continue;
        const summary = changed.get(message.uid);
        if (request.silent) {
          // RFC 7162 §3.1.3: even with .SILENT, a CONDSTORE client learns the new MODSEQ.
          if (summary && condstore) session.send(fetchLine(seq, summary, { uid, condstore, flags: false }));
          continue;
        }
        session.send(fetchLine(seq, summary ?? view.byUidGet(message.uid) ?? message, { uid, condstore, flags: true }));
      }

      if (conflicts.size > 0) {
        // RFC 7162 §3.1.3: sequence numbers for STORE, UIDs for UID STORE.
        const failed = uid ? [...conflicts] : [...conflicts].map((u) => view.seqOf(u)).filter((s) => s > 0);
        return ok('Conditional STORE failed for some messages', `MODIFIED ${compressUids(failed)}`);
      }
      return ok('STORE completed');
    },
  },
];
