// The scaler's decision, as a pure function of what it knows: the machines (Machines API), the heartbeats
// (in-flight requests and CPU per instance), the policy and when each region last changed. Scale up fast (to
// the size the load asks for, after a short cooldown), down slow (one machine at a time, after a long one),
// with a band between the two thresholds so a region does not flap. It never stops the primary, never takes
// the primary region below two lease candidates, and changes nothing on stale heartbeat data.

export interface MachineInfo {
  id: string;
  region: string;
  /** Fly's machine state: started, starting, stopped, stopping, suspended, created, destroyed... */
  state: string;
}

export interface BeatInfo {
  id: string;
  region: string;
  role: string;
  inFlight: number;
  cpuPercent: number;
  /** ISO 8601. */
  lastHeartbeat: string;
}

export interface ScalerPolicy {
  min(region: string): number;
  max(region: string): number;
  /** Target load per running machine, in percent. */
  targetPercent: number;
  /** In-flight requests a machine carries at 100 %. */
  capacity: number;
  upCooldownMs: number;
  downCooldownMs: number;
  primaryRegion: string;
  /** A heartbeat older than this is stale. */
  staleAfterMs: number;
}

export type ScaleAction = "up" | "down" | "hold";

export interface RegionDecision {
  region: string;
  /** Machines running now. */
  from: number;
  /** Machines that will run after this decision (= from when holding). */
  to: number;
  /** What the load and the bounds ask for, before cooldowns and stale-data checks. */
  wanted: number;
  action: ScaleAction;
  reason: string;
  /** Average load per running machine, percent (null without fresh heartbeats). */
  utilisation: number | null;
  start: string[];
  stop: string[];
  /** Machines to create (no stopped one left to start), from an existing machine's config. */
  create: number;
}

/** Below this share of the target, a region may shrink; between it and the target, it holds. */
export const SCALE_DOWN_BAND = 0.5;
const RUNNING = new Set(["started", "starting"]);
const STARTABLE = new Set(["stopped", "suspended", "created"]);

const pct = (n: number) => `${Math.round(n)}%`;
/** Load per machine once one machine fewer carries it (a last machine may go only when idle). */
const afterOneLess = (utilisation: number, from: number) => (from > 1 ? (utilisation * from) / (from - 1) : utilisation === 0 ? 0 : Infinity);

