// A user-space link between two regions: a TCP proxy that delivers each direction's bytes half the round trip
// later, in order (one queue per direction, one timer). cut() plays a partition: nothing is lost and nothing
// is refused, bytes and closes simply wait (as TCP retransmits would) until restore(); a connection opened
// during the cut reaches its target only then. The kernel's netem is not available here, so this stands in.
import type { Socket, TCPSocketListener } from "bun";

interface Lane {
  queue: { at: number; data: Uint8Array | null }[];
  timer: ReturnType<typeof setTimeout> | null;
  /** Bytes the target socket has not taken yet (its buffer was full). */
  backlog: Uint8Array[];
  target: Socket<Conn> | null;
  ended: boolean;
}

interface Conn {
  up: Lane;
  down: Lane;
  client: Socket<Conn>;
  upstream: Socket<Conn> | null;
  connecting: boolean;
}

export interface DelayProxy {
  readonly port: number;
  readonly name: string;
  /** One-way delay in ms (half the round trip). */
  readonly oneWayMs: number;
  cut(): void;
  restore(): void;
  readonly isCut: boolean;
  /** Chunks that crossed toward the target so far: a per-request call on a path shows as one per request. */
  readonly upChunks: number;
  /** Connections opened through the link (each pays its handshake's crossing). */
  readonly connections: number;
  close(): void;
}

const newLane = (): Lane => ({ queue: [], timer: null, backlog: [], target: null, ended: false });

export function delayProxy(opts: { name: string; rttMs: number; targetPort: number; targetHost?: string }): DelayProxy {
  const oneWayMs = opts.rttMs / 2;
  const host = opts.targetHost ?? "127.0.0.1";
  let isCut = false;
  let upChunks = 0;
  let connections = 0;
  const conns = new Set<Conn>();

  const write = (lane: Lane, data: Uint8Array) => {
    const t = lane.target;
    if (t === null) return;
    if (lane.backlog.length > 0) {
      lane.backlog.push(data);
      return;
    }
    const n = t.write(data);
    if (n < data.length) lane.backlog.push(data.subarray(Math.max(0, n)));
  };
  const drain = (lane: Lane) => {
    const t = lane.target;
    while (t !== null && lane.backlog.length > 0) {
      const head = lane.backlog[0]!;
      const n = t.write(head);
      if (n < head.length) {
        lane.backlog[0] = head.subarray(Math.max(0, n));
        return;
      }
      lane.backlog.shift();
    }
    if (lane.ended && lane.backlog.length === 0) lane.target?.end();
  };
  const flush = (lane: Lane) => {
    lane.timer = null;
    if (isCut || lane.target === null) return;
    const now = performance.now();
    while (lane.queue.length > 0 && lane.queue[0]!.at <= now + 0.5) {
      const item = lane.queue.shift()!;
      if (item.data === null) {
        lane.ended = true;
        if (lane.backlog.length === 0) lane.target.end();
        lane.queue.length = 0;
        return;
      }
      write(lane, item.data);
    }
    schedule(lane);
  };
  const schedule = (lane: Lane) => {
    if (lane.timer !== null || lane.queue.length === 0 || isCut || lane.target === null) return;
    lane.timer = setTimeout(() => flush(lane), Math.max(0, lane.queue[0]!.at - performance.now()));
  };
  const push = (lane: Lane, data: Uint8Array | null) => {
    lane.queue.push({ at: performance.now() + oneWayMs, data });
    schedule(lane);
  };

  const connectUp = (conn: Conn) => {
    if (conn.upstream !== null || conn.connecting || isCut) return;
    conn.connecting = true;
    Bun.connect<Conn>({
      hostname: host,
      port: opts.targetPort,
      data: conn,
      socket: {
        open(up) {
          conn.upstream = up;
          conn.up.target = up;
          schedule(conn.up);
        },
        data(_up, chunk) {
          push(conn.down, new Uint8Array(chunk));
        },
        drain() {
          drain(conn.up);
        },
        close() {
          push(conn.down, null);
        },
        error() {
          push(conn.down, null);
        },
      },
    }).catch(() => push(conn.down, null));
  };

  const listener: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        connections++;
        const conn: Conn = { up: newLane(), down: newLane(), client, upstream: null, connecting: false };
        conn.down.target = client;
        client.data = conn;
        conns.add(conn);
        // The SYN crosses the link too.
        setTimeout(() => connectUp(conn), oneWayMs);
      },
      data(client, chunk) {
        upChunks++;
        push(client.data.up, new Uint8Array(chunk));
      },
      drain(client) {
        drain(client.data.down);
      },
      close(client) {
        push(client.data.up, null);
        conns.delete(client.data);
      },
      error(client) {
        push(client.data.up, null);
        conns.delete(client.data);
      },
    },
  });

  return {
    port: listener.port,
    name: opts.name,
    oneWayMs,
    get isCut() {
      return isCut;
    },
    get upChunks() {
      return upChunks;
    },
    get connections() {
      return connections;
    },
    cut() {
      isCut = true;
      for (const c of conns) {
        for (const lane of [c.up, c.down]) {
          if (lane.timer) clearTimeout(lane.timer);
          lane.timer = null;
        }
      }
    },
    restore() {
      isCut = false;
      for (const c of conns) {
        connectUp(c);
        schedule(c.up);
        schedule(c.down);
      }
    },
    close() {
      listener.stop(true);
      for (const c of conns) {
        c.client.terminate();
        c.upstream?.terminate();
      }
      conns.clear();
    },
  };
}
