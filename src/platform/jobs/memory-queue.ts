// PLACEHOLDER until the jobs issue lands: records jobs, runs nothing. Replaced by the in-process queue.
import type { EnqueueOptions, Job, JobDefinition, JobQueue } from "./port.ts";

export class MemoryQueue implements JobQueue {
  private readonly jobs = new Map<string, Job>();
  async enqueue(type: string, _payload: Record<string, unknown>, opts: EnqueueOptions = {}): Promise<string> {
    const id = crypto.randomUUID();
    this.jobs.set(id, {
      id, type, status: "pending", created_at: new Date().toISOString(), started_at: null, completed_at: null,
      error_message: null, retry_count: 0, max_retries: opts.maxRetries ?? 3,
    });
    return id;
  }
  async getJob(id: string) { return this.jobs.get(id) ?? null; }
  async getJobs(ids: readonly string[]) { return Object.fromEntries(ids.map((id) => [id, this.jobs.get(id) ?? null])); }
  register(_def: JobDefinition<any>) {}
  start() {}
  async close() {}
}
