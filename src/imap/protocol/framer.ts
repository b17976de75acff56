// Incremental framing of IMAP client input into whole commands.
//
// RFC 9051 §2.2.1 / §4.3: a command is a line ending in CRLF; when a line ends in a literal
// announcement the command continues with exactly N raw bytes and then more line:
//   {N}    synchronising literal: the client waits for a "+" continuation request (RFC 9051 §7.5)
//   {N+}   non-synchronising literal, LITERAL+ / LITERAL- (RFC 7888): the bytes follow at once
//   ~{N}   literal8 (BINARY, RFC 3516 §4.2), same framing, with or without "+"
//
// The framer is pure: bytes in, events out. It never buffers more than the limits allow:
//   - a line is held only up to maxLineLength (+1 for the CR) before the connection is failed;
//   - an over-limit synchronising literal is refused before the client sends it (RFC 7888 §4,
//     RFC 9051 §7.1 [TOOBIG]): the command is dropped and the next line starts a new command;
//   - an over-limit non-synchronising literal is already on its way, so it is fatal (BYE).
// Events do not depend on how the input is chunked: feeding byte by byte yields exactly the
// events of feeding everything at once.

import type { FrameEvent, FramerLimits } from './types.js';

const CR = 0x0d;
const LF = 0x0a;

/** RFC 7888 §5: without LITERAL+ (LITERAL- only), non-synchronising literals are capped at 4096. */
export const LITERAL_MINUS_MAX = 4096;

/** Literal announcement found at the end of a line. */
interface LiteralMarker {
  /** Announced size; Infinity when the number is absurdly long. */
  size: number;
  /** `{N+}`: the client sends the bytes without waiting for a continuation request. */
  nonSync: boolean;
}

/**
 * Tag character: ASTRING-CHAR except "+" (RFC 9051 §9: tag = 1*<any ASTRING-CHAR except "+">).
 * ASTRING-CHAR = ATOM-CHAR / resp-specials; ATOM-CHAR excludes "(" ")" "{" SP CTL "%" "*" DQUOTE "\".
 */
export function isTagChar(c: number): boolean {
  if (c <= 0x20 || c >= 0x7f) return false; // CTL, SP, 8-bit
  switch (c) {
    case 0x28: // (
    case 0x29: // )
    case 0x7b: // {
    case 0x25: // %
    case 0x2a: // *
    case 0x22: // "
    case 0x5c: // \
    case 0x2b: // +
      return false;
    default:
      return true;
  }
}

/**
 * The tag at the start of a command line (RFC 9051 §9 `tag`), or null when the line does not
 * start with one. The tag must be followed by SP or be the whole line.
 */
export function tagOf(line: string): string | null {
  let i = 0;
  while (i < line.length && isTagChar(line.charCodeAt(i))) i++;
  if (i === 0) return null;
  if (i < line.length && line.charCodeAt(i) !== 0x20) return null;
  return line.slice(0, i);
}

/** Like tagOf, for a truncated line: the tag counts only when its SP is within the prefix. */
function tagOfPrefix(prefix: Buffer): string | null {
  const text = prefix.toString('latin1');
  const tag = tagOf(text);
  return tag !== null && tag.length < text.length ? tag : null;
}

/**
 * Literal announcement at the end of `line[0, end)` (end excludes CRLF): `{N}`, `{N+}`, `~{N}`,
 * `~{N+}` (RFC 9051 §9 literal, RFC 7888 literal+, RFC 3516 literal8). Scans backwards, so the
 * cost is proportional to the marker, not the line.
 */
function literalMarkerAt(line: Buffer, end: number): LiteralMarker | null {
  let i = end - 1;
  if (i < 0 || line[i] !== 0x7d) return null; // }
  i--;
  let nonSync = false;
  if (i >= 0 && line[i] === 0x2b) {
    // +
    nonSync = true;
    i--;
  }
  const digitsEnd = i + 1;
  while (i >= 0) {
    const c = line[i];
    if (c === undefined || c < 0x30 || c > 0x39) break;
    i--;
  }
  const digitsStart = i + 1;
  if (digitsStart === digitsEnd || i < 0 || line[i] !== 0x7b) return null; // {
  // More than 15 digits cannot be a size any limit allows; do not lose precision on it.
  const digits = line.toString('latin1', digitsStart, digitsEnd);
  const size = digitsEnd - digitsStart > 15 ? Infinity : Number(digits);
  return { size, nonSync };
}

export class ImapFramer {
  private readonly limits: FramerLimits;
  /** Set after a fatal error: the connection is being closed, further input is ignored. */
  private failed = false;

  // Current (incomplete) line.
  private lineParts: Buffer[] = [];
  private lineLength = 0;

  // Literal being read: bytes still expected (0 = reading a line).
  private literalRemaining = 0;

  // Command being assembled.
  private commandParts: Buffer[] = [];
  private commandSize = 0;
  /** Offsets of literal contents within the command bytes. */
  private literalRanges: Array<{ start: number; length: number }> = [];
  /** First line of the current command (latin1, without CRLF), null between commands. */
  private firstLine: string | null = null;

  constructor(limits: FramerLimits) {
    this.limits = { ...limits };
  }

  /** Bytes currently held for the command being assembled (for metrics and tests). */
  get bufferedBytes(): number {
    return this.commandSize + this.lineLength;
  }

  /** True once a fatal error was emitted; all further input is ignored. */
  get closed(): boolean {
    return this.failed;
  }

