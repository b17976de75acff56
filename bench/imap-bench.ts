// IMAP benchmark: the real server (yubin serve, as a child process) on a throwaway data directory,
// driven by a minimal raw-socket IMAP client written here (one command at a time, no pipelining).
//
//  1. Large mailbox: one user with N small messages (~2 KB, varied senders and subjects; every
//     101st body holds a distinctive word, every 37th subject another). The mailboxes are filled
//     before the server starts, in-process through Yubin's own store code (SqliteStore.open with
//     the direct writer, appendMessage per message); that is setup and reported apart. Then the
//     time of LOGIN, SELECT INBOX, UID FETCH 1:* (UID FLAGS), FETCH 1:100 BODY.PEEK[],
//     SEARCH TEXT (twice: the server caches decoded text) and UID SEARCH HEADER Subject.
//  2. Mixed workload: C clients for S seconds on a second user with ~1,000 messages, each looping
//     LOGIN, SELECT, FETCH headers, FETCH bodies, STORE \Seen, SEARCH UNSEEN, APPEND, STORE
//     \Deleted on the appended message, EXPUNGE, LOGOUT. Every command is one op; NO/BAD are errors.
//  3. Idle connections (unless --skip-idle), on a restarted server (part 1 leaves caches and
//     garbage behind): K connections LOGIN, SELECT a 20-message INBOX and IDLE; the server's RSS
//     (/proc/PID/status VmRSS) before (after 100 warm-up idlers came and went) and after, then one
//     APPEND to that mailbox and the time until every idling client has seen its EXISTS.
//
//   npm run bench:imap -- [--messages N] [--clients C] [--seconds S] [--idle K] [--skip-idle]
//                         [--fsync on|off] [--cpu-prof DIR]   (V8 CPU profiles of the server into
//                         DIR, with imap-bench-phases.json: each phase's CLOCK_MONOTONIC span in µs,
//                         the clock of the profiles' startTime/endTime)

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
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
const BIG_USER = `big@${DOMAIN}`;
const MIXED_USER = `mixed@${DOMAIN}`;
const IDLE_USER = `idle@${DOMAIN}`;
const MIXED_MESSAGES = 1000;
const IDLE_MESSAGES = 20;
/** In every 101st message body (SEARCH TEXT). */
const BODY_WORD = 'quokkafish';
/** In every 37th subject (UID SEARCH HEADER Subject). */
const SUBJECT_WORD = 'invoice';

interface Options {
  messages: number;
  clients: number;
  seconds: number;
  idle: number;
  skipIdle: boolean;
  fsync: boolean;
  cpuProf: string | null;
}

