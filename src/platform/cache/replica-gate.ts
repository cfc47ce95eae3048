// LiteFS: a replica fills neither tier for a key or tag whose invalidation names a txid its own database has
// not reached yet; the primary stamps its txid on what it invalidates. Inert off LiteFS (no position).
import type { Logger } from "../observability/logger.ts";
import type { PositionReader } from "../cluster/position.ts";
import type { BusMessage } from "./bus.ts";

/** Marks, in `pending`, a replica that must fill nothing until its database reaches the txid. */
const ALL = "*";

export interface ReplicaGateOptions {
  position?: PositionReader;
  isPrimary?: () => boolean;
  /** How long a replica waits for its database to reach a message's txid before marking its tags (ms). */
  catchUpWaitMs?: number;
  logger: Logger;
  /** Once the replica has caught up with a message: drop its keys and tags from L1 once more (or clear L1). */
  drop(keys: readonly string[], tags: readonly string[]): void;
  reset(reason: string): void;
}

export class ReplicaGate {
  /** Tags/keys (prefixed "t:"/"k:") this replica must not fill until its database reaches the txid. */
  private readonly pending = new Map<string, string>();
  private closed = false;

  constructor(private readonly o: ReplicaGateOptions) {}

  /** The txid to stamp on an invalidation made now: the primary's own, null elsewhere. */
  stampTxid(): string | null {
    if (this.o.position === undefined || !(this.o.isPrimary?.() ?? false)) return null;
    return this.o.position.read()?.txid ?? null;
  }

  /** Whether this node's database is at least as new as the L2 tokens and pending invalidations of the entry. */
  allowsFill(key: string, tags: readonly string[], tokens: readonly string[] | undefined): boolean {
    const position = this.o.position;
    if (position === undefined) return true;
    if (tokens !== undefined) {
      for (const t of tokens) {
        const dot = t.indexOf(".");
        if (dot === 16 && !position.atLeast(t.slice(0, 16))) return false;
      }
    }
    if (this.pending.size > 0) {
      for (const p of [ALL, `k:${key}`, ...tags.map((t) => `t:${t}`)]) {
        const txid = this.pending.get(p);
        if (txid === undefined) continue;
        if (!position.atLeast(txid)) return false;
        this.pending.delete(p);
      }
    }
    return true;
  }

  /** Another instance's invalidation, already applied to L1: hold back fills it is newer than. */
  received(m: BusMessage, keys: readonly string[], tags: readonly string[]): void {
    const pos = this.o.position;
    if (m.x === undefined || pos === undefined || (this.o.isPrimary?.() ?? true) || pos.atLeast(m.x)) return;
    // This replica has not applied the write yet: whatever it loads now is older than the message.
    if (m.r === 1) this.markPending(ALL, m.x);
    for (const k of keys) this.markPending(`k:${k}`, m.x);
    for (const t of tags) this.markPending(`t:${t}`, m.x);
    void this.waitCatchUp(m.x, keys, tags, m.r === 1);
  }

  close(): void {
    this.closed = true;
  }

  private markPending(p: string, txid: string): void {
    const cur = this.pending.get(p);
    if (cur === undefined || cur < txid) this.pending.set(p, txid);
  }

  /** Polls the position for a bounded time; when the replica catches up, unmarks and drops L1 once more. */
  private async waitCatchUp(txid: string, keys: readonly string[], tags: readonly string[], all = false): Promise<void> {
    const pos = this.o.position!;
    const deadline = performance.now() + (this.o.catchUpWaitMs ?? 1_000);
    while (performance.now() < deadline && !this.closed) {
      await Bun.sleep(10);
      if (pos.atLeast(txid)) {
        for (const p of [...keys.map((k) => `k:${k}`), ...tags.map((t) => `t:${t}`), ...(all ? [ALL] : [])]) {
          if (this.pending.get(p) === txid) this.pending.delete(p);
        }
        if (all) this.o.reset("replica caught up with a reset");
        else this.o.drop(keys, tags);
        return;
      }
    }
    this.o.logger.warn("cache: replica behind an invalidation; not caching those entries until it catches up", {
      txid,
      own: pos.read()?.txid ?? null,
    });
  }
}
