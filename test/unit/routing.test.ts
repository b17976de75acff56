import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { dkimSign, dkimVerify, spf } from 'mailauth';
import { DnsError, DnsResolver, parseServerAddress } from '../../src/dns/resolver.js';
import { parseRelay, routeDomain, type Route, type RoutingOptions } from '../../src/queue/routing.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

let server: TestDnsServer;
let resolver: DnsResolver;
const direct: RoutingOptions = { port: 25, smarthost: '', transports: {} };
const longKey = `v=DKIM1; k=rsa; p=${'A'.repeat(300)}${'B'.repeat(300)}${'C'.repeat(100)}`;

before(async () => {
  server = await startDnsServer({
    mx: {
      'example.test': [
        { exchange: 'mx2.example.test', priority: 20 },
        { exchange: 'mx1.example.test', priority: 10 },
        { exchange: 'mx6.example.test', priority: 60 },
        { exchange: 'mx3.example.test', priority: 30 },
        { exchange: 'gone.example.test', priority: 40 },
      ],
      'tie.test': [
        { exchange: 'a.tie.test', priority: 5 },
        { exchange: 'b.tie.test', priority: 5 },
        { exchange: 'c.tie.test', priority: 9 },
      ],
      'nullmx.test': [{ exchange: '.', priority: 0 }],
      'self.test': [
        { exchange: 'mail.yubin.test', priority: 10 },
        { exchange: 'backup.self.test', priority: 20 },
      ],
      'backup.test': [
        { exchange: 'primary.backup.test', priority: 10 },
        { exchange: 'MAIL.yubin.test', priority: 20 },
        { exchange: 'tertiary.backup.test', priority: 30 },
      ],
      'flaky.test': [{ exchange: 'broken.flaky.test', priority: 10 }],
      'halfflaky.test': [
        { exchange: 'broken.flaky.test', priority: 10 },
        { exchange: 'ok.halfflaky.test', priority: 20 },
      ],
      'noaddr.test': [{ exchange: 'nothing.noaddr.test', priority: 10 }],
      'literal.test': [{ exchange: '192.0.2.77', priority: 10 }],
    },
    a: {
      'mx1.example.test': ['192.0.2.1', '192.0.2.11'],
      'mx2.example.test': ['192.0.2.2'],
      'mx6.example.test': ['192.0.2.6'],
      'a.tie.test': ['192.0.2.51'],
      'b.tie.test': ['192.0.2.52'],
      'c.tie.test': ['192.0.2.53'],
      'implicit.test': ['192.0.2.30'],
      'relay.test': ['192.0.2.40'],
      'primary.backup.test': ['192.0.2.60'],
      'tertiary.backup.test': ['192.0.2.61'],
      'backup.self.test': ['192.0.2.62'],
      'ok.halfflaky.test': ['192.0.2.70'],
      'spf.test': ['192.0.2.80'],
    },
    aaaa: {
      'mx1.example.test': ['2001:db8::1'],
      'mx3.example.test': ['2001:db8::3'],
      'implicit.test': ['2001:db8::30'],
      'relay.test': ['2001:db8::40'],
    },
    txt: {
      'txtonly.test': ['hello'],
      'sel._domainkey.long.test': [longKey],
      'multi.test': ['first', 'second'],
      'spf.test': ['v=spf1 mx a:relay.test -all'],
      'nothing.noaddr.test': ['exists but has no address'],
    },
    servfail: ['servfail.test', 'broken.flaky.test'],
  });
  server.zone.mx!['spf.test'] = [{ exchange: 'spf.test', priority: 10 }];
  resolver = new DnsResolver({ servers: [server.address], timeoutSeconds: 2 });
});

after(async () => {
  await server.close();
});

function destinations(route: Route) {
  assert.equal(route.kind, 'destinations', JSON.stringify(route));
  return route.kind === 'destinations' ? route : assert.fail('unreachable');
}

