// Test messages, generated the same way for both servers: fixed-size messages (SMTP and POP3)
// and varied, deterministic ones (IMAP; the generator of bench/imap-bench.ts).

import crypto from 'node:crypto';

export const DOMAIN = 'bench.test';
export const PASSWORD = 'bench-password';
export const SENDER = 'bench@client.test';
/** In every 37th subject of the varied messages (SEARCH HEADER Subject). */
export const SUBJECT_WORD = 'invoice';

export function formatDate(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/**
 * Messages of exactly `size` bytes with CRLF line ends and a final CRLF: a fixed-length header
 * whose Message-ID numbers the message (no two identical, so nothing is deduplicated), then a
 * base64 body shared by all of them.
 */
export function fixedSizeFactory(size: number): (index: number, to: string) => Buffer {
  const runId = crypto.randomBytes(4).toString('hex');
  const head = (index: number, to: string) =>
    `From: <${SENDER}>\r\nTo: <${to}>\r\nSubject: bench message ${String(index).padStart(9, '0')}\r\n` +
    `Message-ID: <${runId}.${String(index).padStart(9, '0')}@client.test>\r\nDate: ${formatDate(new Date(0))}\r\n` +
    `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n`;
  // Recipients are userNN@ (the longest, user99@, sets the length; shorter ones are padded).
  const longest = `user99@${DOMAIN}`;
  const bodyLength = Math.max(80, size - head(0, longest).length);
  const random = crypto.randomBytes(Math.ceil((bodyLength * 3) / 4) + 3).toString('base64');
  let body = '';
  for (let offset = 0; body.length < bodyLength + 80; offset = (offset + 76) % (random.length - 76)) {
    body += random.slice(offset, offset + 76) + '\r\n';
  }
  // The tail of the lines, exactly bodyLength bytes, starting at a line start.
  let tail = body.slice(body.length - bodyLength);
  const firstBreak = tail.indexOf('\r\n');
  tail = 'x'.repeat(firstBreak) + tail.slice(firstBreak);
  const bodyBytes = Buffer.from(tail, 'latin1');
  return (index, to) => {
    let h = head(index, to);
    const pad = head(index, longest).length - h.length;
    if (pad > 0) h = h.replace('Subject: bench message', `Subject: bench message${' '.repeat(pad)}`);
    return Buffer.concat([Buffer.from(h, 'latin1'), bodyBytes]);
  };
}

/** A small deterministic PRNG (mulberry32), so that both servers get the same mailboxes. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'meeting project schedule budget review report draft update agenda summary customer order shipment ' +
  'release server network backup deploy question answer proposal contract team lunch travel weekend ' +
  'holiday photo garden recipe concert ticket flight hotel payment receipt account password reset ' +
  'newsletter discount offer subscription feedback survey design prototype launch roadmap quarter ' +
  'results figures analysis migration database storage cluster latency outage incident postmortem ' +
  'planning hiring interview candidate training workshop conference slides notes minutes follow ' +
  'reminder deadline friday monday morning evening tomorrow yesterday coffee kitchen office printer'
).split(' ');
const FIRST = 'Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy Rupert Sybil Trent Victor Walter Yuki'.split(' ');
const LAST = 'Smith Tanaka Mueller Rossi Dubois Novak Silva Kowalski Jensen Sato Garcia Okafor Nguyen Ivanova Brown'.split(' ');
const DOMAINS = 'example.com example.org mail.test corp.example lists.example.net shop.example'.split(' ');

export interface Varied {
  bytes: Buffer;
  date: Date;
  /** \Seen and/or \Flagged. */
  flags: string[];
  subjectWord: boolean;
}

/**
 * Message `index` (1-based) of a mailbox: headers, then text/plain (every 10th quoted-printable,
 * with an encoded-word subject) of about `size` bytes; every 37th subject holds SUBJECT_WORD.
 * `seenShare` of them carry \Seen, 5% \Flagged.
 */
export function variedMessage(random: () => number, index: number, to: string, size: number, seenShare: number): Varied {
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;
  const first = pick(FIRST);
  const last = pick(LAST);
  const domain = pick(DOMAINS);
  const subjectWords = Array.from({ length: 3 + Math.floor(random() * 5) }, () => pick(WORDS));
  const subjectWord = index % 37 === 0;
  if (subjectWord) subjectWords.splice(Math.floor(random() * subjectWords.length), 0, SUBJECT_WORD);
  const subject = (random() < 0.2 ? 'Re: ' : '') + subjectWords.join(' ');
  const date = new Date(Date.UTC(2024, 0, 1) + Math.floor(random() * 365 * 86400) * 1000);
  const qp = index % 10 === 0;
  const header =
    `From: "${first} ${last}" <${first.toLowerCase()}.${index % 97}@${domain}>\r\n` +
    `To: <${to}>\r\n` +
    `Subject: ${qp ? `=?UTF-8?Q?${subject.replace(/ /g, '_')}?=` : subject}\r\n` +
    `Date: ${formatDate(date)}\r\n` +
    `Message-ID: <${index}.${Math.floor(random() * 1e9)}@${domain}>\r\n` +
    `MIME-Version: 1.0\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\n` +
    `Content-Transfer-Encoding: ${qp ? 'quoted-printable' : '7bit'}\r\n\r\n`;
  const lines: string[] = [`Hello ${to.slice(0, to.indexOf('@'))},`, ''];
  let length = header.length + 20;
  while (length < size) {
    let line = Array.from({ length: 8 + Math.floor(random() * 4) }, () => pick(WORDS)).join(' ');
    if (qp) line = line.replace(/e/, '=C3=A9');
    lines.push(line);
    length += line.length + 2;
  }
  lines.push('', `-- ${first} ${last}`, '');
  const flags: string[] = [];
  if (random() < seenShare) flags.push('\\Seen');
  if (random() < 0.05) flags.push('\\Flagged');
  return { bytes: Buffer.from(header + lines.join('\r\n'), 'latin1'), date, flags, subjectWord };
}

/** A mailbox of `count` varied messages for `to`, the same for a given seed. */
export function* variedMailbox(seed: number, count: number, to: string, size: number, seenShare: number): Generator<Varied> {
  const random = prng(seed);
  for (let i = 1; i <= count; i++) yield variedMessage(random, i, to, size, seenShare);
}
