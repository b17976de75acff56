// QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA. Each account has one quota root, "",
// covering all its mailboxes, with the resources STORAGE (units of 1024 octets) and MESSAGE.
// Limits come from the effective policy (config file, domain, user: `yubin user set ... quota`);
// SETQUOTA is refused, admins set quotas with the CLI.
//
// Also the account's quota limit as COPY and APPEND enforce it.

import type { Account, QuotaLimit } from '../../store/types.js';
import { currentPolicy, quotaLimitOf } from '../../policy/settings.js';
import { ok, no, bad, type CommandSpec, type Session } from '../context.js';
import { tokenText } from '../protocol/parser.js';
import { mailboxNameIn, mailboxNameOut } from '../names.js';

const AUTHENTICATED = ['authenticated', 'selected'] as const;
/** The one quota root of every account. */
const ROOT = '';

function account(session: Session): Account {
  if (!session.user) throw no('Not logged in');
  return session.user.account;
}

/**
 * The account's quota limits as they are now: settings are read fresh from the store, so that a
 * CLI change applies to the next command without a new login (as for delivery).
 */
export async function accountQuota(session: Session): Promise<QuotaLimit> {
  return quotaLimitOf(await currentPolicy(session.services.store, session.services.config(), account(session)));
}

/** The QUOTA response's resource list, or null when the account has no limit at all. */
export async function quotaResources(session: Session): Promise<string | null> {
  const limit = await accountQuota(session);
  const usage = await session.services.store.getUsage(account(session).id);
  const resources: string[] = [];
  // RFC 9208 §5.1: STORAGE in units of 1024 octets; rounded up, so that usage never shows as
  // less than it is and a full account shows as full.
  if (limit.bytes !== null) resources.push(`STORAGE ${Math.ceil(usage.bytes / 1024)} ${Math.ceil(limit.bytes / 1024)}`);
  if (limit.messages !== null) resources.push(`MESSAGE ${usage.messages} ${limit.messages}`);
  // quota-list needs at least one resource (RFC 9208 §9): no limit means no quota root.
  return resources.length > 0 ? `(${resources.join(' ')})` : null;
}

/**
 * RFC 9208 §4.3: the server may send an untagged QUOTA response when usage changes; Yubin does,
 * once per change of the figures, so a client shows a filling mailbox before mail bounces.
 */
export async function announceQuotaChange(session: Session, last: string | null): Promise<string | null> {
  const resources = await quotaResources(session);
  if (resources !== null && resources !== last) session.send(`* QUOTA "${ROOT}" ${resources}\r\n`);
  return resources;
}

export const quotaCommands: CommandSpec[] = [
  {
    name: 'GETQUOTAROOT',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 1) throw bad('GETQUOTAROOT needs a mailbox name');
      const name = mailboxNameIn(session, tokenText(args[0]!));
      const mailbox = await session.services.store.getMailbox(account(session).id, name);
      if (!mailbox) throw no('No such mailbox', 'NONEXISTENT');
      const resources = await quotaResources(session);
      const out = mailboxNameOut(session, mailbox.name);
      const roots = resources === null ? '' : ` "${ROOT}"`;
      session.send(Buffer.concat([Buffer.from('* QUOTAROOT '), typeof out === 'string' ? Buffer.from(out, 'utf8') : out, Buffer.from(`${roots}\r\n`)]));
      if (resources !== null) session.send(`* QUOTA "${ROOT}" ${resources}\r\n`);
      return ok('GETQUOTAROOT completed');
    },
  },
  {
    name: 'GETQUOTA',
    states: [...AUTHENTICATED],
    async handle({ session, args }) {
      if (args.length !== 1) throw bad('GETQUOTA needs a quota root');
      const root = tokenText(args[0]!);
      const resources = root === ROOT ? await quotaResources(session) : null;
      if (resources === null) throw no('No such quota root', 'NONEXISTENT');
      session.send(`* QUOTA "${ROOT}" ${resources}\r\n`);
      return ok('GETQUOTA completed');
    },
  },
  {
    name: 'SETQUOTA',
    states: [...AUTHENTICATED],
    async handle({ args }) {
      if (args.length !== 2 || args[1]!.type !== 'list') throw bad('SETQUOTA needs a quota root and a list of limits');
      throw no('Quotas are set by the administrator (yubin user quota ADDRESS SIZE)', 'NOPERM');
    },
  },
];
