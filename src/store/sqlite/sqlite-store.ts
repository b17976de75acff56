// The embedded Store: SQLite (WAL) for everything but message bytes, content-addressed files for
// those. Reads run on the calling thread (they are short and never wait for a disk flush); writes
// go through a Writer (writer.ts), which in the server is a group-committing worker thread.

import { crlfSizeOf } from '../../mime/line-endings.js';
import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { stmt } from './statements.js';
import type { PolicyKey } from '../../config/schema.js';
import { FileBlobStore } from '../blobs/file-blob-store.js';
import {
  StoreError,
  type Account,
  type AccountSummary,
  type Alias,
  type DeliveryRequest,
  type DkimKey,
  type QuotaEvent,
  type DsnNotify,
  type EnqueueRequest,
  type QueueMessage,
  type QueueRecipient,
  type QueueRecipientState,
  type QueueRecipientUpdate,
  type SmtpReplyRecord,
  type DeliveryResult,
  type Domain,
  type FlagOperation,
  type FlagUpdateResult,
  type Mailbox,
  type MailboxChanges,
  type MailboxCounts,
  type MessageSummary,
  type QuotaLimit,
  type RetentionTotals,
  type StoreChange,
  type RawSettings,
  type RecipientResolution,
  type SpecialUse,
  type Store,
  type StoredMessage,
  type StagedBlob,
  type DiskUsage,
  type Usage,
} from '../types.js';
import { openDatabase } from './open.js';
import { SUMMARY_COLUMNS, toSummary, type WriteArgs, type WriteResult } from './writes.js';
import { assemble, compose, decodeSegments, largeLeafRanges } from '../dedup.js';
import { blobIdOf } from '../blob-id.js';
import { BatchingWriter, DirectWriter, type Writer } from './writer.js';

export interface SqliteStoreOptions {
  /** Directory holding yubin.db and blobs/. */
  directory: string;
  fsync: boolean;
  /** 'batching' (server: worker thread, group commit) or 'direct' (CLI). */
  writer: 'batching' | 'direct';
  maxBatch?: number;
  /** Bodies up to this size are kept in the database (storage.inline_max). */
  inlineMax?: number;
  /** MIME leaf parts at least this large are stored once and shared (storage.dedup_min); 0: off. */
  dedupMin?: number;
}

interface MailboxRow {
  id: number;
  account_id: number;
  name: string;
  special_use: string | null;
  uid_validity: number;
  uid_next: number;
  highest_modseq: number;
  subscribed: number;
}

interface DomainRow {
  id: number;
  name: string;
  created_at: number;
  settings: string;
}
interface AccountRow {
  id: number;
  address: string;
  domain_id: number;
  password_hash: string;
  created_at: number;
  settings: string;
  used_bytes: number;
  used_messages: number;
}

const toDomain = (row: DomainRow): Domain => ({
  id: row.id,
  name: row.name,
  createdAt: new Date(row.created_at),
  settings: JSON.parse(row.settings) as RawSettings,
});
const toAccount = (row: AccountRow): Account => ({
  id: row.id,
  address: row.address,
  domainId: row.domain_id,
  passwordHash: row.password_hash,
  createdAt: new Date(row.created_at),
  settings: JSON.parse(row.settings) as RawSettings,
});

interface QueueMessageRow {
  id: number;
  blob_id: string;
  size: number;
  sender: string;
  envid: string | null;
  ret: 'FULL' | 'HDRS' | null;
  account_id: number | null;
  kind: 'mail' | 'dsn';
  smtputf8: number;
  received_at: number;
  expires_at: number;
}
interface QueueRecipientRow {
  id: number;
  message_id: number;
  address: string;
  domain: string;
  orcpt: string | null;
  notify: string | null;
  state: QueueRecipientState;
  attempts: number;
  next_attempt_at: number;
  last_attempt_at: number | null;
  last_reply: string | null;
  delay_notified: number;
  reported: number;
}

