// How policy values are shown to admins.

import type { Policy, PolicyKey } from '../../config/schema.js';
import { formatSize } from '../../config/size.js';

/** The VALUE that removes a domain's or user's own setting, so the outer level applies. */
export const INHERIT = 'inherit';

export function describePolicyValue(key: PolicyKey, value: Policy[PolicyKey]): string {
  if (value === null) return 'none';
  if (key === 'quota' && typeof value === 'number') return `${value} (${formatSize(value)})`;
  return String(value);
}
