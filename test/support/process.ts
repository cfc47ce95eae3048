// Spawning processes (the service, the cluster runner, fixtures) for tests and benchmarks where the process
// itself is the subject, plus ports and raw connections for talking to them.
import type { Subprocess } from "bun";
import { readFileSync } from "node:fs";
import { ROOT } from "../helpers.ts";
import { waitUntil } from "./wait.ts";

const CLK_TCK = 100;
/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN where it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

/**
 * CPU milliseconds the process's main thread (a Bun server's event loop) has used so far, from the scheduler's
 * nanosecond count in /proc (Linux): what holds the loop, without the GC and I/O threads, and finer than
 * cpuSeconds' clock ticks. NaN where it cannot be read.
 */
export function mainThreadCpuMs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    return NaN;
  }
}

export async function freePort(): Promise<number> {
  const s = Bun.serve({ port: 0, fetch: () => new Response() });
  const port = s.port!;
  await s.stop(true);
  return port;
}

export interface SpawnOptions {
  /** "ignore" where nothing reads it (a benchmark's request log); kept by default, for stdout() and waitForOutput(). */
  stdout?: "pipe" | "ignore";
  /** "inherit" shows it on the runner's own stderr; kept by default, for stderr(). */
  stderr?: "pipe" | "inherit";
}

export interface Spawned {
  proc: Subprocess<"ignore", "pipe" | "ignore", "pipe" | "inherit">;
  /** The service's address (spawnService only). */
  url: string;
  /** Everything the process has written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once the process has exited and everything it wrote has been read. */
  finished(): Promise<number>;
  /** Waits until stdout holds `marker` (a "ready" line); fails, with the output, if the process exits first. */
  waitForOutput(marker: string, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals | number): void;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * `bun run <args>` from the repository root with only PATH, HOME and `env` in its environment (nothing of this
 * process's own leaks in): the one way tests and benchmarks start a service, a cluster or a fixture process.
 */
export function spawnBun(args: string[], env: Record<string, string | undefined>, opts: SpawnOptions = {}): Spawned {
  const proc = Bun.spawn(["bun", "run", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdin: "ignore",
    stdout: opts.stdout ?? "pipe",
    stderr: opts.stderr ?? "pipe",
  });
  const output = collectOutput(proc);
  const what = args.join(" ");
  return {
    proc,
    url: "",
    ...output,
    finished: async () => {
      const code = await proc.exited;
      await output.drained;
      return code;
    },
    waitForOutput: async (marker, timeoutMs = 60_000) => {
      await waitUntil(
        () => {
          if (output.stdout().includes(marker)) return true;
          if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}) before printing "${marker}": ${output.stdout()}${output.stderr()}`);
          return false;
        },
        { timeoutMs, intervalMs: 20 },
        `${what} to print "${marker}"`,
      );
    },
    kill: (signal = "SIGTERM") => proc.kill(signal),
    stop: async (graceMs = 15_000) => {
      proc.kill("SIGTERM");
      await Promise.race([proc.exited, Bun.sleep(graceMs)]);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** The service (`src/index.ts`, or `opts.args`) listening on 127.0.0.1:`port`. */
export function spawnService(env: Record<string, string | undefined>, port: number, opts: SpawnOptions & { args?: string[] } = {}): Spawned {
  const s = spawnBun(opts.args ?? ["src/index.ts"], { PORT: String(port), HOST: "127.0.0.1", ...env }, opts);
  return { ...s, url: `http://127.0.0.1:${port}` };
}

/** Collects a child's stdout and stderr as they come; read them at any time. */
export function collectOutput(proc: { stdout: ReadableStream<Uint8Array> | number | undefined; stderr: ReadableStream<Uint8Array> | number | undefined }) {
  let out = "";
  let err = "";
  const drain = async (stream: unknown, push: (s: string) => void) => {
    if (!(stream instanceof ReadableStream)) return;
    const dec = new TextDecoder();
    for await (const chunk of stream as ReadableStream<Uint8Array>) push(dec.decode(chunk, { stream: true }));
  };
  const drained = Promise.all([drain(proc.stdout, (s) => (out += s)), drain(proc.stderr, (s) => (err += s))]).then(() => undefined);
  return { stdout: () => out, stderr: () => err, drained };
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
