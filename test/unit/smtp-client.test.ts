// The outbound SMTP client against real smtp-server peers on 127.0.0.1 (ephemeral ports).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import selfsigned from 'selfsigned';
import { SMTPServer, type SMTPServerOptions, type SMTPServerAddress, type SMTPServerSession } from 'smtp-server';
import { SmtpClient, parseReply, encodeXtext, type Destination, type OutboundMessage, type OutboundRecipient, type SmtpClientOptions } from '../../src/queue/smtp-client.js';

interface Received {
  from: string;
  mailArgs: Record<string, string | true> | false;
  rcpts: SMTPServerAddress[];
  envelopeDsn: { ret: string | null; envid: string | null } | undefined;
  bodyType: string | undefined;
  smtpUtf8: boolean | undefined;
  secure: boolean;
  remoteAddress: string;
  body: Buffer;
}

interface Peer {
  port: number;
  received: Received[];
  mailCommands: number;
  connections: number;
  current: number;
  maxCurrent: number;
  close(): Promise<void>;
}

interface PeerOptions extends Partial<SMTPServerOptions> {
  tls?: boolean;
  rcptReply?: (address: string) => { code: number; message: string } | null;
  dataReply?: () => { code: number; message: string } | null;
  dataDelayMs?: number;
  refuse?: { code: number; message: string };
  /** Address to listen on (127.0.0.1 by default). */
  listenOn?: string;
}

let cert: { key: string; cert: string };

before(async () => {
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'mx.test' }], { keySize: 2048, algorithm: 'sha256' });
  cert = { key: pems.private, cert: pems.cert };
});

const peers: Peer[] = [];
const clients: SmtpClient[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(peers.map((p) => p.close()));
});

function withCode(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

async function startPeer(options: PeerOptions = {}): Promise<Peer> {
  const { tls, rcptReply, dataReply, dataDelayMs, refuse, listenOn, ...serverOptions } = options;
  const peer: Peer = { port: 0, received: [], mailCommands: 0, connections: 0, current: 0, maxCurrent: 0, close: async () => undefined };
  const server = new SMTPServer({
    logger: false,
    authOptional: true,
    disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
    ...(tls ? { key: cert.key, cert: cert.cert } : {}),
    onConnect(_session, callback) {
      if (refuse) return callback(withCode(refuse.code, refuse.message));
      callback();
    },
    onMailFrom(_address, _session, callback) {
      peer.mailCommands++;
      callback();
    },
    onRcptTo(address, _session, callback) {
      const r = rcptReply?.(address.address) ?? null;
      if (r) return callback(withCode(r.code, r.message));
      callback();
    },
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const env = session.envelope;
        peer.received.push({
          from: env.mailFrom ? env.mailFrom.address : '',
          mailArgs: env.mailFrom ? env.mailFrom.args : false,
          rcpts: env.rcptTo.map((r) => ({ ...r })),
          envelopeDsn: env.dsn ? { ...env.dsn } : undefined,
          bodyType: env.bodyType,
          smtpUtf8: env.smtpUtf8,
          secure: session.secure,
          remoteAddress: session.remoteAddress,
          body: Buffer.concat(chunks),
        });
        const r = dataReply?.() ?? null;
        setTimeout(() => (r ? callback(withCode(r.code, r.message)) : callback()), dataDelayMs ?? 0);
      });
    },
    ...serverOptions,
  });
  server.server.on('connection', (socket: net.Socket) => {
    peer.connections++;
    peer.current++;
    peer.maxCurrent = Math.max(peer.maxCurrent, peer.current);
    socket.once('close', () => peer.current--);
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, listenOn ?? '127.0.0.1', () => resolve()));
  peer.port = (server.server.address() as AddressInfo).port;
  let closed = false;
  peer.close = () =>
    closed
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          closed = true;
          server.close(() => resolve());
        });
  peers.push(peer);
  return peer;
}

