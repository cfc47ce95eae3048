// The job types of the service and their payloads, in one place: the services that enqueue a job and the
// handlers that run it take the name from here.
import { PermanentJobError } from "../../platform/jobs/port.ts";

export const JOB_TYPES = {
  welcomeEmail: "send_welcome_email",
  analytics: "process_user_analytics",
  audit: "log_user_audit",
  cleanupSessions: "cleanup_expired_sessions",
  updatePreferences: "update_user_preferences",
} as const;
export type JobType = (typeof JOB_TYPES)[keyof typeof JOB_TYPES];

/** The jobs a registration queues (through the outbox, in the registration's transaction). */
export const REGISTRATION_JOBS = [JOB_TYPES.welcomeEmail, JOB_TYPES.analytics, JOB_TYPES.audit] as const;

/** Payload of registration's three jobs (written by users/service.ts). */
export interface RegistrationPayload {
  user_id: number;
  email: string;
  full_name: string;
}

export interface PreferencesPayload {
  user_id: number;
  preference_updates: Record<string, string | number | boolean | null>;
  /** Epoch ms when the bulk request was accepted: keys the user wrote after it are left alone. */
  accepted_at?: number;
}

/** The user id of a payload, or a permanent failure (a retry cannot fix a payload). */
export function payloadUserId(p: { user_id?: unknown }): number {
  const id = Number(p.user_id);
  if (!Number.isSafeInteger(id) || id < 1) throw new PermanentJobError("payload has no valid user_id");
  return id;
}
