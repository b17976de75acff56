// "A 250 means fsynced and committed": clients deliver concurrently while the server is killed
// with SIGKILL at a random moment, several times over the same data directory. Every message a
// client saw a 250 for must be in each of its recipients' INBOX exactly once and complete; a
// message that did not get its 250 may or may not be there, but never twice, never partly (for
// some of its recipients only), never truncated; and every user's kept usage must equal the sum
// of what is stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, startYubin, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, usageOf } from '../helpers/mailbox.js';

const DOMAIN = 'example.test';
const USERS = Array.from({ length: 10 }, (_, i) => `user${i}@${DOMAIN}`);
const CLIENTS = 20;
const ROUNDS = 8;
const SENDER = 'sender@durability.test';

interface Sent {
  round: number;
  recipients: string[];
  /** SHA-256 and length of the exact bytes sent (the stored message must end with them). */
  sha256: string;
  length: number;
}

interface RoundState {
  round: number;
  /** Set just before SIGKILL: from then on, client errors are expected. */
  killing: boolean;
  /** Errors seen while the server was meant to be up: each is a failure. */
  unexpected: string[];
  acknowledged: number;
}

const attempted = new Map<string, Sent>();
/** token → recipients the 250 was for */
const acknowledged = new Map<string, string[]>();

function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

function pickRecipients(): string[] {
  const first = USERS[randomInt(0, USERS.length - 1)]!;
  if (Math.random() >= 0.25) return [first];
  let second = first;
  while (second === first) second = USERS[randomInt(0, USERS.length - 1)]!;
  return [first, second];
}

function endMarker(token: string): string {
  return `END-OF-MESSAGE ${token}\r\n`;
}

/** A message of about `size` bytes whose last line is the end marker; some lines start with a dot. */
function makeMessage(token: string, to: string[], size: number): Buffer {
  const head =
    [
      `From: <${SENDER}>`,
      `To: ${to.map((a) => `<${a}>`).join(', ')}`,
      `Subject: durability ${token}`,
      `Message-ID: <${token}@durability.test>`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      `BEGIN ${token}`,
    ].join('\r\n') + '\r\n';
  const tail = endMarker(token);
  let remaining = Math.max(0, size - head.length - tail.length);
  const random = crypto.randomBytes(Math.ceil((remaining * 3) / 4) + 3).toString('base64');
  const lines: string[] = [];
  let offset = 0;
  while (remaining > 2) {
    const width = Math.min(76, remaining - 2);
    let line = random.slice(offset, offset + width);
    offset += width;
    if (lines.length % 9 === 4) line = '.' + line.slice(1); // exercises dot-stuffing both ways
    lines.push(line);
    remaining -= width + 2;
  }
  return Buffer.from(head + lines.map((l) => l + '\r\n').join('') + tail, 'latin1');
}

function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Plain SMTP (no STARTTLS: the self-signed certificate is beside the point here). */
function connect(port: number): Promise<{ conn: SMTPConnection; err: Error | null }> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 15_000 });
  return new Promise((resolve) => {
    let done = false;
    const settle = (err: Error | null) => {
      if (done) return;
      done = true;
      resolve({ conn, err });
    };
    // nodemailer reports some failures while connecting only as 'error' or 'end' events.
    conn.on('error', (err) => settle(err));
    conn.once('end', () => settle(new Error('connection ended before the greeting')));
    conn.connect((err) => settle(err ?? null));
  });
}

function send(conn: SMTPConnection, to: string[], message: Buffer): Promise<{ err: Error | null; info?: SMTPConnection.SentMessageInfo }> {
  return new Promise((resolve) => {
    let done = false;
    const onEnd = () => finish(new Error('connection ended'));
    const finish = (err: Error | null, info?: SMTPConnection.SentMessageInfo) => {
      if (done) return;
      done = true;
      conn.off('end', onEnd);
      resolve({ err, info });
    };
    conn.once('end', onEnd);
    conn.send({ from: SENDER, to }, message, (err, info) => finish(err ?? null, info));
  });
}

/** One client: one connection, messages in a loop until the server goes away. */
async function client(port: number, state: RoundState, id: number): Promise<void> {
  const { conn, err } = await connect(port);
  if (err) {
    if (!state.killing) state.unexpected.push(`client ${id}: connect: ${err.message}`);
    conn.close();
    return;
  }
  for (let seq = 0; !state.killing; seq++) {
    const token = `r${state.round}c${id}m${seq}x${crypto.randomBytes(4).toString('hex')}`;
    const to = pickRecipients();
    const message = makeMessage(token, to, randomInt(1024, 50 * 1024));
    attempted.set(token, { round: state.round, recipients: to, sha256: sha256(message), length: message.length });
    const result = await send(conn, to, message);
    if (result.err || !result.info) {
      if (!state.killing) state.unexpected.push(`client ${id}: ${token}: ${result.err?.message ?? 'no result'}`);
      break;
    }
    // Only now, with the 250 to the end of data read, is the message acknowledged.
    assert.match(result.info.response, /^250 /);
    assert.deepEqual([...result.info.accepted].map((a) => a.toLowerCase()).sort(), [...to].sort(), `${token}: every recipient accepted`);
    acknowledged.set(token, to);
    state.acknowledged++;
  }
  conn.close();
}

interface StoredCopy {
  token: string;
  user: string;
  bytes: Buffer;
}

