// yubin alias add|list|remove

import { CliError, UsageError, loadContext, normalizeMailAddress, parse, printJson, withStore } from '../context.js';
import { rethrowStoreError } from './domain.js';

export const ALIAS_HELP = `yubin alias add ALIAS TARGET[,TARGET...]   (targets: local users or aliases, or addresses elsewhere to forward to)
yubin alias list [--json]
yubin alias remove ALIAS`;

export async function aliasCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(ALIAS_HELP);
    return;
  }
  switch (sub) {
    case 'add': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length < 2) throw new UsageError('usage: yubin alias add ALIAS TARGET[,TARGET...]');
      const alias = normalizeMailAddress(positionals[0]!);
      const targets = [...new Set(positionals.slice(1).join(',').split(',').map((t) => t.trim()).filter(Boolean).map(normalizeMailAddress))];
      if (targets.length === 0) throw new UsageError('an alias needs at least one target');
      if (targets.includes(alias)) throw new CliError('an alias cannot point to itself');
      await withStore(loadContext(values), async (store) => {
        const domain = alias.slice(alias.indexOf('@') + 1);
        if (!(await store.getDomain(domain))) throw new CliError(`unknown domain ${domain}; add it first: yubin domain add ${domain}`);
        for (const target of targets) {
          const resolution = await store.resolveRecipient(target);
          // A target in another domain is forwarded through the outbound queue.
          if (resolution.kind === 'unknown-user') throw new CliError(`${target} is neither a user nor an alias`);
        }
        await store.addAlias(alias, targets);
      }).catch(rethrowStoreError);
      console.log(`alias ${alias} → ${targets.join(', ')}`);
      return;
    }
    case 'list': {
      const { values } = parse(rest, { json: { type: 'boolean' } });
      const aliases = await withStore(loadContext(values), (store) => store.listAliases());
      if (values.json) return printJson(aliases);
      if (aliases.length === 0) return console.log('no aliases');
      for (const alias of aliases) console.log(`${alias.address}\t→ ${alias.targets.join(', ')}`);
      return;
    }
    case 'remove': {
      const { values, positionals } = parse(rest, {});
      if (positionals.length !== 1) throw new UsageError('usage: yubin alias remove ALIAS');
      const alias = normalizeMailAddress(positionals[0]!);
      await withStore(loadContext(values), (store) => store.removeAlias(alias)).catch(rethrowStoreError);
      console.log(`alias ${alias} removed`);
      return;
    }
    default:
      throw new UsageError(sub === undefined ? 'missing subcommand; see yubin alias --help' : `unknown subcommand "alias ${sub}"; see yubin alias --help`);
  }
}
