// Shared mailbox snapshots (src/imap/mailbox-views.ts): after any mix of appends, flag changes,
// expunges and moves by others, the snapshot a SELECT gets equals the mailbox read afresh; the
// sessions that hold an older one are not changed by it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MailboxViews } from '../../src/imap/mailbox-views.js';
import { SelectedMailbox, loadSnapshot } from '../../src/imap/selected.js';
import type { Store } from '../../src/store/types.js';

function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

async function inboxOf(store: Store, accountId: number) {
  return (await store.getMailbox(accountId, 'INBOX'))!;
}

describe('shared mailbox snapshots', () => {
  it('equal a fresh read after random changes by others; a session keeps its own view until it refreshes', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-views-'));
    const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
    try {
      await store.addDomain('example.test');
      const account = await store.addAccount('big@example.test', '$scrypt$x');
      const archive = (await store.getMailbox(account.id, 'Archive'))!;
      const append = async (i: number) =>
        store.appendMessage({ accountId: account.id, mailboxId: (await inboxOf(store, account.id)).id, bytes: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`), flags: i % 3 ? ['\\Seen'] : [], internalDate: new Date(1_700_000_000_000 + i) });
      for (let i = 0; i < 300; i++) await append(i);
      const views = new MailboxViews(() => ({ minMessages: 10, maxMessages: 100_000 }));
      const random = prng(7);
      let next = 300;
      const firstSession = await SelectedMailbox.open(store, await inboxOf(store, account.id), false, await views.snapshot(store, await inboxOf(store, account.id)));
      const firstUids = firstSession.messages.map((m) => m.uid);
      const firstFlags = firstSession.messages.map((m) => m.flags.join(' '));
      for (let round = 0; round < 25; round++) {
        const inbox = await inboxOf(store, account.id);
        const uids = (await store.listMessageSummaries(inbox.id)).map((m) => m.uid);
        const pick = () => uids[Math.floor(random() * uids.length)]!;
        const ops = 1 + Math.floor(random() * 6);
        for (let k = 0; k < ops; k++) {
          const what = random();
          if (what < 0.3) await append(next++);
          else if (what < 0.6) await store.updateFlags(inbox.id, [pick(), pick()], random() < 0.5 ? 'add' : 'remove', ['\\Flagged', '$Work']);
          else if (what < 0.8) await store.expungeMessages(inbox.id, [pick()]);
          else await store.copyMessages(inbox.id, [pick()], archive.id, true);
        }
        const shared = await views.snapshot(store, await inboxOf(store, account.id));
        const fresh = await loadSnapshot(store, await inboxOf(store, account.id));
        assert.deepEqual(
          shared.messages.map((m) => [m.uid, m.flags.join(' '), m.modSeq, m.size]),
          fresh.messages.map((m) => [m.uid, m.flags.join(' '), m.modSeq, m.size]),
          `round ${round}: the shared snapshot equals a fresh read`,
        );
        assert.equal(shared.uidNext, fresh.uidNext);
        assert.equal(shared.syncedModSeq, fresh.syncedModSeq);
        assert.equal(views.keptMessages, shared.messages.length);
      }
      // The first session saw nothing of it: its view changes only when it refreshes.
      assert.deepEqual(firstSession.messages.map((m) => m.uid), firstUids);
      assert.deepEqual(firstSession.messages.map((m) => m.flags.join(' ')), firstFlags);
      await firstSession.refresh(store);
      const updates = firstSession.takeUpdates(true);
      assert.ok(updates.expungedSeqs.length > 0 && updates.exists !== null, 'the refresh announces expunges and new mail');
      const fresh = await loadSnapshot(store, await inboxOf(store, account.id));
      assert.deepEqual(firstSession.messages.map((m) => [m.uid, m.flags.join(' ')]), fresh.messages.map((m) => [m.uid, m.flags.join(' ')]));
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps only mailboxes of at least minMessages, and at most maxMessages in all', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-views-'));
    const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
    try {
      await store.addDomain('example.test');
      const a = await store.addAccount('a@example.test', '$scrypt$x');
      const b = await store.addAccount('b@example.test', '$scrypt$x');
      for (const [account, count] of [[a, 30], [b, 20]] as const) {
        const inbox = await inboxOf(store, account.id);
        for (let i = 0; i < count; i++) await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: Buffer.from(`Subject: ${i}\r\n\r\nx\r\n`), flags: [], internalDate: new Date() });
      }
      const views = new MailboxViews(() => ({ minMessages: 25, maxMessages: 40 }));
      await views.snapshot(store, await inboxOf(store, b.id));
      assert.equal(views.keptMessages, 0, '20 messages: below minMessages, not kept');
      await views.snapshot(store, await inboxOf(store, a.id));
      assert.equal(views.keptMessages, 30);
      const small = new MailboxViews(() => ({ minMessages: 10, maxMessages: 40 }));
      await small.snapshot(store, await inboxOf(store, a.id));
      await small.snapshot(store, await inboxOf(store, b.id));
      assert.equal(small.keptMessages, 20, 'over the limit: the least recently selected went');
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
