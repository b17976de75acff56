// Memory of idle IMAP connections: K connections each LOGIN and SELECT INBOX, then stay idle
// (no command). Connection i is user i mod U's, from source address 127.0.0.(101 + (i / U) mod 10),
// so that no user has more than a few connections from one address (Dovecot's default
// mail_max_userip_connections is 10) and source ports never run short. The server's memory is
// measured (by the caller's `measure`) after a warm-up of U connections that came and went, and
// again once all K are open; the difference divided by K is the figure.

import { ImapClient, expectOk, quoted } from './clients.js';
import { forEachLimited, sleep } from '../common.js';
import { PASSWORD } from '../messages.js';

export interface MemoryReading {
  rssKiB: number;
  pssKiB: number;
  processes: number;
}

export interface MemoryParams {
  host: string;
  port: number;
  users: string[];
  connections: number;
  measure: () => MemoryReading;
  /** Resolves once the server has settled after connections closed (e.g. processes exited). */
  settled: () => Promise<void>;
}

export interface MemoryResult {
  asked: number;
  opened: number;
  stillOpen: number;
  openSeconds: number;
  before: MemoryReading;
  /** After half of the connections were open. */
  half: MemoryReading;
  after: MemoryReading;
  /** (after − half) RSS / the second half's connections, KiB: the marginal cost, free of warm-up effects. */
  rssMarginalKiB: number;
  /** (after − before) RSS / opened, KiB: the figure. */
  rssPerConnectionKiB: number;
  pssPerConnectionKiB: number;
  errors: string[];
}

const CONCURRENCY = 32;

const sourceAddress = (i: number, users: number) => `127.0.0.${101 + (Math.floor(i / users) % 10)}`;

async function openIdle(p: MemoryParams, i: number): Promise<ImapClient> {
  const user = p.users[i % p.users.length]!;
  const client = await ImapClient.connect(p.host, p.port, sourceAddress(i, p.users.length), 120_000);
  try {
    expectOk(await client.command(`LOGIN ${quoted(user)} ${quoted(PASSWORD)}`), 'LOGIN');
    expectOk(await client.command('SELECT INBOX'), 'SELECT');
    return client;
  } catch (err) {
    client.destroy();
    throw err;
  }
}

export async function idleMemory(p: MemoryParams): Promise<MemoryResult> {
  const errors = new Map<string, number>();
  // Warm-up: every user once (at least 4 × the concurrency of the real run, so that the server's
  // allocators have seen that many logins at once), then gone.
  const warm: ImapClient[] = [];
  await forEachLimited(Math.max(p.users.length, 128), CONCURRENCY, async (i) => {
    try {
      warm.push(await openIdle(p, i));
    } catch (err) {
      const text = `warm-up: ${(err as Error).message}`;
      errors.set(text, (errors.get(text) ?? 0) + 1);
    }
  });
  for (const c of warm) {
    await c.command('LOGOUT').catch(() => undefined);
    c.destroy();
  }
  await p.settled();
  await sleep(2000);
  const before = p.measure();

  const clients: ImapClient[] = [];
  const started = process.hrtime.bigint();
  const halfCount = Math.floor(p.connections / 2);
  const open = (from: number, to: number) =>
    forEachLimited(to - from, CONCURRENCY, async (k) => {
      try {
        clients.push(await openIdle(p, from + k));
      } catch (err) {
        const text = (err as Error).message;
        errors.set(text, (errors.get(text) ?? 0) + 1);
      }
    });
  await open(0, halfCount);
  const openedHalf = clients.length;
  await sleep(3000);
  const half = p.measure();
  await open(halfCount, p.connections);
  const openSeconds = Number(process.hrtime.bigint() - started) / 1e9 - 3;
  await sleep(5000);
  const after = p.measure();
  const stillOpen = clients.filter((c) => !c.closed).length;
  for (const c of clients) c.destroy();
  await p.settled();
  const opened = clients.length;
  const list = [...errors].map(([text, n]) => `${n}× ${text}`);
  if (stillOpen < opened) list.push(`${opened - stillOpen} of ${opened} connections were closed by the server before the measurement`);
  return {
    asked: p.connections,
    opened,
    stillOpen,
    openSeconds,
    before,
    half,
    after,
    rssMarginalKiB: opened > openedHalf ? (after.rssKiB - half.rssKiB) / (opened - openedHalf) : NaN,
    rssPerConnectionKiB: opened > 0 ? (after.rssKiB - before.rssKiB) / opened : NaN,
    pssPerConnectionKiB: opened > 0 ? (after.pssKiB - before.pssKiB) / opened : NaN,
    errors: list,
  };
}
