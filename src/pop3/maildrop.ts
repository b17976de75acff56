// A POP3 session's maildrop (RFC 1939 §3, §5): the INBOX as it was at login, numbered 1..n, with
// the session's deletion marks. Sizes are those of the message as POP3 sends it (CRLF line ends);
// unique-ids are "UIDVALIDITY.UID" of INBOX, stable for the life of a message.

import { StoreError, type Mailbox, type Store, type StoredMessage } from '../store/types.js';
import { pop3Message } from './wire.js';

export interface MaildropEntry {
  /** Message number, 1-based (RFC 1939 §5). */
  readonly number: number;
  readonly id: number;
  readonly uid: number;
  readonly blobId: string;
  /** Octets as stored (header prefix plus body). */
  readonly storedSize: number;
  /** No header prefix: stored as a client gave it (IMAP APPEND), line ends not checked. */
  readonly appended: boolean;
  /** Octets as POP3 sends them, once known. */
  size: number | null;
  deleted: boolean;
}

/**
 * POP3 sizes of messages without a header prefix (IMAP APPEND, which keeps the client's line
 * ends), by blob id: blobs are named by their content, so an entry never goes stale. Bounded.
 */
const appendedSizes = new Map<string, number>();
/** Read-ahead of a download (see Maildrop.readAhead). */
const READ_AHEAD_MESSAGES = 32;
const READ_AHEAD_BYTES = 1024 * 1024;
const APPENDED_SIZES_MAX = 20_000;

function rememberSize(blobId: string, size: number): void {
  if (appendedSizes.size >= APPENDED_SIZES_MAX) {
    const oldest = appendedSizes.keys().next();
    if (!oldest.done) appendedSizes.delete(oldest.value);
  }
  appendedSizes.set(blobId, size);
}

export class Maildrop {
  private constructor(
    private readonly store: Store,
    readonly mailbox: Mailbox,
    readonly entries: MaildropEntry[],
  ) {
    // A message removed by another session (an IMAP EXPUNGE, retention) must not be sent from the
    // read-ahead: removals in this process are told at once, those of other processes (the CLI)
    // within the store's poll of them.
    this.unsubscribe = store.onChange((change) => {
      if (this.ahead.size === 0) return;
      if (change.kind === 'external' || (change.kind === 'expunged' && (change.mailboxId === mailbox.id || change.mailboxId === null))) this.ahead.clear();
    });
  }

  /** Messages read ahead of the client (see readAhead), by id. */
  private readonly ahead = new Map<number, { uid: number; bytes: Buffer }>();
  private readonly unsubscribe: () => void;

  /** Snapshots the account's INBOX; null when the account has none. */
  static async open(store: Store, accountId: number): Promise<Maildrop | null> {
    const mailbox = await store.getMailbox(accountId, 'INBOX');
    if (!mailbox) return null;
    const messages = await store.listMessages(mailbox.id);
    return new Maildrop(store, mailbox, messages.map((message, i) => Maildrop.entryOf(message, i + 1)));
  }

  private static entryOf(message: StoredMessage, number: number): MaildropEntry {
    // The store records the CRLF size of every message it stores. For messages stored before it
    // did: those delivered over SMTP (the only ones with a header prefix) were stored with CRLF
    // line ends and a final CRLF (smtp/inbound.ts), so their stored size is what POP3 sends;
    // others (APPEND) may hold bare LFs or lack the final CRLF, and are measured when first needed.
    const appended = message.headerPrefix.length === 0;
    const size = message.crlfSize ?? (appended ? (appendedSizes.get(message.blobId) ?? null) : message.size);
    return { number, id: message.id, uid: message.uid, blobId: message.blobId, storedSize: message.size, appended, size, deleted: false };
  }

  get count(): number {
    return this.entries.length;
  }

  /** RFC 1939 §8 UIDL: unique-id of a message, 1 to 70 characters 0x21-0x7E. */
  uniqueId(entry: MaildropEntry): string {
    return `${this.mailbox.uidValidity}.${entry.uid}`;
  }

  /** The entry for a message number, or why there is none. */
  lookup(number: number): MaildropEntry | 'no-such-message' | 'deleted' {
    const entry = this.entries[number - 1];
    if (!entry || number < 1) return 'no-such-message';
    return entry.deleted ? 'deleted' : entry;
  }

  live(): MaildropEntry[] {
    return this.entries.filter((e) => !e.deleted);
  }

  deleted(): MaildropEntry[] {
    return this.entries.filter((e) => e.deleted);
  }

  /** RSET: unmarks every message; returns how many were marked. */
  undelete(): number {
    let n = 0;
    for (const entry of this.entries) {
      if (entry.deleted) n++;
      entry.deleted = false;
    }
    return n;
  }

  /**
   * The message's octets as POP3 sends them, or null when another session removed it meanwhile.
   * Records the size it measured (and returns the size announced before, if any, for checking).
   */
  async read(entry: MaildropEntry): Promise<{ message: Buffer; announced: number | null } | null> {
    let stored: Buffer;
    try {
      // Read ahead and still valid (nothing was removed from the mailbox since: see the constructor).
      const found = this.ahead.get(entry.id) ?? (await this.readAhead(entry));
      this.ahead.delete(entry.id);
      // Row ids may be reused once a message is gone; (mailbox, uid) never is: the row read
      // must still be this message's.
      if (!found || found.uid !== entry.uid) return null;
      stored = found.bytes;
    } catch (err) {
      if (err instanceof StoreError && err.code === 'not-found') return null;
      // Expunged and its file collected between the row and the file read.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const message = pop3Message(stored);
    const announced = entry.size;
    entry.size = message.length;
    if (entry.appended && announced === null) rememberSize(entry.blobId, message.length);
    return { message, announced };
  }

  /** The session is over: no more change events, no read-ahead kept. */
  close(): void {
    this.unsubscribe();
    this.ahead.clear();
  }

  /**
   * Reads `entry` and the messages after it that are not yet read (clients download in order),
   * in one store read: at most READ_AHEAD_MESSAGES, and about READ_AHEAD_BYTES by stored size.
   */
  private async readAhead(entry: MaildropEntry): Promise<{ uid: number; bytes: Buffer } | undefined> {
    const ids = [entry.id];
    let bytes = entry.storedSize;
    for (let i = entry.number; i < this.entries.length && ids.length < READ_AHEAD_MESSAGES; i++) {
      const next = this.entries[i]!;
      if (next.deleted || this.ahead.has(next.id)) continue;
      if (bytes + next.storedSize > READ_AHEAD_BYTES) break;
      bytes += next.storedSize;
      ids.push(next.id);
    }
    this.ahead.clear();
    const read = await this.store.readMessagesInMailbox(this.mailbox.id, ids);
    for (const [id, found] of read) if (id !== entry.id) this.ahead.set(id, found);
    return read.get(entry.id);
  }

  /** The POP3 size of a message, measuring it if needed (a removed message keeps its stored size). */
  async sizeOf(entry: MaildropEntry): Promise<number> {
    if (entry.size !== null) return entry.size;
    const read = await this.read(entry);
    if (!read) entry.size = entry.storedSize;
    return entry.size ?? entry.storedSize;
  }

  /** STAT (RFC 1939 §5): messages not marked deleted, and their octets. */
  async stat(): Promise<{ count: number; octets: number }> {
    let octets = 0;
    const live = this.live();
    for (const entry of live) octets += await this.sizeOf(entry);
    return { count: live.length, octets };
  }
}
