// The Store contract (src/store/types.ts) against the embedded backend (SQLite + files), in both
// writer modes: 'direct' (the CLI's, one transaction per call) and 'batching' (the server's,
// group commit in a worker thread). The same suite runs for each.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { DEFAULT_MAILBOXES, StoreError, type Account, type DeliveryRecipient, type DeliveryResult, type SpecialUse, type Store } from '../../src/store/types.js';

type WriterMode = 'direct' | 'batching';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-store-'));
}

function open(directory: string, writer: WriterMode, maxBatch?: number): SqliteStore {
  return SqliteStore.open({ directory, fsync: false, writer, maxBatch });
}

/** A fresh store in a fresh directory, closed and removed afterwards whatever happens. */
async function withFreshStore(writer: WriterMode, fn: (store: SqliteStore, dir: string) => Promise<void>, maxBatch?: number): Promise<void> {
  const dir = tempDir();
  const store = open(dir, writer, maxBatch);
  try {
    await fn(store, dir);
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(promise: Promise<unknown>, code: StoreError['code'], message?: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** Message files under blobs/ (not the temporary directory). */
function blobFiles(dir: string): string[] {
  const root = path.join(dir, 'blobs');
  const out: string[] = [];
  for (const sub of fs.readdirSync(root)) {
    if (sub === 'tmp') continue;
    const subdir = path.join(root, sub);
    if (!fs.statSync(subdir).isDirectory()) continue;
    for (const name of fs.readdirSync(subdir)) out.push(name);
  }
  return out.sort();
}

/** The blobs table as the database holds it (read-only side connection). */
function blobRow(dir: string, blobId: string): { size: number; refcount: number } | undefined {
  const db = new Database(path.join(dir, 'yubin.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT size, refcount FROM blobs WHERE id = ?').get(blobId) as { size: number; refcount: number } | undefined;
  } finally {
    db.close();
  }
}

function userVersion(dir: string): number {
  const db = new Database(path.join(dir, 'yubin.db'), { readonly: true, fileMustExist: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
}

function prefix(address: string): Buffer {
  return Buffer.from(`Return-Path: <sender@example.org>\r\nDelivered-To: ${address}\r\n`, 'latin1');
}

function rcpt(account: Account, extra: Partial<DeliveryRecipient> = {}): DeliveryRecipient {
  return { accountId: account.id, mailbox: '\\Inbox', headerPrefix: prefix(account.address), ...extra };
}

async function mailbox(store: Store, account: Account, specialUse: SpecialUse = '\\Inbox') {
  const found = (await store.listMailboxes(account.id)).find((m) => m.specialUse === specialUse);
  assert.ok(found, `${account.address} has a ${specialUse} mailbox`);
  return found;
}

async function assertUsageConsistent(store: Store, account: Account): Promise<void> {
  assert.deepEqual(await store.getUsage(account.id), await store.recomputeUsage(account.id), `usage of ${account.address} equals the recomputed sum`);
}

async function setup(store: Store): Promise<{ alice: Account; bob: Account }> {
  await store.addDomain('example.com');
  const alice = await store.addAccount('alice@example.com', '$scrypt$hash-a');
  const bob = await store.addAccount('bob@example.com', '$scrypt$hash-b');
  return { alice, bob };
}

for (const mode of ['direct', 'batching'] as const) {
  describe(`Store contract, embedded backend, ${mode} writer`, () => {
    describe('domains', () => {
      it('add, get, list (sorted), settings, remove', () =>
        withFreshStore(mode, async (store) => {
          const before = Date.now();
          const zeta = await store.addDomain('zeta.example');
          const alpha = await store.addDomain('alpha.example', { quota: '2M' });
          assert.equal(zeta.name, 'zeta.example');
          assert.equal(typeof zeta.id, 'number');
          assert.notEqual(zeta.id, alpha.id);
          assert.ok(zeta.createdAt instanceof Date);
          assert.ok(zeta.createdAt.getTime() >= before - 1000 && zeta.createdAt.getTime() <= Date.now() + 1000);
          assert.deepEqual(zeta.settings, {});
          assert.deepEqual(alpha.settings, { quota: '2M' });
          assert.deepEqual(await store.getDomain('zeta.example'), zeta);
          assert.equal(await store.getDomain('nowhere.example'), null);
          assert.deepEqual(
            (await store.listDomains()).map((d) => d.name),
            ['alpha.example', 'zeta.example'],
          );

          await store.setDomainSetting('zeta.example', 'locale', 'ja');
          await store.setDomainSetting('zeta.example', 'quota', '5M');
          assert.deepEqual((await store.getDomain('zeta.example'))?.settings, { locale: 'ja', quota: '5M' });
          await store.setDomainSetting('zeta.example', 'locale', null);
          assert.deepEqual((await store.getDomain('zeta.example'))?.settings, { quota: '5M' });

          await store.removeDomain('zeta.example');
          assert.equal(await store.getDomain('zeta.example'), null);
          assert.deepEqual(
            (await store.listDomains()).map((d) => d.name),
            ['alpha.example'],
          );
        }));

      it("errors: 'exists' for a duplicate, 'not-found' for an unknown domain", () =>
        withFreshStore(mode, async (store) => {
          await store.addDomain('example.com');
          await rejectsWith(store.addDomain('example.com'), 'exists', /example\.com/);
          await rejectsWith(store.removeDomain('nowhere.example'), 'not-found', /nowhere\.example/);
          await rejectsWith(store.setDomainSetting('nowhere.example', 'quota', '1M'), 'not-found');
          assert.equal((await store.listDomains()).length, 1);
        }));

      it("removeDomain is refused with 'in-use' while accounts or aliases remain", () =>
        withFreshStore(mode, async (store) => {
          await store.addDomain('example.com');
          await store.addAccount('bob@example.com', 'h');
          await store.addAlias('info@example.com', ['bob@example.com']);
          await rejectsWith(store.removeDomain('example.com'), 'in-use', /1 user.*1 alias/);
          await store.removeAccount('bob@example.com');
          await rejectsWith(store.removeDomain('example.com'), 'in-use', /alias/);
          await store.removeAlias('info@example.com');
          await store.removeDomain('example.com');
          assert.deepEqual(await store.listDomains(), []);
        }));
    });

    describe('accounts', () => {
      it('add, get, get by id, list with usage, password, settings, remove', () =>
        withFreshStore(mode, async (store) => {
          const domain = await store.addDomain('example.com');
          const bob = await store.addAccount('bob@example.com', 'hash-1', { quota: '5M' });
          const alice = await store.addAccount('alice@example.com', 'hash-2');
          assert.equal(bob.address, 'bob@example.com');
          assert.equal(bob.domainId, domain.id);
          assert.equal(bob.passwordHash, 'hash-1');
          assert.deepEqual(bob.settings, { quota: '5M' });
          assert.ok(bob.createdAt instanceof Date);
          assert.deepEqual(await store.getAccount('bob@example.com'), bob);
          assert.deepEqual(await store.getAccountById(bob.id), bob);
          assert.equal(await store.getAccount('nobody@example.com'), null);
          assert.equal(await store.getAccountById(987654), null);

          const list = await store.listAccounts();
          assert.deepEqual(
            list.map((a) => [a.address, a.usage]),
            [
              ['alice@example.com', { bytes: 0, messages: 0 }],
              ['bob@example.com', { bytes: 0, messages: 0 }],
            ],
          );
          assert.deepEqual(await store.getUsage(alice.id), { bytes: 0, messages: 0 });
          assert.deepEqual(await store.recomputeUsage(alice.id), { bytes: 0, messages: 0 });

          await store.setPasswordHash('bob@example.com', 'hash-3');
          assert.equal((await store.getAccount('bob@example.com'))?.passwordHash, 'hash-3');
          await store.setAccountSetting('bob@example.com', 'over_quota', 'reject');
          await store.setAccountSetting('bob@example.com', 'quota', null);
          assert.deepEqual((await store.getAccount('bob@example.com'))?.settings, { over_quota: 'reject' });

          await store.removeAccount('bob@example.com');
          assert.equal(await store.getAccount('bob@example.com'), null);
          assert.equal(await store.getAccountById(bob.id), null);
          assert.deepEqual(await store.listMailboxes(bob.id), [], 'the mailboxes go with the account');
          assert.deepEqual(
            (await store.listAccounts()).map((a) => a.address),
            ['alice@example.com'],
          );
        }));

      it("errors: 'exists' for a duplicate or an alias, 'not-found' for unknown accounts and domains", () =>
        withFreshStore(mode, async (store) => {
          await store.addDomain('example.com');
          const bob = await store.addAccount('bob@example.com', 'h');
          await store.addAlias('info@example.com', ['bob@example.com']);
          await rejectsWith(store.addAccount('bob@example.com', 'h2'), 'exists', /bob@example\.com/);
          await rejectsWith(store.addAccount('info@example.com', 'h2'), 'exists', /alias/);
          await rejectsWith(store.addAccount('x@nowhere.example', 'h'), 'not-found', /nowhere\.example/);
          await rejectsWith(store.removeAccount('nobody@example.com'), 'not-found');
          await rejectsWith(store.setPasswordHash('nobody@example.com', 'h'), 'not-found');
          await rejectsWith(store.setAccountSetting('nobody@example.com', 'quota', '1M'), 'not-found');
          await rejectsWith(store.getUsage(bob.id + 1000), 'not-found');
          assert.equal((await store.getAccount('bob@example.com'))?.passwordHash, 'h', 'the failed add changed nothing');
          assert.equal((await store.listAccounts()).length, 1);
        }));

      it('every account gets INBOX, Sent, Drafts, Trash, Junk and Archive with special-use and distinct UIDVALIDITY', () =>
        withFreshStore(mode, async (store) => {
          const { alice, bob } = await setup(store);
          const validities: number[] = [];
          for (const account of [alice, bob]) {
            const boxes = await store.listMailboxes(account.id);
            assert.deepEqual(
              boxes.map((b) => [b.name, b.specialUse]),
              DEFAULT_MAILBOXES.map((m) => [m.name, m.specialUse]),
            );
            assert.deepEqual(
              boxes.map((b) => b.specialUse),
              ['\\Inbox', '\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive'],
            );
            for (const box of boxes) {
              assert.equal(box.accountId, account.id);
              assert.equal(box.uidNext, 1);
              assert.ok(Number.isInteger(box.uidValidity) && box.uidValidity > 0 && box.uidValidity < 2 ** 32, `UIDVALIDITY is a non-zero 32-bit number: ${box.uidValidity}`);
              assert.ok(box.highestModSeq >= 1);
              assert.equal(box.subscribed, true);
              validities.push(box.uidValidity);
            }
          }
          assert.equal(new Set(validities).size, validities.length, 'UIDVALIDITY never repeats');
          // A re-created account never reuses the UIDVALIDITY of its old mailboxes.
          await store.removeAccount('bob@example.com');
          const again = await store.addAccount('bob@example.com', 'h');
          for (const box of await store.listMailboxes(again.id)) assert.ok(!validities.includes(box.uidValidity), `${box.name} UIDVALIDITY is new`);
        }));
    });

    describe('aliases and recipient resolution', () => {
      it('add, list (sorted), remove; duplicates and clashes with users are refused', () =>
        withFreshStore(mode, async (store) => {
          await setup(store);
          await store.addAlias('sales@example.com', ['alice@example.com', 'bob@example.com']);
          await store.addAlias('info@example.com', ['bob@example.com']);
          assert.deepEqual(await store.listAliases(), [
            { address: 'info@example.com', targets: ['bob@example.com'] },
            { address: 'sales@example.com', targets: ['alice@example.com', 'bob@example.com'] },
          ]);
          await rejectsWith(store.addAlias('info@example.com', ['alice@example.com']), 'exists', /info@example\.com/);
          await rejectsWith(store.addAlias('bob@example.com', ['alice@example.com']), 'exists', /user/);
          await rejectsWith(store.addAlias('x@nowhere.example', ['bob@example.com']), 'not-found');
          await store.removeAlias('info@example.com');
          await rejectsWith(store.removeAlias('info@example.com'), 'not-found', /info@example\.com/);
          assert.deepEqual(
            (await store.listAliases()).map((a) => a.address),
            ['sales@example.com'],
          );
        }));

      it('resolveRecipient: account, alias, unknown user, not local; the domain part is case-insensitive', () =>
        withFreshStore(mode, async (store) => {
          const { bob } = await setup(store);
          await store.addAlias('info@example.com', ['bob@example.com']);
          const account = await store.resolveRecipient('bob@example.com');
          assert.equal(account.kind, 'account');
          if (account.kind === 'account') {
            assert.equal(account.account.id, bob.id);
            assert.equal(account.domain.name, 'example.com');
          }
          assert.equal((await store.resolveRecipient('bob@EXAMPLE.com')).kind, 'account');
          assert.deepEqual(await store.resolveRecipient('info@example.com'), { kind: 'alias', targets: ['bob@example.com'] });
          const unknown = await store.resolveRecipient('nobody@example.com');
          assert.equal(unknown.kind, 'unknown-user');
          if (unknown.kind === 'unknown-user') assert.equal(unknown.domain.name, 'example.com');
          assert.deepEqual(await store.resolveRecipient('bob@elsewhere.net'), { kind: 'not-local' });
          assert.deepEqual(await store.resolveRecipient('no-at-sign'), { kind: 'not-local' });
        }));
    });

    describe('delivery', () => {
      it('two recipients: UIDs 1, 2, 3 per mailbox, MODSEQ bumps, one blob file, readMessage = prefix + blob, usage = recompute', () =>
        withFreshStore(mode, async (store, dir) => {
          const { alice, bob } = await setup(store);
          const inboxBefore = await mailbox(store, alice);
          const bodies = ['Subject: one\r\n\r\nfirst\r\n', 'Subject: two\r\n\r\nsecond, longer\r\n', 'Subject: three\r\n\r\nthird\r\n'].map((t) => Buffer.from(t));
          const date = new Date('2024-05-01T12:34:56.789Z');
          const results: DeliveryResult[] = [];
          const blobIds: string[] = [];
          for (const body of bodies) {
            const blobId = await store.blobs.put(body);
            blobIds.push(blobId);
            results.push(await store.deliver({ blobId, blobSize: body.length, internalDate: date, recipients: [rcpt(alice), rcpt(bob)] }));
          }
          for (const [i, result] of results.entries()) {
            assert.equal(result.stored, true);
            assert.equal(result.outcomes.length, 2);
            for (const [j, account] of [alice, bob].entries()) {
              const outcome = result.outcomes[j]!;
              assert.equal(outcome.accountId, account.id);
              assert.equal(outcome.status, 'stored');
              if (outcome.status === 'stored') {
                assert.equal(outcome.uid, i + 1, `UID of message ${i + 1} for ${account.address}`);
                assert.equal(outcome.mailboxId, (await mailbox(store, account)).id);
              }
            }
          }

          // One file per distinct content, shared by both recipients.
          assert.deepEqual(blobFiles(dir), [...blobIds].sort());
          for (const blobId of blobIds) assert.equal(blobRow(dir, blobId)?.refcount, 2);

          for (const account of [alice, bob]) {
            const inbox = await mailbox(store, account);
            assert.equal(inbox.uidNext, 4);
            assert.equal(inbox.uidValidity, (await mailbox(store, account)).uidValidity);
            const messages = await store.listMessages(inbox.id);
            assert.deepEqual(
              messages.map((m) => m.uid),
              [1, 2, 3],
            );
            const modseqs = messages.map((m) => m.modSeq);
            assert.ok(modseqs.every((m, i) => i === 0 || m > modseqs[i - 1]!), `MODSEQ increases: ${modseqs}`);
            assert.equal(inbox.highestModSeq, modseqs[2], 'HIGHESTMODSEQ is the last message MODSEQ');
            assert.ok(inbox.highestModSeq > inboxBefore.highestModSeq);
            for (const [i, message] of messages.entries()) {
              const expected = Buffer.concat([prefix(account.address), bodies[i]!]);
              assert.equal(message.blobId, blobIds[i]);
              assert.equal(message.size, expected.length);
              assert.deepEqual(message.headerPrefix, prefix(account.address));
              assert.deepEqual(message.flags, []);
              assert.equal(message.internalDate.getTime(), date.getTime());
              assert.deepEqual(await store.readMessage(message), expected);
              const outcome = results[i]!.outcomes.find((o) => o.accountId === account.id);
              assert.ok(outcome?.status === 'stored' && outcome.messageId === message.id, 'the outcome names the stored row');
            }
            const total = messages.reduce((sum, m) => sum + m.size, 0);
            assert.deepEqual(await store.getUsage(account.id), { bytes: total, messages: 3 });
            await assertUsageConsistent(store, account);
            // Other mailboxes are untouched.
            const sent = await mailbox(store, account, '\\Sent');
            assert.equal(sent.uidNext, 1);
            assert.deepEqual(await store.listMessages(sent.id), []);
          }
          const summaries = await store.listAccounts();
          for (const summary of summaries) assert.deepEqual(summary.usage, await store.recomputeUsage(summary.id));
        }));

      it('the same content delivered twice is stored once (refcount counts every copy)', () =>
        withFreshStore(mode, async (store, dir) => {
          const { alice } = await setup(store);
          const body = Buffer.from('Subject: same\r\n\r\nsame\r\n');
          const first = await store.blobs.put(body);
          const second = await store.blobs.put(body);
          assert.equal(first, second);
          for (let i = 0; i < 2; i++) await store.deliver({ blobId: first, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice)] });
          assert.deepEqual(blobFiles(dir), [first]);
          assert.deepEqual(blobRow(dir, first), { size: body.length, refcount: 2 });
          assert.deepEqual(await store.blobs.get(first), body);
          assert.equal(await store.blobs.exists(first), true);
        }));

      it('delivers into another special-use mailbox, with flags', () =>
        withFreshStore(mode, async (store) => {
          const { alice } = await setup(store);
          const body = Buffer.from('Subject: sent\r\n\r\nx\r\n');
          const blobId = await store.blobs.put(body);
          const result = await store.deliver({
            blobId,
            blobSize: body.length,
            internalDate: new Date(),
            recipients: [{ accountId: alice.id, mailbox: '\\Sent', headerPrefix: Buffer.alloc(0), flags: ['\\Seen'] }],
          });
          assert.equal(result.stored, true);
          const sent = await mailbox(store, alice, '\\Sent');
          const [message] = await store.listMessages(sent.id);
          assert.ok(message);
          assert.equal(message.uid, 1);
          assert.deepEqual(message.flags, ['\\Seen']);
          assert.deepEqual(await store.readMessage(message), body);
          assert.deepEqual(await store.listMessages((await mailbox(store, alice)).id), []);
          assert.deepEqual(await store.getUsage(alice.id), { bytes: body.length, messages: 1 });
        }));

      it('quota inside deliver is all-or-nothing: one recipient over quota stores nothing for anyone', () =>
        withFreshStore(mode, async (store, dir) => {
          const { alice, bob } = await setup(store);
          const first = Buffer.from('Subject: fits\r\n\r\n' + 'x'.repeat(500) + '\r\n');
          const firstId = await store.blobs.put(first);
          await store.deliver({ blobId: firstId, blobSize: first.length, internalDate: new Date(), recipients: [rcpt(alice), rcpt(bob)] });
          const aliceBefore = await store.getUsage(alice.id);
          const bobBefore = await store.getUsage(bob.id);
          const inboxBefore = await mailbox(store, alice);

          const body = Buffer.from('Subject: too big for bob\r\n\r\n' + 'y'.repeat(500) + '\r\n');
          const blobId = await store.blobs.put(body);
          const bobSize = prefix(bob.address).length + body.length;
          const bobLimit = { bytes: bobBefore.bytes + bobSize - 1, messages: null };
          const result = await store.deliver({
            blobId,
            blobSize: body.length,
            internalDate: new Date(),
            recipients: [rcpt(alice, { quota: { bytes: null, messages: null } }), rcpt(bob, { quota: bobLimit })],
          });
          assert.equal(result.stored, false);
          const bobOutcome = result.outcomes.find((o) => o.accountId === bob.id);
          assert.deepEqual(bobOutcome, { accountId: bob.id, status: 'over-quota', usage: bobBefore, limit: bobLimit, size: bobSize });

          assert.deepEqual(await store.getUsage(alice.id), aliceBefore, "alice's usage unchanged");
          assert.deepEqual(await store.getUsage(bob.id), bobBefore, "bob's usage unchanged");
          assert.equal((await store.listMessages(inboxBefore.id)).length, 1, 'nothing stored for alice');
          assert.equal((await store.listMessages((await mailbox(store, bob)).id)).length, 1, 'nothing stored for bob');
          assert.deepEqual(await mailbox(store, alice), inboxBefore, 'UIDNEXT and MODSEQ unchanged');
          assert.equal(blobRow(dir, blobId), undefined, 'no reference to the refused blob');
          await assertUsageConsistent(store, alice);
          await assertUsageConsistent(store, bob);

          // Exactly at the limit fits.
          const exact = { bytes: bobBefore.bytes + bobSize, messages: null };
          const ok = await store.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice), rcpt(bob, { quota: exact })] });
          assert.equal(ok.stored, true);
          assert.deepEqual(await store.getUsage(bob.id), { bytes: exact.bytes, messages: 2 });
        }));

      it('the message-count quota is enforced too, counting several copies to one account', () =>
        withFreshStore(mode, async (store) => {
          const { alice } = await setup(store);
          const body = Buffer.from('Subject: n\r\n\r\nn\r\n');
          const blobId = await store.blobs.put(body);
          const limit = { bytes: null, messages: 2 };
          const one = await store.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice, { quota: limit })] });
          assert.equal(one.stored, true);
          // Two more copies in one request: the second would make 3 > 2.
          const two = await store.deliver({
            blobId,
            blobSize: body.length,
            internalDate: new Date(),
            recipients: [rcpt(alice, { quota: limit }), rcpt(alice, { quota: limit, mailbox: '\\Archive' })],
          });
          assert.equal(two.stored, false);
          assert.deepEqual(await store.getUsage(alice.id), { bytes: prefix(alice.address).length + body.length, messages: 1 });
          const three = await store.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice, { quota: limit })] });
          assert.equal(three.stored, true);
          await assertUsageConsistent(store, alice);
        }));

      it("a missing blob or an unknown account is 'not-found' and stores nothing", () =>
        withFreshStore(mode, async (store) => {
          const { alice } = await setup(store);
          await rejectsWith(
            store.deliver({ blobId: 'a'.repeat(64), blobSize: 10, internalDate: new Date(), recipients: [rcpt(alice)] }),
            'not-found',
            /blob/,
          );
          const body = Buffer.from('Subject: x\r\n\r\nx\r\n');
          const blobId = await store.blobs.put(body);
          await rejectsWith(
            store.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice), { accountId: alice.id + 999, mailbox: '\\Inbox', headerPrefix: Buffer.alloc(0) }] }),
            'not-found',
          );
          assert.deepEqual(await store.getUsage(alice.id), { bytes: 0, messages: 0 });
          assert.deepEqual(await store.listMessages((await mailbox(store, alice)).id), []);
        }));

      it('a put blob missing from disk is re-written from the bytes given to deliver', () =>
        withFreshStore(mode, async (store, dir) => {
          const { alice } = await setup(store);
          const body = Buffer.from('Subject: collected\r\n\r\nx\r\n');
          const blobId = await store.blobs.put(body);
          await store.blobs.remove(blobId);
          assert.equal(await store.blobs.exists(blobId), false);
          const result = await store.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice)] }, body);
          assert.equal(result.stored, true);
          // Staged again from the bytes (this small body now inside the database): readable whole.
          assert.equal(blobRow(dir, blobId)?.refcount, 1);
          const [message] = await store.listMessages((await mailbox(store, alice)).id);
          assert.ok(message);
          assert.deepEqual(await store.readMessage(message), Buffer.concat([prefix(alice.address), body]));
        }));

      it('200 concurrent deliveries with room for exactly 100: exactly 100 stored, usage never over the quota', () =>
        withFreshStore(
          mode,
          async (store) => {
            const { alice } = await setup(store);
            // Same length for every message, different content.
            const bodies = Array.from({ length: 200 }, (_, i) => Buffer.from(`Subject: message ${String(i).padStart(3, '0')}\r\n\r\nbody\r\n`));
            const size = prefix(alice.address).length + bodies[0]!.length;
            const limit = { bytes: 100 * size, messages: null };
            const blobIds = await Promise.all(bodies.map((b) => store.blobs.put(b)));

            let maxSeen = 0;
            let polling = true;
            const poller = (async () => {
              while (polling) {
                maxSeen = Math.max(maxSeen, (await store.getUsage(alice.id)).bytes);
                await new Promise((resolve) => setImmediate(resolve));
              }
            })();
            const results = await Promise.all(
              bodies.map((body, i) =>
                store.deliver({ blobId: blobIds[i]!, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice, { quota: limit })] }),
              ),
            );
            polling = false;
            await poller;

            const stored = results.filter((r) => r.stored);
            assert.equal(stored.length, 100);
            for (const r of results.filter((r) => !r.stored)) assert.equal(r.outcomes[0]?.status, 'over-quota');
            const usage = await store.getUsage(alice.id);
            assert.deepEqual(usage, { bytes: 100 * size, messages: 100 });
            assert.ok(maxSeen <= limit.bytes, `usage seen during the deliveries (${maxSeen}) never exceeded ${limit.bytes}`);
            assert.deepEqual(await store.recomputeUsage(alice.id), usage);
            const messages = await store.listMessages((await mailbox(store, alice)).id);
            assert.deepEqual(
              messages.map((m) => m.uid),
              Array.from({ length: 100 }, (_, i) => i + 1),
              'UIDs 1..100 without gaps',
            );
            const uids = stored.map((r) => (r.outcomes[0]?.status === 'stored' ? r.outcomes[0].uid : 0)).sort((a, b) => a - b);
            assert.deepEqual(
              uids,
              messages.map((m) => m.uid),
            );
          },
          // Several group commits rather than one.
          16,
        ));

      it('concurrent writes that fail do not undo the others committed with them', () =>
        withFreshStore(mode, async (store) => {
          const results = await Promise.allSettled([
            store.addDomain('a.example'),
            store.addDomain('a.example'),
            store.addDomain('b.example'),
            store.removeDomain('nowhere.example'),
            store.addDomain('c.example'),
          ]);
          assert.deepEqual(
            results.map((r) => r.status),
            ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
          );
          const [, dup, , missing] = results;
          assert.ok(dup?.status === 'rejected' && dup.reason instanceof StoreError && dup.reason.code === 'exists');
          assert.ok(missing?.status === 'rejected' && missing.reason instanceof StoreError && missing.reason.code === 'not-found');
          assert.deepEqual(
            (await store.listDomains()).map((d) => d.name),
            ['a.example', 'b.example', 'c.example'],
          );
        }));
    });

    describe('removal, persistence and migrations', () => {
      it('removeAccount releases its blobs: refcount 0 when unreferenced, decremented when shared', async () => {
        const dir = tempDir();
        try {
          let store = open(dir, mode);
          let only: string;
          let shared: string;
          try {
            const { alice, bob } = await setup(store);
            const mine = Buffer.from('Subject: only bob\r\n\r\nx\r\n');
            const ours = Buffer.from('Subject: both\r\n\r\ny\r\n');
            only = await store.blobs.put(mine);
            shared = await store.blobs.put(ours);
            await store.deliver({ blobId: only, blobSize: mine.length, internalDate: new Date(), recipients: [rcpt(bob)] });
            await store.deliver({ blobId: only, blobSize: mine.length, internalDate: new Date(), recipients: [rcpt(bob, { mailbox: '\\Archive' })] });
            await store.deliver({ blobId: shared, blobSize: ours.length, internalDate: new Date(), recipients: [rcpt(alice), rcpt(bob)] });
            assert.equal(blobRow(dir, only)?.refcount, 2);
            assert.equal(blobRow(dir, shared)?.refcount, 2);

            await store.removeAccount('bob@example.com');
            assert.equal(blobRow(dir, only)?.refcount, 0, 'unreferenced: refcount 0');
            assert.equal(blobRow(dir, shared)?.refcount, 1, "alice's copy still references the shared blob");
            assert.ok(fs.existsSync(path.join(dir, 'blobs', shared.slice(0, 2), shared)));
            await assertUsageConsistent(store, alice);
            if (mode === 'direct') {
              // Only the server's single writer collects garbage; the CLI never unlinks.
              assert.ok(await store.blobs.exists(only), 'direct mode leaves the file for the collector');
              assert.deepEqual(blobFiles(dir), [only, shared].sort());
            }
          } finally {
            await store.close();
          }
          if (mode === 'batching') {
            // The writer thread collects unreferenced blobs when it starts: row and file go together.
            store = open(dir, mode);
            try {
              await store.addDomain('after-restart.example'); // runs after the start-up collection
              assert.equal(blobRow(dir, only), undefined, 'the unreferenced row is collected');
              assert.equal(await store.blobs.exists(only), false, 'and its file');
              assert.equal(blobRow(dir, shared)?.refcount, 1, 'a referenced blob stays');
              assert.equal(await store.blobs.exists(shared), true);
            } finally {
              await store.close();
            }
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });

      it('data survives close and reopen', async () => {
        const dir = tempDir();
        try {
          const body = Buffer.from('Subject: persistent\r\n\r\nstill here\r\n');
          let aliceId: number;
          let validity: number;
          const first = open(dir, mode);
          try {
            const { alice } = await setup(first);
            aliceId = alice.id;
            await first.setDomainSetting('example.com', 'quota', '3M');
            await first.setAccountSetting('alice@example.com', 'locale', 'ja');
            await first.addAlias('info@example.com', ['alice@example.com']);
            const blobId = await first.blobs.put(body);
            await first.deliver({ blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice)] });
            validity = (await mailbox(first, alice)).uidValidity;
          } finally {
            await first.close();
          }
          const second = open(dir, mode);
          try {
            assert.deepEqual(
              (await second.listDomains()).map((d) => [d.name, d.settings]),
              [['example.com', { quota: '3M' }]],
            );
            const alice = await second.getAccount('alice@example.com');
            assert.ok(alice);
            assert.equal(alice.id, aliceId);
            assert.equal(alice.passwordHash, '$scrypt$hash-a');
            assert.deepEqual(alice.settings, { locale: 'ja' });
            assert.deepEqual(await second.listAliases(), [{ address: 'info@example.com', targets: ['alice@example.com'] }]);
            const inbox = await mailbox(second, alice);
            assert.equal(inbox.uidValidity, validity);
            assert.equal(inbox.uidNext, 2);
            const [message] = await second.listMessages(inbox.id);
            assert.ok(message);
            assert.deepEqual(await second.readMessage(message), Buffer.concat([prefix(alice.address), body]));
            assert.deepEqual(await second.getUsage(alice.id), { bytes: message.size, messages: 1 });
            await assertUsageConsistent(second, alice);
            // And it goes on from there: the next UID is 2.
            const next = await second.deliver({ blobId: message.blobId, blobSize: body.length, internalDate: new Date(), recipients: [rcpt(alice)] });
            assert.ok(next.outcomes[0]?.status === 'stored' && next.outcomes[0].uid === 2);
          } finally {
            await second.close();
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });

      it('a fresh directory is migrated to SCHEMA_VERSION; reopening keeps it; a newer database is refused', async () => {
        const dir = tempDir();
        try {
          assert.ok(SCHEMA_VERSION >= 1);
          const store = open(dir, mode);
          await store.addDomain('example.com');
          await store.close();
          assert.equal(userVersion(dir), SCHEMA_VERSION);
          const again = open(dir, mode);
          assert.deepEqual(
            (await again.listDomains()).map((d) => d.name),
            ['example.com'],
          );
          await again.close();
          assert.equal(userVersion(dir), SCHEMA_VERSION);

          const db = new Database(path.join(dir, 'yubin.db'));
          db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
          db.close();
          assert.throws(() => open(dir, mode), /newer/);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    });
  });
}
