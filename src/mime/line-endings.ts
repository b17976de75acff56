// RFC 5322 §2.3 / RFC 5321 §2.3.8: lines end in CRLF; a bare CR or LF is not a line end.
// Messages are stored with CRLF only, so that what IMAP and POP3 count and send is exact.

/** Rewrites every bare LF and bare CR as CRLF; returns the same buffer when it is already clean. */
export function normalizeLineEndings(input: Buffer): Buffer {
  if (isCrlfClean(input)) return input;
  const out = Buffer.allocUnsafe(input.length * 2);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i]!;
    if (byte === 0x0d) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      if (input[i + 1] === 0x0a) i++;
    } else if (byte === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
    } else {
      out[o++] = byte;
    }
  }
  return out.subarray(0, o);
}

/**
 * Octets of ensureFinalCrlf(normalizeLineEndings(input)) without building it: what POP3 counts
 * (RFC 1939 §11: sizes are of the message with CRLF line ends).
 */
export function crlfSizeOf(input: Buffer): number {
  if (input.length === 0) return 0;
  let size = input.length;
  if (!isCrlfClean(input)) {
    for (let i = input.indexOf(0x0a); i >= 0; i = input.indexOf(0x0a, i + 1)) if (i === 0 || input[i - 1] !== 0x0d) size++;
    for (let i = input.indexOf(0x0d); i >= 0; i = input.indexOf(0x0d, i + 1)) if (input[i + 1] !== 0x0a) size++;
  }
  const last = input[input.length - 1];
  // A last line without its end gets CRLF; a bare CR or LF at the end was counted above.
  return last === 0x0a || last === 0x0d ? size : size + 2;
}

/** Ensures the message ends with CRLF (a message without a final line end is completed). */
export function ensureFinalCrlf(input: Buffer): Buffer {
  if (input.length === 0 || (input.length >= 2 && input[input.length - 2] === 0x0d && input[input.length - 1] === 0x0a)) return input;
  return Buffer.concat([input, Buffer.from('\r\n')]);
}

/** Whether every CR is followed by LF and every LF preceded by CR (native scans, no byte loop). */
export function isCrlfClean(input: Buffer): boolean {
  for (let i = input.indexOf(0x0a); i >= 0; i = input.indexOf(0x0a, i + 1)) if (i === 0 || input[i - 1] !== 0x0d) return false;
  for (let i = input.indexOf(0x0d); i >= 0; i = input.indexOf(0x0d, i + 1)) if (input[i + 1] !== 0x0a) return false;
  return true;
}
