// What the README says of `Expect: 100-continue`: Bun writes `100 Continue` itself, before the app (or any
// handler) runs, even when the answer is a refusal given without reading the body. Should a Bun release stop
// doing that, this fails and the README's line goes.
import { afterAll, expect, test } from "bun:test";
import { connect } from "node:net";

const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("refused", { status: 403 }) });
afterAll(() => server.stop(true));

/** Everything the server writes to a POST that asks `Expect: 100-continue` and never sends its body. */
function withheldBody(): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = connect(server.port!, "127.0.0.1", () =>
      socket.write("POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"),
    );
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer")));
    socket.on("data", (c) => {
      text += c.toString("latin1");
      if (text.includes("refused")) socket.destroy();
    });
    socket.on("error", reject);
    socket.on("close", () => resolve(text));
  });
}

test("Bun answers 100 Continue before a handler that refuses without reading the body", async () => {
  const text = await withheldBody();
  expect(text.startsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403")).toBe(true);
});