const toQueueRecipient = (row: QueueRecipientRow): QueueRecipient => ({
  id: row.id,
  messageId: row.message_id,
  address: row.address,
  domain: row.domain,
  orcpt: row.orcpt,
  notify: row.notify === null ? null : (row.notify.split(',') as DsnNotify),
  state: row.state,
  attempts: row.attempts,
  nextAttemptAt: new Date(row.next_attempt_at),
  lastAttemptAt: row.last_attempt_at === null ? null : new Date(row.last_attempt_at),
  lastReply: row.last_reply === null ? null : (JSON.parse(row.last_reply) as SmtpReplyRecord),
  delayNotified: row.delay_notified === 1,
  reported: row.reported === 1,
});
const toQueueMessage = (row: QueueMessageRow, recipients: QueueRecipientRow[]): QueueMessage => ({
  id: row.id,
  blobId: row.blob_id,
  size: row.size,
  sender: row.sender,
  envid: row.envid,
  ret: row.ret,
  accountId: row.account_id,
  kind: row.kind,
  smtpUtf8: row.smtputf8 === 1,
  receivedAt: new Date(row.received_at),
  expiresAt: new Date(row.expires_at),
  recipients: recipients.map(toQueueRecipient),
});

export class SqliteStore implements Store {
  readonly blobs: FileBlobStore;
  private readonly db: Database.Database;
  private readonly writer: Writer;

  private readonly listeners = new Set<(change: StoreChange) => void>();
  private pollTimer: NodeJS.Timeout | null = null;
  private lastDataVersion = 0;

  private constructor(
    db: Database.Database,
    blobs: FileBlobStore,
    writer: Writer,
    private readonly inlineMax: number,
    private readonly dedupMin: number,
  ) {
    this.db = db;
    this.blobs = blobs;
    this.writer = writer;
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    fs.mkdirSync(options.directory, { recursive: true });
    const dbFile = path.join(options.directory, 'yubin.db');
    const blobRoot = path.join(options.directory, 'blobs');
    const db = openDatabase(dbFile, { fsync: options.fsync });
    const blobs = new FileBlobStore(blobRoot, options.fsync);
    const blobPath = (blobId: string) => blobs.pathOf(blobId);
    const writer =
      options.writer === 'batching'
        ? new BatchingWriter({ dbFile, blobRoot, blobPath, fsync: options.fsync, maxBatch: options.maxBatch ?? 256 })
        : new DirectWriter(db, blobPath);
    return new SqliteStore(db, blobs, writer, options.inlineMax ?? 64 * 1024, options.dedupMin ?? 0);
  }

  // Domains

  async addDomain(name: string, settings: RawSettings = {}): Promise<Domain> {
    await this.writer.run('addDomain', { name, settings });
    return (await this.getDomain(name))!;
  }

  async getDomain(name: string): Promise<Domain | null> {
    const row = stmt(this.db, 'SELECT * FROM domains WHERE name = ?').get(name) as DomainRow | undefined;
    return row ? toDomain(row) : null;
  }

  async listDomains(): Promise<Domain[]> {
    return (stmt(this.db, 'SELECT * FROM domains ORDER BY name').all() as DomainRow[]).map(toDomain);
  }

  async removeDomain(name: string): Promise<void> {
    await this.writer.run('removeDomain', { name });
  }

  async setDomainSetting(name: string, key: PolicyKey, value: string | null): Promise<void> {
    await this.writer.run('setDomainSetting', { name, key, value });
  }

  // Accounts

  async addAccount(address: string, passwordHash: string, settings: RawSettings = {}): Promise<Account> {
    await this.writer.run('addAccount', { address, passwordHash, settings });
    return (await this.getAccount(address))!;
  }

  async getAccount(address: string): Promise<Account | null> {
    const row = stmt(this.db, 'SELECT * FROM accounts WHERE address = ?').get(address) as AccountRow | undefined;
    return row ? toAccount(row) : null;
  }

  async getAccountById(id: number): Promise<Account | null> {
    const row = stmt(this.db, 'SELECT * FROM accounts WHERE id = ?').get(id) as AccountRow | undefined;
    return row ? toAccount(row) : null;
  }

  async listAccounts(): Promise<AccountSummary[]> {
    const rows = stmt(this.db, 'SELECT * FROM accounts ORDER BY address').all() as AccountRow[];
    return rows.map((row) => ({ ...toAccount(row), usage: { bytes: row.used_bytes, messages: row.used_messages } }));
  }

  async removeAccount(address: string): Promise<void> {
    await this.writer.run('removeAccount', { address });
  }

  async setPasswordHash(address: string, passwordHash: string): Promise<void> {
    await this.writer.run('setPasswordHash', { address, passwordHash });
  }

  async setAccountSetting(address: string, key: PolicyKey, value: string | null): Promise<void> {
    await this.writer.run('setAccountSetting', { address, key, value });
  }

