// The Store contract: everything Yubin keeps, in mail terms. Protocol code (SMTP, IMAP, POP3)
// talks only to this interface; it never sees SQL. Every method is async so that a
// networked backend (PostgreSQL) is a second implementation, not a rewrite.

import type { PolicyKey } from '../config/schema.js';
import type { Segment } from './dedup.js';

export type SpecialUse = '\\Inbox' | '\\Sent' | '\\Drafts' | '\\Trash' | '\\Junk' | '\\Archive';

/** The mailboxes every account is created with (RFC 6154 special-use roles). */
export const DEFAULT_MAILBOXES: ReadonlyArray<{ name: string; specialUse: SpecialUse }> = [
  { name: 'INBOX', specialUse: '\\Inbox' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Archive', specialUse: '\\Archive' },
];

/** Raw per-domain / per-user settings as stored: strings exactly as the admin gave them. */
export type RawSettings = Partial<Record<PolicyKey, string>>;

export interface Domain {
  id: number;
  name: string;
  createdAt: Date;
  settings: RawSettings;
}

export interface Account {
  id: number;
  address: string;
  domainId: number;
  passwordHash: string;
  createdAt: Date;
  settings: RawSettings;
}

export interface Usage {
  bytes: number;
  messages: number;
}

export interface AccountSummary extends Account {
  usage: Usage;
}

export interface Alias {
  address: string;
  targets: string[];
}

export interface Mailbox {
  id: number;
  accountId: number;
  name: string;
  specialUse: SpecialUse | null;
  uidValidity: number;
  uidNext: number;
  highestModSeq: number;
  subscribed: boolean;
}

export interface StoredMessage {
  id: number;
  mailboxId: number;
  uid: number;
  modSeq: number;
  flags: string[];
  internalDate: Date;
  /** Octets of the whole message: the per-recipient header prefix plus the shared body blob. */
  size: number;
  blobId: string;
  /** Per-recipient header lines (Return-Path, Delivered-To), stored with the message row. */
  headerPrefix: Buffer;
  /**
   * Octets of the whole message with CRLF line ends and a final CRLF (what POP3 LIST counts),
   * worked out when it was stored; null for messages stored before Yubin recorded it.
   */
  crlfSize: number | null;
}

/** A message as listed for a mailbox view (no body, no header prefix): what IMAP keeps per message. */
export interface MessageSummary {
  id: number;
  uid: number;
  modSeq: number;
  flags: string[];
  internalDate: Date;
  size: number;
  blobId: string;
  /** POP3: when the message was first retrieved (RETR, or TOP of the whole message); null if never. */
  popRetrievedAt: Date | null;
}

/** Messages removed by retention for one account, in total (the storage report). */
export interface RetentionTotals {
  accountId: number;
  messages: number;
  bytes: number;
  /** Per reason ("trash", "junk", "mailbox", "pop3-kept", "pop3-usage"): messages and bytes. */
  byReason: Record<string, { messages: number; bytes: number }>;
}

export interface MailboxCounts {
  messages: number;
  unseen: number;
  /** Sum of message sizes (RFC 8438 STATUS=SIZE). */
  size: number;
  deleted: number;
}

export type FlagOperation = 'add' | 'remove' | 'replace';

export interface FlagUpdateResult {
  /** Messages whose flags changed, with their new MODSEQ. */
  changed: MessageSummary[];
  /** RFC 7162 §3.1.3: UIDs not changed because their MODSEQ was above UNCHANGEDSINCE. */
  conflicts: number[];
}

/** What happened in a mailbox after a MODSEQ (RFC 7162), for a session catching up. */
export interface MailboxChanges {
  highestModSeq: number;
  uidNext: number;
  /** New or changed messages, by UID. */
  changed: MessageSummary[];
  /** UIDs expunged after the MODSEQ, ascending. */
  expunged: number[];
}

export type QuotaOutcome<T> = ({ ok: true } & T) | { ok: false; reason: 'over-quota'; usage: Usage; limit: QuotaLimit };

/** Store change events, published after the commit; sessions use them to catch up. */
export interface StoreChange {
  accountId: number;
  mailboxId: number | null; // null: mailbox list changed
  kind: 'appended' | 'flags' | 'expunged' | 'mailboxes' | 'external';
}

/** What a recipient address means here. */
export type RecipientResolution =
  | { kind: 'account'; account: Account; domain: Domain }
  | { kind: 'alias'; targets: string[] }
  | { kind: 'unknown-user'; domain: Domain }
  | { kind: 'not-local' };

/** A quota limit to enforce inside the delivery transaction; null fields mean "no limit". */
export interface QuotaLimit {
  bytes: number | null;
  messages: number | null;
}

export interface DeliveryRecipient {
  accountId: number;
  /** Mailbox by special-use role; INBOX for MX delivery. */
  mailbox: SpecialUse;
  headerPrefix: Buffer;
  flags?: string[];
  /** Enforced atomically with the insert; omit to deliver whatever the quota (notices). */
  quota?: QuotaLimit;
}

/**
 * A message body made ready for a delivery, an APPEND or the queue (Store.stageBlob): its id and
 * size, and how its bytes will be kept.
 */
export interface StagedBlob {
  blobId: string;
  blobSize: number;
  /**
   * The blob's bytes, for a small body kept inside the database (see storage.inline_max):
   * it is then made durable by the delivery's own commit. Without it (and without a
   * composition), the blob must have been put() into the BlobStore first.
   */
  inlineBytes?: Buffer;
  /**
   * A body with large MIME parts, stored deduplicated (src/store/dedup.ts): the literal bytes go
   * with the commit, every part blob must have been put() first.
   */
  composition?: BlobComposition;
  /** Octets of the body with CRLF line ends and a final CRLF (mime/line-endings.ts crlfSizeOf). */
  crlfSize?: number;
}

export interface BlobComposition {
  literal: Buffer;
  segments: Segment[];
}

export interface DeliveryRequest extends StagedBlob {
  internalDate: Date;
  recipients: DeliveryRecipient[];
}

export type RecipientOutcome =
  | { accountId: number; status: 'stored'; mailboxId: number; uid: number; messageId: number }
  | { accountId: number; status: 'over-quota'; usage: Usage; limit: QuotaLimit; size: number }
  /** Had room, but nothing was stored because another recipient had none (all or nothing). */
  | { accountId: number; status: 'fits' };

/**
 * The result of a delivery. Delivery is all-or-nothing: if any recipient is over quota, nothing
 * is stored for anyone (so that a retry by the sending server never duplicates a message).
 */
export interface DeliveryResult {
  stored: boolean;
  outcomes: RecipientOutcome[];
}

export class StoreError extends Error {
  constructor(
    readonly code: 'not-found' | 'exists' | 'invalid' | 'in-use',
    message: string,
  ) {
    super(message);
  }
}


// Outbound queue (RFC 5321 §4.5.4.1: retry strategy), and DKIM keys.

/** RFC 3461 §4.1 NOTIFY: null when the client gave none (then failures and delays are reported). */
export type DsnNotify = Array<'SUCCESS' | 'FAILURE' | 'DELAY'> | ['NEVER'];

export interface QueueRecipientInput {
  address: string;
  /** RFC 3461 §4.2 ORCPT as given ("rfc822;user@example.com"), or null. */
  orcpt: string | null;
  notify: DsnNotify | null;
}

export interface EnqueueRequest extends StagedBlob {
  /** Envelope sender; '' for the null sender (DSNs). */
  sender: string;
  /** RFC 3461 §4.4 ENVID and §4.3 RET. */
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  /** The submitting account (its locale writes the DSN); null for mail that came in over the MX. */
  accountId: number | null;
  /** 'mail' from a user or forwarded; 'dsn' for a report Yubin wrote (never bounced itself). */
  kind: 'mail' | 'dsn';
  /** RFC 6531: the envelope needs SMTPUTF8. */
  smtpUtf8: boolean;
  receivedAt: Date;
  expiresAt: Date;
  recipients: QueueRecipientInput[];
}

export type QueueRecipientState = 'queued' | 'delivered' | 'relayed' | 'failed';

export interface SmtpReplyRecord {
  code: number;
  /** RFC 3463 enhanced status code, e.g. "4.2.2", or null when the peer gave none. */
  enhanced: string | null;
  text: string;
  /** The host that answered (RFC 3464 Remote-MTA), or null when none was reached. */
  remoteMta: string | null;
  /** On a refusal as too large (X.3.4): the SIZE limit in bytes that host announced (RFC 1870), when it announced one. */
  sizeLimit?: number;
}

export interface QueueRecipient {
  id: number;
  messageId: number;
  address: string;
  domain: string;
  orcpt: string | null;
  notify: DsnNotify | null;
  state: QueueRecipientState;
  attempts: number;
  nextAttemptAt: Date;
  lastAttemptAt: Date | null;
  lastReply: SmtpReplyRecord | null;
  /** A delay notice was sent (one per recipient). */
  delayNotified: boolean;
  /** The final DSN for this recipient (if any was due) has been issued. */
  reported: boolean;
}

export interface QueueMessage {
  id: number;
  blobId: string;
  size: number;
  sender: string;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  accountId: number | null;
  kind: 'mail' | 'dsn';
  smtpUtf8: boolean;
  receivedAt: Date;
  expiresAt: Date;
  recipients: QueueRecipient[];
}

export interface QueueRecipientUpdate {
  recipientId: number;
  state: QueueRecipientState;
  /** Counts one attempt when true (a delivery attempt, not a bookkeeping change). */
  attempted: boolean;
  attemptAt?: Date;
  nextAttemptAt?: Date;
  lastReply?: SmtpReplyRecord | null;
  delayNotified?: boolean;
  reported?: boolean;
}

/** Mail that did not reach a full mailbox, or was held over it (over_quota = "hold"). */
export interface QuotaEvent {
  id: number;
  accountId: number;
  at: Date;
  /** Envelope sender ('' for the null sender). */
  sender: string;
  /** Bytes; 0 when not known (refused at RCPT without a SIZE). */
  size: number;
  outcome: 'deferred' | 'refused' | 'held';
  subject: string | null;
}

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  /** PKCS#8 PEM. */
  privateKey: string;
  /** The p= value of the DNS record: base64 of the public key (SPKI DER for RSA, raw 32 bytes for Ed25519). */
  publicKey: string;
  createdAt: Date;
}

