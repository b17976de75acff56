// The DNS records an admin publishes for a local domain: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT.
// Built as data here; `yubin dns-records` prints them (zone-file style or JSON).

import type { DkimKey } from '../store/types.js';
import { dkimRecordName, dkimTxtRecord } from './keys.js';

export interface DnsRecord {
  /** Owner name, fully qualified with the trailing dot: "example.com.", "_dmarc.example.com.". */
  name: string;
  type: 'MX' | 'TXT';
  /** MX: "10 mx.example.com."; TXT: the text, unquoted and unsplit. */
  value: string;
  /** One line: what the record is for. */
  purpose: string;
}

export interface DnsRecordsPlan {
  domain: string;
  hostname: string;
  records: DnsRecord[];
  /** The MTA-STS policy file to serve at policyUrl (RFC 8461 §3.2). */
  mtaSts: { policyUrl: string; policy: string; host: string };
  /** Domains without DKIM keys: nothing to publish yet, `yubin dkim generate DOMAIN` first. */
  missingDkim: boolean;
}

/** RFC 8461 §3.2: max_age in seconds (one week; up to 31557600 once the policy is stable). */
export const MTA_STS_MAX_AGE = 604800;

export function buildDnsRecords(domain: string, hostname: string, keys: DkimKey[], now: Date = new Date()): DnsRecordsPlan {
  const host = hostname.replace(/\.$/, '').toLowerCase();
  const records: DnsRecord[] = [
    {
      name: `${domain}.`,
      type: 'MX',
      value: `10 ${host}.`,
      purpose: host.includes('.')
        ? `Mail for ${domain} is delivered to this server (${host} needs an A/AAAA record).`
        : `Mail for ${domain} is delivered to this server; "${host}" is not a full DNS name: set hostname in yubin.toml (e.g. mx.${domain}).`,
    },
    {
      name: `${domain}.`,
      type: 'TXT',
      value: 'v=spf1 mx -all',
      purpose: `SPF (RFC 7208): only the MX hosts may send as @${domain}; add ip4:/ip6: of the sending host if mail leaves from another address.`,
    },
  ];
  for (const key of [...keys].sort((a, b) => a.selector.localeCompare(b.selector))) {
    records.push({
      name: `${dkimRecordName(key)}.`,
      type: 'TXT',
      value: dkimTxtRecord(key),
      purpose: `DKIM (RFC 6376${key.algorithm === 'ed25519' ? ', RFC 8463' : ''}): the ${key.algorithm === 'rsa' ? 'RSA' : 'Ed25519'} public key of selector "${key.selector}" that verifies Yubin's signatures.`,
    });
  }
  records.push(
    {
      name: `_dmarc.${domain}.`,
      type: 'TXT',
      value: `v=DMARC1; p=quarantine; rua=mailto:postmaster@${domain}; adkim=r; aspf=r`,
      purpose: `DMARC (RFC 7489): mail that fails both SPF and DKIM alignment goes to spam (quarantine: nothing is lost while you read the reports); p=none while testing, p=reject once reports show only your own mail. postmaster@${domain} must exist (user or alias).`,
    },
    {
      name: `_mta-sts.${domain}.`,
      type: 'TXT',
      value: `v=STSv1; id=${stsId(now)}`,
      purpose: `MTA-STS (RFC 8461): senders fetch the policy below over HTTPS; change id= whenever the policy changes.`,
    },
    {
      name: `_smtp._tls.${domain}.`,
      type: 'TXT',
      value: `v=TLSRPTv1; rua=mailto:postmaster@${domain}`,
      purpose: `TLS-RPT (RFC 8460): senders report TLS delivery failures to postmaster@${domain}.`,
    },
  );
  const policy = ['version: STSv1', 'mode: testing', `mx: ${host}`, `max_age: ${MTA_STS_MAX_AGE}`].join('\r\n') + '\r\n';
  return {
    domain,
    hostname: host,
    records,
    mtaSts: { policyUrl: `https://mta-sts.${domain}/.well-known/mta-sts.txt`, policy, host: `mta-sts.${domain}` },
    missingDkim: keys.length === 0,
  };
}

/** YYYYMMDDhhmmss in UTC: 1-32 alphanumerics (RFC 8461 §3.1), new every time the policy may change. */
function stsId(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * A TXT value as zone files write it: quoted strings of at most 255 octets each (RFC 1035 §3.3.14),
 * separated by spaces; receivers concatenate them (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
 */
export function quoteTxt(value: string): string {
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += 255) chunks.push(value.slice(i, i + 255));
  if (chunks.length === 0) chunks.push('');
  return chunks.map((c) => `"${c.replace(/["\\]/g, '\\$&')}"`).join(' ');
}

/** One zone-file line: "NAME IN TYPE VALUE". */
export function zoneLine(record: DnsRecord): string {
  return `${record.name} IN ${record.type} ${record.type === 'TXT' ? quoteTxt(record.value) : record.value}`;
}
