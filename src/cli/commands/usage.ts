// yubin usage ADDRESS [--json] [--top N] [--now ISO-8601]
// yubin usage --over PERCENT [--json]
// yubin usage --disk [--json]

import { buildUsageReport, listOverQuota } from '../../usage/collect.js';
import { formatDiskUsage, formatOverQuota, formatUsageReport } from '../../usage/format.js';
import { SizeError } from '../../config/size.js';
import { OptionError, parseCount, parseInstant, parsePercent } from '../../usage/options.js';
import { CliError, UsageError, loadContext, normalizeMailAddress, parse, printJson, withStore } from '../context.js';

export const USAGE_HELP = `yubin usage ADDRESS [--json] [--top N] [--now ISO-8601]
                                      (storage report of one user: usage and quota, mailboxes, age of
                                       the mail (as of --now), attachments, the N (20) largest messages
                                       and top senders (bulk mail marked), POP3-retrieved mail still on
                                       the server, removals by retention and cleanup)
yubin usage --over PERCENT [--json]   (users above PERCENT (e.g. 80%) of their byte or message quota,
                                       highest first; users without a quota are never listed)
yubin usage --disk [--json]           (what all stored mail takes on disk against its logical size:
                                       bytes saved by storing identical messages and attachments once)`;

const USAGE_LINE = 'usage: yubin usage ADDRESS [--json] [--top N] [--now ISO-8601] | yubin usage --over PERCENT [--json] | yubin usage --disk [--json]';

/** Runs an option parser; a malformed value (OptionError, SizeError) becomes a usage error (exit 2). */
export function option<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof OptionError || err instanceof SizeError) throw new UsageError(err.message);
    throw err;
  }
}

export async function usageCommand(args: string[]): Promise<void> {
  if (args[0] === 'help' || args.includes('--help') || args.includes('-h')) {
    console.log(USAGE_HELP);
    return;
  }
  const { values, positionals } = parse(args, {
    json: { type: 'boolean' },
    over: { type: 'string' },
    disk: { type: 'boolean' },
    top: { type: 'string' },
    now: { type: 'string' },
  });
  const loaded = () => loadContext(values);

  if (values.disk) {
    if (positionals.length > 0 || values.over !== undefined || values.top !== undefined || values.now !== undefined) {
      throw new UsageError('--disk reports the whole store; it takes no ADDRESS, --over, --top or --now. ' + USAGE_LINE);
    }
    const disk = await withStore(loaded(), (store) => store.diskUsage());
    if (values.json) return printJson(disk);
    console.log(formatDiskUsage(disk));
    return;
  }

  if (values.over !== undefined) {
    if (positionals.length > 0 || values.top !== undefined || values.now !== undefined) {
      throw new UsageError('--over lists users; it takes no ADDRESS, --top or --now. ' + USAGE_LINE);
    }
    const threshold = option(() => parsePercent(values.over!));
    const context = loaded();
    const report = await withStore(context, (store) => listOverQuota(store, context.config, threshold));
    if (values.json) return printJson(report);
    console.log(formatOverQuota(report));
    return;
  }

  if (positionals.length !== 1) throw new UsageError(USAGE_LINE);
  const address = normalizeMailAddress(positionals[0]!);
  const top = values.top === undefined ? 20 : option(() => parseCount(values.top!, '--top'));
  const now = values.now === undefined ? new Date() : option(() => parseInstant(values.now!));
  const context = loaded();
  const report = await withStore(context, async (store) => {
    const account = await store.getAccount(address);
    if (!account) throw new CliError(`no user ${address}`);
    return buildUsageReport(store, context.config, account, { now, top });
  });
  if (values.json) return printJson(report);
  console.log(formatUsageReport(report));
}
