// A POP3 download reads ahead of the client (several messages per store read); a message that
// an IMAP session expunges meanwhile is still refused at RETR, never sent from the read-ahead.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cliOk, makeDataDir, pythonAsync, smtpSendWithPython, startYubin, writeConfig, type RunningYubin } from '../helpers/yubin.js';

describe('POP3 read-ahead', () => {
  let dir: string;
  let server: RunningYubin;

  before(async () => {
    dir = makeDataDir('yubin-pop3-ahead-');
    writeConfig(dir, '[auth]\nfailure_delay = 0\n');
    cliOk(dir, ['domain', 'add', 'example.test']);
    cliOk(dir, ['user', 'add', 'mika@example.test', '--password', 'password1']);
    server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0', '--pop3', '127.0.0.1:0']);
    for (let i = 1; i <= 5; i++) {
      smtpSendWithPython(server.ports.smtp!, 'partner@partner.test', 'mika@example.test', `From: partner@partner.test\r\nSubject: order ${i}\r\n\r\nbody of order ${i}\r\n`);
    }
  });

  after(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('RETR of a message expunged over IMAP after the read-ahead is refused; the others arrive whole', async () => {
    const result = await pythonAsync(
      `
import imaplib, json, poplib, sys
pop = poplib.POP3('127.0.0.1', int(sys.argv[1])); pop.user('mika@example.test'); pop.pass_('password1')
out = {'first': b'\\r\\n'.join(pop.retr(1)[1]).decode()}
imap = imaplib.IMAP4('127.0.0.1', int(sys.argv[2])); imap.login('mika@example.test', 'password1'); imap.select('INBOX')
imap.uid('STORE', '3', '+FLAGS', '(\\\\Deleted)'); imap.expunge(); imap.logout()
try:
    pop.retr(3); out['third'] = 'sent'
except poplib.error_proto as e:
    out['third'] = e.args[0].decode()
out['second'] = b'\\r\\n'.join(pop.retr(2)[1]).decode()
out['fourth'] = b'\\r\\n'.join(pop.retr(4)[1]).decode()
pop.quit()
print(json.dumps(out))
`,
      [String(server.ports.pop3!), String(server.ports.imap!)],
    );
    assert.equal(result.status, 0, result.stderr);
    const out = JSON.parse(result.stdout) as Record<string, string>;
    assert.match(out.first!, /Subject: order 1\r\n\r\nbody of order 1$/);
    assert.match(out.third!, /^-ERR .*removed/);
    assert.match(out.second!, /Subject: order 2\r\n\r\nbody of order 2$/);
    assert.match(out.fourth!, /Subject: order 4\r\n\r\nbody of order 4$/);
  });
});
