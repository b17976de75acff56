// Every write of the embedded store, as plain functions of (db, args). They run inside a
// transaction opened by a writer (direct for the CLI, batched in a worker thread for the server),
// so each function is atomic and may throw StoreError to undo only its own work.

import { isCrlfClean } from '../../mime/line-endings.js';
import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { stmt } from './statements.js';
import { decodeSegments, encodeSegments } from '../dedup.js';
import {
  DEFAULT_MAILBOXES,
  StoreError,
  type DeliveryRequest,
  type EnqueueRequest,
  type QueueRecipientUpdate,
  type DeliveryResult,
  type FlagOperation,
  type FlagUpdateResult,
  type MessageSummary,
  type QuotaLimit,
  type RecipientOutcome,
  type RawSettings,
  type StagedBlob,
} from '../types.js';

/** Why messages are removed by retention, recorded with each removal (ms since epoch). */
export interface RetentionRecord {
  at: number;
  reason: string;
  /** A reason per UID, where it differs from `reason`. */
  reasons?: Record<number, string>;
}

export interface WriteContext {
  db: Database.Database;
  /** Where blob files live, to check that a new blob row has its file (see deliver). */
  blobPath: (blobId: string) => string;
  /** Blob files whose rows collectGarbage removed; the writer unlinks them after the commit. */
  orphanedBlobs: string[];
}

