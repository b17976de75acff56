// DKIM keys and signing: keys made by src/dkim/keys.ts, messages signed by src/dkim/sign.ts and
// verified by mailauth's verifier against an in-memory DNS.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { dkimVerify } from 'mailauth';
import { dkimPublicKeyObject, dkimTxtRecord, generateDkimKey, type DkimAlgorithm } from '../../src/dkim/keys.js';
import { OVERSIGNED_HEADERS, signMessage } from '../../src/dkim/sign.js';
import { quoteTxt } from '../../src/dkim/dns-records.js';
import type { DkimKey } from '../../src/store/types.js';

/** An in-memory resolver with Node's dns.promises.resolve shapes and error codes. */
function memoryResolver(txt: Record<string, string[]>) {
  return async (name: string, rrtype: string): Promise<string[][]> => {
    const key = name.toLowerCase().replace(/\.$/, '');
    const records = rrtype === 'TXT' ? txt[key] : undefined;
    if (!records) {
      const err = new Error(`${rrtype} ${name}: not found`) as Error & { code: string };
      err.code = Object.keys(txt).some((n) => n === key) ? 'ENODATA' : 'ENOTFOUND';
      throw err;
    }
    // TXT answers come as arrays of strings (the 255-octet pieces).
    return records.map((r) => r.match(/.{1,255}/g) ?? ['']);
  };
}

function makeKey(algorithm: DkimAlgorithm, selector: string, domain = 'example.com'): DkimKey {
  return { domain, selector, algorithm, ...generateDkimKey(algorithm), createdAt: new Date() };
}

const MESSAGE = Buffer.from(
  [
    'From: Alice <alice@example.com>',
    'To: Bob <bob@example.net>',
    'Subject: Quarterly drawings',
    'Date: Tue, 01 Dec 2026 10:00:00 +0900',
    'Message-ID: <drawings-1@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'List-Unsubscribe: <mailto:unsubscribe@example.com>',
    '',
    'Hello Bob,',
    '',
    'the drawings are attached.   ',
    '',
  ].join('\r\n'),
);

