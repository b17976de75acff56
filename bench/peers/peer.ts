// The peer: Debian's Postfix and Dovecot, as our own throwaway instances on a loopback address.
//
//   SMTP 127.0.0.20:2525 (Postfix smtpd) -> qmgr -> lmtp client -> 127.0.0.20:2424 (Dovecot LMTP)
//   IMAP 127.0.0.20:1143, POP3 127.0.0.20:1110 (Dovecot), mail in BASE/vmail/USER/Maildir
//
// Everything lives under one temp directory BASE: Postfix's config, queue and data directories
// (`postfix -c BASE/postfix/conf start`), Dovecot's config, passwd-file, base_dir, state_dir and
// log (`dovecot -c BASE/dovecot/dovecot.conf`), and the maildirs. The system's own postfix and
// dovecot services (which the packages may start) are stopped first. Durability is each
// package's default: Postfix fsyncs its queue file before its 250; Dovecot's mail_fsync =
// optimized fsyncs a delivered maildir file before LMTP's 250 (and Postfix removes the queue
// file only after that).

import fs from 'node:fs';
import path from 'node:path';
import { alive, forEachLimited, listening, log, passwdIds, processTree, pssKiB, rssKiB, run, runOk, sleep, waitFor } from './common.js';
import { DOMAIN, PASSWORD } from './messages.js';

export const PEER_HOST = '127.0.0.20';
export const PEER_PORTS = { smtp: 2525, imap: 1143, pop3: 1110, lmtp: 2424 };
const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';
const POSTSUPER = '/usr/sbin/postsuper';
const DOVECOT = '/usr/sbin/dovecot';
const DOVEADM = '/usr/bin/doveadm';
/** The system user that owns the maildirs (Dovecot's mail_uid/mail_gid). */
export const MAIL_USER = 'vmail';

