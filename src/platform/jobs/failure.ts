// What happens to a job whose handler threw: the one retry-or-fail decision both queue adapters call
// (redis-queue.ts and memory-queue.ts), with the backoff and the error text they record.
import { CircuitOpenError } from "../resilience/breakers.ts";

const MAX_ERROR_LENGTH = 2_000;

/** Thrown by a handler when retrying cannot help (bad input, a user that no longer exists): the job fails at once. */
export class PermanentJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentJobError";
  }
}

/** True for errors that retrying cannot fix: PermanentJobError, and 4xx domain errors other than 408/409/429. */
export function isPermanent(err: unknown): boolean {
  if (err instanceof PermanentJobError) return true;
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" && status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429;
}

/** What a queue does with a job whose handler threw: fail it for good, or run it again after `delay`. */
export type FailureDecision = { kind: "fail" } | { kind: "retry"; retry: number; delay: number; deferred: boolean };

/**
 * The one retry-or-fail decision both adapters take. A dependency whose circuit is open says nothing about the
 * job: it runs again once a probe is due, without using up a retry, so an outage never fails jobs for good.
 */
export function decideFailure(err: unknown, retry: number, maxRetries: number, o: { backoffBaseMs: number; backoffCapMs: number }): FailureDecision {
  if (err instanceof CircuitOpenError) return { kind: "retry", retry, delay: err.retryAfterMs + Math.round(Math.random() * 1_000), deferred: true };
  if (isPermanent(err) || retry >= maxRetries) return { kind: "fail" };
  return { kind: "retry", retry: retry + 1, delay: backoffDelay(retry + 1, o.backoffBaseMs, o.backoffCapMs), deferred: false };
}

/** Exponential backoff with "equal jitter": half the exponential step fixed, half random, capped. */
export function backoffDelay(retry: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/** A handler's error as a job records it: the class name when it says something, bounded in length. */
export function errorText(err: unknown): string {
  const text = err instanceof Error ? `${err.name === "Error" ? "" : `${err.name}: `}${err.message}` : String(err);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}