/** Store.diskUsage(): logical bytes (each message counted whole, as quotas count) and physical ones. */
export interface DiskUsage {
  /** Stored messages in every mailbox, and their logical size (the sum of their sizes). */
  messages: number;
  logicalBytes: number;
  /** Messages in the outbound queue and their size (each queued message once). */
  queuedMessages: number;
  queuedBytes: number;
  /** Bytes actually kept: message bodies (once per distinct body), shared parts, per-recipient headers. */
  physicalBytes: number;
  /** logicalBytes + queuedBytes - physicalBytes. */
  savedBytes: number;
  /** Distinct bodies and how many are composed of shared parts. */
  bodies: number;
  composedBodies: number;
  /** Distinct shared part blobs, their bytes, and how many are used more than once. */
  parts: number;
  partBytes: number;
  sharedParts: number;
  /** Bytes in files under blobs/ and bytes kept inside the database. */
  fileBytes: number;
  databaseBytes: number;
}

export interface BlobStore {
  /** Writes bytes durably (fsynced when configured) under their content hash; returns the id. */
  put(bytes: Buffer): Promise<string>;
  get(blobId: string): Promise<Buffer>;
  /** Removes a blob whose last reference is gone. */
  remove(blobId: string): Promise<void>;
  exists(blobId: string): Promise<boolean>;
}

