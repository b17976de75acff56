// How policy values are shown to admins.

import { POLICY_KEYS, type Policy, type PolicyKey } from '../../config/schema.js';
import { formatSize } from '../../config/size.js';

/** The VALUE that removes a domain's or user's own setting, so the outer level applies. */
export const INHERIT = 'inherit';

/** Keys whose null means "keep forever" rather than "no limit". */
const FOREVER_KEYS: ReadonlySet<PolicyKey> = new Set(['retention.trash', 'retention.junk', 'pop3.keep_after_retrieval']);

export function describePolicyValue(key: PolicyKey, value: Policy[PolicyKey]): string {
  if (value === null) return FOREVER_KEYS.has(key) ? 'forever' : 'none';
  if (FOREVER_KEYS.has(key) && typeof value === 'number') return `${value} days`;
  if (key === 'pop3.expire_when_usage_above' && typeof value === 'number') return `${value}%`;
  if (value === '') return '""';
  if (key === 'quota' && typeof value === 'number') return `${value} (${formatSize(value)})`;
  return String(value);
}

/** Prints the effective policy (all keys with their source, or one key's raw value alone, for scripts). */
export function printPolicy(policy: Policy, sources: Record<PolicyKey, string>, key: PolicyKey | undefined, json: boolean | undefined): void {
  const keys = key ? [key] : POLICY_KEYS;
  if (json) {
    process.stdout.write(JSON.stringify(Object.fromEntries(keys.map((k) => [k, { value: policy[k], source: sources[k] }])), null, 2) + '\n');
    return;
  }
  for (const k of keys) console.log(key ? String(policy[k] ?? (FOREVER_KEYS.has(k) ? 'forever' : 'none')) : `${k} = ${describePolicyValue(k, policy[k])}\t(${sources[k]})`);
}
