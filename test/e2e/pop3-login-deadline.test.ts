// POP3: an unauthenticated connection is closed at the login deadline even if it keeps talking
// (pop3.login_timeout is a deadline, not an inactivity timer), so idle clients cannot hold slots.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { cliOk, makeDataDir, startYubin, writeConfig } from '../helpers/yubin.js';

test('pop3.login_timeout closes a chatty unauthenticated session; a logged-in one stays', async () => {
  const dir = makeDataDir('yubin-pop3-deadline-');
  cliOk(dir, ['domain', 'add', 'example.test']);
  cliOk(dir, ['user', 'add', 'bob@example.test', '--password', 'password1']);
  writeConfig(dir, '[auth]\nfailure_delay = 0\n\n[pop3]\nlogin_timeout = "2s"\n');
  const server = await startYubin(dir, ['--pop3', '127.0.0.1:0']);
  try {
    const port = server.ports.pop3!;
    const open = (): Promise<{ socket: net.Socket; text: () => string; closedAt: () => number | null }> =>
      new Promise((resolve) => {
        let text = '';
        let closedAt: number | null = null;
        const socket = net.connect(port, '127.0.0.1', () => resolve({ socket, text: () => text, closedAt: () => closedAt }));
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => (text += d));
        socket.on('close', () => (closedAt = Date.now()));
      });
    const chatty = await open();
    const loggedIn = await open();
    loggedIn.socket.write('USER bob@example.test\r\nPASS password1\r\n');
    const started = Date.now();
    const noop = setInterval(() => chatty.socket.write('CAPA\r\n'), 300);
    while (chatty.closedAt() === null && Date.now() - started < 6000) await new Promise((r) => setTimeout(r, 100));
    clearInterval(noop);
    const closedAt = chatty.closedAt();
    assert.ok(closedAt !== null, 'the unauthenticated session was closed');
    const after = closedAt - started;
    assert.ok(after >= 1500 && after < 4500, `closed after ${after} ms, expected about 2 s`);
    assert.match(chatty.text(), /-ERR \[SYS\/TEMP\] Authentication took too long/);
    assert.equal(loggedIn.closedAt(), null, 'the logged-in session is still open');
    assert.match(loggedIn.text(), /\+OK Logged in/);
    loggedIn.socket.end('QUIT\r\n');
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
