// `npm run bench:peers`: Yubin side by side with Postfix + Dovecot on the same machine.
//
// Installs Debian's postfix and dovecot when missing, runs throwaway instances of them on
// 127.0.0.20 (see peer.ts) and Yubin on 127.0.0.1 (see yubin.ts), and drives both with the same
// raw protocol clients (workloads/): SMTP in, IMAP mixed, POP3 download, memory of idle IMAP
// connections, and a large mailbox. Each workload runs in rounds (Yubin, then the peer, per
// round); the median of the rounds is each figure. Results go to bench/results/peers-DATE.{json,md,svg}
// and peers-latest.*; the markdown table is printed at the end.
//
//   npm run bench:peers -- [--rounds N] [--only smtp,imap,pop3,memory,large] [--quick]
//                          [--sender-auth on|off] [--out DIR] [--keep]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hrMs, log, pssKiB, rssKiB, run, sleep, waitFor } from './common.js';
import { DOMAIN, fixedSizeFactory, variedMailbox, type Varied } from './messages.js';
import { ensureInstalled, Peer, peerVersions, stopSystemServices } from './peer.js';
import { advantageText, fmt, markdownTable, summarize, writeResults, type Figure, type Results, type Side } from './report.js';
import { CLI, freshDataDir, loadYubin, makeTemplate, startYubin, stopYubin, yubinCounter, yubinVersion, type LoadItem, type YubinServer, type YubinSettings } from './yubin.js';
import { smtpIn } from './workloads/smtp.js';
import { imapMixed } from './workloads/imap-mixed.js';
import { pop3Download } from './workloads/pop3.js';
import { idleMemory, type MemoryReading } from './workloads/memory.js';
import { largeMailbox } from './workloads/large.js';
import { SUBJECT_WORD } from './messages.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '../../..');
const WORKLOADS = ['smtp', 'imap', 'pop3', 'memory', 'large'] as const;
type WorkloadName = (typeof WORKLOADS)[number];

interface Sizes {
  smtpConnections: number;
  smtpSmall: { messages: number; size: number };
  smtpLarge: { messages: number; size: number };
  mixedClients: number;
  mixedSeconds: number;
  mixedMessages: number;
  pop3Clients: number;
  pop3Messages: number;
  pop3Size: number;
  idleConnections: number;
  idleMessages: number;
  largeMessages: number;
}

const FULL: Sizes = {
  smtpConnections: 20,
  smtpSmall: { messages: 5000, size: 4096 },
  smtpLarge: { messages: 1000, size: 102400 },
  mixedClients: 20,
  mixedSeconds: 30,
  mixedMessages: 1000,
  pop3Clients: 50,
  pop3Messages: 1000,
  pop3Size: 4096,
  idleConnections: 5000,
  idleMessages: 20,
  largeMessages: 100_000,
};

const QUICK: Sizes = {
  ...FULL,
  smtpSmall: { messages: 500, size: 4096 },
  smtpLarge: { messages: 100, size: 102400 },
  mixedSeconds: 5,
  mixedMessages: 200,
  pop3Messages: 100,
  idleConnections: 500,
  largeMessages: 10_000,
};

interface Options {
  rounds: number;
  only: WorkloadName[];
  quick: boolean;
  senderAuth: boolean;
  out: string;
  keep: boolean;
  sides: Side[];
}

