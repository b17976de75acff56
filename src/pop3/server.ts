// The POP3 listeners: --pop3 (plaintext with STLS; 110 in production) and --pop3s (implicit TLS;
// 995). Limits in total and per IP (net/limited-listener.ts); each connection a Pop3Session.

import type { AddressInfo } from 'node:net';
import type { TlsMaterial } from '../tls/certificates.js';
import { LimitedListener } from '../net/limited-listener.js';
import { Pop3Session, type Pop3Services } from './session.js';

export class Pop3Server {
  private readonly listener: LimitedListener<Pop3Session>;

  constructor(services: Pop3Services, tlsMaterial: TlsMaterial, implicitTls: boolean) {
    this.listener = new LimitedListener({
      protocol: 'pop3',
      tls: tlsMaterial,
      implicitTls,
      log: services.log,
      limits: () => ({ maxConnections: services.config().pop3.max_connections, maxConnectionsPerIp: services.config().pop3.max_connections_per_ip }),
      refusal: '-ERR [SYS/TEMP] Too many connections, try again later\r\n',
      open: (socket, closed) => new Pop3Session(socket, services, tlsMaterial, implicitTls, () => closed()),
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return this.listener.listen(host, port);
  }

  /** Stops accepting and ends every session; a QUIT already removing messages is let finish. */
  close(): Promise<void> {
    return this.listener.close();
  }
}
