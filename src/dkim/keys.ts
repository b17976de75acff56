// DKIM key pairs (RFC 6376 §3.6.1 key records; RFC 8463 for Ed25519), generated with node:crypto.

import crypto from 'node:crypto';

export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface GeneratedDkimKey {
  /** PKCS#8 PEM. */
  privateKey: string;
  /** The p= value: base64 of the SPKI DER (RSA) or of the raw 32-byte public key (Ed25519, RFC 8463 §4.2). */
  publicKey: string;
}

/** RSA 2048 bits: RFC 8301 §3.2 requires at least 1024 and recommends 2048 (longer ones may not fit one TXT string set everywhere). */
export const RSA_BITS = 2048;

/** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4); the raw key is the 32 bytes after it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function generateDkimKey(algorithm: DkimAlgorithm): GeneratedDkimKey {
  if (algorithm === 'rsa') {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
      modulusLength: RSA_BITS,
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    return { privateKey, publicKey: publicKey.toString('base64') };
  }
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519', {
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKey, publicKey: rawEd25519PublicKey(publicKey).toString('base64') };
}

function rawEd25519PublicKey(spki: Buffer): Buffer {
  if (spki.length !== ED25519_SPKI_PREFIX.length + 32 || !spki.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    throw new Error('unexpected Ed25519 public key encoding');
  }
  return spki.subarray(ED25519_SPKI_PREFIX.length);
}

/** The public key of a p= value as a KeyObject (for checks and tests). */
export function dkimPublicKeyObject(algorithm: DkimAlgorithm, p: string): crypto.KeyObject {
  const der = Buffer.from(p, 'base64');
  return crypto.createPublicKey({ key: algorithm === 'ed25519' ? Buffer.concat([ED25519_SPKI_PREFIX, der]) : der, format: 'der', type: 'spki' });
}

/** The TXT record's text: "v=DKIM1; k=rsa; p=...". */
export function dkimTxtRecord(key: { algorithm: DkimAlgorithm; publicKey: string }): string {
  return `v=DKIM1; k=${key.algorithm}; p=${key.publicKey}`;
}

/** The owner name of a key's record, without the trailing dot: SELECTOR._domainkey.DOMAIN. */
export function dkimRecordName(key: { selector: string; domain: string }): string {
  return `${key.selector}._domainkey.${key.domain}`;
}

/** A selector is one or more DNS labels (RFC 6376 §3.1). */
export function isValidSelector(selector: string): boolean {
  return /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(selector);
}
