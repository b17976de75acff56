// yubin dkim generate|list

import { dkimRecordName, dkimTxtRecord, generateDkimKey, isValidSelector, type DkimAlgorithm } from '../../dkim/keys.js';
import { quoteTxt } from '../../dkim/dns-records.js';
import type { DkimKey, Store } from '../../store/types.js';
import { CliError, UsageError, loadContext, normalizeDomain, parse, printJson, withStore } from '../context.js';
import { rethrowStoreError } from './domain.js';

export const DEFAULT_SELECTOR = 'yubin';
/** Suffix of the Ed25519 selector when both keys are generated: "yubin" (RSA) and "yubin-ed25519". */
export const ED25519_SUFFIX = '-ed25519';

export const DKIM_HELP = `yubin dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519|both] [--json]
                                      (a DKIM key pair for a local domain; prints the TXT record(s) to publish.
                                       both (default): RSA 2048 with selector S and Ed25519 with S${ED25519_SUFFIX}
                                       (RFC 8463: sign with both, many receivers verify only RSA); one algorithm:
                                       selector S. S defaults to "${DEFAULT_SELECTOR}" ("${DEFAULT_SELECTOR}${ED25519_SUFFIX}" for ed25519 alone).
                                       An existing selector is never overwritten; another --selector adds a key)
yubin dkim list [DOMAIN] [--json]`;

export async function dkimCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'help' || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(DKIM_HELP);
    return;
  }
  switch (sub) {
    case 'generate':
      return generate(rest);
    case 'list':
      return list(rest);
    default:
      throw new UsageError(sub === undefined ? 'missing subcommand; see yubin dkim --help' : `unknown subcommand "dkim ${sub}"; see yubin dkim --help`);
  }
}

async function generate(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { selector: { type: 'string' }, algorithm: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('usage: yubin dkim generate DOMAIN [--selector S] [--algorithm rsa|ed25519|both]');
  const domain = normalizeDomain(positionals[0]!);
  const algorithm = values.algorithm ?? 'both';
  if (algorithm !== 'rsa' && algorithm !== 'ed25519' && algorithm !== 'both') {
    throw new UsageError(`--algorithm must be rsa, ed25519 or both, not "${algorithm}"`);
  }
  if (values.selector !== undefined && !isValidSelector(values.selector)) {
    throw new UsageError(`invalid selector "${values.selector}" (letters, digits and hyphens, like a DNS name)`);
  }
  const base = values.selector?.toLowerCase();
  const wanted: Array<{ algorithm: DkimAlgorithm; selector: string }> =
    algorithm === 'both'
      ? [
          { algorithm: 'rsa', selector: base ?? DEFAULT_SELECTOR },
          { algorithm: 'ed25519', selector: `${base ?? DEFAULT_SELECTOR}${ED25519_SUFFIX}` },
        ]
      : [{ algorithm, selector: base ?? (algorithm === 'rsa' ? DEFAULT_SELECTOR : `${DEFAULT_SELECTOR}${ED25519_SUFFIX}`) }];

  const created = await withStore(loadContext(values), async (store: Store) => {
    if (!(await store.getDomain(domain))) throw new CliError(`unknown domain ${domain}; DKIM keys are made for local domains (yubin domain add ${domain})`);
    const existing = new Set((await store.listDkimKeys(domain)).map((k) => k.selector));
    const taken = wanted.filter((w) => existing.has(w.selector)).map((w) => w.selector);
    if (taken.length > 0) {
      throw new CliError(
        `${domain} already has a DKIM key with selector ${taken.join(' and ')}; it is not replaced (choose another with --selector, e.g. --selector ${DEFAULT_SELECTOR}${compactDate(new Date())})`,
      );
    }
    const keys: Array<Omit<DkimKey, 'createdAt'>> = wanted.map((w) => ({ domain, selector: w.selector, algorithm: w.algorithm, ...generateDkimKey(w.algorithm) }));
    for (const key of keys) await store.addDkimKey(key);
    return keys;
  }).catch(rethrowStoreError);

  const rows = created.map((k) => ({ domain, selector: k.selector, algorithm: k.algorithm, name: `${dkimRecordName(k)}.`, type: 'TXT', value: dkimTxtRecord(k) }));
  if (values.json) return printJson(rows);
  console.log(`DKIM ${created.map((k) => `${k.algorithm === 'rsa' ? 'RSA 2048' : 'Ed25519'} key (selector ${k.selector})`).join(' and ')} generated for ${domain}.`);
  console.log('Publish in DNS (mail from the domain is signed with every key; receivers without the record see a failing signature):');
  for (const row of rows) console.log(`${row.name} IN TXT ${quoteTxt(row.value)}`);
}

async function list(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length > 1) throw new UsageError('usage: yubin dkim list [DOMAIN] [--json]');
  const domain = positionals[0] === undefined ? undefined : normalizeDomain(positionals[0]);
  const keys = await withStore(loadContext(values), async (store: Store) => {
    if (domain !== undefined && !(await store.getDomain(domain))) throw new CliError(`unknown domain ${domain}`);
    return store.listDkimKeys(domain);
  });
  const rows = keys.map((k) => ({
    domain: k.domain,
    selector: k.selector,
    algorithm: k.algorithm,
    createdAt: k.createdAt.toISOString(),
    name: `${dkimRecordName(k)}.`,
    value: dkimTxtRecord(k),
  }));
  if (values.json) return printJson(rows);
  if (rows.length === 0) return console.log(domain ? `no DKIM keys for ${domain}; create them with: yubin dkim generate ${domain}` : 'no DKIM keys; create them with: yubin dkim generate DOMAIN');
  for (const row of rows) console.log(`${row.domain}\tselector: ${row.selector}\talgorithm: ${row.algorithm}\tcreated: ${row.createdAt}`);
}

function compactDate(d: Date): string {
  return d.toISOString().slice(0, 7).replace('-', '');
}
