// The Store contract's POP3 write, markRetrieved, against the embedded backend in both writer
// modes: the first retrieval date is set once and kept; it is not a mailbox change.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { StoreChange } from '../../src/store/types.js';

for (const writer of ['direct', 'batching'] as const) {
  describe(`Store markRetrieved (${writer} writer)`, () => {
    it('sets pop_retrieved_at where it is NULL only; unknown ids and duplicates are harmless; no MODSEQ, no event', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-pop-'));
      const store = SqliteStore.open({ directory: dir, fsync: false, writer });
      try {
        await store.addDomain('example.test');
        const account = await store.addAccount('bob@example.test', 'x');
        const inbox = (await store.getMailbox(account.id, 'INBOX'))!;
        for (let i = 0; i < 3; i++) {
          await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`), flags: [], internalDate: new Date() });
        }
        const [a, b, c] = (await store.listMessageSummaries(inbox.id)).map((s) => s.id) as [number, number, number];
        const modSeqBefore = (await store.getMailboxById(inbox.id))!.highestModSeq;
        const events: StoreChange[] = [];
        const unsubscribe = store.onChange((e) => events.push(e));

        const dates = () => {
          const db = new Database(path.join(dir, 'yubin.db'), { readonly: true });
          try {
            const rows = db.prepare('SELECT id, pop_retrieved_at AS at FROM messages ORDER BY id').all() as Array<{ id: number; at: number | null }>;
            return new Map(rows.map((r) => [r.id, r.at]));
          } finally {
            db.close();
          }
        };

        await store.markRetrieved([], new Date(1000));
        await store.markRetrieved([a, a, 999_999], new Date(1_700_000_000_000));
        assert.deepEqual([...dates().entries()], [
          [a, 1_700_000_000_000],
          [b, null],
          [c, null],
        ]);
        await store.markRetrieved([a, b], new Date(1_800_000_000_000));
        assert.deepEqual([...dates().entries()], [
          [a, 1_700_000_000_000],
          [b, 1_800_000_000_000],
          [c, null],
        ]);
        unsubscribe();
        assert.equal((await store.getMailboxById(inbox.id))!.highestModSeq, modSeqBefore);
        assert.deepEqual(events.filter((e) => e.kind !== 'external'), []);
      } finally {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