function usage(message: string): never {
  console.error(`imap-bench: ${message}`);
  console.error('usage: node dist/bench/imap-bench.js [--messages N] [--clients C] [--seconds S] [--idle K] [--skip-idle] [--fsync on|off] [--cpu-prof DIR]');
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        messages: { type: 'string', default: '100000' },
        clients: { type: 'string', default: '20' },
        seconds: { type: 'string', default: '30' },
        idle: { type: 'string', default: '5000' },
        'skip-idle': { type: 'boolean', default: false },
        fsync: { type: 'string', default: 'on' },
        'cpu-prof': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  const positive = (name: string, value: string, min = 1): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) usage(`--${name} must be an integer of at least ${min}, got "${value}"`);
    return Number(value);
  };
  if (values.fsync !== 'on' && values.fsync !== 'off') usage(`--fsync must be on or off, got "${values.fsync}"`);
  return {
    messages: positive('messages', values.messages, 100),
    clients: positive('clients', values.clients),
    seconds: positive('seconds', values.seconds),
    idle: positive('idle', values.idle),
    skipIdle: values['skip-idle'],
    fsync: values.fsync === 'on',
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Setup: CLI, bulk load, server process

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

/** A small deterministic PRNG (mulberry32), so every run loads the same mailboxes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'meeting project schedule budget review report draft update agenda summary customer order shipment ' +
  'release server network backup deploy question answer proposal contract team lunch travel weekend ' +
  'holiday photo garden recipe concert ticket flight hotel payment receipt account password reset ' +
  'newsletter discount offer subscription feedback survey design prototype launch roadmap quarter ' +
  'results figures analysis migration database storage cluster latency outage incident postmortem ' +
  'planning hiring interview candidate training workshop conference slides notes minutes follow ' +
  'reminder deadline friday monday morning evening tomorrow yesterday coffee kitchen office printer'
).split(' ');
const FIRST = 'Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yuki'.split(' ');
const LAST = 'Smith Tanaka Mueller Rossi Dubois Novak Silva Kowalski Jensen Sato Garcia Okafor Nguyen Ivanova Brown'.split(' ');
const DOMAINS = 'example.com example.org mail.test corp.example lists.example.net shop.example'.split(' ');

interface Generated {
  bytes: Buffer;
  date: Date;
  bodyWord: boolean;
  subjectWord: boolean;
}

function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** Message `index` of a mailbox: headers, then text/plain (every 10th quoted-printable) of about `size` bytes. */
function generateMessage(random: () => number, index: number, to: string, size: number): Generated {
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const first = pick(FIRST);
  const last = pick(LAST);
  const domain = pick(DOMAINS);
  const subjectWords = Array.from({ length: 3 + Math.floor(random() * 5) }, () => pick(WORDS));
  const subjectWord = index % 37 === 0;
  if (subjectWord) subjectWords.splice(Math.floor(random() * subjectWords.length), 0, SUBJECT_WORD);
  const subject = (random() < 0.2 ? 'Re: ' : '') + subjectWords.join(' ');
  const date = new Date(Date.UTC(2024, 0, 1) + Math.floor(random() * 365 * 86400) * 1000);
  const qp = index % 10 === 0;
  const header =
    `From: "${first} ${last}" <${first.toLowerCase()}.${index % 97}@${domain}>\r\n` +
    `To: <${to}>\r\n` +
    `Subject: ${qp ? `=?UTF-8?Q?${Buffer.from(subject, 'utf8').toString('latin1').replace(/ /g, '_')}?=` : subject}\r\n` +
    `Date: ${formatDate(date)}\r\n` +
    `Message-ID: <${index}.${Math.floor(random() * 1e9)}@${domain}>\r\n` +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Transfer-Encoding: ${qp ? 'quoted-printable' : '7bit'}\r\n\r\n`;
  const bodyWord = index % 101 === 0;
  const lines: string[] = [`Hello ${to.slice(0, to.indexOf('@'))},`, ''];
  let length = header.length + 20;
  let wordLine = bodyWord ? 2 + Math.floor(random() * 10) : -1;
  while (length < size) {
    const words = Array.from({ length: 8 + Math.floor(random() * 4) }, () => pick(WORDS));
    if (wordLine-- === 0) words.splice(Math.floor(random() * words.length), 0, BODY_WORD);
    let line = words.join(' ');
    if (qp) line = line.replace(/e/, '=C3=A9'); // é, so that the decoder has work to do
    lines.push(line);
    length += line.length + 2;
  }
  if (wordLine >= 0) lines.push(BODY_WORD);
  lines.push('', `-- ${first} ${last}`, '');
  return { bytes: Buffer.from(header + lines.join('\r\n'), 'latin1'), date, bodyWord, subjectWord };
}

interface Loaded {
  ms: number;
  bytes: number;
  bodyWord: number;
  subjectWord: number;
  unseen: number;
}

/**
 * Fills INBOX of `address` through the store's own code path (SqliteStore.appendMessage with the
 * direct writer, no fsync): one transaction per message, as the CLI would. The server must not
 * be running.
 */
async function loadMailbox(dataDir: string, address: string, count: number, size: number, seed: number): Promise<Loaded> {
  const started = process.hrtime.bigint();
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  const loaded: Loaded = { ms: 0, bytes: 0, bodyWord: 0, subjectWord: 0, unseen: 0 };
  try {
    const account = await store.getAccount(address);
    if (!account) throw new Error(`no account ${address}`);
    const inbox = await store.getMailbox(account.id, 'INBOX');
    if (!inbox) throw new Error(`${address} has no INBOX`);
    const random = prng(seed);
    for (let i = 1; i <= count; i++) {
      const message = generateMessage(random, i, address, size);
      const flags: string[] = [];
      // Most of a big mailbox is read; half of the mixed one is not (SEARCH UNSEEN finds some).
      if (random() < (count > MIXED_MESSAGES ? 0.8 : 0.5)) flags.push('\\Seen');
      else loaded.unseen++;
      if (random() < 0.05) flags.push('\\Flagged');
      if (random() < 0.1) flags.push('$Label' + (i % 4));
      const result = await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: message.bytes, flags, internalDate: message.date });
      if (!result.ok) throw new Error(`appendMessage ${i} refused: ${JSON.stringify(result)}`);
      loaded.bytes += message.bytes.length;
      if (message.bodyWord) loaded.bodyWord++;
      if (message.subjectWord) loaded.subjectWord++;
    }
  } finally {
    await store.close();
  }
  loaded.ms = Number(process.hrtime.bigint() - started) / 1e6;
  return loaded;
}

interface Server {
  proc: ChildProcess;
  host: string;
  imapPort: number;
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
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'serve', '--imap', '127.0.0.1:0', '--smtp', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not become ready: ${out}\n${err}`)), 60_000);
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const listening = /^imap listening on \[?([^\]\s]+?)\]?:(\d+)$/m.exec(out);
      if (listening && /^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve({ proc, host: listening[1]!, imapPort: Number(listening[2]), exited, stderr: () => err });
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before it was ready: ${out}\n${err}`));
    });
  });
}

/** Resident set size of a process in KiB (VmRSS from /proc, Linux); null elsewhere. */
function rssKiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of the line, in ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** The soft limit on open files of this process (and of the server, which inherits it). */
function openFileLimit(): number | null {
  try {
    const text = execFileSync('/bin/sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return text === 'unlimited' ? Infinity : Number(text) || null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// A minimal IMAP client: one command at a time; responses split into lines, literals ({n} at the
// end of a line, then n octets) skipped over and counted.

interface Reply {
  tag: string;
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line after the status. */
  text: string;
  /** First line of each untagged response (up to its first literal). */
  untagged: string[];
  /** Octets of literals in the responses. */
  literalBytes: number;
  ms: number;
}

class ImapError extends Error {}

class ImapClient {
  private buffer = Buffer.alloc(0);
  private literalLeft = 0;
  /** First line of the response being read (set while a literal continues it). */
  private responseStart: string | null = null;
  private untagged: string[] = [];
  private literalBytes = 0;
  private waiter: { tag: string; resolve: (r: { status: Reply['status']; text: string }) => void; reject: (e: Error) => void } | null = null;
  private continuation: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private greeted: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private tagCounter = 0;
  private closedError: Error | null = null;
  /** Called for each untagged response (IDLE watchers). */
  onUntagged: ((line: string) => void) | null = null;
  /** Whether untagged responses are kept for the reply. */
  keepUntagged = true;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error) => {
      if (this.closedError) return;
      this.closedError = err;
      this.waiter?.reject(err);
      this.continuation?.reject(err);
      this.greeted?.reject(err);
      this.waiter = null;
      this.continuation = null;
      this.greeted = null;
    };
    socket.on('error', (err) => fail(err));
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  static connect(host: string, port: number): Promise<ImapClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      const client = new ImapClient(socket);
      client.greeted = { resolve: () => resolve(client), reject };
    });
  }

  get closed(): boolean {
    return this.closedError !== null;
  }

  private onData(chunk: Buffer): void {
    const buf = this.buffer.length > 0 ? Buffer.concat([this.buffer, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      if (this.literalLeft > 0) {
        const take = Math.min(buf.length - pos, this.literalLeft);
        pos += take;
        this.literalLeft -= take;
        this.literalBytes += take;
        if (this.literalLeft > 0) break;
        continue;
      }
      const eol = buf.indexOf('\r\n', pos, 'latin1');
      if (eol < 0) break;
      const line = buf.toString('latin1', pos, eol);
      pos = eol + 2;
      if (this.responseStart === null) this.responseStart = line;
      if (line.endsWith('}')) {
        const literal = /\{(\d+)\+?\}$/.exec(line);
        if (literal) {
          this.literalLeft = Number(literal[1]);
          continue; // the response goes on after the literal
        }
      }
      const response = this.responseStart;
      this.responseStart = null;
      this.onResponse(response);
    }
    this.buffer = pos < buf.length ? Buffer.from(buf.subarray(pos)) : Buffer.alloc(0);
  }

  private onResponse(line: string): void {
    if (line.startsWith('+')) {
      const waiter = this.continuation;
      this.continuation = null;
      waiter?.resolve();
      return;
    }
    if (line.startsWith('* ')) {
      if (this.greeted) {
        const greeted = this.greeted;
        this.greeted = null;
        if (/^\* (OK|PREAUTH) /i.test(line)) greeted.resolve();
        else greeted.reject(new Error(`greeting: ${line}`));
        return;
      }
      if (this.keepUntagged) this.untagged.push(line);
      this.onUntagged?.(line);
      return;
    }
    const space = line.indexOf(' ');
    const tag = line.slice(0, space);
    if (this.waiter && tag === this.waiter.tag) {
      const rest = line.slice(space + 1);
      const word = rest.slice(0, rest.indexOf(' ') < 0 ? undefined : rest.indexOf(' ')).toUpperCase();
      const status = word === 'OK' || word === 'NO' || word === 'BAD' ? word : 'BAD';
      const waiter = this.waiter;
      this.waiter = null;
      waiter.resolve({ status, text: line.slice(space + 1 + word.length + 1) });
    }
  }

  private waitContinuation(): Promise<void> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => (this.continuation = { resolve, reject }));
  }

  /**
   * Sends one command and reads until its tagged reply. Buffer parts go as synchronizing
   * literals ({n}, wait for "+", the octets).
   */
  async command(...parts: Array<string | Buffer>): Promise<Reply> {
    if (this.closedError) throw this.closedError;
    const tag = `A${++this.tagCounter}`;
    this.untagged = [];
    this.literalBytes = 0;
    const started = process.hrtime.bigint();
    const done = new Promise<{ status: Reply['status']; text: string }>((resolve, reject) => (this.waiter = { tag, resolve, reject }));
    done.catch(() => undefined);
    let text = `${tag} `;
    for (const part of parts) {
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      const ready = this.waitContinuation();
      this.socket.write(`${text}{${part.length}}\r\n`);
      await Promise.race([ready, done.then((r) => Promise.reject(new ImapError(`${r.status} ${r.text}`)))]);
      this.socket.write(part);
      text = '';
    }
    this.socket.write(`${text}\r\n`);
    const { status, text: replyText } = await done;
    return { tag, status, text: replyText, untagged: this.untagged, literalBytes: this.literalBytes, ms: Number(process.hrtime.bigint() - started) / 1e6 };
  }

  /** Starts IDLE and resolves once the server's continuation request has arrived. */
  async idle(): Promise<void> {
    if (this.closedError) throw this.closedError;
    const tag = `A${++this.tagCounter}`;
    this.untagged = [];
    const done = new Promise<{ status: Reply['status']; text: string }>((resolve, reject) => (this.waiter = { tag, resolve, reject }));
    done.catch(() => undefined);
    const ready = this.waitContinuation();
    this.socket.write(`${tag} IDLE\r\n`);
    await Promise.race([ready, done.then((r) => Promise.reject(new ImapError(`IDLE: ${r.status} ${r.text}`)))]);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Fails unless the reply is OK. */
function expectOk(reply: Reply, what: string): Reply {
  if (reply.status !== 'OK') throw new Error(`${what}: ${reply.status} ${reply.text}`);
  return reply;
}

function existsOf(reply: Reply): number {
  for (const line of reply.untagged) {
    const m = /^\* (\d+) EXISTS$/i.exec(line);
    if (m) return Number(m[1]);
  }
  return -1;
}

function searchCount(reply: Reply): number {
  let count = 0;
  for (const line of reply.untagged) {
    if (/^\* SEARCH\b/i.test(line)) count += line.split(' ').length - 2;
  }
  return count;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Runs `fn` for 0..count-1, at most `limit` at a time. */
async function forEachLimited(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

// ---------------------------------------------------------------------------------------------
// Phases

interface Phase {
  name: string;
  startUs: number;
  endUs: number;
}
const phases: Phase[] = [];
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const startUs = nowUs();
  try {
    return await fn();
  } finally {
    phases.push({ name, startUs, endUs: nowUs() });
  }
}

interface Row {
  name: string;
  value: string;
}

async function largeMailbox(server: Server, expected: Loaded, messages: number, rows: Row[], problems: string[]): Promise<void> {
  const client = await ImapClient.connect(server.host, server.imapPort);
  const check = (ok: boolean, text: string) => {
    if (!ok) problems.push(text);
  };
  const step = async (label: string, what: string, ...parts: string[]): Promise<Reply> => {
    const reply = await timed(label, () => client.command(...parts));
    expectOk(reply, what);
    rows.push({ name: `${label} (ms)`, value: reply.ms.toFixed(1) });
    return reply;
  };
  await step('LOGIN', 'LOGIN', `LOGIN ${quoted(BIG_USER)} ${quoted(PASSWORD)}`);
  // A one-line reply: the round trip every other figure includes.
  await step('NOOP (one-line reply)', 'NOOP', 'NOOP');
  const select = await step(`SELECT INBOX (${messages} messages)`, 'SELECT', 'SELECT INBOX');
  check(existsOf(select) === messages, `SELECT: ${existsOf(select)} EXISTS, expected ${messages}`);
  const fetchAll = await step('UID FETCH 1:* (UID FLAGS)', 'UID FETCH', 'UID FETCH 1:* (UID FLAGS)');
  check(fetchAll.untagged.length === messages, `UID FETCH 1:*: ${fetchAll.untagged.length} FETCH responses, expected ${messages}`);
  const bodies = await step('FETCH 1:100 BODY.PEEK[]', 'FETCH bodies', 'FETCH 1:100 BODY.PEEK[]');
  check(bodies.untagged.length === 100, `FETCH 1:100: ${bodies.untagged.length} responses`);
  rows.push({ name: 'FETCH 1:100 BODY.PEEK[] octets', value: String(bodies.literalBytes) });
  for (const run of ['first', 'second']) {
    const reply = await step(`SEARCH TEXT "${BODY_WORD}" (${run} run)`, 'SEARCH TEXT', `SEARCH TEXT ${quoted(BODY_WORD)}`);
    check(searchCount(reply) === expected.bodyWord, `SEARCH TEXT (${run}): ${searchCount(reply)} matches, expected ${expected.bodyWord}`);
  }
  const header = await step(`UID SEARCH HEADER Subject "${SUBJECT_WORD}"`, 'UID SEARCH HEADER', `UID SEARCH HEADER Subject ${quoted(SUBJECT_WORD)}`);
  check(searchCount(header) === expected.subjectWord, `UID SEARCH HEADER Subject: ${searchCount(header)} matches, expected ${expected.subjectWord}`);
  await client.command('LOGOUT').catch(() => undefined);
  client.destroy();
}

interface MixedResult {
  ops: number;
  loops: number;
  seconds: number;
  errors: Map<string, number>;
  latencies: Map<string, number[]>;
  cpu: number | null;
}

async function mixedWorkload(server: Server, clients: number, seconds: number): Promise<MixedResult> {
  const appendBody = (n: number) => {
    const random = prng(0x5eed + n);
    return generateMessage(random, n, MIXED_USER, 3 * 1024).bytes;
  };
  const result: MixedResult = { ops: 0, loops: 0, seconds: 0, errors: new Map(), latencies: new Map(), cpu: null };
  const error = (text: string) => result.errors.set(text, (result.errors.get(text) ?? 0) + 1);
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(seconds) * 1_000_000_000n;
  const cpuBefore = cpuSeconds(server.proc.pid);
  let appended = 0;
  const client = async (index: number) => {
    const random = prng(1000 + index);
    const seq = (max: number) => 1 + Math.floor(random() * Math.max(1, max));
    while (process.hrtime.bigint() < deadline) {
      let conn: ImapClient | null = null;
      try {
        conn = await ImapClient.connect(server.host, server.imapPort);
        const c = conn;
        /** One op; false when the time is up (the loop then ends without LOGOUT). */
        const op = async (kind: string, ...parts: Array<string | Buffer>): Promise<Reply | null> => {
          if (process.hrtime.bigint() >= deadline) return null;
          const reply = await c.command(...parts);
          result.ops++;
          let list = result.latencies.get(kind);
          if (!list) result.latencies.set(kind, (list = []));
          list.push(reply.ms);
          if (reply.status !== 'OK') error(`${kind}: ${reply.status} ${reply.text}`);
          return reply;
        };
        if (!(await op('LOGIN', `LOGIN ${quoted(MIXED_USER)} ${quoted(PASSWORD)}`))) break;
        const select = await op('SELECT', 'SELECT INBOX');
        if (!select) break;
        const exists = existsOf(select);
        if (!(await op('FETCH headers', 'FETCH 1:20 (FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date)])'))) break;
        const first = seq(exists - 4);
        if (!(await op('FETCH bodies', `FETCH ${first}:${first + 4} BODY.PEEK[]`))) break;
        if (!(await op('STORE \\Seen', `STORE ${seq(exists)},${seq(exists)},${seq(exists)} +FLAGS (\\Seen)`))) break;
        if (!(await op('SEARCH UNSEEN', 'SEARCH UNSEEN'))) break;
        const append = await op('APPEND', 'APPEND INBOX ', appendBody(++appended));
        if (!append) break;
        const uid = /\[APPENDUID \d+ (\d+)\]/i.exec(append.text)?.[1];
        if (uid) {
          if (!(await op('UID STORE \\Deleted', `UID STORE ${uid} +FLAGS (\\Deleted)`))) break;
        } else error(`APPEND: no APPENDUID in "${append.text}"`);
        if (!(await op('EXPUNGE', 'EXPUNGE'))) break;
        if (!(await op('LOGOUT', 'LOGOUT'))) break;
        result.loops++;
      } catch (err) {
        error(`client error: ${(err as Error).message}`);
      } finally {
        conn?.destroy();
      }
    }
  };
  await timed('mixed workload', () => Promise.all(Array.from({ length: clients }, (_, i) => client(i))));
  result.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpuAfter = cpuSeconds(server.proc.pid);
  result.cpu = cpuBefore !== null && cpuAfter !== null ? cpuAfter - cpuBefore : null;
  return result;
}

interface IdleResult {
  connections: number;
  opened: number;
  failures: Map<string, number>;
  openSeconds: number;
  rssBefore: number | null;
  rssAfter: number | null;
  wakeMs: number | null;
  woken: number;
}

/** One connection that has logged in, selected the idle user's INBOX and is idling. */
async function openIdler(server: Server): Promise<ImapClient> {
  const client = await ImapClient.connect(server.host, server.imapPort);
  try {
    expectOk(await client.command(`LOGIN ${quoted(IDLE_USER)} ${quoted(PASSWORD)}`), 'LOGIN');
    expectOk(await client.command('SELECT INBOX'), 'SELECT');
    client.keepUntagged = false;
    await client.idle();
    return client;
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/**
 * Part 3, on a server of its own (part 1 leaves caches and garbage that a collection during
 * this part would free, hiding the figure): a few idlers first, so that the code paths are
 * warm; the baseline RSS once they are gone; then K idlers.
 */
async function idleConnections(server: Server, count: number): Promise<IdleResult> {
  const result: IdleResult = { connections: count, opened: 0, failures: new Map(), openSeconds: 0, rssBefore: null, rssAfter: null, wakeMs: null, woken: 0 };
  const warm: ImapClient[] = [];
  await forEachLimited(Math.min(100, count), 20, async () => void warm.push(await openIdler(server)));
  for (const client of warm) client.destroy();
  await new Promise((r) => setTimeout(r, 2000));
  result.rssBefore = rssKiB(server.proc.pid);
  const clients: ImapClient[] = [];
  const started = process.hrtime.bigint();
  // Each connection authenticates right after connecting (login_timeout), a few at a time.
  await timed('idle: open, LOGIN, SELECT, IDLE', () =>
    forEachLimited(count, 64, async () => {
      try {
        clients.push(await openIdler(server));
      } catch (err) {
        const text = (err as Error).message;
        result.failures.set(text, (result.failures.get(text) ?? 0) + 1);
      }
    }),
  );
  result.openSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  result.opened = clients.length;
  await new Promise((r) => setTimeout(r, 2000));
  result.rssAfter = rssKiB(server.proc.pid);

  // One new message in the mailbox they all watch: how long until every one has seen EXISTS.
  let woken = 0;
  let allWoken: () => void = () => undefined;
  const everyone = new Promise<void>((resolve) => (allWoken = resolve));
  for (const client of clients) {
    let seen = false;
    client.onUntagged = (line) => {
      if (!seen && /^\* \d+ EXISTS$/i.test(line)) {
        seen = true;
        if (++woken === clients.length) allWoken();
      }
    };
  }
  const appender = await ImapClient.connect(server.host, server.imapPort);
  expectOk(await appender.command(`LOGIN ${quoted(IDLE_USER)} ${quoted(PASSWORD)}`), 'LOGIN');
  const wakeStarted = process.hrtime.bigint();
  await timed('idle: APPEND and wake-up', async () => {
    expectOk(await appender.command('APPEND INBOX ', generateMessage(prng(7), 1, IDLE_USER, 2048).bytes), 'APPEND');
    if (clients.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([everyone, new Promise((r) => (timer = setTimeout(r, 60_000)))]);
      clearTimeout(timer);
    }
  });
  result.woken = woken;
  if (woken === clients.length) result.wakeMs = Number(process.hrtime.bigint() - wakeStarted) / 1e6;
  appender.destroy();
  for (const client of clients) client.destroy();
  return result;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (!fs.existsSync(CLI)) usage(`${CLI} not found; build first (npx tsc -p .)`);
  let idleCount = options.idle;
  const limit = openFileLimit();
  if (!options.skipIdle && limit !== null && idleCount + 200 > limit) {
    const lowered = Math.max(1, limit - 200);
    console.warn(`warning: ulimit -n is ${limit}; --idle ${idleCount} lowered to ${lowered} (this process and the server each need one descriptor per connection)`);
    idleCount = lowered;
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-imap-bench-'));
  let server: Server | null = null;
  let exitCode = 0;
  const rows: Row[] = [];
  const problems: string[] = [];
  try {
    const toml = [
      '[log]',
      'level = "warn"',
      '',
      '[auth]',
      'failure_delay = 0',
      '',
      '[imap]',
      `max_connections_per_ip = ${Math.max(idleCount, options.clients) + 100}`,
      `max_connections = ${Math.max(idleCount, options.clients) + 100}`,
    ];
    if (!options.fsync) toml.push('', '[storage]', 'fsync = false');
    fs.writeFileSync(path.join(dataDir, 'yubin.toml'), toml.join('\n') + '\n');

    const setupStarted = Date.now();
    await runCli(dataDir, ['domain', 'add', DOMAIN]);
    await Promise.all(
      [BIG_USER, MIXED_USER, IDLE_USER].map((address) => runCli(dataDir, ['user', 'add', address, '--password-stdin', '--quota', 'none'], `${PASSWORD}\n`)),
    );
    console.log(`setup: domain and 3 users in ${((Date.now() - setupStarted) / 1000).toFixed(1)} s (data in ${dataDir})`);
    const big = await loadMailbox(dataDir, BIG_USER, options.messages, 2048, 1);
    console.log(
      `setup: loaded ${options.messages} messages (${(big.bytes / 1024 / 1024).toFixed(1)} MiB) into ${BIG_USER} in ${(big.ms / 1000).toFixed(1)} s ` +
        `(${Math.round(options.messages / (big.ms / 1000))} messages/s, store.appendMessage, direct writer, no fsync)`,
    );
    const mixed = await loadMailbox(dataDir, MIXED_USER, MIXED_MESSAGES, 2048, 2);
    await loadMailbox(dataDir, IDLE_USER, IDLE_MESSAGES, 2048, 3);
    console.log(`setup: loaded ${MIXED_MESSAGES} messages into ${MIXED_USER} (${mixed.unseen} unseen) and ${IDLE_MESSAGES} into ${IDLE_USER}`);
    const dbBytes = ['yubin.db', 'yubin.db-wal'].reduce((sum, f) => sum + (fs.existsSync(path.join(dataDir, f)) ? fs.statSync(path.join(dataDir, f)).size : 0), 0);

    const startStarted = process.hrtime.bigint();
    server = await startServer(dataDir, options.cpuProf);
    const startMs = Number(process.hrtime.bigint() - startStarted) / 1e6;
    const pid = server.proc.pid;
    const rssStart = rssKiB(pid);

    // 1. Large mailbox
    console.log(`\n1. large mailbox (${options.messages} messages)`);
    const cpu1 = cpuSeconds(pid);
    await largeMailbox(server, big, options.messages, rows, problems);
    const cpu1After = cpuSeconds(pid);
    for (const row of rows) console.log(`   ${row.name.padEnd(48)} ${row.value}`);
    const rssLarge = rssKiB(pid);
    if (rssLarge !== null) rows.push({ name: 'server RSS after part 1 (MiB)', value: (rssLarge / 1024).toFixed(0) });
    console.log(`   server RSS after: ${rssLarge === null ? 'n/a' : `${(rssLarge / 1024).toFixed(0)} MiB`}; server CPU ${cpu1 !== null && cpu1After !== null ? `${(cpu1After - cpu1).toFixed(1)} s` : 'n/a'}`);

    // 2. Mixed workload
    console.log(`\n2. mixed workload (${options.clients} clients, ${options.seconds} s, ${MIXED_USER} with ${MIXED_MESSAGES} messages)`);
    const mix = await mixedWorkload(server, options.clients, options.seconds);
    const rate = mix.ops / mix.seconds;
    const errorCount = [...mix.errors.values()].reduce((a, b) => a + b, 0);
    console.log(`   ${mix.ops} ops in ${mix.seconds.toFixed(1)} s = ${rate.toFixed(0)} ops/s; ${mix.loops} complete loops (${(mix.loops / mix.seconds).toFixed(1)}/s); ${errorCount} errors`);
    console.log(
      `   server CPU ${mix.cpu === null ? 'n/a' : `${mix.cpu.toFixed(1)} s (${(mix.cpu / mix.seconds).toFixed(2)} cores, ${((mix.cpu * 1000) / Math.max(1, mix.ops)).toFixed(2)} ms per op)`}`,
    );
    console.log(`   ${'command'.padEnd(20)} ${'count'.padStart(7)} ${'mean ms'.padStart(9)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'max ms'.padStart(9)}`);
    for (const [kind, list] of mix.latencies) {
      const sorted = [...list].sort((a, b) => a - b);
      const mean = list.reduce((a, b) => a + b, 0) / list.length;
      console.log(
        `   ${kind.padEnd(20)} ${String(list.length).padStart(7)} ${mean.toFixed(1).padStart(9)} ${percentile(sorted, 50).toFixed(1).padStart(9)} ` +
          `${percentile(sorted, 99).toFixed(1).padStart(9)} ${sorted[sorted.length - 1]!.toFixed(1).padStart(9)}`,
      );
    }
    for (const [text, count] of mix.errors) console.log(`   error ×${count}: ${text}`);
    const rssMixed = rssKiB(pid);
    console.log(`   server RSS after: ${rssMixed === null ? 'n/a' : `${(rssMixed / 1024).toFixed(0)} MiB`}`);
    rows.push({ name: `mixed: ops/s (${options.clients} clients, ${options.seconds} s)`, value: rate.toFixed(0) });
    rows.push({ name: 'mixed: complete loops/s (10 ops each)', value: (mix.loops / mix.seconds).toFixed(1) });
    if (mix.cpu !== null) rows.push({ name: 'mixed: server CPU per op (ms)', value: ((mix.cpu * 1000) / Math.max(1, mix.ops)).toFixed(2) });
    rows.push({ name: 'mixed: errors (NO/BAD/failures)', value: String(errorCount) });
    for (const kind of ['LOGIN', 'SELECT', 'FETCH bodies', 'APPEND', 'EXPUNGE']) {
      const sorted = [...(mix.latencies.get(kind) ?? [])].sort((a, b) => a - b);
      if (sorted.length > 0) rows.push({ name: `mixed: ${kind} p50 / p99 (ms)`, value: `${percentile(sorted, 50).toFixed(1)} / ${percentile(sorted, 99).toFixed(1)}` });
    }
    if (errorCount > 0) exitCode = 1;

    // 3. Idle connections
    if (!options.skipIdle) {
      console.log(`\n3. idle connections (${idleCount}, ${IDLE_USER} with ${IDLE_MESSAGES} messages; the server restarted first)`);
      // A fresh server process for this part (see idleConnections).
      server.proc.kill('SIGTERM');
      const first = await server.exited;
      server = null;
      if (first.code !== 0) problems.push(`the server did not exit 0 on SIGTERM after part 2: ${first.code ?? first.signal}`);
      server = await startServer(dataDir, options.cpuProf);
      const idle = await idleConnections(server, idleCount);
      const failed = [...idle.failures.values()].reduce((a, b) => a + b, 0);
      const delta = idle.rssBefore !== null && idle.rssAfter !== null ? idle.rssAfter - idle.rssBefore : null;
      console.log(`   ${idle.opened} of ${idle.connections} idling after ${idle.openSeconds.toFixed(1)} s (${(idle.opened / idle.openSeconds).toFixed(0)} connections/s incl. LOGIN); ${failed} failed`);
      for (const [text, count] of idle.failures) console.log(`   failure ×${count}: ${text}`);
      console.log(
        `   server RSS before ${idle.rssBefore === null ? 'n/a' : `${(idle.rssBefore / 1024).toFixed(0)} MiB`}, after ${idle.rssAfter === null ? 'n/a' : `${(idle.rssAfter / 1024).toFixed(0)} MiB`}` +
          (delta !== null && idle.opened > 0 ? `: +${(delta / 1024).toFixed(0)} MiB, ${(delta / idle.opened).toFixed(1)} KiB per connection` : ''),
      );
      console.log(`   APPEND → EXISTS at every idler: ${idle.wakeMs === null ? `only ${idle.woken} of ${idle.opened} woke within 60 s` : `${idle.wakeMs.toFixed(0)} ms`}`);
      rows.push({ name: `idle: connections idling / asked`, value: `${idle.opened} / ${idle.connections}` });
      rows.push({ name: 'idle: time to open (connect+LOGIN+SELECT+IDLE) (s)', value: idle.openSeconds.toFixed(1) });
      if (delta !== null) {
        rows.push({ name: 'idle: server RSS before → after (MiB)', value: `${(idle.rssBefore! / 1024).toFixed(0)} → ${(idle.rssAfter! / 1024).toFixed(0)}` });
        rows.push({ name: 'idle: RSS per connection (KiB)', value: idle.opened > 0 ? (delta / idle.opened).toFixed(1) : 'n/a' });
      }
      rows.push({ name: `idle: APPEND → EXISTS at all idlers (ms)`, value: idle.wakeMs === null ? `${idle.woken}/${idle.opened} woke` : idle.wakeMs.toFixed(0) });
      if (failed > 0 || idle.wakeMs === null) exitCode = 1;
    }

    server.proc.kill('SIGTERM');
    const exit = await server.exited;
    server = null;
    if (exit.code !== 0) {
      problems.push(`the server did not exit 0 on SIGTERM: ${exit.code ?? exit.signal}`);
    }

    const cpu = os.cpus();
    console.log('');
    console.log(`machine      ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${os.platform()} ${os.release()}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB`);
    console.log(`node         ${process.version}`);
    console.log(`load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} (1, 5, 15 min; other work on the machine skews every figure)`);
    console.log(`fsync        ${options.fsync ? 'on' : 'off'} (server); the load ran without`);
    console.log(`load         ${options.messages} messages in ${(big.ms / 1000).toFixed(1)} s (setup, not a figure); database ${(dbBytes / 1024 / 1024).toFixed(0)} MiB`);
    console.log(`server       ready in ${startMs.toFixed(0)} ms; RSS at start ${rssStart === null ? 'n/a' : `${(rssStart / 1024).toFixed(0)} MiB`}, after part 1 ${rssLarge === null ? 'n/a' : `${(rssLarge / 1024).toFixed(0)} MiB`}; exit ${exit.code ?? exit.signal}`);
    if (options.cpuProf) {
      fs.writeFileSync(path.join(options.cpuProf, 'imap-bench-phases.json'), JSON.stringify(phases, null, 2) + '\n');
      console.log(`cpu profiles ${options.cpuProf} (phases in imap-bench-phases.json)`);
    }
    console.log('');
    console.log(`| measurement (${cpu.length} cores, node ${process.version}, ${options.messages} messages, fsync ${options.fsync ? 'on' : 'off'}) | value |`);
    console.log('|---|---|');
    for (const row of rows) console.log(`| ${row.name.replace(/\|/g, '\\|')} | ${row.value} |`);

    if (problems.length > 0) {
      console.error(`\nproblems:\n  ${problems.join('\n  ')}`);
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
  console.error(`imap-bench: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