/** A port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function client(options: Partial<SmtpClientOptions> = {}): SmtpClient {
  const c = new SmtpClient({
    heloName: 'client.test',
    connectTimeoutSeconds: 5,
    commandTimeoutSeconds: 10,
    maxPerDestination: 4,
    maxConnections: 20,
    connectionReuse: true,
    maxMessagesPerConnection: 100,
    ...options,
  });
  clients.push(c);
  return c;
}

function dest(port: number, host = 'mx.test', addresses = ['127.0.0.1']): Destination {
  return { host, port, addresses, preference: 10 };
}

function rcpt(address: string, extra: Partial<OutboundRecipient> = {}): OutboundRecipient {
  return { address, notify: null, orcpt: null, ...extra };
}

function msg(recipients: OutboundRecipient[], extra: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    from: 'alice@example.org',
    recipients,
    content: Buffer.from('From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n'),
    envid: null,
    ret: null,
    smtpUtf8: false,
    eightBit: false,
    ...extra,
  };
}

test('delivers over STARTTLS when offered (self-signed certificate accepted)', async () => {
  const peer = await startPeer({ tls: true });
  const results = await client().send([dest(peer.port)], msg([rcpt('bob@example.com')]));
  assert.equal(results.length, 1);
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(results[0]!.reply.code, 250);
  assert.equal(results[0]!.reply.remoteMta, 'mx.test');
  assert.equal(peer.received.length, 1);
  assert.equal(peer.received[0]!.secure, true);
  assert.match(peer.received[0]!.body.toString(), /hello\r\n$/);
});

test('delivers in plain text when STARTTLS is not offered', async () => {
  const peer = await startPeer();
  const results = await client().send([dest(peer.port)], msg([rcpt('bob@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(peer.received[0]!.secure, false);
  assert.equal(peer.received[0]!.from, 'alice@example.org');
});

interface FakePeer {
  port: number;
  connections: number;
  delivered: number;
  close(): void;
}

/**
 * A hand-written SMTP peer for misbehaviour smtp-server can not produce: `starttls` offers
 * STARTTLS and then answers the handshake with garbage; `dropOnRset` closes the connection
 * silently when it gets RSET (a pooled connection that died unnoticed); `dropAfterData` closes
 * it after the end of data, before the reply; `noGreeting` never greets.
 */
