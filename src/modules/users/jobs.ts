// The users feature's job types: the three side effects of a registration (queued through the outbox in the
// registration's transaction). Each is idempotent under redelivery: the mail API gets the job id as its
// idempotency key, and the analytics and audit rows are keyed by it.
import type { Database } from "../../platform/db/client.ts";
import { q } from "../../platform/db/tx.ts";
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
      await database.write((tx) => q(registrationRepo.recordAnalytics(tx, event)));
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
      await database.write((tx) => q(registrationRepo.recordAudit(tx, entry)));
    },
  };
  return [welcome, analytics, audit];
}
