// yubin cleanup ADDRESS [--mailbox NAME] [--older-than AGE] [--bulk] [--from ADDRESS|@DOMAIN]
//               [--larger-than SIZE] [--dry-run] [--json] [--now ISO-8601]

import { parseSize } from '../../config/size.js';
import { option } from './usage.js';
import type { CleanupSelector } from '../../usage/cleanup-select.js';
import { CleanupRefused, runCleanup } from '../../usage/collect.js';
import { formatCleanup } from '../../usage/format.js';
import { parseAge, parseInstant, parseSenderPattern } from '../../usage/options.js';
import { CliError, UsageError, loadContext, normalizeMailAddress, parse, printJson, withStore } from '../context.js';

export const CLEANUP_HELP = `yubin cleanup ADDRESS [--mailbox NAME] [--older-than AGE] [--bulk] [--from ADDRESS|@DOMAIN]
              [--larger-than SIZE] [--dry-run] [--json] [--now ISO-8601]
                                      (removes the user's messages that match every selector given:
                                       one mailbox, an internal date older than AGE (90d, 2w, 1y),
                                       bulk mail (List-Unsubscribe, List-Id, Precedence), a sender or
                                       sender domain, a size above SIZE; at least one is required.
                                       Prints each message and the bytes freed; --dry-run prints the
                                       same and changes nothing. IMAP sessions see the expunges)`;

const USAGE_LINE =
  'usage: yubin cleanup ADDRESS [--mailbox NAME] [--older-than AGE] [--bulk] [--from ADDRESS|@DOMAIN] [--larger-than SIZE] [--dry-run] [--json] [--now ISO-8601]';

export async function cleanupCommand(args: string[]): Promise<void> {
  if (args[0] === 'help' || args.includes('--help') || args.includes('-h')) {
    console.log(CLEANUP_HELP);
    return;
  }
  const { values, positionals } = parse(args, {
    mailbox: { type: 'string' },
    'older-than': { type: 'string' },
    bulk: { type: 'boolean' },
    from: { type: 'string' },
    'larger-than': { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
    now: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError(USAGE_LINE);
  const address = normalizeMailAddress(positionals[0]!);
  const selector: CleanupSelector = {
    mailbox: values.mailbox === undefined ? null : values.mailbox,
    olderThanSeconds: values['older-than'] === undefined ? null : option(() => parseAge(values['older-than']!)),
    bulk: values.bulk === true,
    from: values.from === undefined ? null : option(() => parseSenderPattern(values.from!)),
    largerThan: values['larger-than'] === undefined ? null : option(() => parseSize(values['larger-than']!)),
  };
  if (selector.mailbox !== null && selector.mailbox.trim() === '') throw new UsageError('--mailbox needs a mailbox name');
  if (selector.mailbox === null && selector.olderThanSeconds === null && !selector.bulk && selector.from === null && selector.largerThan === null) {
    throw new UsageError('give at least one of --mailbox, --older-than, --bulk, --from, --larger-than (cleanup never removes everything by default)');
  }
  const now = values.now === undefined ? new Date() : option(() => parseInstant(values.now!));
  const dryRun = values['dry-run'] === true;
  const context = loadContext(values);
  const report = await withStore(context, async (store) => {
    const account = await store.getAccount(address);
    if (!account) throw new CliError(`no user ${address}`);
    return runCleanup(store, context.config, account, { selector, now, dryRun });
  }).catch((err: unknown) => {
    if (err instanceof CleanupRefused) throw new CliError(err.message);
    throw err;
  });
  if (values.json) return printJson(report);
  console.log(formatCleanup(report));
}
