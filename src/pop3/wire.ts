// What POP3 sends of a message, as pure functions (RFC 1939 §3, §9): the message with CRLF line
// ends, dot-stuffed, ended by ".\r\n"; TOP's headers plus the first lines of the body. The size
// LIST and STAT give is that of the CRLF message, without the stuffing and the terminator.

import { ensureFinalCrlf, normalizeLineEndings } from '../mime/line-endings.js';

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** The message as POP3 counts and sends it: CRLF line ends only, the last line ended too. */
export function pop3Message(stored: Buffer): Buffer {
  return ensureFinalCrlf(normalizeLineEndings(stored));
}

/**
 * Dot-stuffs CRLF text (a "." starting a line is doubled) and appends the terminating ".\r\n".
 * The input must end with CRLF or be empty (pop3Message guarantees it).
 */
export function dotStuff(text: Buffer, prefix?: string): Buffer {
  let dots = 0;
  for (let i = text.indexOf(DOT); i >= 0; i = text.indexOf(DOT, i + 1)) {
    if (i === 0 || text[i - 1] === LF) dots++;
  }
  // `prefix` (the +OK line) goes in the same buffer: one write per message.
  const head = prefix === undefined ? 0 : Buffer.byteLength(prefix, 'latin1');
  const out = Buffer.allocUnsafe(head + text.length + dots + 3);
  let o = head > 0 ? out.write(prefix!, 0, 'latin1') : 0;
  let from = 0;
  if (dots > 0) {
    for (let i = text.indexOf(DOT); i >= 0; i = text.indexOf(DOT, i + 1)) {
      if (i !== 0 && text[i - 1] !== LF) continue;
      o += text.copy(out, o, from, i);
      out[o++] = DOT;
      from = i;
    }
  }
  o += text.copy(out, o, from);
  out[o++] = DOT;
  out[o++] = CR;
  out[o++] = LF;
  return out.subarray(0, o);
}

/** Undoes dotStuff (for tests and clients): the text before the terminator, unstuffed. */
export function dotUnstuff(wire: Buffer): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const end = wire.indexOf('\r\n', start);
    if (end < 0) throw new Error('no terminating line');
    const line = wire.subarray(start, end);
    if (line.length === 1 && line[0] === DOT) break;
    lines.push(line[0] === DOT ? line.subarray(1) : line, Buffer.from('\r\n'));
    start = end + 2;
  }
  return Buffer.concat(lines);
}

/**
 * TOP msg n (RFC 1939 §7): the header section, the empty line after it, and the first n lines
 * of the body. `whole` is true when that is the entire message.
 */
export function topOf(message: Buffer, bodyLines: number): { bytes: Buffer; whole: boolean } {
  let bodyStart: number;
  if (message.length >= 2 && message[0] === CR && message[1] === LF) bodyStart = 2;
  else {
    const blank = message.indexOf('\r\n\r\n');
    if (blank < 0) return { bytes: message, whole: true };
    bodyStart = blank + 4;
  }
  let end = bodyStart;
  for (let n = 0; n < bodyLines && end < message.length; n++) {
    const next = message.indexOf('\r\n', end);
    end = next < 0 ? message.length : next + 2;
  }
  return { bytes: message.subarray(0, end), whole: end >= message.length };
}
