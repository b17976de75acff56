// The decoded text of messages for SEARCH, SORT and THREAD, cached in memory per blob.
//
// Decoding a message (MIME parsing, transfer decoding, charset conversion, encoded-words) costs
// far more than matching, and clients repeat searches (a filter typed letter by letter, a sorted
// view refreshed). The cache is a bounded LRU keyed by the caller's key (the message id: the
// text includes the per-recipient header prefix, which must stay private to that recipient).
// Bounded by entry count and by total characters, so a few huge messages cannot hold the
// memory. Overlapping loads of the same key share one read.

import { parseMessage } from '../../mime/message-parts.js';
import { searchableText, searchFold } from '../../mime/search-text.js';
import type { SearchContent } from './evaluate.js';
import { parseSentDate } from './sortkeys.js';

/** The fields SORT and THREAD read, decoded but not case-folded (first occurrence). */
export interface SortFields {
  subject: string;
  from: string;
  to: string;
  cc: string;
  date: string | null;
  messageId: string;
  references: string;
  inReplyTo: string;
}

export interface MessageText extends SearchContent {
  /** Sent date in ms from the Date: header (null when missing or unparseable). */
  sentTime: number | null;
  sort: SortFields;
  /** Approximate weight in characters, for the cache budget. */
  chars: number;
}

/** Builds the cached form of a message: header values and body search-folded (see searchFold). */
export function buildMessageText(raw: Buffer): MessageText {
  let headers: Map<string, string[]>;
  let body: string;
  try {
    const text = searchableText(raw, parseMessage(raw));
    headers = text.headers;
    body = text.body;
  } catch {
    headers = new Map();
    body = raw.toString('utf8');
  }
  const first = (name: string): string => headers.get(name)?.[0] ?? '';
  const dateValue = headers.get('date')?.[0] ?? null;
  const sent = parseSentDate(dateValue ?? undefined);
  const sort: SortFields = {
    subject: first('subject'),
    from: first('from'),
    to: first('to'),
    cc: first('cc'),
    date: dateValue,
    messageId: first('message-id'),
    references: (headers.get('references') ?? []).join(' '),
    inReplyTo: first('in-reply-to'),
  };
  const folded = new Map<string, string[]>();
  let chars = 0;
  for (const [name, values] of headers) {
    const f = values.map(searchFold);
    for (const v of f) chars += v.length + name.length;
    folded.set(name, f);
  }
  const foldedBody = searchFold(body);
  chars += foldedBody.length;
  for (const v of Object.values(sort)) if (typeof v === 'string') chars += v.length;
  return { headers: folded, body: foldedBody, sentDay: sent?.day ?? null, sentTime: sent?.time ?? null, sort, chars };
}

export interface TextCacheOptions {
  maxEntries: number;
  /** Total characters kept; an entry over a quarter of this is used but not kept. */
  maxChars: number;
}

export class TextCache {
  private readonly entries = new Map<string, MessageText>();
  private readonly loading = new Map<string, Promise<MessageText>>();
  private chars = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly options: TextCacheOptions = { maxEntries: 2000, maxChars: 32 * 1024 * 1024 }) {}

  get size(): number {
    return this.entries.size;
  }

  get(blobId: string): MessageText | undefined {
    const entry = this.entries.get(blobId);
    if (entry) {
      // Most recently used goes last (Map keeps insertion order).
      this.entries.delete(blobId);
      this.entries.set(blobId, entry);
    }
    return entry;
  }

  set(blobId: string, entry: MessageText): void {
    const old = this.entries.get(blobId);
    if (old) {
      this.entries.delete(blobId);
      this.chars -= old.chars;
    }
    if (entry.chars > this.options.maxChars / 4) return;
    this.entries.set(blobId, entry);
    this.chars += entry.chars;
    while (this.entries.size > this.options.maxEntries || this.chars > this.options.maxChars) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      const evicted = this.entries.get(oldest.value)!;
      this.entries.delete(oldest.value);
      this.chars -= evicted.chars;
    }
  }

  /** The text of a blob, read with `read` when not cached. */
  async load(blobId: string, read: () => Promise<Buffer>): Promise<MessageText> {
    const cached = this.get(blobId);
    if (cached) {
      this.hits++;
      return cached;
    }
    const pending = this.loading.get(blobId);
    if (pending) return pending;
    this.misses++;
    const promise = (async () => {
      try {
        const entry = buildMessageText(await read());
        this.set(blobId, entry);
        return entry;
      } finally {
        this.loading.delete(blobId);
      }
    })();
    this.loading.set(blobId, promise);
    return promise;
  }

  clear(): void {
    this.entries.clear();
    this.chars = 0;
  }
}

/** The process-wide cache (blob ids are content hashes, so entries never go stale). */
export const textCache = new TextCache();

/**
 * Header-only texts (the body left empty), for SEARCH keys that need no body and for SORT and
 * THREAD: far smaller than whole texts, so the cache holds a large mailbox's worth and a
 * repeated header search over 100,000 messages reads nothing.
 */
export const headerCache = new TextCache({ maxEntries: 200_000, maxChars: 96 * 1024 * 1024 });

/** The header section of a message: up to and including the empty line that ends it (RFC 5322 §2.1). */
export function headerSection(raw: Buffer): Buffer {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0 && lf < 0) return raw;
  const end = crlf >= 0 && (lf < 0 || crlf + 1 <= lf) ? crlf + 4 : lf + 2;
  return raw.subarray(0, end);
}
