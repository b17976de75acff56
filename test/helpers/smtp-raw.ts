// A raw SMTP conversation over a socket, for tests that need exact bytes on the wire
// (pipelining, smuggling, STARTTLS injection), where a client library would "help".

import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';

export type SmtpReply = { code: number; lines: string[]; text: string };

export function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Asserts the reply code and that every line of the reply carries the enhanced status code. */
export function expectReply(r: SmtpReply, code: number, enhanced: string | null, what: string): void {
  assert.equal(r.code, code, `${what}: expected ${code}, got ${JSON.stringify(r.text)}`);
  if (enhanced !== null) {
    for (const line of r.lines) {
      assert.match(line, new RegExp(`^${code}[ -]${escapeRe(enhanced)}( |$)`), `${what}: expected ${code} ${enhanced}, got ${JSON.stringify(r.text)}`);
    }
  }
}

export class RawSmtp {
  private buffer = '';
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(private socket: net.Socket | tls.TLSSocket) {
    this.attach(socket);
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => resolve(new RawSmtp(socket)));
      socket.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Reads one complete reply (possibly multi-line); returns its lines. */
  async reply(timeoutMs = 15_000): Promise<{ code: number; lines: string[]; text: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.buffer.split('\r\n');
      for (let i = 0; i < lines.length - 1; i++) {
        if (/^\d{3} /.test(lines[i]!) || /^\d{3}$/.test(lines[i]!)) {
          const taken = lines.slice(0, i + 1);
          this.buffer = lines.slice(i + 1).join('\r\n');
          return { code: Number(taken[i]!.slice(0, 3)), lines: taken, text: taken.join('\n') };
        }
      }
      if (this.closed) throw new Error(`connection closed; pending: ${JSON.stringify(this.buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; pending: ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a command line and returns its reply. */
  async command(line: string): Promise<{ code: number; lines: string[]; text: string }> {
    this.write(line + '\r\n');
    return this.reply();
  }

  /** Upgrades the connection after a 220 to STARTTLS (self-signed certificates accepted). */
  async startTls(servername = 'localhost'): Promise<void> {
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.buffer = '';
    this.attach(secure);
  }

  /** Bytes received but not yet read as replies. */
  pending(): string {
    return this.buffer;
  }

  /** Waits until the server closes the connection (or the timeout passes); returns whether it closed. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
