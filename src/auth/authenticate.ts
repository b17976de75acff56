// Password authentication for the mail protocols (IMAP, POP3; submission later): looks
// the account up, verifies the scrypt hash, and applies the failure throttle. Returns an
// AuthenticatedUser, the only handle that protocol code can reach mail with.

import type { Account, Store } from '../store/types.js';
import { verifyPassword } from './password.js';
import type { AuthThrottle } from './throttle.js';

export interface AuthenticatedUser {
  account: Account;
}

/** A hash to verify against when the account does not exist, so timing does not tell. */
const DUMMY_HASH = '$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';

export async function authenticate(
  store: Store,
  throttle: AuthThrottle,
  ip: string,
  username: string,
  password: string,
): Promise<AuthenticatedUser | null> {
  const address = username.trim().toLowerCase();
  const account = address.includes('@') ? await store.getAccount(address) : null;
  const ok =
    (account !== null && throttle.recentlyVerified(address, account.passwordHash, password)) ||
    (await verifyPassword(password, account?.passwordHash ?? DUMMY_HASH));
  if (account && ok) {
    throttle.recordSuccess(address);
    throttle.rememberVerified(address, account.passwordHash, password);
    return { account };
  }
  const delay = throttle.recordFailure(ip, address);
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  return null;
}
