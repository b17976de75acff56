// The scheduled jobs: run once by `yubin maintenance run`, and on a schedule by the server
// (maintenance.interval). Every job takes "now" as an argument, so a run can be made as of any time.

import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Store } from '../store/types.js';
import { runRetention, type RetentionReport } from './retention.js';
import { CapacityNotices } from '../notices/capacity.js';
import { createLogger } from '../log.js';

export interface JobsReport {
  now: string;
  dryRun: boolean;
  retention: RetentionReport;
  /** Missed-mail digests sent (none in a dry run). */
  digests: number;
}

export async function runAllJobs(store: Store, config: Config, options: { now: Date; dryRun: boolean; log?: Logger }): Promise<JobsReport> {
  const retention = await runRetention(store, config, options);
  let digests = 0;
  if (!options.dryRun) {
    // Digests still owed to users whose full mailbox turned mail away; warnings re-armed after cleanups.
    const notices = new CapacityNotices(store, () => config, options.log ?? createLogger('silent'));
    digests = (await notices.runAll(options.now)).digests;
  }
  return { now: options.now.toISOString(), dryRun: options.dryRun, retention, digests };
}

export interface Scheduler {
  /** Stops the schedule and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs every job each `maintenance.interval` seconds (0: never), the first time one interval
 * after start; runs never overlap. A failing run is logged and the next one tried as planned.
 */
export function startScheduler(store: Store, config: () => Config, log: Logger): Scheduler {
  const seconds = config().maintenance.interval;
  let running: Promise<void> | null = null;
  let stopped = false;
  const tick = () => {
    if (running || stopped) return;
    running = (async () => {
      try {
        const report = await runAllJobs(store, config(), { now: new Date(), dryRun: false, log });
        log.info(
          { event: 'maintenance', removed: report.retention.removed.length, bytesFreed: report.retention.bytesFreed },
          'scheduled maintenance done',
        );
      } catch (err) {
        log.error({ event: 'maintenance-failed', err: (err as Error)?.stack ?? String(err) }, 'scheduled maintenance failed');
      } finally {
        running = null;
      }
    })();
  };
  const timer = seconds > 0 ? setInterval(tick, seconds * 1000) : null;
  timer?.unref();
  return {
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
