// The users feature's job types: the three side effects of a registration (queued through the outbox in the
// registration's transaction). Each is idempotent under redelivery: the mail API gets the job id as its
// idempotency key, and the analytics and audit rows are keyed by it.
import type { Database, Db } from "../../platform/db/client.ts";
import { q, type Step } from "../../platform/db/tx.ts";
import { PermanentJobError, type JobDefinition } from "../../platform/jobs/port.ts";
import type { Mailer } from "../../platform/mail/port.ts";
import { JOB_TYPES, payloadUserId as userId, type RegistrationPayload } from "../jobs/types.ts";
import { registrationRepo } from "./repository.ts";

/**
 * The name to greet, only when it is letters, spaces, apostrophes and hyphens: anything a mail client could
 * render as a link (a dot, a colon, a slash, an @, digits of an address) would make the welcome mail a way to
 * send anyone's link to any address. Otherwise a plain greeting.
 */
export function greetingName(name: unknown): string {
  return typeof name === "string" && /^[\p{L}\p{M}' -]{1,100}$/u.test(name) && /\p{L}/u.test(name) ? name.trim() : "there";
}

export function registrationJobs(deps: { database: Database }, mailer: Mailer): JobDefinition<any>[] {
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
  // Analytics and audit each write one row keyed by the job id, so a redelivery writes nothing new. They differ
  // only in the repository call and the row, which each one's definition below spells out.
  const recordRow = <Row>(
    type: string,
    record: (tx: Db, row: Row) => Step<unknown>,
    row: (p: RegistrationPayload, jobId: string) => Row,
  ): JobDefinition<RegistrationPayload> => ({
    type,
    writesDb: true,
    async handler(p, ctx) {
      await database.write((tx) => q(record(tx, row(p, ctx.jobId))));
    },
  });
  const analytics = recordRow(JOB_TYPES.analytics, registrationRepo.recordAnalytics, (p, jobId) => ({
    jobId,
    userId: userId(p),
    event: "user_registered",
    properties: { email_domain: String(p.email ?? "").split("@")[1] ?? null },
  }));
  const audit = recordRow(JOB_TYPES.audit, registrationRepo.recordAudit, (p, jobId) => ({
    jobId,
    userId: userId(p),
    action: "user_registered",
    details: { email: p.email, full_name: p.full_name },
  }));
  return [welcome, analytics, audit];
}
