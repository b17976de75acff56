// yubin user add|list|passwd|quota|remove|set|get

import readline from 'node:readline';
import { POLICY_KEYS, type PolicyKey } from '../../config/schema.js';
import { formatSize } from '../../config/size.js';
import { hashPassword } from '../../auth/password.js';
import { effectivePolicy, isPolicyKey, policySources } from '../../policy/settings.js';
import { checkPassword, CliError, UsageError, loadContext, normalizeMailAddress, parse, printJson, readStdinLine, withStore } from '../context.js';
import { parseSettingOrFail, rethrowStoreError } from './domain.js';
import { INHERIT, printPolicy } from './settings-format.js';

export const USER_HELP = `yubin user add ADDRESS (--password PW | --password-stdin) [--quota SIZE]
yubin user list [--json]
yubin user passwd ADDRESS [--password PW | --password-stdin]   (asks when neither is given)
yubin user quota ADDRESS SIZE|none|${INHERIT}
yubin user remove ADDRESS                 (deletes the user's mailboxes and messages)
yubin user set ADDRESS KEY VALUE          (VALUE "${INHERIT}" removes the user's own value)
yubin user get ADDRESS [KEY] [--json]
keys: ${POLICY_KEYS.join(', ')}`;

async function promptHidden(question: string): Promise<string> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const output = rl as unknown as { _writeToOutput: (s: string) => void };
  let prompted = false;
  output._writeToOutput = (s: string) => {
    if (!prompted) {
      process.stderr.write(s);
      prompted = true;
    }
  };
  return new Promise((resolve) =>
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    }),
  );
}

async function passwordFrom(values: { password?: string; 'password-stdin'?: boolean }, required: boolean): Promise<string> {
  if (values.password !== undefined && values['password-stdin']) throw new UsageError('give either --password or --password-stdin, not both');
  if (values.password !== undefined) return checkPassword(values.password);
  if (values['password-stdin']) return checkPassword(await readStdinLine());
  if (required) throw new UsageError('a password is required: --password PW or --password-stdin');
  if (!process.stdin.isTTY) return checkPassword(await readStdinLine());
  const first = await promptHidden('New password: ');
  const second = await promptHidden('Repeat it: ');
  if (first !== second) throw new CliError('the two passwords differ; nothing changed');
  return checkPassword(first);
}

export async function userCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(USER_HELP);
    return;
  }
  switch (sub) {
    case 'add': {
      const { values, positionals } = parse(rest, { password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, quota: { type: 'string' } });
      if (positionals.length !== 1) throw new UsageError('usage: yubin user add ADDRESS --password PW [--quota SIZE]');
      const address = normalizeMailAddress(positionals[0]!);
      const settings: Record<string, string> = {};
      if (values.quota !== undefined) {
        parseSettingOrFail('quota', values.quota);
        settings.quota = values.quota;
      }
      const password = await passwordFrom(values, true);
      const loaded = loadContext(values);
      await withStore(loaded, async (store) => {
        const domain = address.slice(address.indexOf('@') + 1);
        if (!(await store.getDomain(domain))) throw new CliError(`unknown domain ${domain}; add it first: yubin domain add ${domain}`);
        if (await store.getAccount(address)) throw new CliError(`user ${address} already exists`);
        await store.addAccount(address, await hashPassword(password), settings);
      }).catch(rethrowStoreError);
      console.log(`user ${address} added`);
      return;
    }
    case 'list': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const loaded = loadContext(values);
      const rows = await withStore(loaded, async (store) => {
        const domains = new Map((await store.listDomains()).map((d) => [d.id, d]));
        return (await store.listAccounts()).map((account) => {
          const policy = effectivePolicy(loaded.config, domains.get(account.domainId) ?? null, account);
          return {
            address: account.address,
            quota: policy.quota,
            used: account.usage.bytes,
            messages: account.usage.messages,
            percent: policy.quota ? Math.round((account.usage.bytes / policy.quota) * 1000) / 10 : null,
            settings: account.settings,
            createdAt: account.createdAt.toISOString(),
          };
        });
      });
      if (values.json) return printJson(rows);
      if (rows.length === 0) return console.log('no users; add one with: yubin user add ADDRESS --password PW');
      for (const row of rows) {
        const quota = row.quota === null ? 'no quota' : `of ${formatSize(row.quota)} (${row.percent}%)`;
        console.log(`${row.address}\t${formatSize(row.used)} ${quota}\t${row.messages} message(s)`);
      }
      return;
    }
    case 'passwd': {
      const { values, positionals } = parse(rest, { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } });
      if (positionals.length !== 1) throw new UsageError('usage: yubin user passwd ADDRESS [--password PW | --password-stdin]');
      const address = normalizeMailAddress(positionals[0]!);
      const loaded = loadContext(values);
      await withStore(loaded, async (store) => {
        if (!(await store.getAccount(address))) throw new CliError(`unknown user ${address}`);
        const password = await passwordFrom(values, false);
        await store.setPasswordHash(address, await hashPassword(password));
      }).catch(rethrowStoreError);
      console.log(`password of ${address} changed`);
      return;
    }
    case 'quota': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 2) throw new UsageError(`usage: yubin user quota ADDRESS SIZE|none|${INHERIT}`);
      return setUserSetting(values, positionals[0]!, 'quota', positionals[1]!);
    }
    case 'remove': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('usage: yubin user remove ADDRESS');
      const address = normalizeMailAddress(positionals[0]!);
      await withStore(loadContext(values), (store) => store.removeAccount(address)).catch(rethrowStoreError);
      console.log(`user ${address} removed, with all of their mail`);
      return;
    }
    case 'set': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 3) throw new UsageError('usage: yubin user set ADDRESS KEY VALUE');
      return setUserSetting(values, positionals[0]!, positionals[1]!, positionals[2]!);
    }
    case 'get': {
      const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
      if (positionals.length < 1 || positionals.length > 2) throw new UsageError('usage: yubin user get ADDRESS [KEY]');
      const address = normalizeMailAddress(positionals[0]!);
      const key = positionals[1];
      if (key !== undefined && !isPolicyKey(key)) parseSettingOrFail(key, '');
      const loaded = loadContext(values);
      const found = await withStore(loaded, async (store) => {
        const account = await store.getAccount(address);
        if (!account) return null;
        return { account, domain: await store.getDomain(address.slice(address.indexOf('@') + 1)) };
      });
      if (!found) throw new CliError(`unknown user ${address}`);
      const policy = effectivePolicy(loaded.config, found.domain, found.account);
      const sources = policySources(found.domain, found.account);
      return printPolicy(policy, sources, key as PolicyKey | undefined, values.json);
    }
    default:
      throw new UsageError(sub === undefined ? 'missing subcommand; see yubin user --help' : `unknown subcommand "user ${sub}"; see yubin user --help`);
  }
}

async function setUserSetting(values: { data?: string; config?: string }, rawAddress: string, key: string, value: string): Promise<void> {
  const address = normalizeMailAddress(rawAddress);
  const stored = value === INHERIT ? null : value;
  if (stored !== null) parseSettingOrFail(key, stored);
  else if (!isPolicyKey(key)) parseSettingOrFail(key, '');
  await withStore(loadContext(values), (store) => store.setAccountSetting(address, key as never, stored)).catch(rethrowStoreError);
  console.log(stored === null ? `${address}: ${key} now follows the domain` : `${address}: ${key} = ${value}`);
}
