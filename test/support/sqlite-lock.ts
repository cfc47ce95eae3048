// Another process holding SQLite's write lock: the sqlite3 shell in BEGIN IMMEDIATE, as a maintenance shell
// or a second instance would. A second process is needed: locks taken by another connection of this process
// through a different SQLite library (libSQL bundles its own) do not conflict with ours.
import { collectOutput } from "./process.ts";

export interface HeldLock {
  release(): Promise<void>;
}

export async function holdWriteLock(file: string, timeoutMs = 10_000): Promise<HeldLock> {
  const proc = Bun.spawn(["sqlite3", file], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const out = collectOutput(proc);
  proc.stdin.write("PRAGMA busy_timeout = 5000;\nBEGIN IMMEDIATE;\nSELECT 'lock-held';\n");
  await proc.stdin.flush();
  const deadline = Date.now() + timeoutMs;
  while (!out.stdout().includes("lock-held")) {
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`sqlite3 did not take the write lock: ${out.stderr()}`);
    }
    await Bun.sleep(10);
  }
  return {
    async release() {
      proc.stdin.write("ROLLBACK;\n.quit\n");
      await proc.stdin.end();
      await proc.exited;
    },
  };
}
