// `bun run start`: read the configuration, start the instance, stop it gracefully on SIGTERM/SIGINT.
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { createLogger } from "./platform/observability/logger.ts";
import { startInstance, type RunningInstance } from "./main/serve.ts";

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

// The instance's own logger, so these lines keep their place among the request lines (which it buffers).
const logger = createLogger(config.LOG_LEVEL, { instance: config.INSTANCE_ID, region: config.FLY_REGION });
const log = (level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown> = {}) => logger[level](msg, fields);

// Handlers go in before the start, so a signal that arrives while the instance is starting still drains it
// (the stop runs as soon as the start completes) instead of killing the process mid-migration.
let instance: RunningInstance | undefined;
let stopRequested: string | undefined;
let firstSignalAt = 0;

function stop(signal: string): void {
  log("info", "signal received", { signal });
  if (!instance) return; // the start path below stops it once it is up
  instance.stop().then(
    () => process.exit(0),
    (err) => {
      log("error", "shutdown failed", { error: String(err) });
      process.exit(1);
    },
  );
}

function onSignal(signal: string): void {
  const now = Date.now();
  if (stopRequested) {
    // The same signal delivered twice at once (a supervisor plus `bun run` forwarding it) is one request;
    // a second one later means "now".
    if (now - firstSignalAt < 1_000) return;
    log("warn", "second signal: exiting now", { signal });
    process.exit(1);
  }
  stopRequested = signal;
  firstSignalAt = now;
  stop(signal);
}
process.on("SIGTERM", () => onSignal("SIGTERM"));
process.on("SIGINT", () => onSignal("SIGINT"));

try {
  instance = await startInstance(config, { logger });
  if (stopRequested) stop(stopRequested);
} catch (err) {
  // Like a bad configuration: an instance that never started says why on stderr, in one plain line, whatever
  // LOG_LEVEL says (silent included); the error names the part that failed (StartError).
  console.error(`start failed: ${(err as Error).message}`);
  process.exit(1);
}