  async getUsage(accountId: number): Promise<Usage> {
    const row = stmt(this.db, 'SELECT used_bytes AS bytes, used_messages AS messages FROM accounts WHERE id = ?').get(accountId) as
      | Usage
      | undefined;
    if (!row) throw new StoreError('not-found', `account ${accountId} does not exist`);
    return row;
  }

  async recomputeUsage(accountId: number): Promise<Usage> {
    return stmt(this.db, 
        'SELECT coalesce(sum(m.size), 0) AS bytes, count(m.id) AS messages FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ?',
      )
      .get(accountId) as Usage;
  }

  // Aliases

  async addAlias(address: string, targets: string[]): Promise<void> {
    await this.writer.run('addAlias', { address, targets });
  }

  async listAliases(): Promise<Alias[]> {
    const rows = stmt(this.db, 'SELECT address, targets FROM aliases ORDER BY address').all() as Array<{ address: string; targets: string }>;
    return rows.map((row) => ({ address: row.address, targets: JSON.parse(row.targets) as string[] }));
  }

  async removeAlias(address: string): Promise<void> {
    await this.writer.run('removeAlias', { address });
  }

  async resolveRecipient(address: string): Promise<RecipientResolution> {
    const at = address.lastIndexOf('@');
    const domainName = address.slice(at + 1).toLowerCase();
    const domainRow = stmt(this.db, 'SELECT * FROM domains WHERE name = ?').get(domainName) as DomainRow | undefined;
    if (at < 1 || !domainRow) return { kind: 'not-local' };
    const domain = toDomain(domainRow);
    const normalized = address.slice(0, at).toLowerCase() + '@' + domainName;
    const account = stmt(this.db, 'SELECT * FROM accounts WHERE address = ?').get(normalized) as AccountRow | undefined;
    if (account) return { kind: 'account', account: toAccount(account), domain };
    const alias = stmt(this.db, 'SELECT targets FROM aliases WHERE address = ?').get(normalized) as { targets: string } | undefined;
    if (alias) return { kind: 'alias', targets: JSON.parse(alias.targets) as string[] };
    return { kind: 'unknown-user', domain };
  }

  // Mail

  async stageBlob(bytes: Buffer): Promise<StagedBlob> {
    const blobId = blobIdOf(bytes);
    const crlfSize = crlfSizeOf(bytes);
    const ranges = largeLeafRanges(bytes, this.dedupMin);
    if (ranges.length > 0) {
      // Part files are written (and fsynced) in parallel; the literal bytes go with the commit.
      const partIds = await Promise.all(ranges.map(([start, end]) => this.blobs.put(bytes.subarray(start, end))));
      return { blobId, blobSize: bytes.length, crlfSize, composition: compose(bytes, ranges, partIds) };
    }
    if (bytes.length <= this.inlineMax) return { blobId, blobSize: bytes.length, crlfSize, inlineBytes: bytes };
    await this.blobs.put(bytes);
    return { blobId, blobSize: bytes.length, crlfSize };
  }

  /**
   * Runs a write that references a staged blob. Garbage collection may remove an identical,
   * unreferenced file between the staging and the commit: then the bytes are staged again and
   * the write retried once.
   */
  private async withStaged<K extends 'deliver' | 'enqueue' | 'appendMessage'>(op: K, args: WriteArgs<K>, bytes: Buffer | undefined): Promise<WriteResult<K>> {
    try {
      return await this.writer.run(op, args);
    } catch (err) {
      if (bytes && err instanceof StoreError && err.code === 'not-found' && err.message.startsWith('blob ')) {
        const again = await this.stageBlob(bytes);
        return await this.writer.run(op, { ...args, ...again, inlineBytes: again.inlineBytes, composition: again.composition });
      }
      throw err;
    }
  }

  async deliver(request: DeliveryRequest, bytes?: Buffer): Promise<DeliveryResult> {
    const result = await this.withStaged('deliver', request, bytes);
    this.emitDelivered(result);
    return result;
  }

  async discardBlob(staged: StagedBlob): Promise<void> {
    if (staged.inlineBytes) return;
    const partIds = staged.composition?.segments.flatMap((s) => ('part' in s ? [s.part] : [])) ?? [];
    await this.writer.run('discardBlob', { blobId: staged.blobId, partIds });
  }

  private emitDelivered(result: DeliveryResult): void {
    if (!result.stored || this.listeners.size === 0) return;
    for (const outcome of result.outcomes) {
      if (outcome.status === 'stored') this.emit({ accountId: outcome.accountId, mailboxId: outcome.mailboxId, kind: 'appended' });
    }
  }

