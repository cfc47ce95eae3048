// Outgoing mail as the handlers see it. Two adapters: the `email_outbox` table (default; a delivery process or
// an operator reads it) and an HTTP mail API (MAIL_API_URL). Both are idempotent by the message's key, so a
// redelivered job sends one mail.
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** The user the mail is about, when there is one. */
  userId?: number;
}

export interface SendOptions {
  /** Same key, same mail: the job id of the job that sends it. */
  idempotencyKey: string;
  signal?: AbortSignal;
}

export interface Mailer {
  /** Whether sending writes the database (the job type then runs only on the primary). */
  readonly writesDb: boolean;
  send(message: MailMessage, opts: SendOptions): Promise<void>;
}
