// POP3 download benchmark: the real server (yubin serve, as a child process) on a throwaway data
// directory holding C users, each with an INBOX of M messages of a given size (loaded before the
// server starts, in-process through Yubin's own store code: SqliteStore.appendMessage with the
// direct writer, no fsync). Then C concurrent raw-socket POP3 clients each log in, STAT, LIST and
// RETR every message in turn (one command at a time, no pipelining), and QUIT without DELE.
// Measures the wall time of the download phase and checks that every RETR delivered exactly the
// octets LIST announced (after dot-unstuffing, without the terminator) and that nothing was lost.
//
//   npm run bench:pop3 -- [--clients C] [--messages M] [--size BYTES] [--cpu-prof DIR]

import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, seen from dist/bench/. */
const CLI = path.resolve(here, '../src/cli/main.js');
const DOMAIN = 'bench.test';
const PASSWORD = 'bench-password';

interface Options {
  clients: number;
  messages: number;
  size: number;
  cpuProf: string | null;
}

function usage(message: string): never {
  console.error(`pop3-bench: ${message}`);
  console.error('usage: node dist/bench/pop3-bench.js [--clients C] [--messages M] [--size BYTES] [--cpu-prof DIR]');
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        clients: { type: 'string', default: '50' },
        messages: { type: 'string', default: '1000' },
        size: { type: 'string', default: '4096' },
        'cpu-prof': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const positive = (name: string, value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) usage(`--${name} must be a positive integer, got "${value}"`);
    return Number(value);
  };
  const size = positive('size', values.size);
  if (size < 400) usage(`--size must be at least 400 bytes (room for the header), got ${size}`);
  return {
    clients: positive('clients', values.clients),
    messages: positive('messages', values.messages),
    size,
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : null,
  };
}

/** Runs the real CLI; rejects with its stderr when it does not exit 0. */
function runCli(dataDir: string, args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args, '--data', dataDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`yubin ${args.join(' ')} exited ${code}: ${err.trim()}`))));
    child.stdin.end(input);
  });
}

/** Adds the users in parallel batches (each CLI process hashes one password with scrypt). */
async function addUsers(dataDir: string, addresses: string[], parallel = 8): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < addresses.length) {
      const address = addresses[next++]!;
      await runCli(dataDir, ['user', 'add', address, '--password-stdin', '--quota', 'none'], `${PASSWORD}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, addresses.length) }, worker));
}

function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * Messages of exactly `size` bytes with CRLF line ends only and a final CRLF (so that the POP3
 * size equals the stored size): a fixed-length header whose Message-ID numbers the message, then
 * a base64 body shared by all messages.
 */
function messageFactory(size: number, runId: string): (user: number, index: number) => Buffer {
  const head = (user: number, index: number) =>
    `From: <bench@client.test>\r\nTo: <user${String(user).padStart(6, '0')}@${DOMAIN}>\r\n` +
    `Subject: pop3 bench message ${String(index).padStart(9, '0')}\r\n` +
    `Message-ID: <${runId}.${String(user).padStart(6, '0')}.${String(index).padStart(9, '0')}@client.test>\r\n` +
    `Date: ${formatDate(new Date(0))}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const bodyLength = size - head(0, 0).length;
  const random = crypto.randomBytes(Math.ceil((bodyLength * 3) / 4) + 3).toString('base64');
  let body = '';
  for (let offset = 0; body.length < bodyLength; offset += 76) {
    body += random.slice(offset, offset + 76) + '\r\n';
  }
  // The tail of the line sequence, exactly bodyLength bytes; never starting with a bare LF.
  const bodyBytes = Buffer.from(body.slice(body.length - bodyLength), 'latin1');
  if (bodyBytes[0] === 0x0a) bodyBytes[0] = 0x78;
  return (user, index) => {
    const bytes = Buffer.concat([Buffer.from(head(user, index), 'latin1'), bodyBytes]);
    return normalizeCrlf(bytes);
  };
}

/** CRLF line ends only (bare CR and bare LF become CRLF) and a final CRLF. */
function normalizeCrlf(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n');
  return Buffer.from(text.endsWith('\r\n') ? text : text + '\r\n', 'latin1');
}

/** Fills each user's INBOX through the store's own code; the server must not be running. */
async function loadMaildrops(dataDir: string, addresses: string[], messages: number, size: number): Promise<{ count: number; bytes: number; sizes: number[] }> {
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  const makeMessage = messageFactory(size, crypto.randomBytes(4).toString('hex'));
  let count = 0;
  let bytes = 0;
  const sizes = new Set<number>();
  try {
    for (let u = 0; u < addresses.length; u++) {
      const address = addresses[u]!;
      const account = await store.getAccount(address);
      if (!account) throw new Error(`no account ${address}`);
      const inbox = await store.getMailbox(account.id, 'INBOX');
      if (!inbox) throw new Error(`${address} has no INBOX`);
      for (let i = 1; i <= messages; i++) {
        const message = makeMessage(u, i);
        const result = await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: message, flags: [], internalDate: new Date() });
        if (!result.ok) throw new Error(`appendMessage ${address} #${i} refused: ${JSON.stringify(result)}`);
        count++;
        bytes += message.length;
        sizes.add(message.length);
      }
    }
  } finally {
    await store.close();
  }
  return { count, bytes, sizes: [...sizes] };
}

