// The CAPABILITY list for a session's current state (RFC 9051 §6.1.1 and each extension's RFC).

import type { Session } from './context.js';

/** Extensions available once authenticated. */
export const AUTHENTICATED_CAPABILITIES = [
  'IDLE', // RFC 2177
  'NAMESPACE', // RFC 2342
  'UIDPLUS', // RFC 4315
  'MOVE', // RFC 6851
  'UNSELECT', // RFC 3691
  'CHILDREN', // RFC 3348
  'SPECIAL-USE', // RFC 6154
  'LIST-EXTENDED', // RFC 5258
  'LIST-STATUS', // RFC 5819
  'QUOTA', // RFC 9208
  'QUOTA=RES-STORAGE',
  'QUOTA=RES-MESSAGE',
  'STATUS=SIZE', // RFC 8438
  'ESEARCH', // RFC 4731
  'SORT', // RFC 5256
  'THREAD=ORDEREDSUBJECT',
  'THREAD=REFERENCES',
  'SEARCHRES', // RFC 5182
  'WITHIN', // RFC 5032
  'CONDSTORE', // RFC 7162
  'QRESYNC',
  'BINARY', // RFC 3516
  'UTF8=ACCEPT', // RFC 6855
];

export function capabilityList(session: Session): string[] {
  const caps = ['IMAP4rev2', 'IMAP4rev1', 'LITERAL+', 'LITERAL-', 'SASL-IR', 'ID', 'ENABLE'];
  if (session.connection.tlsAvailable && session.state === 'not-authenticated') caps.push('STARTTLS');
  if (session.state === 'not-authenticated') {
    if (session.plaintextAllowed()) caps.push('AUTH=PLAIN', 'AUTH=LOGIN');
    else caps.push('LOGINDISABLED');
  } else {
    caps.push(...AUTHENTICATED_CAPABILITIES);
    caps.push(`APPENDLIMIT=${session.services.config().imap.max_literal}`);
    if (!session.connection.compressed) caps.push('COMPRESS=DEFLATE');
  }
  return caps;
}
