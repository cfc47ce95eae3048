// L1: an in-process LRU with O(1) get/set (a Map plus an intrusive doubly linked list), a TTL per entry,
// bounds on item count and approximate bytes, a per-entry size limit, and a tag index for invalidation.
import type { CacheResult } from "./port.ts";

export interface LruEntry {
  readonly key: string;
  readonly value: unknown;
  readonly json: string;
  readonly tags: readonly string[];
  readonly bytes: number;
  /** Fresh until (ms since epoch). */
  readonly expiresAt: number;
  /** Servable as `stale` when the loader fails, until (ms since epoch). */
  readonly staleUntil: number;
  /** Prebuilt answer for a hit, so a hit allocates nothing. Callers must not mutate it. */
  readonly hit: CacheResult<unknown>;
  prev: LruEntry | null;
  next: LruEntry | null;
}

export interface LruOptions {
  maxItems: number;
  maxBytes: number;
  maxEntryBytes: number;
}

/**
 * Approximate memory of an entry: the key and the JSON (Latin-1 strings are one byte per char, others two),
 * the parsed value (about as large again as its JSON), and a fixed overhead for the entry and map slot.
 */
export function approxBytes(key: string, json: string): number {
  return 2 * key.length + 3 * json.length + 160;
}

export class Lru {
  private readonly map = new Map<string, LruEntry>();
  private readonly byTag = new Map<string, Set<string>>();
  /** Most recently used. */
  private head: LruEntry | null = null;
  /** Least recently used: evicted first. */
  private tail: LruEntry | null = null;
  private totalBytes = 0;
  evictions = 0;

  constructor(readonly opts: LruOptions) {}

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** A fresh entry (and marks it most recently used), or undefined. Entries past their stale grace are dropped. */
  get(key: string, now: number): LruEntry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      if (e.staleUntil <= now) this.remove(e);
      return undefined;
    }
    if (e !== this.head) {
      this.unlink(e);
      this.linkFront(e);
    }
    return e;
  }

  /** An expired entry still inside its stale grace, without touching recency. */
  stale(key: string, now: number): LruEntry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.staleUntil <= now) {
      this.remove(e);
      return undefined;
    }
    return e;
  }

  /** Stores an entry; returns false (and drops any older entry for the key) when it is over the per-entry limit. */
  set(key: string, value: unknown, json: string, tags: readonly string[], expiresAt: number, staleUntil: number): boolean {
    const old = this.map.get(key);
    if (old !== undefined) this.remove(old);
    const bytes = approxBytes(key, json);
    if (bytes > this.opts.maxEntryBytes || bytes > this.opts.maxBytes) return false;
    const e: LruEntry = {
      key,
      value,
      json,
      tags,
      bytes,
      expiresAt,
      staleUntil,
      hit: { value, json, source: "hit-l1" },
      prev: null,
      next: null,
    };
    this.map.set(key, e);
    this.linkFront(e);
    this.totalBytes += bytes;
    for (const t of tags) {
      let s = this.byTag.get(t);
      if (s === undefined) this.byTag.set(t, (s = new Set()));
      s.add(key);
    }
    while (this.tail !== null && (this.map.size > this.opts.maxItems || this.totalBytes > this.opts.maxBytes)) {
      this.remove(this.tail);
      this.evictions++;
    }
    return true;
  }

  delete(key: string): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.remove(e);
    return true;
  }

  /** Drops every entry carrying any of the tags; returns how many. */
  deleteTags(tags: readonly string[]): number {
    let n = 0;
    for (const t of tags) {
      const keys = this.byTag.get(t);
      if (keys === undefined) continue;
      for (const k of [...keys]) if (this.delete(k)) n++;
    }
    return n;
  }

  clear(): void {
    this.map.clear();
    this.byTag.clear();
    this.head = this.tail = null;
    this.totalBytes = 0;
  }

  /** Keys from most to least recently used (tests and debugging). */
  keys(): string[] {
    const out: string[] = [];
    for (let e = this.head; e !== null; e = e.next) out.push(e.key);
    return out;
  }

  private remove(e: LruEntry): void {
    this.map.delete(e.key);
    this.unlink(e);
    this.totalBytes -= e.bytes;
    for (const t of e.tags) {
      const s = this.byTag.get(t);
      if (s === undefined) continue;
      s.delete(e.key);
      if (s.size === 0) this.byTag.delete(t);
    }
  }

  private unlink(e: LruEntry): void {
    if (e.prev !== null) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
  }

  private linkFront(e: LruEntry): void {
    e.prev = null;
    e.next = this.head;
    if (this.head !== null) this.head.prev = e;
    this.head = e;
    if (this.tail === null) this.tail = e;
  }
}
