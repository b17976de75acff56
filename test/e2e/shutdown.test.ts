// SIGTERM: the server stops accepting, lets every message in DATA finish and get its 250,
// hangs up on the others with 421, and exits 0; what got a 250 is stored exactly once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, startYubin, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, usageOf } from '../helpers/mailbox.js';
import { RawSmtp } from '../helpers/smtp-raw.js';

const DOMAIN = 'example.test';
const SENDER = 'sender@shutdown.test';

function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** Resolves with the exit code and signal; registered before the signal is sent. */
function exitOf(server: RunningYubin): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
    return Promise.resolve({ code: server.proc.exitCode, signal: server.proc.signalCode });
  }
  return new Promise((resolve) => server.proc.once('exit', (code, signal) => resolve({ code, signal })));
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * One SMTP greeting and QUIT. yubin serve installs its signal handlers in the same tick as it
 * prints "ready", so once it has greeted a connection opened after "ready", SIGTERM is handled.
 */
async function greet(port: number): Promise<void> {
  const raw = await RawSmtp.connect(port);
  assert.equal((await raw.reply()).code, 220);
  assert.equal((await raw.command('QUIT')).code, 221);
  raw.close();
}

/** A ~2 MB message whose last line is an end marker. */
function bigMessage(token: string, to: string, size = 2 * 1024 * 1024): Buffer {
  const head = `From: <${SENDER}>\r\nTo: <${to}>\r\nSubject: shutdown ${token}\r\nMessage-ID: <${token}@shutdown.test>\r\n\r\n`;
  const tail = `END-OF-MESSAGE ${token}\r\n`;
  const lines: string[] = [];
  let length = head.length + tail.length;
  const random = crypto.randomBytes(size).toString('base64');
  for (let offset = 0; length < size; offset += 76) {
    const line = random.slice(offset, offset + 76);
    lines.push(line);
    length += line.length + 2;
  }
  return Buffer.from(head + lines.join('\r\n') + '\r\n' + tail, 'latin1');
}

/**
 * Hands the message to the client in chunks, one every `intervalMs`; after `holdAfter` chunks it
 * waits for `gate` before going on, so that the client is provably in the middle of DATA.
 */
class SlowBody extends Readable {
  private index = 0;
  /** Chunks handed over so far; the first read happens only after the server's 354. */
  delivered = 0;
  constructor(
    private readonly chunks: Buffer[],
    private readonly intervalMs: number,
    private readonly holdAfter: number,
    private readonly gate: Promise<void>,
  ) {
    super();
  }
  override _read(): void {
    const chunk = this.chunks[this.index++];
    if (!chunk) {
      this.push(null);
      return;
    }
    const ready = this.index > this.holdAfter ? this.gate : Promise.resolve();
    void ready.then(() =>
      setTimeout(() => {
        this.delivered++;
        this.push(chunk);
      }, this.intervalMs),
    );
  }
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

interface SlowSend {
  token: string;
  to: string;
  message: Buffer;
  body: SlowBody;
  result: Promise<{ err: (Error & { responseCode?: number }) | null; response?: string }>;
}

const CHUNK = 64 * 1024;
/** Chunks each client sends before it waits for the gate: about a quarter of its 2 MB. */
const HOLD_AFTER = 8;

function startSlowSend(port: number, token: string, to: string, gate: Promise<void>): SlowSend {
  const message = bigMessage(token, to);
  // 32 chunks of 64 KB, one every 20 ms, with a pause after the 8th until the gate opens.
  const body = new SlowBody(chunked(message, CHUNK), 20, HOLD_AFTER, gate);
  const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 30_000 });
  const result = new Promise<{ err: (Error & { responseCode?: number }) | null; response?: string }>((resolve) => {
    let done = false;
    const settle = (err: Error | null, response?: string) => {
      if (done) return;
      done = true;
      resolve({ err, response });
    };
    conn.on('error', (err) => settle(err));
    conn.once('end', () => settle(new Error('connection ended without a reply')));
    conn.connect((err) => {
      if (err) return settle(err);
      conn.send({ from: SENDER, to }, body, (err, info) => settle(err ?? null, info?.response));
    });
  });
  return { token, to, message, body, result };
}

