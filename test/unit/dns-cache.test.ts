// The resolver's answer cache: answers and negative answers are reused for dns.cache, temporary
// failures are not, and concurrent lookups of one name share a query. Against a real DNS server.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DnsResolver } from '../../src/dns/resolver.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

describe('DnsResolver cache', () => {
  let dns: TestDnsServer;
  before(async () => {
    dns = await startDnsServer({ txt: { 'a.test': ['v=spf1 -all'] }, servfail: ['broken.test'] });
  });
  after(() => dns.close());

  const asked = (name: string, type: string) => dns.queries.filter((q) => q.name === name && q.type === type).length;

  it('reuses an answer and an NXDOMAIN within the cache time, then asks again', async () => {
    dns.queries.length = 0;
    const resolver = new DnsResolver({ servers: [dns.address], timeoutSeconds: 2, cacheSeconds: 0.5 });
    const lookup = resolver.mailauthResolver();
    assert.deepEqual(await lookup('a.test', 'TXT'), [['v=spf1 -all']]);
    assert.deepEqual(await lookup('A.TEST.', 'TXT'), [['v=spf1 -all']]);
    await assert.rejects(lookup('missing.test', 'TXT'), (err: { code?: string }) => err.code === 'ENOTFOUND');
    await assert.rejects(lookup('missing.test', 'TXT'), (err: { code?: string }) => err.code === 'ENOTFOUND');
    assert.equal(asked('a.test', 'TXT'), 1);
    assert.equal(asked('missing.test', 'TXT'), 1);
    await new Promise((resolve) => setTimeout(resolve, 600));
    await lookup('a.test', 'TXT');
    assert.equal(asked('a.test', 'TXT'), 2, 'asked again after the cache time');
  });

  it('never caches a temporary failure, and shares one query between concurrent lookups', async () => {
    dns.queries.length = 0;
    const resolver = new DnsResolver({ servers: [dns.address], timeoutSeconds: 2, cacheSeconds: 60 });
    const lookup = resolver.mailauthResolver();
    await assert.rejects(lookup('broken.test', 'TXT'));
    await assert.rejects(lookup('broken.test', 'TXT'));
    assert.ok(asked('broken.test', 'TXT') >= 2, 'SERVFAIL is asked again');
    const answers = await Promise.all(Array.from({ length: 20 }, () => lookup('a.test', 'TXT')));
    assert.equal(answers.length, 20);
    assert.equal(asked('a.test', 'TXT'), 1);
  });

  it('with cacheSeconds 0 asks every time', async () => {
    dns.queries.length = 0;
    const lookup = new DnsResolver({ servers: [dns.address], timeoutSeconds: 2 }).mailauthResolver();
    await lookup('a.test', 'TXT');
    await lookup('a.test', 'TXT');
    assert.equal(asked('a.test', 'TXT'), 2);
  });
});
