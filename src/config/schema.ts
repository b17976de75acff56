// The one place where every Yubin setting is defined, with its default and its meaning.
// The README's configuration reference is generated from this file (npm run docs:config)
// and a test fails when the two disagree. Nothing here reads files or the environment.

import net from 'node:net';
import { z } from 'zod';
import { parseSize, SizeError } from './size.js';
import { parseDuration, DurationError } from './duration.js';

/** A string or number read by `parse`; its error becomes a validation message. */
const parsedWith = <T>(parse: (value: string | number) => T) =>
  z.union([z.number(), z.string()]).transform((value, ctx) => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof SizeError || err instanceof DurationError ? err.message : String(err) });
      return z.NEVER;
    }
  });

/** A size in bytes, written as bytes or with K/M/G (binary multiples). */
const size = () => parsedWith(parseSize);

/** A duration in seconds, written as seconds or with s/m/h/d. */
const duration = () => parsedWith(parseDuration);

/** A size or "none" (no limit), which becomes null. */
const sizeOrNone = () => parsedWith((value) => (typeof value === 'string' && /^(none|unlimited)$/i.test(value.trim()) ? null : parseSize(value)));

/** "HOST:PORT" ("[::1]:25" for IPv6), or "" for "not listening". */
const listenAddress = () =>
  z
    .string()
    .refine((value) => value === '' || (/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/.test(value) && Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535), {
      message: 'expected HOST:PORT with a port up to 65535, e.g. 0.0.0.0:25 or [::]:25, or "" to disable',
    });

/** Days (a whole number, optionally with "d"), or "forever"/"never"/"none", which becomes null. */
const daysOrForever = () =>
  z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
    if (typeof value === 'number') return value;
    const text = value.trim().toLowerCase();
    if (/^(forever|never|none)$/.test(text)) return null;
    const match = /^(\d{1,6})\s*d?$/.exec(text);
    if (match) return Number(match[1]);
    ctx.addIssue({ code: 'custom', message: `expected a number of days or "forever", got "${value}"` });
    return z.NEVER;
  });

/** A share of the quota in percent ("90%", or 90), or "none", which becomes null. */
const percentOrNone = () =>
  z.union([z.number(), z.string()]).transform((value, ctx) => {
    if (typeof value === 'string' && /^(none|never|off)$/i.test(value.trim())) return null;
    const match = typeof value === 'number' ? [String(value), String(value)] : /^(\d{1,3}(?:\.\d+)?)\s*%?$/.exec(value.trim());
    const percent = match ? Number(match[1]) : Number.NaN;
    if (!Number.isFinite(percent) || percent <= 0 || percent > 100) {
      ctx.addIssue({ code: 'custom', message: `expected a share of the quota between 1% and 100%, e.g. "90%", or "none", got "${value}"` });
      return z.NEVER;
    }
    return percent;
  });

/** Parses "80%,90%,100%" (quota warning thresholds) into ascending percentages; throws when malformed. */
export function parseThresholds(value: string): number[] {
  const shares = value
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const match = /^(\d{1,3}(?:\.\d+)?)\s*%?$/.exec(part);
      const percent = match ? Number(match[1]) : Number.NaN;
      if (!(percent > 0 && percent <= 100)) throw new Error(`expected shares of the quota like "80%,90%,100%", got "${part}"`);
      return percent;
    });
  return [...new Set(shares)].sort((a, b) => a - b);
}

/** Parses "5m,10m,1h" (the queue's waits between attempts) into seconds; throws when malformed. */
export function parseRetrySchedule(value: string): number[] {
  const waits = value.split(',').map((part) => part.trim()).filter((part) => part !== '').map((part) => parseDuration(part));
  if (waits.length === 0) throw new Error('expected at least one wait, e.g. "5m,10m,20m,40m,1h"');
  if (waits.some((seconds) => seconds < 1)) throw new Error('every wait must be at least 1 second');
  return waits;
}

/** Parses "Archive/Old=365,Newsletters=14" (mailbox name = days); throws on a malformed entry. */
export function parseMailboxRetention(value: string): Array<{ mailbox: string; days: number }> {
  const entries: Array<{ mailbox: string; days: number }> = [];
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.lastIndexOf('=');
    const mailbox = eq > 0 ? part.slice(0, eq).trim() : '';
    const days = eq > 0 ? part.slice(eq + 1).trim().replace(/d$/i, '') : '';
    if (!mailbox || !/^\d{1,6}$/.test(days)) throw new Error(`expected MAILBOX=DAYS[,MAILBOX=DAYS...], e.g. "Archive/Old=365,Newsletters=14", got "${part.trim()}"`);
    entries.push({ mailbox, days: Number(days) });
  }
  return entries;
}