test('parseServerAddress accepts IP, IP:PORT, [IPv6]:PORT and refuses host names', () => {
  assert.deepEqual(parseServerAddress('127.0.0.1'), { host: '127.0.0.1', port: 53 });
  assert.deepEqual(parseServerAddress('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
  assert.deepEqual(parseServerAddress('[::1]:53'), { host: '::1', port: 53 });
  assert.deepEqual(parseServerAddress('::1'), { host: '::1', port: 53 });
  assert.deepEqual(parseServerAddress('[2001:db8::1]'), { host: '2001:db8::1', port: 53 });
  assert.throws(() => parseServerAddress('dns.example:53'));
  assert.throws(() => parseServerAddress('127.0.0.1:0'));
});

test('parseRelay understands HOST, HOST:PORT, [IP] and [IP]:PORT', () => {
  assert.deepEqual(parseRelay('Relay.Test', 25), { host: 'relay.test', port: 25, literal: false });
  assert.deepEqual(parseRelay('relay.test:2525', 25), { host: 'relay.test', port: 2525, literal: false });
  assert.deepEqual(parseRelay('[192.0.2.9]', 25), { host: '192.0.2.9', port: 25, literal: true });
  assert.deepEqual(parseRelay('[2001:db8::9]:587', 25), { host: '2001:db8::9', port: 587, literal: true });
  assert.deepEqual(parseRelay('192.0.2.9:26', 25), { host: '192.0.2.9', port: 26, literal: true });
  assert.throws(() => parseRelay('[relay.test]', 25));
  assert.throws(() => parseRelay('relay.test:99999', 25));
});

test('resolver maps NXDOMAIN, NODATA and SERVFAIL to DnsError kinds', async () => {
  assert.deepEqual(await resolver.a('MX2.Example.TEST.'), ['192.0.2.2']);
  assert.deepEqual(await resolver.aaaa('mx3.example.test'), ['2001:db8::3']);
  await assert.rejects(resolver.mx('nowhere.test'), (err: DnsError) => err instanceof DnsError && err.kind === 'not-found' && err.code === 'ENOTFOUND');
  await assert.rejects(resolver.a('txtonly.test'), (err: DnsError) => err.kind === 'no-data' && err.code === 'ENODATA');
  // An empty non-terminal (owner of nothing, parent of something) exists: NODATA, not NXDOMAIN.
  await assert.rejects(resolver.txt('_domainkey.long.test'), (err: DnsError) => err.kind === 'no-data');
  await assert.rejects(resolver.mx('servfail.test'), (err: DnsError) => err.kind === 'temporary');
});

test('MX hosts come in preference order, each with A then AAAA, hosts without addresses skipped', async () => {
  const route = destinations(await routeDomain('Example.TEST', resolver, direct));
  assert.equal(route.via, 'mx');
  assert.deepEqual(route.destinations, [
    { host: 'mx1.example.test', port: 25, addresses: ['192.0.2.1', '192.0.2.11', '2001:db8::1'], preference: 10 },
    { host: 'mx2.example.test', port: 25, addresses: ['192.0.2.2'], preference: 20 },
    { host: 'mx3.example.test', port: 25, addresses: ['2001:db8::3'], preference: 30 },
    { host: 'mx6.example.test', port: 25, addresses: ['192.0.2.6'], preference: 60 },
  ]);
  const v6 = destinations(await routeDomain('example.test', resolver, { ...direct, port: 2525, preferIpv6: true }));
  assert.deepEqual(v6.destinations[0], { host: 'mx1.example.test', port: 2525, addresses: ['2001:db8::1', '192.0.2.1', '192.0.2.11'], preference: 10 });
});

test('MX hosts of equal preference come in random order, after them the less preferred', async () => {
  const orders = new Set<string>();
  for (let i = 0; i < 60 && orders.size < 2; i++) {
    const route = destinations(await routeDomain('tie.test', resolver, direct));
    assert.equal(route.destinations[2]!.host, 'c.tie.test');
    orders.add(route.destinations.slice(0, 2).map((d) => d.host).join(','));
  }
  assert.deepEqual([...orders].sort(), ['a.tie.test,b.tie.test', 'b.tie.test,a.tie.test']);
});

test('a null MX (RFC 7505) is a permanent 5.1.10', async () => {
  const route = await routeDomain('nullmx.test', resolver, direct);
  assert.equal(route.kind, 'permanent');
  assert.equal(route.kind === 'permanent' && route.status, '5.1.10');
});

test('no MX records: the domain\'s own A/AAAA is the implicit MX; with no address either, 5.1.2', async () => {
  const route = destinations(await routeDomain('implicit.test', resolver, direct));
  assert.equal(route.via, 'implicit-mx');
  assert.deepEqual(route.destinations, [{ host: 'implicit.test', port: 25, addresses: ['192.0.2.30', '2001:db8::30'], preference: 0 }]);
  const none = await routeDomain('txtonly.test', resolver, direct);
  assert.deepEqual(none.kind === 'permanent' && none.status, '5.1.2');
});

test('NXDOMAIN is a permanent 5.1.2; SERVFAIL a temporary 4.4.3', async () => {
  const nx = await routeDomain('nowhere.test', resolver, direct);
  assert.equal(nx.kind, 'permanent');
  assert.equal(nx.kind === 'permanent' && nx.status, '5.1.2');
  const sf = await routeDomain('servfail.test', resolver, direct);
  assert.equal(sf.kind, 'temporary');
  assert.equal(sf.kind === 'temporary' && sf.status, '4.4.3');
});

test('an MX host whose lookup fails temporarily: temporary if nothing else, skipped otherwise', async () => {
  const flaky = await routeDomain('flaky.test', resolver, direct);
  assert.equal(flaky.kind === 'temporary' && flaky.status, '4.4.3');
  const half = destinations(await routeDomain('halfflaky.test', resolver, direct));
  assert.deepEqual(half.destinations.map((d) => d.host), ['ok.halfflaky.test']);
  const noaddr = await routeDomain('noaddr.test', resolver, direct);
  assert.equal(noaddr.kind, 'permanent');
});

test('an MX naming an IP address is accepted as that address', async () => {
  const route = destinations(await routeDomain('literal.test', resolver, direct));
  assert.deepEqual(route.destinations, [{ host: '192.0.2.77', port: 25, addresses: ['192.0.2.77'], preference: 10 }]);
});

test('an address-literal domain is delivered to that address without DNS', async () => {
  const before = server.queries.length;
  const route = destinations(await routeDomain('[192.0.2.99]', resolver, direct));
  assert.deepEqual(route.destinations, [{ host: '192.0.2.99', port: 25, addresses: ['192.0.2.99'], preference: 0 }]);
  assert.equal(server.queries.length, before);
});

test('a dead DNS server is a temporary failure, within the timeout', async () => {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  const dead = new DnsResolver({ servers: [`127.0.0.1:${port}`], timeoutSeconds: 1 });
  const started = Date.now();
  const route = await routeDomain('example.test', dead, direct);
  assert.equal(route.kind, 'temporary');
  assert.equal(route.kind === 'temporary' && route.status, '4.4.3');
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
  await assert.rejects(dead.txt('example.test'), (err: DnsError) => err.kind === 'temporary');
});

test('a DNS server that never answers times out as temporary after about dns.timeout', async () => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  try {
    const mute = new DnsResolver({ servers: [`127.0.0.1:${silent.address().port}`], timeoutSeconds: 1 });
    const started = Date.now();
    await assert.rejects(mute.mx('example.test'), (err: DnsError) => err.kind === 'temporary');
    const took = Date.now() - started;
    assert.ok(took >= 500 && took < 2500, `took ${took} ms`);
    const route = await routeDomain('example.test', mute, direct);
    assert.equal(route.kind === 'temporary' && route.status, '4.4.3');
  } finally {
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

test('the smarthost wins over MX: "[IP]" without DNS, HOST via A/AAAA, with and without port', async () => {
  const before = server.queries.length;
  const literal = destinations(await routeDomain('example.test', resolver, { ...direct, smarthost: '[192.0.2.9]' }));
  assert.equal(literal.via, 'smarthost');
  assert.deepEqual(literal.destinations, [{ host: '192.0.2.9', port: 25, addresses: ['192.0.2.9'], preference: 0 }]);
  const literal6 = destinations(await routeDomain('example.test', resolver, { ...direct, smarthost: '[2001:db8::9]:587' }));
  assert.deepEqual(literal6.destinations, [{ host: '2001:db8::9', port: 587, addresses: ['2001:db8::9'], preference: 0 }]);
  assert.equal(server.queries.length, before, 'bracketed smarthost needs no DNS');
  const named = destinations(await routeDomain('example.test', resolver, { ...direct, smarthost: 'relay.test:2525' }));
  assert.deepEqual(named.destinations, [{ host: 'relay.test', port: 2525, addresses: ['192.0.2.40', '2001:db8::40'], preference: 0 }]);
  assert.ok(!server.queries.slice(before).some((q) => q.type === 'MX'), 'smarthost HOST is not looked up as MX');
  const nameless = await routeDomain('example.test', resolver, { ...direct, smarthost: 'nowhere.test' });
  assert.equal(nameless.kind === 'temporary' && nameless.status, '4.4.3');
});

test('a transport for the domain wins over the smarthost and MX', async () => {
  const options: RoutingOptions = { port: 25, smarthost: '[192.0.2.9]', transports: { 'example.test': 'relay.test', 'tie.test': '[192.0.2.10]:26' } };
  const viaTransport = destinations(await routeDomain('EXAMPLE.test', resolver, options));
  assert.equal(viaTransport.via, 'transport');
  assert.deepEqual(viaTransport.destinations, [{ host: 'relay.test', port: 25, addresses: ['192.0.2.40', '2001:db8::40'], preference: 0 }]);
  const bracketed = destinations(await routeDomain('tie.test', resolver, options));
  assert.deepEqual(bracketed.destinations, [{ host: '192.0.2.10', port: 26, addresses: ['192.0.2.10'], preference: 0 }]);
  const other = destinations(await routeDomain('implicit.test', resolver, options));
  assert.equal(other.via, 'smarthost');
});

test('an MX pointing at ourselves is dropped with every less preferred one; if nothing remains, 5.4.6', async () => {
  const options = { ...direct, localHostnames: ['Mail.Yubin.Test'] };
  const backup = destinations(await routeDomain('backup.test', resolver, options));
  assert.deepEqual(backup.destinations.map((d) => d.host), ['primary.backup.test']);
  const self = await routeDomain('self.test', resolver, options);
  assert.equal(self.kind === 'permanent' && self.status, '5.4.6');
  // Without localHostnames they are all used.
  assert.equal(destinations(await routeDomain('backup.test', resolver, direct)).destinations.length, 2);
});

test('records changed in the zone are seen at once (no cache)', async () => {
  server.zone.a!['late.test'] = ['192.0.2.200'];
  assert.deepEqual(destinations(await routeDomain('late.test', resolver, direct)).destinations[0]!.addresses, ['192.0.2.200']);
  server.zone.mx!['late.test'] = [{ exchange: '.', priority: 0 }];
  assert.equal((await routeDomain('late.test', resolver, direct)).kind, 'permanent');
  delete server.zone.mx!['late.test'];
  delete server.zone.a!['late.test'];
  assert.equal((await routeDomain('late.test', resolver, direct)).kind, 'permanent');
});

test('TXT records longer than 255 bytes are split on the wire and join back whole', async () => {
  const records = await resolver.txt('sel._domainkey.long.test');
  assert.equal(records.length, 1);
  assert.ok(records[0]!.length > 1 && records[0]!.every((s) => Buffer.byteLength(s) <= 255), 'split into character-strings');
  assert.equal(records[0]!.join(''), longKey);
  // Too big for a UDP answer (c-ares advertises 1232 bytes with EDNS): truncated, then retried over TCP.
  const huge = `v=DKIM1; p=${crypto.randomBytes(3000).toString('base64')}`;
  server.zone.txt!['huge.test'] = [huge];
  assert.equal((await resolver.txt('huge.test'))[0]!.join(''), huge);
  delete server.zone.txt!['huge.test'];
  const multi = await resolver.txt('multi.test');
  assert.deepEqual(multi.map((r) => r.join('')).sort(), ['first', 'second']);
});

test('mailauthResolver answers in dns.promises.resolve shapes and fails with Node error codes', async () => {
  const resolve = resolver.mailauthResolver();
  assert.deepEqual(await resolve('multi.test', 'TXT').then((r: string[][]) => r.map((x) => x.join('')).sort()), ['first', 'second']);
  assert.deepEqual(await resolve('sel._domainkey.long.test', 'TXT').then((r: string[][]) => r[0]!.join('')), longKey);
  assert.deepEqual(await resolve('tie.test', 'MX').then((r: Array<{ priority: number }>) => r.sort((x, y) => x.priority - y.priority)[2]), { exchange: 'c.tie.test', priority: 9 });
  assert.deepEqual(await resolve('relay.test', 'AAAA'), ['2001:db8::40']);
  await assert.rejects(resolve('nowhere.test', 'TXT'), { code: 'ENOTFOUND' });
  await assert.rejects(resolve('implicit.test', 'TXT'), { code: 'ENODATA' });
  await assert.rejects(resolve('servfail.test', 'TXT'), (err: { code?: string }) => err.code !== 'ENOTFOUND' && err.code !== 'ENODATA');
});

test('mailauth verifies SPF and a 2048-bit DKIM key through mailauthResolver', async () => {
  const resolve = resolver.mailauthResolver();
  const pass = await spf({ sender: 'a@spf.test', ip: '192.0.2.80', helo: 'spf.test', mta: 'mx.yubin.test', resolver: resolve });
  assert.equal(pass.status.result, 'pass');
  const viaA = await spf({ sender: 'a@spf.test', ip: '2001:db8::40', helo: 'spf.test', mta: 'mx.yubin.test', resolver: resolve });
  assert.equal(viaA.status.result, 'pass');
  const fail = await spf({ sender: 'a@spf.test', ip: '198.51.100.1', helo: 'spf.test', mta: 'mx.yubin.test', resolver: resolve });
  assert.equal(fail.status.result, 'fail');
  const none = await spf({ sender: 'a@nowhere.test', ip: '198.51.100.1', helo: 'x.test', mta: 'mx.yubin.test', resolver: resolve });
  assert.equal(none.status.result, 'none');

  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  server.zone.txt!['s1._domainkey.dkim.test'] = [`v=DKIM1; k=rsa; p=${spki}`];
  const message = 'From: a@dkim.test\r\nTo: b@example.test\r\nSubject: hi\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nHello\r\n';
  const key = { signingDomain: 'dkim.test', selector: 's1', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
  // mailauth signs what is in signatureData (its typings also require the top-level fields).
  const signed = await dkimSign(message, { ...key, signatureData: [key] });
  assert.equal(signed.errors.length, 0);
  const verified = await dkimVerify(signed.signatures + message, { resolver: resolve });
  assert.equal(verified.results[0]?.status.result, 'pass', JSON.stringify(verified.results[0]?.status));
  delete server.zone.txt!['s1._domainkey.dkim.test'];
  const missing = await dkimVerify(signed.signatures + message, { resolver: resolve });
  assert.equal(missing.results[0]?.status.result, 'neutral');
});
