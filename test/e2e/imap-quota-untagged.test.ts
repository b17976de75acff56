// RFC 9208: the server tells a session of usage changes with an untagged QUOTA response, whoever
// changed it (this session's APPEND, or a delivery while the session IDLEs).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { cliOk, makeDataDir, python, startYubin, writeConfig } from '../helpers/yubin.js';

class Lines {
  private text = '';
  constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (this.text += d));
  }
  write(s: string): void {
    this.socket.write(s);
  }
  async waitFor(pattern: RegExp, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const m = pattern.exec(this.text);
      if (m) return m[0];
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no ${pattern} in ${JSON.stringify(this.text.slice(-500))}`);
  }
  all(): string {
    return this.text;
  }
}

test('untagged QUOTA after an APPEND and after a delivery during IDLE', async () => {
  const dir = makeDataDir('yubin-imap-quota-');
  cliOk(dir, ['domain', 'add', 'example.test']);
  cliOk(dir, ['user', 'add', 'bob@example.test', '--password', 'password1', '--quota', '1M']);
  writeConfig(dir, '[auth]\nfailure_delay = 0\n');
  const server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--imap', '127.0.0.1:0']);
  try {
    const socket = net.connect(server.ports.imap!, '127.0.0.1');
    const c = new Lines(socket);
    await c.waitFor(/^\* OK/m);
    c.write('a LOGIN bob@example.test password1\r\n');
    await c.waitFor(/^a OK/m);
    c.write('b SELECT INBOX\r\n');
    await c.waitFor(/^b OK/m);
    const message = 'Subject: q\r\n\r\n' + 'x'.repeat(3000) + '\r\n';
    c.write(`c APPEND INBOX {${message.length}+}\r\n${message}\r\n`);
    await c.waitFor(/^c OK/m);
    assert.match(c.all(), /^\* QUOTA "" \(STORAGE 3 1024\)\r$/m, 'usage after the APPEND (3 KiB of 1 MiB)');
    c.write('d IDLE\r\n');
    await c.waitFor(/^\+ /m);
    const sent = python(
      `import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
s.sendmail('a@b.example', ['bob@example.test'], 'Subject: more\\r\\n\\r\\n' + 'y' * 5000 + '\\r\\n')
s.quit()`,
      [String(server.ports.smtp)],
    );
    assert.equal(sent.status, 0, sent.stderr);
    const line = await c.waitFor(/^\* QUOTA "" \(STORAGE (?!3 )(\d+) 1024\)\r$/m);
    const used = Number(/STORAGE (\d+)/.exec(line)![1]);
    assert.ok(used >= 8, `usage grew with the delivery: ${line}`);
    c.write('DONE\r\n');
    await c.waitFor(/^d OK/m);
    // Nothing changed: no repeated QUOTA for a NOOP.
    const before = c.all().match(/^\* QUOTA /gm)!.length;
    c.write('e NOOP\r\n');
    await c.waitFor(/^e OK/m);
    assert.equal(c.all().match(/^\* QUOTA /gm)!.length, before);
    socket.destroy();
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
