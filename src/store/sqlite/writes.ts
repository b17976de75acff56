// Every write of the embedded store, as plain functions of (db, args). They run inside a
// transaction opened by a writer (direct for the CLI, batched in a worker thread for the server),
// so each function is atomic and may throw StoreError to undo only its own work.

import fs from 'node:fs';
import type Database from 'better-sqlite3';
import { stmt } from './statements.js';
import { DEFAULT_MAILBOXES, StoreError, type DeliveryRequest, type DeliveryResult, type RecipientOutcome, type RawSettings } from '../types.js';

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

  /** Removes unreferenced blob rows; their files are unlinked by the writer after the commit. */
  collectGarbage(ctx: WriteContext, args: { limit: number }) {
    const rows = stmt(ctx.db, 'SELECT id, data IS NULL AS onDisk FROM blobs WHERE refcount <= 0 LIMIT ?').all(args.limit) as Array<{ id: string; onDisk: number }>;
    const remove = stmt(ctx.db, 'DELETE FROM blobs WHERE id = ? AND refcount <= 0');
    for (const row of rows) {
      remove.run(row.id);
      if (row.onDisk) ctx.orphanedBlobs.push(row.id);
    }
    return rows.length;
  },

  /** A blob put for a delivery that stored nothing: its file goes unless a row references it. */
  discardBlob(ctx: WriteContext, args: { blobId: string }) {
    const row = stmt(ctx.db, 'SELECT 1 FROM blobs WHERE id = ?').get(args.blobId);
    if (!row) ctx.orphanedBlobs.push(args.blobId);
    return !row;
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

    const blob = stmt(db, 'SELECT refcount FROM blobs WHERE id = ?').get(req.blobId) as { refcount: number } | undefined;
    if (blob) {
      stmt(db, 'UPDATE blobs SET refcount = refcount + ? WHERE id = ?').run(req.recipients.length, req.blobId);
    } else if (req.inlineBytes) {
      stmt(db, 'INSERT INTO blobs(id, size, refcount, data) VALUES (?, ?, ?, ?)').run(req.blobId, req.blobSize, req.recipients.length, req.inlineBytes);
    } else {
      // The only writer unlinks orphaned files between transactions, so a file seen here stays
      // until this commit makes it referenced again.
      if (!fs.existsSync(ctx.blobPath(req.blobId))) throw new StoreError('not-found', `blob ${req.blobId} is missing`);
      stmt(db, 'INSERT INTO blobs(id, size, refcount) VALUES (?, ?, ?)').run(req.blobId, req.blobSize, req.recipients.length);
    }
    const mailboxOf = stmt(db, 'SELECT id, uid_next AS uidNext, highest_modseq AS modseq FROM mailboxes WHERE account_id = ? AND special_use = ?');
    const bumpMailbox = stmt(db, 'UPDATE mailboxes SET uid_next = ?, highest_modseq = ? WHERE id = ?');
    const insert = stmt(db, 
      'INSERT INTO messages(mailbox_id, uid, modseq, flags, internal_date, size, blob_id, header_prefix) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const addUsage = stmt(db, 'UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + 1 WHERE id = ?');
    req.recipients.forEach((rcpt, i) => {
      const mailbox = mailboxOf.get(rcpt.accountId, rcpt.mailbox) as { id: number; uidNext: number; modseq: number } | undefined;
      if (!mailbox) throw new StoreError('not-found', `account ${rcpt.accountId} has no ${rcpt.mailbox} mailbox`);
      const size = rcpt.headerPrefix.length + req.blobSize;
      const modseq = mailbox.modseq + 1;
      const info = insert.run(mailbox.id, mailbox.uidNext, modseq, (rcpt.flags ?? []).join(' '), req.internalDate.getTime(), size, req.blobId, rcpt.headerPrefix);
      bumpMailbox.run(mailbox.uidNext + 1, modseq, mailbox.id);
      addUsage.run(size, rcpt.accountId);
      outcomes[i] = { accountId: rcpt.accountId, status: 'stored', mailboxId: mailbox.id, uid: mailbox.uidNext, messageId: Number(info.lastInsertRowid) };
    });
    return { stored: true, outcomes };
  },
} as const;

export type WriteOps = typeof writes;
export type WriteOpName = keyof WriteOps;
export type WriteArgs<K extends WriteOpName> = Parameters<WriteOps[K]>[1];
export type WriteResult<K extends WriteOpName> = ReturnType<WriteOps[K]>;