function usage(message: string): never {
  console.error(`bench:peers: ${message}`);
  console.error('usage: npm run bench:peers -- [--rounds N] [--only smtp,imap,pop3,memory,large] [--quick] [--sender-auth on|off] [--out DIR] [--keep]');
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        rounds: { type: 'string', default: '3' },
        only: { type: 'string', default: WORKLOADS.join(',') },
        quick: { type: 'boolean', default: false },
        'sender-auth': { type: 'string', default: 'on' },
        out: { type: 'string', default: path.join(REPO, 'bench', 'results') },
        keep: { type: 'boolean', default: false },
        sides: { type: 'string', default: 'yubin,peer' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (!/^\d+$/.test(values.rounds) || Number(values.rounds) < 1) usage(`--rounds must be a positive integer, got "${values.rounds}"`);
  const only = values.only.split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of only) if (!(WORKLOADS as readonly string[]).includes(w)) usage(`unknown workload "${w}" (known: ${WORKLOADS.join(', ')})`);
  if (values['sender-auth'] !== 'on' && values['sender-auth'] !== 'off') usage('--sender-auth must be on or off');
  const sides = values.sides.split(',').map((s) => s.trim());
  for (const s of sides) if (s !== 'yubin' && s !== 'peer') usage(`--sides takes yubin and/or peer, got "${s}"`);
  return {
    sides: sides as Side[],
    rounds: Number(values.rounds),
    only: only as WorkloadName[],
    quick: values.quick,
    senderAuth: values['sender-auth'] === 'on',
    out: path.resolve(values.out),
    keep: values.keep,
  };
}

/** The soft limit on open files; the process re-runs itself under a raised one when too low. */
async function ensureFileLimit(needed: number): Promise<boolean> {
  const soft = Number((await run('/bin/sh', ['-c', 'ulimit -n'])).stdout.trim()) || 0;
  if (soft >= needed || process.env.YUBIN_PEERS_ULIMIT === '1') return false;
  const hard = (await run('/bin/sh', ['-c', 'ulimit -Hn'])).stdout.trim();
  const target = hard === 'unlimited' ? needed : Math.min(Number(hard), Math.max(needed, 1024));
  log(`open files: soft limit ${soft}, re-running under ulimit -n ${target}`);
  const child = spawn('/bin/sh', ['-c', `ulimit -n ${target} && exec "$@"`, 'sh', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, YUBIN_PEERS_ULIMIT: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
  const code = await new Promise<number>((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 128 : 1))));
  process.exit(code);
}

// ---------------------------------------------------------------------------------------------

interface SideRun {
  values: Record<string, number | null>;
  errors: string[];
  detail: unknown;
}

interface Workload {
  name: WorkloadName | 'smtp-large';
  figures: Figure[];
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
  yubin: (round: number) => Promise<SideRun>;
  peer: (round: number) => Promise<SideRun>;
}

function figure(id: string, label: string, unit: string, better: 'higher' | 'lower', target?: Figure['target']): Figure {
  return { id, label, unit, better, rounds: { yubin: [], peer: [] }, errors: { yubin: [], peer: [] }, target };
}

const n = (v: number) => v.toLocaleString('en-US');

