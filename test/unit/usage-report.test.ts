// The pure parts of `yubin usage` and `yubin cleanup`: age buckets, the tally behind the report
// (checked against a naive recomputation on random input), --over selection, cleanup selectors,
// option parsing and the text output's safety.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { UsageTally, ageBucket, exactPercent, percentOf, type ScannedMessage } from '../../src/usage/tally.js';
import { overQuota } from '../../src/usage/over-quota.js';
import { hasSelector, matchesContent, matchesListing, type CleanupSelector } from '../../src/usage/cleanup-select.js';
import { OptionError, parseAge, parseCount, parseInstant, parsePercent, parseSenderPattern, senderMatches } from '../../src/usage/options.js';
import { formatCleanup, formatCleanupItem, formatOverQuota, formatUsageReport, printable } from '../../src/usage/format.js';
import type { CleanupReport } from '../../src/usage/report.js';

const DAY = 86_400_000;
const NOW = new Date('2030-06-01T00:00:00Z');
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

function scanned(partial: Partial<ScannedMessage> & { uid: number; size: number }): ScannedMessage {
  return {
    mailbox: 'INBOX',
    inbox: true,
    internalDate: NOW,
    popRetrievedAt: null,
    ...partial,
    facts: { sender: 'a@x.example', subject: 's', bulk: false, attachmentBytes: 0, attachmentParts: 0, ...partial.facts },
  };
}

describe('ageBucket', () => {
  it('puts exact boundaries in the older bucket, future dates in the youngest', () => {
    assert.equal(ageBucket(ago(0), NOW), 'under30Days');
    assert.equal(ageBucket(new Date(NOW.getTime() + 5 * DAY), NOW), 'under30Days');
    assert.equal(ageBucket(new Date(NOW.getTime() - 30 * DAY + 1), NOW), 'under30Days');
    assert.equal(ageBucket(ago(30), NOW), 'from30To365Days');
    assert.equal(ageBucket(new Date(NOW.getTime() - 365 * DAY + 1), NOW), 'from30To365Days');
    assert.equal(ageBucket(ago(365), NOW), 'over365Days');
    assert.equal(ageBucket(ago(5000), NOW), 'over365Days');
  });
});

describe('percentages', () => {
  it('round to one decimal; null without a limit; a limit of 0 reads 100 once used', () => {
    assert.equal(percentOf(1, 3), 33.3);
    assert.equal(percentOf(2, 3), 66.7);
    assert.equal(percentOf(5, null), null);
    assert.equal(percentOf(0, 0), 0);
    assert.equal(percentOf(1, 0), 100);
    assert.equal(exactPercent(3, 4), 75);
  });
});

