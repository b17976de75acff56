// FETCH and UID FETCH (RFC 9051 §6.4.5): UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE,
// BODYSTRUCTURE, BODY, BODY[section]<partial>, BODY.PEEK, RFC822(.HEADER/.TEXT), BINARY[...]
// and BINARY.SIZE (RFC 3516), MODSEQ with CHANGEDSINCE and VANISHED (RFC 7162).

import { ok, no, bad, type CommandSpec, type Session } from '../context.js';
import { parseSequenceSet, tokenText } from '../protocol/parser.js';
import { formatInternalDate, joinWire, literal, type Wire } from '../protocol/encoder.js';
import type { ImapToken } from '../protocol/types.js';
import { compressUids, resolveSet } from '../sequence.js';
import { flagList } from '../updates.js';
import type { ViewMessage } from '../selected.js';
import { parseMessage, sectionBytes, decodedPart, partSection, SectionError, type ParsedMessage } from '../../mime/message-parts.js';
import { bodyStructure, envelope, renderImapValue } from '../../mime/imap-structures.js';

interface FetchItem {
  kind: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'MODSEQ' | 'RFC822' | 'RFC822.HEADER' | 'RFC822.TEXT' | 'SECTION' | 'BINARY' | 'BINARY.SIZE';
  /** For sections: the name as the client wrote it (BODY / BODY.PEEK / BINARY / BINARY.PEEK), the section text, and the partial. */
  section?: string;
  peek?: boolean;
  partial?: { offset: number; length: number };
}

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

function parseItems(token: ImapToken): FetchItem[] {
  const tokens = token.type === 'list' ? token.items : [token];
  if (tokens.length === 0) throw bad('FETCH needs at least one item');
  const items: FetchItem[] = [];
  for (const t of tokens) {
    if (t.type === 'section') {
      const name = t.name.toUpperCase();
      if (name === 'BODY' || name === 'BODY.PEEK') items.push({ kind: 'SECTION', section: t.section, peek: name === 'BODY.PEEK', partial: t.partial });
      else if (name === 'BINARY' || name === 'BINARY.PEEK') items.push({ kind: 'BINARY', section: t.section, peek: name === 'BINARY.PEEK', partial: t.partial });
      else if (name === 'BINARY.SIZE') items.push({ kind: 'BINARY.SIZE', section: t.section });
      else throw bad(`Unknown FETCH item ${name.slice(0, 30)}`);
      continue;
    }
    const word = tokenText(t).toUpperCase();
    if (token.type !== 'list' && MACROS[word]) {
      for (const m of MACROS[word]!) items.push({ kind: m as FetchItem['kind'] });
      continue;
    }
    if (['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ', 'RFC822', 'RFC822.HEADER', 'RFC822.TEXT'].includes(word)) {
      items.push({ kind: word as FetchItem['kind'] });
    } else throw bad(`Unknown FETCH item ${word.slice(0, 30)}`);
  }
  return items;
}

/**
 * Recently parsed messages per message copy (the header prefix differs per recipient, so not by
 * blob): clients fetch a message's structure, then its parts. Bounded by count and by bytes.
 */
const parseCache = new Map<string, { raw: Buffer; parsed: ParsedMessage }>();
const PARSE_CACHE_MAX_ENTRIES = 256;
const PARSE_CACHE_MAX_BYTES = 64 * 1024 * 1024;
let parseCacheBytes = 0;

async function load(session: Session, message: ViewMessage): Promise<{ raw: Buffer; parsed: ParsedMessage }> {
  // UIDVALIDITY comes from a store-wide counter, so (UIDVALIDITY, UID) names one message copy
  // forever; row ids may be reused after deletions and must not be cache keys.
  const key = `${session.selected!.mailbox.uidValidity}:${message.uid}`;
  const cached = parseCache.get(key);
  if (cached) return cached;
  const raw = await session.services.store.readMessageById(message.id, { mailboxId: session.selected!.mailbox.id, uid: message.uid });
  const entry = { raw, parsed: parseMessage(raw) };
  if (raw.length > PARSE_CACHE_MAX_BYTES / 4) return entry;
  while (parseCache.size > 0 && (parseCache.size >= PARSE_CACHE_MAX_ENTRIES || parseCacheBytes + raw.length > PARSE_CACHE_MAX_BYTES)) {
    const [oldestId, oldest] = parseCache.entries().next().value!;
    parseCache.delete(oldestId);
    parseCacheBytes -= oldest.raw.length;
  }
  parseCache.set(key, entry);
  parseCacheBytes += raw.length;
  return entry;
}

