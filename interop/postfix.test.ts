// Interoperability with a real Postfix (Debian's package), both ways, on loopback:
//
//   Postfix "mx.p.test" on 127.0.0.10:25  <->  Yubin "mx.y.test" on 127.0.0.11:25
//
// Yubin finds Postfix through the test DNS server (MX p.test -> mx.p.test -> 127.0.0.10); Postfix
// reaches Yubin through a transport map (y.test -> smtp:[127.0.0.11]:25), with DNS turned off.
// Postfix is a throwaway instance: its own config_directory, queue_directory, data_directory and
// Maildir base under a temp directory, started with `postfix -c DIR start`; the system's
// /etc/postfix is only read (master.cf is copied from it). If Postfix is not installed, it is
// installed from Debian's packages with "No configuration".
//
// Run with `npm run test:interop` (as root: Postfix's master must start as root). INTEROP_KEEP=1
// keeps the Postfix directory afterwards; it is kept anyway when a check failed.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { authenticate, type DNSResolver } from 'mailauth';
import { startDnsServer, type TestDnsServer } from '../test/helpers/dns-server.js';
import { startMailHost, PASSWORD, type MailHost } from '../test/helpers/mail-hosts.js';
import { readMailbox } from '../test/helpers/mailbox.js';
import { waitFor as waitForShared } from '../test/helpers/wait.js';
import { CLI } from '../test/helpers/yubin.js';
import { loadTlsMaterial } from '../src/tls/certificates.js';

const POSTFIX_IP = '127.0.0.10';
const YUBIN_IP = '127.0.0.11';
const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';
const POSTQUEUE = '/usr/sbin/postqueue';
const WAIT_MS = 60_000;

/** Postfix retries on its own schedule (minimal_backoff_time): a longer wait than the default. */
function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = WAIT_MS): Promise<T> {
  return waitForShared(what, probe, timeoutMs, 250);
}

// ---------------------------------------------------------------------------------------------
// Processes, always asynchronous: Yubin asks the DNS server that runs inside this process, so
// this process must never block (no spawnSync while Yubin runs).

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ status: null, stdout, stderr: stderr + String(err) });
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin!.end(options.input ?? '');
  });
}

