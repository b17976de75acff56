// SMTP delivery benchmark: the real server (yubin serve, as a child process) on a throwaway
// data directory, N concurrent nodemailer connections delivering M messages of a given size to
// random local users, each connection reused for many messages. Measures per-message latency
// (MAIL FROM sent → 250 after the end of data read) and throughput, then checks that the store
// holds exactly M messages.
//
//   npm run bench:smtp -- [--connections N] [--messages M] [--size BYTES] [--users U] [--fsync on|off]
//                         [--cpu-prof DIR]   (writes V8 CPU profiles of the server into DIR)
//   BENCH_SENDER_AUTH=off turns off the MX's SPF/DKIM/DMARC checks (smtp.check_sender_auth), to
//   measure what they cost; they use the system's DNS resolver through Yubin's cache (dns.cache).
//   BENCH_INLINE_MAX=SIZE and BENCH_DEDUP_MIN=SIZE set storage.inline_max and storage.dedup_min.

import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, seen from dist/bench/. */
const CLI = path.resolve(here, '../src/cli/main.js');
const DOMAIN = 'bench.test';
const SENDER = 'bench@client.test';

interface Options {
  connections: number;
  messages: number;
  size: number;
  users: number;
  fsync: boolean;
  cpuProf: string | null;
}

function usage(message: string): never {
  console.error(`smtp-bench: ${message}`);
  console.error('usage: node dist/bench/smtp-bench.js [--connections N] [--messages M] [--size BYTES] [--users U] [--fsync on|off] [--cpu-prof DIR]');
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        connections: { type: 'string', default: '20' },
        messages: { type: 'string', default: '5000' },
        size: { type: 'string', default: '4096' },
        users: { type: 'string', default: '100' },
        fsync: { type: 'string', default: 'on' },
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
  if (values.fsync !== 'on' && values.fsync !== 'off') usage(`--fsync must be on or off, got "${values.fsync}"`);
  return {
    connections: positive('connections', values.connections),
    messages: positive('messages', values.messages),
    size: positive('size', values.size),
    users: positive('users', values.users),
    fsync: values.fsync === 'on',
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
      await runCli(dataDir, ['user', 'add', address, '--password-stdin', '--quota', 'none'], 'bench-password\n');
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, addresses.length) }, worker));
}

interface Server {
  proc: ChildProcess;
  host: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

function startServer(dataDir: string, cpuProf: string | null): Promise<Server> {
  // --cpu-prof is refused in NODE_OPTIONS, so it goes on the command line (workers inherit it).
  const nodeArgs: string[] = [];
  if (cpuProf) {
    fs.mkdirSync(cpuProf, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cpuProf}`);
  }
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--smtp', '127.0.0.1:0', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not become ready: ${out}\n${err}`)), 30_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const listening = /^smtp listening on \[?([^\]\s]+?)\]?:(\d+)$/m.exec(out);
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

/**
 * Messages of exactly `size` bytes: a fixed-length header whose Message-ID numbers the message
 * (so that no two are identical and none is deduplicated), then a shared base64 body.
 */
