// The default mailer: one `email_outbox` row per message, keyed by job id (a second send is a no-op).
import type { Db } from "../db/client.ts";
import { emailOutbox } from "../db/schema/index.ts";
import type { Mailer, MailMessage, SendOptions } from "./port.ts";

export class DbMailer implements Mailer {
  readonly writesDb = true;
  constructor(private readonly db: Db) {}

  async send(m: MailMessage, opts: SendOptions): Promise<void> {
    await this.db
      .insert(emailOutbox)
      .values({ jobId: opts.idempotencyKey, userId: m.userId ?? null, toEmail: m.to, subject: m.subject, body: m.text })
      .onConflictDoNothing({ target: emailOutbox.jobId });
  }
}