  async listMailboxes(accountId: number): Promise<Mailbox[]> {
    const rows = stmt(this.db, 'SELECT * FROM mailboxes WHERE account_id = ? ORDER BY id').all(accountId) as Array<{
      id: number;
      account_id: number;
      name: string;
      special_use: string | null;
      uid_validity: number;
      uid_next: number;
      highest_modseq: number;
      subscribed: number;
    }>;
    return rows.map((row) => ({
      id: row.id,
      accountId: row.account_id,
      name: row.name,
      specialUse: row.special_use as SpecialUse | null,
      uidValidity: row.uid_validity,
      uidNext: row.uid_next,
      highestModSeq: row.highest_modseq,
      subscribed: row.subscribed === 1,
    }));
  }

  async listMessages(mailboxId: number): Promise<StoredMessage[]> {
    const rows = stmt(this.db, 'SELECT * FROM messages WHERE mailbox_id = ? ORDER BY uid').all(mailboxId) as Array<{
      id: number;
      mailbox_id: number;
      uid: number;
      modseq: number;
      flags: string;
      internal_date: number;
      size: number;
      blob_id: string;
      header_prefix: Buffer;
      crlf_size: number | null;
    }>;
    return rows.map((row) => ({
      id: row.id,
      mailboxId: row.mailbox_id,
      uid: row.uid,
      modSeq: row.modseq,
      flags: row.flags ? row.flags.split(' ') : [],
      internalDate: new Date(row.internal_date),
      size: row.size,
      blobId: row.blob_id,
      headerPrefix: row.header_prefix,
      crlfSize: row.crlf_size,
    }));
  }

  async readBlob(blobId: string): Promise<Buffer> {
    const row = stmt(this.db, 'SELECT data, parts FROM blobs WHERE id = ?').get(blobId) as { data: Buffer | null; parts: string | null } | undefined;
    if (row?.parts) {
      const bytes = await assemble(row.data ?? Buffer.alloc(0), decodeSegments(row.parts), (id) => this.readBlob(id));
      if (bytes.length !== (stmt(this.db, 'SELECT size FROM blobs WHERE id = ?').get(blobId) as { size: number }).size) {
        throw new Error(`blob ${blobId} reassembled to the wrong size`);
      }
      return bytes;
    }
    if (row?.data) return row.data;
    return this.blobs.get(blobId);
  }

  async diskUsage(): Promise<DiskUsage> {
    const get = <T>(sql: string) => stmt(this.db, sql).get() as T;
    const messages = get<{ n: number; bytes: number; prefixes: number }>(
      'SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes, coalesce(sum(length(header_prefix)), 0) AS prefixes FROM messages',
    );
    const queued = get<{ n: number; bytes: number }>('SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM queue_messages');
    const blobs = get<{ files: number; inDb: number }>(
      'SELECT coalesce(sum(CASE WHEN data IS NULL THEN size ELSE 0 END), 0) AS files, coalesce(sum(length(data)), 0) AS inDb FROM blobs WHERE refcount > 0',
    );
    const bodies = get<{ n: number; composed: number }>(
      `SELECT count(*) AS n, coalesce(sum(b.parts IS NOT NULL), 0) AS composed FROM blobs b
       WHERE b.id IN (SELECT blob_id FROM messages UNION SELECT blob_id FROM queue_messages)`,
    );
    const parts = get<{ n: number; bytes: number; shared: number }>(
      `SELECT count(*) AS n, coalesce(sum(b.size), 0) AS bytes, coalesce(sum(b.refcount > 1), 0) AS shared FROM blobs b
       WHERE b.refcount > 0 AND b.id IN (SELECT json_extract(j.value, '$[0]') FROM blobs c, json_each(c.parts) j WHERE c.parts IS NOT NULL AND j.type = 'array')`,
    );
    const physicalBytes = blobs.files + blobs.inDb + messages.prefixes;
    return {
      messages: messages.n,
      logicalBytes: messages.bytes,
      queuedMessages: queued.n,
      queuedBytes: queued.bytes,
      physicalBytes,
      savedBytes: messages.bytes + queued.bytes - physicalBytes,
      bodies: bodies.n,
      composedBodies: bodies.composed,
      parts: parts.n,
      partBytes: parts.bytes,
      sharedParts: parts.shared,
      fileBytes: blobs.files,
      databaseBytes: blobs.inDb + messages.prefixes,
    };
  }