function nextCounter(db: Database.Database, name: string, floor: number): number {
  const row = stmt(db, 'SELECT value FROM counters WHERE name = ?').get(name) as { value: number } | undefined;
  const value = Math.max(floor, (row?.value ?? 0) + 1);
  stmt(db, 'INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run(name, value);
  return value;
}

function domainIdOf(db: Database.Database, name: string): number {
  const row = stmt(db, 'SELECT id FROM domains WHERE name = ?').get(name) as { id: number } | undefined;
  if (!row) throw new StoreError('not-found', `unknown domain ${name}`);
  return row.id;
}

function mergeSetting(json: string, key: string, value: string | null): string {
  const settings = JSON.parse(json) as RawSettings & Record<string, string>;
  if (value === null) delete settings[key];
  else settings[key] = value;
  return JSON.stringify(settings);
}

/**
 * Drops references to a blob. A blob left with no reference keeps its row (refcount 0) until
 * collectGarbage, which only the server's single writer runs, removes row and file together.
 */
function releaseBlob(ctx: WriteContext, blobId: string, count: number): void {
  stmt(ctx.db, 'UPDATE blobs SET refcount = max(0, refcount - ?) WHERE id = ?').run(count, blobId);
}

export const writes = {
  addDomain(ctx: WriteContext, args: { name: string; settings: RawSettings }) {
    const exists = stmt(ctx.db, 'SELECT 1 FROM domains WHERE name = ?').get(args.name);
    if (exists) throw new StoreError('exists', `domain ${args.name} already exists`);
    const info = stmt(ctx.db, 'INSERT INTO domains(name, created_at, settings) VALUES (?, ?, ?)')
      .run(args.name, Date.now(), JSON.stringify(args.settings));
    return Number(info.lastInsertRowid);
  },

  removeDomain(ctx: WriteContext, args: { name: string }) {
    const id = domainIdOf(ctx.db, args.name);
    const accounts = stmt(ctx.db, 'SELECT count(*) AS n FROM accounts WHERE domain_id = ?').get(id) as { n: number };
    const aliases = stmt(ctx.db, 'SELECT count(*) AS n FROM aliases WHERE domain_id = ?').get(id) as { n: number };
    if (accounts.n > 0 || aliases.n > 0) {
      throw new StoreError('in-use', `domain ${args.name} still has ${accounts.n} user(s) and ${aliases.n} alias(es); remove them first`);
    }
    stmt(ctx.db, 'DELETE FROM domains WHERE id = ?').run(id);
    return null;
  },

  setDomainSetting(ctx: WriteContext, args: { name: string; key: string; value: string | null }) {
    const row = stmt(ctx.db, 'SELECT settings FROM domains WHERE name = ?').get(args.name) as { settings: string } | undefined;
    if (!row) throw new StoreError('not-found', `unknown domain ${args.name}`);
    stmt(ctx.db, 'UPDATE domains SET settings = ? WHERE name = ?').run(mergeSetting(row.settings, args.key, args.value), args.name);
    return null;
  },

  addAccount(ctx: WriteContext, args: { address: string; passwordHash: string; settings: RawSettings }) {
    const domain = args.address.slice(args.address.lastIndexOf('@') + 1);
    const domainId = domainIdOf(ctx.db, domain);
    if (stmt(ctx.db, 'SELECT 1 FROM accounts WHERE address = ?').get(args.address)) {
      throw new StoreError('exists', `user ${args.address} already exists`);
    }
    if (stmt(ctx.db, 'SELECT 1 FROM aliases WHERE address = ?').get(args.address)) {
      throw new StoreError('exists', `${args.address} is already an alias`);
    }
    const now = Date.now();
    const info = stmt(ctx.db, 'INSERT INTO accounts(address, domain_id, password_hash, created_at, settings) VALUES (?, ?, ?, ?, ?)')
      .run(args.address, domainId, args.passwordHash, now, JSON.stringify(args.settings));
    const accountId = Number(info.lastInsertRowid);
    const insertMailbox = stmt(ctx.db, 'INSERT INTO mailboxes(account_id, name, special_use, uid_validity) VALUES (?, ?, ?, ?)');
    for (const mailbox of DEFAULT_MAILBOXES) {
      // RFC 9051 §2.3.1.1: UIDVALIDITY must never repeat for a mailbox name; a counter seeded by the clock.
      insertMailbox.run(accountId, mailbox.name, mailbox.specialUse, nextCounter(ctx.db, 'uid_validity', Math.floor(now / 1000)));
    }
    return accountId;
  },

  removeAccount(ctx: WriteContext, args: { address: string }) {
    const account = stmt(ctx.db, 'SELECT id FROM accounts WHERE address = ?').get(args.address) as { id: number } | undefined;
    if (!account) throw new StoreError('not-found', `unknown user ${args.address}`);
    const blobs = stmt(ctx.db, 
        'SELECT m.blob_id AS blobId, count(*) AS n FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ? GROUP BY m.blob_id',
      )
      .all(account.id) as Array<{ blobId: string; n: number }>;
    stmt(ctx.db, 'DELETE FROM messages WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?)').run(account.id);
    stmt(ctx.db, 'DELETE FROM mailboxes WHERE account_id = ?').run(account.id);
    stmt(ctx.db, 'DELETE FROM accounts WHERE id = ?').run(account.id);
    for (const blob of blobs) releaseBlob(ctx, blob.blobId, blob.n);
    return null;
  },

  setPasswordHash(ctx: WriteContext, args: { address: string; passwordHash: string }) {
    const info = stmt(ctx.db, 'UPDATE accounts SET password_hash = ? WHERE address = ?').run(args.passwordHash, args.address);
    if (info.changes === 0) throw new StoreError('not-found', `unknown user ${args.address}`);
    return null;
  },

  setAccountSetting(ctx: WriteContext, args: { address: string; key: string; value: string | null }) {
    const row = stmt(ctx.db, 'SELECT settings FROM accounts WHERE address = ?').get(args.address) as { settings: string } | undefined;
    if (!row) throw new StoreError('not-found', `unknown user ${args.address}`);
    stmt(ctx.db, 'UPDATE accounts SET settings = ? WHERE address = ?').run(mergeSetting(row.settings, args.key, args.value), args.address);
    return null;
  },

  addAlias(ctx: WriteContext, args: { address: string; targets: string[] }) {
    const domain = args.address.slice(args.address.lastIndexOf('@') + 1);
    const domainId = domainIdOf(ctx.db, domain);
    if (stmt(ctx.db, 'SELECT 1 FROM accounts WHERE address = ?').get(args.address)) {
      throw new StoreError('exists', `${args.address} is already a user`);
    }
    if (stmt(ctx.db, 'SELECT 1 FROM aliases WHERE address = ?').get(args.address)) {
      throw new StoreError('exists', `alias ${args.address} already exists`);
    }
    stmt(ctx.db, 'INSERT INTO aliases(address, domain_id, targets) VALUES (?, ?, ?)').run(args.address, domainId, JSON.stringify(args.targets));
    return null;
  },

  removeAlias(ctx: WriteContext, args: { address: string }) {
    const info = stmt(ctx.db, 'DELETE FROM aliases WHERE address = ?').run(args.address);
    if (info.changes === 0) throw new StoreError('not-found', `unknown alias ${args.address}`);
    return null;
  },

  /**
   * Removes unreferenced blob rows; their files are unlinked by the writer after the commit. A
   * composed blob releases its parts, which go in the same run when nothing else uses them.
   */
  collectGarbage(ctx: WriteContext, args: { limit: number }) {
    const select = stmt(ctx.db, 'SELECT id, data IS NULL AS onDisk, parts FROM blobs WHERE refcount <= 0 LIMIT ?');
    const remove = stmt(ctx.db, 'DELETE FROM blobs WHERE id = ? AND refcount <= 0');
    let removed = 0;
    while (removed < args.limit) {
      const rows = select.all(args.limit - removed) as Array<{ id: string; onDisk: number; parts: string | null }>;
      if (rows.length === 0) break;
      for (const row of rows) {
        remove.run(row.id);
        if (row.onDisk) ctx.orphanedBlobs.push(row.id);
        if (row.parts) for (const segment of decodeSegments(row.parts)) if ('part' in segment) releaseBlob(ctx, segment.part, 1);
      }
      removed += rows.length;
    }
    return removed;
  },

  /** A blob put for a delivery that stored nothing: its file goes unless a row references it. */
  discardBlob(ctx: WriteContext, args: { blobId: string; partIds?: string[] }) {
    const exists = stmt(ctx.db, 'SELECT 1 FROM blobs WHERE id = ?');
    for (const id of [args.blobId, ...(args.partIds ?? [])]) if (!exists.get(id)) ctx.orphanedBlobs.push(id);
    return null;
  },

  /**
   * Stores one message for several recipients, all or nothing. Quotas are checked here, inside
   * the transaction, so concurrent deliveries can never push usage past a limit together.
   */
  deliver(ctx: WriteContext, req: DeliveryRequest): DeliveryResult {
    const { db } = ctx;
    const pending = new Map<number, { bytes: number; messages: number }>();
    const outcomes: RecipientOutcome[] = [];
    let overQuota = false;
    const usageOf = stmt(db, 'SELECT used_bytes AS bytes, used_messages AS messages FROM accounts WHERE id = ?');
    for (const rcpt of req.recipients) {
      const size = rcpt.headerPrefix.length + req.blobSize;
      const usage = usageOf.get(rcpt.accountId) as { bytes: number; messages: number } | undefined;
      if (!usage) throw new StoreError('not-found', `account ${rcpt.accountId} no longer exists`);
      const already = pending.get(rcpt.accountId) ?? { bytes: 0, messages: 0 };
      const after = { bytes: usage.bytes + already.bytes + size, messages: usage.messages + already.messages + 1 };
      pending.set(rcpt.accountId, { bytes: already.bytes + size, messages: already.messages + 1 });
      const limit = rcpt.quota;
      if (limit && ((limit.bytes !== null && after.bytes > limit.bytes) || (limit.messages !== null && after.messages > limit.messages))) {
        overQuota = true;
        outcomes.push({ accountId: rcpt.accountId, status: 'over-quota', usage, limit, size });
      } else {
        outcomes.push({ accountId: rcpt.accountId, status: 'fits' });
      }
    }
    if (overQuota) return { stored: false, outcomes };

    // The only writer unlinks orphaned files between transactions, so a file seen by
    // referenceBlob stays until this commit makes it referenced again.
    referenceBlob(ctx, req, req.recipients.length);
    const mailboxOf = stmt(db, 'SELECT id, uid_next AS uidNext, highest_modseq AS modseq FROM mailboxes WHERE account_id = ? AND special_use = ?');
    const bumpMailbox = stmt(db, 'UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?');
    const insert = stmt(db, 
      'INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob_id, header_prefix, crlf_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const addUsage = stmt(db, 'UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + 1 WHERE id = ?');
    req.recipients.forEach((rcpt, i) => {
      const mailbox = mailboxOf.get(rcpt.accountId, rcpt.mailbox) as { id: number; uidNext: number; modseq: number } | undefined;
      if (!mailbox) throw new StoreError('not-found', `account ${rcpt.accountId} has no ${rcpt.mailbox} mailbox`);
      const size = rcpt.headerPrefix.length + req.blobSize;
      const modseq = mailbox.modseq + 1;
      const info = insert.run(mailbox.id, mailbox.uidNext, modseq, (rcpt.flags ?? []).join(' '), req.internalDate.getTime(), size, req.blobId, rcpt.headerPrefix, crlfSizeWith(rcpt.headerPrefix, req.crlfSize));
      bumpMailbox.run(mailbox.uidNext + 1, modseq, mailbox.id);
      addUsage.run(size, rcpt.accountId);
      outcomes[i] = { accountId: rcpt.accountId, status: 'stored', mailboxId: mailbox.id, uid: mailbox.uidNext, messageId: Number(info.lastInsertRowid) };
    });
    return { stored: true, outcomes };
  },
} as const;


// ---------------------------------------------------------------------------------------------
// Mailboxes and messages (IMAP, POP3, retention). Every change takes the mailbox's next MODSEQ
// (RFC 7162 §3.1.1: per mailbox, strictly increasing) and keeps usage in the same transaction.

interface MessageRow {
  id: number;
  mailbox_id: number;
  uid: number;
  modseq: number;
  flags: string;
  internal_date: number;
  size: number;
  blob_id: string;
  pop_retrieved_at?: number | null;
}

export function toSummary(row: MessageRow): MessageSummary {
  return {
    id: row.id,
    uid: row.uid,
    modSeq: row.modseq,
    flags: row.flags ? row.flags.split(' ') : [],
    internalDate: new Date(row.internal_date),
    size: row.size,
    blobId: row.blob_id,
    popRetrievedAt: row.pop_retrieved_at === null || row.pop_retrieved_at === undefined ? null : new Date(row.pop_retrieved_at),
  };
}

export const SUMMARY_COLUMNS = 'id, mailbox_id, uid, modseq, flags, internal_date, size, blob_id, pop_retrieved_at';

function mailboxRow(db: Database.Database, mailboxId: number) {
  const row = stmt(db, 'SELECT id, account_id AS accountId, name, uid_next AS uidNext, highest_modseq AS modseq, uid_validity AS uidValidity FROM mailboxes WHERE id = ?').get(mailboxId) as
    | { id: number; accountId: number; name: string; uidNext: number; modseq: number; uidValidity: number }
    | undefined;
  if (!row) throw new StoreError('not-found', `mailbox ${mailboxId} does not exist`);
  return row;
}

function nextModSeq(db: Database.Database, mailboxId: number): number {
  const row = mailboxRow(db, mailboxId);
  const modseq = row.modseq + 1;
  stmt(db, 'UPDATE mailboxes SET highest_modseq = ? WHERE id = ?').run(modseq, mailboxId);
  return modseq;
}

function selectByUids(db: Database.Database, mailboxId: number, uids: number[]): MessageRow[] {
  const rows: MessageRow[] = [];
  const one = stmt(db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ? AND uid = ?`);
  for (const uid of [...new Set(uids)].sort((a, b) => a - b)) {
    const row = one.get(mailboxId, uid) as MessageRow | undefined;
    if (row) rows.push(row);
  }
  return rows;
}

function quotaFailure(db: Database.Database, accountId: number, addBytes: number, addMessages: number, quota: QuotaLimit | undefined) {
  if (!quota) return null;
  const usage = stmt(db, 'SELECT used_bytes AS bytes, used_messages AS messages FROM accounts WHERE id = ?').get(accountId) as { bytes: number; messages: number };
  if ((quota.bytes !== null && usage.bytes + addBytes > quota.bytes) || (quota.messages !== null && usage.messages + addMessages > quota.messages)) {
    return { ok: false as const, reason: 'over-quota' as const, usage, limit: quota };
  }
  return null;
}

/** Deletes message rows: usage, blob references and the expunge log follow in this transaction. */
function removeMessages(ctx: WriteContext, mailboxId: number, rows: MessageRow[], modseq: number): void {
  if (rows.length === 0) return;
  const mailbox = mailboxRow(ctx.db, mailboxId);
  const del = stmt(ctx.db, 'DELETE FROM messages WHERE id = ?');
  const log = stmt(ctx.db, 'INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq) VALUES (?, ?, ?)');
  let bytes = 0;
  const blobs = new Map<string, number>();
  for (const row of rows) {
    del.run(row.id);
    log.run(mailboxId, row.uid, modseq);
    bytes += row.size;
    blobs.set(row.blob_id, (blobs.get(row.blob_id) ?? 0) + 1);
  }
  stmt(ctx.db, 'UPDATE accounts SET used_bytes = used_bytes - ?, used_messages = used_messages - ? WHERE id = ?').run(bytes, rows.length, mailbox.accountId);
  for (const [blobId, count] of blobs) releaseBlob(ctx, blobId, count);
}

function normalizeFlags(flags: string[]): string[] {
  const seen = new Map<string, string>();
  for (const flag of flags) if (flag && !seen.has(flag.toLowerCase())) seen.set(flag.toLowerCase(), flag);
  return [...seen.values()];
}

export const mailboxWrites = {
  createMailbox(ctx: WriteContext, args: { accountId: number; name: string; specialUse: string | null }) {
    const exists = stmt(ctx.db, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(args.accountId, args.name);
    if (exists) throw new StoreError('exists', `mailbox ${args.name} already exists`);
    const info = stmt(ctx.db, 'INSERT INTO mailboxes(account_id, name, special_use, uid_validity) VALUES (?, ?, ?, ?)').run(
      args.accountId,
      args.name,
      args.specialUse,
      nextCounter(ctx.db, 'uid_validity', Math.floor(Date.now() / 1000)),
    );
    return Number(info.lastInsertRowid);
  },

  deleteMailbox(ctx: WriteContext, args: { accountId: number; mailboxId: number }) {
    const mailbox = mailboxRow(ctx.db, args.mailboxId);
    if (mailbox.accountId !== args.accountId) throw new StoreError('not-found', 'no such mailbox');
    const rows = stmt(ctx.db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ?`).all(args.mailboxId) as MessageRow[];
    removeMessages(ctx, args.mailboxId, rows, mailbox.modseq + 1);
    stmt(ctx.db, 'DELETE FROM expunged WHERE mailbox_id = ?').run(args.mailboxId);
    stmt(ctx.db, 'DELETE FROM mailboxes WHERE id = ?').run(args.mailboxId);
    return null;
  },

  renameMailbox(ctx: WriteContext, args: { accountId: number; mailboxId: number; newName: string }) {
    const mailbox = mailboxRow(ctx.db, args.mailboxId);
    if (mailbox.accountId !== args.accountId) throw new StoreError('not-found', 'no such mailbox');
    if (stmt(ctx.db, 'SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?').get(args.accountId, args.newName)) {
      throw new StoreError('exists', `mailbox ${args.newName} already exists`);
    }
    if (mailbox.name === 'INBOX') {
      // RFC 9051 §6.3.6: renaming INBOX moves its messages to a new mailbox; INBOX stays, empty.
      const target = mailboxWrites.createMailbox(ctx, { accountId: args.accountId, name: args.newName, specialUse: null });
      const rows = stmt(ctx.db, `SELECT ${SUMMARY_COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid`).all(args.mailboxId) as MessageRow[];
      moveRows(ctx, args.mailboxId, rows, target);
      return null;
    }
    const children = stmt(ctx.db, "SELECT id, name FROM mailboxes WHERE account_id = ? AND substr(name, 1, ?) = ?").all(
      args.accountId,
      mailbox.name.length + 1,
      mailbox.name + '/',
    ) as Array<{ id: number; name: string }>;
    // A renamed mailbox is a different mailbox to clients: new UIDVALIDITY (RFC 9051 §2.3.1.1 allows keeping it; changing is safe).
    stmt(ctx.db, 'UPDATE mailboxes SET name = ? WHERE id = ?').run(args.newName, args.mailboxId);
    for (const child of children) {
      stmt(ctx.db, 'UPDATE mailboxes SET name = ? WHERE id = ?').run(args.newName + child.name.slice(mailbox.name.length), child.id);
    }
    return null;
  },

  setSubscribed(ctx: WriteContext, args: { mailboxId: number; subscribed: boolean }) {
    stmt(ctx.db, 'UPDATE mailboxes SET subscribed = ? WHERE id = ?').run(args.subscribed ? 1 : 0, args.mailboxId);
    return null;
  },

  appendMessage(
    ctx: WriteContext,
    args: StagedBlob & { accountId: number; mailboxId: number; flags: string[]; internalDate: number; quota?: QuotaLimit },
  ) {
    const mailbox = mailboxRow(ctx.db, args.mailboxId);
    if (mailbox.accountId !== args.accountId) throw new StoreError('not-found', 'no such mailbox');
    const failure = quotaFailure(ctx.db, args.accountId, args.blobSize, 1, args.quota);
    if (failure) return failure;
    referenceBlob(ctx, args, 1);
    const modseq = mailbox.modseq + 1;
    stmt(ctx.db, 'INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob_id, header_prefix, crlf_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(
      args.mailboxId,
      mailbox.uidNext,
      modseq,
      normalizeFlags(args.flags).join(' '),
      args.internalDate,
      args.blobSize,
      args.blobId,
      Buffer.alloc(0),
      args.crlfSize ?? null,
    );
    stmt(ctx.db, 'UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(mailbox.uidNext + 1, modseq, args.mailboxId);
    stmt(ctx.db, 'UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + 1 WHERE id = ?').run(args.blobSize, args.accountId);
    return { ok: true as const, uid: mailbox.uidNext, modSeq: modseq, uidValidity: mailbox.uidValidity };
  },

  updateFlags(ctx: WriteContext, args: { mailboxId: number; uids: number[]; op: FlagOperation; flags: string[]; unchangedSince?: number }): FlagUpdateResult {
    const rows = selectByUids(ctx.db, args.mailboxId, args.uids);
    const conflicts: number[] = [];
    const changed: MessageSummary[] = [];
    let modseq = 0;
    const update = stmt(ctx.db, 'UPDATE messages SET flags = ?, modseq = ? WHERE id = ?');
    for (const row of rows) {
      if (args.unchangedSince !== undefined && row.modseq > args.unchangedSince) {
        conflicts.push(row.uid);
        continue;
      }
      const current = row.flags ? row.flags.split(' ') : [];
      const lower = new Set(args.flags.map((f) => f.toLowerCase()));
      let next: string[];
      if (args.op === 'replace') next = normalizeFlags(args.flags);
      else if (args.op === 'add') next = normalizeFlags([...current, ...args.flags]);
      else next = current.filter((f) => !lower.has(f.toLowerCase()));
      if (next.join(' ') === current.join(' ')) continue;
      if (modseq === 0) modseq = nextModSeq(ctx.db, args.mailboxId);
      update.run(next.join(' '), modseq, row.id);
      changed.push(toSummary({ ...row, flags: next.join(' '), modseq }));
    }
    return { changed, conflicts };
  },

  /**
   * Removes messages. With `retention`, each removed message is also recorded in retention_log
   * (whose, where, what size, why) in the same transaction, for the storage report.
   */
  expungeMessages(ctx: WriteContext, args: { mailboxId: number; uids: number[]; retention?: RetentionRecord }) {
    const rows = selectByUids(ctx.db, args.mailboxId, args.uids);
    if (rows.length === 0) return [];
    if (args.retention) {
      const mailbox = mailboxRow(ctx.db, args.mailboxId);
      const log = stmt(ctx.db, 'INSERT INTO retention_log(account_id, at, mailbox, uid, size, reason) VALUES (?, ?, ?, ?, ?, ?)');
      for (const row of rows) {
        const reason = args.retention.reasons?.[row.uid] ?? args.retention.reason;
        log.run(mailbox.accountId, args.retention.at, mailbox.name, row.uid, row.size, reason);
      }
    }
    removeMessages(ctx, args.mailboxId, rows, nextModSeq(ctx.db, args.mailboxId));
    return rows.map((r) => r.uid);
  },

  copyMessages(ctx: WriteContext, args: { fromMailboxId: number; uids: number[]; toMailboxId: number; move: boolean; quota?: QuotaLimit }) {
    const from = mailboxRow(ctx.db, args.fromMailboxId);
    const to = mailboxRow(ctx.db, args.toMailboxId);
    if (from.accountId !== to.accountId) throw new StoreError('invalid', 'messages can only be copied within one account');
    const rows = selectByUids(ctx.db, args.fromMailboxId, args.uids);
    // A move within one account does not change usage; a copy adds every copied message.
    if (!args.move) {
      const failure = quotaFailure(ctx.db, to.accountId, rows.reduce((sum, r) => sum + r.size, 0), rows.length, args.quota);
      if (failure) return failure;
    }
    const uidMap = args.move ? moveRows(ctx, args.fromMailboxId, rows, args.toMailboxId) : copyRows(ctx, rows, args.toMailboxId);
    return { ok: true as const, uidMap, uidValidity: to.uidValidity };
  },

  /**
   * POP3: records the first time each message was retrieved (RETR, or TOP of the whole message);
   * a message already marked keeps its first date. Not a mailbox change: no MODSEQ, no event.
   */
  markRetrieved(ctx: WriteContext, args: { messageIds: number[]; at: number }) {
    const mark = stmt(ctx.db, 'UPDATE messages SET pop_retrieved_at = ? WHERE id = ? AND pop_retrieved_at IS NULL');
    let marked = 0;
    for (const id of new Set(args.messageIds)) marked += mark.run(args.at, id).changes;
    return marked;
  },
} as const;

/**
 * The CRLF size of a header prefix plus a body whose CRLF size is known: the prefix's own octets
 * when it is CRLF text ending in CRLF (as Yubin writes it), else unknown.
 */
function crlfSizeWith(prefix: Buffer, bodyCrlfSize: number | undefined): number | null {
  if (bodyCrlfSize === undefined) return null;
  if (prefix.length === 0) return bodyCrlfSize;
  const endsInCrlf = prefix.length >= 2 && prefix[prefix.length - 2] === 0x0d && prefix[prefix.length - 1] === 0x0a;
  return endsInCrlf && isCrlfClean(prefix) ? prefix.length + bodyCrlfSize : null;
}

/** Inserts copies of rows into a mailbox with new UIDs; usage and blob references grow. */
function copyRows(ctx: WriteContext, rows: MessageRow[], toMailboxId: number): Array<[number, number]> {
  if (rows.length === 0) return [];
  const to = mailboxRow(ctx.db, toMailboxId);
  const modseq = to.modseq + 1;
  let uid = to.uidNext;
  const uidMap: Array<[number, number]> = [];
  const insert = stmt(
    ctx.db,
    'INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob_id, header_prefix, crlf_size) SELECT ?, ?, ?, flags, internal_date, size, blob_id, header_prefix, crlf_size FROM messages WHERE id = ?',
  );
  let bytes = 0;
  for (const row of rows) {
    insert.run(toMailboxId, uid, modseq, row.id);
    stmt(ctx.db, 'UPDATE blobs SET refcount = refcount + 1 WHERE id = ?').run(row.blob_id);
    uidMap.push([row.uid, uid]);
    uid++;
    bytes += row.size;
  }
  stmt(ctx.db, 'UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?').run(uid, modseq, toMailboxId);
  stmt(ctx.db, 'UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? WHERE id = ?').run(bytes, rows.length, to.accountId);
  return uidMap;
}

/** RFC 6851 MOVE: copy then expunge the originals, in one transaction. */
function moveRows(ctx: WriteContext, fromMailboxId: number, rows: MessageRow[], toMailboxId: number): Array<[number, number]> {
  const uidMap = copyRows(ctx, rows, toMailboxId);
  if (rows.length > 0) removeMessages(ctx, fromMailboxId, rows, nextModSeq(ctx.db, fromMailboxId));
  return uidMap;
}

/**
 * Adds references to a blob, creating its row: inline bytes, a composition (its part blobs
 * referenced once more each; their files must exist), or a file that must exist.
 */
function referenceBlob(ctx: WriteContext, staged: StagedBlob, count: number): void {
  const { blobId, blobSize: size, inlineBytes, composition } = staged;
  const blob = stmt(ctx.db, 'SELECT refcount FROM blobs WHERE id = ?').get(blobId);
  if (blob) {
    stmt(ctx.db, 'UPDATE blobs SET refcount = refcount + ? WHERE id = ?').run(count, blobId);
  } else if (composition) {
    for (const segment of composition.segments) {
      if ('part' in segment) referenceBlob(ctx, { blobId: segment.part, blobSize: segment.size }, 1);
    }
    stmt(ctx.db, 'INSERT INTO blobs(id, size, refcount, data, parts) VALUES (?, ?, ?, ?, ?)').run(
      blobId,
      size,
      count,
      Buffer.from(composition.literal),
      encodeSegments(composition.segments),
    );
  } else if (inlineBytes) {
    stmt(ctx.db, 'INSERT INTO blobs(id, size, refcount, data) VALUES (?, ?, ?, ?)').run(blobId, size, count, inlineBytes);
  } else {
    if (!fs.existsSync(ctx.blobPath(blobId))) throw new StoreError('not-found', `blob ${blobId} is missing`);
    stmt(ctx.db, 'INSERT INTO blobs(id, size, refcount) VALUES (?, ?, ?)').run(blobId, size, count);
  }
}


// ---------------------------------------------------------------------------------------------
// The outbound queue and DKIM keys.

export const queueWrites = {
  enqueue(ctx: WriteContext, req: EnqueueRequest): number {
    referenceBlob(ctx, req, 1);
    const info = stmt(
      ctx.db,
      'INSERT INTO queue_messages(blob_id, size, sender, envid, ret, account_id, kind, smtputf8, received_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(req.blobId, req.blobSize, req.sender, req.envid, req.ret, req.accountId, req.kind, req.smtpUtf8 ? 1 : 0, req.receivedAt.getTime(), req.expiresAt.getTime());
    const messageId = Number(info.lastInsertRowid);
    const insert = stmt(ctx.db, 'INSERT INTO queue_recipients(message_id, address, domain, orcpt, notify, state, next_attempt_at) VALUES (?, ?, ?, ?, ?, \'queued\', ?)');
    for (const rcpt of req.recipients) {
      const domain = rcpt.address.slice(rcpt.address.lastIndexOf('@') + 1).toLowerCase();
      insert.run(messageId, rcpt.address, domain, rcpt.orcpt, rcpt.notify ? rcpt.notify.join(',') : null, req.receivedAt.getTime());
    }
    return messageId;
  },

  /** Claims due recipients by moving their next attempt to the lease end; returns their ids. */
  claimDueRecipients(ctx: WriteContext, args: { now: number; leaseUntil: number; limit: number }): number[] {
    const rows = stmt(ctx.db, "SELECT id FROM queue_recipients WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?").all(args.now, args.limit) as Array<{ id: number }>;
    const lease = stmt(ctx.db, 'UPDATE queue_recipients SET next_attempt_at = ?, leased = 1 WHERE id = ?');
    for (const row of rows) lease.run(args.leaseUntil, row.id);
    return rows.map((row) => row.id);
  },

  updateQueueRecipients(ctx: WriteContext, args: { updates: Array<QueueRecipientUpdate & { attemptAtMs?: number; nextAttemptAtMs?: number }> }): number[] {
    const updated: number[] = [];
    for (const u of args.updates) {
      const row = stmt(ctx.db, 'SELECT attempts, next_attempt_at, last_attempt_at, last_reply, delay_notified, reported FROM queue_recipients WHERE id = ?').get(u.recipientId) as
        | { attempts: number; next_attempt_at: number; last_attempt_at: number | null; last_reply: string | null; delay_notified: number; reported: number }
        | undefined;
      if (!row) continue; // deleted by an admin meanwhile
      updated.push(u.recipientId);
      stmt(ctx.db, 'UPDATE queue_recipients SET state = ?, attempts = ?, next_attempt_at = ?, last_attempt_at = ?, last_reply = ?, delay_notified = ?, reported = ?, leased = 0 WHERE id = ?').run(
        u.state,
        row.attempts + (u.attempted ? 1 : 0),
        u.nextAttemptAtMs ?? row.next_attempt_at,
        u.attemptAtMs ?? row.last_attempt_at,
        u.lastReply === undefined ? row.last_reply : u.lastReply === null ? null : JSON.stringify(u.lastReply),
        u.delayNotified === undefined ? row.delay_notified : u.delayNotified ? 1 : 0,
        u.reported === undefined ? row.reported : u.reported ? 1 : 0,
        u.recipientId,
      );
    }
    return updated;
  },

  removeFinishedQueueMessages(ctx: WriteContext, args: { limit: number }): number[] {
    const rows = stmt(
      ctx.db,
      "SELECT m.id, m.blob_id FROM queue_messages m WHERE NOT EXISTS (SELECT 1 FROM queue_recipients r WHERE r.message_id = m.id AND (r.state = 'queued' OR r.reported = 0)) LIMIT ?",
    ).all(args.limit) as Array<{ id: number; blob_id: string }>;
    for (const row of rows) removeQueueMessage(ctx, row.id, row.blob_id);
    return rows.map((row) => row.id);
  },

  retryQueue(ctx: WriteContext, args: { id: number | null; now: number }): number {
    const info =
      args.id === null
        ? stmt(ctx.db, "UPDATE queue_recipients SET next_attempt_at = ? WHERE state = 'queued'").run(args.now)
        : stmt(ctx.db, "UPDATE queue_recipients SET next_attempt_at = ? WHERE state = 'queued' AND message_id = ?").run(args.now, args.id);
    return info.changes;
  },

  releaseQueueLeases(ctx: WriteContext, args: { now: number }): number {
    return stmt(ctx.db, "UPDATE queue_recipients SET next_attempt_at = ?, leased = 0 WHERE leased = 1 AND state = 'queued'").run(args.now).changes;
  },

  deleteQueueMessage(ctx: WriteContext, args: { id: number }): boolean {
    const row = stmt(ctx.db, 'SELECT blob_id FROM queue_messages WHERE id = ?').get(args.id) as { blob_id: string } | undefined;
    if (!row) return false;
    removeQueueMessage(ctx, args.id, row.blob_id);
    return true;
  },

  setAccountState(ctx: WriteContext, args: { accountId: number; key: string; value: string | null }) {
    if (args.value === null) stmt(ctx.db, 'DELETE FROM account_state WHERE account_id = ? AND key = ?').run(args.accountId, args.key);
    else stmt(ctx.db, 'INSERT INTO account_state(account_id, key, value) VALUES (?, ?, ?) ON CONFLICT(account_id, key) DO UPDATE SET value = excluded.value').run(args.accountId, args.key, args.value);
    return null;
  },

  recordQuotaEvent(ctx: WriteContext, args: { accountId: number; at: number; sender: string; size: number; outcome: string; subject: string | null }) {
    // A retry of mail the user was already told about (same sender, size and outcome within two
    // days) is kept for the record but not reported again.
    const told = stmt(
      ctx.db,
      'SELECT 1 FROM quota_events WHERE account_id = ? AND reported = 1 AND sender = ? AND size = ? AND outcome = ? AND at > ? LIMIT 1',
    ).get(args.accountId, args.sender, args.size, args.outcome, args.at - 2 * 86400_000);
    // Only accounts that exist (a removed account's events would have nowhere to go).
    stmt(ctx.db, 'INSERT INTO quota_events(account_id, at, sender, size, outcome, subject, reported) SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM accounts WHERE id = ?)').run(
      args.accountId,
      args.at,
      args.sender,
      args.size,
      args.outcome,
      args.subject,
      told ? 1 : 0,
      args.accountId,
    );
    return null;
  },

  markQuotaEventsReported(ctx: WriteContext, args: { ids: number[] }) {
    const update = stmt(ctx.db, 'UPDATE quota_events SET reported = 1 WHERE id = ?');
    for (const id of args.ids) update.run(id);
    // Reported events are kept a month for the storage report, then dropped.
    stmt(ctx.db, 'DELETE FROM quota_events WHERE reported = 1 AND at < ?').run(Date.now() - 30 * 86400_000);
    return null;
  },

  addDkimKey(ctx: WriteContext, args: { domain: string; selector: string; algorithm: string; privateKey: string; publicKey: string }) {
    const exists = stmt(ctx.db, 'SELECT 1 FROM dkim_keys WHERE domain = ? AND selector = ?').get(args.domain, args.selector);
    if (exists) throw new StoreError('exists', `${args.domain} already has a DKIM key with selector ${args.selector}`);
    stmt(ctx.db, 'INSERT INTO dkim_keys(domain, selector, algorithm, private_key, public_key, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      args.domain,
      args.selector,
      args.algorithm,
      args.privateKey,
      args.publicKey,
      Date.now(),
    );
    return null;
  },
} as const;

function removeQueueMessage(ctx: WriteContext, id: number, blobId: string): void {
  stmt(ctx.db, 'DELETE FROM queue_recipients WHERE message_id = ?').run(id);
  stmt(ctx.db, 'DELETE FROM queue_messages WHERE id = ?').run(id);
  releaseBlob(ctx, blobId, 1);
}

export const allWrites = { ...writes, ...mailboxWrites, ...queueWrites } as const;
export type AllWriteOps = typeof allWrites;

export type WriteOps = typeof allWrites;
export type WriteOpName = keyof WriteOps;
export type WriteArgs<K extends WriteOpName> = Parameters<WriteOps[K]>[1];
export type WriteResult<K extends WriteOpName> = ReturnType<WriteOps[K]>;
