// `yubin cleanup` selectors: which messages a run removes. Every selector given must match (AND);
// a run without any is refused before this is reached. Pure: no store, no clock (now is passed).

import type { MessageFacts } from './message-facts.js';
import { senderMatches, type SenderPattern } from './options.js';

export interface CleanupSelector {
  /** Only this mailbox (already resolved by the caller), or null for all. */
  mailbox: string | null;
  /** Internal date more than this many seconds before now. */
  olderThanSeconds: number | null;
  /** Only bulk mail (List-Unsubscribe, List-Id, Precedence: bulk/list/junk). */
  bulk: boolean;
  from: SenderPattern | null;
  /** Size strictly above this many octets. */
  largerThan: number | null;
}

export function hasSelector(selector: CleanupSelector): boolean {
  return selector.mailbox !== null || selector.olderThanSeconds !== null || selector.bulk || selector.from !== null || selector.largerThan !== null;
}

/** The selectors decided by the listing alone (date and size): checked before a message is read. */
export function matchesListing(selector: CleanupSelector, message: { internalDate: Date; size: number }, now: Date): boolean {
  if (selector.olderThanSeconds !== null && !(now.getTime() - message.internalDate.getTime() > selector.olderThanSeconds * 1000)) return false;
  if (selector.largerThan !== null && !(message.size > selector.largerThan)) return false;
  return true;
}

/** The selectors that need the message's header (sender, bulk). */
export function matchesContent(selector: CleanupSelector, facts: Pick<MessageFacts, 'sender' | 'bulk'>): boolean {
  if (selector.bulk && !facts.bulk) return false;
  if (selector.from !== null && !senderMatches(selector.from, facts.sender)) return false;
  return true;
}