describe('UsageTally', () => {
  it('adds up mailboxes, ages, attachments, POP3, senders and the largest messages', () => {
    const t = new UsageTally(NOW, 2);
    t.addMailbox('INBOX', '\\Inbox');
    t.addMailbox('Sent', '\\Sent');
    t.addMailbox('Archive', '\\Archive');
    t.add(scanned({ uid: 1, size: 100, internalDate: ago(1), popRetrievedAt: ago(1), facts: { sender: 'news@shop.example', subject: 'deal', bulk: true, attachmentBytes: 0, attachmentParts: 0 } }));
    t.add(scanned({ uid: 2, size: 300, internalDate: ago(40), facts: { sender: 'boss@corp.example', subject: 'plans', bulk: false, attachmentBytes: 200, attachmentParts: 2 } }));
    t.add(scanned({ uid: 3, size: 100, internalDate: ago(10), facts: { sender: 'news@shop.example', subject: 'deal 2', bulk: false, attachmentBytes: 0, attachmentParts: 0 } }));
    t.add(scanned({ mailbox: 'Archive', inbox: false, uid: 1, size: 300, internalDate: ago(400), popRetrievedAt: ago(2), facts: { sender: null, subject: null, bulk: false, attachmentBytes: 10, attachmentParts: 1 } }));
    t.addVanished();
    const r = t.report({
      address: 'u@example.test',
      now: NOW,
      usage: { bytes: 800, messages: 4 },
      quota: { bytes: 1000, messages: null },
      keepAfterRetrievalDays: 14,
      retention: { accountId: 1, messages: 3, bytes: 30, byReason: { trash: { messages: 1, bytes: 10 }, 'pop3-kept': { messages: 2, bytes: 20 } } },
    });
    assert.equal(r.version, 1);
    assert.deepEqual(r.quota, { bytes: 1000, messages: null, bytesPercent: 80, messagesPercent: null });
    assert.deepEqual(
      r.mailboxes.map((m) => [m.name, m.messages, m.bytes]),
      [
        ['INBOX', 3, 500],
        ['Archive', 1, 300],
        ['Sent', 0, 0],
      ],
    );
    assert.deepEqual(r.age, { under30Days: { messages: 2, bytes: 200 }, from30To365Days: { messages: 1, bytes: 300 }, over365Days: { messages: 1, bytes: 300 } });
    assert.deepEqual(r.attachments, { bytes: 210, parts: 3, messages: 2 });
    // Equal sizes: the older first.
    assert.deepEqual(
      r.largest.map((m) => [m.mailbox, m.uid, m.size]),
      [
        ['Archive', 1, 300],
        ['INBOX', 2, 300],
      ],
    );
    assert.deepEqual(r.senders, [
      { address: 'boss@corp.example', messages: 1, bytes: 300, bulk: false, bulkMessages: 0 },
      { address: null, messages: 1, bytes: 300, bulk: false, bulkMessages: 0 },
    ]);
    assert.deepEqual(r.pop3, {
      retrievedOnServer: { messages: 2, bytes: 400 },
      notRetrieved: { messages: 2, bytes: 400 },
      removedAfterRetrieval: { messages: 2, bytes: 20 },
      keepAfterRetrievalDays: 14,
    });
    assert.deepEqual(r.removals, { messages: 3, bytes: 30, byReason: { 'pop3-kept': { messages: 2, bytes: 20 }, trash: { messages: 1, bytes: 10 } } });
    assert.deepEqual(r.scanned, { messages: 4, bytes: 800, vanished: 1 });
    // With room for all senders, the bulk one shows how many of its messages are bulk.
    const all = new UsageTally(NOW, 20);
    all.add(scanned({ uid: 1, size: 1, facts: { sender: 'news@shop.example', subject: null, bulk: true, attachmentBytes: 0, attachmentParts: 0 } }));
    all.add(scanned({ uid: 2, size: 1, facts: { sender: 'news@shop.example', subject: null, bulk: false, attachmentBytes: 0, attachmentParts: 0 } }));
    assert.deepEqual(all.report({ address: 'u', now: NOW, usage: { bytes: 2, messages: 2 }, quota: { bytes: null, messages: null }, keepAfterRetrievalDays: null, retention: null }).senders, [
      { address: 'news@shop.example', messages: 2, bytes: 2, bulk: true, bulkMessages: 1 },
    ]);
  });

  it('agrees with a naive recomputation on random mailboxes', () => {
    const message = fc.record({
      mailbox: fc.constantFrom('INBOX', 'Sent', 'Archive/2019'),
      uid: fc.integer({ min: 1, max: 50 }),
      size: fc.integer({ min: 0, max: 5000 }),
      days: fc.integer({ min: -5, max: 800 }),
      retrieved: fc.boolean(),
      sender: fc.option(fc.constantFrom('a@x.example', 'b@x.example', 'c@y.example', 'd@z.example'), { nil: null }),
      bulk: fc.boolean(),
      attachment: fc.integer({ min: 0, max: 100 }),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 60 }), fc.integer({ min: 1, max: 5 }), (messages, top) => {
        const t = new UsageTally(NOW, top);
        const input = messages.map((m, i) =>
          scanned({
            mailbox: m.mailbox,
            inbox: m.mailbox === 'INBOX',
            uid: i + 1,
            size: m.size,
            internalDate: ago(m.days),
            popRetrievedAt: m.retrieved ? NOW : null,
            facts: { sender: m.sender, subject: null, bulk: m.bulk, attachmentBytes: Math.min(m.attachment, m.size), attachmentParts: m.attachment > 0 ? 1 : 0 },
          }),
        );
        for (const m of input) t.add(m);
        const total = input.reduce((s, m) => s + m.size, 0);
        const r = t.report({ address: 'u', now: NOW, usage: { bytes: total, messages: input.length }, quota: { bytes: null, messages: null }, keepAfterRetrievalDays: null, retention: null });
        const ages = Object.values(r.age);
        assert.equal(ages.reduce((s, a) => s + a.bytes, 0), total);
        assert.equal(ages.reduce((s, a) => s + a.messages, 0), input.length);
        assert.equal(r.mailboxes.reduce((s, m) => s + m.bytes, 0), total);
        assert.deepEqual(r.scanned, { messages: input.length, bytes: total, vanished: 0 });
        const naive = [...input].sort((a, b) => b.size - a.size || a.internalDate.getTime() - b.internalDate.getTime() || a.uid - b.uid).slice(0, top);
        assert.deepEqual(
          r.largest.map((m) => m.uid),
          naive.map((m) => m.uid),
        );
        const bySender = new Map<string | null, number>();
        for (const m of input) bySender.set(m.facts.sender, (bySender.get(m.facts.sender) ?? 0) + m.size);
        const senderBytes = [...bySender.values()].sort((a, b) => b - a).slice(0, top);
        assert.deepEqual(
          r.senders.map((s) => s.bytes),
          senderBytes,
        );
        assert.equal(r.pop3.retrievedOnServer.bytes + r.pop3.notRetrieved.bytes, input.filter((m) => m.popRetrievedAt || m.inbox).reduce((s, m) => s + m.size, 0));
      }),
      { numRuns: 300 },
    );
  });
});

