// A stand-in for one LiteFS node as the app sees it: the HTTP API's `GET /info` (superfly/litefs http/server.go
// handleGetInfo: NodeInfo as indented JSON plus a newline; other methods 405, other paths 404) and the
// `.primary` file in the FUSE mount, which LiteFS keeps only on a connected replica (holding the primary's
// hostname) and removes on the primary and whenever the replica loses its primary. What differs from LiteFS:
// no replication, no lease, no FUSE (the file is a plain file this code writes), and the state changes only
// when a test says so.
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Server } from "bun";

export type LiteFsNodeState = { kind: "primary" } | { kind: "replica"; primary: string } | { kind: "disconnected" };

export interface LiteFsNode {
  /** Base URL of the API (what LITEFS_API_URL takes). */
  readonly url: string;
  readonly dir: string;
  /** This node holds the lease: /info says isPrimary, no `.primary` file. */
  promote(): void;
  /** Connected to `primary`: `.primary` holds its hostname, /info names it. */
  follow(primary: string): void;
  /** The replica lost its primary: no `.primary`, /info says neither primary nor whom it follows. */
  disconnect(): void;
  /** The API stops answering (connections refused), as when LiteFS is restarting. */
  apiDown(): void;
  apiUp(): void;
  state(): LiteFsNodeState;
  close(): void;
}

export function liteFsNode(opts: { dir: string; hostname: string; state?: LiteFsNodeState; port?: number }): LiteFsNode {
  let state: LiteFsNodeState = opts.state ?? { kind: "disconnected" };
  let server: Server<undefined> | null = null;
  let port = opts.port ?? 0;
  const primaryFile = join(opts.dir, ".primary");

  const syncFile = () => {
    if (state.kind === "replica") writeFileSync(primaryFile, `${state.primary}\n`);
    else rmSync(primaryFile, { force: true });
  };

  const info = () => ({
    clusterID: "LFSC0000000000000001",
    isPrimary: state.kind === "primary",
    candidate: true,
    path: opts.dir,
    primary: { hostname: state.kind === "primary" ? opts.hostname : state.kind === "replica" ? state.primary : "" },
  });

  const listen = () => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      fetch(req) {
        const path = new URL(req.url).pathname;
        const headers = { "litefs-id": "0000000000000001" };
        if (path !== "/info") return new Response("404 page not found\n", { status: 404, headers });
        if (req.method !== "GET") return new Response(JSON.stringify({ error: "method not allowed" }) + "\n", { status: 405, headers });
        return new Response(JSON.stringify(info(), null, "  ") + "\n", { headers });
      },
    });
    port = server.port ?? port;
  };

  syncFile();
  listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    dir: opts.dir,
    promote() {
      state = { kind: "primary" };
      syncFile();
    },
    follow(primary) {
      state = { kind: "replica", primary };
      syncFile();
    },
    disconnect() {
      state = { kind: "disconnected" };
      syncFile();
    },
    apiDown() {
      server?.stop(true);
      server = null;
    },
    apiUp() {
      if (!server) listen();
    },
    state: () => state,
    close() {
      server?.stop(true);
      server = null;
    },
  };
}
