// Outbound benchmark: messages submitted to the real server (yubin serve, child process) on port
// 587 (STARTTLS + AUTH, nodemailer pool) travel through the durable queue to a sink SMTP server
// (smtp-server, in this process) that accepts everything. Measures submission throughput, the
// end-to-end rate (first submission → last message at the sink) and latency (submitted → at the
// sink), and counts the connections the sink saw: with connection reuse on and off.
//
//   npm run bench:outbound -- [--messages M] [--size BYTES] [--connections N] [--reuse on|off] [--fsync on|off]

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '../src/cli/main.js');
const PASSWORD = 'bench password 123';

function cli(dataDir: string, args: string[]): string {
  const result = spawnSync(process.execPath, [CLI, ...args, '--data', dataDir], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`yubin ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '2000' },
      size: { type: 'string', default: '4096' },
      connections: { type: 'string', default: '10' },
      reuse: { type: 'string', default: 'on' },
      fsync: { type: 'string', default: 'on' },
    },
  });
  const messages = Number(values.messages);
  const size = Number(values.size);
  const connections = Number(values.connections);
  const reuse = values.reuse !== 'off';
  const fsync = values.fsync !== 'off';

  // The sink: accepts every recipient, records when each message arrived.
  const arrivedAt = new Map<string, number>();
  let sinkConnections = 0;
  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    size: 50 * 1024 * 1024,
    onConnect(_session, callback) {
      sinkConnections++;
      callback();
    },
    onData(stream, _session, callback) {
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (head.length < 4096) head += chunk.toString('latin1');
      });
      stream.on('end', () => {
        const id = /^X-Bench-Id: (\d+)/m.exec(head)?.[1];
        if (id) arrivedAt.set(id, performance.now());
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const sinkPort = (sink.server.address() as { port: number }).port;

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-outbound-bench-'));
  fs.writeFileSync(
    path.join(dataDir, 'yubin.toml'),
    [
      'hostname = "mx.bench.test"',
      '[queue]',
      `connection_reuse = ${reuse}`,
      'poll_interval = 0.2',
      'max_per_destination = 8',
      '[queue.transports]',
      `"sink.test" = "127.0.0.1:${sinkPort}"`,
      '[storage]',
      `fsync = ${fsync}`,
      '[log]',
      'level = "warn"',
    ].join('\n') + '\n',
  );
  cli(dataDir, ['domain', 'add', 'bench.test']);
  cli(dataDir, ['user', 'add', 'sender@bench.test', '--password', PASSWORD]);

  const proc = spawn(process.execPath, [CLI, 'serve', '--data', dataDir, '--submission', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /submission listening on [^:]+:(\d+)/.exec(out);
      if (m && /^ready$/m.test(out)) resolve(Number(m[1]));
    });
    proc.once('exit', (code) => reject(new Error(`yubin exited ${code}`)));
  });

  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    tls: { rejectUnauthorized: false },
    auth: { user: 'sender@bench.test', pass: PASSWORD },
  });
  const body = 'x'.repeat(75) + '\r\n';
  const text = body.repeat(Math.max(1, Math.floor(size / body.length)));
  const submittedAt = new Map<string, number>();
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < messages) {
        const id = String(next++);
        const raw = `From: sender@bench.test\r\nTo: rcpt${id}@sink.test\r\nSubject: bench ${id}\r\nX-Bench-Id: ${id}\r\n\r\n${text}`;
        const t0 = performance.now();
        await transport.sendMail({ envelope: { from: 'sender@bench.test', to: [`rcpt${id}@sink.test`] }, raw });
        submittedAt.set(id, t0);
      }
    }),
  );
  const submitted = performance.now();
  while (arrivedAt.size < messages) {
    if (performance.now() - submitted > 300_000) throw new Error(`only ${arrivedAt.size} of ${messages} arrived`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const done = performance.now();
  transport.close();
  proc.kill('SIGTERM');
  await new Promise((resolve) => proc.once('exit', resolve));
  sink.close();
  fs.rmSync(dataDir, { recursive: true, force: true });

  const latencies = [...arrivedAt].map(([id, at]) => at - submittedAt.get(id)!).sort((x, y) => x - y);
  const submitRate = messages / ((submitted - start) / 1000);
  const endToEnd = messages / ((done - start) / 1000);
  console.log(`messages: ${messages} of ${size} bytes, ${connections} submission connections, reuse ${reuse ? 'on' : 'off'}, fsync ${fsync ? 'on' : 'off'}`);
  console.log(`submission: ${submitRate.toFixed(0)} messages/s (accepted, queued durably)`);
  console.log(`end to end: ${endToEnd.toFixed(0)} messages/s (first submission → last at the sink)`);
  console.log(`latency submitted → at the sink: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms`);
  console.log(`connections opened to the sink: ${sinkConnections}`);
  console.log(
    `| \`npm run bench:outbound${reuse ? '' : ' -- --reuse off'}\` | ${reuse ? 'on' : 'off'} | ${messages} | ${Math.round(size / 1024)} KiB | ${submitRate.toFixed(0)} | ${endToEnd.toFixed(0)} | ${percentile(latencies, 50).toFixed(0)} | ${percentile(latencies, 99).toFixed(0)} | ${sinkConnections} |`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
