// The store's single writer thread (see writer.ts): group commit of everything queued.

import fs from 'node:fs';
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { StoreError } from '../types.js';
import { openDatabase } from './open.js';
import { allWrites as writes, type WriteContext, type WriteOpName } from './writes.js';
import type { WorkerReply } from './writer.js';

interface Request {
  id: number;
  op: WriteOpName;
  args: unknown;
}

const { dbFile, blobRoot, fsync, maxBatch } = workerData as { dbFile: string; blobRoot: string; fsync: boolean; maxBatch: number };
const db = openDatabase(dbFile, { fsync, migrate: false });
const blobPath = (blobId: string) => path.join(blobRoot, blobId.slice(0, 2), blobId);
const queue: Request[] = [];
let scheduled = false;

function toReply(id: number, err: unknown): WorkerReply {
  const error = err as Error;
  return { id, ok: false, error: { message: error.message ?? String(err), storeCode: err instanceof StoreError ? err.code : undefined } };
}

function flush(): void {
  scheduled = false;
  while (queue.length > 0) {
    const batch = queue.splice(0, maxBatch);
    const ctx: WriteContext = { db, blobPath, orphanedBlobs: [] };
    const replies: WorkerReply[] = [];
    try {
      db.transaction(() => {
        for (const request of batch) {
          const fn = writes[request.op] as (ctx: WriteContext, args: unknown) => unknown;
          try {
            // A nested transaction is a savepoint: a throwing write undoes only itself.
            const result = db.transaction(() => fn(ctx, request.args))();
            replies.push({ id: request.id, ok: true, result });
          } catch (err) {
            replies.push(toReply(request.id, err));
          }
        }
      }).immediate();
    } catch (err) {
      // The commit itself failed: nothing of this batch is stored.
      replies.length = 0;
      ctx.orphanedBlobs.length = 0;
      for (const request of batch) replies.push(toReply(request.id, err));
    }
    for (const blobId of ctx.orphanedBlobs) fs.rmSync(blobPath(blobId), { force: true });
    parentPort!.postMessage(replies);
  }
}

function collectGarbage(): void {
  const ctx: WriteContext = { db, blobPath, orphanedBlobs: [] };
  try {
    db.transaction(() => writes.collectGarbage(ctx, { limit: 1000 })).immediate();
    for (const blobId of ctx.orphanedBlobs) fs.rmSync(blobPath(blobId), { force: true });
  } catch {
    // busy or failing disk: the next round tries again
  }
}

parentPort!.on('message', (request: Request) => {
  queue.push(request);
  if (!scheduled) {
    scheduled = true;
    // Gather whatever else has already arrived before opening the transaction.
    setImmediate(flush);
  }
});

collectGarbage();
/**
 * Files with no blob row are left by a crash between a file's fsync and its commit. One fan-out
 * directory is swept per tick; only files older than an hour go (a delivery commits within
 * moments of its put(), and deliver() re-puts a file that vanished anyway).
 */
const ORPHAN_MIN_AGE_MS = 3600_000;
let sweepIndex = 0;
function sweepOrphanFiles(): void {
  const dir = path.join(blobRoot, (sweepIndex++ % 256).toString(16).padStart(2, '0'));
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const hasRow = db.prepare('SELECT 1 FROM blobs WHERE id = ?');
  const now = Date.now();
  for (const name of names) {
    try {
      if (hasRow.get(name)) continue;
      const file = path.join(dir, name);
      if (now - fs.statSync(file).mtimeMs > ORPHAN_MIN_AGE_MS) fs.rmSync(file, { force: true });
    } catch {
      // vanished meanwhile, or unreadable: the next sweep sees it again
    }
  }
}
setInterval(() => {
  if (queue.length === 0) sweepOrphanFiles();
}, 2000).unref();

// Unreferenced blobs come from deletions here and from the CLI (user remove) in other processes.
setInterval(() => {
  if (queue.length === 0) collectGarbage();
}, 60_000).unref();
