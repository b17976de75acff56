// Two ways to run the store's writes (writes.ts):
//  - DirectWriter: in the calling thread, one transaction per call (CLI, tests).
//  - BatchingWriter: in a worker thread that gathers every write arriving while the previous
//    commit runs and commits them together (group commit). Each write runs in its own savepoint,
//    so one failing write does not undo the others. The commit's fsync never blocks the event loop.

import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { StoreError } from '../types.js';
import { allWrites as writes, type WriteArgs, type WriteContext, type WriteOpName, type WriteResult } from './writes.js';

export interface Writer {
  run<K extends WriteOpName>(op: K, args: WriteArgs<K>): Promise<WriteResult<K>>;
  close(): Promise<void>;
}

export interface WriterOptions {
  dbFile: string;
  blobPath: (blobId: string) => string;
  blobRoot: string;
  fsync: boolean;
  maxBatch: number;
}

export class DirectWriter implements Writer {
  constructor(
    private readonly db: Database.Database,
    private readonly blobPath: (blobId: string) => string,
  ) {}

  async run<K extends WriteOpName>(op: K, args: WriteArgs<K>): Promise<WriteResult<K>> {
    const ctx: WriteContext = { db: this.db, blobPath: this.blobPath, orphanedBlobs: [] };
    const fn = writes[op] as (ctx: WriteContext, args: WriteArgs<K>) => WriteResult<K>;
    const result = this.db.transaction(() => fn(ctx, args)).immediate();
    for (const blobId of ctx.orphanedBlobs) fs.rmSync(this.blobPath(blobId), { force: true });
    return result;
  }

  async close(): Promise<void> {}
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { message: string; storeCode?: StoreError['code'] } };

export class BatchingWriter implements Writer {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private failure: Error | null = null;

  constructor(options: WriterOptions) {
    this.worker = new Worker(new URL('./writer-worker.js', import.meta.url), {
      workerData: { dbFile: options.dbFile, blobRoot: options.blobRoot, fsync: options.fsync, maxBatch: options.maxBatch },
    });
    this.worker.on('message', (replies: WorkerReply[]) => {
      for (const reply of replies) {
        const waiter = this.pending.get(reply.id);
        if (!waiter) continue;
        this.pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.result);
        else waiter.reject(reply.error.storeCode ? new StoreError(reply.error.storeCode, reply.error.message) : new Error(reply.error.message));
      }
    });
    const failAll = (err: Error) => {
      this.failure = err;
      for (const waiter of this.pending.values()) waiter.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => {
      if (!this.closed) failAll(new Error(`store writer stopped (exit code ${code})`));
    });
  }

  run<K extends WriteOpName>(op: K, args: WriteArgs<K>): Promise<WriteResult<K>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('store is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ id, op, args });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Let every write already sent finish before the worker goes.
    while (this.pending.size > 0 && !this.failure) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    await this.worker.terminate();
  }
}