export interface Store {
  readonly blobs: BlobStore;

  // Domains
  addDomain(name: string, settings?: RawSettings): Promise<Domain>;
  getDomain(name: string): Promise<Domain | null>;
  listDomains(): Promise<Domain[]>;
  /** Refused with StoreError('in-use') while the domain still has accounts or aliases. */
  removeDomain(name: string): Promise<void>;
  setDomainSetting(name: string, key: PolicyKey, value: string | null): Promise<void>;

  // Accounts
  addAccount(address: string, passwordHash: string, settings?: RawSettings): Promise<Account>;
  getAccount(address: string): Promise<Account | null>;
  getAccountById(id: number): Promise<Account | null>;
  listAccounts(): Promise<AccountSummary[]>;
  removeAccount(address: string): Promise<void>;
  setPasswordHash(address: string, passwordHash: string): Promise<void>;
  setAccountSetting(address: string, key: PolicyKey, value: string | null): Promise<void>;
  getUsage(accountId: number): Promise<Usage>;
  /** Sums the stored sizes from scratch: the figure getUsage must always equal. */
  recomputeUsage(accountId: number): Promise<Usage>;

  // Aliases
  addAlias(address: string, targets: string[]): Promise<void>;
  listAliases(): Promise<Alias[]>;
  removeAlias(address: string): Promise<void>;

