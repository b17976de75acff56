// POP3 download (after bench/pop3-bench.ts): C concurrent clients, client i on user i's
// maildrop: USER/PASS, STAT, LIST, then (once all have logged in) RETR of every message one at
// a time, QUIT without DELE. Counted by messages retrieved whose octets match what LIST announced.

import { Pop3Client } from './clients.js';
import { PASSWORD } from '../messages.js';

export interface Pop3Params {
  host: string;
  port: number;
  users: string[];
  clients: number;
  /** Messages expected in each maildrop. */
  messages: number;
}

export interface Pop3Result {
  clients: number;
  retrieved: number;
  octets: number;
  seconds: number;
  /** From the first connection until every client had logged in, STAT and LIST done. */
  loginSeconds: number;
  rate: number;
  /** Messages per second after the logins. */
  downloadRate: number;
  mibPerSecond: number;
  errors: string[];
}

interface LoggedIn {
  client: Pop3Client;
  address: string;
  count: number;
  sizes: Map<number, number>;
}

/** Phase 1: USER/PASS, STAT and LIST. */
async function logIn(host: string, port: number, address: string, expected: number, errors: string[]): Promise<LoggedIn> {
  const client = await Pop3Client.connect(host, port);
  try {
    await client.reply();
    await client.command(`USER ${address}`);
    await client.command(`PASS ${PASSWORD}`);
    const stat = /^\+OK (\d+) (\d+)/.exec(await client.command('STAT'));
    if (!stat) throw new Error(`${address}: bad STAT reply`);
    const count = Number(stat[1]);
    if (count !== expected) errors.push(`${address}: STAT says ${count} messages, expected ${expected}`);
    const list = await client.multi('LIST', true);
    const sizes = new Map<number, number>();
    for (const line of list.lines) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (!m) throw new Error(`${address}: bad LIST line "${line}"`);
      sizes.set(Number(m[1]), Number(m[2]));
    }
    return { client, address, count, sizes };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/** Phase 2: RETR of every message, one at a time, then QUIT. */
async function download({ client, address, count, sizes }: LoggedIn, errors: string[]): Promise<{ retrieved: number; octets: number }> {
  try {
    let octets = 0;
    let retrieved = 0;
    for (let n = 1; n <= count; n++) {
      const { octets: got } = await client.multi(`RETR ${n}`);
      const want = sizes.get(n);
      if (got !== want) {
        if (errors.length < 20) errors.push(`${address}: RETR ${n} sent ${got} octets, LIST said ${want}`);
      } else retrieved++;
      octets += got;
    }
    await client.command('QUIT');
    client.end();
    return { retrieved, octets };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/**
 * All clients log in (and STAT, LIST) at once; when every login has finished, all download at
 * once. `rate` counts from the first connection to the last QUIT (the workload's figure);
 * `downloadRate` from the last login to the last QUIT, which leaves out the password hashing.
 */
export async function pop3Download(p: Pop3Params): Promise<Pop3Result> {
  const errors: string[] = [];
  const started = process.hrtime.bigint();
  const logins = await Promise.allSettled(Array.from({ length: p.clients }, (_, i) => logIn(p.host, p.port, p.users[i]!, p.messages, errors)));
  const loggedIn = process.hrtime.bigint();
  const sessions: LoggedIn[] = [];
  logins.forEach((r, i) => {
    if (r.status === 'fulfilled') sessions.push(r.value);
    else errors.push(`${p.users[i]}: ${(r.reason as Error).message}`);
  });
  const settled = await Promise.allSettled(sessions.map((s) => download(s, errors)));
  const ended = process.hrtime.bigint();
  const seconds = Number(ended - started) / 1e9;
  const loginSeconds = Number(loggedIn - started) / 1e9;
  let retrieved = 0;
  let octets = 0;
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      retrieved += r.value.retrieved;
      octets += r.value.octets;
    } else errors.push(`${sessions[i]!.address}: ${(r.reason as Error).message}`);
  });
  return {
    clients: p.clients,
    retrieved,
    octets,
    seconds,
    loginSeconds,
    rate: retrieved / seconds,
    downloadRate: retrieved / (seconds - loginSeconds),
    mibPerSecond: octets / 1024 / 1024 / seconds,
    errors,
  };
}
