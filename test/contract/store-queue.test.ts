// The Store contract's outbound queue and DKIM keys, against the embedded backend in both writer
// modes: per-recipient state, claiming with a lease, retry, delete, finishing and blob release.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { StoreError, type EnqueueRequest } from '../../src/store/types.js';
import { blobIdOf } from '../../src/store/blob-id.js';

function request(body: string, recipients: string[], at = new Date(1_000_000)): { req: EnqueueRequest; bytes: Buffer } {
  const bytes = Buffer.from(body);
  return {
    bytes,
    req: {
      blobId: blobIdOf(bytes),
      blobSize: bytes.length,
      inlineBytes: bytes,
      sender: 'alice@a.test',
      envid: 'ENV1',
      ret: 'HDRS',
      accountId: null,
      kind: 'mail',
      smtpUtf8: false,
      receivedAt: at,
      expiresAt: new Date(at.getTime() + 5 * 86400_000),
      recipients: recipients.map((address, i) => ({ address, orcpt: i === 0 ? 'rfc822;orig@b.test' : null, notify: i === 0 ? ['SUCCESS', 'FAILURE'] : null })),
    },
  };
}

for (const writer of ['direct', 'batching'] as const) {
  describe(`Store queue (${writer} writer)`, () => {
    const open = () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-queue-'));
      return SqliteStore.open({ directory: dir, fsync: false, writer });
    };

    it('keeps each recipient with its own state; claims lease due recipients once', async () => {
      const store = open();
      try {
        const { req, bytes } = request('Subject: q\r\n\r\nbody\r\n', ['bob@b.test', 'carol@c.test']);
        const id = await store.enqueue(req, bytes);
        const listed = await store.listQueue();
        assert.equal(listed.length, 1);
        const message = listed[0]!;
        assert.equal(message.id, id);
        assert.equal(message.sender, 'alice@a.test');
        assert.equal(message.envid, 'ENV1');
        assert.equal(message.ret, 'HDRS');
        assert.deepEqual(message.recipients.map((r) => [r.address, r.domain, r.state, r.orcpt, r.notify]), [
          ['bob@b.test', 'b.test', 'queued', 'rfc822;orig@b.test', ['SUCCESS', 'FAILURE']],
          ['carol@c.test', 'c.test', 'queued', null, null],
        ]);
        assert.deepEqual(await store.readBlob(message.blobId), bytes);
        assert.deepEqual(await store.nextQueueAttempt(), new Date(1_000_000));

        // Not due yet
        assert.deepEqual(await store.claimDueRecipients(new Date(999_999), new Date(2_000_000), 10), []);
        const claimed = await store.claimDueRecipients(new Date(1_000_000), new Date(2_000_000), 10);
        assert.equal(claimed.length, 1);
        assert.equal(claimed[0]!.recipients.length, 2);
        // Leased: a second claim at the same time gets nothing; after the lease, they are due again.
        assert.deepEqual(await store.claimDueRecipients(new Date(1_000_000), new Date(2_000_000), 10), []);
        assert.equal((await store.claimDueRecipients(new Date(2_000_000), new Date(3_000_000), 1))[0]!.recipients.length, 1);
      } finally {
        await store.close();
      }
    });

    it('releases the leases of attempts a crash interrupted: those recipients are due at once, others keep their time', async () => {
      const store = open();
      try {
        const { req, bytes } = request('Subject: q\r\n\r\nbody\r\n', ['bob@b.test', 'carol@c.test', 'dave@d.test']);
        await store.enqueue(req, bytes);
        const [claimed] = await store.claimDueRecipients(new Date(1_000_000), new Date(9_000_000), 10);
        const [bob, carol, dave] = claimed!.recipients;
        // bob's attempt finished (a retry scheduled later), carol's and dave's were in flight.
        await store.updateQueueRecipients([{ recipientId: bob!.id, state: 'queued', attempted: true, attemptAt: new Date(1_000_500), nextAttemptAt: new Date(5_000_000) }]);
        assert.equal(await store.releaseQueueLeases(new Date(1_001_000)), 2);
        const due = await store.claimDueRecipients(new Date(1_001_000), new Date(9_000_000), 10);
        assert.deepEqual(due[0]!.recipients.map((r) => r.id).sort(), [carol!.id, dave!.id].sort());
        const byId = new Map((await store.listQueue())[0]!.recipients.map((r) => [r.id, r]));
        assert.deepEqual(byId.get(bob!.id)!.nextAttemptAt, new Date(5_000_000), 'a scheduled retry is not a lease');
        // Claimed again just now: leased again; a finished attempt clears the lease.
        await store.updateQueueRecipients([{ recipientId: carol!.id, state: 'delivered', attempted: true, attemptAt: new Date(1_002_000) }]);
        assert.equal(await store.releaseQueueLeases(new Date(1_003_000)), 1, 'dave only');
        assert.equal(await store.releaseQueueLeases(new Date(1_003_000)), 0);
      } finally {
        await store.close();
      }
    });

    it('records attempts and replies; finished messages go and release their blob', async () => {
      const store = open();
      try {
        const { req, bytes } = request('Subject: r\r\n\r\nbody two\r\n', ['bob@b.test', 'carol@c.test']);
        const id = await store.enqueue(req, bytes);
        const [bob, carol] = (await store.getQueueMessage(id))!.recipients;
        const reply = { code: 452, enhanced: '4.2.2', text: 'mailbox full', remoteMta: 'mx.b.test' };
        await store.updateQueueRecipients([
          { recipientId: bob!.id, state: 'delivered', attempted: true, attemptAt: new Date(1_100_000), lastReply: { code: 250, enhanced: '2.0.0', text: 'ok', remoteMta: 'mx.b.test' } },
          { recipientId: carol!.id, state: 'queued', attempted: true, attemptAt: new Date(1_100_000), nextAttemptAt: new Date(1_400_000), lastReply: reply },
        ]);
        let message = (await store.getQueueMessage(id))!;
        assert.deepEqual(message.recipients.map((r) => [r.state, r.attempts]), [
          ['delivered', 1],
          ['queued', 1],
        ]);
        assert.deepEqual(message.recipients[1]!.lastReply, reply);
        assert.deepEqual(message.recipients[1]!.nextAttemptAt, new Date(1_400_000));
        assert.deepEqual(message.recipients[1]!.lastAttemptAt, new Date(1_100_000));

        // Unreported final recipient: listed for its DSN; the message stays.
        assert.deepEqual((await store.listUnreportedQueueMessages(10)).map((m) => m.id), [id]);
        assert.deepEqual(await store.removeFinishedQueueMessages(), []);
        await store.updateQueueRecipients([{ recipientId: bob!.id, state: 'delivered', attempted: false, reported: true }]);
        assert.deepEqual(await store.listUnreportedQueueMessages(10), []);
        assert.deepEqual(await store.removeFinishedQueueMessages(), []);

        // retry makes it due now
        assert.equal(await store.retryQueue(id, new Date(1_200_000)), 1);
        message = (await store.getQueueMessage(id))!;
        assert.deepEqual(message.recipients[1]!.nextAttemptAt, new Date(1_200_000));

        await store.updateQueueRecipients([{ recipientId: carol!.id, state: 'failed', attempted: true, reported: true, delayNotified: true }]);
        assert.deepEqual(await store.removeFinishedQueueMessages(), [id]);
        assert.equal(await store.getQueueMessage(id), null);
        assert.deepEqual(await store.listQueue(), []);
        assert.equal(await store.nextQueueAttempt(), null);
      } finally {
        await store.close();
      }
    });

    it('deletes a message by id and tells whether there was one; retry all', async () => {
      const store = open();
      try {
        const a = request('Subject: a\r\n\r\na\r\n', ['x@b.test']);
        const b = request('Subject: b\r\n\r\nb\r\n', ['y@b.test', 'z@b.test']);
        const idA = await store.enqueue(a.req, a.bytes);
        await store.enqueue(b.req, b.bytes);
        assert.equal(await store.retryQueue(null, new Date(5)), 3);
        assert.equal(await store.deleteQueueMessage(idA), true);
        assert.equal(await store.deleteQueueMessage(idA), false);
        assert.equal((await store.listQueue()).length, 1);
        // A new message never reuses a deleted id.
        const idC = await store.enqueue(a.req, a.bytes);
        assert.ok(idC > idA);
      } finally {
        await store.close();
      }
    });

    it('keeps DKIM keys per domain and selector', async () => {
      const store = open();
      try {
        await store.addDkimKey({ domain: 'a.test', selector: 's1', algorithm: 'rsa', privateKey: 'PRIV', publicKey: 'PUB' });
        await store.addDkimKey({ domain: 'a.test', selector: 's2', algorithm: 'ed25519', privateKey: 'P2', publicKey: 'Q2' });
        await store.addDkimKey({ domain: 'b.test', selector: 's1', algorithm: 'rsa', privateKey: 'P3', publicKey: 'Q3' });
        await assert.rejects(store.addDkimKey({ domain: 'a.test', selector: 's1', algorithm: 'rsa', privateKey: 'X', publicKey: 'Y' }), (err: unknown) => err instanceof StoreError && err.code === 'exists');
        assert.deepEqual((await store.listDkimKeys('a.test')).map((k) => [k.selector, k.algorithm, k.privateKey]), [
          ['s1', 'rsa', 'PRIV'],
          ['s2', 'ed25519', 'P2'],
        ]);
        assert.equal((await store.listDkimKeys()).length, 3);
      } finally {
        await store.close();
      }
    });
  });
}
