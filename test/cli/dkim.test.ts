// `yubin dkim generate|list` and `yubin dns-records` through the real CLI on throwaway data directories.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { cli, cliOk, makeDataDir, writeConfig } from '../helpers/yubin.js';

const dirs: string[] = [];
function dataDir(): string {
  const dir = makeDataDir('yubin-dkim-');
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

interface TxtLine {
  name: string;
  value: string;
}

/** The "NAME IN TXT "..." "..."" lines of the output, with the quoted pieces joined. */
function txtLines(output: string): TxtLine[] {
  return output
    .split('\n')
    .filter((line) => / IN TXT "/.test(line) && !line.startsWith(';'))
    .map((line) => {
      const name = line.slice(0, line.indexOf(' '));
      const pieces = [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
      assert.ok(pieces.every((p) => p.length <= 255), `TXT pieces of at most 255 octets: ${line}`);
      return { name, value: pieces.join('') };
    });
}

function publicKeyOf(value: string): crypto.KeyObject {
  const tags = Object.fromEntries(value.split(';').map((t) => t.trim().split('=', 2) as [string, string]).filter(([k]) => k));
  assert.equal(tags.v, 'DKIM1');
  const der = Buffer.from(value.slice(value.indexOf('p=') + 2), 'base64');
  if (tags.k === 'ed25519') {
    assert.equal(der.length, 32);
    return crypto.createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), der]), format: 'der', type: 'spki' });
  }
  assert.equal(tags.k, 'rsa');
  return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
}

describe('yubin dkim', () => {
  let dir: string;
  let generated: string;
  before(() => {
    dir = dataDir();
    writeConfig(dir, 'hostname = "mx.example.com"\n');
    cliOk(dir, ['domain', 'add', 'example.com']);
    generated = cliOk(dir, ['dkim', 'generate', 'example.com']);
  });

  it('generate makes an RSA 2048 and an Ed25519 key by default and prints their TXT records', () => {
    const records = txtLines(generated);
    assert.deepEqual(records.map((r) => r.name), ['yubin._domainkey.example.com.', 'yubin-ed25519._domainkey.example.com.']);
    const rsa = publicKeyOf(records[0]!.value);
    assert.equal(rsa.asymmetricKeyType, 'rsa');
    assert.equal(rsa.asymmetricKeyDetails?.modulusLength, 2048);
    assert.match(records[0]!.value, /^v=DKIM1; k=rsa; p=/);
    const ed = publicKeyOf(records[1]!.value);
    assert.equal(ed.asymmetricKeyType, 'ed25519');
    assert.match(records[1]!.value, /^v=DKIM1; k=ed25519; p=/);
  });

  it('a second generate with the same selector fails and keeps the keys', () => {
    const again = cli(dir, ['dkim', 'generate', 'example.com']);
    assert.equal(again.status, 1);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
    assert.match(again.stderr, /already has a DKIM key with selector yubin/);
    const rsaOnly = cli(dir, ['dkim', 'generate', 'example.com', '--algorithm', 'rsa', '--selector', 'yubin']);
    assert.equal(rsaOnly.status, 1);
    assert.match(rsaOnly.stderr, /already has a DKIM key with selector yubin\b/);
    const keys = JSON.parse(cliOk(dir, ['dkim', 'list', '--json'])) as Array<{ value: string }>;
    assert.deepEqual(keys.map((k) => k.value).sort(), txtLines(generated).map((r) => r.value).sort(), 'the stored keys are unchanged');
  });

  it('a new selector and a single algorithm', () => {
    const out = cliOk(dir, ['dkim', 'generate', 'example.com', '--selector', 's2027', '--algorithm', 'ed25519']);
    const records = txtLines(out);
    assert.deepEqual(records.map((r) => r.name), ['s2027._domainkey.example.com.']);
    assert.equal(publicKeyOf(records[0]!.value).asymmetricKeyType, 'ed25519');
  });

  it('an unknown domain and bad options fail with one line', () => {
    const unknown = cli(dir, ['dkim', 'generate', 'other.example']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /^yubin: unknown domain other\.example/);
    assert.equal(unknown.stderr.trim().split('\n').length, 1);
    const badAlgo = cli(dir, ['dkim', 'generate', 'example.com', '--algorithm', 'dsa']);
    assert.equal(badAlgo.status, 2);
    assert.match(badAlgo.stderr, /--algorithm must be rsa, ed25519 or both/);
    const badSelector = cli(dir, ['dkim', 'generate', 'example.com', '--selector', 'bad selector!']);
    assert.equal(badSelector.status, 2);
    assert.equal(cli(dir, ['dkim', 'list', 'other.example']).status, 1);
  });

  it('list shows domain, selector, algorithm and creation time; --json too', () => {
    const rows = JSON.parse(cliOk(dir, ['dkim', 'list', '--json'])) as Array<{ domain: string; selector: string; algorithm: string; createdAt: string; name: string; value: string }>;
    const bySelector = Object.fromEntries(rows.map((r) => [r.selector, r]));
    assert.equal(bySelector.yubin?.algorithm, 'rsa');
    assert.equal(bySelector['yubin-ed25519']?.algorithm, 'ed25519');
    assert.equal(bySelector.s2027?.algorithm, 'ed25519');
    for (const row of rows) {
      assert.equal(row.domain, 'example.com');
      assert.ok(!Number.isNaN(Date.parse(row.createdAt)));
      assert.ok(!('privateKey' in row), 'private keys are never printed');
    }
    const text = cliOk(dir, ['dkim', 'list', 'example.com']);
    assert.match(text, /example\.com\tselector: yubin\talgorithm: rsa\tcreated: \d{4}-/);
    assert.ok(!text.includes('PRIVATE KEY'));
  });
});

