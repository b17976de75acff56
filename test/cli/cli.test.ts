// The real `yubin` command line, spawned as a child process on throwaway data directories:
// every command of the README's CLI reference, its error cases, where it finds its data and
// configuration, and that the running server sees CLI changes without a restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { CLI, cli, cliOk, listUsers, makeDataDir as makeTempDir, startYubin, userRow, writeConfig, type CliResult, type RunningYubin } from '../helpers/yubin.js';
import { readMailbox, usageOf } from '../helpers/mailbox.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { verifyPassword } from '../../src/auth/password.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DEFAULT_QUOTA = 1024 ** 3; // the schema's default policy.quota ("1G")
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// helpers

const created: string[] = [];
/** A fresh temporary directory, removed when the file's tests are done. */
function makeDataDir(prefix?: string): string {
  const dir = makeTempDir(prefix);
  created.push(dir);
  return dir;
}

/** A failed command: non-zero exit, exactly one non-empty line on stderr, no stack trace. */
function assertOneLineError(result: CliResult, pattern?: RegExp, exitCode?: number): string {
  assert.notEqual(result.status, 0, `expected a failure, got exit 0; stdout: ${result.stdout}`);
  if (exitCode !== undefined) assert.equal(result.status, exitCode, `exit code; stderr: ${result.stderr}`);
  const lines = result.stderr.split(/\r?\n/).filter((line) => line.trim() !== '');
  assert.equal(lines.length, 1, `expected one line on stderr, got ${lines.length}:\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /^ {4}at /m, 'no stack trace');
  assert.doesNotMatch(result.stderr, /unexpected error/, 'an expected failure, not a crash');
  const line = lines[0]!;
  assert.match(line, /^yubin: /);
  if (pattern) assert.match(line, pattern);
  return line;
}

interface DomainRow {
  name: string;
  users: number;
  aliases: number;
  quota: number | null;
}
interface AliasRow {
  address: string;
  targets: string[];
}
type PolicyJson = Record<string, { value: unknown; source: 'user' | 'domain' | 'config' }>;

const listDomains = (dir: string) => JSON.parse(cliOk(dir, ['domain', 'list', '--json'])) as DomainRow[];
const listAliases = (dir: string) => JSON.parse(cliOk(dir, ['alias', 'list', '--json'])) as AliasRow[];
const userPolicy = (dir: string, address: string) => JSON.parse(cliOk(dir, ['user', 'get', address, '--json'])) as PolicyJson;
const domainPolicy = (dir: string, domain: string) => JSON.parse(cliOk(dir, ['domain', 'get', domain, '--json'])) as PolicyJson;

async function storedAccount(dir: string, address: string) {
  const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
  try {
    return await store.getAccount(address);
  } finally {
    await store.close();
  }
}

async function storedHash(dir: string, address: string): Promise<string> {
  const account = await storedAccount(dir, address);
  assert.ok(account, `account ${address} exists in the store`);
  return account.passwordHash;
}

/** What the store holds, read in this process (cheaper than another CLI spawn). */
async function snapshot(dir: string): Promise<{ domains: string[]; accounts: string[]; aliases: string[]; settings: Map<string, object> }> {
  const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
  try {
    const accounts = await store.listAccounts();
    return {
      domains: (await store.listDomains()).map((d) => d.name),
      accounts: accounts.map((a) => a.address),
      aliases: (await store.listAliases()).map((a) => a.address),
      settings: new Map(accounts.map((a) => [a.address, a.settings])),
    };
  } finally {
    await store.close();
  }
}

/** Runs the CLI without the helper's --data flag, with a given environment and working directory. */
function rawCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    input: '',
    encoding: 'utf8',
    cwd: options.cwd,
    env: options.env ?? process.env,
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function envWithout(...names: string[]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of names) delete env[name];
  return env;
}

type SendResult = { ok: true; accepted: string[] } | { ok: false; code: number | undefined; response: string };

/** One message over a real SMTP client (nodemailer's SMTPConnection). */
async function smtpSend(port: number, from: string, to: string[], message: string): Promise<SendResult> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, name: 'client.example.org', connectionTimeout: 10_000 });
  connection.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => connection.connect((err) => (err ? reject(err) : resolve())));
    return await new Promise<SendResult>((resolve) =>
      connection.send({ from, to }, message, (err, info) => {
        if (err) resolve({ ok: false, code: err.responseCode ?? err.rejectedErrors?.[0]?.responseCode, response: err.response ?? err.message });
        else resolve({ ok: true, accepted: info.accepted.map(String) });
      }),
    );
  } finally {
    connection.quit();
    connection.close();
  }
}

// ---------------------------------------------------------------------------------------------

describe('yubin --help, --version and unknown commands', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
  });

  let helpText = '';
  it('--help exits 0 and mentions every command of the reference', () => {
    const result = cli(dir, ['--help']);
    helpText = result.stdout;
    assert.equal(result.status, 0, result.stderr);
    const commands = [
      'yubin serve',
      'yubin domain add',
      'yubin domain list',
      'yubin domain remove',
      'yubin domain set',
      'yubin domain get',
      'yubin user add',
      'yubin user list',
      'yubin user passwd',
      'yubin user quota',
      'yubin user remove',
      'yubin user set',
      'yubin user get',
      'yubin alias add',
      'yubin alias list',
      'yubin alias remove',
    ];
    for (const command of commands) assert.ok(result.stdout.includes(command), `--help mentions "${command}"`);
    for (const flag of ['--data', '--config', '--password-stdin', '--json', '--quota', '--smtp', '--init-demo']) {
      assert.ok(result.stdout.includes(flag), `--help mentions ${flag}`);
    }
    for (const key of ['quota', 'quota_messages', 'over_quota', 'locale']) assert.ok(result.stdout.includes(key), `--help mentions the key ${key}`);
    assert.equal(result.stderr, '');
  });

  it('no arguments print the same help', () => {
    const none = rawCli([]);
    assert.equal(none.status, 0);
    assert.ok(helpText.length > 0);
    assert.equal(none.stdout, helpText);
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version: string };
    const result = cli(dir, ['--version']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), `yubin ${pkg.version}`);
  });

  it('an unknown command exits 2 with one line naming it', () => {
    const line = assertOneLineError(cli(dir, ['frobnicate']), /frobnicate/, 2);
    assert.match(line, /--help/);
  });

  it('an unknown option is a usage error (exit 2, one line)', () => {
    assertOneLineError(cli(dir, ['domain', 'list', '--colour']), /colour/, 2);
  });

  let unknownSub: CliResult;
  it('an unknown subcommand exits 2 without a stack trace', () => {
    unknownSub = cli(dir, ['user', 'frob']);
    assert.equal(unknownSub.status, 2, unknownSub.stderr);
    assert.doesNotMatch(unknownSub.stderr, /^ {4}at /m);
  });

  it(
    'an unknown subcommand prints one line, as the README promises for every error',
    () => {
      assertOneLineError(unknownSub, /frob|usage|user/, 2);
    },
  );
});

describe('yubin domain add / list / remove', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
  });

  it('adds domains, normalised to lower case without a trailing dot, optionally with a quota', async () => {
    assert.match(cliOk(dir, ['domain', 'add', 'Example.COM.']), /example\.com/);
    cliOk(dir, ['domain', 'add', 'quota.example', '--quota', '3M']);
    const domains = listDomains(dir);
    assert.deepEqual(
      domains.map((d) => ({ name: d.name, users: d.users, aliases: d.aliases, quota: d.quota })),
      [
        { name: 'example.com', users: 0, aliases: 0, quota: DEFAULT_QUOTA },
        { name: 'quota.example', users: 0, aliases: 0, quota: 3 * MiB },
      ],
    );
    assert.deepEqual((await snapshot(dir)).domains, ['example.com', 'quota.example']);
  });

  it('refuses a bad --quota, a duplicate domain (whatever its case) and invalid names; adds nothing', async () => {
    assertOneLineError(cli(dir, ['domain', 'add', 'badquota.example', '--quota', '12Q']), /quota/);
    assertOneLineError(cli(dir, ['domain', 'add', 'EXAMPLE.com']), /example\.com.*already exists/);
    for (const name of ['bad_domain.com', 'localhost', 'a..b.example']) {
      assertOneLineError(cli(dir, ['domain', 'add', name]), /invalid domain name/);
    }
    assert.deepEqual((await snapshot(dir)).domains, ['example.com', 'quota.example']);
  });

  it('list (text and --json) counts users and aliases per domain', () => {
    cliOk(dir, ['user', 'add', 'bob@example.com', '--password', 'correct horse']);
    cliOk(dir, ['alias', 'add', 'info@example.com', 'bob@example.com']);
    const rows = listDomains(dir);
    assert.deepEqual(
      rows.map((d) => [d.name, d.users, d.aliases]),
      [
        ['example.com', 1, 1],
        ['quota.example', 0, 0],
      ],
    );
    const text = cliOk(dir, ['domain', 'list']);
    assert.match(text, /^example\.com\b.*users: 1.*aliases: 1/m);
    assert.match(text, /^quota\.example\b.*users: 0.*aliases: 0/m);
  });

  it('remove is refused while the domain has users or aliases: one clear line, non-zero exit', async () => {
    const line = assertOneLineError(cli(dir, ['domain', 'remove', 'example.com']), /example\.com/);
    assert.match(line, /1 user/);
    cliOk(dir, ['user', 'remove', 'bob@example.com']);
    // Only the alias is left: still refused.
    assertOneLineError(cli(dir, ['domain', 'remove', 'example.com']), /alias/);
    assert.ok((await snapshot(dir)).domains.includes('example.com'), 'the domain is still there');
    cliOk(dir, ['alias', 'remove', 'info@example.com']);
  });

  it('remove succeeds once the domain is empty; removing it again fails', async () => {
    assert.match(cliOk(dir, ['domain', 'remove', 'Example.com']), /example\.com/);
    assert.deepEqual((await snapshot(dir)).domains, ['quota.example']);
    assertOneLineError(cli(dir, ['domain', 'remove', 'example.com']), /unknown domain example\.com/);
  });

  it('missing arguments are usage errors (exit 2)', () => {
    assertOneLineError(cli(dir, ['domain', 'set', 'quota.example', 'quota']), /usage/, 2);
  });
});

describe('yubin user add / list / passwd / remove', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
    cliOk(dir, ['domain', 'add', 'example.com']);
  });

  it('adds a user with --password; the store keeps a scrypt hash that verifies, never the plaintext', async () => {
    assert.match(cliOk(dir, ['user', 'add', 'Bob@Example.com', '--password', 'first-password']), /bob@example\.com/);
    const hash = await storedHash(dir, 'bob@example.com');
    assert.notEqual(hash, 'first-password');
    assert.ok(!hash.includes('first-password'));
    assert.match(hash, /^\$scrypt\$/);
    assert.equal(await verifyPassword('first-password', hash), true);
    assert.equal(await verifyPassword('other-password', hash), false);
  });

  it('adds a user with --password-stdin (first line of standard input, CRLF or LF)', async () => {
    cliOk(dir, ['user', 'add', 'carol@example.com', '--password-stdin', '--quota', '5M'], { input: 'stdin-password\r\nsecond line ignored\n' });
    const hash = await storedHash(dir, 'carol@example.com');
    assert.equal(await verifyPassword('stdin-password', hash), true);
    assert.ok(!hash.includes('stdin-password'));
  });


  it('list --json has address, quota (bytes or null), used, messages; list shows every user', () => {
    const users = listUsers(dir);
    assert.deepEqual(
      users.map((u) => ({ address: u.address, quota: u.quota, used: u.used, messages: u.messages })),
      [
        { address: 'bob@example.com', quota: DEFAULT_QUOTA, used: 0, messages: 0 },
        { address: 'carol@example.com', quota: 5 * MiB, used: 0, messages: 0 },
      ],
    );
    const text = cliOk(dir, ['user', 'list']);
    for (const address of ['bob@example.com', 'carol@example.com']) assert.ok(text.split('\n').some((line) => line.startsWith(address)), `${address} listed`);
  });

  it('refuses a duplicate user, whatever the case, and keeps the old password', async () => {
    const before = await storedHash(dir, 'bob@example.com');
    assertOneLineError(cli(dir, ['user', 'add', 'BOB@example.com', '--password', 'another-password']), /bob@example\.com.*already exists/);
    assert.equal(await storedHash(dir, 'bob@example.com'), before);
  });

  it('refuses a user in an unknown domain, saying how to add it', async () => {
    const line = assertOneLineError(cli(dir, ['user', 'add', 'x@nowhere.example', '--password', 'long-enough']), /unknown domain nowhere\.example/);
    assert.match(line, /domain add nowhere\.example/);
    assert.equal(await storedAccount(dir, 'x@nowhere.example'), null);
  });

  it('refuses a password shorter than 8 characters (from --password and from stdin); 8 is enough', async () => {
    assertOneLineError(cli(dir, ['user', 'add', 'short@example.com', '--password', 'seven77']), /at least 8/);
    assert.equal(await storedAccount(dir, 'short@example.com'), null);
    cliOk(dir, ['user', 'add', 'eight@example.com', '--password', '12345678']);
    assert.equal(await verifyPassword('12345678', await storedHash(dir, 'eight@example.com')), true);
  });

  it('refuses invalid addresses', async () => {
    for (const address of ['no-at-sign', 'a..b@example.com']) {
      assertOneLineError(cli(dir, ['user', 'add', address, '--password', 'long-enough']), /invalid (address|domain)/);
    }
    assert.equal((await snapshot(dir)).accounts.length, 3);
  });

  it('requires exactly one password source (usage errors, exit 2)', () => {
    assertOneLineError(cli(dir, ['user', 'add', 'nopw@example.com']), /password/, 2);
    assertOneLineError(cli(dir, ['user', 'add', 'both@example.com', '--password', 'long-enough', '--password-stdin'], { input: 'long-enough\n' }), /either/, 2);
  });

  it('passwd --password changes the stored hash', async () => {
    const before = await storedHash(dir, 'bob@example.com');
    assert.match(cliOk(dir, ['user', 'passwd', 'bob@example.com', '--password', 'second-password']), /bob@example\.com/);
    const after = await storedHash(dir, 'bob@example.com');
    assert.notEqual(after, before);
    assert.ok(!after.includes('second-password'));
    assert.equal(await verifyPassword('second-password', after), true);
    assert.equal(await verifyPassword('first-password', after), false);
  });

  it('passwd without a flag reads the password from a non-terminal standard input', async () => {
    const before = await storedHash(dir, 'bob@example.com');
    cliOk(dir, ['user', 'passwd', 'bob@example.com'], { input: 'third-password\n' });
    const after = await storedHash(dir, 'bob@example.com');
    assert.notEqual(after, before);
    assert.notEqual(after, 'third-password');
    assert.ok(!after.includes('third-password'));
    assert.equal(await verifyPassword('third-password', after), true);
    assert.equal(await verifyPassword('second-password', after), false);
  });

  it('passwd refuses a short password and an unknown user, leaving the old password', async () => {
    const before = await storedHash(dir, 'bob@example.com');
    assertOneLineError(cli(dir, ['user', 'passwd', 'bob@example.com'], { input: 'short\n' }), /at least 8/);
    assert.equal(await storedHash(dir, 'bob@example.com'), before);
    assertOneLineError(cli(dir, ['user', 'passwd', 'nobody@example.com', '--password', 'long-enough']), /unknown user nobody@example\.com/);
  });

  it('remove deletes the user; removing again fails', async () => {
    assert.match(cliOk(dir, ['user', 'remove', 'carol@example.com']), /carol@example\.com/);
    assert.equal(await storedAccount(dir, 'carol@example.com'), null);
    assertOneLineError(cli(dir, ['user', 'remove', 'carol@example.com']), /unknown user carol@example\.com/);
  });
});

describe('yubin user quota / set / get and policy precedence', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
    cliOk(dir, ['domain', 'add', 'example.com']);
    cliOk(dir, ['user', 'add', 'bob@example.com', '--password', 'bob-password']);
  });

  it('user quota SIZE / none / inherit show in list --json (inherit: the config default)', () => {
    cliOk(dir, ['user', 'quota', 'bob@example.com', '5M']);
    assert.equal(userRow(dir, 'bob@example.com').quota, 5242880);
    cliOk(dir, ['user', 'quota', 'bob@example.com', 'none']);
    assert.equal(userRow(dir, 'bob@example.com').quota, null);
    cliOk(dir, ['user', 'quota', 'bob@example.com', 'inherit']);
    assert.equal(userRow(dir, 'bob@example.com').quota, DEFAULT_QUOTA);
  });

  it('sizes are accepted in every documented form', () => {
    const cases: Array<[string, number]> = [
      ['1024', 1024],
      ['10K', 10 * 1024],
      ['10k', 10 * 1024],
      ['10KB', 10 * 1024],
      ['1.5M', 1.5 * MiB],
      ['2g', 2 * 1024 ** 3],
      ['2GB', 2 * 1024 ** 3],
    ];
    // One domain per form, then a single listing: each spawn costs time.
    cases.forEach(([text], i) => cliOk(dir, ['domain', 'add', `size${i}.example`, '--quota', text]));
    const quotas = new Map(listDomains(dir).map((d) => [d.name, d.quota]));
    cases.forEach(([text, bytes], i) => assert.equal(quotas.get(`size${i}.example`), bytes, `--quota ${text}`));
  });

  it('malformed sizes are refused and change nothing', async () => {
    cliOk(dir, ['user', 'quota', 'bob@example.com', '1.5M']);
    for (const text of ['10Q', '', 'M']) {
      assertOneLineError(cli(dir, ['user', 'quota', 'bob@example.com', text]), /invalid value for quota/);
    }
    // "-1" as a positional is taken for an option: a usage error ...
    assertOneLineError(cli(dir, ['user', 'quota', 'bob@example.com', '-1']), undefined, 2);
    // ... and as an option value it is not a size either.
    assertOneLineError(cli(dir, ['domain', 'add', 'neg.example', '--quota=-1']), /quota/);
    const state = await snapshot(dir);
    assert.deepEqual(state.settings.get('bob@example.com'), { quota: '1.5M' });
    assert.ok(!state.domains.includes('neg.example'));
  });

  it('user set / get for quota, over_quota and locale', () => {
    cliOk(dir, ['user', 'set', 'bob@example.com', 'quota', '4M']);
    cliOk(dir, ['user', 'set', 'bob@example.com', 'over_quota', 'reject']);
    cliOk(dir, ['user', 'set', 'bob@example.com', 'locale', 'ja']);
    assert.deepEqual(userPolicy(dir, 'bob@example.com'), {
      quota: { value: 4 * MiB, source: 'user' },
      quota_messages: { value: null, source: 'config' },
      over_quota: { value: 'reject', source: 'user' },
      quota_grace: { value: 10, source: 'config' },
      quota_warnings: { value: '80%,90%,100%', source: 'config' },
      locale: { value: 'ja', source: 'user' },
      'retention.trash': { value: 30, source: 'config' },
      'retention.junk': { value: 30, source: 'config' },
      'retention.mailboxes': { value: '', source: 'config' },
      'pop3.keep_after_retrieval': { value: null, source: 'config' },
      'pop3.expire_when_usage_above': { value: null, source: 'config' },
    });
    const text = cliOk(dir, ['user', 'get', 'bob@example.com']);
    assert.match(text, /^over_quota = reject\s+\(user\)$/m);
    assert.match(text, /^locale = ja\s+\(user\)$/m);
    assert.match(text, new RegExp(`^quota = ${4 * MiB}\\b.*\\(user\\)$`, 'm'));
  });

  it('user get ADDRESS KEY prints only the value', () => {
    assert.equal(cliOk(dir, ['user', 'get', 'bob@example.com', 'locale']), 'ja\n');
    const quota = cliOk(dir, ['user', 'get', 'bob@example.com', 'quota']).trimEnd();
    assert.equal(quota.split('\n').length, 1);
    assert.equal(quota.split(' ')[0], String(4 * MiB));
    assert.doesNotMatch(quota, /quota|=|\((user|domain|config)\)/);
    assert.deepEqual(JSON.parse(cliOk(dir, ['user', 'get', 'bob@example.com', 'over_quota', '--json'])), { over_quota: { value: 'reject', source: 'user' } });
  });

  it('user set/get with a bad key or value: non-zero exit, one line, no stack trace, nothing changed', async () => {
    assertOneLineError(cli(dir, ['user', 'set', 'bob@example.com', 'colour', 'red']), /unknown setting "colour"/);
    assertOneLineError(cli(dir, ['user', 'get', 'bob@example.com', 'colour']), /unknown setting "colour"/);
    assertOneLineError(cli(dir, ['user', 'set', 'bob@example.com', 'quota', '10Q']), /invalid value for quota/);
    assertOneLineError(cli(dir, ['user', 'set', 'bob@example.com', 'over_quota', 'maybe']), /invalid value for over_quota/);
    assertOneLineError(cli(dir, ['user', 'set', 'bob@example.com', 'locale', 'fr']), /invalid value for locale/);
    assertOneLineError(cli(dir, ['user', 'set', 'nobody@example.com', 'locale', 'ja']), /unknown user nobody@example\.com/);
    assert.deepEqual((await snapshot(dir)).settings.get('bob@example.com'), { quota: '4M', over_quota: 'reject', locale: 'ja' });
  });

  it('user set KEY inherit removes the user value', () => {
    for (const key of ['over_quota', 'locale', 'quota']) cliOk(dir, ['user', 'set', 'bob@example.com', key, 'inherit']);
    assert.deepEqual(userPolicy(dir, 'bob@example.com'), {
      quota: { value: DEFAULT_QUOTA, source: 'config' },
      quota_messages: { value: null, source: 'config' },
      over_quota: { value: 'defer', source: 'config' },
      quota_grace: { value: 10, source: 'config' },
      quota_warnings: { value: '80%,90%,100%', source: 'config' },
      locale: { value: 'en', source: 'config' },
      'retention.trash': { value: 30, source: 'config' },
      'retention.junk': { value: 30, source: 'config' },
      'retention.mailboxes': { value: '', source: 'config' },
      'pop3.keep_after_retrieval': { value: null, source: 'config' },
      'pop3.expire_when_usage_above': { value: null, source: 'config' },
    });
  });

  it('precedence: user > domain > config', () => {
    cliOk(dir, ['domain', 'set', 'example.com', 'quota', '2M']);
    assert.deepEqual(userPolicy(dir, 'bob@example.com').quota, { value: 2 * MiB, source: 'domain' });

    cliOk(dir, ['user', 'set', 'bob@example.com', 'quota', '3M']);
    assert.equal(userRow(dir, 'bob@example.com').quota, 3 * MiB);

    cliOk(dir, ['user', 'set', 'bob@example.com', 'quota', 'inherit']);
    assert.equal(userRow(dir, 'bob@example.com').quota, 2 * MiB, 'inherit: the domain value');

    cliOk(dir, ['domain', 'set', 'example.com', 'quota', 'inherit']);
    assert.equal(userRow(dir, 'bob@example.com').quota, DEFAULT_QUOTA);
  });

  it('domain set/get; domain get KEY prints only the value', () => {
    cliOk(dir, ['domain', 'set', 'example.com', 'locale', 'ja']);
    assert.equal(cliOk(dir, ['domain', 'get', 'example.com', 'locale']), 'ja\n');
    assert.deepEqual(domainPolicy(dir, 'example.com').locale, { value: 'ja', source: 'domain' });
    const text = cliOk(dir, ['domain', 'get', 'example.com']);
    assert.match(text, /^locale = ja\s+\(domain\)$/m);
    assert.match(text, /^over_quota = defer\s+\(config\)$/m);
    assert.match(text, /^quota_messages = none\s+\(config\)$/m);
  });

  it('domain set/get errors: unknown key, bad value, unknown domain', async () => {
    assertOneLineError(cli(dir, ['domain', 'set', 'example.com', 'colour', 'red']), /unknown setting "colour"/);
    assertOneLineError(cli(dir, ['domain', 'set', 'example.com', 'over_quota', 'bounce']), /invalid value for over_quota/);
    assertOneLineError(cli(dir, ['domain', 'set', 'nowhere.example', 'locale', 'ja']), /unknown domain nowhere\.example/);
    const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
    try {
      assert.deepEqual((await store.getDomain('example.com'))?.settings, { locale: 'ja' });
    } finally {
      await store.close();
    }
  });
});

describe('[policy] in yubin.toml and --config', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
    writeConfig(dir, '[policy]\nquota = "7M"\n');
    cliOk(dir, ['domain', 'add', 'example.com']);
    cliOk(dir, ['user', 'add', 'bob@example.com', '--password', 'bob-password']);
  });

  it('changes the default quota of every user and domain', () => {
    assert.equal(userRow(dir, 'bob@example.com').quota, 7 * MiB);
    assert.equal(listDomains(dir)[0]!.quota, 7 * MiB);
    assert.deepEqual(userPolicy(dir, 'bob@example.com').quota, { value: 7 * MiB, source: 'config' });
  });

  it('is still overridden by a domain setting', () => {
    cliOk(dir, ['domain', 'set', 'example.com', 'quota', '2M']);
    assert.deepEqual(userPolicy(dir, 'bob@example.com').quota, { value: 2 * MiB, source: 'domain' });
  });

  it('--config FILE is read instead of DATA/yubin.toml; a missing one is an error', () => {
    const other = path.join(makeDataDir(), 'other.toml');
    fs.writeFileSync(other, '[policy]\nquota_messages = 9\nlocale = "ja"\n');
    assert.deepEqual(JSON.parse(cliOk(dir, ['user', 'get', 'bob@example.com', '--json', '--config', other])), {
      quota: { value: 2 * MiB, source: 'domain' }, // the domain setting of the test above still wins
      quota_messages: { value: 9, source: 'config' },
      over_quota: { value: 'defer', source: 'config' },
      quota_grace: { value: 10, source: 'config' },
      quota_warnings: { value: '80%,90%,100%', source: 'config' },
      locale: { value: 'ja', source: 'config' },
      'retention.trash': { value: 30, source: 'config' },
      'retention.junk': { value: 30, source: 'config' },
      'retention.mailboxes': { value: '', source: 'config' },
      'pop3.keep_after_retrieval': { value: null, source: 'config' },
      'pop3.expire_when_usage_above': { value: null, source: 'config' },
    });
    assertOneLineError(cli(dir, ['user', 'list', '--config', path.join(path.dirname(other), 'missing.toml')]), /missing\.toml/);
  });
});

describe('a bad yubin.toml: one line naming the file and the key, exit 1', () => {
  const cases: Array<{ name: string; toml: string; args: string[]; mentions: RegExp[] }> = [
    { name: 'unknown top-level key', toml: 'colour = "red"\n', args: ['domain', 'list'], mentions: [/yubin\.toml/, /unknown setting colour/] },
    { name: 'unknown nested key', toml: '[smtp]\nmax_recipints = 5\n', args: ['user', 'list', '--json'], mentions: [/yubin\.toml/, /smtp\.max_recipints/] },
    { name: 'wrong type', toml: '[smtp]\nmax_recipients = "many"\n', args: ['domain', 'add', 'example.com'], mentions: [/yubin\.toml/, /smtp\.max_recipients/] },
    { name: 'bad size', toml: '[policy]\nquota = "7Q"\n', args: ['user', 'list'], mentions: [/yubin\.toml/, /policy\.quota/, /7Q/] },
    { name: 'bad TOML syntax', toml: 'hostname = \n', args: ['domain', 'list'], mentions: [/yubin\.toml/] },
    { name: 'unterminated table header', toml: '[policy\nquota = "1M"\n', args: ['alias', 'list'], mentions: [/yubin\.toml/] },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const dir = makeDataDir();
      writeConfig(dir, c.toml);
      const line = assertOneLineError(cli(dir, c.args), undefined, 1);
      assert.ok(line.includes(path.join(dir, 'yubin.toml')), `names the file: ${line}`);
      for (const pattern of c.mentions) assert.match(line, pattern);
      assert.equal(fs.existsSync(path.join(dir, 'yubin.db')), false, 'nothing is done with a bad configuration');
    });
  }
});

describe('where the data directory is: --data, then $YUBIN_DATA, then ./data', () => {
  it('$YUBIN_DATA is used when --data is absent, and its yubin.toml is read', () => {
    const dir = makeDataDir();
    writeConfig(dir, '[policy]\nquota = "6M"\n');
    const env = { ...process.env, YUBIN_DATA: dir };
    const result = rawCli(['domain', 'add', 'env.example'], { env });
    assert.equal(result.status, 0, result.stderr);
    assert.ok(fs.existsSync(path.join(dir, 'yubin.db')));
    const listed = rawCli(['domain', 'list', '--json'], { env });
    assert.deepEqual(
      (JSON.parse(listed.stdout) as DomainRow[]).map((d) => [d.name, d.quota]),
      [['env.example', 6 * MiB]],
    );
  });

  it('--data wins over $YUBIN_DATA', async () => {
    const fromEnv = makeDataDir();
    const fromFlag = makeDataDir();
    const result = rawCli(['domain', 'add', 'flag.example', '--data', fromFlag], { env: { ...process.env, YUBIN_DATA: fromEnv } });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual((await snapshot(fromFlag)).domains, ['flag.example']);
    assert.equal(fs.existsSync(path.join(fromEnv, 'yubin.db')), false, 'nothing written to $YUBIN_DATA');
  });

  it('./data (relative to the working directory) is the default', async () => {
    const cwd = makeDataDir('yubin-cwd-');
    const env = envWithout('YUBIN_DATA');
    const added = rawCli(['domain', 'add', 'cwd.example'], { cwd, env });
    assert.equal(added.status, 0, added.stderr);
    assert.ok(fs.existsSync(path.join(cwd, 'data', 'yubin.db')), './data/yubin.db created');
    assert.deepEqual((await snapshot(path.join(cwd, 'data'))).domains, ['cwd.example']);
    const listed = rawCli(['domain', 'list', '--json'], { cwd, env });
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as DomainRow[]).map((d) => d.name),
      ['cwd.example'],
    );
  });
});

describe('yubin alias add / list / remove', () => {
  let dir: string;
  before(() => {
    dir = makeDataDir();
    cliOk(dir, ['domain', 'add', 'example.com']);
    cliOk(dir, ['domain', 'add', 'other.example']);
    cliOk(dir, ['user', 'add', 'bob@example.com', '--password', 'bob-password']);
    cliOk(dir, ['user', 'add', 'ann@other.example', '--password', 'ann-password']);
  });

  it('starts empty', () => {
    assert.match(cliOk(dir, ['alias', 'list']), /no aliases/);
  });

  it('adds aliases to users, to several targets and to other aliases (normalised)', () => {
    cliOk(dir, ['alias', 'add', 'Info@Example.com', 'BOB@example.com']);
    cliOk(dir, ['alias', 'add', 'team@example.com', 'bob@example.com,ann@other.example']);
    cliOk(dir, ['alias', 'add', 'sales@example.com', 'info@example.com', 'ann@other.example']);
    assert.deepEqual(listAliases(dir), [
      { address: 'info@example.com', targets: ['bob@example.com'] },
      { address: 'sales@example.com', targets: ['info@example.com', 'ann@other.example'] },
      { address: 'team@example.com', targets: ['bob@example.com', 'ann@other.example'] },
    ]);
    const text = cliOk(dir, ['alias', 'list']);
    assert.match(text, /^info@example\.com\b.*bob@example\.com$/m);
    assert.match(text, /^team@example\.com\b.*bob@example\.com, ann@other\.example$/m);
  });

  it('refuses an alias to an unknown user', async () => {
    assertOneLineError(cli(dir, ['alias', 'add', 'x@example.com', 'bob@example.com,nobody@example.com']), /nobody@example\.com.*neither a user nor an alias/);
    assert.ok(!(await snapshot(dir)).aliases.includes('x@example.com'));
  });

  it('accepts an alias to a non-local domain (forwarding through the queue)', async () => {
    assert.match(cliOk(dir, ['alias', 'add', 'fwd@example.com', 'someone@elsewhere.net']), /fwd@example\.com → someone@elsewhere\.net/);
    assert.ok((await snapshot(dir)).aliases.includes('fwd@example.com'));
    const listed = JSON.parse(cliOk(dir, ['alias', 'list', '--json'])) as Array<{ address: string; targets: string[] }>;
    assert.deepEqual(listed.find((a) => a.address === 'fwd@example.com')?.targets, ['someone@elsewhere.net']);
    cliOk(dir, ['alias', 'remove', 'fwd@example.com']);
    assert.ok(!(await snapshot(dir)).aliases.includes('fwd@example.com'));
  });

  it('refuses an alias in an unknown domain', () => {
    assertOneLineError(cli(dir, ['alias', 'add', 'x@nowhere.example', 'bob@example.com']), /unknown domain nowhere\.example/);
  });

  it('refuses an alias that duplicates a user or another alias, and a user that duplicates an alias', async () => {
    assertOneLineError(cli(dir, ['alias', 'add', 'bob@example.com', 'ann@other.example']), /bob@example\.com.*user/);
    assertOneLineError(cli(dir, ['alias', 'add', 'info@example.com', 'ann@other.example']), /info@example\.com.*already exists/);
    assertOneLineError(cli(dir, ['user', 'add', 'info@example.com', '--password', 'long-enough']), /info@example\.com/);
    const state = await snapshot(dir);
    assert.deepEqual(state.aliases, ['info@example.com', 'sales@example.com', 'team@example.com']);
    assert.deepEqual(state.accounts, ['ann@other.example', 'bob@example.com']);
  });

  it('refuses an alias to itself, and invalid addresses', () => {
    assertOneLineError(cli(dir, ['alias', 'add', 'loop@example.com', 'loop@example.com']), /itself/);
    assertOneLineError(cli(dir, ['alias', 'add', 'only@example.com']), /usage/, 2);
  });

  it('the domain list counts aliases per domain', () => {
    assert.deepEqual(
      listDomains(dir).map((d) => [d.name, d.aliases]),
      [
        ['example.com', 3],
        ['other.example', 0],
      ],
    );
  });

  it('removes an alias; removing again fails with one line', () => {
    const out = cliOk(dir, ['alias', 'remove', 'TEAM@example.com']);
    assert.match(out, /team@example\.com/);
    assert.deepEqual(
      listAliases(dir).map((a) => a.address),
      ['info@example.com', 'sales@example.com'],
    );
    assertOneLineError(cli(dir, ['alias', 'remove', 'team@example.com']), /unknown alias team@example\.com/);
  });
});

describe('the CLI while the server runs', () => {
  let dir: string;
  let server: RunningYubin | undefined;
  before(async () => {
    dir = makeDataDir();
    writeConfig(dir, '[storage]\nfsync = false\n\n[log]\nlevel = "silent"\n');
    server = await startYubin(dir, ['--smtp', '127.0.0.1:0', '--hostname', 'mx.test']);
  });
  after(async () => {
    await server?.kill();
  });

  const message = (subject: string) => `From: <sender@example.org>\r\nTo: <bob@example.com>\r\nSubject: ${subject}\r\n\r\nHello Bob.\r\n`;

  it('the server refuses a domain the CLI has not added yet', async () => {
    const result = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('too early'));
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.code, 554, result.response);
  });

  it('domain and user added by the CLI after the start receive mail at once', async () => {
    cliOk(dir, ['domain', 'add', 'example.com']);
    cliOk(dir, ['user', 'add', 'bob@example.com', '--password', 'bob-password']);
    const result = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('first'));
    assert.deepEqual(result, { ok: true, accepted: ['bob@example.com'] });
    const row = userRow(dir, 'bob@example.com');
    assert.equal(row.messages, 1);
    assert.ok(row.used > message('first').length, 'used counts the stored message with its added headers');
    const usage = await usageOf(dir, 'bob@example.com');
    assert.deepEqual(usage.kept, usage.summed);
    assert.equal(usage.kept.bytes, row.used);
  });

  it('an alias added while running delivers to its target', async () => {
    cliOk(dir, ['alias', 'add', 'info@example.com', 'bob@example.com']);
    const result = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['info@example.com'], message('via alias'));
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(userRow(dir, 'bob@example.com').messages, 2);
  });

  it('a quota lowered by the CLI applies to the next message without a restart', async () => {
    cliOk(dir, ['user', 'quota', 'bob@example.com', '100']);
    const deferred = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('no room'));
    assert.equal(deferred.ok, false);
    if (!deferred.ok) assert.equal(deferred.code, 452, deferred.response);
    cliOk(dir, ['user', 'set', 'bob@example.com', 'over_quota', 'reject']);
    const rejected = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('no room'));
    assert.equal(rejected.ok, false);
    if (!rejected.ok) assert.equal(rejected.code, 552, rejected.response);
    cliOk(dir, ['user', 'quota', 'bob@example.com', 'inherit']);
    cliOk(dir, ['user', 'set', 'bob@example.com', 'over_quota', 'inherit']);
    const accepted = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('room again'));
    assert.equal(accepted.ok, true, JSON.stringify(accepted));
    // Two messages, the one with room again, and the digest telling bob what he missed meanwhile.
    assert.equal(userRow(dir, 'bob@example.com').messages, 4);
    const inbox = await readMailbox(dir, 'bob@example.com');
    assert.equal(inbox.filter((m) => /^Subject: Mail affected by your full mailbox/m.test(m.text)).length, 1);
  });

  it('after user remove, the next RCPT to that user gets 550', async () => {
    cliOk(dir, ['alias', 'remove', 'info@example.com']);
    cliOk(dir, ['user', 'remove', 'bob@example.com']);
    assert.equal(listUsers(dir).find((u) => u.address === 'bob@example.com'), undefined);
    const result = await smtpSend(server!.ports.smtp!, 'sender@example.org', ['bob@example.com'], message('gone'));
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.code, 550, result.response);
      assert.match(result.response, /5\.1\.1/);
    }
  });

  it('the server still stops cleanly with exit 0', async () => {
    const code = await server!.stop();
    assert.equal(code, 0, server!.stderr());
  });
});

after(() => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});
