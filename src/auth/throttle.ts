// Authentication failure throttling, per IP address and per account: each failure within the
// window doubles the delay before the next answer (base failure_delay, at most 30 s). A delay is
// applied to failures only, so an honest user who types the password right is never slowed.

import crypto from 'node:crypto';

export interface AuthSettings {
  failureDelaySeconds: number;
  windowSeconds: number;
  /** How long a verified password is remembered (auth.verified_cache); 0: every login hashes. */
  verifiedCacheSeconds?: number;
}

/** At most this many remembered logins (the oldest go first). */
const VERIFIED_MAX_ENTRIES = 50_000;

export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();
  /**
   * Logins verified recently: address → a keyed digest of (stored hash, password) and when it
   * expires. A client that logs in again with the same password (IMAP clients do, many times an
   * hour) is then checked with one HMAC instead of one scrypt hash (about 100 ms of CPU). The key
   * is random per process and never leaves memory; a changed password changes the stored hash,
   * so the remembered login no longer matches. Failures are never remembered.
   */
  private readonly verified = new Map<string, { digest: Buffer; expires: number }>();
  private readonly verifiedKey = crypto.randomBytes(32);

  constructor(private readonly settings: () => AuthSettings) {}

  private digest(storedHash: string, password: string): Buffer {
    return crypto.createHmac('sha256', this.verifiedKey).update(storedHash).update('\0').update(password, 'utf8').digest();
  }

  /** Whether this password was verified against this stored hash within auth.verified_cache. */
  recentlyVerified(address: string, storedHash: string, password: string): boolean {
    const entry = this.verified.get(address);
    if (!entry) return false;
    if (entry.expires <= Date.now()) {
      this.verified.delete(address);
      return false;
    }
    return crypto.timingSafeEqual(entry.digest, this.digest(storedHash, password));
  }

  rememberVerified(address: string, storedHash: string, password: string): void {
    const seconds = this.settings().verifiedCacheSeconds ?? 0;
    if (seconds <= 0) return;
    this.verified.delete(address);
    if (this.verified.size >= VERIFIED_MAX_ENTRIES) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(address, { digest: this.digest(storedHash, password), expires: Date.now() + seconds * 1000 });
  }

  private count(key: string, now: number): number {
    const entry = this.failures.get(key);
    if (!entry) return 0;
    if (now - entry.last > this.settings().windowSeconds * 1000) {
      this.failures.delete(key);
      return 0;
    }
    return entry.count;
  }

  /** Milliseconds to wait before answering a failed attempt from ip for account. */
  recordFailure(ip: string, account: string): number {
    const now = Date.now();
    let worst = 0;
    for (const key of [`ip:${ip}`, `account:${account.toLowerCase()}`]) {
      const count = this.count(key, now) + 1;
      this.failures.set(key, { count, last: now });
      worst = Math.max(worst, count);
    }
    if (this.failures.size > 100_000) this.prune(now);
    const base = this.settings().failureDelaySeconds * 1000;
    return Math.min(30_000, base * 2 ** Math.min(worst - 1, 10));
  }

  recordSuccess(account: string): void {
    this.failures.delete(`account:${account.toLowerCase()}`);
  }

  private prune(now: number): void {
    const window = this.settings().windowSeconds * 1000;
    for (const [key, entry] of this.failures) if (now - entry.last > window) this.failures.delete(key);
  }
}

/** Whether an address is loopback (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
export function isLoopback(ip: string): boolean {
  return ip === '::1' || /^(::ffff:)?127\./.test(ip);
}
