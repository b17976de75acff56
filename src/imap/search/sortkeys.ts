// The message attributes SORT and THREAD order by (RFC 5256): base subjects (§2.1), the
// addr-mailbox of the first address of a field (§3, FROM / TO / CC), and sent dates from the
// Date: header (RFC 5322 §3.3, with the obsolete forms of §4.3). Pure.

// ---------------------------------------------------------------------------------------------
// Base subject (RFC 5256 §2.1)

const WSP = '[ \\t]';
/** subj-blob = "[" *BLOBCHAR "]" *WSP (BLOBCHAR: any CHAR except "[" and "]"). */
const BLOB = `\\[[^\\[\\]]*\\]${WSP}*`;
/** subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
const REFWD = `(?:re|fwd?)${WSP}*(?:${BLOB})?:`;
/** subj-leader = (*subj-blob subj-refwd) / WSP */
const LEADER = new RegExp(`^(?:(?:${BLOB})*${REFWD}|${WSP})`, 'i');
const BLOB_PREFIX = new RegExp(`^${BLOB}`);
/** subj-trailer = "(fwd)" / WSP */
const TRAILER = /(?:\(fwd\)|[ \t])$/i;

/**
 * The base subject of a (decoded) subject: reply and forward markers, blobs and "(fwd)"
 * trailers removed, whitespace collapsed (RFC 5256 §2.1). Case is kept; compare with
 * `asciiCaseKey`. `replyOrForward` says whether a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" was
 * removed (RFC 5256 §2.2 step 5 prefers threads that are not replies).
 */
export function extractBaseSubject(subject: string): { base: string; replyOrForward: boolean } {
  // (1) Encoded-words were decoded by the caller; tabs and runs of blanks become one space.
  let s = subject.replace(/[\r\n]+/g, '').replace(/[ \t]+/g, ' ');
  let replyOrForward = false;
  for (let guard = 0; guard < 1000; guard++) {
    // (2) Trailers.
    for (;;) {
      const m = TRAILER.exec(s);
      if (!m) break;
      if (m[0] !== ' ' && m[0] !== '\t') replyOrForward = true;
      s = s.slice(0, s.length - m[0].length);
    }
    // (3)-(5) Leaders and blobs, until neither applies.
    for (;;) {
      const before = s;
      for (;;) {
        const m = LEADER.exec(s);
        if (!m) break;
        if (m[0].endsWith(':')) replyOrForward = true;
        s = s.slice(m[0].length);
      }
      const blob = BLOB_PREFIX.exec(s);
      if (blob && s.length > blob[0].length) s = s.slice(blob[0].length);
      if (s === before) break;
    }
    // (6) "[fwd:" ... "]"
    if (/^\[fwd:/i.test(s) && s.endsWith(']')) {
      s = s.slice(5, -1);
      replyOrForward = true;
      continue;
    }
    break;
  }
  return { base: s.trim(), replyOrForward };
}

export function baseSubject(subject: string): string {
  return extractBaseSubject(subject).base;
}

/** i;ascii-casemap (RFC 4790): only ASCII letters fold. */
export function asciiCaseKey(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

// ---------------------------------------------------------------------------------------------
// Addresses

/** Removes RFC 5322 comments (nested parentheses), leaving quoted strings alone. */
function stripComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (depth === 0 && c === '"') quoted = !quoted;
    else if (!quoted && c === '(') {
      depth++;
      continue;
    } else if (!quoted && c === ')' && depth > 0) {
      depth--;
      continue;
    }
    if (depth === 0) out += c;
  }
  return out;
}

