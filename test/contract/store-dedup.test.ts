// Deduplication of identical attachments in the embedded store: large MIME parts are stored once,
// messages come back byte for byte, quotas count logical sizes, and the shared part goes only
// with its last message.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Account, Store } from '../../src/store/types.js';
import { largeLeafRanges } from '../../src/store/dedup.js';

const DEDUP_MIN = 32 * 1024;

function open(directory: string, writer: 'direct' | 'batching'): SqliteStore {
  return SqliteStore.open({ directory, fsync: false, writer, dedupMin: DEDUP_MIN });
}

/** Every file under blobs/ (not the temporary directory), by name. */
function blobFiles(dir: string): string[] {
  const root = path.join(dir, 'blobs');
  return fs
    .readdirSync(root)
    .filter((sub) => sub !== 'tmp')
    .flatMap((sub) => fs.readdirSync(path.join(root, sub)))
    .sort();
}

const drawing = crypto.randomBytes(150 * 1024).toString('base64').replace(/.{76}/g, '$&\r\n');

/** A message with a text part and the same base64 "drawing" attachment; headers differ per message. */
function withAttachment(subject: string, text = 'Please find the drawing attached.'): Buffer {
  return Buffer.from(
    [
      `Received: from partner.example by mx.example.com; ${new Date().toUTCString()}`,
      `Subject: ${subject}`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      '--b1',
      'Content-Type: image/png; name="drawing.png"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="drawing.png"',
      '',
      drawing,
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

function prefix(address: string): Buffer {
  return Buffer.from(`Return-Path: <partner@partner.example>\r\nDelivered-To: ${address}\r\n`);
}

async function deliver(store: Store, account: Account, bytes: Buffer, mailbox: '\\Inbox' | '\\Archive' = '\\Inbox') {
  const staged = await store.stageBlob(bytes);
  const result = await store.deliver({ ...staged, internalDate: new Date(), recipients: [{ accountId: account.id, mailbox, headerPrefix: prefix(account.address) }] }, bytes);
  assert.equal(result.stored, true);
  const outcome = result.outcomes[0]!;
  assert.equal(outcome.status, 'stored');
  return { staged, ...(outcome as { mailboxId: number; uid: number; messageId: number }) };
}

describe('attachment deduplication: which parts are split', () => {
  it('large leaf parts only, at any depth, encapsulated messages included', () => {
    const one = withAttachment('one');
    const ranges = largeLeafRanges(one, DEDUP_MIN);
    assert.equal(ranges.length, 1);
    assert.equal(one.subarray(ranges[0]![0], ranges[0]![1]).toString(), drawing, 'exactly the attachment body');
    assert.deepEqual(largeLeafRanges(one, 0), [], '0 turns it off');
    assert.deepEqual(largeLeafRanges(Buffer.from('Subject: small\r\n\r\nhello\r\n'), DEDUP_MIN), []);
    // A forward: the original message inside message/rfc822 holds the same attachment.
    const forward = Buffer.concat([
      Buffer.from('Subject: Fwd: one\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="fw"\r\n\r\n--fw\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--fw\r\nContent-Type: message/rfc822\r\n\r\n'),
      one,
      Buffer.from('\r\n--fw--\r\n'),
    ]);
    const inner = largeLeafRanges(forward, DEDUP_MIN);
    assert.equal(inner.length, 1);
    assert.equal(forward.subarray(inner[0]![0], inner[0]![1]).toString(), drawing);
  });
});

for (const mode of ['direct', 'batching'] as const) {
  describe(`attachment deduplication, ${mode} writer`, () => {
    it('stores an attachment once, returns every message byte for byte, and counts quotas by logical size', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-dedup-'));
      try {
        let store = open(dir, mode);
        let messageIds: number[] = [];
        const first = withAttachment('drawing, first version', 'First mail.');
        const second = withAttachment('Re: drawing', 'Second mail, same drawing.');
        let aliceId = 0;
        try {
          await store.addDomain('example.com');
          const alice = await store.addAccount('alice@example.com', '$scrypt$x');
          const bob = await store.addAccount('bob@example.com', '$scrypt$x');
          aliceId = alice.id;
          const a = await deliver(store, alice, first);
          const b = await deliver(store, bob, second);
          const c = await deliver(store, alice, second, '\\Archive');
          messageIds = [a.messageId, b.messageId, c.messageId];
          assert.ok(a.staged.composition && b.staged.composition, 'both bodies are composed');
          assert.notEqual(a.staged.blobId, b.staged.blobId, 'the whole bodies differ');

          // One file: the shared attachment (the rest of each body is kept in the database).
          const files = blobFiles(dir);
          assert.equal(files.length, 1, `one part file, got ${files.join(', ')}`);
          assert.equal(fs.readFileSync(path.join(dir, 'blobs', files[0]!.slice(0, 2), files[0]!)).toString(), drawing);

          // Byte for byte, through every read path.
          assert.deepEqual(await store.readMessageById(a.messageId), Buffer.concat([prefix(alice.address), first]));
          assert.deepEqual(await store.readMessageById(b.messageId), Buffer.concat([prefix(bob.address), second]));
          assert.deepEqual(await store.readBlob(c.staged.blobId), second);

          // Quotas count what each user has, whole.
          assert.deepEqual(await store.getUsage(alice.id), { bytes: prefix(alice.address).length * 2 + first.length + second.length, messages: 2 });
          assert.deepEqual(await store.getUsage(bob.id), { bytes: prefix(bob.address).length + second.length, messages: 1 });

          const disk = await store.diskUsage();
          assert.equal(disk.messages, 3);
          assert.equal(disk.logicalBytes, prefix(alice.address).length * 2 + prefix(bob.address).length + first.length + second.length * 2);
          assert.equal(disk.parts, 1);
          assert.equal(disk.sharedParts, 1);
          assert.equal(disk.partBytes, drawing.length);
          assert.equal(disk.fileBytes, drawing.length);
          assert.equal(disk.bodies, 2, 'two distinct bodies (the third message shares the second body)');
          assert.equal(disk.composedBodies, 2);
          assert.equal(disk.savedBytes, disk.logicalBytes - disk.physicalBytes);
          assert.ok(disk.savedBytes > drawing.length * 2 - 1024, `the drawing is stored once instead of three times: saved ${disk.savedBytes}`);
        } finally {
          await store.close();
        }

        // Removing two of the three copies leaves the last one whole, after garbage collection too.
        store = open(dir, mode);
        try {
          const alice = (await store.getAccountById(aliceId))!;
          const inbox = (await store.listMailboxes(alice.id)).find((m) => m.specialUse === '\\Inbox')!;
          const archive = (await store.listMailboxes(alice.id)).find((m) => m.specialUse === '\\Archive')!;
          await store.expungeMessages(inbox.id, (await store.listMessages(inbox.id)).map((m) => m.uid));
          await store.expungeMessages(archive.id, (await store.listMessages(archive.id)).map((m) => m.uid));
          assert.deepEqual(await store.getUsage(alice.id), { bytes: 0, messages: 0 });
        } finally {
          await store.close();
        }
        store = open(dir, mode); // the batching writer collects garbage when it starts
        try {
          await store.addDomain('after-restart.example');
          assert.deepEqual(await store.readMessageById(messageIds[1]!), Buffer.concat([prefix('bob@example.com'), second]), "bob's copy is intact");
          assert.equal(blobFiles(dir).length, 1, 'the shared part file stays');
          const bob = (await store.getAccount('bob@example.com'))!;
          const bobInbox = (await store.listMailboxes(bob.id)).find((m) => m.specialUse === '\\Inbox')!;
          await store.expungeMessages(bobInbox.id, [1]);
        } finally {
          await store.close();
        }
        if (mode === 'batching') {
          store = open(dir, mode);
          try {
            await store.addDomain('second-restart.example');
            assert.deepEqual(blobFiles(dir), [], 'the last copy gone: the part goes too');
            const disk = await store.diskUsage();
            assert.equal(disk.physicalBytes, 0);
            assert.equal(disk.parts, 0);
          } finally {
            await store.close();
          }
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('APPEND and the queue share parts too; an attachment twice in one message is counted twice', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-dedup-'));
      const store = open(dir, mode);
      try {
        await store.addDomain('example.com');
        const alice = await store.addAccount('alice@example.com', '$scrypt$x');
        const sent = (await store.listMailboxes(alice.id)).find((m) => m.specialUse === '\\Sent')!;
        const copy = withAttachment('my copy in Sent');
        const appended = await store.appendMessage({ accountId: alice.id, mailboxId: sent.id, bytes: copy, flags: ['\\Seen'], internalDate: new Date() });
        assert.equal(appended.ok, true);
        const outgoing = withAttachment('to the partner');
        const staged = await store.stageBlob(outgoing);
        const queueId = await store.enqueue(
          { ...staged, sender: 'alice@example.com', envid: null, ret: null, accountId: alice.id, kind: 'mail', smtpUtf8: false, receivedAt: new Date(), expiresAt: new Date(Date.now() + 86400_000), recipients: [{ address: 'x@partner.example', orcpt: null, notify: null }] },
          outgoing,
        );
        const queued = await store.getQueueMessage(queueId);
        assert.deepEqual(await store.readBlob(queued!.blobId), outgoing);
        const [message] = await store.listMessages(sent.id);
        assert.deepEqual(await store.readMessage(message!), copy);
        assert.equal(blobFiles(dir).length, 1);

        const twice = Buffer.from(
          `Subject: twice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="t"\r\n\r\n--t\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n${drawing}\r\n--t\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n${drawing}\r\n--t--\r\n`,
        );
        const { messageId } = await deliver(store, alice, twice);
        assert.deepEqual(await store.readMessageById(messageId), Buffer.concat([prefix(alice.address), twice]));
        const disk = await store.diskUsage();
        assert.equal(disk.parts, 1);
        assert.equal(disk.queuedMessages, 1);
        assert.equal(disk.savedBytes, disk.logicalBytes + disk.queuedBytes - disk.physicalBytes);
        assert.ok(disk.savedBytes > drawing.length * 3 - 1024, 'four copies of the drawing on disk once');
      } finally {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a refused delivery leaves no part file behind', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-dedup-'));
      const store = open(dir, mode);
      try {
        await store.addDomain('example.com');
        const alice = await store.addAccount('alice@example.com', '$scrypt$x');
        const bytes = withAttachment('too big');
        const staged = await store.stageBlob(bytes);
        assert.equal(blobFiles(dir).length, 1, 'staged: the part file is written before the commit');
        const result = await store.deliver({
          ...staged,
          internalDate: new Date(),
          recipients: [{ accountId: alice.id, mailbox: '\\Inbox', headerPrefix: prefix(alice.address), quota: { bytes: 1000, messages: null } }],
        });
        assert.equal(result.stored, false);
        await store.discardBlob(staged);
        assert.deepEqual(blobFiles(dir), []);
      } finally {
        await store.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
