// The SEARCH program (RFC 9051 §6.4.4, §9 "search-key"), parsed from the command's tokens into a
// tree that ./evaluate.ts runs against each message. Pure: tokens in, a tree or an ImapSyntaxError
// out. Also the parts that come before the keys: RETURN options (RFC 4731 ESEARCH, RFC 5182
// SEARCHRES), CHARSET, and the SORT criteria (RFC 5256).
//
// Extensions: WITHIN (RFC 5032: OLDER / YOUNGER), CONDSTORE (RFC 7162 §3.1.5: MODSEQ), and "$"
// (RFC 5182) as a sequence set or after UID.

import { parseSearchDate, parseSequenceSet, tokenText } from '../protocol/parser.js';
import { ImapSyntaxError, type ImapToken, type SequenceSet } from '../protocol/types.js';

export type DateOp = 'before' | 'on' | 'since';

export type SearchKey =
  | { kind: 'all' }
  | { kind: 'none' }
  /** A system flag or keyword that must be present (set) or absent (!set). */
  | { kind: 'flag'; flag: string; set: boolean }
  /** A header field (lower-case name) whose decoded value contains `value`; "" matches any such field. */
  | { kind: 'header'; field: string; value: string }
  | { kind: 'body'; value: string }
  | { kind: 'text'; value: string }
  /** INTERNALDATE (internal) or the Date: header (sent), compared by date only. */
  | { kind: 'date'; field: 'internal' | 'sent'; op: DateOp; date: Date }
  | { kind: 'size'; op: 'larger' | 'smaller'; n: number }
  /** RFC 5032: internal date older / younger than `seconds` before now. */
  | { kind: 'within'; op: 'older' | 'younger'; seconds: number }
  | { kind: 'modseq'; modSeq: number }
  | { kind: 'seq'; set: SequenceSet }
  | { kind: 'uid'; set: SequenceSet }
  | { kind: 'not'; key: SearchKey }
  | { kind: 'or'; a: SearchKey; b: SearchKey }
  | { kind: 'and'; keys: SearchKey[] };

export type ReturnOption = 'MIN' | 'MAX' | 'COUNT' | 'ALL' | 'SAVE';

export interface SearchProgram {
  /** null: no RETURN (the plain SEARCH response, or ESEARCH under IMAP4rev2). */
  returns: Set<ReturnOption> | null;
  charset: string | null;
  key: SearchKey;
}

/** Nesting (NOT, OR, parentheses) deeper than this is refused, so evaluation cannot overflow the stack. */
export const MAX_SEARCH_DEPTH = 1000;

/** Charsets SEARCH, SORT and THREAD accept (RFC 9051 §6.4.4: US-ASCII and UTF-8 are required). */
export const SUPPORTED_CHARSETS = ['UTF-8', 'US-ASCII'];

export class BadCharsetError extends Error {
  constructor(readonly charset: string) {
    super(`Unsupported charset ${charset.slice(0, 40)}`);
  }
}

export function checkCharset(charset: string): string {
  const upper = charset.toUpperCase();
  if (!SUPPORTED_CHARSETS.includes(upper)) throw new BadCharsetError(charset);
  return upper;
}

const FLAG_KEYS: Record<string, { flag: string; set: boolean }> = {
  ANSWERED: { flag: '\\Answered', set: true },
  UNANSWERED: { flag: '\\Answered', set: false },
  DELETED: { flag: '\\Deleted', set: true },
  UNDELETED: { flag: '\\Deleted', set: false },
  DRAFT: { flag: '\\Draft', set: true },
  UNDRAFT: { flag: '\\Draft', set: false },
  FLAGGED: { flag: '\\Flagged', set: true },
  UNFLAGGED: { flag: '\\Flagged', set: false },
  SEEN: { flag: '\\Seen', set: true },
  UNSEEN: { flag: '\\Seen', set: false },
  RECENT: { flag: '\\Recent', set: true },
  OLD: { flag: '\\Recent', set: false },
};

