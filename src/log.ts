// Structured logs: pino JSON lines on standard error, one per connection and one per delivery
// (and per refused recipient), so that an admin can answer "what happened to that message?".

import pino, { type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'yubin' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ fd: 2, sync: false }));
}

export type { Logger };
