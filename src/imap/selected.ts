// A session's view of its selected mailbox: the message sequence numbers it has announced, and
// what it still has to tell the client about changes made by others (new mail, flag changes,
// expunges). RFC 9051 §7.4.1 / §5.5: EXPUNGE may not be sent while a command that uses sequence
// numbers (FETCH, STORE, SEARCH without UID) is in progress; until announced, an expunged message
// keeps its sequence number.

import type { Mailbox, MessageSummary, Store } from '../store/types.js';

export interface ViewMessage {
  uid: number;
  id: number;
  flags: string[];
  modSeq: number;
  size: number;
  internalDate: Date;
  blobId: string;
  /** Expunged by someone else, not yet announced to this client. */
  expunged: boolean;
}

export interface PendingUpdates {
  expungedSeqs: number[]; // sequence numbers, in the order to announce them (descending is not required; each shifts the rest)
  expungedUids: number[];
  exists: number | null;
  flagChanges: ViewMessage[];
}

export class SelectedMailbox {
  messages: ViewMessage[] = [];
  private readonly byUid = new Map<number, ViewMessage>();
  /** Every change up to this MODSEQ is known to the view. */
  syncedModSeq = 0;
  uidNext = 1;
  private newSinceAnnounce = false;
  private readonly flagDirty = new Set<number>();

  private constructor(
    readonly mailbox: Mailbox,
    readonly readOnly: boolean,
  ) {}

  static async open(store: Store, mailbox: Mailbox, readOnly: boolean): Promise<SelectedMailbox> {
    const view = new SelectedMailbox(mailbox, readOnly);
    // Read the MODSEQ before the list: a change landing in between is then seen again by the next
    // refresh (harmless), never missed.
    const fresh = (await store.getMailboxById(mailbox.id)) ?? mailbox;
    view.syncedModSeq = fresh.highestModSeq;
    view.uidNext = fresh.uidNext;
    for (const summary of await store.listMessageSummaries(mailbox.id)) view.add(summary);
    view.newSinceAnnounce = false;
    return view;
  }

  /** uid → index in messages; rebuilt lazily after removals (seqOf is called per FETCH line). */
  private seqIndex: Map<number, number> | null = new Map();

  private add(summary: MessageSummary): void {
    const message: ViewMessage = { ...summary, expunged: false };
    this.messages.push(message);
    this.byUid.set(summary.uid, message);
    this.seqIndex?.set(summary.uid, this.messages.length - 1);
  }

  get exists(): number {
    return this.messages.length;
  }

  get highestModSeq(): number {
    let highest = this.syncedModSeq;
    for (const m of this.messages) if (m.modSeq > highest) highest = m.modSeq;
    return highest;
  }

  byUidGet(uid: number): ViewMessage | undefined {
    return this.byUid.get(uid);
  }

  seqOf(uid: number): number {
    if (!this.seqIndex) {
      this.seqIndex = new Map();
      this.messages.forEach((m, i) => this.seqIndex!.set(m.uid, i));
    }
    const index = this.seqIndex.get(uid);
    return index === undefined ? 0 : index + 1;
  }

  /** Pulls changes made since the last refresh (by anyone) from the store into the view. */
  async refresh(store: Store): Promise<void> {
    const changes = await store.changesSince(this.mailbox.id, this.syncedModSeq);
    for (const uid of changes.expunged) {
      const message = this.byUid.get(uid);
      if (message && !message.expunged) message.expunged = true;
    }
    for (const summary of changes.changed) {
      const known = this.byUid.get(summary.uid);
      if (known) {
        if (summary.modSeq > known.modSeq) {
          known.modSeq = summary.modSeq;
          if (known.flags.join(' ') !== summary.flags.join(' ')) {
            known.flags = summary.flags;
            this.flagDirty.add(known.uid);
          }
        }
      } else {
        this.add(summary);
        this.newSinceAnnounce = true;
      }
    }
    // Keep sequence order = UID order (new UIDs are always larger than those we have).
    this.uidNext = Math.max(this.uidNext, changes.uidNext);
    this.syncedModSeq = Math.max(this.syncedModSeq, changes.highestModSeq);
  }

  /** Applies this session's own flag change (already reported to the client by the command). */
  applyOwnFlags(summary: MessageSummary): void {
    const message = this.byUid.get(summary.uid);
    if (!message) return;
    message.flags = summary.flags;
    message.modSeq = Math.max(message.modSeq, summary.modSeq);
    this.flagDirty.delete(summary.uid);
  }

  /**
   * Removes messages this session expunged itself (or whose expunge it now announces); returns
   * their sequence numbers highest first, the order in which each EXPUNGE leaves the rest valid.
   */
  removeOwn(uids: number[]): number[] {
    const doomed = new Set(uids.filter((uid) => this.byUid.has(uid)));
    if (doomed.size === 0) return [];
    const seqs: number[] = [];
    this.messages.forEach((m, i) => {
      if (doomed.has(m.uid)) seqs.push(i + 1);
    });
    this.messages = this.messages.filter((m) => !doomed.has(m.uid));
    for (const uid of doomed) {
      this.byUid.delete(uid);
      this.flagDirty.delete(uid);
    }
    this.seqIndex = null;
    return seqs.reverse();
  }

  /**
   * What to announce now. With allowExpunge false (during FETCH/STORE/SEARCH by sequence
   * number), expunged messages keep their place and only EXISTS and flag changes go out.
   */
  takeUpdates(allowExpunge: boolean): PendingUpdates {
    const updates: PendingUpdates = { expungedSeqs: [], expungedUids: [], exists: null, flagChanges: [] };
    if (allowExpunge) {
      const gone = this.messages.filter((m) => m.expunged).map((m) => m.uid);
      updates.expungedUids = gone.sort((a, b) => a - b);
      updates.expungedSeqs = this.removeOwn(gone);
    }
    if (this.newSinceAnnounce || updates.expungedSeqs.length > 0) {
      if (this.newSinceAnnounce) updates.exists = this.messages.length;
      this.newSinceAnnounce = false;
    }
    for (const uid of this.flagDirty) {
      const message = this.byUid.get(uid);
      if (message && !message.expunged) updates.flagChanges.push(message);
    }
    this.flagDirty.clear();
    return updates;
  }
}