export function decide(input: {
  now: number;
  machines: readonly MachineInfo[];
  beats: readonly BeatInfo[];
  policy: ScalerPolicy;
  /** When each region last changed (or was decided to change, in dry-run); absent: never. */
  lastChange: ReadonlyMap<string, number>;
}): RegionDecision[] {
  const { now, machines, beats, policy } = input;
  const fresh = beats.filter((b) => now - Date.parse(b.lastHeartbeat) <= policy.staleAfterMs);
  const newest = beats.reduce((m, b) => Math.max(m, Date.parse(b.lastHeartbeat)), 0);
  const allStale = fresh.length === 0;
  const staleReason = `stale heartbeat data (newest ${newest ? Math.round((now - newest) / 1000) + " s old" : "missing"})`;
  const primaryIds = new Set(beats.filter((b) => b.role === "primary").map((b) => b.id));
  const freshPrimary = new Set(fresh.filter((b) => b.role === "primary").map((b) => b.id));
  const regions = [...new Set(machines.filter((m) => m.state !== "destroyed").map((m) => m.region))].sort();

  return regions.map((region) => {
    const inRegion = machines.filter((m) => m.region === region);
    const running = inRegion.filter((m) => RUNNING.has(m.state));
    const from = running.length;
    const regionBeats = fresh.filter((b) => b.region === region && running.some((m) => m.id === b.id));
    const utilisation =
      regionBeats.length === 0
        ? null
        : regionBeats.reduce((sum, b) => sum + Math.max((b.inFlight / policy.capacity) * 100, b.cpuPercent), 0) / regionBeats.length;
    const min = Math.max(policy.min(region), region === policy.primaryRegion ? 2 : 0);
    const max = Math.max(policy.max(region), min);
    const hold = (reason: string, wanted = from): RegionDecision => ({
      region, from, to: from, wanted, action: "hold", reason, utilisation, start: [], stop: [], create: 0,
    });

    let wanted = from;
    let why: string;
    if (from < min) {
      wanted = min;
      why = `below the minimum of ${min}`;
    } else if (from > max) {
      wanted = max;
      why = `above the maximum of ${max}`;
    } else if (utilisation === null) {
      return hold(allStale ? staleReason : from === 0 ? "no machine running" : "no fresh heartbeat from this region");
    } else if (utilisation > policy.targetPercent) {
      wanted = Math.min(max, Math.max(from + 1, Math.ceil((from * utilisation) / policy.targetPercent)));
      why = `load ${pct(utilisation)} per machine > target ${pct(policy.targetPercent)}`;
    } else if (utilisation < policy.targetPercent * SCALE_DOWN_BAND && from > min && afterOneLess(utilisation, from) <= policy.targetPercent * 0.8) {
      wanted = from - 1;
      why = `load ${pct(utilisation)} per machine < ${pct(policy.targetPercent * SCALE_DOWN_BAND)}`;
    } else {
      return hold(`load ${utilisation === null ? "unknown" : pct(utilisation)} within the band`);
    }
    if (wanted === from) return hold(`${why}, but already at the bound`);

    // Corrections to the bounds act on any data; load-driven changes need fresh heartbeats for this region
    // (and a data set that is not stale as a whole) and respect the cooldowns.
    const bound = from < min || from > max;
    // Nothing acts on stale data, bound corrections included: who the primary is comes from the heartbeats.
    if (allStale) return hold(`${staleReason}; ${why}`, wanted);
    if (!bound && regionBeats.length < Math.ceil(from / 2)) return hold(`heartbeats missing for most of the region; ${why}`, wanted);
    const last = input.lastChange.get(region);
    const up = wanted > from;
    const cooldown = up ? policy.upCooldownMs : policy.downCooldownMs;
    if (!bound && last !== undefined && now - last < cooldown) {
      return hold(`cooldown (${Math.ceil((cooldown - (now - last)) / 1000)} s left); ${why}`, wanted);
    }

    if (up) {
      const startable = inRegion.filter((m) => STARTABLE.has(m.state)).map((m) => m.id);
      const start = startable.slice(0, wanted - from);
      return { region, from, to: wanted, wanted, action: "up", reason: why, utilisation, start, stop: [], create: wanted - from - start.length };
    }
    // Down: one at a time unless above the maximum; never the primary; the least busy first.
    const steps = bound ? from - wanted : 1;
    const busy = (id: string) => regionBeats.find((b) => b.id === id)?.inFlight ?? 0;
    if (region === policy.primaryRegion && !running.some((m) => freshPrimary.has(m.id))) return hold(`the primary is not known from a fresh heartbeat; ${why}`, wanted);
    const stoppable = running.filter((m) => !primaryIds.has(m.id)).sort((a, b) => busy(a.id) - busy(b.id));
    const stop = stoppable.slice(0, steps).map((m) => m.id);
    if (stop.length === 0) return hold(`only the primary runs here; ${why}`, wanted);
    return { region, from, to: from - stop.length, wanted, action: "down", reason: why, utilisation, start: [], stop, create: 0 };
  });
}

/** SCALER_MIN / SCALER_MAX: "<n>" for every region, or "ams=2,iad=1,*=0" ("*" for the others, default 0). */
export function perRegion(spec: string): (region: string) => number {
  if (/^\d+$/.test(spec)) {
    const n = Number(spec);
    return () => n;
  }
  const map = new Map(spec.split(",").map((kv) => kv.split("=") as [string, string]).map(([k, v]) => [k, Number(v)]));
  return (region) => map.get(region) ?? map.get("*") ?? 0;
}
