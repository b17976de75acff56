// The Store contract's POP3 parts against the embedded backend in both writer modes: the first
// retrieval date (markRetrieved, and the sessions' batching RetrievalRecorder) is set once and
// kept and is not a mailbox change; every stored message carries its CRLF size (what LIST counts).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Account, Mailbox, StoreChange } from '../../src/store/types.js';
import { RetrievalRecorder } from '../../src/pop3/retrievals.js';
import { pop3Message } from '../../src/pop3/wire.js';
import pino from 'pino';

/** A fresh store with one account and its INBOX, closed and removed afterwards. */
async function withInbox(
  writer: 'direct' | 'batching',
  run: (t: { dir: string; store: SqliteStore; account: Account; inbox: Mailbox }) => Promise<void>,
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-pop-'));
  const store = SqliteStore.open({ directory: dir, fsync: false, writer });
  try {
    await store.addDomain('example.test');
    const account = await store.addAccount('bob@example.test', 'x');
    const inbox = (await store.getMailbox(account.id, 'INBOX'))!;
    await run({ dir, store, account, inbox });
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const writer of ['direct', 'batching'] as const) {
  describe(`Store markRetrieved (${writer} writer)`, () => {
    it('sets pop_retrieved_at where it is NULL only; unknown ids and duplicates are harmless; no MODSEQ, no event', () =>
      withInbox(writer, async ({ dir, store, account, inbox }) => {
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
      }));

    it('records the CRLF size of every message: APPEND as given, deliveries with their prefix, copies', () =>
      withInbox(writer, async ({ dir, store, account, inbox }) => {
        const archive = await store.createMailbox(account.id, 'Kept');
        // Bare LF, bare CR, a clean one, one without its final line end, one ending in a bare CR, an empty one.
        const bodies = ['Subject: a\n\nline\nline\n', 'Subject: b\r\n\r\nx\ry\r\n', 'Subject: c\r\n\r\nclean\r\n', 'Subject: d\r\n\r\nno end', 'Subject: e\r\n\r\nends\r', ''];
        for (const body of bodies) {
          const result = await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: Buffer.from(body, 'latin1'), flags: [], internalDate: new Date() });
          assert.equal(result.ok, true);
        }
        const body = Buffer.from('Subject: delivered\r\n\r\nbare\nlf\r\n', 'latin1');
        const prefix = Buffer.from('Return-Path: <a@example.test>\r\nDelivered-To: bob@example.test\r\n', 'latin1');
        const staged = await store.stageBlob(body);
        const delivered = await store.deliver({ ...staged, internalDate: new Date(), recipients: [{ accountId: account.id, mailbox: '\\Inbox', headerPrefix: prefix }] });
        assert.equal(delivered.stored, true);

        const listed = await store.listMessages(inbox.id);
        const expected = [...bodies.map((b) => pop3Message(Buffer.from(b, 'latin1')).length), pop3Message(Buffer.concat([prefix, body])).length];
        assert.deepEqual(listed.map((m) => m.crlfSize), expected);
        // Not merely the stored size: the bare line ends and the missing final CRLF are counted.
        assert.notDeepEqual(listed.map((m) => m.size), expected);

        await store.copyMessages(inbox.id, listed.map((m) => m.uid), archive.id, false);
        assert.deepEqual((await store.listMessages(archive.id)).map((m) => m.crlfSize), expected);
      }));

    it('RetrievalRecorder writes retrievals in batches: at the batch size, after the delay, and on flush', () =>
      withInbox(writer, async ({ dir, store, account, inbox }) => {
        for (let i = 0; i < 7; i++) {
          await store.appendMessage({ accountId: account.id, mailboxId: inbox.id, bytes: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`), flags: [], internalDate: new Date() });
        }
        const ids = (await store.listMessageSummaries(inbox.id)).map((s) => s.id);
        const retrieved = async () => (await store.listMessageSummaries(inbox.id)).filter((s) => s.popRetrievedAt !== null).map((s) => s.id);
        const recorder = new RetrievalRecorder(store, pino({ level: 'silent' }), { batch: 3, delayMs: 300 });

        const before = Date.now();
        recorder.record(ids[0]!);
        recorder.record(ids[1]!);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.deepEqual(await retrieved(), [], 'two of a batch of three wait for the delay');
        recorder.record(ids[2]!); // the batch is full: written now
        await recorder.flush();
        assert.deepEqual(await retrieved(), ids.slice(0, 3));
        const at = (await store.listMessageSummaries(inbox.id))[0]!.popRetrievedAt!.getTime();
        assert.ok(at >= before - 1000 && at <= Date.now(), 'the time of the first retrieval of the batch');

        recorder.record(ids[3]!);
        const deadline = Date.now() + 5000;
        while ((await retrieved()).length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
        assert.deepEqual(await retrieved(), ids.slice(0, 4), 'written after the delay without a flush');

        recorder.record(ids[4]!);
        recorder.record(ids[5]!);
        await recorder.flush();
        assert.deepEqual(await retrieved(), ids.slice(0, 6), 'a flush writes what is pending at once');
        await recorder.flush(); // nothing pending: settles
      }));
  });
}
