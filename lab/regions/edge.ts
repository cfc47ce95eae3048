// The edge stand-in: one per region, playing Fly's proxy and the LiteFS proxy in front of the region's
// instances. What it stands for and what differs from Fly and LiteFS is in docs/regions.md.
//  - A request goes to an instance of the edge's region (round robin).
//  - LiteFS proxy rule: a request that is not GET or HEAD (OPTIONS included) reaching a replica is replayed to
//    the primary its LiteFS node names (`fly-replay: instance=<primary>`), at once and without touching the app.
//    While the node knows no primary, it waits up to primaryRedirectTimeoutMs for one; past that LiteFS answers
//    a text/plain 503 itself, whereas the stand-in hands the request to the app (whose 503 is then measured).
//  - Fly's edge honours `fly-replay: instance=<id>` and `region=<r>` from an app's answer by replaying the
//    request there once, across the delayed link between the two regions.
import type { Server } from "bun";

export interface EdgeTarget {
  id: string;
  region: string;
  /** False while the process is down (the edge then picks another instance of the region, if any). */
  up(): boolean;
  /** What the instance's LiteFS node says: the primary's hostname, "self" on the primary, null when none is known. */
  litefsPrimary(): string | "self" | null;
}

export interface EdgeOptions {
  region: string;
  targets: EdgeTarget[];
  /** Base URL this edge uses to reach an instance: direct in its own region, else through a delay proxy. */
  urlOf(fromRegion: string, instanceId: string): string;
  primaryRedirectTimeoutMs: number;
}

export interface Edge {
  url: string;
  stop(): void;
}

const READ = new Set(["GET", "HEAD"]);
const HOP = ["connection", "keep-alive", "transfer-encoding", "host", "content-length"];

export function startEdge(opts: EdgeOptions): Edge {
  let next = 0;
  const local = () => {
    const mine = opts.targets.filter((t) => t.region === opts.region && t.up());
    const all = mine.length > 0 ? mine : opts.targets.filter((t) => t.region === opts.region);
    return all[next++ % all.length]!;
  };

  const send = async (target: EdgeTarget, req: Request, path: string, body: ArrayBuffer | null): Promise<Response> => {
    const headers = new Headers(req.headers);
    for (const h of HOP) headers.delete(h);
    try {
      return await fetch(opts.urlOf(opts.region, target.id) + path, {
        method: req.method,
        headers,
        body: body && body.byteLength > 0 ? body : undefined,
        redirect: "manual",
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      // Fly's edge answers 502 when it cannot reach the machine.
      return new Response(`edge: ${(err as Error).message}\n`, { status: 502 });
    }
  };

  const byId = (id: string) => opts.targets.find((t) => t.id === id);

  const replayTarget = (header: string): EdgeTarget | undefined => {
    const fields = Object.fromEntries(header.split(";").map((f) => f.trim().split("=") as [string, string]));
    if (fields.instance) return byId(fields.instance);
    if (fields.region) return opts.targets.find((t) => t.region === fields.region && t.up()) ?? opts.targets.find((t) => t.region === fields.region);
    return undefined;
  };

  /** LiteFS's serveNonRead on `target`: where a write goes. */
  const writeTarget = async (target: EdgeTarget): Promise<EdgeTarget> => {
    const deadline = performance.now() + opts.primaryRedirectTimeoutMs;
    for (;;) {
      const p = target.litefsPrimary();
      if (p === "self") return target;
      if (p !== null) return byId(p) ?? target;
      if (performance.now() >= deadline) return target;
      await Bun.sleep(25);
    }
  };

  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 60,
    async fetch(req) {
      const url = new URL(req.url);
      const path = url.pathname + url.search;
      const body = READ.has(req.method) ? null : await req.arrayBuffer();
      let target = local();
      if (!READ.has(req.method)) target = await writeTarget(target);
      let res = await send(target, req, path, body);
      const replay = res.headers.get("fly-replay");
      if (replay) {
        const to = replayTarget(replay);
        if (to && to !== target) {
          await res.arrayBuffer().catch(() => {});
          res = await send(to, req, path, body);
        }
      }
      const headers = new Headers(res.headers);
      for (const h of HOP) headers.delete(h);
      headers.delete("fly-replay");
      return new Response(req.method === "HEAD" ? null : await res.arrayBuffer(), { status: res.status, headers });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, stop: () => server.stop(true) };
}
