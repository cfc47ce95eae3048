// The default mailer: one `email_outbox` row per message, keyed by job id (a second send is a no-op).
import type { Database } from "../db/client.ts";
import { q } from "../db/tx.ts";
import { emailOutbox } from "../db/schema/index.ts";
import type { Mailer, MailMessage, SendOptions } from "./port.ts";

export class DbMailer implements Mailer {
  readonly writesDb = true;
  constructor(private readonly database: Database) {}

  async send(m: MailMessage, opts: SendOptions): Promise<void> {
    const row = { jobId: opts.idempotencyKey, userId: m.userId ?? null, toEmail: m.to, subject: m.subject, body: m.text };
    await this.database.write((tx) => q(tx.insert(emailOutbox).values(row).onConflictDoNothing({ target: emailOutbox.jobId }).run()));
  }
}
