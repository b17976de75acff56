// Blob ids: the SHA-256 of the content, in hex, so identical content is stored once.

import crypto from 'node:crypto';

export function blobIdOf(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