async function runOk(command: string, args: string[], options: Parameters<typeof run>[2] = {}): Promise<string> {
  const result = await run(command, args, options);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The Yubin CLI, asynchronously (test/helpers' cli() is spawnSync). */
async function yubin(dataDir: string, args: string[]): Promise<string> {
  return runOk(process.execPath, [CLI, ...args, '--data', dataDir]);
}


/** True when something accepts TCP connections on host:port. */
function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Postfix

async function ensurePostfixInstalled(): Promise<void> {
  if (fs.existsSync(POSTFIX) && fs.existsSync(POSTCONF)) return;
  await runOk('debconf-set-selections', [], { input: 'postfix postfix/main_mailer_type select No configuration\n' });
  // Waits for the dpkg lock rather than failing at once when another apt is running.
  const install = () => run('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', 'postfix'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 420_000 });
  let result = await install();
  if (result.status !== 0) {
    await runOk('apt-get', ['update'], { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 300_000 });
    result = await install();
  }
  if (result.status !== 0 || !fs.existsSync(POSTFIX)) throw new Error(`could not install postfix:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
}

function passwdIds(user: string): { uid: number; gid: number } {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) throw new Error(`no user ${user} in /etc/passwd`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

interface PostfixInstance {
  base: string;
  conf: string;
  queue: string;
  vmail: string;
  maillog: string;
  /** master's pid once started. */
  pid: number | null;
}

async function createPostfix(): Promise<PostfixInstance> {
  // Everything under one directory that Postfix's unprivileged processes (postfix, nobody) can enter.
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-postfix-'));
  fs.chmodSync(base, 0o755);
  const conf = path.join(base, 'conf');
  const queue = path.join(base, 'queue');
  const data = path.join(base, 'data');
  const vmail = path.join(base, 'vmail');
  const maillog = path.join(base, 'maillog');
  for (const dir of [conf, queue, data, vmail]) fs.mkdirSync(dir, { mode: 0o755 });
  const postfixUser = passwdIds('postfix');
  fs.chownSync(data, postfixUser.uid, postfixUser.gid);
  // Virtual mailboxes belong to an existing unprivileged user.
  const owner = passwdIds('nobody');
  fs.chownSync(vmail, owner.uid, owner.gid);

  // A self-signed certificate for STARTTLS on Postfix's smtpd (Yubin uses TLS opportunistically).
  await loadTlsMaterial({ certFile: '', keyFile: '', dataDir: base, hostname: 'mx.p.test' });
  const tlsKey = path.join(base, 'tls', 'self-signed.key');
  const tlsCert = path.join(base, 'tls', 'self-signed.crt');

  fs.writeFileSync(path.join(conf, 'vmailbox'), 'pat@p.test pat/\n');
  fs.writeFileSync(path.join(conf, 'transport'), `y.test smtp:[${YUBIN_IP}]:25\n`);
  fs.writeFileSync(
    path.join(conf, 'main.cf'),
    [
      '# Throwaway Postfix instance for Yubin\'s interop test.',
      'compatibility_level = 3.6',
      `queue_directory = ${queue}`,
      `data_directory = ${data}`,
      // inet_interfaces must name addresses assigned to an interface ("no local interface found
      // for 127.0.0.10" otherwise: only 127.0.0.1 is on lo). The smtpd listener is bound to
      // 127.0.0.10 in master.cf instead, and the SMTP client's source address set below.
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      `smtp_bind_address = ${POSTFIX_IP}`,
      'myhostname = mx.p.test',
      'mydestination =',
      'mynetworks = 127.0.0.0/8',
      'alias_maps =',
      'alias_database =',
      'virtual_mailbox_domains = p.test',
      `virtual_mailbox_base = ${vmail}`,
      `virtual_mailbox_maps = texthash:${path.join(conf, 'vmailbox')}`,
      `virtual_uid_maps = static:${owner.uid}`,
      `virtual_gid_maps = static:${owner.gid}`,
      `transport_maps = texthash:${path.join(conf, 'transport')}`,
      'smtp_dns_support_level = disabled',
      // No reverse lookups of loopback clients through the machine's resolver.
      'smtpd_peername_lookup = no',
      'smtputf8_enable = no',
      'biff = no',
      `smtpd_tls_chain_files = ${tlsKey}, ${tlsCert}`,
      'smtpd_tls_security_level = may',
      'smtpd_tls_received_header = yes',
      'smtp_tls_security_level = may',
      'smtp_tls_loglevel = 1',
      'smtpd_tls_loglevel = 1',
      'minimal_backoff_time = 5s',
      'maximal_backoff_time = 10s',
      'queue_run_delay = 5s',
      `maillog_file = ${maillog}`,
      `maillog_file_prefixes = ${base}`,
      '',
    ].join('\n'),
  );

  const master = fs.readFileSync('/etc/postfix/master.cf', 'utf8');
  const smtpd = /^smtp(\s+)inet\b/m;
  assert.match(master, smtpd, '/etc/postfix/master.cf has an "smtp inet" service');
  fs.writeFileSync(path.join(conf, 'master.cf'), master.replace(smtpd, `${POSTFIX_IP}:25$1inet`));
  await runOk(POSTCONF, ['-c', conf, '-F', '*/*/chroot = n']);
  return { base, conf, queue, vmail, maillog, pid: null };
}

/**
 * Runs `postfix -c DIR ...`. Postfix prints its fatal errors to stderr only when stderr is a
 * terminal (otherwise to syslog, absent here), so a failure is run again under script(1).
 */
async function postfixCommand(pf: PostfixInstance, command: string): Promise<void> {
  const result = await run(POSTFIX, ['-c', pf.conf, command]);
  if (result.status === 0) return;
  const again = await run('script', ['-qec', `${POSTFIX} -c ${pf.conf} ${command}`, '/dev/null']);
  throw new Error(`postfix -c ${pf.conf} ${command} exited ${result.status}:\n${result.stdout}${result.stderr}\n${again.stdout}${again.stderr}\n${logTail(pf)}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startPostfix(pf: PostfixInstance): Promise<void> {
  await postfixCommand(pf, 'check');
  await postfixCommand(pf, 'start');
  await waitFor('Postfix listening on 127.0.0.10:25', () => listening(POSTFIX_IP, 25), 20_000);
  pf.pid = Number(fs.readFileSync(path.join(pf.queue, 'pid', 'master.pid'), 'utf8').trim());
}

async function stopPostfix(pf: PostfixInstance): Promise<void> {
  if (!pf.pid) return;
  const pid = pf.pid;
  await run(POSTFIX, ['-c', pf.conf, 'stop']);
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    return !alive(pid);
  };
  if (!(await gone(20_000))) {
    await run(POSTFIX, ['-c', pf.conf, 'abort']);
    if (!(await gone(5_000))) process.kill(pid, 'SIGKILL');
  }
  pf.pid = null;
}

function logTail(pf: PostfixInstance, lines = 80): string {
  let log = '';
  try {
    log = fs.readFileSync(pf.maillog, 'utf8');
  } catch {
    return `(no ${pf.maillog})`;
  }
  return log.split('\n').slice(-lines - 1).join('\n');
}

interface MaildirMessage {
  file: string;
  text: string;
}

/** The messages delivered to new/ of a virtual user's Maildir. */
function maildir(pf: PostfixInstance, user: string): MaildirMessage[] {
  const dir = path.join(pf.vmail, user, 'new');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => ({ file: path.join(dir, name), text: fs.readFileSync(path.join(dir, name), 'latin1') }));
}

// ---------------------------------------------------------------------------------------------
// Messages

/** The header section, unfolded: one string per field, "Name: value". */
function headerFields(text: string): string[] {
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  return head
    .replace(/\r?\n[ \t]+/g, ' ')
    .split(/\r?\n/)
    .filter((line) => line.length > 0);
}

/** Values of the named header field, top first. */
function header(text: string, name: string): string[] {
  const prefix = `${name.toLowerCase()}:`;
  return headerFields(text)
    .filter((f) => f.toLowerCase().startsWith(prefix))
    .map((f) => f.slice(prefix.length).trim());
}

/** The whole text with folded lines joined, for fields in MIME parts (message/delivery-status). */
function unfolded(text: string): string {
  return text.replace(/\r?\n[ \t]+/g, ' ');
}

function raw(from: string, to: string, subject: string, body = 'Hello from the interop test.\r\n'): string {
  return `From: ${from}\r\nTo: ${to}\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;
}

// ---------------------------------------------------------------------------------------------

interface QueueJson {
  id: number;
  sender: string;
  recipients: Array<{ address: string; state: string; attempts: number; lastReply: { code: number; enhanced: string | null; text: string } | null }>;
}

describe('Yubin and a real Postfix exchange mail both ways', () => {
  let dnsServer: TestDnsServer;
  let host: MailHost;
  let pf: PostfixInstance;
  let anyFailed = false;

  async function yubinQueue(): Promise<QueueJson[]> {
    return JSON.parse(await yubin(host.dataDir, ['queue', 'list', '--json'])) as QueueJson[];
  }

  async function postfixQueue(): Promise<string> {
    return (await run(POSTQUEUE, ['-c', pf.conf, '-p'])).stdout;
  }

  async function diagnostics(label: string): Promise<void> {
    const out: string[] = [`===== diagnostics for: ${label} =====`];
    if (pf) {
      out.push(`--- Postfix log (${pf.maillog}), last lines ---`, logTail(pf));
      out.push('--- postqueue -p ---', await postfixQueue().catch((err: unknown) => String(err)));
      out.push(`--- Pat's Maildir (${pf.vmail}/pat/new) ---`, maildir(pf, 'pat').map((m) => m.file).join('\n') || '(empty)');
    }
    if (host) {
      out.push('--- yubin queue list ---', await yubin(host.dataDir, ['queue', 'list']).catch((err: unknown) => String(err)));
      out.push(`--- Yubin output (data ${host.dataDir}), last lines ---`, host.server.stdout().split('\n').slice(-40).join('\n'), host.server.stderr().split('\n').slice(-20).join('\n'));
    }
    console.error(out.join('\n'));
  }

  /** Runs a check; on failure prints the Postfix log, both queues and Yubin's output. */
  function check(name: string, body: () => Promise<void>): void {
    it(name, async () => {
      try {
        await body();
      } catch (err) {
        anyFailed = true;
        await diagnostics(name);
        throw err;
      }
    });
  }

  function submit(envelope: { from: string; to: string[] }, message: string) {
    const transport = nodemailer.createTransport({
      host: YUBIN_IP,
      port: host.server.ports.submission,
      secure: false,
      requireTLS: true,
      tls: { rejectUnauthorized: false },
      auth: { user: envelope.from, pass: PASSWORD },
    });
    return transport.sendMail({ envelope, raw: message }).finally(() => transport.close());
  }

  /** Plain SMTP to Postfix's port 25 from 127.0.0.1 (in mynetworks, so relaying is allowed). */
  function sendViaPostfix(envelope: { from: string; to: string[] }, message: string) {
    const transport = nodemailer.createTransport({
      host: POSTFIX_IP,
      port: 25,
      secure: false,
      name: 'client.p.test',
      tls: { rejectUnauthorized: false },
    });
    return transport.sendMail({ envelope, raw: message }).finally(() => transport.close());
  }

  async function yukiMessage(what: string, match: (text: string) => boolean) {
    return waitFor(what, async () => (await readMailbox(host.dataDir, 'yuki@y.test')).find((m) => match(m.text)));
  }

  before(
    async () => {
      await ensurePostfixInstalled();
      for (const [ip, who] of [
        [POSTFIX_IP, 'Postfix'],
        [YUBIN_IP, 'Yubin'],
      ] as const) {
        if (await listening(ip, 25)) throw new Error(`something already listens on ${ip}:25, where this test starts ${who}; a leftover from an interrupted run? (ss -ltnp; a leftover Postfix stops with: postfix -c /tmp/yubin-postfix-XXXXXX/conf stop)`);
      }
      dnsServer = await startDnsServer({
        mx: { 'p.test': [{ exchange: 'mx.p.test', priority: 10 }] },
        a: { 'mx.p.test': [POSTFIX_IP] },
      });
      host = await startMailHost({ domain: 'y.test', ip: YUBIN_IP, dns: dnsServer, users: ['yuki'] });
      pf = await createPostfix();
      try {
        await startPostfix(pf);
      } catch (err) {
        anyFailed = true;
        console.error(`--- Postfix log (${pf.maillog}) ---\n${logTail(pf)}`);
        throw err;
      }
    },
    { timeout: 600_000 },
  );

  after(
    async () => {
      await Promise.allSettled([host?.server.stop(), pf && stopPostfix(pf)]);
      await dnsServer?.close();
      // INTEROP_KEEP=1 keeps the Postfix directory (config, log, Maildirs) and Yubin's data even when all passed.
      if (!anyFailed && process.env.INTEROP_KEEP !== '1') {
        if (pf) fs.rmSync(pf.base, { recursive: true, force: true });
        if (host) fs.rmSync(host.dataDir, { recursive: true, force: true });
      } else {
        console.error(`kept for inspection: Postfix ${pf?.base ?? '(not created)'}, Yubin data ${host?.dataDir ?? '(not created)'}`);
      }
      for (const ip of [POSTFIX_IP, YUBIN_IP]) {
        assert.equal(await listening(ip, 25), false, `nothing listens on ${ip}:25 any more`);
      }
    },
    { timeout: 60_000 },
  );

  check('Yubin → Postfix: submitted mail reaches a Postfix Maildir over STARTTLS, DKIM-signed (and still verifying there)', async () => {
    const subject = `to Postfix ${Date.now()}`;
    const info = await submit({ from: 'yuki@y.test', to: ['pat@p.test'] }, raw('Yuki <yuki@y.test>', 'Pat <pat@p.test>', subject));
    assert.match(String(info.response), /^250 /);

    const delivered = await waitFor("the message in Pat's Maildir", () => maildir(pf, 'pat').find((m) => header(m.text, 'Subject')[0] === subject));
    const text = delivered.text;
    assert.deepEqual(header(text, 'Return-Path'), ['<yuki@y.test>']);
    assert.deepEqual(header(text, 'Delivered-To'), ['pat@p.test']);

    const received = header(text, 'Received');
    // Top: Postfix took it from Yubin (mx.y.test, 127.0.0.11), over TLS.
    assert.match(received[0] ?? '', /^from mx\.y\.test \(unknown \[127\.0\.0\.11\]\) \(using TLSv1\.[23] with cipher [^)]+\).* by mx\.p\.test \(Postfix\) with ESMTPS id \w+ for <pat@p\.test>;/);
    // Below: Yubin took it from Yuki by authenticated submission.
    assert.match(received[1] ?? '', / by mx\.y\.test \(Yubin\) with ESMTPSA /);

    // Yubin signs twice (RSA and Ed25519), both for d=y.test.
    const signatures = header(text, 'DKIM-Signature');
    assert.ok(signatures.length >= 1, 'a DKIM-Signature');
    for (const signature of signatures) assert.match(signature, /(^|;\s*)d=y\.test;/);

    // The signature made by Yubin still verifies on what Postfix stored (Maildir lines end in LF).
    const resolver = new dns.promises.Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([dnsServer.address]);
    const auth = await authenticate(Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1'), {
      ip: YUBIN_IP,
      helo: 'mx.y.test',
      sender: 'yuki@y.test',
      mta: 'mx.p.test',
      resolver: ((name: string, rrtype: string) => resolver.resolve(name, rrtype)) as unknown as DNSResolver,
      trustReceived: false,
      disableBimi: true,
    });
    const dkim = auth.dkim?.results ?? [];
    assert.deepEqual(
      dkim.map((r) => [r.signingDomain, r.status.result]),
      signatures.map(() => ['y.test', 'pass']),
      `every DKIM signature verifies on the delivered copy: ${dkim.map((r) => r.info).join('; ')}`,
    );
    assert.equal(auth.spf && auth.spf.status.result, 'pass', 'SPF of y.test passes for 127.0.0.11');
    assert.equal(auth.dmarc && auth.dmarc.status.result, 'pass', 'DMARC of y.test passes');

    assert.match(logTail(pf, 400), /postfix\/virtual\[\d+\]: \w+: to=<pat@p\.test>, relay=virtual, .*status=sent \(delivered to maildir\)/);
    await waitFor("an empty queue on Yubin", async () => (await yubinQueue()).length === 0);
  });

  check('Postfix → Yubin: mail relayed by Postfix through its transport map lands in Yuki\'s INBOX', async () => {
    const subject = `from Postfix ${Date.now()}`;
    const info = await sendViaPostfix({ from: 'pat@p.test', to: ['yuki@y.test'] }, raw('Pat <pat@p.test>', 'Yuki <yuki@y.test>', subject));
    assert.match(String(info.response), /^250 /);

    const message = await yukiMessage("the message in Yuki's INBOX", (text) => header(text, 'Subject')[0] === subject);
    const text = message.text;
    assert.deepEqual(header(text, 'Return-Path'), ['<pat@p.test>']);

    const received = header(text, 'Received');
    // Top: Yubin took it from Postfix (HELO mx.p.test, from 127.0.0.10), over TLS.
    assert.match(received[0] ?? '', /^from mx\.p\.test \(\[127\.0\.0\.10\]\) by mx\.y\.test \(Yubin\) with ESMTPS \(TLSv1\.[23] with cipher [^)]+\) id \S+ for <yuki@y\.test>;/);
    // Below: Postfix took it from the test client.
    assert.match(received[1] ?? '', /^from client\.p\.test \(unknown \[127\.0\.0\.1\]\) .*by mx\.p\.test \(Postfix\) with ESMTPS? id \w+ for <yuki@y\.test>;/);
    assert.equal(received.length, 2, 'two hops');

    assert.match(logTail(pf, 400), /postfix\/smtp\[\d+\]: \w+: to=<yuki@y\.test>, relay=127\.0\.0\.11\[127\.0\.0\.11\]:25, .*status=sent \(250 /);
    await waitFor('an empty Postfix queue', async () => /Mail queue is empty/.test(await postfixQueue()));
  });

  check('Postfix refuses an unknown user at RCPT (550 5.1.1): Yuki gets Yubin\'s delivery report with Postfix\'s reply', async () => {
    const subject = `to nobody ${Date.now()}`;
    await submit({ from: 'yuki@y.test', to: ['nobody@p.test'] }, raw('yuki@y.test', 'nobody@p.test', subject));

    const bounce = await yukiMessage('a delivery report in Yuki\'s INBOX', (text) => /multipart\/report/i.test(header(text, 'Content-Type')[0] ?? '') && text.includes(`Subject: ${subject}`));
    const text = unfolded(bounce.text);
    assert.deepEqual(header(bounce.text, 'Return-Path'), ['<>']);
    assert.match(header(bounce.text, 'Content-Type')[0]!, /report-type="?delivery-status/i);
    assert.match(text, /^Reporting-MTA: dns; ?mx\.y\.test/m);
    assert.match(text, /^Final-Recipient: rfc822; ?nobody@p\.test/m);
    assert.match(text, /^Action: failed/m);
    assert.match(text, /^Status: 5\.1\.1/m);
    assert.match(text, /^Remote-MTA: dns; ?mx\.p\.test/m);
    assert.match(text, /^Diagnostic-Code: smtp; ?550 5\.1\.1 <nobody@p\.test>: Recipient address rejected: User unknown in virtual mailbox table/m);

    assert.match(logTail(pf, 400), /NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.11\]: 550 5\.1\.1 <nobody@p\.test>/);
    await waitFor('an empty queue on Yubin', async () => (await yubinQueue()).length === 0);
  });

  check('Yubin refuses an unknown user (550 5.1.1): Postfix bounces to Pat\'s Maildir with Yubin\'s reply', async () => {
    const subject = `to ghost ${Date.now()}`;
    const info = await sendViaPostfix({ from: 'pat@p.test', to: ['ghost@y.test'] }, raw('pat@p.test', 'ghost@y.test', subject));
    assert.match(String(info.response), /^250 /);

    const bounce = await waitFor("Postfix's bounce in Pat's Maildir", () =>
      maildir(pf, 'pat').find((m) => /multipart\/report/i.test(header(m.text, 'Content-Type')[0] ?? '') && m.text.includes(`Subject: ${subject}`)),
    );
    const text = unfolded(bounce.text);
    assert.deepEqual(header(bounce.text, 'Return-Path'), ['<>']);
    assert.match(header(bounce.text, 'From')[0]!, /MAILER-DAEMON@mx\.p\.test/);
    assert.match(text, /ghost@y\.test/);
    assert.match(text, /^Reporting-MTA: dns; ?mx\.p\.test/m);
    assert.match(text, /^Final-Recipient: rfc822; ?ghost@y\.test/m);
    assert.match(text, /^Action: failed/m);
    assert.match(text, /^Status: 5\.1\.1/m);
    assert.match(text, /^Remote-MTA: dns; ?127\.0\.0\.11/m);
    assert.match(text, /^Diagnostic-Code: smtp; ?550 5\.1\.1 The mailbox <ghost@y\.test> does not exist/m);

    assert.match(logTail(pf, 400), /to=<ghost@y\.test>, relay=127\.0\.0\.11\[127\.0\.0\.11\]:25, .*status=bounced \(host 127\.0\.0\.11\[127\.0\.0\.11\] said: 550 5\.1\.1 /);
    await waitFor('an empty Postfix queue', async () => /Mail queue is empty/.test(await postfixQueue()));
  });
});
