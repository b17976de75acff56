// `yubin usage --over PERCENT`: which users are above a share of their byte or message quota.
// Pure: account figures and limits in, sorted rows out; reading accounts is ./collect.ts's job.

import { exactPercent, percentOf } from './tally.js';
import { USAGE_REPORT_VERSION, type OverQuotaReport, type OverQuotaRow } from './report.js';

export interface AccountQuotaFigures {
  address: string;
  used: number;
  messages: number;
  quota: number | null;
  quotaMessages: number | null;
}

/**
 * Users whose usage is strictly above `threshold` percent of their byte quota or of their message
 * quota (the larger share counts), highest share first, then by address. Users without any quota
 * are never listed. Shares are compared unrounded.
 */
export function overQuota(accounts: Iterable<AccountQuotaFigures>, threshold: number): OverQuotaReport {
  const rows: Array<{ row: OverQuotaRow; exact: number }> = [];
  for (const a of accounts) {
    if (a.quota === null && a.quotaMessages === null) continue;
    const bytesShare = a.quota === null ? -Infinity : exactPercent(a.used, a.quota);
    const messagesShare = a.quotaMessages === null ? -Infinity : exactPercent(a.messages, a.quotaMessages);
    const exact = Math.max(bytesShare, messagesShare);
    if (!(exact > threshold)) continue;
    rows.push({
      exact,
      row: {
        address: a.address,
        used: a.used,
        quota: a.quota,
        percent: percentOf(a.used, a.quota),
        messages: a.messages,
        quotaMessages: a.quotaMessages,
        messagesPercent: percentOf(a.messages, a.quotaMessages),
        share: Math.round(exact * 10) / 10,
      },
    });
  }
  rows.sort((x, y) => y.exact - x.exact || (x.row.address < y.row.address ? -1 : x.row.address > y.row.address ? 1 : 0));
  return { version: USAGE_REPORT_VERSION, threshold, users: rows.map((r) => r.row) };
}
