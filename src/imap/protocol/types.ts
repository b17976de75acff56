// IMAP wire types shared by the pure protocol units (framer, parser, encoder) and the session.
// RFC 9051 §4 (data formats) and §9 (formal syntax). No I/O here.

/** A parsed argument of a command. Literals arrive as `string` tokens with literal: true. */
export type ImapToken =
  | { type: 'atom'; value: string } // includes NIL, numbers, sequence sets, flags (\Seen), section specs
  | { type: 'string'; value: Buffer; literal: boolean; binary?: boolean } // quoted or literal; bytes as sent
  // binary: true for a literal8 (~{N}, RFC 3516 §4.2), whose bytes may include NUL.
  | { type: 'list'; items: ImapToken[] } // ( ... )
  | { type: 'section'; name: string; section: string; partial?: { offset: number; length: number } };
// `section` is for fetch attributes with brackets, e.g. BODY.PEEK[HEADER.FIELDS (From To)]<0.100>:
// name = "BODY.PEEK", section = "HEADER.FIELDS (From To)" (raw text between the brackets),
// partial = {offset: 0, length: 100}. Also BINARY[1.2], BINARY.PEEK[...], BINARY.SIZE[...], BODY[].

export interface ImapCommand {
  tag: string;
  /** Upper-cased command name; for "UID FETCH" it is "UID FETCH" (two words joined by a space). */
  name: string;
  args: ImapToken[];
}

/** What the framer asks of the connection. */
export type FrameEvent =
  /** A complete command's bytes (lines and literals, literals in place as sent). */
  | { kind: 'command'; bytes: Buffer; literals: Buffer[]; line: string }
  /** A synchronising literal was announced and is acceptable: send "+ ..." then keep feeding. */
  | { kind: 'continue'; size: number }
  /**
   * The input cannot be accepted. `tag` when known. `fatal` means the connection must be closed
   * with BYE (e.g. line over the limit, literal over the limit announced as non-synchronising);
   * otherwise reply `tag BAD text` (or NO [TOOBIG] for an over-limit synchronising literal, which
   * the framer skips without buffering, RFC 7888 §4) and go on.
   */
  | { kind: 'error'; tag: string | null; text: string; fatal: boolean; code?: 'TOOBIG' | 'PARSE' };

export interface FramerLimits {
  /** Longest line (between literals), bytes. */
  maxLineLength: number;
  /** Largest literal, bytes (the APPENDLIMIT). */
  maxLiteralSize: number;
  /** Largest whole command (lines + literals), bytes. */
  maxCommandSize: number;
  /** Whether LITERAL+ ({N+}) is allowed; otherwise only LITERAL- ({N+} up to 4096). */
  literalPlus: boolean;
}

export class ImapSyntaxError extends Error {
  constructor(
    message: string,
    readonly tag: string | null = null,
  ) {
    super(message);
  }
}

/** A sequence set: ranges with '*' represented as Infinity until resolved against a mailbox. */
export interface SequenceRange {
  from: number; // may be Infinity for '*'
  to: number; // may be Infinity for '*'
}
export type SequenceSet = SequenceRange[] | '$'; // '$' = SEARCHRES saved result (RFC 5182)
