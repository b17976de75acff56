// Option values of `yubin usage` and `yubin cleanup` as admins type them: ages ("90d", "2w", "1y"),
// shares ("80%"), instants ("2030-01-31T12:00:00Z"), senders ("user@domain", "@domain").
// Pure parsers: string in, value out or OptionError with a readable message; no I/O.

export class OptionError extends Error {}

const DAY_SECONDS = 86_400;
const AGE_UNITS: Record<string, number> = { h: 3600, d: DAY_SECONDS, w: 7 * DAY_SECONDS, y: 365 * DAY_SECONDS };

/**
 * An age for --older-than, in seconds: a whole number with a unit, h (hours), d (days), w (weeks)
 * or y (365 days). A bare number is refused: "90" could mean seconds (the config's durations) or
 * days, and the wrong guess deletes mail.
 */
export function parseAge(input: string): number {
  const match = /^\s*(\d{1,6})\s*([hdwy])\s*$/i.exec(input);
  if (!match) throw new OptionError(`invalid age "${input}" (use a number with d, w, y or h, e.g. 90d, 2w, 1y)`);
  return Number(match[1]) * AGE_UNITS[match[2]!.toLowerCase()]!;
}

/** A share of a quota for --over: "80%", "80" or "92.5%"; 0 to 1000. */
export function parsePercent(input: string): number {
  const match = /^\s*(\d{1,4}(?:\.\d+)?)\s*%?\s*$/.exec(input);
  const value = match ? Number(match[1]) : NaN;
  if (!Number.isFinite(value) || value > 1000) throw new OptionError(`invalid share "${input}" (use a percentage such as 80%)`);
  return value;
}

/** An ISO-8601 date or date-time for --now (with a zone, or UTC when none is given). */
export function parseInstant(input: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(input) || Number.isNaN(Date.parse(input))) {
    throw new OptionError(`--now expects an ISO-8601 date or time, e.g. 2030-01-31T12:00:00Z; got "${input}"`);
  }
  const date = new Date(/T.*(Z|[+-]\d{2}:?\d{2})$/.test(input) || !input.includes('T') ? input : `${input}Z`);
  if (Number.isNaN(date.getTime())) throw new OptionError(`--now: no such date "${input}"`);
  return date;
}

/** A positive count for --top. */
export function parseCount(input: string, name: string): number {
  if (!/^\d{1,6}$/.test(input.trim()) || Number(input) < 1) throw new OptionError(`${name} expects a whole number of at least 1; got "${input}"`);
  return Number(input);
}

export type SenderPattern = { kind: 'address'; address: string } | { kind: 'domain'; domain: string };

/** --from: a whole address ("news@shop.example") or a domain ("@shop.example"); compared in lower case. */
export function parseSenderPattern(input: string): SenderPattern {
  const text = input.trim().toLowerCase();
  if (/^@[^\s@]+$/.test(text)) return { kind: 'domain', domain: text.slice(1).replace(/\.$/, '') };
  if (/^[^\s@]+@[^\s@]+$/.test(text)) return { kind: 'address', address: text };
  throw new OptionError(`--from expects an address (user@domain) or a domain (@domain); got "${input}"`);
}

export function senderMatches(pattern: SenderPattern, sender: string | null): boolean {
  if (sender === null) return false;
  if (pattern.kind === 'address') return sender === pattern.address;
  return sender.slice(sender.lastIndexOf('@') + 1) === pattern.domain;
}

export function formatSenderPattern(pattern: SenderPattern): string {
  return pattern.kind === 'address' ? pattern.address : `@${pattern.domain}`;
}