const ADDRESS_KEYS: Record<string, string> = { FROM: 'from', TO: 'to', CC: 'cc', BCC: 'bcc', SUBJECT: 'subject' };

const DATE_KEYS: Record<string, { field: 'internal' | 'sent'; op: DateOp }> = {
  BEFORE: { field: 'internal', op: 'before' },
  ON: { field: 'internal', op: 'on' },
  SINCE: { field: 'internal', op: 'since' },
  SENTBEFORE: { field: 'sent', op: 'before' },
  SENTON: { field: 'sent', op: 'on' },
  SENTSINCE: { field: 'sent', op: 'since' },
};

/** A token that must be an atom or a string (astring), as text. */
function stringArg(t: ImapToken | undefined, what: string): string {
  if (!t) throw new ImapSyntaxError(`${what} needs an argument`);
  if (t.type === 'list') throw new ImapSyntaxError(`${what} needs a string`);
  if (t.type === 'string') return t.value.toString('utf8');
  return tokenText(t);
}

function numberArg(t: ImapToken | undefined, what: string, min = 0): number {
  if (!t || t.type !== 'atom' || !/^[0-9]{1,19}$/.test(t.value)) throw new ImapSyntaxError(`${what} needs a number`);
  const n = Number(t.value);
  if (!Number.isSafeInteger(n) || n < min) throw new ImapSyntaxError(`Invalid number for ${what}`);
  return n;
}

function dateArg(t: ImapToken | undefined, what: string): Date {
  // date = date-text / DQUOTE date-text DQUOTE
  return parseSearchDate(stringArg(t, what));
}

