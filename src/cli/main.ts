#!/usr/bin/env node
// yubin — the command line: serve, and the admin commands that work while the server runs.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { CliError } from './context.js';
import { aliasCommand, ALIAS_HELP } from './commands/alias.js';
import { dkimCommand, DKIM_HELP } from './commands/dkim.js';
import { dnsRecordsCommand, DNS_RECORDS_HELP } from './commands/dns-records.js';
import { domainCommand, DOMAIN_HELP } from './commands/domain.js';
import { maintenanceCommand, MAINTENANCE_HELP } from './commands/maintenance.js';
import { SERVE_HELP } from './commands/serve-help.js';
import { userCommand, USER_HELP } from './commands/user.js';
import { queueCommand, QUEUE_HELP } from './commands/queue.js';
import { usageCommand, USAGE_HELP } from './commands/usage.js';
import { cleanupCommand, CLEANUP_HELP } from './commands/cleanup.js';

const HELP = `Yubin (郵便) — a complete mail server

Every command finds its data directory from --data DIR, else $YUBIN_DATA, else ./data,
and its configuration from --config FILE, else DIR/yubin.toml.
Sizes: bytes or a number with K, M or G (binary multiples), e.g. 25M.

${SERVE_HELP}

${DOMAIN_HELP}

${USER_HELP}

${ALIAS_HELP}

${MAINTENANCE_HELP}

${USAGE_HELP}

${CLEANUP_HELP}

${QUEUE_HELP}

${DKIM_HELP}

${DNS_RECORDS_HELP}

yubin --version`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      // Loaded only here: admin commands start fast without the server's modules.
      return (await import('./commands/serve.js')).serveCommand(rest);
    case 'domain':
      return domainCommand(rest);
    case 'user':
      return userCommand(rest);
    case 'alias':
      return aliasCommand(rest);
    case 'maintenance':
      return maintenanceCommand(rest);
    case 'usage':
      return usageCommand(rest);
    case 'cleanup':
      return cleanupCommand(rest);
    case 'queue':
      return queueCommand(rest);
    case 'dkim':
      return dkimCommand(rest);
    case 'dns-records':
      return dnsRecordsCommand(rest);
    case '--version':
    case 'version': {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      console.log(`yubin ${pkg.version}`);
      return;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return;
    default:
      throw new CliError(`unknown command "${command}"; see yubin --help`, 2);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof CliError || err instanceof ConfigError) {
    console.error(`yubin: ${err.message}`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
    return;
  }
  console.error(`yubin: unexpected error: ${(err as Error)?.message ?? String(err)}`);
  if (process.env.YUBIN_DEBUG) console.error((err as Error)?.stack);
  process.exitCode = 1;
});