async function main(): Promise<void> {
  // --render FILE.json: writes the markdown and the chart again from a results file.
  const renderAt = process.argv.indexOf('--render');
  if (renderAt >= 0) {
    const file = process.argv[renderAt + 1];
    if (!file) usage('--render needs a results JSON file');
    const results = JSON.parse(fs.readFileSync(file, 'utf8')) as Results;
    const written = writeResults(path.dirname(path.resolve(file)), results);
    console.log(markdownTable(results));
    console.log(`\nwritten: ${written.md}, ${written.svg} (and peers-latest.*)`);
    return;
  }
  const options = parseOptions(process.argv.slice(2));
  const sizes = options.quick ? QUICK : FULL;
  await ensureFileLimit(sizes.idleConnections * 2 + 2000);
  if (process.getuid?.() !== 0) usage('run as root (Postfix and Dovecot must start as root)');
  if (!fs.existsSync(CLI)) usage(`${CLI} not found; build first (npx tsc -p .)`);

  const startedAt = new Date();
  const runStarted = process.hrtime.bigint();
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-peers-'));
  fs.chmodSync(base, 0o755);
  const users = Array.from({ length: 100 }, (_, i) => `user${i}@${DOMAIN}`);
  const bigUser = `big@${DOMAIN}`;
  const settings: YubinSettings = { senderAuth: options.senderAuth, maxImapConnections: sizes.idleConnections };
  const peer = new Peer({ base, users: [...users, bigUser], maxImapConnections: sizes.idleConnections });
  let peerStarted = false;
  let yubin: YubinServer | null = null;
  const notes: string[] = [];
  const details: Record<string, unknown> = {};
  const detailLines: string[] = [];

  let cleaning: Promise<void> | null = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      if (yubin) {
        yubin.proc.kill('SIGKILL');
        await yubin.exited.catch(() => undefined);
        yubin = null;
      }
      if (peerStarted) await peer.stop().catch((err: unknown) => console.error(`stopping the peer: ${(err as Error).message}`));
      peerStarted = false;
      if (options.keep) log(`kept ${base}`);
      else fs.rmSync(base, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping everything`);
      void cleanup().finally(() => process.exit(130));
    });
  }

  try {
    log(`temp directory ${base}; ${options.rounds} round(s); workloads ${options.only.join(', ')}${options.quick ? ' (quick sizes)' : ''}`);
    await ensureInstalled();
    const stopped = await stopSystemServices();
    if (stopped.length) notes.push(`System services stopped before the run: ${stopped.join('; ')}.`);
    const versions = await peerVersions();
    const commit = (await run('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'])).stdout.trim() || 'unknown';

    const setupStarted = process.hrtime.bigint();
    const template = path.join(base, 'yubin-template');
    if (options.sides.includes('yubin')) await makeTemplate(template, [...users, bigUser], settings);
    await peer.configure();
    peerStarted = true;
    await peer.start();
    log(`setup: Yubin template (domain, ${users.length + 1} users) and Postfix+Dovecot started in ${(hrMs(setupStarted) / 1000).toFixed(1)} s`);

    const yubinDir = path.join(base, 'yubin');
    /** A Yubin server on a fresh copy of the template, loaded with `items` first. */
    const withYubin = async <T>(items: Iterable<LoadItem> | null, fn: (server: YubinServer, dataDir: string) => Promise<T>, dataDir?: string): Promise<{ result: T; exit: string }> => {
      const dir = dataDir ?? freshDataDir(template, yubinDir);
      if (items) await loadYubin(dir, items);
      yubin = await startYubin(dir, settings);
      try {
        const result = await fn(yubin, dir);
        const exit = await stopYubin(yubin);
        return { result, exit };
      } finally {
        if (yubin) {
          yubin.proc.kill('SIGKILL');
          await yubin.exited;
          yubin = null;
        }
      }
    };
    const exitErrors = (exit: string) => (exit === '0' ? [] : [`yubin serve exited ${exit} on SIGTERM`]);
    const toItems = function* (address: string, messages: Iterable<Varied>): Generator<LoadItem> {
      for (const m of messages) yield { address, bytes: m.bytes, flags: m.flags, internalDate: m.date };
    };
    const peerLoad = async (perUser: Array<{ address: string; messages: Iterable<{ bytes: Buffer; flags: string[]; internalDate: Date }> }>, index: boolean) => {
      await peer.resetMail();
      for (const u of perUser) peer.writeMaildir(u.address, u.messages);
      await peer.chownMail();
      if (index) await peer.indexMailboxes(perUser.map((u) => u.address));
    };

    const workloads: Workload[] = [];

    // 1. SMTP in
    if (options.only.includes('smtp')) {
      for (const [id, spec] of [
        ['smtp-4k', sizes.smtpSmall],
        ['smtp-100k', sizes.smtpLarge],
      ] as const) {
        const kib = spec.size / 1024;
        const fig = figure(id, `SMTP in: ${n(spec.messages)} × ${kib} KiB, ${sizes.smtpConnections} connections`, 'messages/s', 'higher', {
          text: '≥ 1.5× Postfix+Dovecot',
          kind: 'advantage',
          value: 1.5,
        });
        const params = { users, messages: spec.messages, size: spec.size, connections: sizes.smtpConnections, drainTimeoutMs: 120_000 };
        workloads.push({
          name: id === 'smtp-4k' ? 'smtp' : 'smtp-large',
          figures: [fig],
          yubin: async () => {
            const { result, exit } = await withYubin(null, async (server, dir) => {
              const counter = yubinCounter(dir);
              try {
                return await smtpIn({ ...params, host: server.host, port: server.smtpPort, stored: counter.count });
              } finally {
                counter.close();
              }
            });
            return { values: { [id]: result.rate }, errors: [...result.errors, ...exitErrors(exit)], detail: result };
          },
          peer: async () => {
            await peer.resetMail();
            const result = await smtpIn({ ...params, host: peer.host, port: peer.smtpPort, stored: () => peer.countMail() });
            // Postfix removes a queue file just after the delivery: give it a moment.
            const left = await waitFor('an empty Postfix queue', () => peer.queued() === 0, 15_000, 100).then(
              () => 0,
              () => peer.queued(),
            );
            if (left > 0) result.errors.push(`${left} file(s) left in Postfix's queue`);
            return { values: { [id]: result.rate }, errors: result.errors, detail: { ...result, postfixQueueLeft: left } };
          },
        });
      }
    }

    // 2. IMAP mixed
    if (options.only.includes('imap')) {
      const mixedUsers = users.slice(0, sizes.mixedClients);
      const mailbox = (i: number) => variedMailbox(100 + i, sizes.mixedMessages, mixedUsers[i]!, 2048, 0.5);
      const errorsFig = figure('imap-errors', 'IMAP mixed: errors (NO/BAD/failures)', 'errors', 'lower');
      const fig = figure('imap-mixed', `IMAP mixed: ${sizes.mixedClients} clients × ${sizes.mixedSeconds} s, ${n(sizes.mixedMessages)}-message INBOXes`, 'ops/s', 'higher', {
        text: '≥ 1.0× Dovecot, zero errors',
        kind: 'advantage',
        value: 1.0,
        extra: () => {
          const errs = errorsFig.rounds.yubin.reduce<number>((a, b) => a + (b ?? 0), 0);
          return { ok: errs === 0, why: `${errs} Yubin errors` };
        },
      });
      const params = { users: mixedUsers, clients: sizes.mixedClients, seconds: sizes.mixedSeconds };
      workloads.push({
        name: 'imap',
        figures: [fig, errorsFig],
        yubin: async () => {
          const items = (function* () {
            for (let i = 0; i < mixedUsers.length; i++) yield* toItems(mixedUsers[i]!, mailbox(i));
          })();
          const { result, exit } = await withYubin(items, (server) => imapMixed({ ...params, host: server.host, port: server.imapPort }));
          const errors = Object.entries(result.errorKinds).map(([k, c]) => `${c}× ${k}`);
          return { values: { 'imap-mixed': result.rate, 'imap-errors': result.errors }, errors: [...errors, ...exitErrors(exit)], detail: result };
        },
        peer: async () => {
          await peerLoad(
            mixedUsers.map((address, i) => ({ address, messages: [...mailbox(i)].map((m) => ({ bytes: m.bytes, flags: m.flags, internalDate: m.date })) })),
            true,
          );
          const result = await imapMixed({ ...params, host: peer.host, port: peer.imapPort });
          const errors = Object.entries(result.errorKinds).map(([k, c]) => `${c}× ${k}`);
          return { values: { 'imap-mixed': result.rate, 'imap-errors': result.errors }, errors, detail: result };
        },
      });
    }

    // 3. POP3
    if (options.only.includes('pop3')) {
      const popUsers = users.slice(0, sizes.pop3Clients);
      const make = fixedSizeFactory(sizes.pop3Size);
      const date = new Date(Date.UTC(2026, 0, 1));
      const drop = function* (u: number) {
        for (let i = 1; i <= sizes.pop3Messages; i++) yield { address: popUsers[u]!, bytes: make(u * 1_000_000 + i, popUsers[u]!), flags: [] as string[], internalDate: date };
      };
      const fig = figure('pop3', `POP3: ${sizes.pop3Clients} clients × ${n(sizes.pop3Messages)} messages of ${sizes.pop3Size / 1024} KiB`, 'messages/s', 'higher', {
        text: '≥ 1.0× Dovecot',
        kind: 'advantage',
        value: 1.0,
      });
      const afterLogin = figure('pop3-download', 'POP3, after the logins (password hashing left out)', 'messages/s', 'higher');
      const params = { users: popUsers, clients: sizes.pop3Clients, messages: sizes.pop3Messages };
      workloads.push({
        name: 'pop3',
        figures: [fig, afterLogin],
        yubin: async () => {
          const items = (function* () {
            for (let u = 0; u < popUsers.length; u++) yield* drop(u);
          })();
          const { result, exit } = await withYubin(items, (server) => pop3Download({ ...params, host: server.host, port: server.pop3Port }));
          return { values: { pop3: result.rate, 'pop3-download': result.downloadRate }, errors: [...result.errors, ...exitErrors(exit)], detail: result };
        },
        peer: async () => {
          await peerLoad(
            popUsers.map((address, u) => ({ address, messages: drop(u) })),
            true,
          );
          const result = await pop3Download({ ...params, host: peer.host, port: peer.pop3Port });
          return { values: { pop3: result.rate, 'pop3-download': result.downloadRate }, errors: result.errors, detail: result };
        },
      });
    }

    // 4. Memory of idle IMAP connections
    if (options.only.includes('memory')) {
      const mailbox = (i: number) => variedMailbox(500 + i, sizes.idleMessages, users[i]!, 2048, 0.8);
      const fig = figure('memory', `Memory: RSS per idle IMAP connection (${n(sizes.idleConnections)} connections)`, 'KiB', 'lower', {
        text: '≥ 10× (≤ 1/10 of Dovecot’s)',
        kind: 'advantage',
        value: 10,
      });
      const pss = figure('memory-pss', 'Memory: PSS per idle IMAP connection (shared pages split)', 'KiB', 'lower');
      const params = { users, connections: sizes.idleConnections };
      const values = (r: Awaited<ReturnType<typeof idleMemory>>) => ({ memory: r.rssPerConnectionKiB, 'memory-pss': r.pssPerConnectionKiB });
      workloads.push({
        name: 'memory',
        figures: [fig, pss],
        yubin: async () => {
          const items = (function* () {
            for (let i = 0; i < users.length; i++) yield* toItems(users[i]!, mailbox(i));
          })();
          const { result, exit } = await withYubin(items, (server) =>
            idleMemory({
              ...params,
              host: server.host,
              port: server.imapPort,
              measure: (): MemoryReading => ({ rssKiB: rssKiB(server.pid) ?? NaN, pssKiB: pssKiB(server.pid) ?? NaN, processes: 1 }),
              settled: () => sleep(1000),
            }),
          );
          return { values: values(result), errors: [...result.errors, ...exitErrors(exit)], detail: result };
        },
        peer: async () => {
          await peerLoad(
            users.map((address, i) => ({ address, messages: [...mailbox(i)].map((m) => ({ bytes: m.bytes, flags: m.flags, internalDate: m.date })) })),
            false,
          );
          const noSessions = () =>
            waitFor(
              'Dovecot imap processes to exit',
              () => {
                const c = peer.dovecotProcessCounts();
                return !c['imap'] && !c['imap-login'];
              },
              120_000,
              200,
            ).then(() => undefined);
          let processesAfter: Record<string, number> = {};
          const result = await idleMemory({
            ...params,
            host: peer.host,
            port: peer.imapPort,
            measure: () => {
              processesAfter = peer.dovecotProcessCounts();
              return peer.dovecotMemory();
            },
            settled: noSessions,
          });
          return { values: values(result), errors: result.errors, detail: { ...result, dovecotProcesses: processesAfter } };
        },
      });
    }

    // 5. Large mailbox
    if (options.only.includes('large')) {
      const count = sizes.largeMessages;
      const mailbox = () => variedMailbox(7, count, bigUser, 2048, 0.8);
      let subjectMatches = 0;
      const largeDir = path.join(base, 'yubin-large');
      const figs = {
        select: figure('large-select', `Large mailbox (${n(count)}): SELECT INBOX, warm`, 'ms', 'lower', { text: 'Yubin < 50 ms', kind: 'yubin-below', value: 50 }),
        selectCold: figure('large-select-cold', `Large mailbox (${n(count)}): first SELECT (cold)`, 'ms', 'lower'),
        fetch: figure('large-fetch', `Large mailbox (${n(count)}): UID FETCH 1:* (UID FLAGS)`, 'ms', 'lower', { text: 'Yubin < 1 s', kind: 'yubin-below', value: 1000 }),
        search: figure('large-search', `Large mailbox (${n(count)}): UID SEARCH HEADER Subject, 2nd run`, 'ms', 'lower'),
        searchFirst: figure('large-search-first', `Large mailbox (${n(count)}): UID SEARCH HEADER Subject, 1st run`, 'ms', 'lower'),
      };
      const values = (r: Awaited<ReturnType<typeof largeMailbox>>) => ({
        'large-select': r.selectMs,
        'large-select-cold': r.selectColdMs,
        'large-fetch': r.fetchFlagsMs,
        'large-search': r.searchMs,
        'large-search-first': r.searchFirstMs,
      });
      workloads.push({
        name: 'large',
        figures: [figs.select, figs.selectCold, figs.fetch, figs.search, figs.searchFirst],
        setup: async () => {
          for (const m of mailbox()) if (m.subjectWord) subjectMatches++;
          let t = process.hrtime.bigint();
          if (options.sides.includes('yubin')) {
            freshDataDir(template, largeDir);
            await loadYubin(largeDir, toItems(bigUser, mailbox()));
          }
          const yubinLoad = hrMs(t) / 1000;
          t = process.hrtime.bigint();
          if (!options.sides.includes('peer')) return;
          await peer.resetMail();
          peer.writeMaildir(
            bigUser,
            (function* () {
              for (const m of mailbox()) yield { bytes: m.bytes, flags: m.flags, internalDate: m.date };
            })(),
          );
          await peer.chownMail();
          const peerLoadSeconds = hrMs(t) / 1000;
          // Dovecot's first-ever SELECT of the maildir builds dovecot-uidlist and the index: timed
          // here, apart from the rounds (its state after LMTP deliveries would already have them).
          const { ImapClient, quoted } = await import('./workloads/clients.js');
          const c = await ImapClient.connect(peer.host, peer.imapPort, undefined, 600_000);
          await c.command(`LOGIN ${quoted(bigUser)} ${quoted('bench-password')}`);
          const first = await c.command('SELECT INBOX');
          c.destroy();
          details['large-setup'] = { messages: count, subjectMatches, yubinLoadSeconds: yubinLoad, peerWriteSeconds: peerLoadSeconds, dovecotFirstEverSelectMs: first.ms };
          detailLines.push(
            `Large mailbox setup: ${n(count)} messages (${subjectMatches} subjects with "${SUBJECT_WORD}"); Yubin store load ${yubinLoad.toFixed(1)} s; ` +
              `maildir files written in ${peerLoadSeconds.toFixed(1)} s; Dovecot's first-ever SELECT (building its index) took ${fmt(first.ms, 'ms')} (not a figure).`,
          );
          log(`large: loaded ${n(count)} messages (Yubin ${yubinLoad.toFixed(1)} s, maildir ${peerLoadSeconds.toFixed(1)} s, Dovecot index build ${first.ms.toFixed(0)} ms)`);
        },
        teardown: async () => {
          fs.rmSync(largeDir, { recursive: true, force: true });
        },
        yubin: async () => {
          const { result, exit } = await withYubin(null, (server) => largeMailbox({ host: server.host, port: server.imapPort, user: bigUser, messages: count, subjectMatches }), largeDir);
          return { values: values(result), errors: [...result.errors, ...exitErrors(exit)], detail: result };
        },
        peer: async () => {
          const result = await largeMailbox({ host: peer.host, port: peer.imapPort, user: bigUser, messages: count, subjectMatches });
          return { values: values(result), errors: result.errors, detail: result };
        },
      });
    }

    // Runs: the longest (memory: thousands of logins on each side) last.
    const order = ['smtp', 'smtp-large', 'imap', 'pop3', 'large', 'memory'];
    workloads.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    const allFigures: Figure[] = [];
    /** The results so far (written after every workload, so that an interrupted run leaves them). */
    const buildResults = (partial: boolean): Results => {
      const lines: string[] = [...detailLines];
      addDetailLines(details, lines);
      const runNotes = [...notes];
      const warnings = peer.dovecotWarnings();
      if (warnings.length) runNotes.push(`Dovecot logged ${warnings.length} warning/error line(s); first: ${warnings.slice(0, 3).join(' / ')}`);
      details['dovecot-log-warnings'] = warnings.slice(0, 50);
      if (partial) runNotes.unshift('PARTIAL: written while the run was still going (or after it was interrupted).');
      const cpus = os.cpus();
      return {
        date: startedAt.toISOString().slice(0, 10),
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        durationSeconds: hrMs(runStarted) / 1000,
        command: `npm run bench:peers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
        machine: {
          cores: cpus.length,
          cpu: cpus[0]?.model.trim() ?? 'unknown',
          memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
          os: `${os.platform()} ${os.release()}`,
          loadAverage: os.loadavg(),
        },
        versions: { node: process.version, yubin: yubinVersion(), yubinCommit: commit, postfix: versions.postfix, dovecot: versions.dovecot },
        settings: {
          rounds: options.rounds,
          quick: options.quick,
          sides: options.sides,
          sizes,
          yubin: `yubin serve on 127.0.0.1 (ports picked by the system), embedded store, storage.fsync on (default), smtp.check_sender_auth ${options.senderAuth ? 'on (default)' : 'off'}, log level info (default); connection limits raised`,
          peer: `Postfix smtpd ${peer.host}:${peer.smtpPort} → LMTP ${peer.host}:2424 → Dovecot maildir; Dovecot IMAP ${peer.host}:${peer.imapPort}, POP3 ${peer.host}:${peer.pop3Port}; package defaults for durability (Postfix fsyncs queue files, Dovecot mail_fsync = optimized)`,
          passwords: 'Yubin: scrypt (its only scheme); Dovecot: SHA512-CRYPT via doveadm pw',
        },
        figures: allFigures.map(summarize),
        details,
        detailLines: lines,
        notes: runNotes,
      };
    };
    for (const w of workloads) {
      allFigures.push(...w.figures);
      const wDetails: Record<Side, unknown[]> = { yubin: [], peer: [] };
      details[w.name] = wDetails;
      log(`workload ${w.name}: ${w.figures[0]!.label}`);
      try {
        if (w.setup) await w.setup();
        for (let round = 1; round <= options.rounds; round++) {
          for (const side of options.sides) {
            const t = process.hrtime.bigint();
            try {
              const r = await (side === 'yubin' ? w.yubin(round) : w.peer(round));
              for (const f of w.figures) {
                const v = r.values[f.id];
                f.rounds[side].push(v === undefined || v === null || !Number.isFinite(v) ? null : v);
              }
              w.figures[0]!.errors[side].push(...r.errors.map((e) => `round ${round}: ${e}`));
              wDetails[side].push(r.detail);
              const shown = w.figures.map((f) => `${f.id} ${fmt(r.values[f.id] ?? null)}`).join(', ');
              log(`  round ${round} ${side.padEnd(5)} ${shown}${r.errors.length ? `; ${r.errors.length} error line(s): ${r.errors[0]}` : ''} (${(hrMs(t) / 1000).toFixed(1)} s)`);
            } catch (err) {
              const text = (err as Error).message.split('\n').slice(0, 6).join(' | ');
              for (const f of w.figures) f.rounds[side].push(null);
              w.figures[0]!.errors[side].push(`round ${round}: failed: ${text}`);
              wDetails[side].push({ error: text });
              log(`  round ${round} ${side.padEnd(5)} FAILED: ${text}`);
            }
          }
        }
      } catch (err) {
        const text = (err as Error).message.split('\n').slice(0, 6).join(' | ');
        w.figures[0]!.errors.yubin.push(`setup failed: ${text}`);
        w.figures[0]!.errors.peer.push(`setup failed: ${text}`);
        log(`  workload ${w.name} setup FAILED: ${text}`);
      } finally {
        await w.teardown?.().catch(() => undefined);
      }
      writeResults(options.out, buildResults(true));
    }

    const results = buildResults(false);
    const notesOut = results.notes;
    const files = writeResults(options.out, results);
    console.log('');
    console.log(markdownTable(results));
    console.log('');
    for (const f of results.figures) {
      for (const side of ['yubin', 'peer'] as const) if (f.errors[side].length) console.log(`errors (${f.id}, ${side}): ${f.errors[side].slice(0, 3).join(' / ')}`);
    }
    for (const note of notesOut) console.log(`note: ${note}`);
    console.log(`\nwritten: ${files.json}, ${files.md}, ${files.svg} (and peers-latest.*) in ${(results.durationSeconds / 60).toFixed(1)} min`);
    void advantageText;
  } finally {
    await cleanup();
  }
}

/** Readable highlights of each workload's per-round details. */
function addDetailLines(details: Record<string, unknown>, lines: string[]): void {
  const sides = (name: string) => details[name] as Record<Side, Array<Record<string, unknown>>> | undefined;
  const med = (list: Array<Record<string, unknown>>, key: string): number | null => {
    const values = list.map((d) => d[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (!values.length) return null;
    values.sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)]!;
  };
  const label = (s: Side) => (s === 'yubin' ? 'Yubin' : 'Postfix+Dovecot');
  for (const name of ['smtp', 'smtp-large']) {
    const d = sides(name);
    if (!d) continue;
    for (const s of ['yubin', 'peer'] as const) {
      lines.push(
        `${name === 'smtp' ? 'SMTP 4 KiB' : 'SMTP 100 KiB'}, ${label(s)}: accepted (last 250) at ${fmt(med(d[s], 'acceptRate'))} messages/s, stored at ${fmt(med(d[s], 'rate'))}/s; ` +
          `per-message latency (MAIL to 250) p50 ${fmt(med(d[s], 'p50ms'))} ms, p99 ${fmt(med(d[s], 'p99ms'))} ms`,
      );
    }
  }
  const imap = sides('imap');
  if (imap) {
    for (const s of ['yubin', 'peer'] as const) {
      const last = imap[s].filter((d) => d['latency']).at(-1) as { latency: Record<string, { p50: number; p99: number }>; loops: number; seconds: number } | undefined;
      if (!last) continue;
      const cmds = Object.entries(last.latency)
        .map(([k, v]) => `${k} ${v.p50.toFixed(1)}/${v.p99.toFixed(1)}`)
        .join(', ');
      lines.push(`IMAP mixed, ${label(s)} (last round): ${(last.loops / last.seconds).toFixed(1)} sessions/s; p50/p99 ms per command: ${cmds}`);
    }
  }
  const pop = sides('pop3');
  if (pop) {
    for (const s of ['yubin', 'peer'] as const) lines.push(`POP3, ${label(s)}: ${fmt(med(pop[s], 'mibPerSecond'))} MiB/s; the 50 logins (with STAT and LIST) took ${fmt(med(pop[s], 'loginSeconds'))} s`);
  }
  const mem = sides('memory');
  if (mem) {
    for (const s of ['yubin', 'peer'] as const) {
      const last = mem[s].filter((d) => d['after']).at(-1) as
        | { before: MemoryReading; after: MemoryReading; opened: number; stillOpen: number; openSeconds: number; rssMarginalKiB: number; dovecotProcesses?: Record<string, number> }
        | undefined;
      if (!last) continue;
      lines.push(
        `Memory, ${label(s)} (last round): ${last.opened} connections opened in ${last.openSeconds.toFixed(1)} s (${last.stillOpen} still open at the reading); ` +
          `RSS ${(last.before.rssKiB / 1024).toFixed(0)} → ${(last.after.rssKiB / 1024).toFixed(0)} MiB, PSS ${(last.before.pssKiB / 1024).toFixed(0)} → ${(last.after.pssKiB / 1024).toFixed(0)} MiB ` +
          `over ${last.before.processes} → ${last.after.processes} process(es); second half's RSS per connection ${fmt(last.rssMarginalKiB)} KiB` +
          (last.dovecotProcesses ? ` (${Object.entries(last.dovecotProcesses).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''),
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(`bench:peers: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
});
