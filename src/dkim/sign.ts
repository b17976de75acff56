// DKIM signing (RFC 6376; Ed25519: RFC 8463) of outgoing mail with mailauth's signer:
// relaxed/relaxed canonicalization, one signature per key (rsa-sha256 and/or ed25519-sha256).
//
// Over-signing: mailauth lists in h= only the header fields present, once per instance. A field
// named once more than it occurs is signed as "absent" (RFC 6376 §5.4.2), so that nobody can add
// a second From (or Subject...) later without breaking the signature (RFC 6376 §8.15). mailauth has
// no option for it; the subclass below repeats the name of the topmost instance in the h= list, which
// the verifier then resolves to "no further instance" (the signed bytes are the same).

import { createRequire } from 'node:module';
import type { DkimKey } from '../store/types.js';
import { parseMessage } from '../mime/message-parts.js';

const require = createRequire(import.meta.url);

interface ParsedHeader {
  key: string | undefined;
  casedKey: string | undefined;
}

interface SignatureData {
  signingDomain: string;
  selector: string;
  privateKey: string;
  algorithm: string;
  canonicalization: string;
}

interface DkimSignerInstance extends NodeJS.WritableStream {
  signatureHeaders: string[];
  errors: Array<{ selector?: string; signingDomain?: string; err: Error }>;
  messageHeaders(headers: { parsed: ParsedHeader[] }): Promise<void>;
}

type DkimSignerClass = new (options: { canonicalization: string; headerList: string; signTime?: Date; signatureData: SignatureData[] }) => DkimSignerInstance;

const { DkimSigner } = require('mailauth/lib/dkim/dkim-signer.js') as { DkimSigner: DkimSignerClass };
const { writeToStream } = require('mailauth/lib/tools.js') as { writeToStream(stream: NodeJS.WritableStream, input: Buffer): Promise<void> };

/** Signed header fields (in addition to what RFC 6376 §5.4.1 requires: From). */
export const SIGNED_HEADERS = [
  'From', 'Sender', 'Reply-To', 'Subject', 'Date', 'Message-ID', 'To', 'Cc',
  'MIME-Version', 'Content-Type', 'Content-Transfer-Encoding', 'Content-ID', 'Content-Description', 'Content-Language',
  'Resent-Date', 'Resent-From', 'Resent-Sender', 'Resent-To', 'Resent-Cc', 'Resent-Message-ID',
  'In-Reply-To', 'References',
  'List-Id', 'List-Help', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Subscribe', 'List-Post', 'List-Owner', 'List-Archive',
  'Autocrypt', 'BIMI-Selector',
];

/**
 * Fields signed once more than they occur. Each may appear only once (RFC 5322 §3.6), so a second
 * one can only be an addition meant to be displayed instead of the signed one. Fields a mailing
 * list may legitimately add (Reply-To, Cc, List-*) are not over-signed.
 */
export const OVERSIGNED_HEADERS = ['From', 'Subject', 'Date', 'Message-ID', 'Content-Type', 'MIME-Version'];

class OversigningDkimSigner extends DkimSigner {
  override async messageHeaders(headers: { parsed: ParsedHeader[] }): Promise<void> {
    const wanted = new Set(OVERSIGNED_HEADERS.map((name) => name.toLowerCase()));
    // mailauth builds h= from the bottom up; the topmost instance is the last one of its name there,
    // so its name repeated right after it resolves, for the verifier, to "no further instance".
    for (const header of headers.parsed) {
      if (header.key && header.casedKey && wanted.has(header.key)) {
        header.casedKey = `${header.casedKey}: ${header.casedKey}`;
        wanted.delete(header.key);
      }
    }
    return super.messageHeaders(headers);
  }
}

export interface SignOptions {
  /** The t= tag; default now. */
  signTime?: Date;
  /** Not needed for signing (no DNS lookups); accepted so callers can pass their DNS options through. */
  resolver?: unknown;
}

export class DkimSignError extends Error {}

/**
 * Signs a message with every key given (the keys of its From: domain, chosen by the caller) and
 * returns the DKIM-Signature header fields followed by the message. No keys: the message as is.
 * Throws DkimSignError when a key cannot sign (a broken private key), rather than sending unsigned.
 */
export async function signMessage(message: Buffer, keys: DkimKey[], options: SignOptions = {}): Promise<Buffer> {
  if (keys.length === 0) return message;
  const signer = new OversigningDkimSigner({
    canonicalization: 'relaxed/relaxed',
    headerList: SIGNED_HEADERS.join(':'),
    signTime: options.signTime ?? new Date(),
    signatureData: keys.map((key) => ({
      signingDomain: key.domain,
      selector: key.selector,
      privateKey: key.privateKey,
      algorithm: key.algorithm === 'ed25519' ? 'ed25519-sha256' : 'rsa-sha256',
      canonicalization: 'relaxed/relaxed',
    })),
  });
  await writeToStream(signer, message);
  if (signer.errors.length > 0) {
    const first = signer.errors[0]!;
    throw new DkimSignError(`DKIM signing failed for ${first.selector ?? '?'}._domainkey.${first.signingDomain ?? '?'}: ${first.err?.message ?? String(first.err)}`);
  }
  if (signer.signatureHeaders.length === 0) return message;
  return Buffer.concat([Buffer.from(signer.signatureHeaders.join('\r\n') + '\r\n', 'utf8'), message]);
}

/** The d= and s= of each DKIM-Signature field of the header section, with the field's byte range. */
export function dkimSignatures(message: Buffer): Array<{ domain: string; selector: string; start: number; end: number }> {
  const found: Array<{ domain: string; selector: string; start: number; end: number }> = [];
  for (const field of parseMessage(message).root.headers) {
    if (field.name.toLowerCase() !== 'dkim-signature') continue;
    // RFC 6376 §3.2 tag=value list; folding whitespace was unfolded by the parser.
    const tag = (name: string) => new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*([^;\\s]+)`).exec(field.value)?.[1] ?? '';
    found.push({ domain: tag('d').toLowerCase(), selector: tag('s').toLowerCase(), start: field.start, end: field.end });
  }
  return found;
}

/**
 * Signs a message again after it was changed on the way (a 7-bit conversion for a server without
 * 8BITMIME changes its body): the signatures made with `keys` are removed and made anew. Other
 * signatures (the original sender's, on forwarded mail) are left as they are. Unchanged when none
 * of the signatures is one of ours.
 */
export async function signAgain(message: Buffer, keys: DkimKey[], options: SignOptions = {}): Promise<Buffer> {
  const ours = (s: { domain: string; selector: string }) => keys.some((k) => k.domain.toLowerCase() === s.domain && k.selector.toLowerCase() === s.selector);
  const signatures = dkimSignatures(message).filter(ours);
  if (signatures.length === 0) return message;
  const pieces: Buffer[] = [];
  let at = 0;
  for (const s of signatures.sort((a, b) => a.start - b.start)) {
    pieces.push(message.subarray(at, s.start));
    at = s.end;
  }
  pieces.push(message.subarray(at));
  const domains = new Set(signatures.map((s) => s.domain));
  return signMessage(Buffer.concat(pieces), keys.filter((k) => domains.has(k.domain.toLowerCase())), options);
}
