// The JSON written by `yubin usage ADDRESS --json`, `yubin usage --over PERCENT --json` and
// `yubin cleanup ... --json`: the field names here are a public interface (scripts and monitoring
// read them), documented in docs/usage-report.md. Types only; nothing here computes or reads.
//
// Conventions: sizes are octets as stored (the whole message: Yubin's Return-Path/Delivered-To
// lines plus the message as received), the same figures quotas count and `yubin user list`
// shows; dates are ISO-8601 strings in UTC; percentages are rounded to one decimal.

/** Bumped when a field changes meaning or disappears (adding a field does not bump it). */
export const USAGE_REPORT_VERSION = 1;

/** A number of messages and their size. */
export interface Tally {
  /** Number of messages. */
  messages: number;
  /** Sum of their sizes in octets. */
  bytes: number;
}

/** `yubin usage ADDRESS --json`: the storage report of one user. */
export interface UsageReport {
  /** Always USAGE_REPORT_VERSION (1). */
  version: number;
  /** The user's address. */
  address: string;
  /** The instant the report is made as of (`--now`, else the current time): what ages are measured from. */
  now: string;
  /** What the quota counts: the store's usage counters when the report started (Store.getUsage). */
  usage: Tally;
  /** The user's effective quota (user setting, else domain, else configuration). */
  quota: {
    /** Byte limit (`quota`), or null for no limit. */
    bytes: number | null;
    /** Message limit (`quota_messages`), or null for no limit. */
    messages: number | null;
    /** usage.bytes / quota.bytes × 100, or null without a byte limit (a limit of 0 reads 100 once anything is stored). */
    bytesPercent: number | null;
    /** usage.messages / quota.messages × 100, or null without a message limit. */
    messagesPercent: number | null;
  };
  /** Every mailbox of the user, including empty ones, largest first (then by name). */
  mailboxes: MailboxUsage[];
  /** Messages by the age of their internal date (arrival, or the date given to IMAP APPEND) at `now`. */
  age: {
    /** Younger than 30 days (and internal dates after `now`). */
    under30Days: Tally;
    /** 30 days old or more, but younger than 365 days. */
    from30To365Days: Tally;
    /** 365 days old or more. */
    over365Days: Tally;
  };
  /** Attachments: MIME parts with Content-Disposition: attachment, or with a file name (disposition `filename` or Content-Type `name`). */
  attachments: {
    /** Their encoded size: the part bodies as stored (base64 text and line ends), without the parts' MIME header lines. */
    bytes: number;
    /** Number of such parts (an attached message counts once; its own attachments are inside it). */
    parts: number;
    /** Number of messages with at least one. */
    messages: number;
  };
  /** The largest messages, largest first (ties: older first), at most `--top` (default 20). */
  largest: LargeMessage[];
  /** Senders by the bytes of their messages, most first (ties: more messages, then address, the null address last), at most `--top` (default 20). */
  senders: SenderUsage[];
  /** POP3: what POP3 clients have downloaded (RFC 1939 RETR, or TOP of the whole message). */
  pop3: {
    /** Messages still stored (in any mailbox) that a POP3 client has retrieved at least once: the "leave a copy on the server" load. */
    retrievedOnServer: Tally;
    /** INBOX messages no POP3 client has retrieved yet. */
    notRetrieved: Tally;
    /** Messages removed by retention after their retrieval (reasons pop3-kept and pop3-usage), since the log began. */
    removedAfterRetrieval: Tally;
    /** The policy `pop3.keep_after_retrieval` in days, or null ("forever"). */
    keepAfterRetrievalDays: number | null;
  };
  /**
   * Messages removed by retention jobs and by `yubin cleanup`, in total since the log began
   * (retention_log; the store keeps no per-period totals).
   */
  removals: Tally & {
    /** Per reason: "trash", "junk", "mailbox", "pop3-kept", "pop3-usage" (retention) and "cleanup" (yubin cleanup). */
    byReason: Record<string, Tally>;
  };
  /** What the scan read. */
  scanned: {
    /** Messages read and counted in mailboxes, age, attachments, largest, senders and pop3. */
    messages: number;
    /** Their total size (equals usage.bytes unless mail arrived or went during the scan). */
    bytes: number;
    /** Messages listed but gone before they could be read (removed during the scan); not counted. */
    vanished: number;
  };
}

