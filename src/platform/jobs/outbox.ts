// The transactional outbox: jobs born from a database write are inserted here in the same transaction
// as the write, then relayed to the queue (see relay.ts). A crash or a Redis outage after the commit
// loses nothing: the rows wait until the relay gets them through.
import { outbox } from "../db/schema/index.ts";
import type { Tx } from "../../modules/users/repository.ts";

export interface OutboxJob {
  type: string;
  payload: Record<string, unknown>;
  /** Unique across the outbox; becomes the queue's idempotency key. */
  idempotencyKey: string;
  maxRetries?: number;
}

export async function writeOutbox(tx: Tx, jobs: readonly OutboxJob[]): Promise<void> {
  if (jobs.length === 0) return;
  await tx.insert(outbox).values(
    jobs.map((j) => ({
      jobType: j.type,
      payload: j.payload,
      idempotencyKey: j.idempotencyKey,
      maxRetries: j.maxRetries ?? null,
      createdAt: new Date().toISOString(),
    })),
  );
}