test('SIGTERM during DATA: deliveries in progress finish with 250, others get 421, new connections are refused, exit 0', { timeout: 90_000 }, async () => {
  const dataDir = makeDataDir('yubin-shutdown-');
  const servers: RunningYubin[] = [];
  try {
    cliOk(dataDir, ['domain', 'add', DOMAIN]);
    const users = Array.from({ length: 5 }, (_, i) => `user${i}@${DOMAIN}`);
    for (const user of users) cliOk(dataDir, ['user', 'add', user, '--password', 'shutdown-pass']);

    const server = await startYubin(dataDir);
    servers.push(server);
    const port = server.ports.smtp!;
    const exited = exitOf(server);

    // Two clients mid-transaction but not in DATA: they must be told 421 and stored nothing.
    const envelopeOnly: RawSmtp[] = [];
    for (let i = 0; i < 2; i++) {
      const raw = await RawSmtp.connect(port);
      assert.equal((await raw.reply()).code, 220);
      assert.equal((await raw.command('EHLO envelope-only.test')).code, 250);
      assert.equal((await raw.command(`MAIL FROM:<${SENDER}>`)).code, 250);
      assert.equal((await raw.command(`RCPT TO:<${users[i]}>`)).code, 250);
      envelopeOnly.push(raw);
    }

    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const sends = Array.from({ length: 10 }, (_, i) =>
      startSlowSend(port, `shutdown${i}x${crypto.randomBytes(4).toString('hex')}`, users[i % users.length]!, gate),
    );
    // Every client is in DATA (its body is read only after the 354), has sent part of its message
    // and waits for the gate: SIGTERM comes in the middle of every message.
    await waitFor(() => sends.every((s) => s.body.delivered === HOLD_AFTER), 'every client to be in the middle of DATA', 30_000);

    const signalledAt = Date.now();
    server.proc.kill('SIGTERM');
    await waitFor(() => /^SIGTERM: stopping/m.test(server.stdout()), 'the server to acknowledge SIGTERM');

    // While it finishes the deliveries in progress, the server accepts no new connection.
    assert.equal(server.proc.exitCode, null, 'the server is still finishing deliveries');
    let late: RawSmtp | null = null;
    let refusal = 'accepted';
    try {
      late = await RawSmtp.connect(port);
    } catch (err) {
      refusal = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      assert.equal(refusal, 'ECONNREFUSED', `a connection after SIGTERM is refused: ${(err as Error).message}`);
    }
    if (late) {
      // Accepted at the TCP level (the listener was not closed yet): then the greeting is a 421.
      const greeting = await late.reply();
      refusal = `reply ${greeting.code}`;
      assert.equal(greeting.code, 421, `a connection after SIGTERM is refused: ${greeting.text}`);
      late.close();
    }
    assert.ok(sends.every((s) => s.body.delivered === HOLD_AFTER), 'the refusal was checked while every delivery was still in progress');

    for (const raw of envelopeOnly) {
      const hangUp = await raw.reply();
      assert.equal(hangUp.code, 421, `a client between RCPT and DATA is told 421: ${hangUp.text}`);
      assert.match(hangUp.text, /4\.3\.2/);
      assert.ok(await raw.waitClosed(5000), 'and the connection is closed');
    }

    // The server still waits for the rest of every message; now the clients send it.
    assert.equal(server.proc.exitCode, null, 'the server waits for the messages in DATA');
    openGate();
    const results = await Promise.all(sends.map((s) => s.result));
    results.forEach((r, i) => {
      assert.equal(r.err, null, `${sends[i]!.token}: a client in DATA at SIGTERM gets its reply: ${r.err?.message}`);
      assert.match(r.response ?? '', /^250 /, `${sends[i]!.token}: and it is 250`);
    });

    const exit = await exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `yubin exits 0 after SIGTERM; stderr: ${server.stderr().slice(-2000)}`);
    console.log(`SIGTERM → exit 0 in ${Date.now() - signalledAt} ms; new connection: ${refusal}; ${results.length} messages in DATA got 250`);

    // After a restart, every message that got a 250 is there exactly once and complete.
    const again = await startYubin(dataDir);
    servers.push(again);
    await greet(again.ports.smtp!);
    assert.equal(await again.stop(), 0, 'the restarted server stops cleanly');
    for (const [i, user] of users.entries()) {
      const expected = sends.filter((s) => s.to === user);
      const inbox = await readMailbox(dataDir, user);
      assert.equal(inbox.length, expected.length, `${user} holds exactly the messages that got a 250 (${i < 2 ? 'and nothing from the envelope-only client' : 'no more'})`);
      for (const s of expected) {
        const copies = inbox.filter((m) => m.text.includes(`Message-ID: <${s.token}@shutdown.test>\r\n`));
        assert.equal(copies.length, 1, `${s.token} is stored once for ${user}`);
        const bytes = copies[0]!.bytes;
        assert.ok(bytes.length > s.message.length, `${s.token} is complete`);
        assert.equal(sha256(bytes.subarray(bytes.length - s.message.length)), sha256(s.message), `${s.token} ends with exactly the bytes sent`);
      }
      const usage = await usageOf(dataDir, user);
      assert.deepEqual(usage.kept, usage.summed, `${user}: kept usage equals the sum of stored messages`);
    }
  } finally {
    // A failed assertion must not leave a server running (and writing into a removed directory).
    for (const server of servers) await server.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('yubin serve with idle clients exits 0 promptly on SIGTERM, telling them 421', { timeout: 60_000 }, async () => {
  const dataDir = makeDataDir('yubin-shutdown-idle-');
  const servers: RunningYubin[] = [];
  try {
    const server = await startYubin(dataDir);
    servers.push(server);
    const port = server.ports.smtp!;
    const exited = exitOf(server);

    // One client after EHLO, one that only read the greeting, one plain socket that said nothing.
    const afterEhlo = await RawSmtp.connect(port);
    assert.equal((await afterEhlo.reply()).code, 220);
    assert.equal((await afterEhlo.command('EHLO idle.test')).code, 250);
    const greeted = await RawSmtp.connect(port);
    assert.equal((await greeted.reply()).code, 220);
    const silent = net.connect(port, '127.0.0.1');
    silent.on('error', () => undefined);
    silent.resume(); // reads (and ignores) what the server sends, the FIN included
    await new Promise<void>((resolve) => silent.once('connect', () => resolve()));
    // Let the server register all three connections.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const signalledAt = Date.now();
    server.proc.kill('SIGTERM');
    const exit = await exited;
    const ms = Date.now() - signalledAt;
    assert.deepEqual(exit, { code: 0, signal: null }, `exit code 0; stderr: ${server.stderr().slice(-2000)}`);
    assert.ok(ms < 5000, `exited within 5 s of SIGTERM (took ${ms} ms)`);
    console.log(`idle clients: SIGTERM → exit 0 in ${ms} ms`);

    for (const raw of [afterEhlo, greeted]) {
      const hangUp = await raw.reply();
      assert.equal(hangUp.code, 421, `an idle client is told the server is shutting down: ${hangUp.text}`);
      assert.ok(await raw.waitClosed(1000), 'and its connection is closed');
    }
    silent.destroy();
  } finally {
    // A failed assertion must not leave a server running (and writing into a removed directory).
    for (const server of servers) await server.kill();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// serve.ts installs its signal handlers before it starts listening: a SIGTERM at any moment of
// the start, "ready" included, is a clean stop.
test(
  'SIGTERM right after "ready" still stops cleanly with exit 0',
  { timeout: 60_000 },
  async () => {
    const dataDir = makeDataDir('yubin-shutdown-early-');
    const servers: RunningYubin[] = [];
    try {
      const outcomes: string[] = [];
      for (let i = 0; i < 8; i++) {
        const server = await startYubin(dataDir);
        servers.push(server);
        const exited = exitOf(server);
        server.proc.kill('SIGTERM');
        const exit = await exited;
        outcomes.push(`${exit.code}/${exit.signal}`);
      }
      assert.deepEqual(outcomes, Array(8).fill('0/null'), 'every stop is a clean exit 0 (code/signal)');
    } finally {
      for (const server of servers) await server.kill();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
