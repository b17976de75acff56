// Sequence sets against a mailbox view (RFC 9051 §9 sequence-set): "*" is the largest number in
// use, ranges may be written backwards, and "$" is the saved search result (RFC 5182).

import type { SequenceSet } from './protocol/types.js';
import type { SelectedMailbox, ViewMessage } from './selected.js';

/** The messages a sequence set names, in ascending order, without duplicates. */
export function resolveSet(view: SelectedMailbox, set: SequenceSet, byUid: boolean, saved: number[]): ViewMessage[] {
  if (set === '$') {
    const wanted = new Set(saved);
    return view.messages.filter((m) => wanted.has(m.uid));
  }
  const messages = view.messages;
  // RFC 9051 §9: a message sequence number set on an empty mailbox names nothing that exists.
  if (messages.length === 0) {
    // "1:*" names nothing in an empty mailbox (clients send it after SELECT without looking).
    if (byUid || set.some((r) => r.from === Infinity || r.to === Infinity)) return [];
    throw new RangeError('no messages');
  }
  // Marks by index: linear in the mailbox and the ranges, whatever the set looks like.
  const picked = new Uint8Array(messages.length);
  if (byUid) {
    const maxUid = messages[messages.length - 1]!.uid;
    for (const range of set) {
      let from = range.from === Infinity ? maxUid : range.from;
      let to = range.to === Infinity ? maxUid : range.to;
      if (from > to) [from, to] = [to, from];
      // RFC 9051 §6.4.8: a range "n:*" with n above every UID still names the last message.
      for (let i = lowerBound(messages, from); i < messages.length && messages[i]!.uid <= to; i++) picked[i] = 1;
    }
  } else {
    const max = messages.length;
    for (const range of set) {
      let from = range.from === Infinity ? max : range.from;
      let to = range.to === Infinity ? max : range.to;
      if (from > to) [from, to] = [to, from];
      if (from < 1 || to > max) throw new RangeError('sequence number out of range');
      picked.fill(1, from - 1, to);
    }
  }
  const out: ViewMessage[] = [];
  for (let i = 0; i < messages.length; i++) if (picked[i]) out.push(messages[i]!);
  return out;
}

/** The index of the first message whose UID is at least `uid` (messages are in UID order). */
function lowerBound(messages: readonly ViewMessage[], uid: number): number {
  let low = 0;
  let high = messages.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (messages[mid]!.uid < uid) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** "1,3:5,9" from a sorted or unsorted list of numbers (used for UID sets in responses). */
export function compressUids(uids: number[]): string {
  const sorted = [...new Set(uids)].sort((a, b) => a - b);
  const parts: string[] = [];
  let i = 0;
  while (i < sorted.length) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}
