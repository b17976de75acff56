// A TCP (or implicit-TLS) listener with connection limits in total and per client IP, shared by
// the IMAP and POP3 servers. It owns accepting and counting; what a connection does is the
// protocol's business (the `open` callback), and `refuse` writes the protocol's own refusal.

import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { TlsMaterial } from '../tls/certificates.js';

export interface ListenerLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
}

export interface Connection {
  /** Server shutdown: say goodbye and end (may wait for work in progress). */
  shutdown(): void | Promise<void>;
}

export interface LimitedListenerOptions<C extends Connection> {
  protocol: string;
  tls: TlsMaterial;
  implicitTls: boolean;
  log: Logger;
  limits: () => ListenerLimits;
  /** The refusal line written before closing a connection over a limit. */
  refusal: string;
  /** Starts a protocol session; must call `closed` exactly once when the connection ends. */
  open(socket: net.Socket | tls.TLSSocket, closed: () => void): C;
}

export class LimitedListener<C extends Connection> {
  private readonly server: net.Server;
  private readonly connections = new Set<C>();
  private readonly perIp = new Map<string, number>();

  constructor(private readonly options: LimitedListenerOptions<C>) {
    const onSocket = (socket: net.Socket | tls.TLSSocket) => this.accept(socket);
    // noDelay: replies are small and interactive; Nagle's algorithm would hold a reply's second
    // write until the client's delayed ACK (about 40 ms per command).
    this.server = options.implicitTls
      ? tls.createServer({ key: options.tls.key, cert: options.tls.cert, noDelay: true }, onSocket)
      : net.createServer({ noDelay: true }, onSocket);
    this.server.on('error', (err) => options.log.warn({ err: err.message, protocol: options.protocol }, 'listener error'));
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    socket.on('error', () => undefined);
    const limits = this.options.limits();
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const count = this.perIp.get(ip) ?? 0;
    if (this.connections.size >= limits.maxConnections || count >= limits.maxConnectionsPerIp) {
      this.options.log.info({ event: 'refused', protocol: this.options.protocol, ip, perIp: count, total: this.connections.size }, 'connection refused: too many connections');
      socket.end(this.options.refusal);
      return;
    }
    this.perIp.set(ip, count + 1);
    let released = false;
    const connection: C = this.options.open(socket, () => {
      if (released) return;
      released = true;
      this.connections.delete(connection);
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
    if (!released) this.connections.add(connection);
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting and shuts every connection down (waiting for those that finish work). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.connections].map((connection) => connection.shutdown()));
    await closed;
  }
}
