// Optional routes of the outbound queue, end to end: with queue.smarthost every remote message goes
// to that relay instead of the recipient domain's MX, and a queue.transports entry sends one
// domain's mail to its own host. The relays are smtp-server sinks on loopback; no DNS is asked
// (an "[IP]" route needs none), so a domain that does not exist anywhere is still delivered.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import nodemailer from 'nodemailer';
import { startSmtpSink, type SmtpSink } from '../helpers/smtp-sink.js';
import { cliOk, makeDataDir, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';
import { waitFor } from '../helpers/wait.js';

const PASSWORD = 'correct horse battery staple';

describe('outbound routes: smarthost and per-domain transports', () => {
  const dataDir = makeDataDir('yubin-routes-');
  let relay: SmtpSink;
  let special: SmtpSink;
  let server: RunningYubin;

  before(async () => {
    [relay, special] = await Promise.all([startSmtpSink(), startSmtpSink()]);
    writeConfig(
      dataDir,
      [
        'hostname = "mx.routes.test"',
        '[queue]',
        `smarthost = "[127.0.0.1]:${relay.port}"`,
        'poll_interval = 0.2',
        'retry_schedule = "1s"',
        '[queue.transports]',
        `"special.example" = "[127.0.0.1]:${special.port}"`,
        '[storage]',
        'fsync = false',
      ].join('\n') + '\n',
    );
    cliOk(dataDir, ['domain', 'add', 'routes.test']);
    cliOk(dataDir, ['user', 'add', 'alice@routes.test', '--password', PASSWORD]);
    server = await startYubin(dataDir, ['--submission', '127.0.0.1:0']);
  });

  after(async () => {
    await server?.stop();
    await Promise.allSettled([relay?.close(), special?.close()]);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('sends remote mail through the smarthost, and one domain through its transport, without asking DNS for MX', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: server.ports.submission!,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@routes.test', pass: PASSWORD },
    });
    try {
      const raw = (to: string, subject: string) => `From: alice@routes.test\r\nTo: ${to}\r\nSubject: ${subject}\r\n\r\nHello.\r\n`;
      // Domains that resolve nowhere: only the configured routes can carry them.
      await transport.sendMail({ envelope: { from: 'alice@routes.test', to: ['bob@nowhere.invalid', 'carol@elsewhere.invalid'] }, raw: raw('bob@nowhere.invalid', 'via the smarthost') });
      await transport.sendMail({ envelope: { from: 'alice@routes.test', to: ['dave@special.example'] }, raw: raw('dave@special.example', 'via the transport') });
    } finally {
      transport.close();
    }
    await waitFor('both relays received', () => relay.received.length >= 1 && special.received.length >= 1, 30_000);
    await waitFor('an empty queue', () => (JSON.parse(cliOk(dataDir, ['queue', 'list', '--json'])) as unknown[]).length === 0, 30_000);
    const viaRelay = relay.received.flatMap((m) => m.to).sort();
    assert.deepEqual(viaRelay, ['bob@nowhere.invalid', 'carol@elsewhere.invalid'], 'both remote domains through the smarthost');
    assert.match(relay.received[0]!.text, /^Subject: via the smarthost/m);
    assert.equal(relay.received[0]!.from, 'alice@routes.test');
    assert.deepEqual(special.received.map((m) => m.to), [['dave@special.example']], 'the transport domain to its own host');
    assert.match(special.received[0]!.text, /^Subject: via the transport/m);
    assert.ok(!relay.received.some((m) => m.to.includes('dave@special.example')), 'not through the smarthost');
  });
});