export interface MailboxUsage {
  /** Mailbox name, "/" as the hierarchy separator. */
  name: string;
  /** RFC 6154 special use ("\\Trash", ...), or null. */
  specialUse: string | null;
  messages: number;
  /** Sum of the sizes of its messages. */
  bytes: number;
}

export interface LargeMessage {
  mailbox: string;
  uid: number;
  size: number;
  /** Internal date (ISO-8601). */
  internalDate: string;
  /** Sender address (see SenderUsage.address), or null when the message names none. */
  sender: string | null;
  /** Subject with RFC 2047 encoded-words decoded (at most 1000 characters), or null when there is none. */
  subject: string | null;
}

export interface SenderUsage {
  /**
   * The first address in From, else the Return-Path (envelope sender), lower case; null for
   * messages that name neither (they are grouped together).
   */
  address: string | null;
  messages: number;
  bytes: number;
  /** True when any of these messages carries List-Unsubscribe, List-Id or Precedence: bulk, list or junk. */
  bulk: boolean;
  /** How many of these messages carry them. */
  bulkMessages: number;
}

/** `yubin usage --over PERCENT --json`: users above a share of their quota. */
export interface OverQuotaReport {
  /** Always USAGE_REPORT_VERSION (1). */
  version: number;
  /** The threshold given, in percent. Users are listed when their share is strictly above it. */
  threshold: number;
  /** Sorted by share, highest first (ties: by address). Users without any quota are never listed. */
  users: OverQuotaRow[];
}

export interface OverQuotaRow {
  address: string;
  /** Bytes used (the store's usage counter). */
  used: number;
  /** Byte quota, or null without one. */
  quota: number | null;
  /** used / quota × 100, or null without a byte quota. */
  percent: number | null;
  /** Messages stored. */
  messages: number;
  /** Message quota, or null without one. */
  quotaMessages: number | null;
  /** messages / quotaMessages × 100, or null without a message quota. */
  messagesPercent: number | null;
  /** The larger of percent and messagesPercent: compared with the threshold (unrounded) and sorted by. */
  share: number;
}

/** `yubin cleanup ... --json`. */
export interface CleanupReport {
  /** Always USAGE_REPORT_VERSION (1). */
  version: number;
  address: string;
  /** The instant ages are measured from (`--now`, else the current time). */
  now: string;
  /** True for --dry-run: nothing was changed, `removed` is what a real run would remove. */
  dryRun: boolean;
  /** The selectors given (null / false: not given). All of them must match. */
  selectors: {
    mailbox: string | null;
    /** --older-than in seconds: internal date more than this long before `now`. */
    olderThanSeconds: number | null;
    bulk: boolean;
    /** --from as given, lower case ("user@domain" or "@domain"). */
    from: string | null;
    /** --larger-than in octets: size strictly above it. */
    largerThan: number | null;
  };
  /** Each message removed (or, in a dry run, that would be), by mailbox then UID. */
  removed: CleanupItem[];
  /** Totals of `removed`. */
  freed: Tally;
  /** The user's usage before the run. */
  usageBefore: Tally;
  /** After the run (a dry run: usageBefore minus freed). */
  usageAfter: Tally;
  /** The byte quota, or null without one (for the "of N" in the text output). */
  quota: number | null;
}

export interface CleanupItem {
  mailbox: string;
  uid: number;
  /** Internal date (ISO-8601). */
  internalDate: string;
  size: number;
  /** As SenderUsage.address. */
  sender: string | null;
  /** As LargeMessage.subject. */
  subject: string | null;
  /** Whether the message counted as bulk (List-Unsubscribe, List-Id, Precedence). */
  bulk: boolean;
}
