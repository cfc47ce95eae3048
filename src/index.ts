// `bun run start`: read the configuration, start the instance, stop it gracefully on SIGTERM/SIGINT.
import { ConfigError, loadConfig, type Config } from "./config.ts";
import { startInstance } from "./server.ts";

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

try {
  const instance = await startInstance(config);
  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      instance.deps.logger.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    instance.deps.logger.info("signal received", { signal });
    instance.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(JSON.stringify({ level: "error", msg: "shutdown failed", error: String(err) }));
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));
} catch (err) {
  console.error(JSON.stringify({ level: "error", msg: "start failed", error: (err as Error).message }));
  process.exit(1);
}
