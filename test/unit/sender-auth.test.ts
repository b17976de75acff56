// Inbound sender authentication (src/smtp/sender-auth.ts): SPF, DKIM, DMARC and ARC results in an
// Authentication-Results header, and the DMARC policy decision, against an in-memory DNS.

import { describe, it } from 'node:test';
import { authenticate } from 'mailauth';
import assert from 'node:assert/strict';
import { dkimTxtRecord, generateDkimKey } from '../../src/dkim/keys.js';
import { signMessage } from '../../src/dkim/sign.js';
import { checkSenderAuth, formatAuthenticationResults, type SenderAuthResult } from '../../src/smtp/sender-auth.js';
import type { DkimKey } from '../../src/store/types.js';

type Zone = Record<string, string[]>;

/** TXT records only (all these checks need); errors with Node's dns codes. */
function memoryResolver(txt: Zone, lookups: string[] = []) {
  return async (name: string, rrtype: string): Promise<unknown> => {
    const key = name.toLowerCase().replace(/\.$/, '');
    lookups.push(`${rrtype} ${key}`);
    const records = rrtype === 'TXT' ? txt[key] : undefined;
    if (!records) {
      const err = new Error(`query${rrtype} ${name} ENOTFOUND`) as Error & { code: string };
      err.code = key in txt ? 'ENODATA' : 'ENOTFOUND';
      throw err;
    }
    return records.map((r) => r.match(/.{1,255}/g) ?? ['']);
  };
}

function message(from: string, subject = 'Hello'): Buffer {
  return Buffer.from(
    [`From: ${from}`, 'To: user@yubin.example.org', `Subject: ${subject}`, 'Date: Tue, 01 Dec 2026 10:00:00 +0900', `Message-ID: <${Math.random().toString(36).slice(2)}@test>`, '', 'Body text.', ''].join('\r\n'),
  );
}

function assertWellFormedHeader(result: SenderAuthResult, host: string): void {
  assert.ok(result.header.startsWith(`Authentication-Results: ${host};\r\n `), result.header);
  assert.ok(result.header.endsWith('\r\n'));
  assert.ok(!result.header.endsWith('\r\n\r\n'));
  // Every line break is CRLF followed by whitespace (a folded continuation), except the last.
  const body = result.header.slice(0, -2);
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(body), 'only CRLF');
  assert.ok(body.split('\r\n').slice(1).every((line) => /^[ \t]\S/.test(line)), result.header);
  assert.ok(body.split('\r\n').every((line) => line.length <= 998));
}

const HOST = 'mx.yubin.example.org';

