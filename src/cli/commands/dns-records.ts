// yubin dns-records DOMAIN [--json]

import { buildDnsRecords, zoneLine } from '../../dkim/dns-records.js';
import type { Store } from '../../store/types.js';
import { CliError, UsageError, loadContext, normalizeDomain, parse, printJson, withStore } from '../context.js';

export const DNS_RECORDS_HELP = `yubin dns-records DOMAIN [--json]     (every DNS record to publish for a local domain: MX, SPF, DKIM,
                                       DMARC, MTA-STS with its policy file, TLS-RPT; --json: [{name, type, value, purpose}])`;

export async function dnsRecordsCommand(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h') || args[0] === 'help') {
    console.log(DNS_RECORDS_HELP);
    return;
  }
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  if (positionals.length !== 1) throw new UsageError('usage: yubin dns-records DOMAIN [--json]');
  const domain = normalizeDomain(positionals[0]!);
  const loaded = loadContext(values);
  const keys = await withStore(loaded, async (store: Store) => {
    if (!(await store.getDomain(domain))) throw new CliError(`unknown domain ${domain}; add it first: yubin domain add ${domain}`);
    return store.listDkimKeys(domain);
  });
  // loadConfig already put the machine's host name in config.hostname when the file gives none,
  // as the server does for its greeting.
  const plan = buildDnsRecords(domain, loaded.config.hostname, keys);
  if (values.json) return printJson(plan.records);

  console.log(`; DNS records for ${domain} (mail server ${plan.hostname})`);
  for (const record of plan.records) {
    if (record.name === `_dmarc.${domain}.` && plan.missingDkim) {
      console.log(`; DKIM: no keys yet; run \`yubin dkim generate ${domain}\` first, then run this command again.`);
    }
    console.log(`; ${record.purpose}`);
    console.log(zoneLine(record));
    if (record.name === `_mta-sts.${domain}.`) {
      console.log(`; Serve this policy at ${plan.mtaSts.policyUrl}`);
      console.log(`; (${plan.mtaSts.host} needs an A or CNAME record to a web server with a valid certificate for it;`);
      console.log('; keep mode: testing until TLS-RPT reports show no failures, then mode: enforce with a new id=):');
      for (const line of plan.mtaSts.policy.split(/\r?\n/).filter(Boolean)) console.log(`;   ${line}`);
    }
  }
}
