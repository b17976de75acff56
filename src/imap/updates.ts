// Untagged mailbox updates: EXPUNGE or VANISHED, EXISTS, and FETCH of changed flags
// (RFC 9051 §7.4, RFC 7162 §3.2.10 for MODSEQ and VANISHED under QRESYNC).

import type { Session } from './context.js';
import type { PendingUpdates } from './selected.js';
import { compressUids } from './sequence.js';

export function flagList(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}

export function writeUpdates(session: Session, updates: PendingUpdates): void {
  const qresync = session.enabled.has('QRESYNC');
  const condstore = qresync || session.enabled.has('CONDSTORE');
  if (updates.expungedUids.length > 0) {
    if (qresync) session.send(`* VANISHED ${compressUids(updates.expungedUids)}\r\n`);
    else for (const seq of updates.expungedSeqs) session.send(`* ${seq} EXPUNGE\r\n`);
  }
  if (updates.exists !== null) session.send(`* ${updates.exists} EXISTS\r\n`);
  const selected = session.selected;
  if (!selected) return;
  for (const message of updates.flagChanges) {
    const seq = selected.seqOf(message.uid);
    if (seq === 0) continue;
    const modseq = condstore ? ` MODSEQ (${message.modSeq})` : '';
    session.send(`* ${seq} FETCH (UID ${message.uid} FLAGS ${flagList(message.flags)}${modseq})\r\n`);
  }
}
