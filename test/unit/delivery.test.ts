import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitsQuota, normalizeAddress } from '../../src/delivery/recipients.js';
import { crlfSizeOf, ensureFinalCrlf, normalizeLineEndings } from '../../src/mime/line-endings.js';
import { policySchema } from '../../src/config/schema.js';

test('normalizeAddress lower-cases and spots routing tricks', () => {
  assert.deepEqual(normalizeAddress('Bob@EXAMPLE.Test.'), { local: 'bob', domain: 'example.test', routing: null });
  assert.deepEqual(normalizeAddress('"bob"@example.test'), { local: 'bob', domain: 'example.test', routing: null });
  for (const tricky of ['bob%other.org@example.test', 'other.org!bob@example.test', '"bob@other.org"@example.test', 'bob@[127.0.0.1]', '"a b"@example.test']) {
    assert.notEqual(normalizeAddress(tricky)?.routing, null, tricky);
  }
  for (const invalid of ['', 'bob', '@example.test', 'bob@']) assert.equal(normalizeAddress(invalid), null, invalid);
});

test('fitsQuota counts bytes and messages, and a full mailbox refuses unknown sizes', () => {
  const policy = policySchema.parse({ quota: '10K', quota_messages: 3 });
  assert.equal(fitsQuota({ bytes: 0, messages: 0 }, 10240, policy), true);
  assert.equal(fitsQuota({ bytes: 1, messages: 0 }, 10240, policy), false);
  assert.equal(fitsQuota({ bytes: 10239, messages: 0 }, 0, policy), true);
  assert.equal(fitsQuota({ bytes: 10240, messages: 0 }, 0, policy), false);
  assert.equal(fitsQuota({ bytes: 0, messages: 3 }, 1, policy), false);
  assert.equal(fitsQuota({ bytes: 1e12, messages: 1e6 }, 1e9, policySchema.parse({ quota: 'none' })), true);
});

test('normalizeLineEndings turns bare CR and bare LF into CRLF and leaves clean input alone', () => {
  const clean = Buffer.from('a\r\nb\r\n');
  assert.equal(normalizeLineEndings(clean), clean);
  assert.equal(normalizeLineEndings(Buffer.from('a\nb\rc\r\n\n.\n')).toString(), 'a\r\nb\r\nc\r\n\r\n.\r\n');
  assert.equal(normalizeLineEndings(Buffer.from('\r\r\n')).toString(), '\r\n\r\n');
  assert.equal(ensureFinalCrlf(Buffer.from('x')).toString(), 'x\r\n');
  assert.equal(ensureFinalCrlf(Buffer.from('x\r\n')).toString(), 'x\r\n');
});

test('crlfSizeOf is the length of the normalized message, for any mix of line ends', () => {
  const alphabet = [0x0d, 0x0a, 0x2e, 0x61];
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  for (let n = 0; n < 5000; n++) {
    const bytes = Buffer.from(Array.from({ length: random() % 12 }, () => alphabet[random() % alphabet.length]!));
    assert.equal(crlfSizeOf(bytes), ensureFinalCrlf(normalizeLineEndings(bytes)).length, JSON.stringify(bytes.toString('latin1')));
  }
});
