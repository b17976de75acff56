// The server runs the maintenance jobs on its own schedule (maintenance.interval): an old message
// in Trash disappears without anyone running `yubin maintenance run`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cliOk, makeDataDir, python, startYubin, writeConfig } from '../helpers/yubin.js';
import { readMailbox } from '../helpers/mailbox.js';

test('scheduled retention removes an expired Trash message while the server runs', async () => {
  const dir = makeDataDir('yubin-schedule-');
  cliOk(dir, ['domain', 'add', 'example.test']);
  cliOk(dir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
  writeConfig(dir, '[auth]\nfailure_delay = 0\n\n[maintenance]\ninterval = "1s"\n');
  const server = await startYubin(dir, ['--imap', '127.0.0.1:0']);
  try {
    const port = server.ports.imap!;
    // One message from 2001 (older than the 30-day default) and one from now, both in Trash.
    const appended = python(
      `import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('bob@example.test', 'password1')
print(m.append('Trash', None, '"01-Jan-2001 00:00:00 +0000"', b'Subject: old\\r\\n\\r\\nold\\r\\n')[0])
print(m.append('Trash', None, None, b'Subject: new\\r\\n\\r\\nnew\\r\\n')[0])
m.logout()`,
      [String(port)],
    );
    assert.equal(appended.status, 0, appended.stderr);
    // Both APPENDs succeeded (the schedule may already have removed the old one by now).
    assert.deepEqual(appended.stdout.trim().split('\n'), ['OK', 'OK']);
    const deadline = Date.now() + 8000;
    let left = 2;
    while (Date.now() < deadline) {
      left = (await readMailbox(dir, 'bob@example.test', 'Trash')).length;
      if (left === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const trash = await readMailbox(dir, 'bob@example.test', 'Trash');
    assert.equal(trash.length, 1, 'the old message was removed by the schedule');
    assert.match(trash[0]!.text, /Subject: new/);
    // The run is logged when the job has finished, which may be a moment after its removal shows.
    const logged = Date.now() + 5000;
    while (!/"event":"maintenance"/.test(server.stderr()) && Date.now() < logged) await new Promise((r) => setTimeout(r, 100));
    assert.match(server.stderr(), /"event":"maintenance"/);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
