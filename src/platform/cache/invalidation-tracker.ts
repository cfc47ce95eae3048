// Which keys and tags were invalidated since a load began, so that a load which read the database before a
// change never fills a tier with what it read. Generations count invalidations; tracked only while loads run.

const MAX_TRACKED_INVALIDATIONS = 10_000;

export class InvalidationTracker {
  /** Bumped by every local invalidation; a load that started before an invalidation of its key or tags does not fill. */
  private generation = 0;
  private readonly invalidatedAt = new Map<string, number>();
  /** Loads and sets in progress; invalidations are tracked per key/tag only while there are some. */
  private active = 0;
  /** How many of them started at each generation: entries of invalidatedAt at or below the least are useless. */
  private readonly activeGens = new Map<number, number>();
  private clearedAt = 0;

  /** `max`: key/tag invalidations remembered for running loads; beyond it they are pruned or all loads refused. */
  constructor(private readonly max = MAX_TRACKED_INVALIDATIONS) {}

  /** The generation a load starting now belongs to. */
  get current(): number {
    return this.generation;
  }

  /** Size of the per-key/tag invalidation record. */
  get size(): number {
    return this.invalidatedAt.size;
  }

  begin(gen: number): void {
    this.active++;
    this.activeGens.set(gen, (this.activeGens.get(gen) ?? 0) + 1);
  }

  end(gen: number): void {
    const n = this.activeGens.get(gen)! - 1;
    if (n === 0) this.activeGens.delete(gen);
    else this.activeGens.set(gen, n);
    if (--this.active === 0) this.invalidatedAt.clear();
  }

  invalidated(keys: readonly string[], tags: readonly string[]): void {
    const gen = ++this.generation;
    if (this.active === 0) return;
    for (const k of keys) this.invalidatedAt.set(`k:${k}`, gen);
    for (const t of tags) this.invalidatedAt.set(`t:${t}`, gen);
    this.bound();
  }

  /** Everything was invalidated (L1 cleared): no running load may fill. */
  cleared(): void {
    this.clearedAt = ++this.generation;
  }

  untouchedSince(key: string, tags: readonly string[], gen: number): boolean {
    if (this.generation === gen) return true;
    if (this.clearedAt > gen) return false;
    if ((this.invalidatedAt.get(`k:${key}`) ?? 0) > gen) return false;
    for (const t of tags) if ((this.invalidatedAt.get(`t:${t}`) ?? 0) > gen) return false;
    return true;
  }

  /**
   * Keeps invalidatedAt bounded while loads never all finish at once: drops what no running load can be
   * affected by (at or below the generation the oldest one started at), and if one long load still pins too
   * much, forgets the details and treats every running load as invalidated (they answer but do not fill).
   */
  private bound(): void {
    if (this.invalidatedAt.size <= this.max) return;
    let oldest = this.generation;
    for (const g of this.activeGens.keys()) if (g < oldest) oldest = g;
    for (const [k, g] of this.invalidatedAt) if (g <= oldest) this.invalidatedAt.delete(k);
    // Hysteresis, so that the scan above runs at most once per max/4 invalidations.
    if (this.invalidatedAt.size > (this.max * 3) / 4) {
      this.clearedAt = this.generation;
      this.invalidatedAt.clear();
    }
  }
}
