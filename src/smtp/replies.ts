// SMTP replies as values: { code, enhanced, text } (RFC 5321 §4.2, RFC 3463 enhanced codes).
// Handlers throw or return SmtpReply; they become protocol lines at one boundary (the
// smtp-server callbacks), and an unexpected error becomes 451 4.3.0 without its details.

export class SmtpReply extends Error {
  readonly responseCode: number;
  constructor(
    readonly code: number,
    readonly enhanced: string,
    readonly text: string,
  ) {
    // smtp-server sends err.message after the code; the enhanced code is carried in front of it
    // and moved into place by the shim in enhanced-codes.ts.
    super(`${enhanced} ${text}`);
    this.responseCode = code;
  }
}

export const reply = {
  relayDenied: (address: string) => new SmtpReply(554, '5.7.1', `Relay access denied: this server does not accept mail for <${address}>`),
  unknownUser: (address: string) => new SmtpReply(550, '5.1.1', `The mailbox <${address}> does not exist here; check the address`),
  badAddressSyntax: (address: string) => new SmtpReply(553, '5.1.3', `The address <${address}> is not valid here`),
  mailboxFullDefer: (address: string) =>
    new SmtpReply(452, '4.2.2', `The mailbox of <${address}> is full; the message was not delivered yet. Your server will retry; the recipient must make room`),
  mailboxFullReject: (address: string) =>
    new SmtpReply(552, '5.2.2', `The mailbox of <${address}> is full; the message cannot be delivered. Please tell the recipient another way that their mailbox is full`),
  tooBigForMailbox: (address: string) =>
    new SmtpReply(552, '5.2.3', `The message is larger than the whole mailbox of <${address}> may hold; it cannot be delivered`),
  tooManyRecipients: (limit: number) => new SmtpReply(452, '4.5.3', `Too many recipients; at most ${limit} per message, send the rest in another transaction`),
  messageTooBig: (limit: number) => new SmtpReply(552, '5.3.4', `The message is larger than this server accepts (${limit} bytes)`),
  headerTooBig: (detail: string) => new SmtpReply(552, '5.3.4', `Message header too large: ${detail}`),
  mimeTooComplex: (detail: string) => new SmtpReply(554, '5.6.0', `Message structure refused: ${detail}`),
  tooManyHops: (hops: number, limit: number) =>
    new SmtpReply(554, '5.4.6', `Mail loop: the message has passed ${hops} servers (at most ${limit}); check the forwarding of its recipients`),
  badParameter: (what: string) => new SmtpReply(501, '5.5.4', what),
  tooManyConnections: () => new SmtpReply(421, '4.7.0', 'Too many connections, try again later'),
  dataTimeout: () => new SmtpReply(421, '4.4.2', 'Timed out waiting for the message data; nothing was stored'),
  internalError: () => new SmtpReply(451, '4.3.0', 'Local error in processing; nothing was stored, please try again later'),
  shuttingDown: () => new SmtpReply(421, '4.3.2', 'Service shutting down, try again later'),
};
