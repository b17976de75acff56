// Configuration: sizes, durations, the validated config schema, per-domain / per-user policy, and
// the README's configuration reference, which must be exactly what the schema generates.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { formatSize, parseSize, SizeError } from '../../src/config/size.js';
import { DurationError, parseDuration } from '../../src/config/duration.js';
import { ConfigError, loadConfig, resolveDataDir, validateConfig } from '../../src/config/load.js';
import { configSchema, POLICY_KEYS, type Config } from '../../src/config/schema.js';
import { listSettings, renderReference } from '../../src/config/reference.js';
import { effectivePolicy, isPolicyKey, parsePolicyValue, policySources, SettingError } from '../../src/policy/settings.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const README = path.resolve(here, '../../../README.md');
const K = 1024;
const M = 1024 ** 2;
const G = 1024 ** 3;

describe('parseSize', () => {
  it('accepts bytes and K/M/G (binary, case-insensitive, optional B)', () => {
    const cases: Array<[string | number, number]> = [
      ['0', 0],
      ['1024', 1024],
      [1024, 1024],
      [0, 0],
      ['10K', 10 * K],
      ['10k', 10 * K],
      ['10KB', 10 * K],
      ['10kb', 10 * K],
      ['10Kb', 10 * K],
      ['25M', 25 * M],
      ['25m', 25 * M],
      ['1.5M', 1.5 * M],
      ['1.5m', 1.5 * M],
      ['2g', 2 * G],
      ['2G', 2 * G],
      ['2GB', 2 * G],
      ['512KB', 512 * K],
      ['100B', 100],
      [' 25M ', 25 * M],
      ['25 M', 25 * M],
      ['0.5K', 512],
    ];
    for (const [input, bytes] of cases) assert.equal(parseSize(input), bytes, JSON.stringify(input));
  });

  it('rounds fractional bytes down', () => {
    assert.equal(parseSize('1.7'), 1);
    assert.equal(parseSize('1.0001K'), 1024);
    assert.ok(Number.isInteger(parseSize('1.3M')));
  });

  it('refuses anything else with a SizeError naming the input', () => {
    for (const input of ['', ' ', 'M', 'K', 'B', '10Q', '-1', '+5', '1e3', '1,5M', '5 MiB', '512KiB', '10T', '1.M', '.5M', 'abc', '10MM', '0x10', 'NaN', 'Infinity']) {
      assert.throws(
        () => parseSize(input),
        (err: unknown) => err instanceof SizeError && err.message.includes(`"${input}"`),
        JSON.stringify(input),
      );
    }
  });

  it('refuses negative, fractional and unsafe numbers', () => {
    for (const input of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
      assert.throws(() => parseSize(input), SizeError, String(input));
    }
    assert.equal(parseSize(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  });

  it('refuses sizes beyond the safe integer range', () => {
    assert.throws(() => parseSize('99999999999999999999G'), (err: unknown) => err instanceof SizeError && /too large/.test(err.message));
    assert.throws(() => parseSize('9'.repeat(400)), SizeError);
  });

  it('plain digits are bytes; each unit multiplies by a power of 1024 (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 30 }), fc.constantFrom('', 'K', 'M', 'G', 'k', 'm', 'g'), fc.boolean(), (n, unit, withB) => {
        const power = ['', 'K', 'M', 'G'].indexOf(unit.toUpperCase());
        const expected = n * 1024 ** power;
        fc.pre(Number.isSafeInteger(expected));
        assert.equal(parseSize(`${n}${unit}${withB ? 'B' : ''}`), expected);
      }),
    );
  });
});