function isSequenceSetText(s: string): boolean {
  return s === '$' || /^(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*$/.test(s);
}

/**
 * Parses search keys from `tokens` (all of them, ANDed). Throws ImapSyntaxError on anything
 * unknown or malformed.
 */
export function parseSearchKeys(tokens: ImapToken[]): SearchKey {
  if (tokens.length === 0) throw new ImapSyntaxError('SEARCH needs at least one search key');
  const keys: SearchKey[] = [];
  let i = 0;
  const next = (): ImapToken | undefined => tokens[i++];
  while (i < tokens.length) keys.push(parseOne(tokens, () => next(), 0));
  return keys.length === 1 ? keys[0]! : { kind: 'and', keys };
}

function parseOne(tokens: ImapToken[], next: () => ImapToken | undefined, depth: number): SearchKey {
  if (depth > MAX_SEARCH_DEPTH) throw new ImapSyntaxError('Search program nested too deeply');
  const t = next();
  if (!t) throw new ImapSyntaxError('Incomplete search key');
  if (t.type === 'list') {
    if (t.items.length === 0) throw new ImapSyntaxError('Empty parenthesized search key');
    let j = 0;
    const inner = (): ImapToken | undefined => t.items[j++];
    const keys: SearchKey[] = [];
    while (j < t.items.length) keys.push(parseOne(t.items, inner, depth + 1));
    return keys.length === 1 ? keys[0]! : { kind: 'and', keys };
  }
  if (t.type !== 'atom') throw new ImapSyntaxError('Expected a search key');
  const word = t.value.toUpperCase();
  const flag = FLAG_KEYS[word];
  if (flag) return { kind: 'flag', flag: flag.flag, set: flag.set };
  const header = ADDRESS_KEYS[word];
  if (header) return { kind: 'header', field: header, value: stringArg(next(), word) };
  const date = DATE_KEYS[word];
  if (date) return { kind: 'date', field: date.field, op: date.op, date: dateArg(next(), word) };
  switch (word) {
    case 'ALL':
      return { kind: 'all' };
    case 'NEW':
      // RFC 9051 §6.4.4 (rev1 compatibility): RECENT UNSEEN.
      return { kind: 'and', keys: [{ kind: 'flag', flag: '\\Recent', set: true }, { kind: 'flag', flag: '\\Seen', set: false }] };
    case 'KEYWORD':
    case 'UNKEYWORD': {
      const keyword = flagArg(next(), word);
      return { kind: 'flag', flag: keyword, set: word === 'KEYWORD' };
    }
    case 'BODY':
      return { kind: 'body', value: stringArg(next(), word) };
    case 'TEXT':
      return { kind: 'text', value: stringArg(next(), word) };
    case 'HEADER': {
      const field = stringArg(next(), word);
      if (field === '' || /[\x00-\x20\x7f:]/.test(field)) throw new ImapSyntaxError('Invalid header field name');
      return { kind: 'header', field: field.toLowerCase(), value: stringArg(next(), word) };
    }
    case 'LARGER':
      return { kind: 'size', op: 'larger', n: numberArg(next(), word) };
    case 'SMALLER':
      return { kind: 'size', op: 'smaller', n: numberArg(next(), word) };
    case 'OLDER':
      return { kind: 'within', op: 'older', seconds: numberArg(next(), word, 1) };
    case 'YOUNGER':
      return { kind: 'within', op: 'younger', seconds: numberArg(next(), word, 1) };
    case 'NOT':
      return { kind: 'not', key: parseOne(tokens, next, depth + 1) };
    case 'OR': {
      const a = parseOne(tokens, next, depth + 1);
      const b = parseOne(tokens, next, depth + 1);
      return { kind: 'or', a, b };
    }
    case 'UID': {
      const set = next();
      if (!set || set.type !== 'atom' || !isSequenceSetText(set.value)) throw new ImapSyntaxError('UID needs a sequence set');
      return { kind: 'uid', set: parseSequenceSet(set.value) };
    }
    case 'MODSEQ': {
      // MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162 §3.1.5). The optional
      // metadata entry only narrows which flag's MODSEQ counts; we keep one MODSEQ per message.
      let value = next();
      if (value && value.type === 'string') {
        const type = next();
        const typeText = type && type.type === 'atom' ? type.value.toLowerCase() : '';
        if (!['priv', 'shared', 'all'].includes(typeText)) throw new ImapSyntaxError('MODSEQ entry type must be priv, shared or all');
        value = next();
      }
      return { kind: 'modseq', modSeq: numberArg(value, word) };
    }
    default:
      if (isSequenceSetText(t.value)) return { kind: 'seq', set: parseSequenceSet(t.value) };
      throw new ImapSyntaxError(`Unknown search key ${t.value.slice(0, 30)}`);
  }
}

function flagArg(t: ImapToken | undefined, what: string): string {
  // flag-keyword = atom; a system flag (\Seen) is accepted too, as most servers do.
  if (!t || t.type !== 'atom' || t.value === '' || (t.value.startsWith('\\') && !/^\\[A-Za-z]+$/.test(t.value))) {
    throw new ImapSyntaxError(`${what} needs a flag keyword`);
  }
  return t.value;
}

/** Whether a key (or any of its parts) needs the message's content (headers, body). */
export function needsContent(key: SearchKey): boolean {
  switch (key.kind) {
    case 'header':
    case 'body':
    case 'text':
      return true;
    case 'date':
      return key.field === 'sent';
    case 'not':
      return needsContent(key.key);
    case 'or':
      return needsContent(key.a) || needsContent(key.b);
    case 'and':
      return key.keys.some(needsContent);
    default:
      return false;
  }
}

/** Whether the program reads message bodies (BODY, TEXT); header keys and SENT* do not. */
export function needsBody(key: SearchKey): boolean {
  switch (key.kind) {
    case 'body':
    case 'text':
      return true;
    case 'not':
      return needsBody(key.key);
    case 'or':
      return needsBody(key.a) || needsBody(key.b);
    case 'and':
      return key.keys.some(needsBody);
    default:
      return false;
  }
}

/** Whether the program uses MODSEQ (RFC 7162 §3.1.5: the response then reports the highest MODSEQ). */
export function usesModSeq(key: SearchKey): boolean {
  switch (key.kind) {
    case 'modseq':
      return true;
    case 'not':
      return usesModSeq(key.key);
    case 'or':
      return usesModSeq(key.a) || usesModSeq(key.b);
    case 'and':
      return key.keys.some(usesModSeq);
    default:
      return false;
  }
}

const RETURN_OPTIONS = new Set<ReturnOption>(['MIN', 'MAX', 'COUNT', 'ALL', 'SAVE']);

/**
 * The arguments of SEARCH (RFC 4731 §3, RFC 9051 §6.4.4):
 *   SEARCH [RETURN (return-opts)] [CHARSET charset] search-keys
 * RETURN () means RETURN (ALL). Throws ImapSyntaxError or BadCharsetError.
 */
export function parseSearchCommand(args: ImapToken[]): SearchProgram {
  let i = 0;
  let returns: Set<ReturnOption> | null = null;
  const first = args[0];
  if (first && first.type === 'atom' && first.value.toUpperCase() === 'RETURN') {
    const list = args[1];
    if (!list || list.type !== 'list') throw new ImapSyntaxError('RETURN needs a list of options');
    returns = new Set();
    for (const item of list.items) {
      const option = item.type === 'atom' ? item.value.toUpperCase() : '';
      if (!RETURN_OPTIONS.has(option as ReturnOption)) throw new ImapSyntaxError(`Unknown RETURN option ${option.slice(0, 20)}`);
      returns.add(option as ReturnOption);
    }
    if (returns.size === 0) returns.add('ALL');
    i = 2;
  }
  let charset: string | null = null;
  const maybeCharset = args[i];
  if (maybeCharset && maybeCharset.type === 'atom' && maybeCharset.value.toUpperCase() === 'CHARSET') {
    const name = args[i + 1];
    if (!name || name.type === 'list') throw new ImapSyntaxError('CHARSET needs a charset name');
    charset = checkCharset(tokenText(name));
    i += 2;
  }
  return { returns, charset, key: parseSearchKeys(args.slice(i)) };
}

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO';
export interface SortCriterion {
  key: SortKey;
  reverse: boolean;
}

const SORT_KEYS = new Set<SortKey>(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO']);

/** SORT (sort-criteria) charset search-keys (RFC 5256 §3). */
export function parseSortCommand(args: ImapToken[]): { criteria: SortCriterion[]; charset: string; key: SearchKey } {
  const list = args[0];
  if (!list || list.type !== 'list' || list.items.length === 0) throw new ImapSyntaxError('SORT needs a list of sort criteria');
  const criteria: SortCriterion[] = [];
  let reverse = false;
  for (const item of list.items) {
    const word = item.type === 'atom' ? item.value.toUpperCase() : '';
    if (word === 'REVERSE') {
      if (reverse) throw new ImapSyntaxError('REVERSE REVERSE is not a sort criterion');
      reverse = true;
      continue;
    }
    if (!SORT_KEYS.has(word as SortKey)) throw new ImapSyntaxError(`Unknown sort criterion ${word.slice(0, 20)}`);
    criteria.push({ key: word as SortKey, reverse });
    reverse = false;
  }
  if (reverse) throw new ImapSyntaxError('REVERSE must be followed by a sort key');
  const charset = args[1];
  if (!charset || charset.type === 'list') throw new ImapSyntaxError('SORT needs a charset');
  return { criteria, charset: checkCharset(tokenText(charset)), key: parseSearchKeys(args.slice(2)) };
}

export type ThreadAlgorithm = 'ORDEREDSUBJECT' | 'REFERENCES';

/** THREAD algorithm charset search-keys (RFC 5256 §3). */
export function parseThreadCommand(args: ImapToken[]): { algorithm: ThreadAlgorithm; charset: string; key: SearchKey } {
  const algorithm = args[0];
  const name = algorithm && algorithm.type === 'atom' ? algorithm.value.toUpperCase() : '';
  if (name !== 'ORDEREDSUBJECT' && name !== 'REFERENCES') throw new ImapSyntaxError(`Unknown threading algorithm ${name.slice(0, 20)}`);
  const charset = args[1];
  if (!charset || charset.type === 'list') throw new ImapSyntaxError('THREAD needs a charset');
  return { algorithm: name, charset: checkCharset(tokenText(charset)), key: parseSearchKeys(args.slice(2)) };
}