  /** Feed client bytes; returns the events they complete, in order. */
  push(chunk: Buffer): FrameEvent[] {
    const events: FrameEvent[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.failed) {
      if (this.literalRemaining > 0) {
        // Literal bytes are raw: CR, LF, NUL, anything (RFC 9051 §4.3).
        const take = Math.min(this.literalRemaining, chunk.length - pos);
        this.commandParts.push(Buffer.from(chunk.subarray(pos, pos + take)));
        this.commandSize += take;
        this.literalRemaining -= take;
        pos += take;
        continue;
      }
      const lf = chunk.indexOf(LF, pos);
      if (lf === -1) {
        // Incomplete line: keep it, but never more than the line limit (+1 for a trailing CR).
        const rest = chunk.subarray(pos);
        if (this.lineLength + rest.length > this.limits.maxLineLength + 1) {
          this.fail(events, this.lineTooLongTag(rest), 'Line too long', 'TOOBIG');
          break;
        }
        this.lineParts.push(Buffer.from(rest));
        this.lineLength += rest.length;
        pos = chunk.length;
        break;
      }
      const segment = chunk.subarray(pos, lf + 1);
      pos = lf + 1;
      this.onLine(segment, events);
    }
    return events;
  }

  /**
   * A line is complete: the buffered part plus `segment` (which ends in LF). Decides whether the
   * command continues with a literal, is complete, or must be refused.
   */
  private onLine(segment: Buffer, events: FrameEvent[]): void {
    const total = this.lineLength + segment.length;
    // Content length excludes the LF and a CR right before it (bare LF is tolerated).
    const beforeLf = segment.length >= 2 ? segment[segment.length - 2] : this.lineParts.at(-1)?.at(-1);
    const contentLength = total - 1 - (total >= 2 && beforeLf === CR ? 1 : 0);
    if (contentLength > this.limits.maxLineLength) {
      // Decide on the length alone, before concatenating a possibly huge line.
      this.fail(events, this.lineTooLongTag(segment), 'Line too long', 'TOOBIG');
      return;
    }
    const line = this.lineParts.length === 0 ? Buffer.from(segment) : Buffer.concat([...this.lineParts, segment], total);
    this.lineParts = [];
    this.lineLength = 0;

    if (this.firstLine === null) {
      // An empty line between commands carries nothing; skip it rather than answer BAD.
      if (contentLength === 0) return;
      this.firstLine = line.toString('latin1', 0, contentLength);
    }
    const tag = tagOf(this.firstLine);
    this.commandParts.push(line);
    this.commandSize += line.length;
    const marker = literalMarkerAt(line, contentLength);

    if (this.commandSize > this.limits.maxCommandSize) {
      if (marker?.nonSync) {
        this.fail(events, tag, 'Command too long', 'TOOBIG');
      } else {
        // Nothing more of this command is coming without our "+": drop it and go on.
        events.push({ kind: 'error', tag, code: 'TOOBIG', fatal: false, text: 'Command too long' });
        this.resetCommand();
      }
      return;
    }
    if (marker === null) {
      this.emitCommand(events);
      return;
    }

    const fitsCommand = this.commandSize + marker.size <= this.limits.maxCommandSize;
    const fitsLiteral = marker.size <= this.limits.maxLiteralSize;
    if (marker.nonSync) {
      // RFC 7888 §4/§5: the client is already sending the bytes; we cannot skip them safely
      // without reading them, so an unacceptable non-synchronising literal ends the connection.
      if (!this.limits.literalPlus && marker.size > LITERAL_MINUS_MAX) {
        this.fail(events, tag, `Non-synchronizing literal over ${LITERAL_MINUS_MAX} bytes (LITERAL-)`, 'TOOBIG');
        return;
      }
      if (!fitsLiteral || !fitsCommand) {
        this.fail(events, tag, 'Literal too big', 'TOOBIG');
        return;
      }
    } else {
      if (!fitsLiteral || !fitsCommand) {
        // RFC 9051 §7.1 [TOOBIG] / RFC 7888 §4: the client waits for "+" and will not send the
        // literal; the rest of the command never comes, the next line is a new command.
        events.push({ kind: 'error', tag, code: 'TOOBIG', fatal: false, text: 'Literal too big' });
        this.resetCommand();
        return;
      }
      events.push({ kind: 'continue', size: marker.size });
    }
    this.literalRanges.push({ start: this.commandSize, length: marker.size });
    this.literalRemaining = marker.size;
  }

  private emitCommand(events: FrameEvent[]): void {
    const bytes = Buffer.concat(this.commandParts, this.commandSize);
    const literals = this.literalRanges.map((r) => bytes.subarray(r.start, r.start + r.length));
    events.push({ kind: 'command', bytes, literals, line: this.firstLine ?? '' });
    this.resetCommand();
  }

  /** Tag for a line-too-long error; uses at most maxLineLength bytes of a first line. */
  private lineTooLongTag(rest: Buffer): string | null {
    if (this.firstLine !== null) return tagOf(this.firstLine);
    const max = this.limits.maxLineLength;
    const held = this.lineParts.length === 0 ? Buffer.alloc(0) : Buffer.concat(this.lineParts, this.lineLength);
    const prefix = held.length >= max ? held.subarray(0, max) : Buffer.concat([held, rest.subarray(0, max - held.length)]);
    return tagOfPrefix(prefix);
  }

  private fail(events: FrameEvent[], tag: string | null, text: string, code: 'TOOBIG' | 'PARSE'): void {
    events.push({ kind: 'error', tag, text, fatal: true, code });
    this.failed = true;
    this.lineParts = [];
    this.lineLength = 0;
    this.literalRemaining = 0;
    this.resetCommand();
  }

  private resetCommand(): void {
    this.commandParts = [];
    this.commandSize = 0;
    this.literalRanges = [];
    this.firstLine = null;
  }
}
