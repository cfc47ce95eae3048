// The scaler's run: once per SCALER_INTERVAL under the cron lease (so once in the cluster, on an instance that
// can write), it reads the heartbeat table, lists the app's machines, decides per region (decide.ts) and, in
// mode "on", starts, creates or stops machines through the Machines API. Every decision that changes something,
// or would have and was kept from it, is recorded (records.ts), counted in /metrics and logged. An unreachable
// Machines API changes nothing: the run records the failure per region and tries again next interval.
import { listInstances } from "../cluster/instances.ts";
import type { ScheduleDefinition } from "../cron/scheduler.ts";
import type { Database } from "../db/client.ts";
import type { Logger } from "../observability/logger.ts";
import type { OpsMetrics } from "../observability/ops-metrics.ts";
import { DEPENDENCY, isClientError, type BreakerSettings, type Breakers } from "../resilience/breakers.ts";
import { decide, type RegionDecision, type ScalerPolicy } from "./decide.ts";
import { MachinesClient, type FlyMachine } from "./machines.ts";
import { lastChanges, recordDecisions, type NewDecision } from "./records.ts";

export interface ScalerOptions {
  /** SCALER_MODE: "dry-run" decides and records without calling anything that changes a machine. */
  mode: "off" | "dry-run" | "on";
  /** Seconds between runs (SCALER_INTERVAL). */
  intervalSeconds: number;
  policy: ScalerPolicy;
  /** Written into each decision's row. */
  instanceId: string;
  /** The Machines API (FLY_API_URL, FLY_API_TOKEN, FLY_APP_NAME, BREAKER_FLY_MACHINES); absent without a token and an app. */
  machines?: { baseUrl: string; token: string; app: string; breaker: BreakerSettings };
}

export interface ScalerDeps {
  options: ScalerOptions;
  logger: Logger;
  database: Database;
  breakers: Breakers;
  opsMetrics: OpsMetrics;
}

/** A Machines API call may take this long before it counts as failed. */
const MACHINES_TIMEOUT_MS = 10_000;

/** The Machines API client, or null when FLY_API_TOKEN / FLY_APP_NAME are not both set. */
export function machinesClient(deps: Pick<ScalerDeps, "options" | "breakers">): MachinesClient | null {
  const api = deps.options.machines;
  if (!api) return null;
  return new MachinesClient({
    baseUrl: api.baseUrl,
    token: api.token,
    app: api.app,
    timeoutMs: MACHINES_TIMEOUT_MS,
    breaker: deps.breakers.get(DEPENDENCY.machines, api.breaker, isClientError),
  });
}

async function execute(client: MachinesClient, d: RegionDecision, machines: FlyMachine[]): Promise<void> {
  for (const id of d.start) await client.start(id);
  if (d.create > 0) {
    const template = machines.find((m) => m.region === d.region && m.config) ?? machines.find((m) => m.config);
    if (!template?.config) throw new Error("no machine to copy a config from");
    for (let i = 0; i < d.create; i++) await client.create(d.region, template.config);
  }
  for (const id of d.stop) await client.stop(id);
}

/** One scaler run. Returns what it recorded. */
export async function runScaler(deps: ScalerDeps, client: MachinesClient, signal?: AbortSignal, now = () => Date.now()): Promise<NewDecision[]> {
  const { options, database, opsMetrics } = deps;
  const log = deps.logger.child({ component: "scaler" });
  const mode = options.mode;
  const beats = await listInstances(database.db);
  const at = () => new Date(now()).toISOString();
  const record: NewDecision[] = [];
  const row = (d: Pick<RegionDecision, "region" | "from" | "to" | "action" | "reason">, outcome: string, detail: string | null = null): NewDecision => ({
    at: at(), region: d.region, fromCount: d.from, toCount: d.to, action: d.action, reason: d.reason, outcome, detail, instance: options.instanceId,
  });

  let machines: FlyMachine[];
  try {
    machines = await client.list();
  } catch (err) {
    const detail = (err as Error).message;
    log.warn("scaler: Machines API unreachable; nothing changed", { error: detail });
    for (const region of [...new Set(beats.map((b) => b.region))].sort()) {
      const n = beats.filter((b) => b.region === region).length;
      record.push(row({ region, from: n, to: n, action: "hold", reason: "Machines API unreachable" }, "error", detail));
    }
    return finish(deps, record);
  }

  const decisions = decide({ now: now(), machines, beats, policy: options.policy, lastChange: await lastChanges(database.db) });
  for (const d of decisions) {
    signal?.throwIfAborted();
    if (d.action === "hold") {
      if (d.wanted !== d.from) record.push(row(d, "blocked"));
      continue;
    }
    if (mode !== "on") {
      log.info("scaler (dry-run): would change a region", { region: d.region, from: d.from, to: d.to, reason: d.reason });
      record.push(row(d, "dry-run", planText(d)));
      continue;
    }
    try {
      await execute(client, d, machines);
      log.info("scaler: region changed", { region: d.region, from: d.from, to: d.to, reason: d.reason, plan: planText(d) });
      record.push(row(d, "ok", planText(d)));
    } catch (err) {
      log.warn("scaler: could not change a region", { region: d.region, from: d.from, to: d.to, error: (err as Error).message });
      record.push(row(d, "error", `${planText(d)}: ${(err as Error).message}`));
    }
  }
  return finish(deps, record);

  async function finish(deps: ScalerDeps, rows: NewDecision[]): Promise<NewDecision[]> {
    for (const r of rows) opsMetrics.scalerDecisions.inc({ region: r.region, action: r.action, outcome: r.outcome });
    await deps.database.write((tx) => recordDecisions(tx, rows));
    return rows;
  }
}

function planText(d: RegionDecision): string {
  const parts = [
    d.start.length ? `start ${d.start.join(", ")}` : "",
    d.create ? `create ${d.create}` : "",
    d.stop.length ? `stop ${d.stop.join(", ")}` : "",
  ].filter(Boolean);
  return parts.join("; ") || "nothing";
}

/** SCALER_INTERVAL seconds as a cron pattern (seconds first): even ticks when it divides a minute or an hour. */
export function intervalPattern(seconds: number): string {
  if (seconds < 60) return `*/${seconds} * * * * *`;
  const minutes = Math.max(1, Math.round(seconds / 60));
  return minutes >= 60 ? "0 0 * * * *" : `0 */${minutes} * * * *`;
}

/**
 * The scaler's cron schedule, or null when it is off (SCALER_MODE=off, or no FLY_API_TOKEN / FLY_APP_NAME).
 * It writes the database (its decisions), so only an instance that can write runs it.
 */
export function scalerSchedule(deps: Pick<ScalerDeps, "options" | "breakers" | "logger">): ScheduleDefinition<Omit<ScalerDeps, "options">> | null {
  const { options } = deps;
  if (options.mode === "off") return null;
  const client = machinesClient(deps);
  if (!client) {
    deps.logger.info("scaler off: FLY_API_TOKEN and FLY_APP_NAME are needed to read the machines", { mode: options.mode });
    return null;
  }
  return {
    name: "scaler",
    pattern: intervalPattern(options.intervalSeconds),
    writesDb: true,
    description: `Scales machines per region (${options.mode})`,
    async run(d, ctx) {
      await runScaler({ options, logger: d.logger, database: d.database, breakers: d.breakers, opsMetrics: d.opsMetrics }, client, ctx.signal);
    },
  };
}
