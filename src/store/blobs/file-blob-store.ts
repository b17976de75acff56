// Content-addressed message files: DIR/ab/abcdef… named by the SHA-256 of their bytes, so
// identical content is stored once. A blob is written to a temporary file, fsynced, renamed
// into place and its directory fsynced before put() resolves: a file at its final name is
// always complete, and a commit that references it never outlives it (DESIGN: "a 250 is a promise").
// Reference counting lives in the database; this module only handles bytes.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../types.js';
import { blobIdOf } from '../blob-id.js';

export class FileBlobStore implements BlobStore {
  private readonly tmpDir: string;
  private readonly dirSync = new Map<string, DirSync>();
  private tmpCounter = 0;

  constructor(
    private readonly root: string,
    private readonly fsync: boolean,
  ) {
    this.tmpDir = path.join(root, 'tmp');
    fs.mkdirSync(this.tmpDir, { recursive: true });
  }

  pathOf(blobId: string): string {
    if (!/^[0-9a-f]{64}$/.test(blobId)) throw new Error(`invalid blob id ${blobId}`);
    return path.join(this.root, blobId.slice(0, 2), blobId);
  }

  async put(bytes: Buffer): Promise<string> {
    const blobId = blobIdOf(bytes);
    const finalPath = this.pathOf(blobId);
    if (await this.exists(blobId)) return blobId;
    const dir = path.dirname(finalPath);
    await fsp.mkdir(dir, { recursive: true });
    const tmpPath = path.join(this.tmpDir, `${process.pid}.${Date.now()}.${this.tmpCounter++}`);
    const handle = await fsp.open(tmpPath, 'w', 0o640);
    try {
      await handle.writeFile(bytes);
      if (this.fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmpPath, finalPath);
    if (this.fsync) await this.syncDir(dir);
    return blobId;
  }

  async get(blobId: string): Promise<Buffer> {
    return fsp.readFile(this.pathOf(blobId));
  }

  async exists(blobId: string): Promise<boolean> {
    try {
      await fsp.access(this.pathOf(blobId));
      return true;
    } catch {
      return false;
    }
  }

  async remove(blobId: string): Promise<void> {
    await fsp.rm(this.pathOf(blobId), { force: true });
  }

  /** Removes temporary files left by a crash between write and rename. */
  sweepTemporaryFiles(): void {
    for (const name of fs.readdirSync(this.tmpDir)) fs.rmSync(path.join(this.tmpDir, name), { force: true });
  }

  /** Coalesces directory fsyncs: renames that land while a sync is queued share it. */
  private syncDir(dir: string): Promise<void> {
    let sync = this.dirSync.get(dir);
    if (!sync) {
      sync = new DirSync(dir);
      this.dirSync.set(dir, sync);
    }
    return sync.request();
  }
}

class DirSync {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly dir: string) {}

  request(): Promise<void> {
    // A sync already queued (not yet started) will cover this rename too.
    if (this.queued) return this.queued;
    const start = async () => {
      this.queued = null;
      const handle = await fsp.open(this.dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    };
    const next = (this.running ?? Promise.resolve()).catch(() => undefined).then(start);
    this.queued = next;
    this.running = next.finally(() => {
      if (this.running === tracked) this.running = null;
    });
    const tracked = this.running;
    return next;
  }
}
