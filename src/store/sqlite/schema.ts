// Versioned schema migrations for the embedded store. PRAGMA user_version holds the number of
// migrations applied; each migration runs once, in its own transaction. Append, never edit.

import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  // 1: domains, accounts, aliases, mailboxes, messages, blobs
  `
  CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    settings    TEXT NOT NULL DEFAULT '{}'
  );
  CREATE TABLE accounts (
    id             INTEGER PRIMARY KEY,
    address        TEXT NOT NULL UNIQUE,
    domain_id      INTEGER NOT NULL REFERENCES domains(id),
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    settings       TEXT NOT NULL DEFAULT '{}',
    used_bytes     INTEGER NOT NULL DEFAULT 0,   -- kept in the same transaction as every insert/delete
    used_messages  INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE aliases (
    address    TEXT PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domains(id),
    targets    TEXT NOT NULL                       -- JSON array of addresses
  );
  CREATE TABLE mailboxes (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    special_use      TEXT,
    uid_validity     INTEGER NOT NULL,
    uid_next         INTEGER NOT NULL DEFAULT 1,
    highest_modseq   INTEGER NOT NULL DEFAULT 1,
    subscribed       INTEGER NOT NULL DEFAULT 1,
    UNIQUE (account_id, name)
  );
  CREATE INDEX mailboxes_special_use ON mailboxes(account_id, special_use);
  CREATE TABLE blobs (
    id        TEXT PRIMARY KEY,                    -- SHA-256 of the content, hex
    size      INTEGER NOT NULL,
    refcount  INTEGER NOT NULL
  );
  CREATE INDEX blobs_unreferenced ON blobs(id) WHERE refcount <= 0;
  CREATE TABLE messages (
    id                INTEGER PRIMARY KEY,
    mailbox_id        INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid               INTEGER NOT NULL,
    modseq            INTEGER NOT NULL,
    flags             TEXT NOT NULL DEFAULT '',    -- space-separated
    internal_date     INTEGER NOT NULL,            -- ms since epoch
    size              INTEGER NOT NULL,            -- octets of header_prefix + blob
    blob_id           TEXT NOT NULL REFERENCES blobs(id),
    header_prefix     BLOB NOT NULL,
    pop_retrieved_at  INTEGER,
    UNIQUE (mailbox_id, uid)
  );
  CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
  );
  `,
  // 2: small message bodies live in the blobs row itself (one WAL fsync covers them); large ones
  //    stay in files. data IS NULL means "in DATA/blobs/".
  `
  ALTER TABLE blobs ADD COLUMN data BLOB;
  `,
  // 3: IMAP: expunge log (CONDSTORE/QRESYNC, and sessions catching up), change lookups by MODSEQ.
  `
  CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
  ) WITHOUT ROWID;
  CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);
  CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
  CREATE INDEX messages_blob ON messages(blob_id);
  `,
  // 4: retention: every message removed by a retention job (whose, where, what, why), for the
  //    storage report; and finding POP3-retrieved messages by retrieval date.
  `
  CREATE TABLE retention_log (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,              -- ms since epoch
    mailbox     TEXT NOT NULL,
    uid         INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    reason      TEXT NOT NULL
  );
  CREATE INDEX retention_log_account ON retention_log(account_id, at);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the database has schema version ${current}, newer than this Yubin (${MIGRATIONS.length}); upgrade Yubin`);
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}
