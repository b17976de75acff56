// Mailbox snapshots shared by the IMAP sessions of this process. Reading a 100,000-message
// mailbox and building its message list takes most of a second; a client that SELECTs it again
// (and mail clients do, all day, from several devices) should not pay that each time. The last
// snapshot of each large mailbox is kept and brought up to date from the store's change log
// (RFC 7162 MODSEQ: the messages changed and the UIDs expunged since the snapshot's MODSEQ)
// before a session copies it. Sessions never change the shared objects (see ViewMessage).

import type { Mailbox, Store } from '../store/types.js';
import { applyChanges, loadSnapshot, type MailboxSnapshot, type ViewMessage } from './selected.js';

export interface MailboxViewsOptions {
  /** Mailboxes with fewer messages are read whole at each SELECT (cheap) and not kept. */
  minMessages: number;
  /** At most this many messages kept in all snapshots together; the least recently used go first. */
  maxMessages: number;
}

export class MailboxViews {
  /** mailbox id → snapshot, least recently used first. */
  private readonly snapshots = new Map<number, MailboxSnapshot>();
  private kept = 0;
  /** One refresh per mailbox at a time: concurrent SELECTs share it. */
  private readonly pending = new Map<number, Promise<MailboxSnapshot>>();

  constructor(private readonly options: () => MailboxViewsOptions) {}

  /** The mailbox as of now. */
  async snapshot(store: Store, mailbox: Mailbox): Promise<MailboxSnapshot> {
    const running = this.pending.get(mailbox.id);
    if (running) return running;
    const work = this.bringUpToDate(store, mailbox).finally(() => this.pending.delete(mailbox.id));
    this.pending.set(mailbox.id, work);
    return work;
  }

  /** Messages kept in snapshots now (for tests and metrics). */
  get keptMessages(): number {
    return this.kept;
  }

  private async bringUpToDate(store: Store, mailbox: Mailbox): Promise<MailboxSnapshot> {
    const old = this.snapshots.get(mailbox.id);
    let next: MailboxSnapshot;
    if (!old || old.uidValidity !== mailbox.uidValidity) {
      next = await loadSnapshot(store, mailbox);
    } else {
      const changes = await store.changesSince(mailbox.id, old.syncedModSeq);
      if (changes.changed.length === 0 && changes.expunged.length === 0) {
        next = { ...old, syncedModSeq: Math.max(old.syncedModSeq, changes.highestModSeq), uidNext: Math.max(old.uidNext, changes.uidNext) };
      } else {
        let messages: ViewMessage[] = old.messages.slice();
        if (changes.expunged.length > 0) {
          const gone = new Set(changes.expunged);
          messages = messages.filter((m) => !gone.has(m.uid));
        }
        const added = applyChanges(messages, changes.changed, (index, summary) => {
          const known = messages[index]!;
          if (summary.modSeq > known.modSeq) messages[index] = { ...known, modSeq: summary.modSeq, flags: summary.flags };
        });
        // applyChanges returns only UIDs the list does not hold, in order, all above the known ones.
        for (const message of added) messages.push(message);
        next = {
          uidValidity: old.uidValidity,
          messages,
          syncedModSeq: Math.max(old.syncedModSeq, changes.highestModSeq),
          uidNext: Math.max(old.uidNext, changes.uidNext),
        };
      }
    }
    this.keep(mailbox.id, next);
    return next;
  }

  private keep(mailboxId: number, snapshot: MailboxSnapshot): void {
    const old = this.snapshots.get(mailboxId);
    if (old) {
      this.snapshots.delete(mailboxId);
      this.kept -= old.messages.length;
    }
    const { minMessages, maxMessages } = this.options();
    if (snapshot.messages.length < minMessages || snapshot.messages.length > maxMessages) return;
    this.snapshots.set(mailboxId, snapshot);
    this.kept += snapshot.messages.length;
    for (const [id, entry] of this.snapshots) {
      if (this.kept <= maxMessages) break;
      this.snapshots.delete(id);
      this.kept -= entry.messages.length;
    }
  }
}
