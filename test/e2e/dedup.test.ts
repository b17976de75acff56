// Identical attachments are stored once: two different messages carrying the same drawing, sent
// over SMTP to two users, come back byte for byte over IMAP (imapflow) and POP3 (poplib); the
// drawing is one file on disk; quotas count each message whole; deleting one copy leaves the
// other intact, across the server's garbage collection; `yubin usage --disk` shows what it saves.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { cliOk, makeDataDir, pythonAsync, startYubin, userRow, writeConfig, type RunningYubin } from '../helpers/yubin.js';

const PASSWORD = 'password1';
const drawing = crypto.randomBytes(300 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');

function message(to: string, subject: string, text: string): Buffer {
  return Buffer.from(
    [
      'From: partner@partner.test',
      `To: ${to}`,
      `Subject: ${subject}`,
      `Message-ID: <${crypto.randomUUID()}@partner.test>`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="=_b"',
      '',
      '--=_b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      '--=_b',
      'Content-Type: application/octet-stream; name="plan.dwg"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="plan.dwg"',
      '',
      drawing,
      '--=_b--',
      '',
    ].join('\r\n'),
  );
}

/** Sends exact bytes over SMTP with Python's smtplib (no re-encoding of the message). */
async function send(port: number, to: string, bytes: Buffer): Promise<void> {
  const result = await pythonAsync(
    `
import smtplib, sys
data = sys.stdin.buffer.read()
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('partner@partner.test', [sys.argv[2]], data)
s.quit()
`,
    [String(port), to],
    bytes.toString('latin1'),
  );
  assert.equal(result.status, 0, result.stderr);
}

async function fetchAll(port: number, user: string): Promise<Array<{ uid: number; source: Buffer }>> {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
  await client.connect();
  try {
    await client.mailboxOpen('INBOX');
    const out: Array<{ uid: number; source: Buffer }> = [];
    for await (const m of client.fetch('1:*', { uid: true, source: true })) out.push({ uid: m.uid, source: m.source! });
    return out;
  } finally {
    await client.logout();
  }
}

async function deleteAll(port: number, user: string): Promise<void> {
  const client = new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
  await client.connect();
  try {
    await client.mailboxOpen('INBOX');
    assert.ok(await client.messageDelete('1:*'));
  } finally {
    await client.logout();
  }
}

/** Every message of the maildrop as POP3 RETR gives it (byte-stuffing undone by poplib). */
async function retrAll(port: number, user: string): Promise<Buffer[]> {
  const result = await pythonAsync(
    `
import base64, json, poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
p.user(sys.argv[2]); p.pass_(sys.argv[3])
count = len(p.list()[1])
out = []
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    out.append(base64.b64encode(b'\\r\\n'.join(lines) + b'\\r\\n').decode())
p.quit()
print(json.dumps(out))
`,
    [String(port), user, PASSWORD],
  );
  assert.equal(result.status, 0, result.stderr);
  return (JSON.parse(result.stdout) as string[]).map((b) => Buffer.from(b, 'base64'));
}

function blobFiles(dir: string): string[] {
  const root = path.join(dir, 'blobs');
  return fs
    .readdirSync(root)
    .filter((sub) => sub !== 'tmp')
    .flatMap((sub) => fs.readdirSync(path.join(root, sub)));
}

interface DiskJson {
  messages: number;
  logicalBytes: number;
  physicalBytes: number;
  savedBytes: number;
  parts: number;
  partBytes: number;
  sharedParts: number;
}

describe('deduplication of identical attachments, end to end', () => {
  let dir: string;
  let server: RunningYubin;
  const args = ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0', '--pop3', '127.0.0.1:0'];
  const toAlice = message('alice@example.test', 'Plan for the new office', 'Alice, the plan is attached.');
  const toBob = message('bob@example.test', 'Fwd: Plan for the new office', 'Bob, same plan, for your review.');

  before(async () => {
    dir = makeDataDir('yubin-dedup-');
    writeConfig(dir, '[auth]\nfailure_delay = 0\n[maintenance]\ninterval = 0\n');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'alice@example.test', '--password', PASSWORD]);
    cliOk(dir, ['user', 'add', 'bob@example.test', '--password', PASSWORD]);
    server = await startYubin(dir, args);
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('stores the drawing once and returns both messages byte for byte over IMAP and POP3', async () => {
    await send(server.ports.smtp!, 'alice@example.test', toAlice);
    await send(server.ports.smtp!, 'bob@example.test', toBob);

    const [alice] = await fetchAll(server.ports.imap!, 'alice@example.test');
    const [bob] = await fetchAll(server.ports.imap!, 'bob@example.test');
    assert.ok(alice && bob);
    // What Yubin stored is its trace headers followed by the message exactly as sent.
    assert.ok(alice.source.subarray(alice.source.length - toAlice.length).equals(toAlice), "alice's message is byte-identical after the trace headers");
    assert.ok(bob.source.subarray(bob.source.length - toBob.length).equals(toBob), "bob's message is byte-identical after the trace headers");
    assert.match(alice.source.subarray(0, alice.source.length - toAlice.length).toString(), /^Return-Path: <partner@partner\.test>\r\nDelivered-To: alice@example\.test\r\n[\s\S]*Received: /);

    const [popBob] = await retrAll(server.ports.pop3!, 'bob@example.test');
    assert.ok(popBob?.equals(bob.source), 'POP3 RETR gives the same bytes as IMAP FETCH BODY[]');

    // One file on disk: the drawing (the rest of each message is small and kept in the database).
    const files = blobFiles(dir);
    assert.equal(files.length, 1, `one file, got ${files.length}`);
    // Quotas count each message whole.
    assert.equal(userRow(dir, 'alice@example.test').used, alice.source.length);
    assert.equal(userRow(dir, 'bob@example.test').used, bob.source.length);

    const disk = JSON.parse(cliOk(dir, ['usage', '--disk', '--json'])) as DiskJson;
    assert.equal(disk.messages, 2);
    assert.equal(disk.logicalBytes, alice.source.length + bob.source.length);
    assert.equal(disk.parts, 1);
    assert.equal(disk.sharedParts, 1);
    assert.equal(disk.partBytes, drawing.length);
    assert.equal(disk.savedBytes, disk.logicalBytes - disk.physicalBytes);
    assert.ok(disk.savedBytes >= drawing.length, `saved ${disk.savedBytes} bytes, at least one copy of the drawing (${drawing.length})`);
    const text = cliOk(dir, ['usage', '--disk']);
    assert.match(text, /Saved\s+\S+ \S+ \(\d+ bytes, \d+% of/);
    assert.match(text, /1 part, \S+ \S+; 1 used by more than one message/);
  });

  it('deleting one copy leaves the other intact, after garbage collection too', async () => {
    const [bobBefore] = await fetchAll(server.ports.imap!, 'bob@example.test');
    await deleteAll(server.ports.imap!, 'alice@example.test');
    assert.deepEqual(await fetchAll(server.ports.imap!, 'alice@example.test'), []);
    // The writer collects unreferenced blobs when it starts: restart to be sure it ran.
    await server.stop();
    server = await startYubin(dir, args);
    const [bob] = await fetchAll(server.ports.imap!, 'bob@example.test');
    assert.ok(bob?.source.equals(bobBefore!.source), "bob's copy is unchanged over IMAP");
    const [popBob] = await retrAll(server.ports.pop3!, 'bob@example.test');
    assert.ok(popBob?.equals(bobBefore!.source), "and over POP3");
    assert.equal(blobFiles(dir).length, 1, 'the drawing is still on disk');
    const disk = JSON.parse(cliOk(dir, ['usage', '--disk', '--json'])) as DiskJson;
    assert.equal(disk.messages, 1);
    assert.equal(disk.parts, 1);
    assert.equal(disk.sharedParts, 0);

    // The last copy gone, the drawing goes too.
    await deleteAll(server.ports.imap!, 'bob@example.test');
    await server.stop();
    server = await startYubin(dir, args);
    assert.deepEqual(blobFiles(dir), []);
    const empty = JSON.parse(cliOk(dir, ['usage', '--disk', '--json'])) as DiskJson;
    assert.deepEqual([empty.messages, empty.parts, empty.physicalBytes], [0, 0, 0]);
  });
});
