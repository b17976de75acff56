// The composition root: builds the store and the services from the configuration, starts the
// listeners, and stops them in order. No protocol logic lives here.

import path from 'node:path';
import type { Config } from './config/schema.js';
import { createLogger, type Logger } from './log.js';
import { SqliteStore } from './store/sqlite/sqlite-store.js';
import type { Store } from './store/types.js';
import { loadTlsMaterial } from './tls/certificates.js';
import { InboundSmtpServer } from './smtp/inbound.js';
import { ImapServer } from './imap/server.js';
import { AuthThrottle } from './auth/throttle.js';
import { MailboxViews } from './imap/mailbox-views.js';
import { Pop3Server } from './pop3/server.js';
import { MaildropLocks } from './pop3/locks.js';
import { RetrievalRecorder } from './pop3/retrievals.js';
import { startScheduler } from './maintenance/jobs.js';
import { DnsResolver } from './dns/resolver.js';
import { OutboundQueue } from './queue/outbound-queue.js';

export const LISTENER_NAMES = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'http'] as const;
export type ListenerName = (typeof LISTENER_NAMES)[number];
/** Listeners this version implements; the others are refused with a clear message. */
export const AVAILABLE_LISTENERS: ReadonlySet<ListenerName> = new Set(['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s']);

export interface ListeningOn {
  name: ListenerName;
  host: string;
  port: number;
}

export interface RunningServer {
  store: Store;
  queue: OutboundQueue;
  listening: ListeningOn[];
  log: Logger;
  stop(): Promise<void>;
}

export function parseHostPort(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  if (!match) throw new Error(`expected HOST:PORT, got "${value}"`);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`port out of range in "${value}"`);
  return { host: match[1] ?? match[2]!, port };
}

export async function startServer(config: Config, dataDir: string): Promise<RunningServer> {
  const log = createLogger(config.log.level);
  const wanted = LISTENER_NAMES.filter((name) => config.listeners[name] !== '');
  for (const name of wanted) {
    if (!AVAILABLE_LISTENERS.has(name)) throw new Error(`the ${name} listener is not available in this version of Yubin`);
  }
  const store = SqliteStore.open({
    directory: config.storage.path ? path.resolve(config.storage.path) : dataDir,
    fsync: config.storage.fsync,
    writer: 'batching',
    maxBatch: config.storage.max_batch,
    inlineMax: config.storage.inline_max,
    dedupMin: config.storage.dedup_min,
  });
  store.blobs.sweepTemporaryFiles();
  const tls = await loadTlsMaterial({ certFile: config.tls.cert, keyFile: config.tls.key, dataDir, hostname: config.hostname });

  const throttle = new AuthThrottle(() => ({ failureDelaySeconds: config.auth.failure_delay, windowSeconds: config.auth.failure_window, verifiedCacheSeconds: config.auth.verified_cache }));
  const services = { config: () => config, store, throttle, log };
  // One set of shared mailbox snapshots for the IMAP listeners (imap and imaps).
  const mailboxViews = new MailboxViews(() => ({ minMessages: config.imap.snapshot_min_messages, maxMessages: config.imap.snapshot_max_messages }));
  // One POP3 session per maildrop, across both POP3 listeners.
  const pop3Services = { ...services, locks: new MaildropLocks(), retrievals: new RetrievalRecorder(store, log) };
  const resolver = new DnsResolver({ servers: config.dns.servers, timeoutSeconds: config.dns.timeout, cacheSeconds: config.dns.cache });
  const queue = new OutboundQueue({ config: () => config, store, resolver, log });
  const listening: ListeningOn[] = [];
  const stoppers: Array<() => Promise<void>> = [];
  try {
    for (const name of wanted) {
      const { host, port } = parseHostPort(config.listeners[name]);
      if (name === 'smtp' || name === 'submission' || name === 'submissions') {
        const smtp = new InboundSmtpServer({
          config: () => config,
          store,
          tls,
          log,
          mode: name === 'smtp' ? 'mx' : 'submission',
          implicitTls: name === 'submissions',
          queue,
          resolver,
          throttle,
        });
        const address = await smtp.listen(host, port);
        stoppers.push(() => smtp.close());
        listening.push({ name, host: address.address, port: address.port });
      } else if (name === 'imap' || name === 'imaps') {
        const imap = new ImapServer({ ...services, views: mailboxViews }, tls, name === 'imaps');
        const address = await imap.listen(host, port);
        stoppers.push(() => imap.close());
        listening.push({ name, host: address.address, port: address.port });
      } else if (name === 'pop3' || name === 'pop3s') {
        const pop3 = new Pop3Server(pop3Services, tls, name === 'pop3s');
        const address = await pop3.listen(host, port);
        stoppers.push(() => pop3.close().then(() => pop3Services.retrievals.flush()));
        listening.push({ name, host: address.address, port: address.port });
      }
    }
    await queue.start();
  } catch (err) {
    await Promise.allSettled(stoppers.map((stop) => stop()));
    await queue.stop();
    await store.close();
    throw err;
  }
  // Scheduled jobs (retention), every maintenance.interval.
  const scheduler = startScheduler(store, () => config, log);
  log.info({ event: 'started', listening, dataDir, selfSignedTls: tls.selfSigned }, 'yubin started');

  let stopping: Promise<void> | null = null;
  return {
    store,
    queue,
    listening,
    log,
    stop() {
      stopping ??= (async () => {
        await Promise.allSettled(stoppers.map((stop) => stop()));
        await queue.stop();
        await scheduler.stop();
        await store.close();
        log.info({ event: 'stopped' }, 'yubin stopped');
        log.flush();
      })();
      return stopping;
    },
  };
}
