// The POP3 listeners: --pop3 (plaintext with STLS; 110 in production) and --pop3s (implicit TLS;
// 995). Connection limits in total and per IP; each connection is a Pop3Session.

import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { TlsMaterial } from '../tls/certificates.js';
import { Pop3Session, type Pop3Services } from './session.js';

export class Pop3Server {
  private readonly server: net.Server;
  private readonly sessions = new Set<Pop3Session>();
  private readonly perIp = new Map<string, number>();

  constructor(
    private readonly services: Pop3Services,
    private readonly tlsMaterial: TlsMaterial,
    private readonly implicitTls: boolean,
  ) {
    const onSocket = (socket: net.Socket | tls.TLSSocket) => this.accept(socket);
    this.server = implicitTls
      ? tls.createServer({ key: tlsMaterial.key, cert: tlsMaterial.cert }, onSocket)
      : net.createServer(onSocket);
    this.server.on('error', (err) => services.log.warn({ err: err.message }, 'pop3 listener error'));
  }

  private accept(socket: net.Socket | tls.TLSSocket): void {
    socket.on('error', () => undefined);
    const limits = this.services.config().pop3;
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const count = this.perIp.get(ip) ?? 0;
    if (this.sessions.size >= limits.max_connections || count >= limits.max_connections_per_ip) {
      this.services.log.info({ event: 'refused', protocol: 'pop3', ip, perIp: count, total: this.sessions.size }, 'pop3 connection refused: too many connections');
      socket.end('-ERR [SYS/TEMP] Too many connections, try again later\r\n');
      return;
    }
    this.perIp.set(ip, count + 1);
    const session = new Pop3Session(socket, this.services, this.tlsMaterial, this.implicitTls, (closed) => {
      this.sessions.delete(closed);
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
    this.sessions.add(session);
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

  /** Stops accepting and ends every session; a QUIT already removing messages is let finish. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.all([...this.sessions].map((session) => session.shutdown()));
    await closed;
  }
}
