// Warming at start: the most recently active users' details go into the cache before the instance serves.
// Bounded by CACHE_WARM_TIMEOUT_MS: when time is up the instance starts anyway and warming stops.
import { usersRepo } from "./repository.ts";
import { getDetail, type DetailDeps, type UsersDeps } from "./service.ts";

const CONCURRENCY = 4;

export interface WarmResult {
  requested: number;
  warmed: number;
  timed_out: boolean;
  duration_ms: number;
}

export interface WarmHooks {
  /** Which users to warm (default: the most recently active). */
  ids?: (n: number) => Promise<number[]>;
  /** How to load one (default: the user detail read, which fills the cache). */
  load?: (id: number) => Promise<unknown>;
}

/** The settings warming reads. */
export interface WarmSettings {
  CACHE_ENABLED: boolean;
  /** How many users; 0 turns warming off. */
  CACHE_WARM_COUNT: number;
  /** How long the start may wait for it; 0 turns warming off. */
  CACHE_WARM_TIMEOUT_MS: number;
}

export async function warmCache(deps: DetailDeps & Pick<UsersDeps, "logger"> & { config: WarmSettings }, hooks: WarmHooks = {}): Promise<WarmResult> {
  const ids$ = hooks.ids ?? ((n: number) => usersRepo.mostRecentlyActive(deps.database.db, n));
  const load = hooks.load ?? ((id: number) => getDetail(deps, id));
  const { CACHE_ENABLED, CACHE_WARM_COUNT: count, CACHE_WARM_TIMEOUT_MS: timeoutMs } = deps.config;
  const start = performance.now();
  const result: WarmResult = { requested: 0, warmed: 0, timed_out: false, duration_ms: 0 };
  if (!CACHE_ENABLED || count === 0 || timeoutMs === 0) return result;
  let stop = false;
  const work = (async () => {
    const ids = await ids$(count);
    result.requested = ids.length;
    let next = 0;
    const worker = async () => {
      while (!stop && next < ids.length) {
        const id = ids[next++]!;
        try {
          await load(id);
          result.warmed++;
        } catch {
          // deleted meanwhile, or the database is busy: not worth holding the start for
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  const outcome = await Promise.race([work.then(() => "done" as const, () => "failed" as const), timeout]);
  clearTimeout(timer);
  stop = true;
  result.timed_out = outcome === "timeout";
  result.duration_ms = Math.round(performance.now() - start);
  deps.logger.info("cache warmed", { ...result });
  return result;
}
