// Spawning the real service (`bun run src/index.ts`) for tests where the process itself is the subject.
import type { Subprocess } from "bun";
import { ROOT } from "../helpers.ts";

export async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  await s.stop(true);
  return port;
}

export interface Spawned {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  /** Everything the process has written to stdout so far. */
  stdout(): string;
  stderr(): string;
  kill(signal?: NodeJS.Signals | number): void;
}

export function spawnService(env: Record<string, string | undefined>, port: number): Spawned {
  const proc = Bun.spawn(["bun", "run", "src/index.ts"], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: "127.0.0.1", ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  let err = "";
  const drain = async (stream: ReadableStream<Uint8Array>, push: (s: string) => void) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) push(dec.decode(chunk));
  };
  void drain(proc.stdout, (s) => (out += s));
  void drain(proc.stderr, (s) => (err += s));
  return {
    proc,
    url: `http://127.0.0.1:${port}`,
    stdout: () => out,
    stderr: () => err,
    kill: (signal = "SIGTERM") => proc.kill(signal),
  };
}

/** Polls `url` until it answers 200 or the deadline passes. */
export async function waitFor(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await Bun.sleep(50);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** A base port whose next `n - 1` ports were free too at the time of asking. */
export async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const held: ReturnType<typeof Bun.serve>[] = [];
    try {
      for (let i = 0; i < n; i++) held.push(Bun.serve({ port: base + i, hostname: "0.0.0.0", fetch: () => new Response() }));
      return base;
    } catch {
      // taken: try another base
    } finally {
      for (const s of held) await s.stop(true);
    }
  }
  throw new Error(`no run of ${n} free ports found`);
}