const PACKAGES = ['postfix', 'dovecot-core', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd'];

function installed(): boolean {
  return [POSTFIX, POSTCONF, DOVECOT, DOVEADM, '/usr/lib/dovecot/imap', '/usr/lib/dovecot/pop3', '/usr/lib/dovecot/lmtp'].every((f) => fs.existsSync(f));
}

/** Installs the Debian packages when missing, non-interactively; apt-get update only if needed. */
export async function ensureInstalled(): Promise<void> {
  if (installed()) return;
  log(`installing ${PACKAGES.join(', ')} (apt-get)`);
  await runOk('debconf-set-selections', [], {
    input: 'postfix postfix/main_mailer_type select No configuration\npostfix postfix/mailname string peers.test\n',
  });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', ...PACKAGES], { env, timeoutMs: 600_000 });
  let result = await install();
  if (result.status !== 0 || !installed()) {
    log('apt-get install failed; apt-get update, then again');
    await runOk('apt-get', ['-o', 'DPkg::Lock::Timeout=120', 'update'], { env, timeoutMs: 600_000 });
    result = await install();
  }
  if (result.status !== 0 || !installed()) throw new Error(`could not install ${PACKAGES.join(' ')}:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
}

function pidFrom(file: string): number | null {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Stops and disables the system's postfix and dovecot services if they run (the packages start
 * them where they can): systemctl where systemd runs, else the tools' own stop commands.
 */
export async function stopSystemServices(): Promise<string[]> {
  const done: string[] = [];
  if (fs.existsSync('/run/systemd/system')) {
    for (const unit of ['postfix', 'dovecot']) {
      const r = await run('systemctl', ['disable', '--now', unit], { timeoutMs: 60_000 });
      if (r.status === 0) done.push(`systemctl disable --now ${unit}`);
    }
  }
  if (pidFrom('/var/spool/postfix/pid/master.pid') !== null && fs.existsSync('/etc/postfix/main.cf')) {
    await run(POSTFIX, ['stop'], { timeoutMs: 60_000 });
    done.push('postfix stop (system instance)');
  }
  const dovecotPid = pidFrom('/run/dovecot/master.pid');
  if (dovecotPid !== null) {
    const r = await run(DOVEADM, ['stop'], { timeoutMs: 60_000 });
    if (r.status !== 0) process.kill(dovecotPid, 'SIGTERM');
    done.push('doveadm stop (system instance)');
  }
  return done;
}

/** The mail user (a system user without a home or shell), created when missing. */
export async function ensureMailUser(): Promise<{ uid: number; gid: number }> {
  let ids = passwdIds(MAIL_USER);
  if (ids) return ids;
  const group = await run('getent', ['group', MAIL_USER]);
  if (group.status !== 0) await runOk('groupadd', ['--system', MAIL_USER]);
  await runOk('useradd', ['--system', '--gid', MAIL_USER, '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', MAIL_USER]);
  ids = passwdIds(MAIL_USER);
  if (!ids) throw new Error(`could not create the user ${MAIL_USER}`);
  return ids;
}

export async function peerVersions(): Promise<{ postfix: string; dovecot: string }> {
  const postfix = (await run(POSTCONF, ['-d', '-h', 'mail_version'])).stdout.trim() || 'unknown';
  const dovecot = (await run(DOVECOT, ['--version'])).stdout.trim() || 'unknown';
  return { postfix, dovecot };
}

export interface PeerOptions {
  base: string;
  users: string[];
  /** IMAP connections the memory workload opens at most. */
  maxImapConnections: number;
}

export class Peer {
  readonly host = PEER_HOST;
  readonly smtpPort = PEER_PORTS.smtp;
  readonly imapPort = PEER_PORTS.imap;
  readonly pop3Port = PEER_PORTS.pop3;
  readonly vmail: string;
  readonly dovecotConf: string;
  readonly dovecotLog: string;
  readonly postfixConf: string;
  readonly postfixQueue: string;
  readonly maillog: string;
  private readonly dovecotRun: string;
  private postfixPid: number | null = null;
  dovecotPid: number | null = null;
  private mailIds: { uid: number; gid: number } = { uid: -1, gid: -1 };
  private seq = 0;

  constructor(private readonly options: PeerOptions) {
    const b = options.base;
    this.vmail = path.join(b, 'vmail');
    this.dovecotConf = path.join(b, 'dovecot', 'dovecot.conf');
    this.dovecotLog = path.join(b, 'dovecot', 'dovecot.log');
    this.dovecotRun = path.join(b, 'dovecot', 'run');
    this.postfixConf = path.join(b, 'postfix', 'conf');
    this.postfixQueue = path.join(b, 'postfix', 'queue');
    this.maillog = path.join(b, 'postfix', 'maillog');
  }

  /** Writes both configurations and the users (passwd-file with SHA512-CRYPT hashes). */
  async configure(): Promise<void> {
    const b = this.options.base;
    this.mailIds = await ensureMailUser();
    const postfixIds = passwdIds('postfix');
    if (!postfixIds) throw new Error('no postfix user (is postfix installed?)');
    for (const d of [b, path.join(b, 'dovecot'), path.join(b, 'postfix'), this.postfixConf, this.postfixQueue, path.join(b, 'postfix', 'data'), this.vmail]) {
      fs.mkdirSync(d, { recursive: true, mode: 0o755 });
      fs.chmodSync(d, 0o755);
    }
    fs.chownSync(path.join(b, 'postfix', 'data'), postfixIds.uid, postfixIds.gid);
    fs.chownSync(this.vmail, this.mailIds.uid, this.mailIds.gid);

    // Users: one SHA512-CRYPT hash each (own salt), made by doveadm pw.
    const lines: string[] = new Array(this.options.users.length);
    await forEachLimited(this.options.users.length, 4, async (i) => {
      const hash = (await runOk(DOVEADM, ['pw', '-s', 'SHA512-CRYPT', '-p', PASSWORD])).trim();
      lines[i] = `${this.options.users[i]}:${hash}`;
    });
    const passwd = path.join(b, 'dovecot', 'passwd');
    fs.writeFileSync(passwd, lines.join('\n') + '\n', { mode: 0o640 });
    const dovecotGroup = passwdIds('dovecot');
    if (dovecotGroup) fs.chownSync(passwd, 0, dovecotGroup.gid);

    const imapProcesses = this.options.maxImapConnections + 200;
    fs.writeFileSync(
      this.dovecotConf,
      [
        '# Throwaway Dovecot instance for Yubin\'s side-by-side benchmark (bench/peers). Defaults',
        '# everywhere except: loopback listeners on other ports, private directories, no TLS on',
        '# loopback, passwd-file users, and process/client limits raised for the idle connections.',
        'protocols = imap pop3 lmtp',
        `listen = ${PEER_HOST}`,
        `base_dir = ${this.dovecotRun}`,
        `state_dir = ${path.join(b, 'dovecot', 'state')}`,
        'instance_name = yubin-bench-peer',
        `log_path = ${this.dovecotLog}`,
        'ssl = no',
        'disable_plaintext_auth = no',
        'auth_mechanisms = plain login',
        'mail_location = maildir:~/Maildir',
        `mail_uid = ${MAIL_USER}`,
        `mail_gid = ${MAIL_USER}`,
        `first_valid_uid = ${this.mailIds.uid}`,
        `first_valid_gid = ${this.mailIds.gid}`,
        // Each imap process counts as a client of log, anvil, stats, config and auth: their
        // client limits (default_client_limit, 1000) must cover every connection.
        `default_client_limit = ${imapProcesses + 500}`,
        'namespace inbox {',
        '  inbox = yes',
        '}',
        'passdb {',
        '  driver = passwd-file',
        `  args = scheme=SHA512-CRYPT ${passwd}`,
        '}',
        'userdb {',
        '  driver = static',
        `  args = uid=${MAIL_USER} gid=${MAIL_USER} home=${this.vmail}/%n`,
        '}',
        'service imap-login {',
        '  inet_listener imap {',
        `    address = ${PEER_HOST}`,
        `    port = ${PEER_PORTS.imap}`,
        '  }',
        '  inet_listener imaps {',
        '    port = 0',
        '  }',
        '}',
        'service pop3-login {',
        '  inet_listener pop3 {',
        `    address = ${PEER_HOST}`,
        `    port = ${PEER_PORTS.pop3}`,
        '  }',
        '  inet_listener pop3s {',
        '    port = 0',
        '  }',
        '}',
        'service lmtp {',
        '  inet_listener lmtp {',
        `    address = ${PEER_HOST}`,
        `    port = ${PEER_PORTS.lmtp}`,
        '  }',
        '}',
        '# One imap process per connection (the default); enough of them for the idle connections.',
        'service imap {',
        `  process_limit = ${imapProcesses}`,
        '}',
        '',
      ].join('\n'),
    );

    // Postfix: smtpd on PEER_HOST:2525 only; the test domain's mailboxes are virtual and go to
    // Dovecot over LMTP; no local delivery. Everything else is Postfix's default.
    const c = this.postfixConf;
    fs.writeFileSync(path.join(c, 'vmailbox'), this.options.users.map((u) => `${u} OK`).join('\n') + '\n');
    fs.writeFileSync(
      path.join(c, 'main.cf'),
      [
        "# Throwaway Postfix instance for Yubin's side-by-side benchmark (bench/peers).",
        'compatibility_level = 3.6',
        `queue_directory = ${this.postfixQueue}`,
        `data_directory = ${path.join(b, 'postfix', 'data')}`,
        // inet_interfaces must name an address assigned to an interface; the smtpd listener
        // itself is bound to PEER_HOST in master.cf.
        'inet_interfaces = loopback-only',
        'inet_protocols = ipv4',
        'myhostname = mx.peer.test',
        'mydomain = peer.test',
        'myorigin = $mydomain',
        'mydestination =',
        'local_transport = error:local delivery is disabled',
        'mynetworks = 127.0.0.0/8',
        'alias_maps =',
        'alias_database =',
        `virtual_mailbox_domains = ${DOMAIN}`,
        `virtual_mailbox_maps = texthash:${path.join(c, 'vmailbox')}`,
        `virtual_transport = lmtp:inet:${PEER_HOST}:${PEER_PORTS.lmtp}`,
        'smtp_dns_support_level = disabled',
        'smtpd_peername_lookup = no',
        'biff = no',
        `maillog_file = ${this.maillog}`,
        `maillog_file_prefixes = ${b}`,
        '',
      ].join('\n'),
    );
    const systemMaster = ['/etc/postfix/master.cf', '/usr/share/postfix/master.cf.dist', '/etc/postfix/master.cf.proto'].find((f) => fs.existsSync(f));
    if (!systemMaster) throw new Error('no master.cf to start from');
    const master = fs.readFileSync(systemMaster, 'utf8');
    const smtpd = /^smtp(\s+)inet\b/m;
    if (!smtpd.test(master)) throw new Error(`${systemMaster} has no "smtp inet" service`);
    fs.writeFileSync(path.join(c, 'master.cf'), master.replace(smtpd, `${PEER_HOST}:${PEER_PORTS.smtp}$1inet`));
    await runOk(POSTCONF, ['-c', c, '-F', '*/*/chroot = n']);
  }

  async start(): Promise<void> {
    const check = await run(DOVECOT, ['-c', this.dovecotConf, '-n']);
    if (check.status !== 0) throw new Error(`dovecot -n: ${check.stderr}`);
    const started = await run(DOVECOT, ['-c', this.dovecotConf], { daemon: true, timeoutMs: 60_000 });
    if (started.status !== 0) throw new Error(`dovecot -c ${this.dovecotConf} exited ${started.status}:\n${this.tail(this.dovecotLog)}`);
    await waitFor('Dovecot listening', async () => (await listening(PEER_HOST, PEER_PORTS.imap)) && (await listening(PEER_HOST, PEER_PORTS.pop3)) && (await listening(PEER_HOST, PEER_PORTS.lmtp)), 30_000);
    this.dovecotPid = pidFrom(path.join(this.dovecotRun, 'master.pid'));
    await this.postfix('check');
    await this.postfix('start');
    await waitFor('Postfix listening', () => listening(PEER_HOST, PEER_PORTS.smtp), 30_000);
    this.postfixPid = pidFrom(path.join(this.postfixQueue, 'pid', 'master.pid'));
  }

  /** Postfix prints fatal errors only to a terminal (else syslog), so a failure runs again under script(1). */
  private async postfix(command: string): Promise<void> {
    const result = await run(POSTFIX, ['-c', this.postfixConf, command], { daemon: command === 'start' });
    if (result.status === 0) return;
    const again = await run('script', ['-qec', `${POSTFIX} -c ${this.postfixConf} ${command}`, '/dev/null']);
    throw new Error(`postfix -c ${this.postfixConf} ${command} exited ${result.status}: ${result.stdout}${result.stderr}\n${again.stdout}${again.stderr}\n${this.tail(this.maillog)}`);
  }

  /** Stops both (Postfix first, so that nothing is delivered meanwhile); kills what remains. */
  async stop(): Promise<void> {
    this.postfixPid ??= pidFrom(path.join(this.postfixQueue, 'pid', 'master.pid'));
    this.dovecotPid ??= pidFrom(path.join(this.dovecotRun, 'master.pid'));
    const pfTree = this.postfixPid ? processTree(this.postfixPid).map((p) => p.pid) : [];
    if (this.postfixPid) await run(POSTFIX, ['-c', this.postfixConf, 'stop'], { timeoutMs: 30_000, daemon: true });
    const dcTree = this.dovecotPid ? processTree(this.dovecotPid).map((p) => p.pid) : [];
    if (this.dovecotPid) {
      const r = await run(DOVEADM, ['-c', this.dovecotConf, 'stop'], { timeoutMs: 30_000, daemon: true });
      if (r.status !== 0 && alive(this.dovecotPid)) process.kill(this.dovecotPid, 'SIGTERM');
    }
    const all = [...pfTree, ...dcTree];
    const deadline = Date.now() + 20_000;
    while (all.some(alive) && Date.now() < deadline) await sleep(200);
    for (const pid of all.filter(alive)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    this.postfixPid = null;
    this.dovecotPid = null;
  }

  tail(file: string, lines = 40): string {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return `(no ${file})`;
    }
  }

  /** Empties every mailbox and Postfix's queue (before a workload that needs fresh state). */
  async resetMail(): Promise<void> {
    await run(POSTSUPER, ['-c', this.postfixConf, '-d', 'ALL'], { timeoutMs: 60_000 });
    for (const entry of fs.readdirSync(this.vmail)) fs.rmSync(path.join(this.vmail, entry), { recursive: true, force: true });
  }

  /** Messages in all maildirs (files in new/ and cur/). */
  countMail(): number {
    let count = 0;
    for (const user of fs.readdirSync(this.vmail)) {
      for (const sub of ['new', 'cur']) {
        try {
          count += fs.readdirSync(path.join(this.vmail, user, 'Maildir', sub)).length;
        } catch {
          // not created yet
        }
      }
    }
    return count;
  }

  /**
   * Writes messages straight into a user's INBOX maildir (cur/, as Dovecot names delivered
   * files: S= the size as stored with LF line ends, W= the size with CRLF; the flags after :2,),
   * with the internal date as mtime. Files are owned by the mail user.
   */
  writeMaildir(address: string, messages: Iterable<{ bytes: Buffer; flags: string[]; internalDate: Date }>): number {
    const local = address.slice(0, address.indexOf('@'));
    const home = path.join(this.vmail, local);
    const maildir = path.join(home, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    let count = 0;
    const now = Math.floor(Date.now() / 1000);
    for (const m of messages) {
      const crlf = m.bytes.toString('latin1');
      const lf = Buffer.from(crlf.replace(/\r\n/g, '\n'), 'latin1');
      const letters = m.flags
        .map((f) => ({ '\\Seen': 'S', '\\Flagged': 'F', '\\Answered': 'R', '\\Deleted': 'T', '\\Draft': 'D' })[f] ?? '')
        .filter(Boolean)
        .sort()
        .join('');
      const seq = ++this.seq;
      const name = `${now}.M${seq % 1000000}P${process.pid}Q${seq}.peers,S=${lf.length},W=${m.bytes.length}:2,${letters}`;
      const file = path.join(maildir, 'cur', name);
      fs.writeFileSync(file, lf);
      const t = m.internalDate.getTime() / 1000;
      fs.utimesSync(file, t, t);
      count++;
    }
    return count;
  }

  /** Gives the maildirs to the mail user (after writeMaildir as root). */
  async chownMail(): Promise<void> {
    await runOk('chown', ['-R', `${this.mailIds.uid}:${this.mailIds.gid}`, this.vmail], { timeoutMs: 300_000 });
  }

  /**
   * Opens each user's INBOX once with doveadm (builds dovecot-uidlist and the index, as LMTP
   * delivery would have): the state of mailboxes that received their mail through Dovecot.
   */
  async indexMailboxes(addresses: string[]): Promise<void> {
    await forEachLimited(addresses.length, 2, async (i) => {
      await runOk(DOVEADM, ['-c', this.dovecotConf, 'mailbox', 'status', '-u', addresses[i]!, 'messages vsize', 'INBOX'], { timeoutMs: 600_000 });
    });
  }

  /** The Dovecot master and all its children: processes, summed VmRSS and Pss (KiB). */
  dovecotMemory(): { processes: number; rssKiB: number; pssKiB: number } {
    if (!this.dovecotPid) return { processes: 0, rssKiB: 0, pssKiB: 0 };
    let rss = 0;
    let pss = 0;
    let processes = 0;
    for (const p of processTree(this.dovecotPid)) {
      const r = rssKiB(p.pid);
      if (r === null) continue;
      processes++;
      rss += r;
      pss += pssKiB(p.pid) ?? r;
    }
    return { processes, rssKiB: rss, pssKiB: pss };
  }

  /** Dovecot's processes by name (e.g. imap: 5000). */
  dovecotProcessCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    if (!this.dovecotPid) return counts;
    for (const p of processTree(this.dovecotPid)) counts[p.comm] = (counts[p.comm] ?? 0) + 1;
    return counts;
  }

  /** Warnings and errors Dovecot logged (limits reached and the like). */
  dovecotWarnings(): string[] {
    try {
      return fs
        .readFileSync(this.dovecotLog, 'utf8')
        .split('\n')
        .filter((l) => /\b(Warning|Error|Fatal|Panic):/.test(l));
    } catch {
      return [];
    }
  }

  /** Postfix's queue: messages not yet delivered (files under active, incoming, deferred). */
  queued(): number {
    let n = 0;
    const walk = (dir: string) => {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        if (e.isDirectory()) walk(path.join(dir, e.name));
        else n++;
      }
    };
    for (const q of ['incoming', 'active', 'deferred']) walk(path.join(this.postfixQueue, q));
    return n;
  }
}
