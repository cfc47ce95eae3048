export * from "./users.ts";
export * from "./jobs.ts";
export * from "./cluster.ts";
export * from "./idempotency.ts";