interface Server {
  proc: ChildProcess;
  host: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function startServer(dataDir: string, cpuProf: string | null): Promise<Server> {
  // --cpu-prof is refused in NODE_OPTIONS, so it goes on the command line.
  const nodeArgs: string[] = [];
  if (cpuProf) {
    fs.mkdirSync(cpuProf, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cpuProf}`);
  }
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--pop3', '127.0.0.1:0', '--smtp', '127.0.0.1:0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not become ready: ${out}\n${err}`)), 60_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const listening = /^pop3 listening on \[?([^\]\s]+?)\]?:(\d+)$/m.exec(out);
      if (listening && /^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve({ proc, host: listening[1]!, port: Number(listening[2]), exited, stderr: () => err });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before it was ready: ${out}\n${err}`));
    });
  });
}

// -------------------------------------------------------------------------------------------
// A minimal POP3 client over a raw socket: one command at a time, CRLF lines in.

const LF = 0x0a;
const DOT = 0x2e;

class Pop3Client {
  private pending: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  private closed = false;
  private error: Error | null = null;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.pending = this.pending.length === 0 ? d : Buffer.concat([this.pending, d]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
  }

  static connect(host: string, port: number): Promise<Pop3Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new Pop3Client(socket));
      });
      socket.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next line, CRLF included, as a view into the received data. */
  private async nextLine(): Promise<Buffer> {
    for (;;) {
      const end = this.pending.indexOf(LF);
      if (end >= 0) {
        const line = this.pending.subarray(0, end + 1);
        this.pending = this.pending.subarray(end + 1);
        return line;
      }
      if (this.error) throw this.error;
      if (this.closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /** A single-line reply; throws unless it is +OK. */
  async reply(): Promise<string> {
    const line = (await this.nextLine()).toString('latin1').replace(/\r?\n$/, '');
    if (!line.startsWith('+OK')) throw new Error(`unexpected reply: ${line}`);
    return line;
  }

  async command(line: string): Promise<string> {
    this.socket.write(line + '\r\n');
    return this.reply();
  }

  /**
   * A multi-line reply (RFC 1939 §3): +OK line, then data lines up to ".". Returns the first line,
   * the octets of the data once unstuffed (CRLFs counted, terminator not), and, when asked, the
   * data lines as text.
   */
  async multi(line: string, keepLines = false): Promise<{ first: string; octets: number; lines: string[] }> {
    this.socket.write(line + '\r\n');
    const first = await this.reply();
    let octets = 0;
    const lines: string[] = [];
    for (;;) {
      const data = await this.nextLine();
      if (data.length < 2 || data[data.length - 2] !== 0x0d) throw new Error(`a line without CRLF in the reply to ${line}`);
      if (data[0] === DOT) {
        if (data.length === 3) break; // ".\r\n"
        octets += data.length - 1; // dot-stuffed
        if (keepLines) lines.push(data.subarray(1, data.length - 2).toString('latin1'));
      } else {
        octets += data.length;
        if (keepLines) lines.push(data.subarray(0, data.length - 2).toString('latin1'));
      }
    }
    return { first, octets, lines };
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

interface ClientResult {
  retrieved: number;
  octets: number;
  mismatches: string[];
}

/** One maildrop's download: USER/PASS, STAT, LIST, RETR 1..n, QUIT (no DELE). */
async function download(host: string, port: number, address: string, expected: number): Promise<ClientResult> {
  const client = await Pop3Client.connect(host, port);
  const mismatches: string[] = [];
  try {
    await client.reply(); // greeting
    await client.command(`USER ${address}`);
    await client.command(`PASS ${PASSWORD}`);
    const stat = /^\+OK (\d+) (\d+)/.exec(await client.command('STAT'));
    if (!stat) throw new Error(`${address}: bad STAT reply`);
    const count = Number(stat[1]);
    if (count !== expected) mismatches.push(`${address}: STAT says ${count} messages, expected ${expected}`);
    const list = await client.multi('LIST', true);
    const sizes = new Map<number, number>();
    let listed = 0;
    for (const line of list.lines) {
      const m = /^(\d+) (\d+)$/.exec(line);
      if (!m) throw new Error(`${address}: bad LIST line "${line}"`);
      sizes.set(Number(m[1]), Number(m[2]));
      listed += Number(m[2]);
    }
    if (sizes.size !== count) mismatches.push(`${address}: LIST has ${sizes.size} lines, STAT said ${count}`);
    if (listed !== Number(stat[2])) mismatches.push(`${address}: LIST sizes add up to ${listed}, STAT said ${stat[2]}`);
    let octets = 0;
    let retrieved = 0;
    for (let n = 1; n <= count; n++) {
      const { octets: got } = await client.multi(`RETR ${n}`);
      const want = sizes.get(n);
      if (got !== want) mismatches.push(`${address}: RETR ${n} sent ${got} octets, LIST said ${want}`);
      octets += got;
      retrieved++;
    }
    await client.command('QUIT');
    client.end();
    return { retrieved, octets, mismatches };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/** CPU seconds (user, system) a process has used so far, from /proc (Linux); null elsewhere. */
function processCpuSeconds(pid: number | undefined): { user: number; system: number } | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(CLI)) usage(`${CLI} not found; build first (npx tsc -p .)`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-pop3-bench-'));
  let server: Server | null = null;
  let exitCode = 0;
  try {
    const toml = ['[auth]', 'failure_delay = 0', '[log]', 'level = "warn"', '[pop3]', `max_connections_per_ip = ${options.clients + 10}`];
    if (options.clients + 10 > 1000) toml.push(`max_connections = ${options.clients + 10}`);
    fs.writeFileSync(path.join(dataDir, 'yubin.toml'), toml.join('\n') + '\n');

    const setupStarted = Date.now();
    await runCli(dataDir, ['domain', 'add', DOMAIN]);
    const users = Array.from({ length: options.clients }, (_, i) => `user${i}@${DOMAIN}`);
    await addUsers(dataDir, users);
    const usersSeconds = (Date.now() - setupStarted) / 1000;
    console.log(`setup: ${options.clients} users in ${usersSeconds.toFixed(1)} s (data in ${dataDir})`);
    const loadStarted = Date.now();
    const loaded = await loadMaildrops(dataDir, users, options.messages, options.size);
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    console.log(
      `setup: ${loaded.count} messages (${(loaded.bytes / (1024 * 1024)).toFixed(1)} MiB) appended in ${loadSeconds.toFixed(1)} s ` +
        `(${(loaded.count / loadSeconds).toFixed(0)} messages/s)`,
    );

    server = await startServer(dataDir, options.cpuProf);
    const { host, port } = server;

    const serverCpuBefore = processCpuSeconds(server.proc.pid);
    const clientCpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    const settled = await Promise.allSettled(users.map((address) => download(host, port, address, options.messages)));
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientCpuSeconds = (clientCpu.user + clientCpu.system) / 1e6;
    const serverCpuAfter = processCpuSeconds(server.proc.pid);
    const serverCpu =
      serverCpuBefore && serverCpuAfter ? { user: serverCpuAfter.user - serverCpuBefore.user, system: serverCpuAfter.system - serverCpuBefore.system } : null;

    let retrieved = 0;
    let octets = 0;
    const mismatches: string[] = [];
    const failures: string[] = [];
    settled.forEach((result, i) => {
      if (result.status === 'fulfilled') {
        retrieved += result.value.retrieved;
        octets += result.value.octets;
        mismatches.push(...result.value.mismatches);
      } else failures.push(`${users[i]}: ${(result.reason as Error).message}`);
    });

    // Nothing was deleted (QUIT without DELE): every message must still be there.
    server.proc.kill('SIGTERM');
    const exit = await server.exited;
    server = null;
    const listed = JSON.parse(await runCli(dataDir, ['user', 'list', '--json'])) as Array<{ messages: number }>;
    const stored = listed.reduce((sum, u) => sum + u.messages, 0);

    const cpu = os.cpus();
    const seconds = wallMs / 1000;
    const rate = retrieved / seconds;
    const mibs = octets / (1024 * 1024) / seconds;
    const expected = options.clients * options.messages;
    console.log('');
    console.log(`machine      ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${os.platform()} ${os.release()}`);
    console.log(`node         ${process.version}`);
    console.log(`clients      ${options.clients} concurrent (one maildrop each, RETR one at a time)`);
    console.log(`messages     ${options.messages} per maildrop, ${expected} in all; ${retrieved} retrieved`);
    console.log(`size         ${options.size} bytes (as POP3 sends them: ${loaded.sizes.join(', ')})`);
    console.log(`wall time    ${seconds.toFixed(2)} s (login to QUIT, all clients)`);
    console.log(`throughput   ${rate.toFixed(0)} messages/s, ${mibs.toFixed(1)} MiB/s (${(octets / (1024 * 1024)).toFixed(1)} MiB of message data)`);
    const cores = (s: number) => `${s.toFixed(1)} s (${(s / seconds).toFixed(2)} cores)`;
    const serverCpuText = serverCpu
      ? `${cores(serverCpu.user + serverCpu.system)} [user ${serverCpu.user.toFixed(1)} s, system ${serverCpu.system.toFixed(1)} s; ` +
        `${(((serverCpu.user + serverCpu.system) * 1e6) / Math.max(1, retrieved)).toFixed(0)} µs per message]`
      : 'n/a';
    console.log(`cpu          server ${serverCpuText}`);
    console.log(`             bench client ${cores(clientCpuSeconds)}; machine load average (1 min) ${os.loadavg()[0]!.toFixed(1)}`);
    console.log(`octets       RETR vs LIST: ${mismatches.length === 0 ? 'every message as announced: OK' : `${mismatches.length} MISMATCH(ES)`}`);
    console.log(`stored       ${stored} messages after the run ${stored === expected ? '(none deleted): OK' : `≠ ${expected}: MISMATCH`}`);
    console.log(`setup        users ${usersSeconds.toFixed(1)} s, loading ${loadSeconds.toFixed(1)} s`);
    console.log(`server exit  ${exit.code ?? exit.signal}`);
    console.log('');
    console.log('| cores | node | clients | messages/maildrop | size (bytes) | wall s | messages/s | MiB/s |');
    console.log('|---|---|---|---|---|---|---|---|');
    console.log(`| ${cpu.length} | ${process.version} | ${options.clients} | ${options.messages} | ${options.size} | ${seconds.toFixed(2)} | ${rate.toFixed(0)} | ${mibs.toFixed(1)} |`);

    if (failures.length > 0) {
      console.error(`\n${failures.length} client(s) failed; first: ${failures.slice(0, 5).join('; ')}`);
      exitCode = 1;
    }
    if (mismatches.length > 0) {
      console.error(`\n${mismatches.length} mismatch(es); first: ${mismatches.slice(0, 5).join('; ')}`);
      exitCode = 1;
    }
    if (retrieved !== expected || stored !== expected) exitCode = 1;
    if (exit.code !== 0) {
      console.error(`the server did not exit 0 on SIGTERM: ${exit.code ?? exit.signal}`);
      exitCode = 1;
    }
  } finally {
    if (server) {
      server.proc.kill('SIGKILL');
      await server.exited;
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  process.exitCode = exitCode;
}

main().catch((err: unknown) => {
  console.error(`pop3-bench: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
