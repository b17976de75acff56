// The IMAP listeners: --imap (plaintext with STARTTLS; 143 in production) and --imaps (implicit
// TLS; 993). Connection limits in total and per IP; each connection is an ImapConnection.

import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TlsMaterial } from '../tls/certificates.js';
import type { SessionServices } from './context.js';
import { ImapConnection } from './connection.js';

export class ImapServer {
  private readonly server: net.Server;
  private readonly connections = new Set<ImapConnection>();
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly services: SessionServices,
    private readonly tlsMaterial: TlsMaterial,
    private readonly implicitTls: boolean,
  ) {
    const onSocket = (socket: net.Socket | tls.TLSSocket) => this.accept(socket);
    this.server = implicitTls
      ? tls.createServer({ key: tlsMaterial.key, cert: tlsMaterial.cert }, onSocket)
      : net.createServer(onSocket);
    this.server.on('error', (err) => services.log.warn({ err: err.message }, 'imap listener error'));
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    socket.on('error', () => undefined);
    const imap = this.services.config().imap;
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const count = this.perIp.get(ip) ?? 0;
    if (this.connections.size >= imap.max_connections || count >= imap.max_connections_per_ip) {
      socket.end('* BYE Too many connections, try again later\r\n');
      return;
    }
    this.perIp.set(ip, count + 1);
    const connection = new ImapConnection(socket, this.services, this.tlsMaterial, this.implicitTls, (closed) => {
      this.connections.delete(closed);
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
    this.connections.add(connection);
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

  /** Stops accepting; every session gets BYE (IMAP has nothing in flight worth waiting for beyond the current command). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const connection of this.connections) connection.shutdown();
    await closed;
  }
}