  async readMessage(message: StoredMessage): Promise<Buffer> {
    return Buffer.concat([message.headerPrefix, await this.readBlob(message.blobId)]);
  }

  // Mailboxes

  private toMailbox(row: MailboxRow): Mailbox {
    return {
      id: row.id,
      accountId: row.account_id,
      name: row.name,
      specialUse: row.special_use as SpecialUse | null,
      uidValidity: row.uid_validity,
      uidNext: row.uid_next,
      highestModSeq: row.highest_modseq,
      subscribed: row.subscribed === 1,
    };
  }

  async getMailbox(accountId: number, name: string): Promise<Mailbox | null> {
    // RFC 9051 §5.1: INBOX is case-insensitive; every other name is exact.
    const canonical = name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
    const row = stmt(this.db, 'SELECT * FROM mailboxes WHERE account_id = ? AND name = ?').get(accountId, canonical) as MailboxRow | undefined;
    return row ? this.toMailbox(row) : null;
  }

  async getMailboxById(mailboxId: number): Promise<Mailbox | null> {
    const row = stmt(this.db, 'SELECT * FROM mailboxes WHERE id = ?').get(mailboxId) as MailboxRow | undefined;
    return row ? this.toMailbox(row) : null;
  }

  async createMailbox(accountId: number, name: string, specialUse: SpecialUse | null = null): Promise<Mailbox> {
    const id = await this.writer.run('createMailbox', { accountId, name, specialUse });
    this.emit({ accountId, mailboxId: null, kind: 'mailboxes' });
    return (await this.getMailboxById(id))!;
  }

  async deleteMailbox(accountId: number, mailboxId: number): Promise<void> {
    await this.writer.run('deleteMailbox', { accountId, mailboxId });
    this.emit({ accountId, mailboxId, kind: 'expunged' });
    this.emit({ accountId, mailboxId: null, kind: 'mailboxes' });
  }

  async renameMailbox(accountId: number, mailboxId: number, newName: string): Promise<void> {
    await this.writer.run('renameMailbox', { accountId, mailboxId, newName });
    this.emit({ accountId, mailboxId, kind: 'expunged' });
    this.emit({ accountId, mailboxId: null, kind: 'mailboxes' });
  }

  async setSubscribed(mailboxId: number, subscribed: boolean): Promise<void> {
    await this.writer.run('setSubscribed', { mailboxId, subscribed });
  }

  async mailboxCounts(mailboxId: number): Promise<MailboxCounts> {
    const row = stmt(
      this.db,
      `SELECT count(*) AS messages, coalesce(sum(size), 0) AS size,
              coalesce(sum(CASE WHEN (' ' || lower(flags) || ' ') LIKE '% \\seen %' THEN 0 ELSE 1 END), 0) AS unseen,
              coalesce(sum(CASE WHEN (' ' || lower(flags) || ' ') LIKE '% \\deleted %' THEN 1 ELSE 0 END), 0) AS deleted
         FROM messages WHERE mailbox_id = ?`,
    ).get(mailboxId) as MailboxCounts;
    return row;
  }

  // Messages in a mailbox

  async listMessageSummaries(mailboxId: number): Promise<MessageSummary[]> {
    const rows = stmt(this.db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid`).all(mailboxId);
    return (rows as Parameters<typeof toSummary>[0][]).map(toSummary);
  }

  async getMessageSummary(mailboxId: number, uid: number): Promise<MessageSummary | null> {
    const row = stmt(this.db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ?`).get(mailboxId, uid);
    return row ? toSummary(row as Parameters<typeof toSummary>[0]) : null;
  }

  async readMessageById(messageId: number, expected?: { mailboxId: number; uid: number }): Promise<Buffer> {
    // One read for the row and a body kept in the database (most messages).
    const row = stmt(
      this.db,
      'SELECT m.header_prefix AS prefix, m.blob_id AS blobId, m.mailbox_id AS mailboxId, m.uid AS uid, b.data AS data, b.parts AS parts FROM messages m LEFT JOIN blobs b ON b.id = m.blob_id WHERE m.id = ?',
    ).get(messageId) as { prefix: Buffer; blobId: string; mailboxId: number; uid: number; data: Buffer | null; parts: string | null } | undefined;
    if (!row || (expected && (row.mailboxId !== expected.mailboxId || row.uid !== expected.uid))) {
      throw new StoreError('not-found', `message ${messageId} does not exist`);
    }
    const body = row.data && !row.parts ? row.data : await this.readBlob(row.blobId);
    return row.prefix.length > 0 ? Buffer.concat([row.prefix, body]) : body;
  }

