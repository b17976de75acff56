import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthThrottle } from '../../src/auth/throttle.js';
import { authenticate } from '../../src/auth/authenticate.js';
import { hashPassword } from '../../src/auth/password.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

describe('remembered logins (auth.verified_cache)', () => {
  it('match only the same password against the same stored hash, within the time', async () => {
    let seconds = 60;
    const throttle = new AuthThrottle(() => ({ failureDelaySeconds: 0, windowSeconds: 60, verifiedCacheSeconds: seconds }));
    throttle.rememberVerified('a@example.test', '$scrypt$old', 'secret');
    assert.equal(throttle.recentlyVerified('a@example.test', '$scrypt$old', 'secret'), true);
    assert.equal(throttle.recentlyVerified('a@example.test', '$scrypt$old', 'Secret'), false, 'another password');
    assert.equal(throttle.recentlyVerified('a@example.test', '$scrypt$new', 'secret'), false, 'the password was changed');
    assert.equal(throttle.recentlyVerified('b@example.test', '$scrypt$old', 'secret'), false, 'another user');
    seconds = 0;
    throttle.rememberVerified('c@example.test', '$scrypt$c', 'secret');
    assert.equal(throttle.recentlyVerified('c@example.test', '$scrypt$c', 'secret'), false, '0 remembers nothing');
  });

  it('a second login skips the scrypt hash; a wrong password or a changed one does not pass', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'yubin-auth-'));
    const store = SqliteStore.open({ directory: dir, fsync: false, writer: 'direct' });
    try {
      await store.addDomain('example.test');
      await store.addAccount('kenji@example.test', await hashPassword('right one'));
      const throttle = new AuthThrottle(() => ({ failureDelaySeconds: 0, windowSeconds: 60, verifiedCacheSeconds: 900 }));
      let started = process.hrtime.bigint();
      assert.ok(await authenticate(store, throttle, '127.0.0.1', 'kenji@example.test', 'right one'));
      const first = Number(process.hrtime.bigint() - started) / 1e6;
      started = process.hrtime.bigint();
      assert.ok(await authenticate(store, throttle, '127.0.0.1', 'Kenji@Example.test', 'right one'));
      const second = Number(process.hrtime.bigint() - started) / 1e6;
      assert.ok(second * 5 < first, `the remembered login is checked without scrypt: ${second.toFixed(2)} ms against ${first.toFixed(2)} ms`);
      assert.equal(await authenticate(store, throttle, '127.0.0.1', 'kenji@example.test', 'wrong one'), null);
      await store.setPasswordHash('kenji@example.test', await hashPassword('new one'));
      assert.equal(await authenticate(store, throttle, '127.0.0.1', 'kenji@example.test', 'right one'), null, 'the old password no longer passes');
      assert.ok(await authenticate(store, throttle, '127.0.0.1', 'kenji@example.test', 'new one'));
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