describe('overQuota', () => {
  const users = [
    { address: 'a@x.example', used: 80, messages: 1, quota: 100, quotaMessages: null },
    { address: 'b@x.example', used: 81, messages: 1, quota: 100, quotaMessages: null },
    { address: 'c@x.example', used: 10, messages: 9, quota: 100, quotaMessages: 10 },
    { address: 'd@x.example', used: 10_000, messages: 10_000, quota: null, quotaMessages: null },
    { address: 'e@x.example', used: 120, messages: 1, quota: 100, quotaMessages: null },
    { address: 'f@x.example', used: 1, messages: 0, quota: 0, quotaMessages: null },
  ];
  it('lists users strictly above the share of either quota, highest first; never users without one', () => {
    const r = overQuota(users, 80);
    assert.equal(r.threshold, 80);
    assert.deepEqual(
      r.users.map((u) => [u.address, u.share]),
      [
        ['e@x.example', 120],
        ['f@x.example', 100],
        ['c@x.example', 90],
        ['b@x.example', 81],
      ],
    );
    assert.deepEqual(r.users[2], { address: 'c@x.example', used: 10, quota: 100, percent: 10, messages: 9, quotaMessages: 10, messagesPercent: 90, share: 90 });
    assert.deepEqual(
      overQuota(users, 0).users.map((u) => u.address),
      ['e@x.example', 'f@x.example', 'c@x.example', 'b@x.example', 'a@x.example'],
    );
    assert.deepEqual(overQuota(users, 500).users, []);
  });
  it('compares unrounded shares', () => {
    const r = overQuota([{ address: 'g@x.example', used: 800_001, messages: 0, quota: 1_000_000, quotaMessages: null }], 80);
    assert.equal(r.users.length, 1);
    assert.equal(r.users[0]!.percent, 80);
  });
});

describe('cleanup selectors', () => {
  const none: CleanupSelector = { mailbox: null, olderThanSeconds: null, bulk: false, from: null, largerThan: null };
  it('needs at least one', () => {
    assert.equal(hasSelector(none), false);
    assert.equal(hasSelector({ ...none, bulk: true }), true);
    assert.equal(hasSelector({ ...none, mailbox: 'Trash' }), true);
  });
  it('older-than and larger-than are strict', () => {
    const s = { ...none, olderThanSeconds: 90 * 86400, largerThan: 1000 };
    assert.equal(matchesListing(s, { internalDate: ago(90), size: 1001 }, NOW), false);
    assert.equal(matchesListing(s, { internalDate: new Date(ago(90).getTime() - 1), size: 1001 }, NOW), true);
    assert.equal(matchesListing(s, { internalDate: ago(100), size: 1000 }, NOW), false);
    assert.equal(matchesListing(none, { internalDate: NOW, size: 0 }, NOW), true);
  });
  it('bulk and from combine with AND', () => {
    const s = { ...none, bulk: true, from: parseSenderPattern('@Shop.Example') };
    assert.equal(matchesContent(s, { sender: 'news@shop.example', bulk: true }), true);
    assert.equal(matchesContent(s, { sender: 'news@shop.example', bulk: false }), false);
    assert.equal(matchesContent(s, { sender: 'news@mail.shop.example', bulk: true }), false);
    assert.equal(matchesContent(s, { sender: null, bulk: true }), false);
  });
});

