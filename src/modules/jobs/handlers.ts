// The handlers of the jobs feature's job types (named in types.ts; update_user_preferences is the preferences
// feature's). Each is idempotent under redelivery: inserts are keyed by
// the job id, the cleanup is a delete, the preference merge sets the same keys again (and none that a user
// wrote after the job was accepted).
import type { Database } from "../../platform/db/client.ts";
import type { JobDefinition } from "../../platform/jobs/port.ts";
import type { Logger } from "../../platform/observability/logger.ts";
import { PermanentJobError } from "../../platform/jobs/port.ts";
import type { Mailer } from "../../platform/mail/port.ts";
import { q } from "../../platform/db/tx.ts";
import { jobsRepo } from "./repository.ts";
import { JOB_TYPES, payloadUserId as userId, type RegistrationPayload } from "./types.ts";

/**
 * The name to greet, only when it is letters, spaces, apostrophes and hyphens: anything a mail client could
 * render as a link (a dot, a colon, a slash, an @, digits of an address) would make the welcome mail a way to
 * send anyone's link to any address. Otherwise a plain greeting.
 */
export function greetingName(name: unknown): string {
  return typeof name === "string" && /^[\p{L}\p{M}' -]{1,100}$/u.test(name) && /\p{L}/u.test(name) ? name.trim() : "there";
}

/** Rows per delete in the session cleanup: short write transactions, and a point to stop at between them. */
export const SESSION_CLEANUP_BATCH = 500;

/**
 * Deletes expired sessions in batches, shared by the job and the cron schedule. Checks `signal` before each
 * batch: a run that lost its lease (or its job hold) stops there and throws the signal's reason; what it
 * deleted stays deleted, and the next run deletes the rest.
 */
export async function cleanupExpiredSessions(
  deps: { database: Database; logger: Logger },
  opts: { signal?: AbortSignal; batchSize?: number } = {},
): Promise<number> {
  const batchSize = opts.batchSize ?? SESSION_CLEANUP_BATCH;
  const now = new Date().toISOString();
  let deleted = 0;
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      const n = await deps.database.write((tx) => q(jobsRepo.deleteExpiredSessions(tx, now, batchSize)));
      deleted += n;
      deps.logger.debug("expired sessions batch removed", { count: n });
      if (n < batchSize) break;
    }
  } finally {
    deps.logger.info("expired sessions removed", { count: deleted, complete: !opts.signal?.aborted });
  }
  return deleted;
}

/** What the handlers need besides the mailer. */
export interface JobHandlersDeps {
  database: Database;
  logger: Logger;
}

export function jobDefinitions(deps: JobHandlersDeps, mailer: Mailer): JobDefinition<any>[] {
  const { database } = deps;
  const welcome: JobDefinition<RegistrationPayload> = {
    type: JOB_TYPES.welcomeEmail,
    writesDb: mailer.writesDb,
    async handler(p, ctx) {
      if (typeof p.email !== "string" || p.email === "") throw new PermanentJobError("payload has no email");
      await mailer.send(
        {
          to: p.email,
          subject: "Welcome to neodyme-edge",
          text: `Hello ${greetingName(p.full_name)},\n\nan account was created with this address at neodyme-edge. If that was not you, ignore this mail: nothing more will be sent.\n`,
          userId: userId(p),
        },
        { idempotencyKey: ctx.jobId, signal: ctx.signal },
      );
    },
  };
  const analytics: JobDefinition<RegistrationPayload> = {
    type: JOB_TYPES.analytics,
    writesDb: true,
    async handler(p, ctx) {
      const event = {
        jobId: ctx.jobId,
        userId: userId(p),
        event: "user_registered",
        properties: { email_domain: String(p.email ?? "").split("@")[1] ?? null },
      };
      await database.write((tx) => q(jobsRepo.recordAnalytics(tx, event)));
    },
  };
  const audit: JobDefinition<RegistrationPayload> = {
    type: JOB_TYPES.audit,
    writesDb: true,
    async handler(p, ctx) {
      const entry = {
        jobId: ctx.jobId,
        userId: userId(p),
        action: "user_registered",
        details: { email: p.email, full_name: p.full_name },
      };
      await database.write((tx) => q(jobsRepo.recordAudit(tx, entry)));
    },
  };
  const cleanup: JobDefinition<Record<string, never>> = {
    type: JOB_TYPES.cleanupSessions,
    writesDb: true,
    async handler(_p, ctx) {
      await cleanupExpiredSessions(deps, { signal: ctx.signal });
    },
  };
  return [welcome, analytics, audit, cleanup];
}
