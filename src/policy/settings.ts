// Per-domain and per-user policy: a user's setting beats the domain's, which beats the config
// file. Values are stored as the admin typed them and validated against the config schema.

import { POLICY_KEYS, policySchema, type Config, type Policy, type PolicyKey } from '../config/schema.js';
import type { Account, Domain, QuotaLimit, RawSettings, Store } from '../store/types.js';

export class SettingError extends Error {}

export function isPolicyKey(key: string): key is PolicyKey {
  return (POLICY_KEYS as string[]).includes(key);
}

/** Validates one setting as typed by an admin ("25M", "reject", "ja"); returns the parsed value. */
export function parsePolicyValue(key: string, value: string): Policy[PolicyKey] {
  if (!isPolicyKey(key)) throw new SettingError(`unknown setting "${key}" (known: ${POLICY_KEYS.join(', ')})`);
  const field = policySchema.shape[key];
  const result = field.safeParse(value);
  if (!result.success) throw new SettingError(`invalid value for ${key}: ${result.error.issues[0]?.message ?? value}`);
  return result.data as Policy[PolicyKey];
}

function overlay(base: Policy, raw: RawSettings): Policy {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || !isPolicyKey(key)) continue;
    try {
      merged[key] = parsePolicyValue(key, value);
    } catch {
      // a value stored by an older version that no longer validates: the outer level applies
    }
  }
  return merged as Policy;
}

export function effectivePolicy(config: Config, domain: Pick<Domain, 'settings'> | null, account: Pick<Account, 'settings'> | null): Policy {
  let policy = config.policy;
  if (domain) policy = overlay(policy, domain.settings);
  if (account) policy = overlay(policy, account.settings);
  return policy;
}

/** Where the effective value of each key comes from, for `yubin user get`. */
export function policySources(domain: Pick<Domain, 'settings'> | null, account: Pick<Account, 'settings'> | null): Record<PolicyKey, 'user' | 'domain' | 'config'> {
  const sources = {} as Record<PolicyKey, 'user' | 'domain' | 'config'>;
  for (const key of POLICY_KEYS) {
    sources[key] = account?.settings[key] !== undefined ? 'user' : domain?.settings[key] !== undefined ? 'domain' : 'config';
  }
  return sources;
}

/**
 * An account's policy as it stands now: the account and its domain are read afresh, so that a
 * CLI change applies to the next message or command without a restart or a new login.
 */
export async function currentPolicy(store: Store, config: Config, account: Account): Promise<Policy> {
  const fresh = (await store.getAccountById(account.id)) ?? account;
  // An account's address is always in its domain (addAccount derives one from the other).
  const domain = await store.getDomain(fresh.address.slice(fresh.address.lastIndexOf('@') + 1));
  return effectivePolicy(config, domain, fresh);
}

/** The quota limits a policy sets (null: no limit). */
export function quotaLimitOf(policy: Policy): QuotaLimit {
  return { bytes: policy.quota, messages: policy.quota_messages };
}

/**
 * The limits mail is accepted up to: the quota, or with over_quota = "hold" the quota plus
 * quota_grace (a share of it), so that a partner's mail is not lost while the user cleans up.
 */
export function acceptancePolicy(policy: Policy): Policy {
  if (policy.over_quota !== 'hold' || policy.quota_grace === null) return policy;
  const grace = 1 + policy.quota_grace / 100;
  return {
    ...policy,
    quota: policy.quota === null ? null : Math.floor(policy.quota * grace),
    quota_messages: policy.quota_messages === null ? null : Math.floor(policy.quota_messages * grace),
  };
}
