// TLS material for STARTTLS and implicit TLS: the configured PEM files, or a self-signed
// certificate generated once into DATA/tls/ so that STARTTLS works from the first start.

import fs from 'node:fs';
import path from 'node:path';
import selfsigned from 'selfsigned';

export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  selfSigned: boolean;
}

export async function loadTlsMaterial(options: { certFile: string; keyFile: string; dataDir: string; hostname: string }): Promise<TlsMaterial> {
  if (options.certFile || options.keyFile) {
    if (!options.certFile || !options.keyFile) throw new Error('tls.cert and tls.key must be set together');
    return { cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile), selfSigned: false };
  }
  const dir = path.join(options.dataDir, 'tls');
  const certFile = path.join(dir, 'self-signed.crt');
  const keyFile = path.join(dir, 'self-signed.key');
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const notBeforeDate = new Date(Date.now() - 86400_000);
    const pems = await selfsigned.generate([{ name: 'commonName', value: options.hostname }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate,
      notAfterDate: new Date(notBeforeDate.getTime() + 825 * 86400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: options.hostname }] }],
    });
    fs.writeFileSync(keyFile, pems.private, { mode: 0o600 });
    fs.writeFileSync(certFile, pems.cert, { mode: 0o644 });
  }
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), selfSigned: true };
}
