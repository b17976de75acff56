// Durations as people write them: "300" (seconds), "30s", "5m", "2h", "14d". Result in seconds.

const UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

export class DurationError extends Error {}

export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new DurationError(`invalid duration: ${input}`);
    return input;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(input);
  if (!match) throw new DurationError(`invalid duration "${input}" (use seconds or a number with s, m, h or d, e.g. 5m)`);
  return Number(match[1]) * (UNIT_SECONDS[match[2]!.toLowerCase()] ?? 1);
}