  /** Maps an address (already lower-cased in the domain part) to what it means here. */
  resolveRecipient(address: string): Promise<RecipientResolution>;

  // Mail
  /**
   * Makes a body ready to be referenced by deliver(), enqueue() or an APPEND: small ones are kept
   * for the commit, large ones written (fsynced) as files, and bodies with large MIME parts
   * split so that identical parts are stored once (storage.dedup_min).
   */
  stageBlob(bytes: Buffer): Promise<StagedBlob>;
  /** Stores a message (its body staged first; `bytes` lets the store re-stage a collected blob). */
  deliver(request: DeliveryRequest, bytes?: Buffer): Promise<DeliveryResult>;
  /** The bytes of a blob, wherever they are kept (a composed blob reassembled byte for byte). */
  readBlob(blobId: string): Promise<Buffer>;
  /** Removes the files of a staged blob that no message references (a refused delivery). */
  discardBlob(staged: StagedBlob): Promise<void>;
  /** What the stored mail takes on disk, against its logical size: what deduplication saves. */
  diskUsage(): Promise<DiskUsage>;
  listMailboxes(accountId: number): Promise<Mailbox[]>;
  listMessages(mailboxId: number): Promise<StoredMessage[]>;
  /** The message's full octets: header prefix + body blob. */
  readMessage(message: StoredMessage): Promise<Buffer>;

  // Mailboxes (IMAP). Names use "/" as hierarchy separator; "INBOX" matches case-insensitively.
  getMailbox(accountId: number, name: string): Promise<Mailbox | null>;
  getMailboxById(mailboxId: number): Promise<Mailbox | null>;
  createMailbox(accountId: number, name: string, specialUse?: SpecialUse | null): Promise<Mailbox>;
  /** Deletes the mailbox and its messages (usage updated in the same transaction). */
  deleteMailbox(accountId: number, mailboxId: number): Promise<void>;
  /** Renames a mailbox and its children; renaming INBOX moves its messages to the new name (RFC 9051 §6.3.6). */
  renameMailbox(accountId: number, mailboxId: number, newName: string): Promise<void>;
  setSubscribed(mailboxId: number, subscribed: boolean): Promise<void>;
  mailboxCounts(mailboxId: number): Promise<MailboxCounts>;

