// One HTTP/1.1 request over a plain socket, with any headers (fetch drops some, such as a GET's Content-Length),
// and its response: status, headers (lower-case names) and body text.
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * `body`, when given, is sent with a Content-Length of its UTF-8 length (unless `headers` declares one), or as one
 * chunk when `headers` says `transfer-encoding: chunked`.
 */
export function rawRequest(url: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  const head = [`${method} ${path} HTTP/1.1`, `host: ${hostname}:${port}`, "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  let payload = "";
  if (body !== undefined) {
    const length = Buffer.byteLength(body);
    if (headers["transfer-encoding"] === "chunked") payload = `${length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    else {
      if (headers["content-length"] === undefined) head.push(`content-length: ${length}`);
      payload = body;
    }
  }
  return answered(url, head.join("\r\n") + "\r\n\r\n" + payload, `${method} ${path}`, 10_000).answer;
}

/** Sends `first` on a new connection to `url`; `answer` resolves once the server has answered and closed it. */
function answered(url: string, first: string, what: string, timeoutMs: number): { answer: Promise<RawResponse>; send(text: string): void } {
  const { hostname, port } = new URL(url);
  const chunks: Buffer[] = [];
  const socket = connect(Number(port), hostname, () => socket.write(first));
  const answer = new Promise<RawResponse>((resolve, reject) => {
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer to ${what}`)));
    socket.on("data", (c) => chunks.push(Buffer.from(c)));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const end = text.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
      const out: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        out[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine?.split(" ")[1]), headers: out, body: text.slice(end + 4) });
    });
  });
  return { answer, send: (text) => socket.write(text) };
}

/**
 * A request whose body is sent in two parts: the head and the first `sentFirst` characters (ASCII) of `body` now,
 * the rest when `finish` is called, which resolves with the answer. With `transfer-encoding: chunked` in
 * `headers`, each part is one chunk; else the head declares the whole body's Content-Length.
 */
export function partialRequest(url: string, method: string, path: string, headers: Record<string, string>, body: string, sentFirst: number) {
  const { hostname, port } = new URL(url);
  const chunked = headers["transfer-encoding"] === "chunked";
  const head = [`${method} ${path} HTTP/1.1`, `host: ${hostname}:${port}`, "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  if (!chunked) head.push(`content-length: ${Buffer.byteLength(body)}`);
  const part = (text: string) => (chunked ? `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n` : text);
  const conn = answered(url, head.join("\r\n") + "\r\n\r\n" + part(body.slice(0, sentFirst)), `${method} ${path}`, 30_000);
  return {
    finish(): Promise<RawResponse> {
      conn.send(part(body.slice(sentFirst)) + (chunked ? "0\r\n\r\n" : ""));
      return conn.answer;
    },
  };
}
