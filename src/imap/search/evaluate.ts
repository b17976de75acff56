// Runs a parsed SEARCH program (./query.ts) against one message. Pure.
//
// Evaluation is three-valued so that the message's content is read only when it can change the
// outcome: with `content` null, keys about headers and body are "unknown" (null), and AND / OR /
// NOT combine unknowns the Kleene way. `FLAGGED BODY x` on an unflagged message is then false
// without reading anything; only an unknown result needs the content loaded and a second pass.

import type { SequenceSet } from '../protocol/types.js';
import type { SearchKey } from './query.js';

/** What SEARCH knows about a message without reading it (from the mailbox view). */
export interface SearchMessage {
  seq: number;
  uid: number;
  flags: readonly string[];
  size: number;
  internalDate: Date;
  modSeq: number;
}

/** The decoded content a message's header and body keys look at. */
export interface SearchContent {
  /** Lower-case field name → decoded values (RFC 2047 encoded-words undone), in order. */
  headers: Map<string, string[]>;
  /** The decoded text of the body (text parts in their charsets, transfer encodings undone). */
  body: string;
  /** Midnight UTC of the calendar day written in the Date: header (its own zone), or null. */
  sentDay: number | null;
}

export interface SearchEnv {
  /** Current time in ms (WITHIN). */
  now: number;
  /** The largest sequence number and UID in the mailbox ("*"). */
  maxSeq: number;
  maxUid: number;
  /** The saved search result ("$", RFC 5182): UIDs. */
  saved: ReadonlySet<number>;
  /** Whether `haystack` contains `needle` (case-insensitively, as the text keys require). */
  contains(haystack: string, needle: string): boolean;
}

const DAY = 86_400_000;

/** Midnight UTC of the day `date` falls on (in UTC). */
export function utcDay(date: Date): number {
  return Math.floor(date.getTime() / DAY) * DAY;
}

function inSet(n: number, set: SequenceSet, max: number, saved: ReadonlySet<number>, uidOfSaved: number | null): boolean {
  if (set === '$') return uidOfSaved !== null && saved.has(uidOfSaved);
  if (max === 0) return false;
  for (const range of set) {
    let from = range.from === Infinity ? max : range.from;
    let to = range.to === Infinity ? max : range.to;
    if (from > to) [from, to] = [to, from];
    if (n >= from && n <= to) return true;
  }
  return false;
}

function hasFlag(flags: readonly string[], flag: string): boolean {
  const wanted = flag.toLowerCase();
  return flags.some((f) => f.toLowerCase() === wanted);
}

function compareDay(day: number, op: 'before' | 'on' | 'since', date: Date): boolean {
  const wanted = date.getTime();
  if (op === 'before') return day < wanted;
  if (op === 'on') return day === wanted;
  return day >= wanted;
}

function headerMatches(content: SearchContent, field: string, value: string, env: SearchEnv): boolean {
  const values = content.headers.get(field);
  if (!values || values.length === 0) return false;
  if (value === '') return true;
  return values.some((v) => env.contains(v, value));
}

function textMatches(content: SearchContent, value: string, env: SearchEnv): boolean {
  if (value === '') return true;
  for (const [name, values] of content.headers) {
    if (env.contains(name, value)) return true;
    for (const v of values) if (env.contains(v, value)) return true;
  }
  return env.contains(content.body, value);
}

/**
 * Whether `message` matches `key`: true, false, or null when that depends on the content and
 * `content` is null. Recursion depth is bounded by the parser (MAX_SEARCH_DEPTH).
 */
export function evaluate(key: SearchKey, message: SearchMessage, content: SearchContent | null, env: SearchEnv): boolean | null {
  switch (key.kind) {
    case 'all':
      return true;
    case 'none':
      return false;
    case 'flag':
      return hasFlag(message.flags, key.flag) === key.set;
    case 'size':
      return key.op === 'larger' ? message.size > key.n : message.size < key.n;
    case 'within': {
      const age = env.now - message.internalDate.getTime();
      return key.op === 'older' ? age >= key.seconds * 1000 : age < key.seconds * 1000;
    }
    case 'modseq':
      return message.modSeq >= key.modSeq;
    case 'seq':
      return inSet(message.seq, key.set, env.maxSeq, env.saved, message.uid);
    case 'uid':
      return inSet(message.uid, key.set, env.maxUid, env.saved, message.uid);
    case 'date':
      if (key.field === 'internal') return compareDay(utcDay(message.internalDate), key.op, key.date);
      if (!content) return null;
      return content.sentDay !== null && compareDay(content.sentDay, key.op, key.date);
    case 'header':
      return content ? headerMatches(content, key.field, key.value, env) : null;
    case 'body':
      return content ? key.value === '' || env.contains(content.body, key.value) : null;
    case 'text':
      return content ? textMatches(content, key.value, env) : null;
    case 'not': {
      const inner = evaluate(key.key, message, content, env);
      return inner === null ? null : !inner;
    }
    case 'or': {
      const a = evaluate(key.a, message, content, env);
      if (a === true) return true;
      const b = evaluate(key.b, message, content, env);
      if (b === true) return true;
      return a === null || b === null ? null : false;
    }
    case 'and': {
      let unknown = false;
      for (const k of key.keys) {
        const r = evaluate(k, message, content, env);
        if (r === false) return false;
        if (r === null) unknown = true;
      }
      return unknown ? null : true;
    }
  }
}
