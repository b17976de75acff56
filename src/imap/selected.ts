// A session's view of its selected mailbox: the message sequence numbers it has announced, and
// what it still has to tell the client about changes made by others (new mail, flag changes,
// expunges). RFC 9051 §7.4.1 / §5.5: EXPUNGE may not be sent while a command that uses sequence
// numbers (FETCH, STORE, SEARCH without UID) is in progress; until announced, an expunged message
// keeps its sequence number.

import type { Mailbox, MessageSummary, Store } from '../store/types.js';

/**
 * One message as a session sees it. Immutable: a change (flags, an expunge by someone else)
 * replaces the object in the session's own list, so that sessions can share the objects of a
 * mailbox snapshot (MailboxViews) instead of each building 100,000 of them at SELECT.
 */
export interface ViewMessage {
  readonly uid: number;
  readonly id: number;
  readonly flags: readonly string[];
  readonly modSeq: number;
  readonly size: number;
  readonly internalDate: Date;
  readonly blobId: string;
  /** Expunged by someone else, not yet announced to this client. */
  readonly expunged: boolean;
}

export interface PendingUpdates {
  expungedSeqs: number[]; // sequence numbers, in the order to announce them (descending is not required; each shifts the rest)
  expungedUids: number[];
  exists: number | null;
  flagChanges: ViewMessage[];
}

/** A mailbox's messages in UID order, with the MODSEQ and UIDNEXT they are current to. */
export interface MailboxSnapshot {
  readonly uidValidity: number;
  readonly messages: readonly ViewMessage[];
  readonly syncedModSeq: number;
  readonly uidNext: number;
}

/** Flag lists are shared between messages with the same flags (most have one of a few sets). */
const internedFlags = new Map<string, readonly string[]>();

function internFlags(flags: readonly string[]): readonly string[] {
  if (flags.length === 0) return EMPTY_FLAGS;
  const key = flags.join(' ');
  const known = internedFlags.get(key);
  if (known) return known;
  if (internedFlags.size >= 4096) internedFlags.clear();
  internedFlags.set(key, flags);
  return flags;
}
const EMPTY_FLAGS: readonly string[] = Object.freeze([]);

export function viewMessage(summary: MessageSummary): ViewMessage {
  return {
    uid: summary.uid,
    id: summary.id,
    flags: internFlags(summary.flags),
    modSeq: summary.modSeq,
    size: summary.size,
    internalDate: summary.internalDate,
    blobId: summary.blobId,
    expunged: false,
  };
}

/** Reads a whole mailbox. The MODSEQ is read before the list: a change landing in between is then seen again by the next refresh (harmless), never missed. */
export async function loadSnapshot(store: Store, mailbox: Mailbox): Promise<MailboxSnapshot> {
  const fresh = (await store.getMailboxById(mailbox.id)) ?? mailbox;
  const messages = (await store.listMessageSummaries(mailbox.id)).map(viewMessage);
  return { uidValidity: fresh.uidValidity, messages, syncedModSeq: fresh.highestModSeq, uidNext: fresh.uidNext };
}

/** Where a UID is in a list sorted by UID: its index, or -1. */
export function indexOfUid(messages: readonly ViewMessage[], uid: number): number {
  let low = 0;
  let high = messages.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const at = messages[mid]!.uid;
    if (at === uid) return mid;
    if (at < uid) low = mid + 1;
    else high = mid - 1;
  }
  return -1;
}

/** Where to apply a list of changes to a snapshot: shared by sessions and by MailboxViews. */
export function applyChanges(
  messages: ViewMessage[],
  changed: readonly MessageSummary[],
  onKnown: (index: number, summary: MessageSummary) => void,
): ViewMessage[] {
  const added: ViewMessage[] = [];
  for (const summary of changed) {
    const index = indexOfUid(messages, summary.uid);
    if (index >= 0) onKnown(index, summary);
    else added.push(viewMessage(summary));
  }
  // Sequence order = UID order: new UIDs are always larger than those already known.
  added.sort((a, b) => a.uid - b.uid);
  return added;
}

export class SelectedMailbox {
  /** In UID order (= sequence order); objects are replaced, never changed (see ViewMessage). */
  messages: ViewMessage[] = [];
  /** Every change up to this MODSEQ is known to the view. */
  syncedModSeq = 0;
  uidNext = 1;
  private newSinceAnnounce = false;
  private readonly flagDirty = new Set<number>();

  private constructor(
    readonly mailbox: Mailbox,
    readonly readOnly: boolean,
  ) {}

  /** A view of the mailbox; `snapshot` (from MailboxViews) saves reading it whole. */
  static async open(store: Store, mailbox: Mailbox, readOnly: boolean, snapshot?: MailboxSnapshot): Promise<SelectedMailbox> {
    const view = new SelectedMailbox(mailbox, readOnly);
    const from = snapshot ?? (await loadSnapshot(store, mailbox));
    view.messages = from.messages.slice();
    view.syncedModSeq = from.syncedModSeq;
    view.uidNext = from.uidNext;
    return view;
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
    const index = indexOfUid(this.messages, uid);
    return index < 0 ? undefined : this.messages[index];
  }

  seqOf(uid: number): number {
    return indexOfUid(this.messages, uid) + 1;
  }

  /** Pulls changes made since the last refresh (by anyone) from the store into the view. */
  async refresh(store: Store): Promise<void> {
    const changes = await store.changesSince(this.mailbox.id, this.syncedModSeq);
    for (const uid of changes.expunged) {
      const index = indexOfUid(this.messages, uid);
      if (index >= 0 && !this.messages[index]!.expunged) this.messages[index] = { ...this.messages[index]!, expunged: true };
    }
    const added = applyChanges(this.messages, changes.changed, (index, summary) => {
      const known = this.messages[index]!;
      if (summary.modSeq <= known.modSeq) return;
      const flagsChanged = known.flags.join(' ') !== summary.flags.join(' ');
      this.messages[index] = { ...known, modSeq: summary.modSeq, flags: flagsChanged ? summary.flags : known.flags };
      if (flagsChanged) this.flagDirty.add(known.uid);
    });
    if (added.length > 0) {
      for (const message of added) this.messages.push(message);
      this.newSinceAnnounce = true;
    }
    this.uidNext = Math.max(this.uidNext, changes.uidNext);
    this.syncedModSeq = Math.max(this.syncedModSeq, changes.highestModSeq);
  }

  /** Applies this session's own flag change (already reported to the client by the command). */
  applyOwnFlags(summary: MessageSummary): void {
    const index = indexOfUid(this.messages, summary.uid);
    if (index < 0) return;
    const known = this.messages[index]!;
    this.messages[index] = { ...known, flags: summary.flags, modSeq: Math.max(known.modSeq, summary.modSeq) };
    this.flagDirty.delete(summary.uid);
  }

  /**
   * Removes messages this session expunged itself (or whose expunge it now announces); returns
   * their sequence numbers highest first, the order in which each EXPUNGE leaves the rest valid.
   */
  removeOwn(uids: number[]): number[] {
    const doomed = new Set(uids.filter((uid) => indexOfUid(this.messages, uid) >= 0));
    if (doomed.size === 0) return [];
    const seqs: number[] = [];
    this.messages.forEach((m, i) => {
      if (doomed.has(m.uid)) seqs.push(i + 1);
    });
    this.messages = this.messages.filter((m) => !doomed.has(m.uid));
    for (const uid of doomed) this.flagDirty.delete(uid);
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
      const message = this.byUidGet(uid);
      if (message && !message.expunged) updates.flagChanges.push(message);
    }
    this.flagDirty.clear();
    return updates;
  }
}