/** Splits at top-level `sep` characters (outside quotes and angle brackets). */
function splitTopLevel(s: string, seps: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  let angle = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && quoted) {
      current += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') angle++;
    else if (!quoted && c === '>' && angle > 0) angle--;
    else if (!quoted && angle === 0 && seps.includes(c)) {
      parts.push(current);
      current = '';
      continue;
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

/** Removes blanks (folding leftovers) outside quoted strings. */
function removeBlanks(s: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && quoted) {
      out += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (!quoted && /\s/.test(c)) continue;
    out += c;
  }
  return out;
}

/** The addr-spec of the first address in an address-list field value ("" when none). */
export function firstAddress(value: string): string {
  const text = stripComments(value);
  for (let element of splitTopLevel(text, ',;')) {
    // group = display-name ":" [group-list] ";": drop the group's name.
    const colon = splitTopLevel(element, ':');
    if (colon.length > 1) element = colon.slice(1).join(':');
    const angle = /<([^<>]*)>/.exec(element);
    const spec = (angle ? angle[1]! : element).trim();
    // A source route (<@a,@b:user@host>) is obsolete syntax: keep what follows the colon.
    const unrouted = spec.startsWith('@') && spec.includes(':') ? spec.slice(spec.indexOf(':') + 1) : spec;
    if (unrouted !== '') return removeBlanks(unrouted);
  }
  return '';
}

/** The addr-mailbox (local part, unquoted) of the first address (RFC 5256 §3 FROM / TO / CC). */
export function firstMailbox(value: string | undefined): string {
  if (!value) return '';
  const address = firstAddress(value);
  const at = address.lastIndexOf('@');
  const local = at === -1 ? address : address.slice(0, at);
  if (local.startsWith('"') && local.endsWith('"') && local.length >= 2) return local.slice(1, -1).replace(/\\(.)/g, '$1');
  return local;
}

// ---------------------------------------------------------------------------------------------
// Dates

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
/** RFC 5322 §4.3 obs-zone; military zones are treated as +0000 as that section advises. */
const ZONES: Record<string, number> = { UT: 0, GMT: 0, Z: 0, EST: -300, EDT: -240, CST: -360, CDT: -300, MST: -420, MDT: -360, PST: -480, PDT: -420 };

export interface SentDate {
  /** The instant, in ms (time and zone taken into account). */
  time: number;
  /** Midnight UTC of the calendar day as written (time and zone disregarded), for SENT* keys. */
  day: number;
}

/**
 * Parses an RFC 5322 date-time ("Tue, 1 Jul 2003 10:52:37 +0200", obsolete forms tolerated:
 * two-digit years, named zones, missing seconds, extra blanks and comments). Null when it is
 * not a date.
 */
export function parseSentDate(value: string | undefined): SentDate | null {
  if (!value) return null;
  const text = stripComments(value).replace(/\s+/g, ' ').trim();
  const m = /^(?:[A-Za-z]{3},? ?)?(\d{1,2}) ?-?([A-Za-z]{3})[a-z]*\.? ?-?(\d{2,4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?(?: ?([+-]\d{4}|[A-Za-z]{1,5}))?)?/.exec(text);
  if (!m) return null;
  const month = MONTHS.indexOf(m[2]!.toLowerCase());
  if (month === -1) return null;
  const day = Number(m[1]);
  let year = Number(m[3]);
  // RFC 5322 §4.3: two-digit years 00-49 are 2000-2049, 50-99 are 1950-1999; three digits add 1900.
  if (m[3]!.length === 2) year += year < 50 ? 2000 : 1900;
  else if (m[3]!.length === 3) year += 1900;
  const probe = new Date(0);
  probe.setUTCFullYear(year, month, day);
  if (probe.getUTCMonth() !== month || probe.getUTCDate() !== day) return null;
  const dayMs = probe.getTime();
  const hours = m[4] === undefined ? 0 : Number(m[4]);
  const minutes = m[5] === undefined ? 0 : Number(m[5]);
  const seconds = m[6] === undefined ? 0 : Number(m[6]);
  if (hours > 23 || minutes > 59 || seconds > 60) return null;
  let offset = 0;
  const zone = m[7];
  if (zone && /^[+-]\d{4}$/.test(zone)) {
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(3, 5));
    offset = (zone.startsWith('-') ? -1 : 1) * (zh * 60 + zm);
  } else if (zone) {
    offset = ZONES[zone.toUpperCase()] ?? 0;
  }
  const time = dayMs + ((hours * 60 + minutes - offset) * 60 + seconds) * 1000;
  return { time, day: dayMs };
}
