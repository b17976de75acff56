// Mailbox commands: LIST (RFC 9051 §6.3.9 with LIST-EXTENDED RFC 5258, SPECIAL-USE RFC 6154,
// LIST-STATUS RFC 5819), LSUB, NAMESPACE (RFC 2342), CREATE, DELETE, RENAME, SUBSCRIBE,
// UNSUBSCRIBE, STATUS (with SIZE, RFC 8438, and HIGHESTMODSEQ, RFC 7162).

import type { Mailbox } from '../../store/types.js';
import { StoreError } from '../../store/types.js';
import { ok, no, bad, type CommandSpec, type Session } from '../context.js';
import { tokenText } from '../protocol/parser.js';
import type { ImapToken } from '../protocol/types.js';
import { decodeName, mailboxNameIn, mailboxNameOut, SEPARATOR } from '../names.js';

const AUTHENTICATED = ['authenticated', 'selected'] as const;

function account(session: Session) {
  if (!session.user) throw no('Not logged in');
  return session.user.account;
}

function send(session: Session, parts: Array<string | Buffer>): void {
  session.send(Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p))));
}

/** RFC 9051 §6.3.9: "*" matches anything, "%" anything but the separator. */
export function listPatternToRegExp(reference: string, pattern: string): RegExp {
  const full = pattern.startsWith(SEPARATOR) || reference === '' ? pattern : reference.endsWith(SEPARATOR) ? reference + pattern : reference + SEPARATOR + pattern;
  let source = '';
  for (const ch of full) {
    if (ch === '*') source += '.*';
    else if (ch === '%') source += '[^/]*';
    else source += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  // INBOX matches case-insensitively (RFC 9051 §5.1).
  return new RegExp(`^${source}$`, /^inbox/i.test(full) ? 'i' : '');
}

async function statusItems(session: Session, mailbox: Mailbox, items: string[]): Promise<string> {
  const counts = await session.services.store.mailboxCounts(mailbox.id);
  const fresh = (await session.services.store.getMailboxById(mailbox.id)) ?? mailbox;
  const out: string[] = [];
  for (const item of items) {
    switch (item) {
      case 'MESSAGES':
        out.push(`MESSAGES ${counts.messages}`);
        break;
      case 'UIDNEXT':
        out.push(`UIDNEXT ${fresh.uidNext}`);
        break;
      case 'UIDVALIDITY':
        out.push(`UIDVALIDITY ${fresh.uidValidity}`);
        break;
      case 'UNSEEN':
        out.push(`UNSEEN ${counts.unseen}`);
        break;
      case 'RECENT':
        out.push('RECENT 0');
        break;
      case 'DELETED':
        out.push(`DELETED ${counts.deleted}`);
        break;
      case 'SIZE':
        out.push(`SIZE ${counts.size}`);
        break;
      case 'HIGHESTMODSEQ':
        out.push(`HIGHESTMODSEQ ${fresh.highestModSeq}`);
        break;
      default:
        throw bad(`Unknown STATUS item ${item.slice(0, 30)}`);
    }
  }
  return out.join(' ');
}

function listItems(token: ImapToken | undefined): string[] {
  if (!token) return [];
  if (token.type === 'list') return token.items.map((t) => tokenText(t).toUpperCase());
  return [tokenText(token).toUpperCase()];
}

async function list(session: Session, args: ImapToken[], lsub: boolean) {
  const owner = account(session);
  let index = 0;
  // LIST-EXTENDED selection options: LIST (SUBSCRIBED SPECIAL-USE RECURSIVEMATCH) ref pattern
  let selection: string[] = [];
  if (!lsub && args[0]?.type === 'list') selection = listItems(args[index++]);
  if (args.length < index + 2) throw bad('LIST needs a reference and a mailbox pattern');
  const reference = tokenText(args[index++]!);
  const patternToken = args[index++]!;
  const patterns = patternToken.type === 'list' ? patternToken.items.map(tokenText) : [tokenText(patternToken)];
  const returns: string[] = [];
  let statusWanted: string[] = [];
  const returnWord = args[index];
  if (!lsub && returnWord?.type === 'atom' && returnWord.value.toUpperCase() === 'RETURN') {
    const returnList = args[index + 1];
    if (!returnList || returnList.type !== 'list') throw bad('RETURN needs a list');
    for (let i = 0; i < returnList.items.length; i++) {
      const word = tokenText(returnList.items[i]!).toUpperCase();
      if (word === 'STATUS') {
        statusWanted = listItems(returnList.items[++i]);
      } else returns.push(word);
    }
  }
  const command = lsub ? 'LSUB' : 'LIST';
  // RFC 9051 §6.3.9: an empty pattern asks for the hierarchy delimiter.
  if (patterns.length === 1 && patterns[0] === '') {
    session.send(`* ${command} (\\Noselect) "${SEPARATOR}" ""\r\n`);
    return ok();
  }
  const subscribedOnly = lsub || selection.includes('SUBSCRIBED');
  const specialOnly = selection.includes('SPECIAL-USE');
  const showSubscribed = selection.includes('SUBSCRIBED') || returns.includes('SUBSCRIBED');
  const showSpecial = true; // RFC 6154 §2: special-use attributes may always be returned
  const mailboxes = await session.services.store.listMailboxes(owner.id);
  const names = new Set(mailboxes.map((m) => m.name));
  const regexps = patterns.map((p) => listPatternToRegExp(decodeName(session, reference), decodeName(session, p)));
  for (const mailbox of mailboxes) {
    if (!regexps.some((r) => r.test(mailbox.name))) continue;
    if (subscribedOnly && !mailbox.subscribed) continue;
    if (specialOnly && (!mailbox.specialUse || mailbox.specialUse === '\\Inbox')) continue;
    const attributes: string[] = [];
    const hasChildren = [...names].some((n) => n.startsWith(mailbox.name + SEPARATOR));
    if (!lsub) attributes.push(hasChildren ? '\\HasChildren' : '\\HasNoChildren');
    if (showSubscribed && mailbox.subscribed) attributes.push('\\Subscribed');
    if (showSpecial && mailbox.specialUse && mailbox.specialUse !== '\\Inbox') attributes.push(mailbox.specialUse);
    send(session, [`* ${command} (${attributes.join(' ')}) "${SEPARATOR}" `, mailboxNameOut(session, mailbox.name), '\r\n']);
    if (statusWanted.length > 0) {
      send(session, ['* STATUS ', mailboxNameOut(session, mailbox.name), ` (${await statusItems(session, mailbox, statusWanted)})\r\n`]);
    }
  }
  return ok();
}

export const mailboxCommands: CommandSpec[] = [
  {
    name: 'LIST',
    states: [...AUTHENTICATED],
    handle: ({ session, args }) => list(session, args, false),
  },
  {
    name: 'LSUB',
    states: [...AUTHENTICATED],
    handle: ({ session, args }) => list(session, args, true),
  },
  {
    name: 'NAMESPACE',
    states: [...AUTHENTICATED],
    async handle({ session }) {
      session.send(`* NAMESPACE (("" "${SEPARATOR}")) NIL NIL\r\n`);
      return ok();
    },
  },
  {
    name: 'CREATE',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length < 1) throw bad('CREATE needs a mailbox name');
      const owner = account(session);
      const name = mailboxNameIn(session, tokenText(args[0]!));
      if (name === 'INBOX') throw no('INBOX always exists', 'ALREADYEXISTS');
      const store = session.services.store;
      if (await store.getMailbox(owner.id, name)) throw no('Mailbox already exists', 'ALREADYEXISTS');
      const existing = await store.listMailboxes(owner.id);
      const parts = name.split(SEPARATOR);
      if (existing.length + parts.length > session.services.config().imap.max_mailboxes) {
        throw no(`An account may have at most ${session.services.config().imap.max_mailboxes} mailboxes`, 'LIMIT');
      }
      // RFC 9051 §6.3.4: superior hierarchy names are created as needed.
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join(SEPARATOR);
        if (!(await store.getMailbox(owner.id, parent))) await store.createMailbox(owner.id, parent);
      }
      await store.createMailbox(owner.id, name);
      return ok('CREATE completed');
    },
  },
  {
    name: 'DELETE',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 1) throw bad('DELETE needs a mailbox name');
      const owner = account(session);
      const name = mailboxNameIn(session, tokenText(args[0]!));
      const store = session.services.store;
      const mailbox = await store.getMailbox(owner.id, name);
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      if (name === 'INBOX') throw no('INBOX cannot be deleted', 'CANNOT');
      if (mailbox.specialUse && session.services.config().imap.protect_special_use) {
        throw no(`${name} is the ${mailbox.specialUse.slice(1)} mailbox and is protected (imap.protect_special_use)`, 'CANNOT');
      }
      const children = (await store.listMailboxes(owner.id)).filter((m) => m.name.startsWith(name + SEPARATOR));
      // RFC 9051 §6.3.5: a mailbox with inferiors is not removed (Yubin has no \Noselect placeholders).
      if (children.length > 0) throw no('Delete the mailboxes inside it first', 'HASCHILDREN');
      if (session.selected?.mailbox.id === mailbox.id) {
        session.selected = null;
        session.state = 'authenticated';
      }
      await store.deleteMailbox(owner.id, mailbox.id);
      return ok('DELETE completed');
    },
  },
  {
    name: 'RENAME',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 2) throw bad('RENAME needs two mailbox names');
      const owner = account(session);
      const from = mailboxNameIn(session, tokenText(args[0]!));
      const to = mailboxNameIn(session, tokenText(args[1]!));
      const store = session.services.store;
      const mailbox = await store.getMailbox(owner.id, from);
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      if (await store.getMailbox(owner.id, to)) throw no('Target mailbox exists', 'ALREADYEXISTS');
      if (from !== 'INBOX' && mailbox.specialUse && session.services.config().imap.protect_special_use) {
        throw no(`${from} is the ${mailbox.specialUse.slice(1)} mailbox and is protected (imap.protect_special_use)`, 'CANNOT');
      }
      if (to === from || to.startsWith(from + SEPARATOR)) throw no('Cannot rename a mailbox into itself', 'CANNOT');
      const parts = to.split(SEPARATOR);
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join(SEPARATOR);
        if (!(await store.getMailbox(owner.id, parent))) await store.createMailbox(owner.id, parent);
      }
      try {
        await store.renameMailbox(owner.id, mailbox.id, to);
      } catch (err) {
        if (err instanceof StoreError && err.code === 'exists') throw no('Target mailbox exists', 'ALREADYEXISTS');
        throw err;
      }
      return ok('RENAME completed');
    },
  },
  {
    name: 'SUBSCRIBE',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 1) throw bad('SUBSCRIBE needs a mailbox name');
      const mailbox = await session.services.store.getMailbox(account(session).id, mailboxNameIn(session, tokenText(args[0]!)));
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      await session.services.store.setSubscribed(mailbox.id, true);
      return ok('SUBSCRIBE completed');
    },
  },
  {
    name: 'UNSUBSCRIBE',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 1) throw bad('UNSUBSCRIBE needs a mailbox name');
      const mailbox = await session.services.store.getMailbox(account(session).id, mailboxNameIn(session, tokenText(args[0]!)));
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      await session.services.store.setSubscribed(mailbox.id, false);
      return ok('UNSUBSCRIBE completed');
    },
  },
  {
    name: 'STATUS',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 2 || args[1]!.type !== 'list') throw bad('STATUS needs a mailbox name and a list of items');
      const name = mailboxNameIn(session, tokenText(args[0]!));
      const mailbox = await session.services.store.getMailbox(account(session).id, name);
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      const items = listItems(args[1]);
      send(session, ['* STATUS ', mailboxNameOut(session, mailbox.name), ` (${await statusItems(session, mailbox, items)})\r\n`]);
      return ok('STATUS completed');
    },
  },
];
