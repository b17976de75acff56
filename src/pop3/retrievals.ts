// The first retrieval of each message (RFC 1939 RETR), which pop3.keep_after_retrieval counts
// from. Clients downloading maildrops RETR thousands of messages a second across all sessions:
// the ids are written together, for every session of this process, in one transaction at most
// every FLUSH_DELAY_MS or every FLUSH_BATCH ids, and whenever a session ends. A crash loses at
// most that last second of records; the messages are then kept longer, never removed early.

import type { Logger } from 'pino';
import type { Store } from '../store/types.js';

const FLUSH_BATCH = 4096;
const FLUSH_DELAY_MS = 1000;

export class RetrievalRecorder {
  private pending: number[] = [];
  /** When the first pending retrieval happened (the time recorded for the batch). */
  private pendingSince = 0;
  private timer: NodeJS.Timeout | null = null;
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly limits: { batch: number; delayMs: number } = { batch: FLUSH_BATCH, delayMs: FLUSH_DELAY_MS },
  ) {}

  /** Notes the retrieval of a message (by id); written within the delay. */
  record(messageId: number): void {
    if (this.pending.length === 0) this.pendingSince = Date.now();
    this.pending.push(messageId);
    if (this.pending.length >= this.limits.batch) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.limits.delayMs);
      this.timer.unref();
    }
  }

  /** Writes what is pending; settles when it and every earlier write are committed (never rejects). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length > 0) {
      const batch = this.pending;
      const at = new Date(this.pendingSince);
      this.pending = [];
      // The store's writer runs writes in order; chained, so that flush() covers every earlier one.
      const write = this.store.markRetrieved(batch, at).catch((err: unknown) => {
        this.log.error({ protocol: 'pop3', messages: batch.length, err: (err as Error)?.message ?? String(err) }, 'pop3 could not record retrievals');
      });
      this.writes = this.writes.then(() => write);
    }
    return this.writes;
  }
}
