// RFC 1939 §8 and RFC 2449 [IN-USE]: one POP3 session at a time per maildrop. An in-process lock
// keyed by account id, shared by the pop3 and pop3s listeners; a session releases it when it ends,
// however it ends.

export class MaildropLocks {
  private readonly held = new Set<number>();

  /** Takes the lock of an account's maildrop; false when another session holds it. */
  acquire(accountId: number): boolean {
    if (this.held.has(accountId)) return false;
    this.held.add(accountId);
    return true;
  }

  release(accountId: number): void {
    this.held.delete(accountId);
  }

  isHeld(accountId: number): boolean {
    return this.held.has(accountId);
  }
}
