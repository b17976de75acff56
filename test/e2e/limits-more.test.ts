// Limits not covered elsewhere: smtp.shutdown_grace (a sender stalled in DATA does not hold up a
// stop, and nothing of its message is stored) and imap.max_mailboxes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { cliOk, makeDataDir, startYubin, writeConfig } from '../helpers/yubin.js';
import { RawSmtp } from '../helpers/smtp-raw.js';
import { readMailbox } from '../helpers/mailbox.js';

test('smtp.shutdown_grace: a client stalled in DATA gets 421 4.3.2 and the server exits 0 without storing it', async () => {
  const dir = makeDataDir('yubin-grace-');
  cliOk(dir, ['domain', 'add', 'example.test']);
  cliOk(dir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
  writeConfig(dir, '[smtp]\nshutdown_grace = "1s"\n');
  const server = await startYubin(dir, ['--smtp', '127.0.0.1:0']);
  const c = await RawSmtp.connect(server.ports.smtp!);
  try {
    assert.equal((await c.reply()).code, 220);
    assert.equal((await c.command('EHLO client.test')).code, 250);
    assert.equal((await c.command('MAIL FROM:<a@b.example>')).code, 250);
    assert.equal((await c.command('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.command('DATA')).code, 354);
    c.write('Subject: stalled\r\n\r\nhalf a message');
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const exit = server.stop();
    const reply = await c.reply(10_000);
    assert.equal(reply.code, 421, reply.text);
    assert.match(reply.text, /^421 4\.3\.2 /);
    assert.equal(await exit, 0);
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 8000, `stopped after ${took} ms with a 1 s grace`);
    assert.deepEqual(await readMailbox(dir, 'bob@example.test'), []);
  } finally {
    c.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('imap.max_mailboxes: CREATE beyond the limit gets NO [LIMIT] and creates nothing', async () => {
  const dir = makeDataDir('yubin-maxmbx-');
  cliOk(dir, ['domain', 'add', 'example.test']);
  cliOk(dir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
  writeConfig(dir, '[auth]\nfailure_delay = 0\n\n[imap]\nmax_mailboxes = 8\n');
  const server = await startYubin(dir, ['--imap', '127.0.0.1:0']);
  const socket = net.connect(server.ports.imap!, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  const until = async (re: RegExp) => {
    const deadline = Date.now() + 5000;
    while (!re.test(text)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in ${text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await until(/^\* OK/m);
    socket.write('a LOGIN bob@example.test password1\r\n');
    await until(/^a OK/m);
    // Six default mailboxes: two more fit, the third does not; "X/Y" would need two.
    socket.write('b CREATE One\r\nc CREATE Two\r\nd CREATE Three\r\ne CREATE X/Y\r\nf LIST "" "*"\r\n');
    await until(/^f OK/m);
    assert.match(text, /^b OK/m);
    assert.match(text, /^c OK/m);
    assert.match(text, /^d NO \[LIMIT\]/m);
    assert.match(text, /^e NO \[LIMIT\]/m);
    assert.equal((text.match(/^\* LIST /gm) ?? []).length, 8);
    assert.doesNotMatch(text, /^\* LIST .* "?X"?\r$/m);
  } finally {
    socket.destroy();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