  // Messages in a mailbox (IMAP, POP3, retention)
  listMessageSummaries(mailboxId: number): Promise<MessageSummary[]>;
  getMessageSummary(mailboxId: number, uid: number): Promise<MessageSummary | null>;
  /**
   * The message's full octets. Row ids can be reused after deletions: callers holding an id from
   * an earlier listing pass the mailbox and UID they expect, and get StoreError('not-found') if the
   * row is now another message.
   */
  readMessageById(messageId: number, expected?: { mailboxId: number; uid: number }): Promise<Buffer>;
  /**
   * Several messages of one mailbox in one read (a POP3 download reads ahead): id → UID and full
   * octets, for the ids still in that mailbox; ids gone are left out.
   */
  readMessagesInMailbox(mailboxId: number, messageIds: number[]): Promise<Map<number, { uid: number; bytes: Buffer }>>;
  appendMessage(req: {
    accountId: number;
    mailboxId: number;
    bytes: Buffer;
    flags: string[];
    internalDate: Date;
    quota?: QuotaLimit;
  }): Promise<QuotaOutcome<{ uid: number; modSeq: number; uidValidity: number }>>;
  updateFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: string[], unchangedSince?: number): Promise<FlagUpdateResult>;
  /**
   * Removes messages; returns the UIDs actually removed (usage and blob refcounts updated).
   * With `retention`, each removal is logged (retention_log) in the same transaction.
   */
  expungeMessages(mailboxId: number, uids: number[], retention?: { at: Date; reason: string; reasons?: Record<number, string> }): Promise<number[]>;
  /** Totals of messages removed by retention, per account (all accounts when none is given). */
  retentionTotals(accountId?: number): Promise<RetentionTotals[]>;
  /** COPY (move = false) or MOVE (move = true), atomically, with the destination's quota. */
  copyMessages(
    fromMailboxId: number,
    uids: number[],
    toMailboxId: number,
    move: boolean,
    quota?: QuotaLimit,
  ): Promise<QuotaOutcome<{ uidMap: Array<[number, number]>; uidValidity: number }>>;
  /**
   * POP3: records the first retrieval of messages (ids from the summaries). Only messages not
   * yet marked get the date; unknown ids are ignored. Not a mailbox change (no MODSEQ, no event).
   */
  markRetrieved(messageIds: number[], at: Date): Promise<void>;
  changesSince(mailboxId: number, modSeq: number): Promise<MailboxChanges>;
  /** Subscribes to change events of this store (this process, and others via polling). Returns an unsubscribe function. */
  onChange(listener: (change: StoreChange) => void): () => void;

  // Outbound queue
  /** Queues a message for remote recipients (the blob as for deliver()); returns the queue id. */
  enqueue(request: EnqueueRequest, bytes?: Buffer): Promise<number>;
  /**
   * Takes up to `limit` queued recipients due at `now`, moving their next attempt to `leaseUntil`
   * in the same transaction (so another node, or a crash, never sends twice at once).
   * Returned grouped by message, each message with only its claimed recipients.
   */
  claimDueRecipients(now: Date, leaseUntil: Date, limit: number): Promise<QueueMessage[]>;
  /** Returns the ids of the recipients updated (one an admin deleted meanwhile is skipped). */
  updateQueueRecipients(updates: QueueRecipientUpdate[]): Promise<number[]>;
  /** Messages with every recipient final and reported: removed, their blob released. Returns the ids. */
  removeFinishedQueueMessages(): Promise<number[]>;
  /** Messages with recipients final but not yet reported (a DSN may be owed). */
  listUnreportedQueueMessages(limit: number): Promise<QueueMessage[]>;
  listQueue(): Promise<QueueMessage[]>;
  getQueueMessage(id: number): Promise<QueueMessage | null>;
  /** Makes queued recipients due at `now` (one message, or all when id is null); returns how many. */
  retryQueue(id: number | null, now: Date): Promise<number>;
  /**
   * At the start of the only node sending from this store: recipients still leased by
   * claimDueRecipients had an attempt in flight when the process ended (a crash); they are made
   * due at `now` instead of waiting out the lease. Returns how many.
   */
  releaseQueueLeases(now: Date): Promise<number>;
  /** Removes a message from the queue without any DSN; false when there was none. */
  deleteQueueMessage(id: number): Promise<boolean>;
  /** Earliest next attempt of any queued recipient, or null when nothing waits. */
  nextQueueAttempt(): Promise<Date | null>;

  // Mailbox capacity notices
  /** Small named values kept per account (e.g. the last quota warning level); null when unset. */
  getAccountState(accountId: number, key: string): Promise<string | null>;
  setAccountState(accountId: number, key: string, value: string | null): Promise<void>;
  recordQuotaEvent(event: Omit<QuotaEvent, 'id'>): Promise<void>;
  /** Events not yet reported to their user, oldest first (one account, or all). */
  listUnreportedQuotaEvents(accountId?: number): Promise<QuotaEvent[]>;
  markQuotaEventsReported(ids: number[]): Promise<void>;

  // DKIM keys
  /** Adds a key; StoreError('exists') when the domain already has one with this selector. */
  addDkimKey(key: Omit<DkimKey, 'createdAt'>): Promise<void>;
  listDkimKeys(domain?: string): Promise<DkimKey[]>;

  close(): Promise<void>;
}