async function startFakePeer(behaviour: { starttls?: boolean; dropOnRset?: boolean; dropAfterData?: boolean; noGreeting?: boolean }): Promise<FakePeer> {
  const peer: FakePeer = { port: 0, connections: 0, delivered: 0, close: () => undefined };
  const server = net.createServer((socket) => {
    peer.connections++;
    let buf = '';
    let inData = false;
    socket.on('error', () => undefined);
    if (behaviour.noGreeting) return;
    socket.write('220 fake.test ESMTP\r\n');
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            if (behaviour.dropAfterData) {
              socket.destroy();
              return;
            }
            peer.delivered++;
            socket.write('250 2.0.0 queued\r\n');
          }
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === 'EHLO') socket.write(`250-fake.test\r\n250-PIPELINING\r\n250 ${behaviour.starttls ? 'STARTTLS' : '8BITMIME'}\r\n`);
        else if (verb === 'STAR') {
          socket.write('220 2.0.0 go ahead\r\n');
          socket.end('this is not a TLS server hello at all\r\n\r\n');
          return;
        } else if (verb === 'RSET' && behaviour.dropOnRset) {
          socket.destroy();
          return;
        } else if (verb === 'MAIL' || verb === 'RCPT' || verb === 'RSET') socket.write('250 2.1.0 ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          socket.write('354 go\r\n');
        } else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('502 5.5.2 what\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  peer.port = (server.address() as AddressInfo).port;
  peer.close = () => server.close();
  return peer;
}

test('a failed STARTTLS handshake is retried once without TLS', async () => {
  const peer = await startFakePeer({ starttls: true });
  try {
    const c = client();
    const results = await c.send([dest(peer.port, 'fake.test')], msg([rcpt('bob@example.com')]));
    assert.equal(results[0]!.outcome, 'delivered');
    assert.equal(peer.delivered, 1);
    assert.equal(peer.connections, 2);
    await c.close();
  } finally {
    peer.close();
  }
});

test('a pooled connection found dead at RSET is replaced transparently', async () => {
  const peer = await startFakePeer({ dropOnRset: true });
  try {
    const c = client();
    const r1 = await c.send([dest(peer.port, 'fake.test')], msg([rcpt('a@example.com')]));
    const r2 = await c.send([dest(peer.port, 'fake.test')], msg([rcpt('b@example.com')]));
    assert.equal(r1[0]!.outcome, 'delivered');
    assert.equal(r2[0]!.outcome, 'delivered');
    assert.equal(peer.delivered, 2);
    assert.equal(peer.connections, 2);
    assert.deepEqual(c.stats(), { opened: 2, reused: 0 });
    await c.close();
  } finally {
    peer.close();
  }
});

test('connection lost after the end of data: temporary, no other destination tried', async () => {
  const peer = await startFakePeer({ dropAfterData: true });
  const other = await startPeer();
  try {
    const results = await client().send([dest(peer.port, 'fake.test'), dest(other.port, 'mx2.test')], msg([rcpt('a@example.com')]));
    assert.equal(results[0]!.outcome, 'temporary');
    assert.equal(results[0]!.reply.enhanced, '4.4.2');
    assert.match(results[0]!.reply.text, /^connection to fake\.test \[127\.0\.0\.1\]:\d+ lost while sending the message: /);
    assert.equal(other.mailCommands, 0);
  } finally {
    peer.close();
  }
});

test('no greeting within the connect timeout: the next destination', async () => {
  const silent = await startFakePeer({ noGreeting: true });
  const other = await startPeer();
  try {
    const c = client({ connectTimeoutSeconds: 1 });
    const ok = await c.send([dest(silent.port, 'slow.test'), dest(other.port, 'mx2.test')], msg([rcpt('a@example.com')]));
    assert.equal(ok[0]!.outcome, 'delivered');
    const failed = await c.send([dest(silent.port, 'slow.test')], msg([rcpt('a@example.com')]));
    assert.equal(failed[0]!.outcome, 'temporary');
    assert.equal(failed[0]!.reply.enhanced, '4.4.1');
    assert.match(failed[0]!.reply.text, /^connection to slow\.test \[127\.0\.0\.1\]:\d+ failed: timed out waiting for the greeting$/);
  } finally {
    silent.close();
  }
});

for (const hidePIPELINING of [false, true]) {
  test(`per-recipient RCPT results, replies verbatim (pipelining ${hidePIPELINING ? 'off' : 'on'})`, async () => {
    const peer = await startPeer({
      hidePIPELINING,
      rcptReply: (a) =>
        a.startsWith('unknown@') ? { code: 550, message: '5.1.1 <unknown@example.com>: no such user' } : a.startsWith('full@') ? { code: 452, message: '4.2.2 mailbox full' } : null,
    });
    const results = await client().send([dest(peer.port)], msg([rcpt('ok@example.com'), rcpt('unknown@example.com'), rcpt('full@example.com')]));
    assert.deepEqual(
      results.map((r) => [r.address, r.outcome]),
      [
        ['ok@example.com', 'delivered'],
        ['unknown@example.com', 'permanent'],
        ['full@example.com', 'temporary'],
      ],
    );
    assert.deepEqual(results[1]!.reply, { code: 550, enhanced: '5.1.1', text: '<unknown@example.com>: no such user', remoteMta: 'mx.test' });
    assert.deepEqual(results[2]!.reply, { code: 452, enhanced: '4.2.2', text: 'mailbox full', remoteMta: 'mx.test' });
    assert.equal(peer.received.length, 1);
    assert.deepEqual(
      peer.received[0]!.rcpts.map((r) => r.address),
      ['ok@example.com'],
    );
  });
}

test('every recipient refused: per-recipient results, no DATA', async () => {
  const peer = await startPeer({ rcptReply: (a) => (a.startsWith('a@') ? { code: 550, message: '5.1.1 nope' } : { code: 451, message: '4.3.0 later' }) });
  const results = await client().send([dest(peer.port)], msg([rcpt('a@example.com'), rcpt('b@example.com')]));
  assert.deepEqual(
    results.map((r) => [r.outcome, r.reply.code, r.reply.enhanced, r.reply.text]),
    [
      ['permanent', 550, '5.1.1', 'nope'],
      ['temporary', 451, '4.3.0', 'later'],
    ],
  );
  assert.equal(peer.received.length, 0);
});

test('MAIL FROM 5xx: all recipients permanent with that reply', async () => {
  const peer = await startPeer({
    onMailFrom(_a, _s, callback) {
      callback(withCode(553, '5.7.1 sender rejected'));
    },
  });
  const results = await client().send([dest(peer.port)], msg([rcpt('a@example.com'), rcpt('b@example.com')]));
  for (const r of results) assert.deepEqual([r.outcome, r.reply], ['permanent', { code: 553, enhanced: '5.7.1', text: 'sender rejected', remoteMta: 'mx.test' }]);
});

test('MAIL FROM 4xx moves to the next destination', async () => {
  const busy = await startPeer({
    onMailFrom(_a, _s, callback) {
      callback(withCode(451, '4.3.2 try later'));
    },
  });
  const good = await startPeer();
  const results = await client().send([dest(busy.port, 'mx1.test'), dest(good.port, 'mx2.test')], msg([rcpt('a@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(results[0]!.reply.remoteMta, 'mx2.test');
  // and with only the busy one, the 4xx is reported
  const only = await client().send([dest(busy.port, 'mx1.test')], msg([rcpt('a@example.com')]));
  assert.deepEqual([only[0]!.outcome, only[0]!.reply], ['temporary', { code: 451, enhanced: '4.3.2', text: 'try later', remoteMta: 'mx1.test' }]);
});

test('a dead first destination, then a live second one: delivered', async () => {
  const peer = await startPeer();
  const dead = await deadPort();
  const results = await client().send([dest(dead, 'mx1.test'), dest(peer.port, 'mx2.test')], msg([rcpt('bob@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(results[0]!.reply.remoteMta, 'mx2.test');
});

test('the second address of a destination is tried after the first fails', async () => {
  const peer = await startPeer();
  // 127.0.0.2 on the peer's port: nothing listens there (the peer is bound to 127.0.0.1 only)
  const results = await client().send([dest(peer.port, 'mx.test', ['127.0.0.2', '127.0.0.1'])], msg([rcpt('bob@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered');
});

test('every destination dead: temporary 4.4.1 with a clear text', async () => {
  const d1 = await deadPort();
  const d2 = await deadPort();
  const results = await client().send([dest(d1, 'mx1.test'), dest(d2, 'mx2.test')], msg([rcpt('a@example.com'), rcpt('b@example.com')]));
  for (const r of results) {
    assert.equal(r.outcome, 'temporary');
    assert.equal(r.reply.code, 451);
    assert.equal(r.reply.enhanced, '4.4.1');
    assert.equal(r.reply.text, `connection to mx2.test [127.0.0.1]:${d2} failed: ECONNREFUSED (connection refused)`);
  }
  // no destination at all
  const none = await client().send([], msg([rcpt('a@example.com')]));
  assert.equal(none[0]!.outcome, 'temporary');
});

test('greeting 554 moves on; if every destination refuses with 5xx: permanent with that reply', async () => {
  const refusing = await startPeer({ refuse: { code: 554, message: '5.7.1 go away' } });
  const good = await startPeer();
  const ok = await client().send([dest(refusing.port, 'mx1.test'), dest(good.port, 'mx2.test')], msg([rcpt('a@example.com')]));
  assert.equal(ok[0]!.outcome, 'delivered');
  const refused = await client().send([dest(refusing.port, 'mx1.test')], msg([rcpt('a@example.com')]));
  assert.equal(refused[0]!.outcome, 'permanent');
  assert.equal(refused[0]!.reply.code, 554);
  assert.equal(refused[0]!.reply.enhanced, '5.7.1');
  assert.equal(refused[0]!.reply.remoteMta, 'mx1.test');
  // a 421 greeting is temporary
  const busy = await startPeer({ refuse: { code: 421, message: '4.3.2 too busy' } });
  const later = await client().send([dest(busy.port, 'mx3.test')], msg([rcpt('a@example.com')]));
  assert.deepEqual([later[0]!.outcome, later[0]!.reply.code, later[0]!.reply.enhanced], ['temporary', 421, '4.3.2']);
});

test('SIZE exceeded: permanent 5.3.4 without a transaction; SIZE= passed otherwise', async () => {
  const peer = await startPeer({ size: 1000 });
  const c = client();
  const big = Buffer.alloc(5000, 'a');
  const results = await c.send([dest(peer.port)], msg([rcpt('a@example.com')], { content: Buffer.concat([Buffer.from('Subject: x\r\n\r\n'), big, Buffer.from('\r\n')]) }));
  assert.equal(results[0]!.outcome, 'permanent');
  assert.equal(results[0]!.reply.code, 552);
  assert.equal(results[0]!.reply.enhanced, '5.3.4');
  assert.equal(results[0]!.reply.text, 'message size 5016 exceeds the limit of 1000 bytes announced by mx.test');
  assert.equal(peer.mailCommands, 0);
  const small = await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.equal(small[0]!.outcome, 'delivered');
  const args = peer.received[0]!.mailArgs;
  assert.ok(args && Number(args.SIZE) > 0);
});

test('IPv6: a host whose only address is IPv6 is reached over IPv6, from the configured IPv6 source address', async () => {
  const peer = await startPeer({ listenOn: '::1' });
  const c = client({ sourceAddresses: { ipv4: '127.0.0.1', ipv6: '::1' } });
  const results = await c.send([dest(peer.port, 'mx6.test', ['::1'])], msg([rcpt('a@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered', JSON.stringify(results[0]!.reply));
  assert.equal(peer.received.length, 1);
  assert.equal(peer.received[0]!.remoteAddress, '::1');
  // The IPv4 source address is not used for an IPv6 destination (it could not be).
  const v4only = client({ sourceAddresses: { ipv4: '127.0.0.1' } });
  const again = await v4only.send([dest(peer.port, 'mx6.test', ['::1'])], msg([rcpt('b@example.com')]));
  assert.equal(again[0]!.outcome, 'delivered', JSON.stringify(again[0]!.reply));
});

test('8BITMIME: BODY=8BITMIME when supported, permanent 5.6.3 when not', async () => {
  const content = Buffer.from('Subject: caf\xc3\xa9\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9\r\n', 'latin1');
  const yes = await startPeer();
  const r1 = await client().send([dest(yes.port)], msg([rcpt('a@example.com')], { content, eightBit: true }));
  assert.equal(r1[0]!.outcome, 'delivered');
  assert.equal(yes.received[0]!.bodyType, '8bitmime');
  const no = await startPeer({ hide8BITMIME: true });
  const r2 = await client().send([dest(no.port)], msg([rcpt('a@example.com')], { content, eightBit: true }));
  assert.equal(r2[0]!.outcome, 'permanent');
  assert.equal(r2[0]!.reply.enhanced, '5.6.3');
  assert.match(r2[0]!.reply.text, /8BITMIME/);
  assert.equal(no.mailCommands, 0);
});

test('SMTPUTF8: parameter sent when needed (also for headers only), permanent 5.6.7 when not offered', async () => {
  const yes = await startPeer();
  const r1 = await client().send([dest(yes.port)], msg([rcpt('a@example.com')], { smtpUtf8: true, eightBit: true }));
  assert.equal(r1[0]!.outcome, 'delivered');
  assert.equal(yes.received[0]!.smtpUtf8, true);
  const r2 = await client().send([dest(yes.port)], msg([rcpt('用户@example.com')], { smtpUtf8: true, eightBit: true }));
  assert.equal(r2[0]!.outcome, 'delivered');
  assert.equal(yes.received[1]!.rcpts[0]!.address, '用户@example.com');
  const no = await startPeer({ hideSMTPUTF8: true });
  const r3 = await client().send([dest(no.port)], msg([rcpt('a@example.com')], { smtpUtf8: true }));
  assert.equal(r3[0]!.outcome, 'permanent');
  assert.equal(r3[0]!.reply.enhanced, '5.6.7');
  assert.match(r3[0]!.reply.text, /SMTPUTF8/);
  assert.equal(no.mailCommands, 0);
});

test('DSN parameters passed per recipient when the peer supports DSN (ENVID/ORCPT xtext-encoded)', async () => {
  // ENVID and ORCPT are held decoded (smtp-server decodes xtext); the peer decodes what we send,
  // so it must see exactly the values we were given ("+2B" literally, "=" and space encoded).
  const peer = await startPeer({ hideDSN: false });
  const results = await client().send(
    [dest(peer.port)],
    msg(
      [
        rcpt('a@example.com', { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;orig+2Ba@example.org' }),
        rcpt('b@example.com', { notify: ['NEVER'] }),
        rcpt('c@example.com'),
      ],
      { envid: 'env+2Bid=1 x', ret: 'HDRS' },
    ),
  );
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['delivered', 'delivered', 'delivered'],
  );
  const got = peer.received[0]!;
  assert.deepEqual(got.envelopeDsn, { ret: 'HDRS', envid: 'env+2Bid=1 x' });
  assert.deepEqual(got.rcpts[0]!.dsn, { notify: ['SUCCESS', 'FAILURE'], orcpt: 'rfc822;orig+2Ba@example.org' });
  assert.deepEqual(got.rcpts[1]!.dsn, { notify: ['NEVER'] });
  assert.equal(got.rcpts[2]!.dsn, undefined);
});

test("'relayed' for NOTIFY=SUCCESS when the peer has no DSN; no DSN parameters sent", async () => {
  const peer = await startPeer(); // smtp-server hides DSN by default
  const results = await client().send(
    [dest(peer.port)],
    msg([rcpt('a@example.com', { notify: ['SUCCESS'] }), rcpt('b@example.com', { notify: ['FAILURE'] }), rcpt('c@example.com')], { envid: 'x', ret: 'FULL' }),
  );
  assert.deepEqual(
    results.map((r) => r.outcome),
    ['relayed', 'delivered', 'delivered'],
  );
  const args = peer.received[0]!.mailArgs || {};
  assert.equal(args.RET, undefined);
  assert.equal(args.ENVID, undefined);
  assert.equal(peer.received[0]!.rcpts[0]!.args, false);
});

test('DATA answered 451: temporary; 554: permanent (replies verbatim)', async () => {
  let reply: { code: number; message: string } | null = { code: 451, message: '4.3.0 local problem, try later' };
  const peer = await startPeer({ dataReply: () => reply, rcptReply: (a) => (a.startsWith('x@') ? { code: 550, message: '5.1.1 unknown' } : null) });
  const c = client();
  const r1 = await c.send([dest(peer.port)], msg([rcpt('a@example.com'), rcpt('x@example.com')]));
  assert.deepEqual(r1[0], { address: 'a@example.com', outcome: 'temporary', reply: { code: 451, enhanced: '4.3.0', text: 'local problem, try later', remoteMta: 'mx.test' } });
  assert.equal(r1[1]!.outcome, 'permanent');
  assert.equal(r1[1]!.reply.enhanced, '5.1.1');
  reply = { code: 554, message: '5.7.1 spam' };
  const r2 = await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.deepEqual(r2[0], { address: 'a@example.com', outcome: 'permanent', reply: { code: 554, enhanced: '5.7.1', text: 'spam', remoteMta: 'mx.test' } });
  // the connection was reused after the failures (RSET)
  reply = null;
  const r3 = await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.equal(r3[0]!.outcome, 'delivered');
  assert.equal(peer.connections, 1);
  assert.deepEqual(c.stats(), { opened: 1, reused: 2 });
});

test('connection reuse: 20 messages over 1 connection with reuse, 20 connections without', async () => {
  for (const reuse of [true, false]) {
    const peer = await startPeer({ tls: true });
    const c = client({ connectionReuse: reuse });
    for (let i = 0; i < 20; i++) {
      const r = await c.send([dest(peer.port)], msg([rcpt(`u${i}@example.com`)]));
      assert.equal(r[0]!.outcome, 'delivered');
    }
    await c.close();
    assert.equal(peer.received.length, 20);
    assert.equal(peer.connections, reuse ? 1 : 20, `reuse=${reuse}`);
    assert.deepEqual(c.stats(), reuse ? { opened: 1, reused: 19 } : { opened: 20, reused: 0 });
    assert.ok(peer.received.every((m) => m.secure));
  }
});

test('maxMessagesPerConnection: a new connection after that many messages', async () => {
  const peer = await startPeer();
  const c = client({ maxMessagesPerConnection: 3 });
  for (let i = 0; i < 7; i++) await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  await c.close();
  assert.equal(peer.connections, 3);
});

test('maxPerDestination=2: 10 concurrent sends never use more than 2 connections', async () => {
  for (const reuse of [true, false]) {
    const peer = await startPeer({ dataDelayMs: 30 });
    const c = client({ maxPerDestination: 2, connectionReuse: reuse });
    const all = await Promise.all(Array.from({ length: 10 }, (_, i) => c.send([dest(peer.port)], msg([rcpt(`u${i}@example.com`)]))));
    assert.ok(all.every((r) => r[0]!.outcome === 'delivered'));
    await c.close();
    assert.equal(peer.received.length, 10);
    assert.ok(peer.maxCurrent <= 2, `reuse=${reuse}: peer saw ${peer.maxCurrent} simultaneous connections`);
    assert.equal(peer.connections, reuse ? 2 : 10);
  }
});

test('maxConnections=1 over two destinations: one connection at a time in total', async () => {
  const p1 = await startPeer({ dataDelayMs: 20 });
  const p2 = await startPeer({ dataDelayMs: 20 });
  const c = client({ maxConnections: 1, maxPerDestination: 4 });
  const sends = [];
  for (let i = 0; i < 4; i++) {
    sends.push(c.send([dest(p1.port, 'mx1.test')], msg([rcpt(`a${i}@example.com`)])));
    sends.push(c.send([dest(p2.port, 'mx2.test')], msg([rcpt(`b${i}@example.com`)])));
  }
  const all = await Promise.all(sends);
  assert.ok(all.every((r) => r[0]!.outcome === 'delivered'));
  await c.close();
  assert.ok(p1.maxCurrent + p2.maxCurrent <= 2);
  assert.equal(p1.received.length + p2.received.length, 8);
});

test('idle pooled connections are closed after idleCloseSeconds', async () => {
  const peer = await startPeer();
  const c = client({ idleCloseSeconds: 0.2 });
  await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.equal(peer.current, 1);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(peer.current, 0);
  await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.deepEqual(c.stats(), { opened: 2, reused: 0 });
});

test('a pooled connection the peer closed is replaced without a failure', async () => {
  const peer = await startPeer({ socketTimeout: 300 }); // the peer drops idle sessions after 300 ms
  const c = client({ idleCloseSeconds: 30 });
  const r1 = await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.equal(r1[0]!.outcome, 'delivered');
  await new Promise((r) => setTimeout(r, 700));
  const r2 = await c.send([dest(peer.port)], msg([rcpt('a@example.com')]));
  assert.equal(r2[0]!.outcome, 'delivered');
  assert.equal(peer.connections, 2);
});

test('invalid addresses are refused without a connection', async () => {
  const peer = await startPeer();
  const results = await client().send([dest(peer.port)], msg([rcpt('a@example.com'), rcpt('b<c>@example.com')]));
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(results[1]!.outcome, 'permanent');
  assert.equal(results[1]!.reply.enhanced, '5.1.3');
});

test('the null sender is sent as MAIL FROM:<>', async () => {
  const peer = await startPeer();
  const results = await client().send([dest(peer.port)], msg([rcpt('a@example.com')], { from: '' }));
  assert.equal(results[0]!.outcome, 'delivered');
  assert.equal(peer.received[0]!.from, '');
});

test('encodeXtext (RFC 3461 §4)', () => {
  assert.equal(encodeXtext('abc+d=e f'), 'abc+2Bd+3De+20f');
  assert.equal(encodeXtext('é'), '+C3+A9');
});

test('parseReply: code, enhanced code and multi-line text', () => {
  assert.deepEqual(parseReply('550-5.1.1 first line\n550 5.1.1 second line', 'mx'), { code: 550, enhanced: '5.1.1', text: 'first line\nsecond line', remoteMta: 'mx' });
  assert.deepEqual(parseReply('452 mailbox full', null), { code: 452, enhanced: null, text: 'mailbox full', remoteMta: null });
  assert.deepEqual(parseReply('451 5.1.1 class mismatch', null), { code: 451, enhanced: null, text: '5.1.1 class mismatch', remoteMta: null });
  assert.equal(parseReply('garbage', null), null);
});
