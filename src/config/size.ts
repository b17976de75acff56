// Sizes as people write them: "1048576", "25M", "1.5g", "512KiB" is not accepted but "512KB" is.
// Binary multiples (K = 1024), case-insensitive, optional trailing "B".

const MULTIPLIERS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

export class SizeError extends Error {}

/** Parses a size; throws SizeError with a readable message on anything else. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) throw new SizeError(`invalid size: ${input}`);
    return input;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)B?\s*$/i.exec(input);
  if (!match) throw new SizeError(`invalid size "${input}" (use bytes or a number with K, M or G, e.g. 25M)`);
  const value = Number(match[1]) * (MULTIPLIERS[match[2]!.toUpperCase()] ?? 1);
  if (!Number.isFinite(value) || value > Number.MAX_SAFE_INTEGER) throw new SizeError(`size too large: "${input}"`);
  return Math.floor(value);
}

/** Renders bytes for people: 26214400 → "25 MiB". */
export function formatSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  if (bytes < 1024) return `${bytes} bytes`;
  let unit = 0;
  let value = bytes;
  // Move up a unit while the rounded figure would read 1024 or more ("1024.0 KiB" is "1 MiB").
  while (unit < units.length - 1 && Math.round((value * 10) / 1) / 10 >= 1024) {
    value /= 1024;
    unit++;
  }
  const rounded = Math.round(value * 10) / 10;
  return `${Number.isInteger(rounded) ? rounded : rounded.toFixed(1)} ${units[unit]}`;
}
