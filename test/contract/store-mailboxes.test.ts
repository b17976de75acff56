// The Store contract's mailbox and message operations (used by IMAP, POP3 and retention),
// against the embedded backend in both writer modes: MODSEQ rules (RFC 7162), the expunge log,
// copy/move with quota, INBOX rename, usage kept exact, and change events.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { StoreError, type StoreChange } from '../../src/store/types.js';

for (const writer of ['direct', 'batching'] as const) {
  describe(`Store mailboxes and messages (${writer} writer)`, () => {
    async function fresh(fn: (store: SqliteStore, accountId: number) => Promise<void>): Promise<void> {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-mbx-'));
      const store = SqliteStore.open({ directory: dir, fsync: false, writer, inlineMax: 1024 });
      try {
        await store.addDomain('example.test');
        const account = await store.addAccount('bob@example.test', 'x');
        await fn(store, account.id);
      } finally {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
    const message = (n: number, size = 100) => Buffer.from(`Subject: m${n}\r\n\r\n${'x'.repeat(size)}\r\n`);

    async function assertUsageExact(store: SqliteStore, accountId: number): Promise<void> {
      assert.deepEqual(await store.getUsage(accountId), await store.recomputeUsage(accountId));
    }

    it('APPEND assigns ascending UIDs and MODSEQs, stores bytes exactly (inline and as files), and counts usage', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'inbox'))!;
        assert.equal(inbox.name, 'INBOX', 'INBOX is found case-insensitively');
        const small = message(1);
        const large = message(2, 5000); // above inlineMax: stored as a file
        const a = await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: small, flags: ['\\Seen', '\\seen', '$Label'], internalDate: new Date(1e12) });
        const b = await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: large, flags: [], internalDate: new Date(2e12) });
        assert.ok(a.ok && b.ok);
        if (!a.ok || !b.ok) return;
        assert.equal(b.uid, a.uid + 1);
        assert.ok(b.modSeq > a.modSeq);
        const summaries = await store.listMessageSummaries(inbox.id);
        assert.deepEqual(summaries.map((s) => s.flags), [['\\Seen', '$Label'], []], 'duplicate flags (any case) stored once');
        assert.deepEqual(await store.readMessageById(summaries[0]!.id), small);
        assert.deepEqual(await store.readMessageById(summaries[1]!.id), large);
        assert.deepEqual(await store.getUsage(accountId), { bytes: small.length + large.length, messages: 2 });
        await assertUsageExact(store, accountId);
      });
    });

    it('APPEND over quota stores nothing and leaves usage as it was', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        const result = await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(1, 3000), flags: [], internalDate: new Date(), quota: { bytes: 1000, messages: null } });
        assert.equal(result.ok, false);
        assert.deepEqual(await store.getUsage(accountId), { bytes: 0, messages: 0 });
        assert.equal((await store.listMessageSummaries(inbox.id)).length, 0);
      });
    });

    it('flag updates take one new MODSEQ per command, honour UNCHANGEDSINCE, and show in changesSince', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        for (let i = 1; i <= 3; i++) await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(i), flags: [], internalDate: new Date() });
        const before = (await store.getMailboxById(inbox.id))!.highestModSeq;
        const added = await store.updateFlags(inbox.id, [1, 2], 'add', ['\\Flagged']);
        assert.deepEqual(added.changed.map((c) => c.uid), [1, 2]);
        assert.equal(new Set(added.changed.map((c) => c.modSeq)).size, 1, 'one MODSEQ for the command');
        assert.ok(added.changed[0]!.modSeq > before);
        const noop = await store.updateFlags(inbox.id, [1], 'add', ['\\flagged']);
        assert.equal(noop.changed.length, 0, 'no change, no new MODSEQ');
        const conflict = await store.updateFlags(inbox.id, [1, 3], 'replace', ['\\Seen'], before);
        assert.deepEqual(conflict.conflicts, [1], 'UID 1 changed after UNCHANGEDSINCE');
        assert.deepEqual(conflict.changed.map((c) => c.uid), [3]);
        const changes = await store.changesSince(inbox.id, before);
        assert.deepEqual(changes.changed.map((c) => c.uid), [1, 2, 3]);
        const removed = await store.updateFlags(inbox.id, [2], 'remove', ['\\FLAGGED']);
        assert.deepEqual(removed.changed[0]!.flags, []);
      });
    });

    it('expunge logs UIDs with their MODSEQ, updates usage, and ignores unknown UIDs', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        for (let i = 1; i <= 4; i++) await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(i), flags: [], internalDate: new Date() });
        const before = (await store.getMailboxById(inbox.id))!.highestModSeq;
        assert.deepEqual(await store.expungeMessages(inbox.id, [2, 4, 99]), [2, 4]);
        const changes = await store.changesSince(inbox.id, before);
        assert.deepEqual(changes.expunged, [2, 4]);
        assert.ok(changes.highestModSeq > before);
        assert.deepEqual((await store.changesSince(inbox.id, changes.highestModSeq)).expunged, []);
        assert.deepEqual((await store.listMessageSummaries(inbox.id)).map((s) => s.uid), [1, 3]);
        await assertUsageExact(store, accountId);
      });
    });

    it('COPY adds usage and respects the quota; MOVE keeps usage and empties the source', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        const archive = (await store.getMailbox(accountId, 'Archive'))!;
        for (let i = 1; i <= 3; i++) await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(i), flags: ['\\Seen'], internalDate: new Date() });
        const usage = await store.getUsage(accountId);
        const refused = await store.copyMessages(inbox.id, [1, 2, 3], archive.id, false, { bytes: usage.bytes + 10, messages: null });
        assert.equal(refused.ok, false, 'a copy that does not fit is refused whole');
        assert.equal((await store.listMessageSummaries(archive.id)).length, 0);
        const copied = await store.copyMessages(inbox.id, [1, 3], archive.id, false);
        assert.ok(copied.ok);
        if (copied.ok) assert.deepEqual(copied.uidMap, [[1, 1], [3, 2]]);
        assert.equal((await store.getUsage(accountId)).messages, 5);
        const moved = await store.copyMessages(inbox.id, [1, 2, 3], archive.id, true, { bytes: 1, messages: 1 });
        assert.ok(moved.ok, 'a move within the account does not grow usage, so the quota does not stop it');
        assert.equal((await store.listMessageSummaries(inbox.id)).length, 0);
        assert.deepEqual((await store.listMessageSummaries(archive.id)).map((s) => s.flags), [['\\Seen'], ['\\Seen'], ['\\Seen'], ['\\Seen'], ['\\Seen']]);
        await assertUsageExact(store, accountId);
      });
    });

    it('CREATE, RENAME with children, INBOX rename, DELETE with messages', async () => {
      await fresh(async (store, accountId) => {
        const a = await store.createMailbox(accountId, 'A');
        await store.createMailbox(accountId, 'A/B');
        await assert.rejects(store.createMailbox(accountId, 'A'), (err: unknown) => err instanceof StoreError && err.code === 'exists');
        await store.renameMailbox(accountId, a.id, 'Z');
        const names = (await store.listMailboxes(accountId)).map((m) => m.name);
        assert.ok(names.includes('Z') && names.includes('Z/B') && !names.includes('A/B'));
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(1), flags: [], internalDate: new Date() });
        await store.renameMailbox(accountId, inbox.id, 'Old');
        const old = (await store.getMailbox(accountId, 'Old'))!;
        assert.equal((await store.listMessageSummaries(old.id)).length, 1, 'INBOX messages moved to the new name');
        assert.equal((await store.listMessageSummaries(inbox.id)).length, 0, 'INBOX stays, empty');
        assert.notEqual(old.uidValidity, inbox.uidValidity);
        await store.deleteMailbox(accountId, old.id);
        assert.equal(await store.getMailbox(accountId, 'Old'), null);
        assert.deepEqual(await store.getUsage(accountId), { bytes: 0, messages: 0 });
      });
    });

    it('publishes change events after each committed write', async () => {
      await fresh(async (store, accountId) => {
        const inbox = (await store.getMailbox(accountId, 'INBOX'))!;
        const events: StoreChange[] = [];
        const stop = store.onChange((change) => events.push(change));
        await store.appendMessage({ accountId, mailboxId: inbox.id, bytes: message(1), flags: [], internalDate: new Date() });
        await store.updateFlags(inbox.id, [1], 'add', ['\\Seen']);
        await store.expungeMessages(inbox.id, [1]);
        stop();
        const mine = events.filter((e) => e.kind !== 'external').map((e) => `${e.kind}:${e.mailboxId}`);
        assert.deepEqual(mine, [`appended:${inbox.id}`, `flags:${inbox.id}`, `expunged:${inbox.id}`]);
      });
    });
  });
}
