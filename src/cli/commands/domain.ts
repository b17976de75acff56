// yubin domain add|list|remove|set|get

import { POLICY_KEYS, type PolicyKey } from '../../config/schema.js';
import { formatSize } from '../../config/size.js';
import { effectivePolicy, isPolicyKey, parsePolicyValue, policySources, SettingError } from '../../policy/settings.js';
import { StoreError } from '../../store/types.js';
import { CliError, UsageError, loadContext, normalizeDomain, parse, printJson, withStore } from '../context.js';
import { INHERIT, printPolicy } from './settings-format.js';

export const DOMAIN_HELP = `yubin domain add DOMAIN [--quota SIZE]
yubin domain list [--json]
yubin domain remove DOMAIN
yubin domain set DOMAIN KEY VALUE     (VALUE "${INHERIT}" removes the domain's own value)
yubin domain get DOMAIN [KEY] [--json]
keys: ${POLICY_KEYS.join(', ')}`;

export async function domainCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(DOMAIN_HELP);
    return;
  }
  switch (sub) {
    case 'add': {
      const { values, positionals } = parse(rest, { quota: { type: 'string' } });
      if (positionals.length !== 1) throw new UsageError('usage: yubin domain add DOMAIN [--quota SIZE]');
      const name = normalizeDomain(positionals[0]!);
      const settings: Record<string, string> = {};
      if (values.quota !== undefined) {
        parseSettingOrFail('quota', values.quota);
        settings.quota = values.quota;
      }
      await withStore(loadContext(values), async (store) => {
        if (await store.getDomain(name)) throw new CliError(`domain ${name} already exists`);
        await store.addDomain(name, settings);
      });
      console.log(`domain ${name} added`);
      return;
    }
    case 'list': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const loaded = loadContext(values);
      const rows = await withStore(loaded, async (store) => {
        const [domains, accounts, aliases] = await Promise.all([store.listDomains(), store.listAccounts(), store.listAliases()]);
        return domains.map((domain) => {
          const policy = effectivePolicy(loaded.config, domain, null);
          return {
            name: domain.name,
            users: accounts.filter((a) => a.domainId === domain.id).length,
            aliases: aliases.filter((a) => a.address.endsWith(`@${domain.name}`)).length,
            quota: policy.quota,
            settings: domain.settings,
            createdAt: domain.createdAt.toISOString(),
          };
        });
      });
      if (values.json) return printJson(rows);
      if (rows.length === 0) return console.log('no domains; add one with: yubin domain add example.com');
      for (const row of rows) {
        console.log(`${row.name}\tusers: ${row.users}\taliases: ${row.aliases}\tquota per user: ${row.quota === null ? 'none' : formatSize(row.quota)}`);
      }
      return;
    }
    case 'remove': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('usage: yubin domain remove DOMAIN');
      const name = normalizeDomain(positionals[0]!);
      await withStore(loadContext(values), (store) => store.removeDomain(name)).catch(rethrowStoreError);
      console.log(`domain ${name} removed`);
      return;
    }
    case 'set': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 3) throw new UsageError('usage: yubin domain set DOMAIN KEY VALUE');
      const [rawName, key, value] = positionals as [string, string, string];
      const name = normalizeDomain(rawName);
      const stored = value === INHERIT ? null : value;
      if (stored !== null) parseSettingOrFail(key, stored);
      else if (!isPolicyKey(key)) parseSettingOrFail(key, '');
      await withStore(loadContext(values), (store) => store.setDomainSetting(name, key as never, stored)).catch(rethrowStoreError);
      console.log(stored === null ? `${name}: ${key} now follows the configuration file` : `${name}: ${key} = ${value}`);
      return;
    }
    case 'get': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      if (positionals.length < 1 || positionals.length > 2) throw new UsageError('usage: yubin domain get DOMAIN [KEY]');
      const name = normalizeDomain(positionals[0]!);
      const key = positionals[1];
      if (key !== undefined && !isPolicyKey(key)) parseSettingOrFail(key, '');
      const loaded = loadContext(values);
      const domain = await withStore(loaded, (store) => store.getDomain(name));
      if (!domain) throw new CliError(`unknown domain ${name}`);
      const policy = effectivePolicy(loaded.config, domain, null);
      const sources = policySources(domain, null);
      return printPolicy(policy, sources, key as PolicyKey | undefined, values.json);
    }
    default:
      throw new UsageError(sub === undefined ? 'missing subcommand; see yubin domain --help' : `unknown subcommand "domain ${sub}"; see yubin domain --help`);
  }
}

export function parseSettingOrFail(key: string, value: string): void {
  try {
    parsePolicyValue(key, value);
  } catch (err) {
    if (err instanceof SettingError) throw new CliError(err.message);
    throw err;
  }
}

export function rethrowStoreError(err: unknown): never {
  if (err instanceof StoreError) throw new CliError(err.message);
  throw err;
}