describe('DKIM keys', () => {
  it('RSA: 2048-bit PKCS#8 private key, p= is the SPKI DER of its public key', () => {
    const key = generateDkimKey('rsa');
    assert.match(key.privateKey, /^-----BEGIN PRIVATE KEY-----/);
    const priv = crypto.createPrivateKey(key.privateKey);
    assert.equal(priv.asymmetricKeyType, 'rsa');
    assert.equal(priv.asymmetricKeyDetails?.modulusLength, 2048);
    const pub = crypto.createPublicKey({ key: Buffer.from(key.publicKey, 'base64'), format: 'der', type: 'spki' });
    assert.deepEqual(pub.export({ format: 'jwk' }), crypto.createPublicKey(priv).export({ format: 'jwk' }));
    assert.equal(dkimTxtRecord({ algorithm: 'rsa', publicKey: key.publicKey }), `v=DKIM1; k=rsa; p=${key.publicKey}`);
  });

  it('Ed25519: p= is the raw 32-byte public key (RFC 8463 §4.2)', () => {
    const key = generateDkimKey('ed25519');
    const priv = crypto.createPrivateKey(key.privateKey);
    assert.equal(priv.asymmetricKeyType, 'ed25519');
    assert.equal(Buffer.from(key.publicKey, 'base64').length, 32);
    const jwk = crypto.createPublicKey(priv).export({ format: 'jwk' });
    assert.equal(Buffer.from(jwk.x!, 'base64url').toString('base64'), key.publicKey);
    assert.deepEqual(dkimPublicKeyObject('ed25519', key.publicKey).export({ format: 'jwk' }), jwk);
    assert.equal(dkimTxtRecord({ algorithm: 'ed25519', publicKey: key.publicKey }), `v=DKIM1; k=ed25519; p=${key.publicKey}`);
  });

  it('TXT values are quoted in pieces of at most 255 octets', () => {
    const value = dkimTxtRecord({ algorithm: 'rsa', publicKey: generateDkimKey('rsa').publicKey });
    const quoted = quoteTxt(value);
    const pieces = [...quoted.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    assert.ok(pieces.length >= 2);
    assert.ok(pieces.every((p) => p.length <= 255));
    assert.equal(pieces.join(''), value);
  });
});

describe('signMessage', () => {
  const rsa = makeKey('rsa', 'yubin');
  const ed = makeKey('ed25519', 'yubin-ed25519');
  const resolver = memoryResolver({
    'yubin._domainkey.example.com': [dkimTxtRecord(rsa)],
    'yubin-ed25519._domainkey.example.com': [dkimTxtRecord(ed)],
  });

  it('without keys returns the message unchanged', async () => {
    assert.equal(await signMessage(MESSAGE, []), MESSAGE);
  });

  it('prepends one relaxed/relaxed signature per key, both verify', async () => {
    const signed = await signMessage(MESSAGE, [rsa, ed]);
    assert.ok(signed.subarray(signed.length - MESSAGE.length).equals(MESSAGE), 'the message follows the signatures unchanged');
    const head = signed.subarray(0, signed.length - MESSAGE.length).toString();
    assert.equal((head.match(/^DKIM-Signature:/gm) ?? []).length, 2);
    assert.match(head, /a=rsa-sha256/);
    assert.match(head, /a=ed25519-sha256/);
    assert.match(head, /c=relaxed\/relaxed/);
    assert.ok(!/[^\r]\n/.test(head), 'CRLF line ends');

    const result = await dkimVerify(signed, { resolver });
    assert.equal(result.results.length, 2);
    for (const r of result.results) {
      assert.equal(r.status.result, 'pass', r.info);
      assert.equal(r.signingDomain, 'example.com');
    }
    assert.deepEqual(result.results.map((r) => r.selector).sort(), ['yubin', 'yubin-ed25519']);
  });

  it('signs the usual header fields and over-signs From', async () => {
    const signed = (await signMessage(MESSAGE, [rsa])).toString();
    const h = /\bh=([^;]+);/.exec(signed.replace(/\r\n[ \t]+/g, ' '))![1]!.split(':').map((s) => s.trim().toLowerCase());
    for (const name of ['from', 'to', 'subject', 'date', 'message-id', 'mime-version', 'content-type', 'list-unsubscribe']) {
      assert.ok(h.includes(name), `h= includes ${name}: ${h.join(':')}`);
    }
    assert.equal(h.filter((n) => n === 'from').length, 2, 'From is listed once more than it occurs');
    assert.ok(OVERSIGNED_HEADERS.includes('From'));
  });

  it('a changed body fails both signatures', async () => {
    const signed = await signMessage(MESSAGE, [rsa, ed]);
    const tampered = Buffer.from(signed.toString().replace('the drawings are attached.', 'the invoice is attached.'));
    const result = await dkimVerify(tampered, { resolver });
    assert.equal(result.results.length, 2);
    // mailauth (like Gmail) reports a body hash mismatch as "neutral (body hash did not verify)".
    for (const r of result.results) {
      assert.notEqual(r.status.result, 'pass', r.info);
      assert.match(r.info, /^dkim=(fail|neutral \(body hash did not verify\))/);
    }
  });

  it('a changed signed header fails both signatures', async () => {
    const signed = await signMessage(MESSAGE, [rsa, ed]);
    const tampered = Buffer.from(signed.toString().replace('Subject: Quarterly drawings', 'Subject: Urgent payment'));
    const result = await dkimVerify(tampered, { resolver });
    for (const r of result.results) assert.equal(r.status.result, 'fail', r.info);
  });

  it('a second From added after signing fails (over-signing)', async () => {
    const signed = await signMessage(MESSAGE, [rsa, ed]);
    const tampered = Buffer.concat([Buffer.from('From: CEO <ceo@example.com>\r\n'), signed]);
    const result = await dkimVerify(tampered, { resolver });
    for (const r of result.results) assert.equal(r.status.result, 'fail', r.info);
  });

  it('a header field not signed may be added (Received on the way) and both still verify', async () => {
    const signed = await signMessage(MESSAGE, [rsa, ed]);
    const relayed = Buffer.concat([Buffer.from('Received: from mx.example.com by mx.example.net; Tue, 01 Dec 2026 10:00:01 +0900\r\n'), signed]);
    const result = await dkimVerify(relayed, { resolver });
    for (const r of result.results) assert.equal(r.status.result, 'pass', r.info);
  });
});
