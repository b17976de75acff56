// Authentication failure throttling, per IP address and per account: each failure within the
// window doubles the delay before the next answer (base failure_delay, at most 30 s). A delay is
// applied to failures only, so an honest user who types the password right is never slowed.

export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; last: number }>();

  constructor(private readonly settings: () => { failureDelaySeconds: number; windowSeconds: number }) {}

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
