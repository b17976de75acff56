// Finds the data directory and reads the configuration file into a validated Config.
// Order: built-in defaults < DATA/yubin.toml (or --config FILE) < command-line flags (applied by the CLI).

import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {}

/** --data DIR, else $YUBIN_DATA, else ./data */
export function resolveDataDir(flag: string | undefined): string {
  return path.resolve(flag ?? process.env.YUBIN_DATA ?? 'data');
}

export interface LoadedConfig {
  config: Config;
  dataDir: string;
  /** The file the settings came from, or null when only defaults apply. */
  file: string | null;
}

export function loadConfig(dataDir: string, configFile?: string): LoadedConfig {
  const file = configFile ? path.resolve(configFile) : path.join(dataDir, 'yubin.toml');
  let raw: unknown = {};
  if (fs.existsSync(file)) {
    try {
      raw = parseToml(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  } else if (configFile) {
    throw new ConfigError(`config file not found: ${file}`);
  }
  const config = validateConfig(raw, file);
  if (!config.hostname) config.hostname = os.hostname();
  return { config, dataDir, file: fs.existsSync(file) ? file : null };
}

export function validateConfig(raw: unknown, source = 'config'): Config {
  const strict = strictObjects(configSchema);
  const result = strict.safeParse(flattenPolicy(raw));
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.join('.');
    const what = issue.code === 'unrecognized_keys' ? `unknown setting ${[key, ...issue.keys].filter(Boolean).join('.')}` : `${key}: ${issue.message}`;
    throw new ConfigError(`${source}: ${what}`);
  }
  return result.data as Config;
}

/** Unknown keys in a config file are mistakes (a typo must not be silently ignored). */
function strictObjects<T extends z.ZodType>(schema: T): T {
  const def = (schema as unknown as { _zod: { def: { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType } } })._zod.def;
  if (def.type === 'object' && def.shape) {
    const shape: Record<string, z.ZodType> = {};
    for (const [k, v] of Object.entries(def.shape)) shape[k] = strictObjects(v);
    return z.strictObject(shape) as unknown as T;
  }
  if (def.type === 'prefault' && def.innerType && (def.innerType as unknown as { _zod: { def: { type: string } } })._zod.def.type === 'object') {
    return strictObjects(def.innerType).prefault({}) as unknown as T;
  }
  return schema;
}

const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

/**
 * Policy keys contain dots ("retention.trash"); TOML lets them be written quoted
 * (`"retention.trash" = 14`) or as nested tables (`[policy.retention]` with `trash = 14`).
 * Nested tables under [policy] become dotted keys before validation.
 */
export function flattenPolicy(raw: unknown): unknown {
  if (!isTable(raw) || !isTable(raw.policy)) return raw;
  const flat: Record<string, unknown> = {};
  const walk = (table: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(table)) {
      const name = prefix ? `${prefix}.${key}` : key;
      if (isTable(value)) walk(value, name);
      else flat[name] = value;
    }
  };
  walk(raw.policy, '');
  return { ...raw, policy: flat };
}