describe('formatSize', () => {
  it('renders bytes in binary units for people', () => {
    const cases: Array<[number, string]> = [
      [0, '0 bytes'],
      [1, '1 bytes'],
      [1023, '1023 bytes'],
      [1024, '1 KiB'],
      [1536, '1.5 KiB'],
      [25 * M, '25 MiB'],
      [1.5 * M, '1.5 MiB'],
      [G, '1 GiB'],
      [2 * G, '2 GiB'],
      [1024 * G, '1 TiB'],
      [1024 * 1024 * G, '1024 TiB'],
    ];
    for (const [bytes, text] of cases) assert.equal(formatSize(bytes), text, String(bytes));
  });

  it(
    'never shows 1024 of a unit when rounding reaches the next one',
    () => {
      for (const n of [M - 1, G - 1, M - 10]) {
        const text = formatSize(n);
        const match = /^(\d+(?:\.\d)?) /.exec(text);
        assert.ok(match && Number(match[1]) < 1024, `${n} → ${text}`);
      }
    },
  );

  it('what it writes parses back to within the rounding of one decimal (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), (n) => {
        const text = formatSize(n);
        const match = /^(\d+(?:\.\d)?) (bytes|KiB|MiB|GiB|TiB)$/.exec(text);
        assert.ok(match, text);
        const unit = 1024 ** ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'].indexOf(match[2]!);
        const value = Number(match[1]);
        assert.ok(Math.abs(value * unit - n) <= 0.05 * unit + 1e-9, `${n} → ${text}`);
        // The unit is the largest that fits the number once rounded to one decimal.
        assert.ok(n >= unit * 0.9995 || n === 0, `${n} → ${text}: unit not too large`);
        if (match[2] !== 'TiB') assert.ok(n < unit * 1024, `${n} → ${text}: unit not too small`);
      }),
    );
  });
});

describe('parseDuration', () => {
  it('accepts seconds and s/m/h/d, case-insensitive', () => {
    const cases: Array<[string | number, number]> = [
      ['300', 300],
      [300, 300],
      [0, 0],
      ['30s', 30],
      ['5m', 300],
      ['5M', 300],
      ['2h', 7200],
      ['14d', 14 * 86400],
      ['1.5m', 90],
      [' 10 s ', 10],
      [2.5, 2.5],
    ];
    for (const [input, seconds] of cases) assert.equal(parseDuration(input), seconds, JSON.stringify(input));
  });

  it('refuses anything else with a DurationError', () => {
    for (const input of ['', 'm', '5x', '-5', '5 minutes', '1w', '5ms', '1e3', 'abc']) {
      assert.throws(
        () => parseDuration(input),
        (err: unknown) => err instanceof DurationError && err.message.includes(`"${input}"`),
        JSON.stringify(input),
      );
    }
    for (const input of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => parseDuration(input), DurationError, String(input));
  });
});

/** Leaf paths of a plain object: { a: { b: 1 } } → ['a.b']. */
function leafKeys(value: unknown, prefix = ''): string[] {
  // An empty table (such as queue.transports) is itself one setting.
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length === 0) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => leafKeys(child, prefix ? `${prefix}.${key}` : key));
}

