// Spawning the real service (`bun run src/index.ts`) for tests where the process itself is the subject.
import type { Subprocess } from "bun";
import { ROOT } from "../helpers.ts";
import { waitUntil } from "./wait.ts";

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
  return { proc, url: `http://127.0.0.1:${port}`, ...collectOutput(proc), kill: (signal = "SIGTERM") => proc.kill(signal) };
}

/** Collects a child's stdout and stderr as they come; read them at any time. */
export function collectOutput(proc: { stdout: ReadableStream<Uint8Array> | number | undefined; stderr: ReadableStream<Uint8Array> | number | undefined }) {
  let out = "";
  let err = "";
  const drain = async (stream: unknown, push: (s: string) => void) => {
    if (!(stream instanceof ReadableStream)) return;
    const dec = new TextDecoder();
    for await (const chunk of stream as ReadableStream<Uint8Array>) push(dec.decode(chunk));
  };
  void drain(proc.stdout, (s) => (out += s));
  void drain(proc.stderr, (s) => (err += s));
  return { stdout: () => out, stderr: () => err };
}

/** Reads a child's stdout until it has printed `marker` (its "ready" line); fails if it exits first. */
export async function waitForOutput(proc: Subprocess<"ignore", "pipe", "pipe">, marker: string, what: string): Promise<void> {
  const reader = proc.stdout.getReader();
  let out = "";
  while (!out.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${what} exited before printing "${marker}": ${await new Response(proc.stderr).text()}`);
    out += new TextDecoder().decode(value);
  }
  reader.releaseLock();
}

/** A raw HTTP/1.1 connection, for requests fetch() cannot make (a Host header of our choosing, a body sent in parts). */
export async function rawConnection(port: number): Promise<{ write(text: string): void; response: Promise<string> }> {
  let response = "";
  const closed = Promise.withResolvers<string>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        response += new TextDecoder().decode(chunk);
      },
      close: () => closed.resolve(response),
      error: () => closed.resolve(response),
    },
  });
  return { write: (text) => void socket.write(text), response: closed.promise };
}

/** Polls `url` until it answers 200 or the deadline passes. */
export async function waitFor(url: string, timeoutMs = 15_000): Promise<void> {
  await waitUntil(async () => (await fetch(url)).ok, { timeoutMs, intervalMs: 50, retryErrors: true }, `${url} to answer 200`);
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