function messageFactory(size: number, runId: string): (index: number) => Buffer {
  const head = (index: number) =>
    `From: <${SENDER}>\r\nTo: bench recipients:;\r\nSubject: bench message ${String(index).padStart(9, '0')}\r\n` +
    `Message-ID: <${runId}.${String(index).padStart(9, '0')}@client.test>\r\nDate: ${formatDate(new Date(0))}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  const bodyLength = Math.max(3, size - head(0).length);
  const random = crypto.randomBytes(Math.ceil((bodyLength * 3) / 4) + 3).toString('base64');
  let body = '';
  for (let offset = 0; body.length < bodyLength; offset += 76) {
    const room = bodyLength - body.length - 2;
    body += random.slice(offset, offset + Math.max(1, Math.min(76, room))) + '\r\n';
  }
  const bodyBytes = Buffer.from(body.slice(body.length - bodyLength), 'latin1');
  if (bodyBytes[0] === 0x0a) bodyBytes[0] = 0x78; // never a bare LF after the header's blank line
  return (index) => Buffer.concat([Buffer.from(head(index), 'latin1'), bodyBytes]);
}

function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

function connect(host: string, port: number): Promise<SMTPConnection> {
  const conn = new SMTPConnection({ host, port, ignoreTLS: true, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000 });
  return new Promise((resolve, reject) => {
    let done = false;
    const settle = (err: Error | null) => {
      if (done) return;
      done = true;
      if (err) reject(err);
      else resolve(conn);
    };
    conn.on('error', (err) => settle(err));
    conn.once('end', () => settle(new Error('connection ended before the greeting')));
    conn.connect((err) => settle(err ?? null));
  });
}

function send(conn: SMTPConnection, to: string, message: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const onEnd = () => finish(new Error('connection ended'));
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      conn.off('end', onEnd);
      if (err) reject(err);
      else resolve();
    };
    conn.once('end', onEnd);
    conn.send({ from: SENDER, to: [to], size: message.length }, message, (err, info) => {
      if (err) return finish(err);
      if (!/^250[ -]/.test(info.response)) return finish(new Error(`unexpected reply: ${info.response}`));
      finish(null);
    });
  });
}

/** CPU seconds (user, system) a process has used so far, from /proc (Linux); null elsewhere. */
function processCpuSeconds(pid: number | undefined): { user: number; system: number } | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after "pid (comm) ", in ticks of 1/100 s.
    return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
  } catch {
    return null;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(CLI)) usage(`${CLI} not found; build first (npx tsc -p .)`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-bench-'));
  let server: Server | null = null;
  let exitCode = 0;
  try {
    const toml = ['[log]', 'level = "warn"'];
    toml.push('', '[storage]');
    if (!options.fsync) toml.push('fsync = false');
    if (process.env.BENCH_INLINE_MAX) toml.push(`inline_max = "${process.env.BENCH_INLINE_MAX}"`);
    if (process.env.BENCH_DEDUP_MIN) toml.push(`dedup_min = "${process.env.BENCH_DEDUP_MIN}"`);
    toml.push('', '[smtp]', `check_sender_auth = ${process.env.BENCH_SENDER_AUTH !== 'off'}`);
    if (options.connections > 20) {
      toml.push(`max_connections_per_ip = ${options.connections}`);
      if (options.connections > 1000) toml.push(`max_connections = ${options.connections}`);
    }
    fs.writeFileSync(path.join(dataDir, 'yubin.toml'), toml.join('\n') + '\n');

    const setupStarted = Date.now();
    await runCli(dataDir, ['domain', 'add', DOMAIN]);
    const users = Array.from({ length: options.users }, (_, i) => `user${i}@${DOMAIN}`);
    await addUsers(dataDir, users);
    console.log(`setup: ${options.users} users in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s (data in ${dataDir})`);

    server = await startServer(dataDir, options.cpuProf);
    const { host, port } = server;
    const makeMessage = messageFactory(options.size, crypto.randomBytes(4).toString('hex'));

    const serverCpuBefore = processCpuSeconds(server.proc.pid);
    const connections = await Promise.all(Array.from({ length: options.connections }, () => connect(host, port)));
    const latencies = new Float64Array(options.messages);
    let next = 0;
    let sent = 0;
    const failures: string[] = [];
    const started = process.hrtime.bigint();
    const clientCpuBefore = process.cpuUsage();
    await Promise.all(
      connections.map(async (first) => {
        let conn: SMTPConnection | null = first;
        while (next < options.messages) {
          const index = next++;
          const message = makeMessage(index);
          const to = users[Math.floor(Math.random() * users.length)]!;
          try {
            conn ??= await connect(host, port);
            const t0 = process.hrtime.bigint();
            await send(conn, to, message);
            latencies[sent++] = Number(process.hrtime.bigint() - t0) / 1e6;
          } catch (err) {
            failures.push(`message ${index}: ${(err as Error).message}`);
            conn?.close();
            conn = null;
          }
        }
        conn?.quit();
      }),
    );
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const clientCpuSeconds = (clientCpu.user + clientCpu.system) / 1e6;
    const serverCpuAfter = processCpuSeconds(server.proc.pid);
    const serverCpu =
      serverCpuBefore && serverCpuAfter ? { user: serverCpuAfter.user - serverCpuBefore.user, system: serverCpuAfter.system - serverCpuBefore.system } : null;

    const sorted = latencies.slice(0, sent).sort();
    const rate = sent / (wallMs / 1000);
    const listed = JSON.parse(await runCli(dataDir, ['user', 'list', '--json'])) as Array<{ messages: number; used: number }>;
    const stored = listed.reduce((sum, u) => sum + u.messages, 0);

    server.proc.kill('SIGTERM');
    const exit = await server.exited;
    server = null;

    const cpu = os.cpus();
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    const max = sorted.length ? sorted[sorted.length - 1]! : NaN;
    const fsyncText = options.fsync ? 'on' : 'off';
    console.log('');
    console.log(`machine      ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${os.platform()} ${os.release()}`);
    console.log(`node         ${process.version}`);
    console.log(`fsync        ${fsyncText}`);
    console.log(`connections  ${options.connections}`);
    console.log(`messages     ${options.messages} (${sent} got 250, ${failures.length} failed)`);
    console.log(`size         ${options.size} bytes`);
    console.log(`users        ${options.users}`);
    console.log(`wall time    ${(wallMs / 1000).toFixed(2)} s`);
    console.log(`throughput   ${rate.toFixed(0)} messages/s, ${((rate * options.size) / (1024 * 1024)).toFixed(1)} MiB/s`);
    console.log(`latency      p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`);
    const cores = (seconds: number) => `${seconds.toFixed(1)} s (${(seconds / (wallMs / 1000)).toFixed(2)} cores)`;
    const serverCpuText = serverCpu
      ? `${cores(serverCpu.user + serverCpu.system)} [user ${serverCpu.user.toFixed(1)} s, system ${serverCpu.system.toFixed(1)} s; ` +
        `${(((serverCpu.user + serverCpu.system) * 1000) / Math.max(1, sent)).toFixed(2)} ms per message]`
      : 'n/a';
    console.log(`cpu          server ${serverCpuText}`);
    console.log(`             bench client ${cores(clientCpuSeconds)}; machine load average (1 min) ${os.loadavg()[0]!.toFixed(1)}`);
    console.log(`stored       ${stored} messages (user list --json) ${stored === options.messages ? '= messages sent: OK' : `≠ ${options.messages}: MISMATCH`}`);
    console.log(`server exit  ${exit.code ?? exit.signal}`);
    if (options.cpuProf) console.log(`cpu profiles ${options.cpuProf}`);
    console.log('');
    console.log('| cores | node | fsync | connections | messages | size (bytes) | messages/s | p50 ms | p99 ms | max ms |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${cpu.length} | ${process.version} | ${fsyncText} | ${options.connections} | ${options.messages} | ${options.size} | ${rate.toFixed(0)} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${max.toFixed(1)} |`,
    );

    if (failures.length > 0) {
      console.error(`\n${failures.length} message(s) failed; first: ${failures.slice(0, 5).join('; ')}`);
      exitCode = 1;
    }
    if (stored !== options.messages) exitCode = 1;
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
  console.error(`smtp-bench: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
