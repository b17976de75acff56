// POP3 input, as pure functions: a line reader that never holds more than one bounded line, and
// the command syntax of RFC 1939 §3 and RFC 2449 §3. No I/O here; the session decides replies.

/** What the line reader yields for each piece of input. */
export type LineEvent =
  /** A complete line, without its CRLF (a bare LF also ends a line; a CR before it is dropped). */
  | { kind: 'line'; line: Buffer }
  /** A line longer than maxLineLength ended; its bytes were discarded. The session may go on. */
  | { kind: 'too-long'; length: number }
  /** A line went on beyond fatalLength: the reader stops; the connection should be closed. */
  | { kind: 'fatal'; length: number };

export interface LineReaderOptions {
  /** Longest line kept, in bytes, without its line end. */
  maxLineLength: number;
  /** Length at which an over-long line stops being skipped and becomes fatal. */
  fatalLength: number;
}

/**
 * Splits a byte stream into lines. Memory: at most maxLineLength bytes are buffered, whatever the
 * input; the bytes of an over-long line are counted and dropped. After 'fatal' it yields nothing.
 */
export class LineReader {
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the current line dropped since it passed maxLineLength; -1 while not skipping. */
  private skipped = -1;
  /** Whether the last byte taken was a CR (the CR of a CRLF is not counted in a line's length). */
  private lastCr = false;
  private dead = false;

  constructor(private readonly options: LineReaderOptions) {}

  get failed(): boolean {
    return this.dead;
  }

  /** Bytes held for an incomplete line. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    let start = 0;
    while (!this.dead && start < chunk.length) {
      const lf = chunk.indexOf(0x0a, start);
      const end = lf < 0 ? chunk.length : lf;
      this.take(chunk.subarray(start, end));
      if (this.dead) {
        events.push({ kind: 'fatal', length: this.options.fatalLength });
        break;
      }
      if (lf < 0) break;
      events.push(this.finishLine());
      start = lf + 1;
    }
    return events;
  }

  private take(piece: Buffer): void {
    if (piece.length === 0) return;
    this.lastCr = piece[piece.length - 1] === 0x0d;
    if (this.skipped >= 0) {
      this.skipped += piece.length;
    } else if (this.buffered + piece.length <= this.options.maxLineLength + 1) {
      // One byte of slack: the CR of a CRLF may sit at the end of a line of maximal length.
      this.parts.push(Buffer.from(piece));
      this.buffered += piece.length;
    } else {
      this.skipped = this.buffered + piece.length;
      this.parts = [];
      this.buffered = 0;
    }
    if (this.skipped > this.options.fatalLength) {
      this.dead = true;
      this.parts = [];
      this.buffered = 0;
    }
  }

  private finishLine(): LineEvent {
    if (this.skipped >= 0) {
      const length = this.skipped - (this.lastCr ? 1 : 0);
      this.skipped = -1;
      this.lastCr = false;
      return { kind: 'too-long', length };
    }
    this.lastCr = false;
    let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.buffered);
    this.parts = [];
    this.buffered = 0;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    if (line.length > this.options.maxLineLength) return { kind: 'too-long', length: line.length };
    return { kind: 'line', line };
  }
}

export type ParsedCommand =
  | { ok: true; name: string; args: string[] }
  /** name: the keyword upper-cased when it was well-formed, else null. */
  | { ok: false; name: string | null; error: string };

/** RFC 1939 §3: "Each argument may be up to 40 characters long." */
export const MAX_ARGUMENT_LENGTH = 40;
/**
 * A user name (USER, APOP) may be longer: addresses often exceed 40 characters, and RFC 2449 §4
 * raised the command length to 255 octets, which servers must not refuse.
 */
export const MAX_USER_NAME_LENGTH = 255;

/** Keywords are three or four characters (RFC 1939 §3); RFC 6856 has UTF8, so digits after the first. */
const KEYWORD = /^[A-Za-z][A-Za-z0-9]{2,3}$/;

// Control characters (and DEL) are never part of a command; PASS allows anything else, spaces too.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * Parses one command line (without its line end). Never throws. Arguments are separated by single
 * spaces and hold no control characters; each is at most 40 characters, except the password of
 * PASS (the rest of the line, spaces included), the initial response of AUTH (RFC 5034), and a
 * user name (MAX_USER_NAME_LENGTH).
 */
export function parseCommand(line: string): ParsedCommand {
  if (line.length === 0) return { ok: false, name: null, error: 'Empty command line' };
  const space = line.indexOf(' ');
  const keyword = space < 0 ? line : line.slice(0, space);
  if (!KEYWORD.test(keyword)) return { ok: false, name: null, error: 'Commands are a keyword of 3 or 4 letters' };
  const name = keyword.toUpperCase();
  if (space < 0) return { ok: true, name, args: [] };
  const rest = line.slice(space + 1);

  if (name === 'PASS') {
    // RFC 1939 §7: the password may contain spaces; it is everything after "PASS ".
    if (rest.length === 0) return { ok: false, name, error: 'PASS needs a password' };
    if (/[\x00\r\n]/.test(rest)) return { ok: false, name, error: 'Invalid character in the password' };
    return { ok: true, name, args: [rest] };
  }

  const args = rest.split(' ');
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.length === 0) return { ok: false, name, error: 'Arguments are separated by single spaces' };
    if (CONTROL.test(arg)) return { ok: false, name, error: 'Invalid character in an argument' };
    if (name === 'AUTH' && i === 1) continue;
    const limit = (name === 'USER' || name === 'APOP') && i === 0 ? MAX_USER_NAME_LENGTH : MAX_ARGUMENT_LENGTH;
    if (arg.length > limit) return { ok: false, name, error: `Argument too long (at most ${limit} characters)` };
  }
  return { ok: true, name, args };
}

/**
 * A message number or line count: decimal digits only (no sign, no spaces). Returns null for
 * anything else; a value beyond the safe integers becomes Number.MAX_SAFE_INTEGER (no message
 * has that number, and as a TOP line count it means "all lines").
 */
export function parseNumber(text: string): number | null {
  if (!/^[0-9]{1,40}$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : Number.MAX_SAFE_INTEGER;
}
