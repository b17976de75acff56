// An in-process authoritative DNS server for tests (dns2), on 127.0.0.1, UDP and TCP on the
// same ephemeral port (c-ares retries truncated UDP answers over TCP, e.g. long DKIM keys).

import dgram from 'node:dgram';
import net from 'node:net';
import { Packet, TCPServer, UDPServer } from 'dns2';

/** Names lower-case, without the trailing dot. Mutable: tests may change records while the server runs. */
export interface DnsZone {
  mx?: Record<string, Array<{ exchange: string; priority: number }>>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  /** Each string is one TXT record; longer than 255 bytes it is sent as several character-strings. */
  txt?: Record<string, string[]>;
  /** Names answered with SERVFAIL whatever the type. */
  servfail?: string[];
}

export interface TestDnsServer {
  /** "127.0.0.1:PORT", for DnsResolver servers / [dns] servers / --dns. */
  address: string;
  port: number;
  zone: DnsZone;
  /** Every question received, in order ("example.com", "MX"); tests may inspect or clear it. */
  queries: Array<{ name: string; type: string }>;
  close(): Promise<void>;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Packet.TYPE).map(([k, v]) => [v as number, k]));

// RFC 1035 §4.1.1 (dns2's typings lack Packet.RCODE).
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3 } as const;

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Splits one TXT value into character-strings of at most 255 bytes, never inside a UTF-8 sequence. */
export function splitTxt(value: string): Buffer[] {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length === 0) return [Buffer.alloc(0)];
  const chunks: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + 255, bytes.length);
    if (end < bytes.length) while (end > start + 1 && (bytes[end]! & 0xc0) === 0x80) end--;
    chunks.push(bytes.subarray(start, end));
    start = end;
  }
  return chunks;
}

function lookupIn<T>(table: Record<string, T> | undefined, name: string): T | undefined {
  if (!table) return undefined;
  if (Object.prototype.hasOwnProperty.call(table, name)) return table[name];
  for (const [key, value] of Object.entries(table)) if (normalize(key) === name) return value;
  return undefined;
}

/** A name exists if it owns any record, or is an ancestor of one that does (an empty non-terminal). */
function nameExists(zone: DnsZone, name: string): boolean {
  for (const table of [zone.mx, zone.a, zone.aaaa, zone.txt]) {
    for (const key of Object.keys(table ?? {})) {
      const owner = normalize(key);
      if (owner === name || owner.endsWith(`.${name}`)) return true;
    }
  }
  return false;
}

type Answer = Record<string, unknown>;

function answerFor(zone: DnsZone, name: string, qname: string, type: number): { rcode: number; answers: Answer[] } {
  if ((zone.servfail ?? []).some((n) => normalize(n) === name)) return { rcode: RCODE.SERVFAIL, answers: [] };
  if (!nameExists(zone, name)) return { rcode: RCODE.NXDOMAIN, answers: [] };
  const base = { name: qname, class: Packet.CLASS.IN, ttl: 60 };
  const answers: Answer[] = [];
  const wants = (t: number) => type === t || type === Packet.TYPE.ANY;
  if (wants(Packet.TYPE.A)) for (const address of lookupIn(zone.a, name) ?? []) answers.push({ ...base, type: Packet.TYPE.A, address });
  if (wants(Packet.TYPE.AAAA)) for (const address of lookupIn(zone.aaaa, name) ?? []) answers.push({ ...base, type: Packet.TYPE.AAAA, address });
  if (wants(Packet.TYPE.MX)) for (const mx of lookupIn(zone.mx, name) ?? []) answers.push({ ...base, type: Packet.TYPE.MX, exchange: mx.exchange === '.' ? '' : mx.exchange, priority: mx.priority });
  if (wants(Packet.TYPE.TXT)) for (const value of lookupIn(zone.txt, name) ?? []) answers.push({ ...base, type: Packet.TYPE.TXT, data: splitTxt(value) });
  return { rcode: RCODE.NOERROR, answers };
}

/** Binds UDP on an ephemeral port and TCP on the same one (retrying if TCP's is taken). */
async function bindBoth(udp: InstanceType<typeof UDPServer>, tcp: InstanceType<typeof TCPServer>): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const socket = udp as unknown as dgram.Socket;
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = (udp as unknown as dgram.Socket).address().port;
  await new Promise<void>((resolve, reject) => {
    const server = tcp as unknown as net.Server;
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return port;
}

export async function startDnsServer(zone: DnsZone): Promise<TestDnsServer> {
  const queries: Array<{ name: string; type: string }> = [];
  const handle = (request: InstanceType<typeof Packet>, send: (response: InstanceType<typeof Packet>) => unknown) => {
    const response = Packet.createResponseFromRequest(request);
    response.header.aa = 1;
    try {
      const question = request.questions[0];
      if (!question || request.questions.length !== 1) {
        response.header.rcode = RCODE.FORMERR;
      } else {
        const name = normalize(String(question.name));
        queries.push({ name, type: TYPE_NAMES[question.type as number] ?? String(question.type) });
        const { rcode, answers } = answerFor(zone, name, String(question.name), question.type as number);
        response.header.rcode = rcode;
        for (const answer of answers) response.answers.push(answer as unknown as (typeof response.answers)[number]);
      }
    } catch {
      response.answers = [];
      response.header.rcode = RCODE.SERVFAIL;
    }
    Promise.resolve(send(response)).catch(() => undefined);
  };

  for (let attempt = 0; ; attempt++) {
    const udp = new UDPServer({ type: 'udp4' });
    const tcp = new TCPServer();
    udp.on('request', handle as never);
    tcp.on('request', handle as never);
    udp.on('requestError', () => undefined);
    tcp.on('requestError', () => undefined);
    try {
      const port = await bindBoth(udp, tcp);
      const sockets = new Set<net.Socket>();
      (tcp as unknown as net.Server).on('connection', (socket: net.Socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      (tcp as unknown as net.Server).on('error', () => undefined);
      (udp as unknown as dgram.Socket).on('error', () => undefined);
      return {
        address: `127.0.0.1:${port}`,
        port,
        zone,
        queries,
        close: async () => {
          await Promise.all([
            new Promise<void>((resolve) => (udp as unknown as dgram.Socket).close(() => resolve())),
            new Promise<void>((resolve) => {
              const server = tcp as unknown as net.Server;
              server.close(() => resolve());
              for (const socket of sockets) socket.destroy();
            }),
          ]);
        },
      };
    } catch (err) {
      try {
        (udp as unknown as dgram.Socket).close();
      } catch {
        // not bound
      }
      (tcp as unknown as net.Server).close();
      if (attempt >= 20) throw err;
    }
  }
}
