// SMTP in: C concurrent connections deliver M messages of a given size to the local users
// (round-robin), each connection reused for many messages. Counted by what is stored: the clock
// runs from the first message sent until the store (or the maildirs) holds all M messages.

import { SmtpClient } from './clients.js';
import { hrMs, percentile, sleep } from '../common.js';
import { fixedSizeFactory, SENDER } from '../messages.js';

export interface SmtpParams {
  host: string;
  port: number;
  users: string[];
  messages: number;
  size: number;
  connections: number;
  /** Messages stored so far (rows in Yubin's store; files in the maildirs). */
  stored: () => number;
  /** How long to wait for the last messages to be stored after the last 250. */
  drainTimeoutMs: number;
}

export interface SmtpResult {
  messages: number;
  size: number;
  accepted: number;
  failed: number;
  stored: number;
  /** First message sent → all stored. */
  seconds: number;
  /** Stored messages per second (the figure). */
  rate: number;
  /** First message sent → last 250. */
  acceptSeconds: number;
  acceptRate: number;
  p50ms: number;
  p99ms: number;
  errors: string[];
}

export async function smtpIn(p: SmtpParams): Promise<SmtpResult> {
  const make = fixedSizeFactory(p.size);
  const storedBefore = p.stored();
  const clients = await Promise.all(Array.from({ length: p.connections }, () => SmtpClient.connect(p.host, p.port)));
  const latencies: number[] = [];
  const errors: string[] = [];
  let next = 0;
  let failed = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (first) => {
      let client: SmtpClient | null = first;
      while (next < p.messages) {
        const index = next++;
        const to = p.users[index % p.users.length]!;
        const message = make(index, to);
        try {
          client ??= await SmtpClient.connect(p.host, p.port);
          const t0 = process.hrtime.bigint();
          await client.send(SENDER, to, message);
          latencies.push(hrMs(t0));
        } catch (err) {
          failed++;
          if (errors.length < 20) errors.push(`message ${index}: ${(err as Error).message}`);
          client?.destroy();
          client = null;
        }
      }
      await client?.quit();
    }),
  );
  const acceptMs = hrMs(started);
  const expected = latencies.length;
  // Until everything accepted is stored; give up when nothing moved for drainTimeoutMs.
  let stored = p.stored() - storedBefore;
  let lastChange = Date.now();
  let last = stored;
  while (stored < expected) {
    await sleep(20);
    stored = p.stored() - storedBefore;
    if (stored !== last) {
      last = stored;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > p.drainTimeoutMs) {
      errors.push(`only ${stored} of ${expected} accepted messages were stored (nothing more for ${p.drainTimeoutMs / 1000} s)`);
      break;
    }
  }
  const totalMs = hrMs(started);
  latencies.sort((a, b) => a - b);
  if (failed > 0) errors.unshift(`${failed} of ${p.messages} messages failed`);
  return {
    messages: p.messages,
    size: p.size,
    accepted: expected,
    failed,
    stored,
    seconds: totalMs / 1000,
    rate: stored / (totalMs / 1000),
    acceptSeconds: acceptMs / 1000,
    acceptRate: expected / (acceptMs / 1000),
    p50ms: percentile(latencies, 50),
    p99ms: percentile(latencies, 99),
    errors,
  };
}
