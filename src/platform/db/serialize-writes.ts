// libSQL's local client runs each statement synchronously on one of a pool of connections. A write issued
// while another connection of the same process holds an open write transaction (waiting on an `await`)
// busy-waits on the event loop for up to busy_timeout, so the holder can never commit: one of them fails
// after the wait (seen: 19 of 20 concurrent post creations answered 500 after 95 s). SQLite has one writer
// anyway, so this process's writers take turns here: a transaction holds the turn from BEGIN to its end,
// and a write statement outside a transaction waits for it. Reads run at once (WAL readers never block).
import type { Client, InStatement, Transaction } from "@libsql/client";

export class WriteQueueTimeout extends Error {
  readonly status = 503;
  constructor(ms: number) {
    super(`the database write queue did not reach this write within ${ms} ms`);
    this.name = "WriteQueueTimeout";
  }
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();
  constructor(private readonly timeoutMs: number) {}
  /**
   * Resolves when the caller holds the mutex, with a function that releases it (once). Rejects after
   * `timeoutMs` of waiting; the abandoned turn then passes straight on when it comes.
   */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let done = false;
    const releaseOnce = () => {
      if (!done) {
        done = true;
        release();
      }
    };
    let abandoned = false;
    const turn = this.tail.then(() => {
      if (abandoned) releaseOnce();
      return releaseOnce;
    });
    this.tail = this.tail.then(() => held);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandoned = true;
        reject(new WriteQueueTimeout(this.timeoutMs));
      }, this.timeoutMs);
    });
    return Promise.race([turn, timeout]).finally(() => clearTimeout(timer));
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

const READ = /^\s*(select\b|explain\b|pragma\s+[a-z_]+\s*(;|$)|pragma\s+[a-z_]+\s*\([^=]*\)\s*(;|$))/i;

/** True for statements that cannot write: they skip the queue. */
export function isReadOnly(stmt: InStatement | string): boolean {
  const sql = typeof stmt === "string" ? stmt : stmt.sql;
  return READ.test(sql);
}

function releasing(tx: Transaction, release: () => void): Transaction {
  return new Proxy(tx, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "commit" || prop === "rollback") {
        return async () => {
          try {
            return await (value as () => Promise<void>).call(target);
          } finally {
            release();
          }
        };
      }
      if (prop === "close") {
        return () => {
          try {
            (value as () => void).call(target);
          } finally {
            release();
          }
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Wraps a client so that this process's writers take turns (see the comment at the top). */
export function serializeWrites(client: Client, waitTimeoutMs = 10_000): Client {
  const turn = new Mutex(waitTimeoutMs);
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "transaction":
          return async (...args: unknown[]) => {
            const release = await turn.acquire();
            try {
              return releasing(await (value as (...a: unknown[]) => Promise<Transaction>).apply(target, args), release);
            } catch (err) {
              release();
              throw err;
            }
          };
        case "execute":
          return (...args: unknown[]) =>
            isReadOnly(args[0] as InStatement)
              ? (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
              : turn.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        case "batch":
        case "migrate":
        case "executeMultiple":
          return (...args: unknown[]) => turn.run(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        default:
          return value.bind(target);
      }
    },
  });
}
