// The text output of `yubin usage` (and --over, --disk) and `yubin cleanup`: reports for an admin at a terminal.
// Pure: report objects in, lines out. Text taken from messages (subjects, addresses) is made safe
// to print: control characters and bidirectional overrides become "?", long subjects are cut.

import { formatSize } from '../config/size.js';
import type { CleanupItem, CleanupReport, OverQuotaReport, Tally, UsageReport } from './report.js';
import type { DiskUsage } from '../store/types.js';

const TEXT_SUBJECT_CHARS = 72;

/** Text from a message made harmless for a terminal (no escape sequences, no direction overrides). */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '?');
}

function subjectText(subject: string | null, max = TEXT_SUBJECT_CHARS): string {
  if (subject === null) return '(no subject)';
  const clean = printable(subject);
  const chars = [...clean];
  return chars.length <= max ? clean : chars.slice(0, max - 1).join('') + '…';
}

function senderText(sender: string | null): string {
  return sender === null ? '(no sender)' : printable(sender);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const day = (iso: string) => iso.slice(0, 10);

function table(rows: string[][], rightAligned: ReadonlySet<number>, indent = '  '): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows.map((row) =>
    (
      indent +
      row
        .map((cell, i) => {
          const pad = ' '.repeat((widths[i] ?? 0) - [...cell].length);
          if (i === row.length - 1 && !rightAligned.has(i)) return cell;
          return rightAligned.has(i) ? pad + cell : cell + pad;
        })
        .join('  ')
    ).trimEnd(),
  );
}

function tallyCells(t: Tally): string[] {
  return [String(t.messages), formatSize(t.bytes)];
}

function limitText(used: number, limit: number | null, percent: number | null, unit: (n: number) => string, none: string): string {
  return limit === null ? `${unit(used)} (${none})` : `${unit(used)} of ${unit(limit)} (${percent}%)`;
}

export function formatUsageReport(r: UsageReport): string {
  const out: string[] = [];
  out.push(`Storage report for ${r.address} as of ${r.now}`);
  out.push('');
  out.push(`Usage: ${limitText(r.usage.bytes, r.quota.bytes, r.quota.bytesPercent, formatSize, 'no quota')}`);
  out.push(`       ${limitText(r.usage.messages, r.quota.messages, r.quota.messagesPercent, (n) => plural(n, 'message'), 'no message limit')}`);

  out.push('');
  out.push('Mailboxes:');
  out.push(...table([['mailbox', 'messages', 'size'], ...r.mailboxes.map((m) => [printable(m.name), ...tallyCells(m)])], new Set([1, 2])));

  out.push('');
  out.push('By age of the internal date:');
  out.push(
    ...table(
      [
        ['age', 'messages', 'size'],
        ['under 30 days', ...tallyCells(r.age.under30Days)],
        ['30 to 365 days', ...tallyCells(r.age.from30To365Days)],
        ['365 days or more', ...tallyCells(r.age.over365Days)],
      ],
      new Set([1, 2]),
    ),
  );

  out.push('');
  const share = r.scanned.bytes > 0 ? ` (${Math.round((r.attachments.bytes / r.scanned.bytes) * 1000) / 10}% of the stored bytes)` : '';
  out.push(
    r.attachments.parts === 0
      ? 'Attachments: none'
      : `Attachments: ${formatSize(r.attachments.bytes)} in ${plural(r.attachments.parts, 'part')} of ${plural(r.attachments.messages, 'message')}${share}`,
  );

  out.push('');
  out.push('POP3:');
  const keep = r.pop3.keepAfterRetrievalDays === null ? 'forever' : plural(r.pop3.keepAfterRetrievalDays, 'day');
  const pop3Row = (label: string, t: Tally) => [label, plural(t.messages, 'message'), formatSize(t.bytes)];
  out.push(
    ...table(
      [
        pop3Row('retrieved and still on the server', r.pop3.retrievedOnServer),
        pop3Row('in INBOX, not retrieved yet', r.pop3.notRetrieved),
        pop3Row('removed by retention after retrieval', r.pop3.removedAfterRetrieval),
      ],
      new Set([1, 2]),
    ),
  );
  out.push(`  kept on the server after retrieval: ${keep} (pop3.keep_after_retrieval)`);

  out.push('');
  if (r.removals.messages === 0) {
    out.push('Removed by retention and cleanup: nothing so far');
  } else {
    out.push(`Removed by retention and cleanup since the log began: ${plural(r.removals.messages, 'message')}, ${formatSize(r.removals.bytes)}`);
    out.push(...table(Object.entries(r.removals.byReason).map(([reason, t]) => [reason, plural(t.messages, 'message'), formatSize(t.bytes)]), new Set([1, 2])));
  }

  out.push('');
  out.push(`Largest messages (${r.largest.length}):`);
  if (r.largest.length > 0) {
    out.push(
      ...table(
        [
          ['size', 'date', 'mailbox', 'uid', 'sender', 'subject'],
          ...r.largest.map((m) => [formatSize(m.size), day(m.internalDate), printable(m.mailbox), String(m.uid), senderText(m.sender), subjectText(m.subject)]),
        ],
        new Set([0, 3]),
      ),
    );
  }

  out.push('');
  out.push(`Top senders by size (${r.senders.length}):`);
  if (r.senders.length > 0) {
    out.push(
      ...table(
        [['size', 'messages', 'sender', ''], ...r.senders.map((s) => [formatSize(s.bytes), String(s.messages), senderText(s.address), s.bulk ? `bulk (${s.bulkMessages})` : ''])],
        new Set([0, 1]),
      ),
    );
  }
  if (r.scanned.vanished > 0) {
    out.push('');
    out.push(`(${plural(r.scanned.vanished, 'message')} went while the report was made and ${r.scanned.vanished === 1 ? 'is' : 'are'} not counted)`);
  }
  return out.join('\n');
}

