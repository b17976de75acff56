// The IMAP listeners: --imap (plaintext with STARTTLS; 143 in production) and --imaps (implicit
// TLS; 993). Limits in total and per IP (net/limited-listener.ts); each connection an ImapConnection.

import type { AddressInfo } from 'node:net';
import type { TlsMaterial } from '../tls/certificates.js';
import { LimitedListener } from '../net/limited-listener.js';
import type { SessionServices } from './context.js';
import { ImapConnection } from './connection.js';

export class ImapServer {
  private readonly listener: LimitedListener<ImapConnection>;

  constructor(services: SessionServices, tlsMaterial: TlsMaterial, implicitTls: boolean) {
    this.listener = new LimitedListener({
      protocol: 'imap',
      tls: tlsMaterial,
      implicitTls,
      log: services.log,
      limits: () => ({ maxConnections: services.config().imap.max_connections, maxConnectionsPerIp: services.config().imap.max_connections_per_ip }),
      refusal: '* BYE Too many connections, try again later\r\n',
      open: (socket, closed) => new ImapConnection(socket, services, tlsMaterial, implicitTls, closed),
    });
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return this.listener.listen(host, port);
  }

  /** Stops accepting; every session gets BYE. */
  close(): Promise<void> {
    return this.listener.close();
  }
}
