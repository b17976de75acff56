// IMAP mixed workload (generalised from bench/imap-bench.ts): C clients for S seconds, client i
// on user i's INBOX, each looping over one session: LOGIN, SELECT, FETCH headers and FLAGS,
// FETCH full bodies, STORE \Seen, SEARCH UNSEEN, APPEND, UID STORE \Deleted on the appended
// message, EXPUNGE, LOGOUT. Every command is one op; every NO or BAD (none is expected) and
// every failed connection is an error.

import { ImapClient, existsOf, quoted, type ImapReply } from './clients.js';
import { percentile } from '../common.js';
import { PASSWORD, prng, variedMessage } from '../messages.js';

export interface MixedParams {
  host: string;
  port: number;
  users: string[];
  clients: number;
  seconds: number;
}

export interface MixedResult {
  clients: number;
  ops: number;
  loops: number;
  seconds: number;
  rate: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** p50 / p99 ms per command. */
  latency: Record<string, { count: number; p50: number; p99: number }>;
}

export async function imapMixed(p: MixedParams): Promise<MixedResult> {
  const errors = new Map<string, number>();
  const error = (text: string) => errors.set(text, (errors.get(text) ?? 0) + 1);
  const latencies = new Map<string, number[]>();
  let ops = 0;
  let loops = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(p.seconds) * 1_000_000_000n;
  const client = async (index: number) => {
    const user = p.users[index % p.users.length]!;
    const random = prng(1000 + index);
    const seq = (max: number) => 1 + Math.floor(random() * Math.max(1, max));
    let appended = 0;
    while (process.hrtime.bigint() < deadline) {
      let conn: ImapClient | null = null;
      try {
        conn = await ImapClient.connect(p.host, p.port);
        const c = conn;
        const op = async (kind: string, ...parts: Array<string | Buffer>): Promise<ImapReply | null> => {
          if (process.hrtime.bigint() >= deadline) return null;
          const reply = await c.command(...parts);
          ops++;
          let list = latencies.get(kind);
          if (!list) latencies.set(kind, (list = []));
          list.push(reply.ms);
          if (reply.status !== 'OK') error(`${kind}: ${reply.status} ${reply.text.slice(0, 120)}`);
          return reply;
        };
        if (!(await op('LOGIN', `LOGIN ${quoted(user)} ${quoted(PASSWORD)}`))) break;
        const select = await op('SELECT', 'SELECT INBOX');
        if (!select) break;
        const exists = existsOf(select);
        if (!(await op('FETCH headers+FLAGS', 'FETCH 1:20 (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date)])'))) break;
        const first = seq(exists - 4);
        if (!(await op('FETCH bodies', `FETCH ${first}:${first + 4} BODY.PEEK[]`))) break;
        if (!(await op('STORE \\Seen', `STORE ${seq(exists)},${seq(exists)},${seq(exists)} +FLAGS (\\Seen)`))) break;
        if (!(await op('SEARCH UNSEEN', 'SEARCH UNSEEN'))) break;
        const body = variedMessage(prng(0x5eed + index * 100_000 + ++appended), appended, user, 3 * 1024, 0).bytes;
        const append = await op('APPEND', 'APPEND INBOX ', body);
        if (!append) break;
        const uid = /\[APPENDUID \d+ (\d+)\]/i.exec(append.text)?.[1];
        if (uid) {
          if (!(await op('UID STORE \\Deleted', `UID STORE ${uid} +FLAGS (\\Deleted)`))) break;
        } else if (append.status === 'OK') error(`APPEND: no APPENDUID in "${append.text}"`);
        if (!(await op('EXPUNGE', 'EXPUNGE'))) break;
        if (!(await op('LOGOUT', 'LOGOUT'))) break;
        loops++;
      } catch (err) {
        error(`client error: ${(err as Error).message}`);
      } finally {
        conn?.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: p.clients }, (_, i) => client(i)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const latency: MixedResult['latency'] = {};
  for (const [kind, list] of latencies) {
    list.sort((a, b) => a - b);
    latency[kind] = { count: list.length, p50: percentile(list, 50), p99: percentile(list, 99) };
  }
  return {
    clients: p.clients,
    ops,
    loops,
    seconds,
    rate: ops / seconds,
    errors: [...errors.values()].reduce((a, b) => a + b, 0),
    errorKinds: Object.fromEntries(errors),
    latency,
  };
}