  async readMessagesInMailbox(mailboxId: number, messageIds: number[]): Promise<Map<number, { uid: number; bytes: Buffer }>> {
    const out = new Map<number, { uid: number; bytes: Buffer }>();
    if (messageIds.length === 0) return out;
    // Prepared once per list length (a download asks for the same few lengths again and again).
    const rows = stmt(
      this.db,
      `SELECT m.id AS id, m.uid AS uid, m.header_prefix AS prefix, m.blob_id AS blobId, b.data AS data, b.parts AS parts
       FROM messages m LEFT JOIN blobs b ON b.id = m.blob_id WHERE m.mailbox_id = ? AND m.id IN (${messageIds.map(() => '?').join(',')})`,
    ).all(mailboxId, ...messageIds) as Array<{ id: number; uid: number; prefix: Buffer; blobId: string; data: Buffer | null; parts: string | null }>;
    for (const row of rows) {
      const body = row.data && !row.parts ? row.data : await this.readBlob(row.blobId);
      out.set(row.id, { uid: row.uid, bytes: row.prefix.length > 0 ? Buffer.concat([row.prefix, body]) : body });
    }
    return out;
  }

  async appendMessage(req: { accountId: number; mailboxId: number; bytes: Buffer; flags: string[]; internalDate: Date; quota?: QuotaLimit }) {
    const staged = await this.stageBlob(req.bytes);
    const args = {
      ...staged,
      accountId: req.accountId,
      mailboxId: req.mailboxId,
      flags: req.flags,
      internalDate: req.internalDate.getTime(),
      quota: req.quota,
    };
    const result = await this.withStaged('appendMessage', args, req.bytes);
    if (result.ok) this.emit({ accountId: req.accountId, mailboxId: req.mailboxId, kind: 'appended' });
    else await this.discardBlob(staged);
    return result;
  }

  async updateFlags(mailboxId: number, uids: number[], op: FlagOperation, flags: string[], unchangedSince?: number): Promise<FlagUpdateResult> {
    const result = await this.writer.run('updateFlags', { mailboxId, uids, op, flags, unchangedSince });
    if (result.changed.length > 0) this.emitForMailbox(mailboxId, 'flags');
    return result;
  }

  async expungeMessages(mailboxId: number, uids: number[], retention?: { at: Date; reason: string; reasons?: Record<number, string> }): Promise<number[]> {
    const removed = await this.writer.run('expungeMessages', {
      mailboxId,
      uids,
      retention: retention ? { at: retention.at.getTime(), reason: retention.reason, reasons: retention.reasons } : undefined,
    });
    if (removed.length > 0) this.emitForMailbox(mailboxId, 'expunged');
    return removed;
  }

  async retentionTotals(accountId?: number): Promise<RetentionTotals[]> {
    const rows = (
      accountId === undefined
        ? stmt(this.db, 'SELECT account_id AS accountId, reason, count(*) AS messages, sum(size) AS bytes FROM retention_log GROUP BY account_id, reason ORDER BY account_id, reason').all()
        : stmt(this.db, 'SELECT account_id AS accountId, reason, count(*) AS messages, sum(size) AS bytes FROM retention_log WHERE account_id = ? GROUP BY reason ORDER BY reason').all(accountId)
    ) as Array<{ accountId: number; reason: string; messages: number; bytes: number }>;
    const totals = new Map<number, RetentionTotals>();
    for (const row of rows) {
      let total = totals.get(row.accountId);
      if (!total) totals.set(row.accountId, (total = { accountId: row.accountId, messages: 0, bytes: 0, byReason: {} }));
      total.messages += row.messages;
      total.bytes += row.bytes;
      total.byReason[row.reason] = { messages: row.messages, bytes: row.bytes };
    }
    return [...totals.values()];
  }

  async copyMessages(fromMailboxId: number, uids: number[], toMailboxId: number, move: boolean, quota?: QuotaLimit) {
    const result = await this.writer.run('copyMessages', { fromMailboxId, uids, toMailboxId, move, quota });
    if (result.ok && result.uidMap.length > 0) {
      this.emitForMailbox(toMailboxId, 'appended');
      if (move) this.emitForMailbox(fromMailboxId, 'expunged');
    }
    return result;
  }

