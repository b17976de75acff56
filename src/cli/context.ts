// What every CLI command needs: the data directory, the configuration, the store, and one way
// to fail (a single clear line on standard error, non-zero exit, no stack trace).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, resolveDataDir, type LoadedConfig } from '../config/load.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import path from 'node:path';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 2);
  }
}

export const GLOBAL_OPTIONS = {
  data: { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** parseArgs with the global options added and errors turned into UsageError. */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export function loadContext(values: { data?: string; config?: string }): LoadedConfig {
  return loadConfig(resolveDataDir(values.data), values.config);
}

export function openStore(loaded: LoadedConfig): SqliteStore {
  const { config, dataDir } = loaded;
  return SqliteStore.open({
    directory: config.storage.path ? path.resolve(config.storage.path) : dataDir,
    fsync: config.storage.fsync,
    writer: 'direct',
    inlineMax: config.storage.inline_max,
    dedupMin: config.storage.dedup_min,
  });
}

/** Runs fn with an open store, closing it whatever happens. */
export async function withStore<T>(loaded: LoadedConfig, fn: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = openStore(loaded);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

export function normalizeDomain(name: string): string {
  const domain = name.trim().toLowerCase().replace(/\.$/, '');
  if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/.test(domain)) {
    throw new CliError(`invalid domain name "${name}"`);
  }
  return domain;
}

export function normalizeMailAddress(address: string): string {
  const at = address.lastIndexOf('@');
  if (at <= 0) throw new CliError(`invalid address "${address}" (expected user@domain)`);
  const local = address.slice(0, at).trim().toLowerCase();
  if (!/^[a-z0-9!#$&'*+/=?^_`{|}~.-]{1,64}$/.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw new CliError(`invalid address "${address}" (the part before @ may use letters, digits and . _ + - and similar)`);
  }
  return `${local}@${normalizeDomain(address.slice(at + 1))}`;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Reads all of standard input (for --password-stdin); the first line is the password. */
export async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

export const MIN_PASSWORD_LENGTH = 8;

export function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH) throw new CliError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  return password;
}