/** Reads every INBOX and checks everything the store must guarantee; returns totals. */
async function verify(dataDir: string, label: string): Promise<{ stored: number; storedUnacknowledged: number }> {
  const copies: StoredCopy[] = [];
  for (const user of USERS) {
    for (const mail of await readMailbox(dataDir, user)) {
      const match = /^Message-ID: <([^@>]+)@durability\.test>\r$/m.exec(mail.text);
      assert.ok(match, `${label}: a message in ${user}'s INBOX has no test Message-ID: ${mail.text.slice(0, 300)}`);
      copies.push({ token: match[1]!, user, bytes: mail.bytes });
      assert.equal(mail.size, mail.bytes.length, `${label}: ${match[1]} for ${user}: recorded size equals stored bytes`);
    }
  }

  // token → user → number of copies
  const where = new Map<string, Map<string, number>>();
  for (const copy of copies) {
    const users = where.get(copy.token) ?? new Map<string, number>();
    users.set(copy.user, (users.get(copy.user) ?? 0) + 1);
    where.set(copy.token, users);

    const sent = attempted.get(copy.token);
    assert.ok(sent, `${label}: ${copy.token} stored for ${copy.user} but never sent`);
    assert.ok(sent.recipients.includes(copy.user), `${label}: ${copy.token} stored for ${copy.user}, sent to ${sent.recipients.join(', ')}`);
    const text = copy.bytes.toString('latin1');
    assert.ok(text.endsWith(endMarker(copy.token)), `${label}: ${copy.token} for ${copy.user} is truncated (does not end with its end marker)`);
    assert.ok(copy.bytes.length >= sent.length, `${label}: ${copy.token} for ${copy.user} is shorter than what was sent`);
    assert.equal(
      sha256(copy.bytes.subarray(copy.bytes.length - sent.length)),
      sent.sha256,
      `${label}: ${copy.token} for ${copy.user}: the stored message does not end with the exact bytes sent`,
    );
    const header = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(header, new RegExp(`^Delivered-To: ${copy.user.replace(/\./g, '\\.')}\\r$`, 'm'), `${label}: ${copy.token}: Delivered-To ${copy.user}`);
  }

  for (const [token, users] of where) {
    for (const [user, count] of users) assert.equal(count, 1, `${label}: ${token} is stored ${count} times for ${user}`);
    // Delivery is all or nothing: a message is stored for all of its recipients or for none.
    const sent = attempted.get(token)!;
    assert.deepEqual([...users.keys()].sort(), [...sent.recipients].sort(), `${label}: ${token} stored for only some of its recipients`);
  }

  for (const [token, recipients] of acknowledged) {
    const users = where.get(token);
    for (const user of recipients) {
      assert.equal(users?.get(user) ?? 0, 1, `${label}: ${token} got a 250 but is stored ${users?.get(user) ?? 0} times for ${user}`);
    }
  }

  for (const user of USERS) {
    const usage = await usageOf(dataDir, user);
    assert.deepEqual(usage.kept, usage.summed, `${label}: ${user}: kept usage equals the sum of stored messages`);
    const stored = copies.filter((c) => c.user === user);
    assert.equal(usage.summed.messages, stored.length, `${label}: ${user}: every stored message is in INBOX`);
  }

  const storedUnacknowledged = [...where.keys()].filter((token) => !acknowledged.has(token)).length;
  return { stored: copies.length, storedUnacknowledged };
}

test('every message that got a 250 survives SIGKILL, exactly once and complete', { timeout: 120_000 }, async () => {
  const started = Date.now();
  const dataDir = makeDataDir('yubin-durability-');
  let running: RunningYubin | null = null;
  try {
    cliOk(dataDir, ['domain', 'add', DOMAIN]);
    for (const user of USERS) {
      cliOk(dataDir, ['user', 'add', user, '--password', 'durability-pass']);
      cliOk(dataDir, ['user', 'quota', user, 'none']);
    }

    for (let round = 1; round <= ROUNDS; round++) {
      running = await startYubin(dataDir);
      const server = running;
      const port = server.ports.smtp!;
      const state: RoundState = { round, killing: false, unexpected: [], acknowledged: 0 };
      const clients = Array.from({ length: CLIENTS }, (_, i) => client(port, state, i));
      const delay = randomInt(300, 1500);
      await new Promise((resolve) => setTimeout(resolve, delay));
      state.killing = true;
      await server.kill();
      assert.equal(server.proc.signalCode, 'SIGKILL', 'the server died of SIGKILL');
      await Promise.all(clients);
      running = null;

      assert.deepEqual(state.unexpected, [], `round ${round}: no client error while the server was up`);
      const totals = await verify(dataDir, `round ${round}`);
      console.log(
        `round ${round}: killed after ${delay} ms; acknowledged ${state.acknowledged} (total ${acknowledged.size} of ${attempted.size} sent); ` +
          `store now holds ${totals.stored} copies, ${totals.storedUnacknowledged} message(s) stored without a 250`,
      );
    }
    assert.ok(acknowledged.size > 0, 'some messages were acknowledged at all');

    // A normal start after the last crash: the store opens, left-over temporary files are swept,
    // and nothing acknowledged has gone; then a clean stop.
    const server = await startYubin(dataDir);
    running = server;
    // A full SMTP conversation first: serve installs its SIGTERM handler only in the tick that
    // prints "ready", so a SIGTERM sent at once could meet the default action (see report).
    const probe = await connect(server.ports.smtp!);
    assert.equal(probe.err, null, 'the restarted server accepts connections');
    probe.conn.quit();
    assert.deepEqual(fs.readdirSync(path.join(dataDir, 'blobs', 'tmp')), [], 'temporary blob files are swept at start');
    assert.equal(await server.stop(), 0, 'clean stop after the crashes');
    running = null;
    const totals = await verify(dataDir, 'after restart');
    console.log(
      `after restart: acknowledged ${acknowledged.size} of ${attempted.size} sent; stored ${totals.stored} copies ` +
        `(${totals.storedUnacknowledged} without a 250); ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } finally {
    await running?.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
