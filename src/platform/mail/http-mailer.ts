// Mail through an HTTP API (MAIL_API_URL): POST {from, to, subject, text} as JSON with an `Idempotency-Key`
// header (the job id), so the provider drops a repeat. 2xx is sent; 408, 409, 429 and 5xx are retried by the
// queue; any other 4xx fails the job at once. Calls go through the mail API's circuit breaker when given one:
// while it is open a send fails fast and the job is deferred (see decideFailure in jobs/port.ts).
import { PermanentJobError } from "../jobs/port.ts";
import type { Breaker } from "../resilience/breakers.ts";
import type { Mailer, MailMessage, SendOptions } from "./port.ts";

export interface HttpMailerOptions {
  url: string;
  token?: string;
  from: string;
  timeoutMs: number;
  breaker?: Breaker;
}

/**
 * Not counted by the breaker: a permanent failure is about the message, and an abort by the job (its hold
 * lost, a shutdown) is about this worker; neither says the API is unhealthy. A timeout is counted.
 */
export const mailFailureIsAboutTheMessage = (err: unknown) => err instanceof PermanentJobError || (err as Error)?.name === "AbortError";

export class HttpMailer implements Mailer {
  readonly writesDb = false;
  constructor(private readonly o: HttpMailerOptions) {}

  send(m: MailMessage, opts: SendOptions): Promise<void> {
    return this.o.breaker ? this.o.breaker.call(() => this.post(m, opts)) : this.post(m, opts);
  }

  private async post(m: MailMessage, opts: SendOptions): Promise<void> {
    const headers: Record<string, string> = { "content-type": "application/json", "idempotency-key": opts.idempotencyKey };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const res = await fetch(this.o.url, {
      method: "POST",
      headers,
      body: JSON.stringify({ from: this.o.from, to: m.to, subject: m.subject, text: m.text }),
      signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return;
    const detail = `mail API answered ${res.status}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 409 && res.status !== 429) throw new PermanentJobError(detail);
    throw new Error(detail);
  }
}