function partialOf(bytes: Buffer, partial: FetchItem['partial']): { bytes: Buffer; origin: string } {
  if (!partial) return { bytes, origin: '' };
  // RFC 9051 §6.4.5: <origin.octets>; the response names only the origin.
  return { bytes: bytes.subarray(partial.offset, partial.offset + partial.length), origin: `<${partial.offset}>` };
}

export const fetchCommands: CommandSpec[] = [
  {
    name: 'FETCH',
    states: ['selected'],
    uidForm: true,
    async handle({ session, args, uid }) {
      const view = session.selected!;
      if (args.length < 2 || args.length > 3) throw bad('FETCH needs a sequence set and items');
      const set = parseSequenceSet(tokenText(args[0]!));
      const items = parseItems(args[1]!);
      let changedSince: number | null = null;
      let vanished = false;
      if (args[2]) {
        if (args[2].type !== 'list') throw bad('FETCH modifiers must be a list');
        const mods = args[2].items;
        for (let i = 0; i < mods.length; i++) {
          const word = tokenText(mods[i]!).toUpperCase();
          if (word === 'CHANGEDSINCE') {
            changedSince = Number(tokenText(mods[++i] ?? { type: 'atom', value: '' }));
            if (!Number.isSafeInteger(changedSince) || changedSince < 0) throw bad('CHANGEDSINCE needs a number');
            session.enabled.add('CONDSTORE');
          } else if (word === 'VANISHED') {
            if (!uid || !session.enabled.has('QRESYNC')) throw bad('VANISHED needs UID FETCH and QRESYNC enabled');
            vanished = true;
          } else throw bad(`Unknown FETCH modifier ${word.slice(0, 30)}`);
        }
        if (vanished && changedSince === null) throw bad('VANISHED needs CHANGEDSINCE');
      }
      let messages: ViewMessage[];
      try {
        messages = resolveSet(view, set, uid, session.savedSearch);
      } catch (err) {
        if (err instanceof RangeError) throw bad('Invalid message sequence number');
        throw err;
      }
      const condstore = session.enabled.has('CONDSTORE');
      if (vanished && changedSince !== null && set !== '$') {
        // RFC 7162 §3.2.6: UIDs in the set expunged after CHANGEDSINCE.
        const changes = await session.services.store.changesSince(view.mailbox.id, changedSince);
        const inSet = changes.expunged.filter((u) => set.some((r) => u >= Math.min(r.from, r.to === Infinity ? u : r.to) && u <= Math.max(r.from === Infinity ? u : r.from, r.to === Infinity ? u : r.to)));
        if (inSet.length > 0) session.send(`* VANISHED (EARLIER) ${compressUids(inSet)}\r\n`);
      }
      const setsSeen = !view.readOnly && items.some((i) => (i.kind === 'SECTION' || i.kind === 'BINARY') && !i.peek || i.kind === 'RFC822' || i.kind === 'RFC822.TEXT');
      const wants = new Set(items.map((i) => i.kind));
      const needsBody = items.some((i) => !['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'MODSEQ'].includes(i.kind));
      for (const resolved of messages) {
        // The view replaces a message's object when it changes: use the current one.
        let message = view.byUidGet(resolved.uid) ?? resolved;
        if (changedSince !== null && message.modSeq <= changedSince) continue;
        if (message.expunged) continue;
        const seq = view.seqOf(message.uid);
        // RFC 9051 §6.4.5: fetching a body without .PEEK sets \Seen.
        let flagsChanged = false;
        if (setsSeen && !message.flags.some((f) => f.toLowerCase() === '\\seen')) {
          const result = await session.services.store.updateFlags(view.mailbox.id, [message.uid], 'add', ['\\Seen']);
          for (const summary of result.changed) view.applyOwnFlags(summary);
          flagsChanged = result.changed.length > 0;
          message = view.byUidGet(message.uid) ?? message;
        }
        const parts: Wire[] = [];
        const add = (name: string, value: Wire) => {
          if (parts.length > 0) parts.push(' ');
          parts.push(name, ' ', value);
        };
        if (uid || wants.has('UID')) add('UID', String(message.uid));
        if (wants.has('FLAGS') || flagsChanged) add('FLAGS', flagList(message.flags));
        if (wants.has('INTERNALDATE')) add('INTERNALDATE', `"${formatInternalDate(message.internalDate)}"`);
        if (wants.has('RFC822.SIZE')) add('RFC822.SIZE', String(message.size));
        if (wants.has('MODSEQ') || (condstore && changedSince !== null) || (condstore && flagsChanged)) add('MODSEQ', `(${message.modSeq})`);
        if (needsBody) {
          let loaded;
          try {
            loaded = await load(session, message);
          } catch {
            // Expunged by another session while we were working: RFC 9051 §7.4.1 allows omitting it.
            continue;
          }
          const { raw, parsed } = loaded;
          for (const item of items) {
            switch (item.kind) {
              case 'ENVELOPE':
                add('ENVELOPE', renderImapValue(envelope(parsed, raw)));
                break;
              case 'BODYSTRUCTURE':
                add('BODYSTRUCTURE', renderImapValue(bodyStructure(parsed, raw, true)));
                break;
              case 'BODY':
                add('BODY', renderImapValue(bodyStructure(parsed, raw, false)));
                break;
              case 'RFC822':
                add('RFC822', literal(raw));
                break;
              case 'RFC822.HEADER':
                add('RFC822.HEADER', literal(sectionBytes(raw, parsed, 'HEADER')));
                break;
              case 'RFC822.TEXT':
                add('RFC822.TEXT', literal(sectionBytes(raw, parsed, 'TEXT')));
                break;
              case 'SECTION': {
                let bytes: Buffer;
                try {
                  bytes = sectionBytes(raw, parsed, item.section ?? '');
                } catch (err) {
                  if (err instanceof SectionError) throw bad(`Invalid section ${String(item.section).slice(0, 40)}`);
                  throw err;
                }
                const { bytes: out, origin } = partialOf(bytes, item.partial);
                add(`BODY[${normalizeSection(item.section ?? '')}]${origin}`, literal(out));
                break;
              }
              case 'BINARY':
              case 'BINARY.SIZE': {
                const section = item.section ?? '';
                const part = section === '' ? parsed : partSection(parsed, section);
                if (!part) throw no(`No such part ${section.slice(0, 40)}`, 'NONEXISTENT');
                const decoded = decodedPart(raw, part);
                if (decoded === null) throw no('Unknown content transfer encoding', 'UNKNOWN-CTE');
                if (item.kind === 'BINARY.SIZE') add(`BINARY.SIZE[${section}]`, String(decoded.length));
                else {
                  const { bytes: out, origin } = partialOf(decoded, item.partial);
                  add(`BINARY[${section}]${origin}`, literal(out, { binary: out.includes(0) }));
                }
                break;
              }
              default:
                break;
            }
          }
        }
        session.send(joinWire([`* ${seq} FETCH (`, ...parts, ')\r\n']));
        await session.drain();
      }
      return ok('FETCH completed');
    },
  },
];

/** The section as echoed in the response: upper-case keywords, header names as given. */
function normalizeSection(section: string): string {
  return section.replace(/^([0-9.]*)(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?/i, (_m, nums: string, word?: string) => nums + (word ? word.toUpperCase() : ''));
}