export const OVER_QUOTA_POLICIES = ['defer', 'reject', 'hold'] as const;
export const LOCALES = ['en', 'ja'] as const;

/**
 * Policy settings: set globally here, overridden per domain (`yubin domain set`) and per user
 * (`yubin user set`). A user's setting beats the domain's, which beats this file.
 */
export const policySchema = z.object({
  quota: sizeOrNone()
    .prefault('1G')
    .describe('Mailbox capacity per user in bytes (K/M/G accepted), over all mailboxes, attachments and Trash included; "none" for no limit.'),
  quota_messages: z
    .union([z.number().int().nonnegative(), z.string()])
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      if (/^(none|unlimited)$/i.test(value.trim())) return null;
      if (/^\d+$/.test(value.trim())) return Number(value.trim());
      ctx.addIssue({ code: 'custom', message: `expected a message count or "none", got "${value}"` });
      return z.NEVER;
    })
    .prefault('none')
    .describe('Maximum number of messages per user, over all mailboxes; "none" for no limit.'),
  over_quota: z
    .enum(OVER_QUOTA_POLICIES)
    .default('defer')
    .describe(
      'What the MX answers when a message does not fit: "defer" replies 452 4.2.2 so the sending server retries later; "reject" replies 552 5.2.2 and the sender gets a bounce at once; "hold" accepts it up to quota_grace over the quota, into the INBOX, and tells the user at once (beyond the grace it defers). In every case the user is told what they missed.',
    ),
  quota_grace: percentOrNone()
    .prefault('10%')
    .describe('With over_quota = "hold": how far over the quota mail is still accepted, as a share of the quota (e.g. "10%"); "none" holds nothing.'),
  quota_warnings: z
    .string()
    .superRefine((value, ctx) => {
      try {
        parseThresholds(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .default('80%,90%,100%')
    .describe('Usage levels (shares of the byte or message quota) at which the user gets one warning in their INBOX: what fills the mailbox and how to free room. No repeat until usage drops below the level and crosses it again; "" sends none.'),
  locale: z
    .enum(LOCALES)
    .default('en')
    .describe('Language of the texts Yubin writes to people (reply texts, notices): "en" or "ja".'),
  'retention.trash': daysOrForever()
    .prefault(30)
    .describe('Messages in the Trash mailbox (special use \\Trash) are removed this many days after their internal date; "forever" keeps them.'),
  'retention.junk': daysOrForever()
    .prefault(30)
    .describe('Messages in the Junk mailbox (special use \\Junk) are removed this many days after their internal date; "forever" keeps them.'),
  'retention.mailboxes': z
    .string()
    .superRefine((value, ctx) => {
      try {
        parseMailboxRetention(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .default('')
    .describe('Retention of named mailboxes, as MAILBOX=DAYS separated by commas, e.g. "Archive/Old=365,Newsletters=14": messages are removed that many days after their internal date; "" for none.'),
  'pop3.keep_after_retrieval': daysOrForever()
    .prefault('forever')
    .describe('POP3 "leave on server for N days": a message retrieved over POP3 is removed from INBOX this many days after its first retrieval; "forever" keeps it. Advertised as CAPA EXPIRE (RFC 2449 §6.7).'),
  'pop3.expire_when_usage_above': percentOrNone()
    .prefault('none')
    .describe('Safety valve: when usage passes this share of the quota (e.g. "90%"), INBOX messages already retrieved over POP3 are removed, oldest retrieval first, until usage is below it; never a message no client has retrieved. "none" turns it off.'),
});
export type Policy = z.output<typeof policySchema>;
export type PolicyKey = keyof Policy;
export const POLICY_KEYS = Object.keys(policySchema.shape) as PolicyKey[];

export const configSchema = z.object({
  hostname: z
    .string()
    .default('')
    .describe('The name this server gives itself in greetings and Received headers; empty means the machine\'s host name.'),
  listeners: z
    .object({
      smtp: listenAddress().default('127.0.0.1:2525').describe('MX listener (SMTP, RFC 5321): receives mail for local domains, no AUTH. Production: 0.0.0.0:25.'),
      submission: listenAddress().default('').describe('Submission with STARTTLS (RFC 6409): authenticated users hand in mail; AUTH only after STARTTLS. Production: 0.0.0.0:587.'),
      submissions: listenAddress().default('').describe('Submission over implicit TLS (RFC 8314). Production: 0.0.0.0:465.'),
      imap: listenAddress().default('127.0.0.1:2143').describe('IMAP (RFC 9051) with STARTTLS. Production: 0.0.0.0:143.'),
      imaps: listenAddress().default('').describe('IMAP over implicit TLS (RFC 8314). Production: 0.0.0.0:993.'),
      pop3: listenAddress().default('127.0.0.1:2110').describe('POP3 (RFC 1939) with STLS. Production: 0.0.0.0:110.'),
      pop3s: listenAddress().default('').describe('POP3 over implicit TLS (RFC 8314). Production: 0.0.0.0:995.'),
      http: listenAddress().default('').describe('HTTP (admin, portal, file transfer). Production: 0.0.0.0:8080. Not available in this version.'),
    })
    .prefault({}),
  tls: z
    .object({
      cert: z.string().default('').describe('PEM certificate chain for STARTTLS and implicit TLS; empty: a self-signed one is generated into DATA/tls/ on first run.'),
      key: z.string().default('').describe('PEM private key matching tls.cert.'),
    })
    .prefault({}),
  smtp: z
    .object({
      max_message_size: size().prefault('25M').describe('Largest message accepted, announced as SIZE in EHLO (RFC 1870); larger ones get 552 5.3.4 at MAIL FROM or at end of data.'),
      max_recipients: z.number().int().positive().default(100).describe('Recipients per message; further RCPT commands get 452 4.5.3 (RFC 5321 §4.5.3.1.8 requires at least 100).'),
      max_line_length: z.number().int().min(512).default(4096).describe('Longest command line in bytes (RFC 5321 §4.5.3.1.4 requires at least 512); longer ones get 421 and the connection is closed.'),
      max_connections: z.number().int().positive().default(1000).describe('Simultaneous SMTP connections in total; further ones get 421 4.7.0.'),
      max_connections_per_ip: z.number().int().positive().default(20).describe('Simultaneous SMTP connections from one IP address; further ones get 421 4.7.0.'),
      idle_timeout: duration().prefault('5m').describe('A connection silent this long is closed with 421 (RFC 5321 §4.5.3.2.7 suggests 5 minutes).'),
      shutdown_grace: duration().prefault('30s').describe('On SIGTERM, how long messages still being received may take to arrive; after that their senders get 421 4.3.2 and retry later. Messages already being stored are always finished.'),
      data_timeout: duration().prefault('10m').describe('Longest time a client may take to send one message after DATA; then 421 4.4.2 and nothing is stored.'),
      max_header_size: size().prefault('1M').describe('Largest header section of a message (and of each MIME part); more is refused at end of data with 552 5.3.4.'),
      max_mime_depth: z.number().int().positive().default(100).describe('Deepest MIME nesting accepted; deeper messages are refused with 554 5.6.0.'),
      max_mime_parts: z.number().int().positive().default(10000).describe('Most MIME parts in one message; more are refused with 554 5.6.0.'),
      max_hops: z.number().int().positive().default(50).describe('Most Received: header fields a message may arrive with; more means a mail loop (RFC 5321 §6.3), such as two aliases forwarding to each other, and the message is refused with 554 5.4.6.'),
      check_sender_auth: z.boolean().default(true).describe('Check SPF, DKIM, DMARC and ARC of mail arriving at the MX and record the result in an Authentication-Results header (RFC 8601).'),
      dmarc_reject: z.boolean().default(true).describe('Refuse with 550 5.7.1 mail that fails DMARC when the sender\'s domain publishes p=reject (RFC 7489 §6.7); off: accept it and only record the result.'),
      reverse_dns: z.boolean().default(false).describe('Look up the client\'s host name (PTR) for the Received header; off by default so that a slow resolver never delays greetings.'),
    })
    .prefault({}),
  imap: z
    .object({
      max_line_length: z.number().int().min(1000).default(65536).describe('Longest command line in bytes (literals aside); longer ones close the connection with BYE.'),
      max_literal: size().prefault('25M').describe('Largest literal, announced as APPENDLIMIT (RFC 7889); larger APPENDs get NO [TOOBIG] before anything is buffered.'),
      max_command_size: size().prefault('26M').describe('Largest whole command (lines and literals).'),
      max_connections: z.number().int().positive().default(5000).describe('Simultaneous IMAP connections in total.'),
      max_connections_per_ip: z.number().int().positive().default(50).describe('Simultaneous IMAP connections from one IP address.'),
      idle_timeout: duration().prefault('30m').describe('An authenticated connection silent this long is closed (RFC 9051 §5.4: at least 30 minutes); IDLE connections are re-checked likewise.'),
      login_timeout: duration().prefault('60s').describe('A connection that has not authenticated within this time is closed.'),
      max_mailbox_name: z.number().int().min(64).default(1000).describe('Longest mailbox name in bytes (UTF-8), hierarchy included.'),
      max_mailbox_depth: z.number().int().min(1).default(32).describe('Most levels of mailbox hierarchy ("a/b/c" is 3).'),
      max_mailboxes: z.number().int().positive().default(10000).describe('Most mailboxes per account; CREATE beyond it gets NO [LIMIT].'),
      protect_special_use: z.boolean().default(true).describe('Refuse DELETE and RENAME of mailboxes with a special-use role (INBOX, Sent, Drafts, Trash, Junk, Archive).'),
      snapshot_min_messages: z.number().int().min(0).default(1000).describe('Mailboxes with at least this many messages keep their message list in memory after a SELECT, shared by every session and brought up to date from the change log at the next SELECT (a 100,000-message SELECT then takes milliseconds instead of most of a second). Smaller mailboxes are read whole at each SELECT.'),
      snapshot_max_messages: z.number().int().min(0).default(250000).describe('At most this many messages kept in those shared lists together (about 250 bytes each); the least recently selected mailbox goes first. 0 keeps none.'),
    })
    .prefault({}),
  pop3: z
    .object({
      max_line_length: z
        .number()
        .int()
        .min(512)
        .default(4096)
        .describe(
          'Longest command line in bytes (RFC 2449 §4 limits commands to 255 octets; SASL responses and passwords may be longer); a longer line gets -ERR and is skipped, and one beyond 16 times this (at least 64K) closes the connection.',
        ),
      max_connections: z.number().int().positive().default(1000).describe('Simultaneous POP3 connections in total; further ones get -ERR [SYS/TEMP] and are closed.'),
      max_connections_per_ip: z.number().int().positive().default(50).describe('Simultaneous POP3 connections from one IP address; further ones get -ERR [SYS/TEMP] and are closed.'),
      idle_timeout: duration()
        .refine((seconds) => seconds >= 600, { message: 'must be at least 10 minutes (RFC 1939 §3)' })
        .prefault('10m')
        .describe('A connection silent this long is closed without deleting anything (RFC 1939 §3: at least 10 minutes).'),
      login_timeout: duration().prefault('60s').describe('A connection that has not authenticated within this time is closed (a deadline, not an inactivity timer).'),
    })
    .prefault({}),
  auth: z
    .object({
      plaintext: z
        .enum(['loopback', 'always', 'never'])
        .default('loopback')
        .describe('Where passwords may be sent without TLS: "loopback" (only from 127.0.0.0/8 and ::1), "always", or "never". Elsewhere IMAP advertises LOGINDISABLED until STARTTLS.'),
      failure_delay: duration().prefault('2s').describe('Delay before answering a failed authentication; doubled for each further failure from the same IP or for the same account (up to 30 s).'),
      failure_window: duration().prefault('15m').describe('How long failed authentications are remembered for throttling.'),
      verified_cache: duration().prefault('15m').describe('How long a successful login is remembered, so that the same user with the same password is checked again with one keyed digest (HMAC) instead of a full scrypt hash (about 100 ms of CPU); mail clients log in many times an hour. A changed password is never matched by an old entry; failures are never remembered. 0 hashes every login.'),
    })
    .prefault({}),
  dns: z
    .object({
      servers: z
        .array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+|[0-9a-fA-F:]+)(:\d{1,5})?$/, 'expected an IP address, optionally with :PORT'))
        .default([])
        .describe('DNS servers for MX, A/AAAA, SPF, DKIM and DMARC lookups, as "IP" or "IP:PORT" ("[::1]:53" for IPv6); empty: the system\'s resolvers (/etc/resolv.conf). `yubin serve --dns HOST:PORT` sets one.'),
      timeout: duration().prefault('10s').describe('How long one DNS query may take before it counts as a temporary failure.'),
      cache: duration().prefault('1m').describe('How long DNS answers (and "no such name" answers) are reused before being asked again; temporary failures never are. 0 turns the cache off (Yubin then relies on the resolver\'s own cache).'),
    })
    .prefault({}),
  queue: z
    .object({
      retry_schedule: z
        .string()
        .superRefine((value, ctx) => {
          try {
            parseRetrySchedule(value);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
          }
        })
        .default('5m,10m,20m,40m,1h')
        .describe('Waits between delivery attempts after a temporary failure (4xx reply, no connection), separated by commas; the last one repeats until the message expires (RFC 5321 §4.5.4.1).'),
      lifetime: duration().prefault('5d').describe('How long a message is retried before it is bounced to its sender (RFC 5321 §4.5.4.1 suggests 4-5 days).'),
      delay_notice: duration().prefault('4h').describe('After this long undelivered, the sender gets one delay notice (RFC 3464 Action: delayed) where NOTIFY allows it; 0 sends none.'),
      remote_port: z.number().int().min(1).max(65535).default(25).describe('TCP port of remote mail servers (25; another port only for tests and special setups).'),
      smarthost: z
        .string()
        .refine((value) => value === '' || /^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+)(:\d{1,5})?$/.test(value), { message: 'expected HOST or HOST:PORT, or ""' })
        .default('')
        .describe('Send all remote mail through this relay (HOST or HOST:PORT; "[IP]" skips the MX lookup) instead of looking up MX records; "" for direct delivery.'),
      transports: z
        .record(z.string(), z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:\[\]]+)(:\d{1,5})?$/, 'expected HOST or HOST:PORT'))
        .default({})
        .describe('Per-domain routes, as a [queue.transports] table of DOMAIN = "HOST[:PORT]": mail for that domain goes there instead of its MX.'),
      source_address: z
        .string()
        .refine((value) => value.split(',').every((part) => part.trim() === '' || net.isIP(part.trim()) !== 0), { message: 'expected IP addresses separated by commas, or ""' })
        .default('')
        .describe('Local IP address(es) outbound connections come from, one IPv4 and/or one IPv6 separated by a comma; "" lets the system choose. Set it when the host has several addresses and SPF or reverse DNS names one of them.'),
      max_per_destination: z.number().int().positive().default(4).describe('Simultaneous connections to one destination host.'),
      max_connections: z.number().int().positive().default(50).describe('Simultaneous outbound connections in total.'),
      connection_reuse: z.boolean().default(true).describe('Keep a connection to a destination open after a message and send the next one over it (RSET between messages).'),
      max_messages_per_connection: z.number().int().positive().default(100).describe('Messages sent over one outbound connection before it is closed.'),
      connect_timeout: duration().prefault('30s').describe('How long to wait for a remote server to accept the connection and greet.'),
      command_timeout: duration().prefault('5m').describe('How long to wait for a remote server\'s reply to one command (RFC 5321 §4.5.3.2 suggests 5 minutes; 10 for the end of data).'),
      poll_interval: duration().prefault('1s').describe('How often the queue looks for due messages (new mail is sent at once regardless).'),
    })
    .prefault({}),
  dkim: z
    .object({
      sign: z.boolean().default(true).describe('Sign mail from local domains with their DKIM key (`yubin dkim generate DOMAIN`) before it leaves; a domain without a key is sent unsigned.'),
    })
    .prefault({}),
  policy: policySchema.prefault({}),
  storage: z
    .object({
      backend: z.enum(['sqlite']).default('sqlite').describe('Storage backend: "sqlite" (embedded: SQLite in WAL mode plus files, no setup).'),
      path: z.string().default('').describe('Directory of the database and message files; empty means the data directory.'),
      fsync: z.boolean().default(true).describe('Flush message files and commits to disk before replying 250. Turn off only for throwaway test servers.'),
      max_batch: z.number().int().positive().default(256).describe('Most deliveries committed together in one group commit.'),
      inline_max: size().prefault('64K').describe('Message bodies up to this size are kept inside the database, made durable by the delivery\'s commit; larger ones are files under blobs/ (fsynced before the commit). 0 keeps every body in a file.'),
      dedup_min: size().prefault('32K').describe('MIME parts (attachments) whose body is at least this large are split out at delivery and stored once, however many messages carry the same bytes; messages are reassembled byte for byte when read, and quotas still count each message whole. 0 turns deduplication of attachments off (identical whole messages are still stored once).'),
    })
    .prefault({}),
  maintenance: z
    .object({
      interval: duration()
        .refine((seconds) => seconds === 0 || seconds >= 1, { message: 'must be 0 (off) or at least 1 second' })
        .prefault('1h')
        .describe('How often the server runs the scheduled jobs (retention: Trash/Junk expiry, mailbox retention, POP3 keep-after-retrieval and the safety valve); 0 turns the schedule off (yubin maintenance run still works).'),
    })
    .prefault({}),
  log: z
    .object({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Least severe structured log level written (JSON lines on standard error).'),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