describe('yubin dns-records', () => {
  let dir: string;
  before(() => {
    dir = dataDir();
    writeConfig(dir, 'hostname = "mx.example.com"\n');
    cliOk(dir, ['domain', 'add', 'example.com']);
  });

  it('without keys: tells to run dkim generate first', () => {
    const out = cliOk(dir, ['dns-records', 'example.com']);
    assert.match(out, /yubin dkim generate example\.com/);
    assert.ok(!/_domainkey/.test(out));
  });

  it('prints MX, SPF, DKIM, DMARC, MTA-STS and TLS-RPT records with a comment each', () => {
    const generated = txtLines(cliOk(dir, ['dkim', 'generate', 'example.com']));
    const out = cliOk(dir, ['dns-records', 'example.com']);
    assert.match(out, /^example\.com\. IN MX 10 mx\.example\.com\.$/m);
    const txt = txtLines(out);
    const value = (name: string) => txt.filter((r) => r.name === name).map((r) => r.value);
    assert.deepEqual(value('example.com.'), ['v=spf1 mx -all']);
    for (const key of generated) assert.deepEqual(value(key.name), [key.value], `DKIM record ${key.name}`);
    assert.deepEqual(value('_dmarc.example.com.'), ['v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com; adkim=r; aspf=r']);
    assert.match(value('_mta-sts.example.com.')[0]!, /^v=STSv1; id=\d{14}$/);
    assert.deepEqual(value('_smtp._tls.example.com.'), ['v=TLSRPTv1; rua=mailto:postmaster@example.com']);
    // The MTA-STS policy file, and a comment before every record.
    assert.match(out, /https:\/\/mta-sts\.example\.com\/\.well-known\/mta-sts\.txt/);
    for (const line of ['version: STSv1', 'mode: testing', 'mx: mx.example.com', 'max_age: 604800']) assert.ok(out.includes(line), line);
    const lines = out.trimEnd().split('\n');
    lines.forEach((line, i) => {
      if (!line.startsWith(';')) assert.ok(lines[i - 1]?.startsWith(';'), `a comment before: ${line}`);
    });
  });

  it('--json gives {name, type, value, purpose} for every record', () => {
    const records = JSON.parse(cliOk(dir, ['dns-records', 'example.com', '--json'])) as Array<{ name: string; type: string; value: string; purpose: string }>;
    const find = (name: string, type = 'TXT') => records.filter((r) => r.name === name && r.type === type);
    assert.deepEqual(find('example.com.', 'MX').map((r) => r.value), ['10 mx.example.com.']);
    assert.deepEqual(find('example.com.').map((r) => r.value), ['v=spf1 mx -all']);
    const dkim = records.filter((r) => r.name.endsWith('._domainkey.example.com.'));
    assert.equal(dkim.length, 2);
    for (const r of dkim) publicKeyOf(r.value);
    assert.equal(find('_dmarc.example.com.').length, 1);
    assert.equal(find('_mta-sts.example.com.').length, 1);
    assert.equal(find('_smtp._tls.example.com.').length, 1);
    for (const r of records) {
      assert.deepEqual(Object.keys(r).sort(), ['name', 'purpose', 'type', 'value']);
      assert.ok(r.purpose.length > 0);
    }
  });

  it('an unknown domain fails with one line', () => {
    const result = cli(dir, ['dns-records', 'unknown.example']);
    assert.equal(result.status, 1);
    assert.match(result.stderr, /^yubin: unknown domain unknown\.example/);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.equal(cli(dir, ['dns-records']).status, 2);
  });
});
