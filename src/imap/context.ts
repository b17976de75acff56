// What an IMAP command handler works with: the session state, the store, the reply channel.
// Handlers are small: parse their arguments, check authority, call the store, encode the answer.

import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { AuthenticatedUser } from '../auth/authenticate.js';
import type { AuthThrottle } from '../auth/throttle.js';
import type { Store } from '../store/types.js';
import type { ImapCommand, ImapToken } from './protocol/types.js';
import type { SelectedMailbox } from './selected.js';
import type { MailboxViews } from './mailbox-views.js';

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** A tagged completion: OK, NO or BAD, with an optional response code (RFC 9051 §7.1). */
export class ImapResult {
  constructor(
    readonly status: 'OK' | 'NO' | 'BAD',
    readonly text: string,
    readonly code?: string,
  ) {}
}

/** Thrown by handlers to end a command with NO or BAD. */
export class ImapError extends ImapResult {}

/** Thrown by a command that already wrote its own tagged reply (STARTTLS). */
export class SilentResult extends Error {}

export const ok = (text = 'completed', code?: string) => new ImapResult('OK', text, code);
export const no = (text: string, code?: string) => new ImapError('NO', text, code);
export const bad = (text: string, code?: string) => new ImapError('BAD', text, code);

export interface SessionServices {
  config: () => Config;
  store: Store;
  throttle: AuthThrottle;
  log: Logger;
  /** Shared snapshots of large mailboxes (absent: every SELECT reads the mailbox whole). */
  views?: MailboxViews;
}

/** The session as handlers see it. */
export interface Session {
  readonly id: string;
  readonly services: SessionServices;
  state: SessionState;
  user: AuthenticatedUser | null;
  selected: SelectedMailbox | null;
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** ENABLEd extensions (RFC 5161), upper-case: UTF8=ACCEPT, CONDSTORE, QRESYNC, IMAP4REV2. */
  readonly enabled: Set<string>;
  /** SEARCHRES: the UIDs saved by SEARCH ... SAVE (RFC 5182). */
  savedSearch: number[];
  /** Writes untagged response bytes ("* ..." lines, with literals) to the client. */
  send(data: Buffer | string): void;
  /** Resolves once the client has read enough of what was sent (output backpressure). */
  drain(): Promise<void>;
  /** Capabilities for the current state (without the "CAPABILITY" word). */
  capabilities(): string[];
  /** Whether LOGIN/AUTHENTICATE with a plaintext password is allowed on this connection now. */
  plaintextAllowed(): boolean;
  /** Announces pending mailbox updates (EXISTS, EXPUNGE, FETCH FLAGS); expunges only if allowed. */
  flushUpdates(allowExpunge: boolean): Promise<void>;
  /** Called once authentication succeeded: the only way into the authenticated state. */
  loggedIn(user: AuthenticatedUser): void;
  /** RFC 2177 IDLE: sends updates as they happen until the client sends DONE. */
  idle(): Promise<'done' | 'closed'>;
  /** Hooks for commands that take over the connection (STARTTLS, IDLE, COMPRESS, AUTHENTICATE). */
  readonly connection: ConnectionControl;
}

export interface ConnectionControl {
  startTls(): Promise<void>;
  startCompression(): void;
  /** Reads one line from the client (AUTHENTICATE continuation, IDLE's DONE); null on close. */
  readLine(): Promise<string | null>;
  /** Sends "+ text" (a continuation request). */
  continueRequest(text: string): void;
  readonly tlsAvailable: boolean;
  readonly compressed: boolean;
  close(): void;
}

export interface CommandContext {
  session: Session;
  tag: string;
  command: ImapCommand;
  args: ImapToken[];
  /** True for "UID FETCH" etc. */
  uid: boolean;
}

export interface CommandSpec {
  /** Upper-case name as parsed, e.g. "FETCH" (the UID form is dispatched to the same spec with uid = true). */
  name: string;
  states: SessionState[];
  /** Whether the UID prefix is allowed (FETCH, STORE, SEARCH, COPY, MOVE, EXPUNGE, SORT, THREAD). */
  uidForm?: boolean;
  handle(ctx: CommandContext): Promise<ImapResult>;
}