  async markRetrieved(messageIds: number[], at: Date): Promise<void> {
    if (messageIds.length === 0) return;
    await this.writer.run('markRetrieved', { messageIds, at: at.getTime() });
  }

  async changesSince(mailboxId: number, modSeq: number): Promise<MailboxChanges> {
    const mailbox = await this.getMailboxById(mailboxId);
    if (!mailbox) throw new StoreError('not-found', `mailbox ${mailboxId} does not exist`);
    const changed = (
      stmt(this.db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`).all(
        mailboxId,
        modSeq,
      ) as Parameters<typeof toSummary>[0][]
    ).map(toSummary);
    const expunged = (stmt(this.db, 'SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid').all(mailboxId, modSeq) as Array<{ uid: number }>).map(
      (r) => r.uid,
    );
    return { highestModSeq: mailbox.highestModSeq, uidNext: mailbox.uidNext, changed, expunged };
  }

  // Change events

  onChange(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    this.startExternalPoll();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopExternalPoll();
    };
  }

  private emit(change: StoreChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private emitForMailbox(mailboxId: number, kind: StoreChange['kind']): void {
    const row = stmt(this.db, 'SELECT account_id AS accountId FROM mailboxes WHERE id = ?').get(mailboxId) as { accountId: number } | undefined;
    if (row) this.emit({ accountId: row.accountId, mailboxId, kind });
  }

  /**
   * Writes by other processes (CLI, maintenance runs) and by this process's writer thread change
   * PRAGMA data_version of this connection; when it moves without an event of ours, listeners are
   * told to look ("external"), once per poll.
   */
  private startExternalPoll(): void {
    if (this.pollTimer) return;
    this.lastDataVersion = this.db.pragma('data_version', { simple: true }) as number;
    this.pollTimer = setInterval(() => {
      const version = this.db.pragma('data_version', { simple: true }) as number;
      if (version !== this.lastDataVersion) {
        this.lastDataVersion = version;
        this.emit({ accountId: 0, mailboxId: null, kind: 'external' });
      }
    }, 500);
    this.pollTimer.unref();
  }

  private stopExternalPoll(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  // Outbound queue

  async enqueue(request: EnqueueRequest, bytes?: Buffer): Promise<number> {
    return this.withStaged('enqueue', request, bytes);
  }

  async claimDueRecipients(now: Date, leaseUntil: Date, limit: number): Promise<QueueMessage[]> {
    const ids = await this.writer.run('claimDueRecipients', { now: now.getTime(), leaseUntil: leaseUntil.getTime(), limit });
    if (ids.length === 0) return [];
    const rows: QueueRecipientRow[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      rows.push(...(this.db.prepare(`SELECT * FROM queue_recipients WHERE id IN (${chunk.map(() => '?').join(',')})`).all(...chunk) as QueueRecipientRow[]));
    }
    return this.queueMessagesWith(rows);
  }

  async updateQueueRecipients(updates: QueueRecipientUpdate[]): Promise<number[]> {
    if (updates.length === 0) return [];
    return this.writer.run('updateQueueRecipients', {
      updates: updates.map((u) => ({ ...u, attemptAt: undefined, nextAttemptAt: undefined, attemptAtMs: u.attemptAt?.getTime(), nextAttemptAtMs: u.nextAttemptAt?.getTime() })),
    });
  }

  async removeFinishedQueueMessages(): Promise<number[]> {
    return this.writer.run('removeFinishedQueueMessages', { limit: 1000 });
  }

  async listUnreportedQueueMessages(limit: number): Promise<QueueMessage[]> {
    const ids = stmt(this.db, "SELECT DISTINCT message_id FROM queue_recipients WHERE state <> 'queued' AND reported = 0 LIMIT ?").all(limit) as Array<{ message_id: number }>;
    const messages: QueueMessage[] = [];
    for (const { message_id } of ids) {
      const message = await this.getQueueMessage(message_id);
      if (message) messages.push(message);
    }
    return messages;
  }

  async listQueue(): Promise<QueueMessage[]> {
    const rows = stmt(this.db, 'SELECT * FROM queue_recipients ORDER BY message_id, id').all() as QueueRecipientRow[];
    return this.queueMessagesWith(rows);
  }

  async getQueueMessage(id: number): Promise<QueueMessage | null> {
    const rows = stmt(this.db, 'SELECT * FROM queue_recipients WHERE message_id = ? ORDER BY id').all(id) as QueueRecipientRow[];
    const messages = this.queueMessagesWith(rows);
    if (messages.length > 0) return messages[0]!;
    const row = stmt(this.db, 'SELECT * FROM queue_messages WHERE id = ?').get(id) as QueueMessageRow | undefined;
    return row ? toQueueMessage(row, []) : null;
  }

  async retryQueue(id: number | null, now: Date): Promise<number> {
    return this.writer.run('retryQueue', { id, now: now.getTime() });
  }

  async releaseQueueLeases(now: Date): Promise<number> {
    return this.writer.run('releaseQueueLeases', { now: now.getTime() });
  }

  async deleteQueueMessage(id: number): Promise<boolean> {
    return this.writer.run('deleteQueueMessage', { id });
  }

  async nextQueueAttempt(): Promise<Date | null> {
    const row = stmt(this.db, "SELECT min(next_attempt_at) AS next FROM queue_recipients WHERE state = 'queued'").get() as { next: number | null };
    return row.next === null ? null : new Date(row.next);
  }

  private queueMessagesWith(recipientRows: QueueRecipientRow[]): QueueMessage[] {
    const byMessage = new Map<number, QueueRecipientRow[]>();
    for (const row of recipientRows) {
      const list = byMessage.get(row.message_id);
      if (list) list.push(row);
      else byMessage.set(row.message_id, [row]);
    }
    const messages: QueueMessage[] = [];
    const getMessage = stmt(this.db, 'SELECT * FROM queue_messages WHERE id = ?');
    for (const [id, rows] of byMessage) {
      const row = getMessage.get(id) as QueueMessageRow | undefined;
      if (row) messages.push(toQueueMessage(row, rows));
    }
    return messages;
  }

  // Mailbox capacity notices

  async getAccountState(accountId: number, key: string): Promise<string | null> {
    const row = stmt(this.db, 'SELECT value FROM account_state WHERE account_id = ? AND key = ?').get(accountId, key) as { value: string } | undefined;
    return row ? row.value : null;
  }

  async setAccountState(accountId: number, key: string, value: string | null): Promise<void> {
    await this.writer.run('setAccountState', { accountId, key, value });
  }

  async recordQuotaEvent(event: Omit<QuotaEvent, 'id'>): Promise<void> {
    await this.writer.run('recordQuotaEvent', { accountId: event.accountId, at: event.at.getTime(), sender: event.sender, size: event.size, outcome: event.outcome, subject: event.subject });
  }

  async listUnreportedQuotaEvents(accountId?: number): Promise<QuotaEvent[]> {
    const rows = (
      accountId === undefined
        ? stmt(this.db, 'SELECT * FROM quota_events WHERE reported = 0 ORDER BY id').all()
        : stmt(this.db, 'SELECT * FROM quota_events WHERE reported = 0 AND account_id = ? ORDER BY id').all(accountId)
    ) as Array<{ id: number; account_id: number; at: number; sender: string; size: number; outcome: QuotaEvent['outcome']; subject: string | null }>;
    return rows.map((r) => ({ id: r.id, accountId: r.account_id, at: new Date(r.at), sender: r.sender, size: r.size, outcome: r.outcome, subject: r.subject }));
  }

  async markQuotaEventsReported(ids: number[]): Promise<void> {
    if (ids.length > 0) await this.writer.run('markQuotaEventsReported', { ids });
  }

  // DKIM keys

  async addDkimKey(key: Omit<DkimKey, 'createdAt'>): Promise<void> {
    await this.writer.run('addDkimKey', { domain: key.domain, selector: key.selector, algorithm: key.algorithm, privateKey: key.privateKey, publicKey: key.publicKey });
  }

  async listDkimKeys(domain?: string): Promise<DkimKey[]> {
    const rows = (
      domain === undefined
        ? stmt(this.db, 'SELECT * FROM dkim_keys ORDER BY domain, selector').all()
        : stmt(this.db, 'SELECT * FROM dkim_keys WHERE domain = ? ORDER BY selector').all(domain)
    ) as Array<{ domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; private_key: string; public_key: string; created_at: number }>;
    return rows.map((row) => ({
      domain: row.domain,
      selector: row.selector,
      algorithm: row.algorithm,
      privateKey: row.private_key,
      publicKey: row.public_key,
      createdAt: new Date(row.created_at),
    }));
  }

  async close(): Promise<void> {
    this.stopExternalPoll();
    await this.writer.close();
    this.db.close();
  }
}