export function formatOverQuota(r: OverQuotaReport): string {
  if (r.users.length === 0) return `no user is above ${r.threshold}% of their quota`;
  const rows = r.users.map((u) => [
    u.address,
    u.quota === null ? `${formatSize(u.used)} (no quota)` : `${formatSize(u.used)} of ${formatSize(u.quota)} (${u.percent}%)`,
    u.quotaMessages === null ? plural(u.messages, 'message') : `${u.messages} of ${plural(u.quotaMessages, 'message')} (${u.messagesPercent}%)`,
  ]);
  return [`${plural(r.users.length, 'user')} above ${r.threshold}% of their quota:`, ...table(rows, new Set())].join('\n');
}

/** `yubin usage --disk`: what the stored mail takes on disk against what users see. */
export function formatDiskUsage(d: DiskUsage): string {
  const logical = d.logicalBytes + d.queuedBytes;
  const share = logical > 0 ? Math.round((d.savedBytes / logical) * 100) : 0;
  const rows = [
    ['Messages in mailboxes', `${plural(d.messages, 'message')}, ${formatSize(d.logicalBytes)} (what quotas count)`],
    ['Outbound queue', `${plural(d.queuedMessages, 'message')}, ${formatSize(d.queuedBytes)}`],
    ['On disk', `${formatSize(d.physicalBytes)} (${d.physicalBytes} bytes): ${formatSize(d.fileBytes)} in files, ${formatSize(d.databaseBytes)} in the database`],
    ['Saved', `${formatSize(d.savedBytes)} (${d.savedBytes} bytes, ${share}% of ${formatSize(logical)})`],
    ['Distinct bodies', `${d.bodies}, of which ${d.composedBodies} with attachments stored apart`],
    ['Attachments stored once', `${plural(d.parts, 'part')}, ${formatSize(d.partBytes)}; ${d.sharedParts} used by more than one message`],
  ];
  return ['Storage of all mail (identical messages and attachments are stored once):', ...table(rows, new Set())].join('\n');
}

/** One removal, as `cleanup` prints it (the same words in a dry run but for the verb). */
export function formatCleanupItem(item: CleanupItem, dryRun: boolean): string {
  return `${dryRun ? 'would remove' : 'removed'} ${printable(item.mailbox)} uid ${item.uid}  ${day(item.internalDate)}  ${formatSize(item.size)}  ${senderText(item.sender)}  ${subjectText(item.subject)}`;
}

export function formatCleanup(r: CleanupReport): string {
  const lines = r.removed.map((item) => formatCleanupItem(item, r.dryRun));
  const quota = r.quota === null ? '' : ` of ${formatSize(r.quota)}`;
  const messages = plural(r.freed.messages, 'message');
  const bytes = r.freed.bytes < 1024 ? formatSize(r.freed.bytes) : `${formatSize(r.freed.bytes)} (${r.freed.bytes} bytes)`;
  const usage = `${formatSize(r.usageBefore.bytes)} → ${formatSize(r.usageAfter.bytes)}${quota}`;
  lines.push(
    r.dryRun
      ? `cleanup dry run for ${r.address}: would remove ${messages}, freeing ${bytes}; usage would go ${usage}; nothing changed`
      : `cleanup of ${r.address}: removed ${messages}, freed ${bytes}; usage ${usage}`,
  );
  return lines.join('\n');
}
