// The POP3 session over an in-memory socket, for what a real socket hides behind kernel buffers:
// a client that sends without reading is not buffered for without bound, and the autologout
// timer (RFC 1939 §3) closes without a response.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import pino from 'pino';
import { validateConfig } from '../../src/config/load.js';
import { AuthThrottle } from '../../src/auth/throttle.js';
import type { Store } from '../../src/store/types.js';
import type { TlsMaterial } from '../../src/tls/certificates.js';
import { RetrievalRecorder } from '../../src/pop3/retrievals.js';
import { MaildropLocks } from '../../src/pop3/locks.js';
import { Pop3Session, type Pop3Services } from '../../src/pop3/session.js';

/** A client socket whose reader can stop reading: writes are held while `blocked`. */
class FakeSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  written = 0;
  text = '';
  private held: Array<() => void> = [];
  blocked = false;
  timeoutMs = 0;

  constructor() {
    super({ writableHighWaterMark: 1024, readableHighWaterMark: 1024 });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written += chunk.length;
    if (this.text.length < 100_000) this.text += chunk.toString('latin1');
    if (this.blocked) this.held.push(() => callback());
    else callback();
  }

  setTimeout(ms: number): this {
    this.timeoutMs = ms;
    return this;
  }

  unblock(): void {
    this.blocked = false;
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }
}

function services(): Pop3Services {
  const config = validateConfig({});
  const store = {} as Store; // not reached before login
  const log = pino({ level: 'silent' });
  return {
    config: () => config,
    store,
    throttle: new AuthThrottle(() => ({ failureDelaySeconds: 0, windowSeconds: 60 })),
    log,
    locks: new MaildropLocks(),
    retrievals: new RetrievalRecorder(store, log),
  };
}

const tlsMaterial = { cert: Buffer.alloc(0), key: Buffer.alloc(0), selfSigned: true } as TlsMaterial;
const spin = async (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Pop3Session', () => {
  it('stops reading while the client does not read its answers, and answers everything once it does', async () => {
    const socket = new FakeSocket();
    const session = new Pop3Session(socket as unknown as net.Socket, services(), tlsMaterial, false, () => undefined);
    const greeting = '+OK Yubin POP3 server ready\r\n';
    const answer = '-ERR Log in first\r\n';
    socket.blocked = true;
    const N = 50_000;
    // The "kernel": input offered as fast as the session will take it.
    const chunk = Buffer.from('NOOP\r\n'.repeat(1000));
    for (let i = 0; i < N / 1000; i++) socket.push(chunk);
    await spin(300);
    assert.ok(socket.writableLength < 64 * 1024, `answers buffered for a client that does not read: ${socket.writableLength} bytes`);
    assert.ok(socket.readableLength > 200_000, 'the unread commands wait in the socket, not in the session');

    socket.unblock();
    for (let i = 0; i < 200 && socket.written < greeting.length + N * answer.length; i++) {
      socket.unblock();
      await spin(10);
    }
    assert.equal(socket.written, greeting.length + N * answer.length);
    assert.ok(socket.text.startsWith(greeting + answer + answer));
    session.close();
    await session.finished;
  });

  it('the autologout timer closes the connection without a response (RFC 1939 §3), at least 10 minutes', async () => {
    const socket = new FakeSocket();
    let closed = 0;
    const session = new Pop3Session(socket as unknown as net.Socket, services(), tlsMaterial, false, () => closed++);
    assert.equal(socket.timeoutMs, 600_000);
    socket.push('CAPA\r\n');
    await spin(20);
    const before = socket.text;
    assert.match(before, /\.\r\n$/);
    socket.emit('timeout');
    await session.finished;
    assert.equal(closed, 1);
    assert.equal(socket.text, before, 'nothing was sent');
  });
});
