// The parts of an RFC 3464 delivery report, for tests that read bounces end to end.

import assert from 'node:assert/strict';
import { simpleParser, type ParsedMail } from 'mailparser';

export interface ParsedReport {
  /** The whole report as mailparser (which we did not write) reads it. */
  mail: ParsedMail;
  /** The human-readable part's text, runs of white space collapsed to one space. */
  human: string;
  /** The message/delivery-status body (or message/global-delivery-status). */
  status: string;
  /** Header and body of the third part: the returned message or its header. */
  returnedHead: string;
  returned: string;
}

/** Splits a multipart/report (RFC 3464 §2: three parts, the first text/plain) into its parts. */
export async function parseReport(bytes: Buffer): Promise<ParsedReport> {
  const mail = await simpleParser(bytes);
  // mailparser keeps message/delivery-status as a text body; the parts are split here by boundary.
  const text = bytes.toString('utf8');
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  assert.ok(boundary, 'a multipart report');
  const parts = text.split(`--${boundary}`).slice(1, -1).map((part) => {
    const split = part.indexOf('\r\n\r\n');
    return { head: part.slice(0, split), body: part.slice(split + 4) };
  });
  assert.equal(parts.length, 3, 'three parts (RFC 3464 §2)');
  assert.match(parts[0]!.head, /text\/plain/);
  const status = parts.find((p) => /Content-Type: message\/(global-)?delivery-status/i.test(p.head))?.body ?? '';
  const returned = parts.find((p) => /Content-Type: (text\/rfc822-headers|message\/(rfc822|global|global-headers))/i.test(p.head));
  return { mail, human: (mail.text ?? '').replace(/\s+/g, ' '), status, returnedHead: returned?.head ?? '', returned: returned?.body ?? '' };
}
