// yubin maintenance run [--now ISO-8601] [--dry-run] [--json]

import { formatSize } from '../../config/size.js';
import { runAllJobs } from '../../maintenance/jobs.js';
import { UsageError, loadContext, parse, printJson, withStore } from '../context.js';

export const MAINTENANCE_HELP = `yubin maintenance run [--now ISO-8601] [--dry-run] [--json]
                                      (runs every scheduled job once, as of --now (default: now);
                                       --dry-run prints what it would do and changes nothing)`;

export async function maintenanceCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(MAINTENANCE_HELP);
    return;
  }
  if (sub !== 'run') {
    throw new UsageError(sub === undefined ? 'missing subcommand; see yubin maintenance --help' : `unknown subcommand "maintenance ${sub}"; see yubin maintenance --help`);
  }
  const { values, positionals } = parse(rest, { now: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError('usage: yubin maintenance run [--now ISO-8601] [--dry-run] [--json]');
  let now = new Date();
  if (values.now !== undefined) {
    // An ISO-8601 date or date-time (with a zone, or UTC when none is given).
    if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(values.now) || Number.isNaN(Date.parse(values.now))) {
      throw new UsageError(`--now expects an ISO-8601 date or time, e.g. 2030-01-31T12:00:00Z; got "${values.now}"`);
    }
    now = new Date(/T.*(Z|[+-]\d{2}:?\d{2})$/.test(values.now) || !values.now.includes('T') ? values.now : `${values.now}Z`);
  }
  const dryRun = values['dry-run'] === true;
  const loaded = loadContext(values);
  const report = await withStore(loaded, (store) => runAllJobs(store, loaded.config, { now, dryRun }));
  if (values.json) return printJson(report);
  const verb = dryRun ? 'would remove' : 'removed';
  console.log(`maintenance ${dryRun ? 'dry run' : 'run'} as of ${report.now}`);
  for (const r of report.retention.removed) {
    console.log(`${verb} ${r.account} ${r.mailbox} uid ${r.uid} (${r.size} bytes): ${r.reason}: ${r.why}`);
  }
  const n = report.retention.removed.length;
  console.log(
    `retention: ${verb} ${n} message${n === 1 ? '' : 's'}, ${report.retention.bytesFreed} bytes (${formatSize(report.retention.bytesFreed)}) ${dryRun ? 'would be ' : ''}freed${dryRun ? '; nothing changed' : ''}`,
  );
}
