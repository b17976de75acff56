// Yubin's side: a template data directory (domain and users made once with the real CLI), a
// fresh copy of it per round, mailboxes filled through Yubin's own store code while the server
// is stopped (as bench/imap-bench.ts and bench/pop3-bench.ts do), and the server itself
// (`yubin serve`, a child process) on loopback with its defaults: the embedded store, fsync on.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { DOMAIN, PASSWORD } from './messages.js';
import { run } from './common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, seen from dist/bench/peers/. */
export const CLI = path.resolve(here, '../../src/cli/main.js');
export const YUBIN_HOST = '127.0.0.1';

export interface YubinServer {
  proc: ChildProcess;
  pid: number;
  host: string;
  smtpPort: number;
  imapPort: number;
  pop3Port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
}

export interface YubinSettings {
  /** smtp.check_sender_auth (Yubin's default: on). */
  senderAuth: boolean;
  /** IMAP connections the memory workload opens at most. */
  maxImapConnections: number;
}

async function cli(dataDir: string, args: string[], input = ''): Promise<string> {
  const result = await run(process.execPath, [CLI, ...args, '--data', dataDir], { input, timeoutMs: 120_000 });
  if (result.status !== 0) throw new Error(`yubin ${args.join(' ')} exited ${result.status}: ${result.stderr.trim()}`);
  return result.stdout;
}

export function yubinVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/**
 * Writes yubin.toml: the defaults (log level info, like Postfix's and Dovecot's logging of every
 * message and login), with connection limits raised for the load.
 */
function writeConfig(dataDir: string, settings: YubinSettings): void {
  const imapLimit = settings.maxImapConnections + 500;
  const toml = [
    '[smtp]',
    `check_sender_auth = ${settings.senderAuth}`,
    'max_connections_per_ip = 100',
    '',
    '[imap]',
    `max_connections = ${imapLimit}`,
    `max_connections_per_ip = ${imapLimit}`,
    '',
    '[pop3]',
    'max_connections_per_ip = 200',
  ];
  fs.writeFileSync(path.join(dataDir, 'yubin.toml'), toml.join('\n') + '\n');
}

/** The template: domain and users, no mail. Users get no quota (nothing is refused for space). */
export async function makeTemplate(dir: string, users: string[], settings: YubinSettings): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  writeConfig(dir, settings);
  await cli(dir, ['domain', 'add', DOMAIN]);
  let next = 0;
  const worker = async () => {
    while (next < users.length) {
      const address = users[next++]!;
      await cli(dir, ['user', 'add', address, '--password-stdin', '--quota', 'none'], `${PASSWORD}\n`);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

/** A fresh copy of the template (server stopped). */
export function freshDataDir(template: string, dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}

export interface LoadItem {
  address: string;
  bytes: Buffer;
  flags: string[];
  internalDate: Date;
}

/**
 * Fills INBOXes through the store's own code (SqliteStore.appendMessage with the direct writer,
 * no fsync: setup, not measured). The server must not be running.
 */
export async function loadYubin(dataDir: string, items: Iterable<LoadItem>): Promise<number> {
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  const inboxes = new Map<string, { accountId: number; mailboxId: number }>();
  let count = 0;
  try {
    for (const item of items) {
      let target = inboxes.get(item.address);
      if (!target) {
        const account = await store.getAccount(item.address);
        if (!account) throw new Error(`no account ${item.address}`);
        const inbox = await store.getMailbox(account.id, 'INBOX');
        if (!inbox) throw new Error(`${item.address} has no INBOX`);
        inboxes.set(item.address, (target = { accountId: account.id, mailboxId: inbox.id }));
      }
      const result = await store.appendMessage({ ...target, bytes: item.bytes, flags: item.flags, internalDate: item.internalDate });
      if (!result.ok) throw new Error(`appendMessage for ${item.address} refused: ${JSON.stringify(result)}`);
      count++;
    }
  } finally {
    await store.close();
  }
  return count;
}

/** Messages in the store, read-only (the server may be running: WAL readers do not block it). */
export function yubinCounter(dataDir: string): { count: () => number; close: () => void } {
  const db = new Database(path.join(dataDir, 'yubin.db'), { readonly: true, fileMustExist: true });
  const statement = db.prepare('SELECT count(*) AS n FROM messages');
  return { count: () => (statement.get() as { n: number }).n, close: () => db.close() };
}

export function startYubin(dataDir: string, settings: YubinSettings): Promise<YubinServer> {
  writeConfig(dataDir, settings);
  // The log (JSON lines on stderr) goes to a file next to the data directory, as Dovecot's and
  // Postfix's go to theirs.
  const logFile = `${dataDir}.log`;
  const logFd = fs.openSync(logFile, 'a');
  const proc = spawn(
    process.execPath,
    [CLI, 'serve', '--smtp', `${YUBIN_HOST}:0`, '--imap', `${YUBIN_HOST}:0`, '--pop3', `${YUBIN_HOST}:0`, '--data', dataDir],
    { stdio: ['ignore', 'pipe', logFd] },
  );
  fs.closeSync(logFd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  const err = () => {
    try {
      const text = fs.readFileSync(logFile, 'utf8');
      return text.slice(-20_000);
    } catch {
      return '';
    }
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`yubin did not become ready: ${out}\n${err().slice(-3000)}`));
    }, 120_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!/^ready$/m.test(out)) return;
      const port = (name: string) => Number(new RegExp(`^${name} listening on \\[?[^\\]\\s]+?\\]?:(\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
      clearTimeout(timer);
      resolve({ proc, pid: proc.pid!, host: YUBIN_HOST, smtpPort: port('smtp'), imapPort: port('imap'), pop3Port: port('pop3'), exited, stderr: err });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`yubin exited (${code ?? signal}) before it was ready: ${out}\n${err().slice(-3000)}`));
    });
  });
}

/** SIGTERM, then SIGKILL after 60 s. Returns the exit code (or signal). */
export async function stopYubin(server: YubinServer): Promise<string> {
  server.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      server.proc.kill('SIGKILL');
      resolve();
    }, 60_000);
  });
  await Promise.race([server.exited, killed]);
  clearTimeout(timer);
  const exit = await server.exited;
  return String(exit.code ?? exit.signal);
}
