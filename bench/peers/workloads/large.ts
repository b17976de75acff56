// Large mailbox: one INBOX of N messages. One connection: LOGIN, SELECT INBOX (the first, "cold":
// the first in this server process for Yubin, a new imap process for Dovecot), SELECT INBOX again
// (warm), UID FETCH 1:* (UID FLAGS), UID SEARCH HEADER Subject WORD twice. Each command is timed
// from sending it to its tagged OK; the answers are checked (EXISTS, FETCH responses, matches).

import { ImapClient, existsOf, expectOk, quoted, searchCount } from './clients.js';
import { PASSWORD, SUBJECT_WORD } from '../messages.js';

export interface LargeParams {
  host: string;
  port: number;
  user: string;
  messages: number;
  /** Subjects holding SUBJECT_WORD. */
  subjectMatches: number;
}

export interface LargeResult {
  messages: number;
  loginMs: number;
  selectColdMs: number;
  selectMs: number;
  fetchFlagsMs: number;
  searchFirstMs: number;
  searchMs: number;
  errors: string[];
}

export async function largeMailbox(p: LargeParams): Promise<LargeResult> {
  const errors: string[] = [];
  const check = (ok: boolean, text: string) => {
    if (!ok) errors.push(text);
  };
  const client = await ImapClient.connect(p.host, p.port, undefined, 120_000);
  try {
    const login = expectOk(await client.command(`LOGIN ${quoted(p.user)} ${quoted(PASSWORD)}`), 'LOGIN');
    const cold = expectOk(await client.command('SELECT INBOX'), 'SELECT (cold)');
    check(existsOf(cold) === p.messages, `SELECT (cold): ${existsOf(cold)} EXISTS, expected ${p.messages}`);
    const warm = expectOk(await client.command('SELECT INBOX'), 'SELECT');
    check(existsOf(warm) === p.messages, `SELECT: ${existsOf(warm)} EXISTS, expected ${p.messages}`);
    client.keepUntagged = false;
    const fetch = expectOk(await client.command('UID FETCH 1:* (UID FLAGS)'), 'UID FETCH');
    check(fetch.untaggedCount === p.messages, `UID FETCH 1:* (UID FLAGS): ${fetch.untaggedCount} responses, expected ${p.messages}`);
    client.keepUntagged = true;
    const search = `UID SEARCH HEADER Subject ${quoted(SUBJECT_WORD)}`;
    const first = expectOk(await client.command(search), 'UID SEARCH (first)');
    check(searchCount(first) === p.subjectMatches, `UID SEARCH HEADER Subject (first): ${searchCount(first)} matches, expected ${p.subjectMatches}`);
    const second = expectOk(await client.command(search), 'UID SEARCH');
    check(searchCount(second) === p.subjectMatches, `UID SEARCH HEADER Subject: ${searchCount(second)} matches, expected ${p.subjectMatches}`);
    await client.command('LOGOUT').catch(() => undefined);
    return {
      messages: p.messages,
      loginMs: login.ms,
      selectColdMs: cold.ms,
      selectMs: warm.ms,
      fetchFlagsMs: fetch.ms,
      searchFirstMs: first.ms,
      searchMs: second.ms,
      errors,
    };
  } finally {
    client.destroy();
  }
}