describe('options', () => {
  it('ages need a unit', () => {
    assert.equal(parseAge('90d'), 90 * 86400);
    assert.equal(parseAge('2w'), 14 * 86400);
    assert.equal(parseAge('1y'), 365 * 86400);
    assert.equal(parseAge('12H'), 12 * 3600);
    for (const bad of ['90', '1.5d', 'd', '-1d', '90 days', '', '3m']) assert.throws(() => parseAge(bad), OptionError, bad);
  });
  it('shares', () => {
    assert.equal(parsePercent('80%'), 80);
    assert.equal(parsePercent('80'), 80);
    assert.equal(parsePercent(' 92.5 % '), 92.5);
    for (const bad of ['abc', '1001', '-5', '80%%', '']) assert.throws(() => parsePercent(bad), OptionError, bad);
  });
  it('instants (UTC when no zone is given)', () => {
    assert.equal(parseInstant('2030-01-31').toISOString(), '2030-01-31T00:00:00.000Z');
    assert.equal(parseInstant('2030-01-31T12:00').toISOString(), '2030-01-31T12:00:00.000Z');
    assert.equal(parseInstant('2030-01-31T12:00:00+09:00').toISOString(), '2030-01-31T03:00:00.000Z');
    for (const bad of ['yesterday', '2030-13-45', '2030/01/31']) assert.throws(() => parseInstant(bad), OptionError, bad);
  });
  it('counts and senders', () => {
    assert.equal(parseCount('5', '--top'), 5);
    assert.throws(() => parseCount('0', '--top'), OptionError);
    assert.deepEqual(parseSenderPattern('News@Shop.Example'), { kind: 'address', address: 'news@shop.example' });
    assert.deepEqual(parseSenderPattern('@shop.example.'), { kind: 'domain', domain: 'shop.example' });
    for (const bad of ['shop.example', '@', 'a@b@c', 'a b@c']) assert.throws(() => parseSenderPattern(bad), OptionError, bad);
    assert.equal(senderMatches(parseSenderPattern('news@shop.example'), 'news@shop.example'), true);
    assert.equal(senderMatches(parseSenderPattern('news@shop.example'), 'other@shop.example'), false);
  });
});

describe('text output', () => {
  it('neutralises terminal escapes and direction overrides from message text', () => {
    assert.equal(printable('a\x1b[31mred\x07\u202Eb'), 'a?[31mred??b');
  });

  it('a dry run prints the same removal lines as a real run, but for the verb', () => {
    const report: CleanupReport = {
      version: 1,
      address: 'u@example.test',
      now: NOW.toISOString(),
      dryRun: true,
      selectors: { mailbox: null, olderThanSeconds: null, bulk: true, from: null, largerThan: null },
      removed: [{ mailbox: 'INBOX', uid: 3, internalDate: '2030-05-01T00:00:00.000Z', size: 12_900, sender: 'news@shop.example', subject: 'Deals \x1b]0;owned\x07', bulk: true }],
      freed: { messages: 1, bytes: 12_900 },
      usageBefore: { messages: 2, bytes: 20_000 },
      usageAfter: { messages: 1, bytes: 7_100 },
      quota: 1024 * 1024,
    };
    const dry = formatCleanup(report);
    const real = formatCleanup({ ...report, dryRun: false });
    assert.equal(dry.split('\n')[0], 'would remove INBOX uid 3  2030-05-01  12.6 KiB  news@shop.example  Deals ?]0;owned?');
    assert.equal(dry.split('\n')[0]!.replace(/^would remove/, 'removed'), real.split('\n')[0]);
    assert.equal(formatCleanupItem(report.removed[0]!, false), real.split('\n')[0]);
    assert.match(dry, /would remove 1 message, freeing 12\.6 KiB \(12900 bytes\); usage would go 19\.5 KiB → 6\.9 KiB of 1 MiB; nothing changed$/);
    assert.match(real, /removed 1 message, freed 12\.6 KiB \(12900 bytes\); usage 19\.5 KiB → 6\.9 KiB of 1 MiB$/);
  });

  it('the report and the --over list read as sentences and tables', () => {
    const t = new UsageTally(NOW, 20);
    t.addMailbox('INBOX', '\\Inbox');
    t.add(scanned({ uid: 1, size: 12_897_484, facts: { sender: 'boss@corp.example', subject: 'Drawings', bulk: false, attachmentBytes: 12_000_000, attachmentParts: 1 } }));
    const text = formatUsageReport(
      t.report({ address: 'u@example.test', now: NOW, usage: { bytes: 12_897_484, messages: 1 }, quota: { bytes: 1024 ** 3, messages: null }, keepAfterRetrievalDays: null, retention: null }),
    );
    assert.match(text, /^Usage: 12\.3 MiB of 1 GiB \(1\.2%\)$/m);
    assert.match(text, /^ {7}1 message \(no message limit\)$/m);
    assert.match(text, /^ {2}INBOX +1 +12\.3 MiB$/m);
    assert.match(text, /^Attachments: 11\.4 MiB in 1 part of 1 message \(93% of the stored bytes\)$/m);
    assert.match(text, /^ {2}12\.3 MiB +2030-06-01 +INBOX +1 +boss@corp\.example +Drawings$/m);
    assert.match(
      formatOverQuota(overQuota([{ address: 'a@x.example', used: 900, messages: 3, quota: 1000, quotaMessages: 10 }], 80)),
      /^1 user above 80% of their quota:\n {2}a@x\.example {2}900 bytes of 1000 bytes \(90%\) {2}3 of 10 messages \(30%\)$/,
    );
    assert.equal(formatOverQuota(overQuota([], 80)), 'no user is above 80% of their quota');
  });
});
