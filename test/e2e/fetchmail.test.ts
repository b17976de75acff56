// fetchmail (the real one, as Debian ships it) against the POP3 server in "keep" mode: repeated
// polls download every message exactly once, by UIDL, and leave everything on the server.
// Mail arrives over SMTP; fetchmail hands each message to an MDA script that writes it to a file
// of its own. fetchmail is required: CI installs it (.ci/run); without it this test fails.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { cliOk, makeDataDir, startYubin, userRow, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const BOB = 'bob@example.test';
const PASSWORD = 'fetch-me password';

function fetchmailAvailable(): string | null {
  const result = spawnSync('fetchmail', ['--version'], { encoding: 'utf8', timeout: 30_000 });
  if (result.error) return null;
  return `${result.stdout}${result.stderr}`.match(/fetchmail release (\S+)/)?.[1] ?? 'unknown version';
}

async function deliver(port: number, to: string, data: string): Promise<void> {
  const conn = new SMTPConnection({ host: '127.0.0.1', port, name: 'client.test', ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => {
    conn.send({ from: 'alice@sender.example', to: [to] }, data, (err) => (err ? reject(err) : resolve()));
  });
  conn.quit();
}

/** A message with a unique Message-ID; the body has dot-led lines (POP3 byte-stuffs them). */
function message(n: number): { id: string; text: string; body: string } {
  const id = `${crypto.randomBytes(6).toString('hex')}.${n}@sender.example`;
  const body = `Hello,\r\nthis is message ${n}.\r\n.a line starting with a dot\r\n..two dots\r\nend.\r\n`;
  const text = `From: Alice <alice@sender.example>\r\nTo: ${BOB}\r\nSubject: fetchmail ${n}\r\nMessage-ID: <${id}>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\n${body}`;
  return { id, text, body };
}

describe('fetchmail in keep mode', () => {
  let dir: string;
  let work: string;
  let server: RunningYubin | null = null;
  let smtpPort: number;
  let rcFile: string;
  let outDir: string;
  let idFile: string;
  const sent: Array<{ id: string; body: string }> = [];

  before(async () => {
    dir = makeDataDir();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-fetchmail-'));
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', BOB, '--password', PASSWORD]);
    writeConfig(dir, '[auth]\nfailure_delay = 0\n');
    server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    smtpPort = server.ports.smtp!;
    const pop3Port = server.ports.pop3!;

    outDir = path.join(work, 'delivered');
    fs.mkdirSync(outDir);
    idFile = path.join(work, 'fetchids');
    // The MDA: each message into a file of its own (fetchmail runs it once per message).
    const mda = path.join(work, 'mda.sh');
    fs.writeFileSync(mda, `#!/bin/sh\nset -e\nf=$(mktemp "${outDir}/msg.XXXXXXXX")\ncat > "$f"\n`);
    fs.chmodSync(mda, 0o755);
    rcFile = path.join(work, 'fetchmailrc');
    const local = os.userInfo().username;
    fs.writeFileSync(
      rcFile,
      [
        'set no bouncemail',
        'set no syslog',
        `poll 127.0.0.1 service ${pop3Port} protocol pop3 uidl auth password`,
        `  user "${BOB}" there with password "${PASSWORD}" is "${local}" here`,
        `  options keep no rewrite sslproto '' mda "${mda}"`,
        '',
      ].join('\n'),
    );
    fs.chmodSync(rcFile, 0o600); // fetchmail refuses a run-control file others can read
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** One fetchmail run; returns the messages it handed to the MDA (their file contents). */
  function poll(): string[] {
    const version = fetchmailAvailable();
    assert.ok(version, 'fetchmail is not installed (apt-get install fetchmail; .ci/run installs it): this test needs the real client');
    const before = new Set(fs.readdirSync(outDir));
    const result = spawnSync('fetchmail', ['-f', rcFile, '--idfile', idFile, '--nosyslog', '--nodetach', '--sslproto', '', '--nosslcertck', '-v'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, HOME: work, FETCHMAILHOME: work, LC_ALL: 'C' },
    });
    assert.equal(result.error, undefined, `fetchmail could not run: ${String(result.error)}`);
    // 0: mail was fetched; 1: there was no mail. Anything else is a failure.
    assert.ok(result.status === 0 || result.status === 1, `fetchmail exited ${result.status ?? result.signal}:\n${result.stdout}\n${result.stderr}`);
    return fs
      .readdirSync(outDir)
      .filter((name) => !before.has(name))
      .map((name) => fs.readFileSync(path.join(outDir, name), 'latin1'));
  }

  const idOf = (text: string) => /^Message-ID: <([^>]+)>/im.exec(text)?.[1];

  function checkBodies(got: string[]): void {
    for (const text of got) {
      const id = idOf(text);
      const original = sent.find((m) => m.id === id);
      assert.ok(original, `fetchmail delivered a message that was not sent: ${text.slice(0, 300)}`);
      // fetchmail hands the MDA LF line ends; the dot-led lines must come back unstuffed.
      const body = text.slice(text.search(/\r?\n\r?\n/)).replace(/^\r?\n\r?\n/, '');
      assert.equal(body.replace(/\r\n/g, '\n'), original.body.replace(/\r\n/g, '\n'));
    }
  }

  it('requires fetchmail', () => {
    assert.ok(fetchmailAvailable(), 'fetchmail is not installed (apt-get install fetchmail; .ci/run installs it): this test needs the real client');
  });

  it('fetches 5 messages, then none, then only the 2 new ones, keeping all on the server', async () => {
    for (let n = 1; n <= 5; n++) {
      const m = message(n);
      sent.push({ id: m.id, body: m.body });
      await deliver(smtpPort, BOB, m.text);
    }
    assert.equal(userRow(dir, BOB).messages, 5);

    const first = poll();
    assert.equal(first.length, 5, 'the first run fetches all 5 messages');
    assert.deepEqual(first.map(idOf).sort(), sent.map((m) => m.id).sort());
    checkBodies(first);
    assert.ok(fs.existsSync(idFile), 'fetchmail wrote its UID list');

    const second = poll();
    assert.equal(second.length, 0, `the second run fetches nothing again, got: ${second.map(idOf).join(', ')}`);
    assert.equal(userRow(dir, BOB).messages, 5, 'keep: nothing deleted on the server');

    const added: string[] = [];
    for (let n = 6; n <= 7; n++) {
      const m = message(n);
      sent.push({ id: m.id, body: m.body });
      added.push(m.id);
      await deliver(smtpPort, BOB, m.text);
    }
    const third = poll();
    assert.equal(third.length, 2, `the third run fetches exactly the 2 new messages, got: ${third.map(idOf).join(', ')}`);
    assert.deepEqual(third.map(idOf).sort(), added.sort());
    checkBodies(third);

    assert.equal(poll().length, 0, 'a fourth run fetches nothing');
    // Every message fetched exactly once over all runs, and all 7 still on the server.
    const all = fs.readdirSync(outDir).map((name) => idOf(fs.readFileSync(path.join(outDir, name), 'latin1')));
    assert.equal(all.length, 7);
    assert.equal(new Set(all).size, 7);
    assert.equal(userRow(dir, BOB).messages, 7, 'keep: all 7 messages remain on the server');
  });
});
