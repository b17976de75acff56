// Reading and writing single header fields of a message: field values by name, the From:
// addresses, the decoded Subject, and the RFC 5322 date format. Pure functions on bytes.

import addressparser from 'nodemailer/lib/addressparser';
import { splitHeaderSection } from './structure.js';
import { decodeEncodedWords } from './message-parts.js';

/** The unfolded values of every field named `name` (case-insensitive), in order. */
export function headerValues(message: Buffer, name: string): string[] {
  const wanted = name.toLowerCase();
  return splitHeaderSection(message)
    .fields.filter((f) => f.name.toLowerCase() === wanted)
    .map((f) => f.value);
}

type Parsed = { address?: string; name?: string; group?: Parsed[] };

/** The addresses in every From: field (groups flattened), lower-cased; [] when there is none. */
export function fromAddresses(message: Buffer): string[] {
  const addresses: string[] = [];
  const walk = (list: Parsed[]) => {
    for (const entry of list) {
      if (entry.group) walk(entry.group);
      else if (entry.address) addresses.push(entry.address.toLowerCase());
    }
  };
  for (const value of headerValues(message, 'from')) walk(addressparser(value) as Parsed[]);
  return addresses;
}

/** The first Subject, RFC 2047 words decoded, at most `max` characters; null without one. */
export function decodedSubject(message: Buffer, max = 120): string | null {
  const [subject] = headerValues(message, 'subject');
  return subject === undefined ? null : decodeEncodedWords(subject).slice(0, max);
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

/** RFC 5322 §3.3 date-time in UTC: "Tue, 01 Dec 2026 18:05:00 +0000". */
export function rfc5322Date(d: Date): string {
  return (
    `${DAYS[d.getUTCDay()]}, ${pad2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`
  );
}
