import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestText, nextWarning, usageShare, warningLevel } from '../../src/notices/capacity.js';
import type { Account, QuotaEvent } from '../../src/store/types.js';

const account = { id: 1, address: 'kenji@example.test' } as Account;

describe('capacity notices', () => {
  it('usage share is the larger of bytes and messages against their limits', () => {
    assert.equal(usageShare({ bytes: 80, messages: 1 }, { quota: 100, quota_messages: null }), 80);
    assert.equal(usageShare({ bytes: 10, messages: 9 }, { quota: 100, quota_messages: 10 }), 90);
    assert.equal(usageShare({ bytes: 10, messages: 9 }, { quota: null, quota_messages: null }), null);
    assert.equal(usageShare({ bytes: 1, messages: 1 }, { quota: 0, quota_messages: null }), 100, 'a zero quota with anything stored is full');
  });

  it('warns once per level crossed, re-arms when usage drops below (hysteresis)', () => {
    const levels = [80, 90, 100];
    assert.equal(warningLevel(79.9, levels), 0);
    assert.equal(warningLevel(80, levels), 80);
    assert.equal(warningLevel(99, levels), 90);
    assert.equal(warningLevel(130, levels), 100);
    assert.deepEqual(nextWarning(0, 80), { warn: true, store: 80 });
    assert.deepEqual(nextWarning(80, 80), { warn: false, store: null });
    assert.deepEqual(nextWarning(90, 80), { warn: false, store: 80 });
    assert.deepEqual(nextWarning(80, 0), { warn: false, store: 0 });
    assert.deepEqual(nextWarning(0, 100), { warn: true, store: 100 });
  });

  it('one digest entry per message however many attempts, in English and Japanese', () => {
    const at = new Date(Date.UTC(2026, 11, 1, 9, 0, 0));
    const events: QuotaEvent[] = [
      { id: 1, accountId: 1, at, sender: 'partner@partner.test', size: 2_500_000, outcome: 'deferred', subject: 'drawings' },
      { id: 2, accountId: 1, at: new Date(at.getTime() + 600_000), sender: 'partner@partner.test', size: 2_500_000, outcome: 'deferred', subject: 'drawings' },
      { id: 3, accountId: 1, at, sender: 'boss@example.test', size: 0, outcome: 'refused', subject: null },
    ];
    const en = digestText(account, events, 'en');
    assert.equal(en.subject, 'Mail affected by your full mailbox (2 messages)');
    assert.match(en.body, /partner@partner\.test {2}2\.4 MiB {2}2026-12-01 09:00 UTC {2}"drawings"\r\n {2}deferred \(2 attempts\)/);
    assert.match(en.body, /boss@example\.test {2}size unknown/);
    assert.match(en.body, /refused: it was returned to the sender/);
    const ja = digestText(account, events, 'ja');
    assert.match(ja.subject, /（2 件）/);
    assert.match(ja.body, /2 回/);
    assert.match(ja.body, /2026年12月1日 09:00 \(UTC\)/);
  });
});
