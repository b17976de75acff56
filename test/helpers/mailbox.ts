// Reads what Yubin stored, through Yubin's own Store (the embedded backend), as tests see it.

import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

export interface StoredMail {
  uid: number;
  size: number;
  bytes: Buffer;
  text: string;
}

/** The messages in a user's mailbox (INBOX by default), oldest first. */
export async function readMailbox(dataDir: string, address: string, mailboxName = 'INBOX'): Promise<StoredMail[]> {
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  try {
    const account = await store.getAccount(address);
    if (!account) throw new Error(`no account ${address}`);
    const mailbox = (await store.listMailboxes(account.id)).find((m) => m.name === mailboxName);
    if (!mailbox) throw new Error(`no mailbox ${mailboxName}`);
    const out: StoredMail[] = [];
    for (const message of await store.listMessages(mailbox.id)) {
      const bytes = await store.readMessage(message);
      out.push({ uid: message.uid, size: message.size, bytes, text: bytes.toString('latin1') });
    }
    return out;
  } finally {
    await store.close();
  }
}

/** Usage as kept by the store, and as recomputed from the stored sizes. */
export async function usageOf(dataDir: string, address: string): Promise<{ kept: { bytes: number; messages: number }; summed: { bytes: number; messages: number } }> {
  const store = SqliteStore.open({ directory: dataDir, fsync: false, writer: 'direct' });
  try {
    const account = await store.getAccount(address);
    if (!account) throw new Error(`no account ${address}`);
    return { kept: await store.getUsage(account.id), summed: await store.recomputeUsage(account.id) };
  } finally {
    await store.close();
  }
}