describe('checkSenderAuth', () => {
  const keys: DkimKey[] = [
    { domain: 'example.com', selector: 'yubin', algorithm: 'rsa', ...generateDkimKey('rsa'), createdAt: new Date() },
    { domain: 'example.com', selector: 'yubin-ed25519', algorithm: 'ed25519', ...generateDkimKey('ed25519'), createdAt: new Date() },
  ];
  const zone: Zone = {
    'example.com': ['v=spf1 ip4:127.0.0.1 -all'],
    '_dmarc.example.com': ['v=DMARC1; p=reject; adkim=r; aspf=r'],
    'yubin._domainkey.example.com': [dkimTxtRecord(keys[0]!)],
    'yubin-ed25519._domainkey.example.com': [dkimTxtRecord(keys[1]!)],
    'bank.example.net': ['v=spf1 ip4:192.0.2.1 -all'],
    '_dmarc.bank.example.net': ['v=DMARC1; p=reject'],
    'shop.example.net': ['v=spf1 ip4:192.0.2.1 -all'],
    '_dmarc.shop.example.net': ['v=DMARC1; p=none; rua=mailto:d@shop.example.net'],
    'news.example.net': ['v=spf1 ip4:192.0.2.1 -all'],
    '_dmarc.news.example.net': ['v=DMARC1; p=quarantine'],
    'partly.example.net': ['v=spf1 ip4:192.0.2.1 -all'],
    '_dmarc.partly.example.net': ['v=DMARC1; p=reject; pct=0'],
  };
  const resolver = memoryResolver(zone);

  it('signed mail from an SPF-allowed IP: spf=pass dkim=pass dmarc=pass', async () => {
    const signed = await signMessage(message('Alice <alice@example.com>'), keys);
    const result = await checkSenderAuth(signed, { ip: '127.0.0.1', helo: 'mail.example.com', mailFrom: 'alice@example.com' }, { hostname: HOST, resolver });
    assert.deepEqual(result.summary, { spf: 'pass', dkim: 'pass', dmarc: 'pass', arc: 'none' });
    assert.equal(result.dmarcReject, false);
    assert.equal(result.dmarcQuarantine, false);
    assertWellFormedHeader(result, HOST);
    const unfolded = result.header.replace(/\r\n[ \t]+/g, ' ');
    assert.match(unfolded, /spf=pass .*smtp\.mailfrom=alice@example\.com/);
    assert.equal((unfolded.match(/dkim=pass/g) ?? []).length, 2, 'both signatures pass');
    assert.match(unfolded, /dmarc=pass .*header\.from=example\.com/);
    assert.match(unfolded, /arc=none/);
    assert.ok(result.header.split('\r\n').every((line) => line.length <= 78), 'folded to 78 columns');
  });

  it('spoofed From of a p=reject domain, unsigned, from an IP SPF does not allow: dmarcReject', async () => {
    const result = await checkSenderAuth(message('Bank <security@bank.example.net>'), { ip: '203.0.113.9', helo: 'evil.example', mailFrom: 'security@bank.example.net' }, { hostname: HOST, resolver });
    assert.equal(result.summary.spf, 'fail');
    assert.equal(result.summary.dkim, 'none');
    assert.equal(result.summary.dmarc, 'fail');
    assert.equal(result.dmarcReject, true);
    assert.match(result.header.replace(/\r\n[ \t]+/g, ' '), /dmarc=fail \(p=REJECT/);
    assertWellFormedHeader(result, HOST);
  });

  it('spoofed From with an envelope sender of another domain: SPF passes for that domain but DMARC fails', async () => {
    const result = await checkSenderAuth(message('Bank <security@bank.example.net>'), { ip: '127.0.0.1', helo: 'mail.example.com', mailFrom: 'bounce@example.com' }, { hostname: HOST, resolver });
    assert.equal(result.summary.spf, 'pass');
    assert.equal(result.summary.dmarc, 'fail', 'SPF is not aligned with the From domain');
    assert.equal(result.dmarcReject, true);
  });

  it('the same with p=none: recorded as dmarc=fail, not rejected', async () => {
    const result = await checkSenderAuth(message('Shop <orders@shop.example.net>'), { ip: '203.0.113.9', helo: 'evil.example', mailFrom: 'orders@shop.example.net' }, { hostname: HOST, resolver });
    assert.equal(result.summary.dmarc, 'fail');
    assert.equal(result.dmarcReject, false);
    assert.equal(result.dmarcQuarantine, false);
    assert.match(result.header, /dmarc=fail/);
  });

  it('p=quarantine: dmarcQuarantine; p=reject with pct=0: quarantine instead of reject (RFC 7489 §6.6.4)', async () => {
    const quarantine = await checkSenderAuth(message('n@news.example.net'), { ip: '203.0.113.9', helo: 'x.example', mailFrom: 'n@news.example.net' }, { hostname: HOST, resolver });
    assert.equal(quarantine.dmarcReject, false);
    assert.equal(quarantine.dmarcQuarantine, true);
    const partly = await checkSenderAuth(message('p@partly.example.net'), { ip: '203.0.113.9', helo: 'x.example', mailFrom: 'p@partly.example.net' }, { hostname: HOST, resolver, random: () => 0.5 });
    assert.equal(partly.summary.dmarc, 'fail');
    assert.equal(partly.dmarcReject, false);
    assert.equal(partly.dmarcQuarantine, true);
  });

  it('a tampered signed message: dkim=fail, DMARC still passes on aligned SPF', async () => {
    const signed = await signMessage(message('Alice <alice@example.com>', 'Invoice'), keys);
    const tampered = Buffer.from(signed.toString().replace('Subject: Invoice', 'Subject: Invoice (new bank account)'));
    const result = await checkSenderAuth(tampered, { ip: '127.0.0.1', helo: 'mail.example.com', mailFrom: 'alice@example.com' }, { hostname: HOST, resolver });
    assert.equal(result.summary.dkim, 'fail');
    assert.equal(result.summary.dmarc, 'pass');
    assert.equal(result.dmarcReject, false);
  });

  it('two From addresses: dmarc=permerror recorded (DMARC cannot be evaluated)', async () => {
    const twoFroms = Buffer.from(`From: security@bank.example.net\r\n${message('other@example.org').toString()}`);
    const result = await checkSenderAuth(twoFroms, { ip: '203.0.113.9', helo: 'evil.example', mailFrom: 'x@example.org' }, { hostname: HOST, resolver });
    assert.equal(result.summary.dmarc, 'permerror');
    assert.match(result.header, /dmarc=permerror/);
  });

  it('a DNS timeout never throws: temperror is recorded', async () => {
    const timingOut = async (name: string, rrtype: string): Promise<unknown> => {
      const err = new Error(`query${rrtype} ${name} ETIMEOUT`) as Error & { code: string };
      err.code = 'ETIMEOUT';
      throw err;
    };
    const signed = await signMessage(message('Alice <alice@example.com>'), keys);
    const result = await checkSenderAuth(signed, { ip: '127.0.0.1', helo: 'mail.example.com', mailFrom: 'alice@example.com' }, { hostname: HOST, resolver: timingOut });
    assert.equal(result.summary.spf, 'temperror');
    assert.equal(result.summary.dkim, 'temperror');
    assert.equal(result.summary.dmarc, 'temperror');
    assert.equal(result.dmarcReject, false);
    assert.match(result.header, /spf=temperror/);
    assertWellFormedHeader(result, HOST);
  });

  it('a lookup that never answers counts as a timeout after queryTimeoutMs', async () => {
    const hanging = () => new Promise<unknown>(() => {});
    const started = Date.now();
    const result = await checkSenderAuth(message('a@example.com'), { ip: '127.0.0.1', helo: 'h.example', mailFrom: 'a@example.com' }, { hostname: HOST, resolver: hanging, queryTimeoutMs: 50 });
    assert.equal(result.summary.spf, 'temperror');
    assert.ok(Date.now() - started < 5000);
  });

  it('a resolver throwing without a code (or synchronously) still gives a result', async () => {
    const broken = (): Promise<unknown> => {
      throw new Error('resolver exploded');
    };
    const result = await checkSenderAuth(message('a@example.com'), { ip: '127.0.0.1', helo: 'h.example', mailFrom: 'a@example.com' }, { hostname: HOST, resolver: broken });
    assert.equal(result.summary.spf, 'temperror');
    assert.equal(result.dmarcReject, false);
  });

  it('mail sealed by a forwarder (ARC, RFC 8617, sealed with mailauth) gets arc=pass; a broken seal arc=fail', async () => {
    const forwarderKey: DkimKey = { domain: 'forwarder.example', selector: 'arc', algorithm: 'rsa', ...generateDkimKey('rsa'), createdAt: new Date() };
    const withForwarder = memoryResolver({ ...zone, 'arc._domainkey.forwarder.example': [dkimTxtRecord(forwarderKey)] });
    const original = await signMessage(message('Alice <alice@example.com>', 'Forwarded'), keys);
    // The forwarder checks what it received and seals it (ARC-Authentication-Results, -Message-Signature, -Seal).
    const hop = await authenticate(original, {
      ip: '127.0.0.1',
      helo: 'mail.example.com',
      sender: 'alice@example.com',
      mta: 'mx.forwarder.example',
      resolver: (name: string, rrtype: string) => withForwarder(name, rrtype) as Promise<string[][]>,
      seal: { signingDomain: 'forwarder.example', selector: 'arc', privateKey: forwarderKey.privateKey },
    });
    const sealed = Buffer.concat([Buffer.from(hop.headers), original]);
    assert.match(sealed.toString(), /^ARC-Seal: i=1;/m);
    const result = await checkSenderAuth(sealed, { ip: '192.0.2.50', helo: 'mx.forwarder.example', mailFrom: 'alice@example.com' }, { hostname: HOST, resolver: withForwarder });
    assert.equal(result.summary.arc, 'pass', result.header);
    assert.match(result.header.replace(/\r\n[ \t]+/g, ' '), /arc=pass/);
    // A seal over other bytes: the chain does not verify.
    const broken = Buffer.from(sealed.toString().replace('Subject: Forwarded', 'Subject: Changed'));
    const failed = await checkSenderAuth(broken, { ip: '192.0.2.50', helo: 'mx.forwarder.example', mailFrom: 'alice@example.com' }, { hostname: HOST, resolver: withForwarder });
    assert.equal(failed.summary.arc, 'fail', failed.header);
  });
});

describe('formatAuthenticationResults', () => {
  it('folds long results at spaces and removes line breaks and control characters from the values', () => {
    const header = formatAuthenticationResults('mx.test', [
      'spf=pass (mx.test: domain of someone@example.com designates 127.0.0.1 as permitted sender) smtp.mailfrom=someone@example.com smtp.helo=mail.example.com',
      'dmarc=fail header.from=evil.example\r\nX-Injected: yes',
    ]);
    assert.ok(header.endsWith('\r\n'));
    const lines = header.slice(0, -2).split('\r\n');
    assert.equal(lines[0], 'Authentication-Results: mx.test;');
    assert.ok(lines.slice(1).every((l) => l.startsWith(' ') && l.length <= 78), header);
    assert.ok(!lines.some((l) => l.startsWith('X-Injected')));
    assert.match(header.replace(/\r\n /g, ' '), /spf=pass .* smtp\.helo=mail\.example\.com; dmarc=fail header\.from=evil\.example X-Injected: yes$/m);
  });
});
