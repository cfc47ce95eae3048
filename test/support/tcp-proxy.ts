// A TCP proxy between the app and Redis, so a test can make Redis unreachable (close) and bring it back
// (open) without touching the machine's Redis, which other test files share.
import type { Socket, TCPSocketListener } from "bun";

export interface TcpProxy {
  port: number;
  url: string;
  /** Stops listening and cuts every open connection. */
  close(): void;
  /** Listens again on the same port. */
  open(): void;
}

interface Pair {
  upstream?: Socket<Pair>;
  client?: Socket<Pair>;
  pending: Uint8Array[];
}

export function tcpProxy(targetHost: string, targetPort: number): TcpProxy {
  const live = new Set<Socket<Pair>>();
  let listener: TCPSocketListener<Pair> | null = null;
  let port = 0;

  const listen = () => {
    listener = Bun.listen<Pair>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open(client) {
          const pair: Pair = { client, pending: [] };
          client.data = pair;
          live.add(client);
          Bun.connect<Pair>({
            hostname: targetHost,
            port: targetPort,
            data: pair,
            socket: {
              open(up) {
                pair.upstream = up;
                live.add(up);
                for (const chunk of pair.pending) up.write(chunk);
                pair.pending = [];
              },
              data(_up, chunk) {
                pair.client?.write(chunk);
              },
              close(up) {
                live.delete(up);
                pair.client?.end();
              },
              error(up) {
                live.delete(up);
                pair.client?.end();
              },
            },
          }).catch(() => client.end());
        },
        data(client, chunk) {
          const pair = client.data;
          if (pair.upstream) pair.upstream.write(chunk);
          else pair.pending.push(new Uint8Array(chunk));
        },
        close(client) {
          live.delete(client);
          client.data?.upstream?.end();
        },
        error(client) {
          live.delete(client);
          client.data?.upstream?.end();
        },
      },
    });
    port = listener.port;
  };
  listen();

  return {
    get port() {
      return port;
    },
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    close() {
      listener?.stop(true);
      listener = null;
      for (const s of live) s.terminate();
      live.clear();
    },
    open() {
      if (!listener) listen();
    },
  };
}