function configError(raw: unknown): ConfigError {
  try {
    validateConfig(raw, 'test.toml');
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.ok(err.message.startsWith('test.toml: '), err.message);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(raw)} to be refused`);
}

describe('validateConfig', () => {
  it('fills every default from an empty file', () => {
    const config = validateConfig({});
    const expected: Config = {
      hostname: '',
      listeners: { smtp: '127.0.0.1:2525', submission: '', submissions: '', imap: '127.0.0.1:2143', imaps: '', pop3: '127.0.0.1:2110', pop3s: '', http: '' },
      tls: { cert: '', key: '' },
      smtp: {
        max_message_size: 25 * M,
        max_recipients: 100,
        max_line_length: 4096,
        max_connections: 1000,
        max_connections_per_ip: 20,
        idle_timeout: 300,
        shutdown_grace: 30,
        data_timeout: 600,
        max_header_size: M,
        max_mime_depth: 100,
        max_mime_parts: 10000,
        max_hops: 50,
        check_sender_auth: true,
        dmarc_reject: true,
        reverse_dns: false,
      },
      imap: {
        max_line_length: 65536,
        max_literal: 25 * M,
        max_command_size: 26 * M,
        max_connections: 5000,
        max_connections_per_ip: 50,
        idle_timeout: 1800,
        login_timeout: 60,
        max_mailbox_name: 1000,
        max_mailbox_depth: 32,
        max_mailboxes: 10000,
        protect_special_use: true,
        snapshot_min_messages: 1000,
        snapshot_max_messages: 250000,
      },
      pop3: { max_line_length: 4096, max_connections: 1000, max_connections_per_ip: 50, idle_timeout: 600, login_timeout: 60 },
      auth: { plaintext: 'loopback', failure_delay: 2, failure_window: 900, verified_cache: 900 },
      dns: { servers: [], timeout: 10, cache: 60 },
      queue: {
        retry_schedule: '5m,10m,20m,40m,1h',
        lifetime: 5 * 86400,
        delay_notice: 4 * 3600,
        remote_port: 25,
        smarthost: '',
        transports: {},
        source_address: '',
        max_per_destination: 4,
        max_connections: 50,
        connection_reuse: true,
        max_messages_per_connection: 100,
        connect_timeout: 30,
        command_timeout: 300,
        poll_interval: 1,
      },
      dkim: { sign: true },
      policy: { quota: G, quota_messages: null, over_quota: 'defer', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'en', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null },
      storage: { backend: 'sqlite', path: '', fsync: true, max_batch: 256, inline_max: 64 * 1024, dedup_min: 32 * 1024 },
      maintenance: { interval: 3600 },
      log: { level: 'info' },
    };
    assert.deepEqual(config, expected);
  });

  it('a section given in part keeps the defaults of its other keys', () => {
    const config = validateConfig({ smtp: { max_recipients: 150 }, policy: { over_quota: 'reject' } });
    assert.equal(config.smtp.max_recipients, 150);
    assert.equal(config.smtp.max_message_size, 25 * M);
    assert.equal(config.smtp.idle_timeout, 300);
    assert.equal(config.policy.over_quota, 'reject');
    assert.equal(config.policy.quota, G);
    assert.equal(config.listeners.smtp, '127.0.0.1:2525');
  });

  it('parses nested values: sizes, durations, none, listeners', () => {
    const config = validateConfig({
      hostname: 'mx.example.com',
      listeners: { smtp: '0.0.0.0:25', submission: '[::]:587' },
      smtp: { max_message_size: '10M', max_header_size: 65536, idle_timeout: '30s', data_timeout: 120, reverse_dns: true },
      policy: { quota: 'none', quota_messages: '5000', locale: 'ja' },
      storage: { fsync: false, path: '/var/lib/yubin', max_batch: 16 },
      log: { level: 'silent' },
    });
    assert.equal(config.hostname, 'mx.example.com');
    assert.equal(config.listeners.smtp, '0.0.0.0:25');
    assert.equal(config.listeners.submission, '[::]:587');
    assert.equal(config.smtp.max_message_size, 10 * M);
    assert.equal(config.smtp.max_header_size, 65536);
    assert.equal(config.smtp.idle_timeout, 30);
    assert.equal(config.smtp.data_timeout, 120);
    assert.equal(config.smtp.reverse_dns, true);
    assert.equal(config.policy.quota, null);
    assert.equal(config.policy.quota_messages, 5000);
    assert.equal(config.policy.locale, 'ja');
    assert.equal(config.storage.fsync, false);
    assert.equal(config.storage.path, '/var/lib/yubin');
    assert.equal(config.storage.max_batch, 16);
    assert.equal(config.log.level, 'silent');
    assert.equal(validateConfig({ policy: { quota: 'Unlimited', quota_messages: 'none' } }).policy.quota, null);
    assert.equal(validateConfig({ policy: { quota_messages: 7 } }).policy.quota_messages, 7);
    assert.equal(validateConfig({ policy: { quota: 1000 } }).policy.quota, 1000);
  });

  it('rejects unknown keys at any depth, naming the full key', () => {
    assert.match(configError({ colour: 'red' }).message, /unknown setting colour$/);
    assert.match(configError({ smtp: { max_recipints: 5 } }).message, /unknown setting smtp\.max_recipints$/);
    assert.match(configError({ policy: { quotas: '1G' } }).message, /unknown setting policy\.quotas$/);
    assert.match(configError({ listeners: { smtps: '0.0.0.0:465' } }).message, /unknown setting listeners\.smtps$/);
    assert.match(configError({ tls: { certificate: 'x' } }).message, /unknown setting tls\.certificate$/);
    assert.match(configError({ storage: { fsync: true, compress: true } }).message, /unknown setting storage\.compress$/);
    assert.match(configError({ log: { level: 'info', file: 'x' } }).message, /unknown setting log\.file$/);
    assert.match(configError({ bogus: { x: 1 } }).message, /unknown setting bogus$/);
  });

  it('rejects wrong types and bad values, naming the key', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ hostname: 5 }, /^test\.toml: hostname: /],
      [{ smtp: { max_recipients: 'many' } }, /smtp\.max_recipients: /],
      [{ smtp: { max_recipients: 0 } }, /smtp\.max_recipients: /],
      [{ smtp: { max_recipients: 1.5 } }, /smtp\.max_recipients: /],
      [{ smtp: { max_line_length: 100 } }, /smtp\.max_line_length: /],
      [{ smtp: { max_message_size: '25Q' } }, /smtp\.max_message_size: .*25Q/],
      [{ smtp: { max_message_size: -1 } }, /smtp\.max_message_size: /],
      [{ smtp: { idle_timeout: '5x' } }, /smtp\.idle_timeout: .*5x/],
      [{ smtp: { reverse_dns: 'yes' } }, /smtp\.reverse_dns: /],
      [{ policy: { quota: '7Q' } }, /policy\.quota: .*7Q/],
      [{ policy: { quota_messages: 'lots' } }, /policy\.quota_messages: .*lots/],
      [{ policy: { quota_messages: -3 } }, /policy\.quota_messages: /],
      [{ policy: { over_quota: 'bounce' } }, /policy\.over_quota: /],
      [{ policy: { locale: 'fr' } }, /policy\.locale: /],
      [{ listeners: { smtp: 'port 25' } }, /listeners\.smtp: .*HOST:PORT/],
      [{ listeners: { smtp: '0.0.0.0' } }, /listeners\.smtp: /],
      [{ storage: { backend: 'postgres' } }, /storage\.backend: /],
      [{ storage: { fsync: 'no' } }, /storage\.fsync: /],
      [{ log: { level: 'verbose' } }, /log\.level: /],
      [{ smtp: 'fast' }, /smtp/],
      [{ queue: { retry_schedule: '5m,soon' } }, /queue\.retry_schedule: /],
      [{ queue: { smarthost: 'relay example' } }, /queue\.smarthost: /],
      [{ queue: { transports: { 'example.com': 'a b' } } }, /queue\.transports/],
      [{ dns: { servers: ['not an ip:port:x'] } }, /dns\.servers/],
      [{ dns: { cache: 'a while' } }, /dns\.cache: /],
      [{ queue: { source_address: 'mx.example.com' } }, /queue\.source_address: /],
      [{ queue: { lifetime: '5 days' } }, /queue\.lifetime: /],
      [{ policy: { quota_grace: '200%' } }, /policy\.quota_grace: /],
      [{ policy: { quota_warnings: '80%,0%' } }, /policy\.quota_warnings: /],
      [{ storage: { dedup_min: '32Q' } }, /storage\.dedup_min: .*32Q/],
      [{ smtp: { max_hops: 0 } }, /smtp\.max_hops: /],
      [{ storage: { dedup_min: -1 } }, /storage\.dedup_min: /],
      [{ auth: { verified_cache: 'a while' } }, /auth\.verified_cache: /],
      [{ auth: { verified_cache: -5 } }, /auth\.verified_cache: /],
      [{ imap: { snapshot_min_messages: -1 } }, /imap\.snapshot_min_messages: /],
      [{ imap: { snapshot_min_messages: 'many' } }, /imap\.snapshot_min_messages: /],
      [{ imap: { snapshot_max_messages: 1.5 } }, /imap\.snapshot_max_messages: /],
    ];
    for (const [raw, pattern] of cases) assert.match(configError(raw).message, pattern, JSON.stringify(raw));
  });

  it(
    'rejects a listener port above 65535 when the file is read, naming the key',
    () => {
      assert.match(configError({ listeners: { smtp: '127.0.0.1:99999' } }).message, /listeners\.smtp/);
    },
  );

  it('every setting of the schema appears in the defaults (and nothing else)', () => {
    assert.deepEqual(leafKeys(validateConfig({})).sort(), listSettings().map((s) => s.key).sort());
  });
});

describe('loadConfig and resolveDataDir', () => {
  it('resolveDataDir: the flag, else $YUBIN_DATA, else ./data, always absolute', () => {
    const saved = process.env.YUBIN_DATA;
    try {
      process.env.YUBIN_DATA = '/srv/env-data';
      assert.equal(resolveDataDir('/srv/flag'), '/srv/flag');
      assert.equal(resolveDataDir(undefined), '/srv/env-data');
      delete process.env.YUBIN_DATA;
      assert.equal(resolveDataDir(undefined), path.resolve('data'));
      assert.equal(resolveDataDir('relative'), path.resolve('relative'));
    } finally {
      if (saved === undefined) delete process.env.YUBIN_DATA;
      else process.env.YUBIN_DATA = saved;
    }
  });

  it('reads DATA/yubin.toml, falls back to defaults without it, and names the file in errors', () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(process.env.TMPDIR ?? '/tmp'), 'yubin-config-'));
    try {
      const none = loadConfig(dir);
      assert.equal(none.file, null);
      assert.equal(none.config.policy.quota, G);
      assert.ok(none.config.hostname.length > 0, 'an empty hostname becomes the machine name');

      const file = path.join(dir, 'yubin.toml');
      fs.writeFileSync(file, 'hostname = "mx.test"\n[policy]\nquota = "7M"\n');
      const loaded = loadConfig(dir);
      assert.equal(loaded.file, file);
      assert.equal(loaded.dataDir, dir);
      assert.equal(loaded.config.hostname, 'mx.test');
      assert.equal(loaded.config.policy.quota, 7 * M);

      fs.writeFileSync(file, 'hostname = \n');
      assert.throws(() => loadConfig(dir), (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${file}: `) && !err.message.includes('\n'));
      fs.writeFileSync(file, '[smtp]\nmax_recipints = 5\n');
      assert.throws(() => loadConfig(dir), (err: unknown) => err instanceof ConfigError && err.message === `${file}: unknown setting smtp.max_recipints`);

      const other = path.join(dir, 'other.toml');
      fs.writeFileSync(other, '[policy]\nlocale = "ja"\n');
      const explicit = loadConfig(dir, other);
      assert.equal(explicit.file, other);
      assert.equal(explicit.config.policy.locale, 'ja');
      assert.throws(() => loadConfig(dir, path.join(dir, 'missing.toml')), (err: unknown) => err instanceof ConfigError && /not found.*missing\.toml/.test(err.message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('policy settings', () => {
  it('isPolicyKey knows exactly the policy keys', () => {
    assert.deepEqual(POLICY_KEYS, ['quota', 'quota_messages', 'over_quota', 'quota_grace', 'quota_warnings', 'locale', 'retention.trash', 'retention.junk', 'retention.mailboxes', 'pop3.keep_after_retrieval', 'pop3.expire_when_usage_above']);
    for (const key of POLICY_KEYS) assert.equal(isPolicyKey(key), true);
    for (const key of ['colour', 'Quota', '', 'hostname', 'toString', '__proto__']) assert.equal(isPolicyKey(key), false, key);
  });

  it('parsePolicyValue parses values as an admin types them', () => {
    assert.equal(parsePolicyValue('quota', '5M'), 5 * M);
    assert.equal(parsePolicyValue('quota', '1024'), 1024);
    assert.equal(parsePolicyValue('quota', '2gb'), 2 * G);
    assert.equal(parsePolicyValue('quota', 'none'), null);
    assert.equal(parsePolicyValue('quota', 'unlimited'), null);
    assert.equal(parsePolicyValue('quota_messages', '500'), 500);
    assert.equal(parsePolicyValue('quota_messages', '0'), 0);
    assert.equal(parsePolicyValue('quota_messages', 'none'), null);
    assert.equal(parsePolicyValue('over_quota', 'defer'), 'defer');
    assert.equal(parsePolicyValue('over_quota', 'reject'), 'reject');
    assert.equal(parsePolicyValue('over_quota', 'hold'), 'hold');
    assert.equal(parsePolicyValue('quota_grace', '15%'), 15);
    assert.equal(parsePolicyValue('quota_warnings', '90%, 75%'), '90%, 75%');
    assert.equal(parsePolicyValue('locale', 'en'), 'en');
    assert.equal(parsePolicyValue('locale', 'ja'), 'ja');
  });

  it('parsePolicyValue refuses unknown keys and bad values with a SettingError', () => {
    assert.throws(() => parsePolicyValue('colour', 'red'), (err: unknown) => err instanceof SettingError && /unknown setting "colour"/.test(err.message) && /quota, quota_messages, over_quota, quota_grace, quota_warnings, locale/.test(err.message));
    const bad: Array<[string, string]> = [
      ['quota', '10Q'],
      ['quota', ''],
      ['quota', '-1'],
      ['quota', 'M'],
      ['quota_messages', 'many'],
      ['quota_messages', '1.5'],
      ['quota_messages', '-1'],
      ['over_quota', 'bounce'],
      ['quota_grace', '150%'],
      ['quota_warnings', '80%,lots'],
      ['over_quota', 'Reject'],
      ['locale', 'fr'],
      ['locale', ''],
    ];
    for (const [key, value] of bad) {
      assert.throws(
        () => parsePolicyValue(key, value),
        (err: unknown) => err instanceof SettingError && err.message.startsWith(`invalid value for ${key}: `),
        `${key} = ${JSON.stringify(value)}`,
      );
    }
  });

  it('retention and POP3 expiry keys parse days, "forever", shares and mailbox lists', () => {
    assert.equal(parsePolicyValue('retention.trash', '14'), 14);
    assert.equal(parsePolicyValue('retention.trash', '14d'), 14);
    assert.equal(parsePolicyValue('retention.junk', 'forever'), null);
    assert.equal(parsePolicyValue('pop3.keep_after_retrieval', '0'), 0);
    assert.equal(parsePolicyValue('pop3.keep_after_retrieval', 'forever'), null);
    assert.equal(parsePolicyValue('pop3.expire_when_usage_above', '90%'), 90);
    assert.equal(parsePolicyValue('pop3.expire_when_usage_above', 'none'), null);
    assert.equal(parsePolicyValue('retention.mailboxes', 'Archive/Old=365,Newsletters=14'), 'Archive/Old=365,Newsletters=14');
    for (const [key, value] of [
      ['retention.trash', 'soon'],
      ['retention.trash', '-1'],
      ['pop3.keep_after_retrieval', '1.5'],
      ['pop3.expire_when_usage_above', '150%'],
      ['pop3.expire_when_usage_above', 'most'],
      ['retention.mailboxes', 'Archive'],
      ['retention.mailboxes', 'Archive=x'],
    ] as Array<[string, string]>) {
      assert.throws(() => parsePolicyValue(key, value), SettingError, `${key} = ${value}`);
    }
  });

  it('dotted policy keys load quoted and as nested tables under [policy]', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-config-'));
    try {
      fs.writeFileSync(path.join(dir, 'yubin.toml'), '[policy]\n"retention.trash" = 7\n[policy.pop3]\nkeep_after_retrieval = 14\nexpire_when_usage_above = "90%"\n[policy.retention]\njunk = "forever"\n');
      const loaded = loadConfig(dir);
      assert.equal(loaded.config.policy['retention.trash'], 7);
      assert.equal(loaded.config.policy['retention.junk'], null);
      assert.equal(loaded.config.policy['pop3.keep_after_retrieval'], 14);
      assert.equal(loaded.config.policy['pop3.expire_when_usage_above'], 90);
      fs.writeFileSync(path.join(dir, 'yubin.toml'), '[policy.retention]\ntrsh = 7\n');
      assert.throws(() => loadConfig(dir), (err: unknown) => err instanceof ConfigError && /unknown setting policy\.retention\.trsh/.test(err.message));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const config = validateConfig({ policy: { quota: '7M', over_quota: 'defer', locale: 'en' } });

  it('effectivePolicy: config alone', () => {
    assert.deepEqual(effectivePolicy(config, null, null), { quota: 7 * M, quota_messages: null, over_quota: 'defer', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'en', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null });
    assert.deepEqual(effectivePolicy(config, { settings: {} }, { settings: {} }), config.policy);
  });

  it('effectivePolicy: a user setting beats the domain, which beats the config', () => {
    const domain = { settings: { quota: '2M', locale: 'ja' } };
    const user = { settings: { quota: '3M', over_quota: 'reject' } };
    assert.deepEqual(effectivePolicy(config, domain, null), { quota: 2 * M, quota_messages: null, over_quota: 'defer', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'ja', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null });
    assert.deepEqual(effectivePolicy(config, domain, user), { quota: 3 * M, quota_messages: null, over_quota: 'reject', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'ja', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null });
    assert.deepEqual(effectivePolicy(config, null, user), { quota: 3 * M, quota_messages: null, over_quota: 'reject', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'en', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null });
    // "none" at the user level removes a limit set above it.
    assert.equal(effectivePolicy(config, domain, { settings: { quota: 'none' } }).quota, null);
    assert.equal(effectivePolicy(config, { settings: { quota: 'none' } }, { settings: { quota: '1M' } }).quota, M);
  });

  it('effectivePolicy ignores stored values that no longer validate, and unknown keys', () => {
    const domain = { settings: { quota: '2M' } };
    const user = { settings: { quota: 'garbage', locale: 'xx', colour: 'red' } as Record<string, string> };
    assert.deepEqual(effectivePolicy(config, domain, user), { quota: 2 * M, quota_messages: null, over_quota: 'defer', quota_grace: 10, quota_warnings: '80%,90%,100%', locale: 'en', 'retention.trash': 30, 'retention.junk': 30, 'retention.mailboxes': '', 'pop3.keep_after_retrieval': null, 'pop3.expire_when_usage_above': null });
  });

  it('effectivePolicy does not modify the configuration', () => {
    const before = structuredClone(config.policy);
    effectivePolicy(config, { settings: { quota: '1M' } }, { settings: { locale: 'ja' } });
    assert.deepEqual(config.policy, before);
  });

  it('policySources says where each value comes from', () => {
    assert.deepEqual(policySources(null, null), { quota: 'config', quota_messages: 'config', over_quota: 'config', quota_grace: 'config', quota_warnings: 'config', locale: 'config', 'retention.trash': 'config', 'retention.junk': 'config', 'retention.mailboxes': 'config', 'pop3.keep_after_retrieval': 'config', 'pop3.expire_when_usage_above': 'config' });
    assert.deepEqual(policySources({ settings: { quota: '2M', locale: 'ja' } }, { settings: { quota: '3M' } }), {
      quota: 'user',
      quota_messages: 'config',
      over_quota: 'config',
      quota_grace: 'config',
      quota_warnings: 'config',
      locale: 'domain',
      'retention.trash': 'config', 'retention.junk': 'config', 'retention.mailboxes': 'config', 'pop3.keep_after_retrieval': 'config', 'pop3.expire_when_usage_above': 'config',
    });
  });
});

describe('the configuration reference in README.md', () => {
  const BEGIN = '<!-- config-reference:begin -->';
  const END = '<!-- config-reference:end -->';

  it('equals what the schema generates (run `npm run docs:config` after changing the schema)', () => {
    const readme = fs.readFileSync(README, 'utf8');
    const start = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);
    assert.ok(start >= 0 && end > start, 'README.md has the config-reference markers in order');
    assert.equal(readme.indexOf(BEGIN, start + 1), -1, 'one begin marker');
    assert.equal(readme.slice(start + BEGIN.length, end), '\n' + renderReference());
  });

  it('lists every setting once, each with a non-empty description and its default', () => {
    const settings = listSettings();
    assert.ok(settings.length > 0);
    const keys = settings.map((s) => s.key);
    assert.equal(new Set(keys).size, keys.length, 'no key twice');
    const table = renderReference();
    for (const setting of settings) {
      assert.ok(setting.description.trim().length > 0, `${setting.key} has a description`);
      assert.notEqual(setting.defaultValue, undefined, `${setting.key} has a default`);
      assert.ok(table.includes(`| \`${setting.key}\` |`), `${setting.key} is in the table`);
    }
    for (const key of POLICY_KEYS) assert.ok(keys.includes(`policy.${key}`), `policy.${key} is documented`);
  });

  it('each documented default is the value validateConfig gives an empty file', () => {
    const defaults = validateConfig({}) as unknown as Record<string, Record<string, unknown>>;
    for (const setting of listSettings()) {
      const dot = setting.key.indexOf('.');
      const [section, key] = dot < 0 ? [setting.key, undefined] : [setting.key.slice(0, dot), setting.key.slice(dot + 1)];
      const actual = key === undefined ? defaults[section] : defaults[section]?.[key];
      // A documented default goes through the same parsing as a value in the file.
      const parsed = validateConfig(key === undefined ? { [section]: setting.defaultValue } : { [section]: { [key]: setting.defaultValue } }) as unknown as Record<
        string,
        Record<string, unknown>
      >;
      const expected = key === undefined ? parsed[section] : parsed[section]?.[key];
      assert.deepEqual(actual, expected, setting.key);
    }
    assert.ok(configSchema.shape.policy, 'the policy section exists');
  });
});
