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
  // 5: the outbound queue (one row per message, one per recipient with its own state) and DKIM
  //    signing keys. AUTOINCREMENT: a queue id shown to an admin never names another message later.
  `
  CREATE TABLE queue_messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    blob_id      TEXT NOT NULL REFERENCES blobs(id),
    size         INTEGER NOT NULL,
    sender       TEXT NOT NULL,               -- '' is the null sender
    envid        TEXT,
    ret          TEXT,                        -- FULL, HDRS or NULL
    account_id   INTEGER,                     -- submitting account, NULL for forwarded mail
    kind         TEXT NOT NULL,               -- mail | dsn
    smtputf8     INTEGER NOT NULL DEFAULT 0,
    received_at  INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
  );
  CREATE TABLE queue_recipients (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       INTEGER NOT NULL REFERENCES queue_messages(id) ON DELETE CASCADE,
    address          TEXT NOT NULL,
    domain           TEXT NOT NULL,
    orcpt            TEXT,
    notify           TEXT,                    -- comma-separated NOTIFY, NULL when none was given
    state            TEXT NOT NULL,           -- queued | delivered | relayed | failed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    last_reply       TEXT,                    -- JSON SmtpReplyRecord
    delay_notified   INTEGER NOT NULL DEFAULT 0,
    reported         INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX queue_recipients_due ON queue_recipients(next_attempt_at) WHERE state = 'queued';
  CREATE INDEX queue_recipients_message ON queue_recipients(message_id);
  CREATE INDEX queue_recipients_unreported ON queue_recipients(message_id) WHERE state <> 'queued' AND reported = 0;
  CREATE TABLE dkim_keys (
    domain       TEXT NOT NULL,
    selector     TEXT NOT NULL,
    algorithm    TEXT NOT NULL,               -- rsa | ed25519
    private_key  TEXT NOT NULL,
    public_key   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (domain, selector)
  );
  `,
  // 6: mailbox capacity notices: small per-account state (which quota warning was sent) and the
  // mail a user missed because the mailbox was full (reported in one digest).
  `
  CREATE TABLE account_state (
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
  );
  CREATE TABLE quota_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    sender      TEXT NOT NULL,
    size        INTEGER NOT NULL,             -- 0 when unknown (refused at RCPT without SIZE)
    outcome     TEXT NOT NULL,                -- deferred | refused | held
    subject     TEXT,
    reported    INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX quota_events_unreported ON quota_events(account_id) WHERE reported = 0;
  `,
  // 7: deduplication of identical attachments (src/store/dedup.ts). A composed blob keeps its
  //    literal bytes in data and its segment list in parts (JSON); each large part body is a blob
  //    row of its own, referenced once per composed blob that contains it.
  `
  ALTER TABLE blobs ADD COLUMN parts TEXT;
  `,
  // 8: the size of each message with CRLF line ends (what POP3 LIST and STAT count), recorded
  //    when it is stored so that listing a maildrop never reads bodies. NULL: stored before.
  `
  ALTER TABLE messages ADD COLUMN crlf_size INTEGER;
  `,
  // 9: which queued recipients are under a lease (claimDueRecipients): an attempt was in flight.
  //    At a start after a crash they are made due at once instead of waiting out the lease.
  `
  ALTER TABLE queue_recipients ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
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
