// Writes take turns (src/platform/http/write-lane.ts): at most WRITE_CONCURRENCY of them are in the app at once,
// the others wait without costing the event loop, reads go past them, and every write still gets its answer.
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/platform/observability/logger.ts";
import { startInstance, type RunningInstance } from "../src/main/serve.ts";
import { inTurn, writeLane } from "../src/platform/http/write-lane.ts";
import { openDatabase, type Database, type Driver } from "../src/platform/db/client.ts";
import { runMigrations } from "../src/platform/db/migrate.ts";
import { q } from "../src/platform/db/tx.ts";
import { holdingTurn } from "../src/platform/db/write-turn.ts";
import { usersRepo } from "../src/modules/users/repository.ts";
import { join } from "node:path";
import { tempDir, testEnv, TEST_TIMEOUT_MS } from "./helpers.ts";
import { holdWriteLock } from "./support/sqlite-lock.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const started: RunningInstance[] = [];
const opened: Database[] = [];
afterAll(async () => {
  for (const s of started) await s.stop();
  for (const d of opened) d.close();
});

const URL_ = "http://localhost/api/v1/users/1/posts";

/** A served instance with metrics and the lane's `settings`, and one user (`name`@example.com), logged in. */
async function servedWithUser(settings: Record<string, string>, name: string) {
  const env = testEnv({ PORT: "0", HOST: "127.0.0.1", CRON_ENABLED: "false", CACHE_ENABLED: "false", METRICS_ENABLED: "true", METRICS_PORT: "0", ...settings });
  const inst = await startInstance(loadConfig(env), { logger: createLogger("silent", {}) });
  started.push(inst);
  const json = { "content-type": "application/json" };
  const reg = await fetch(`${inst.url}/api/v1/users`, { method: "POST", headers: json, body: JSON.stringify({ email: `${name}@example.com`, password: "password-1", full_name: name }) });
  const { id } = (await reg.json()) as { id: number };
  const login = await fetch(`${inst.url}/api/v1/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ email: `${name}@example.com`, password: "password-1" }) });
  const token = ((await login.json()) as { access_token: string }).access_token;
  const metric = async (metricName: string) => Number(new RegExp(`^${metricName} (\\d+)$`, "m").exec(await (await fetch(inst.metricsUrl!)).text())?.[1]);
  return { env, inst, json, id, token, metric };
}

describe("the write lane", () => {
  test("lets `concurrency` writes in, the next one when a write leaves; reads and hashing routes pass", async () => {
    const lane = writeLane(2, 60_000, new Set(["POST /api/v1/auth/login"]));
    expect(lane.applies("GET", URL_)).toBe(false);
    expect(lane.applies("POST", "http://localhost/api/v1/auth/login")).toBe(false);
    expect(lane.applies("POST", URL_)).toBe(true);
    expect(lane.applies("DELETE", "http://localhost/api/v1/users/1")).toBe(true);
    const a = lane.enter() as () => void;
    const b = lane.enter() as () => void;
    let third: (() => void) | undefined;
    void Promise.resolve(lane.enter()).then((leave) => (third = leave));
    await Bun.sleep(20);
    expect(third).toBeUndefined();
    expect(lane.stats()).toEqual({ inFlight: 2, waiting: 1, overflowed: 0 });
    a();
    a(); // leaving twice frees one turn only
    await waitUntil(() => third !== undefined);
    expect(lane.stats()).toEqual({ inFlight: 2, waiting: 0, overflowed: 0 });
    b();
    third!();
    expect(lane.stats()).toEqual({ inFlight: 0, waiting: 0, overflowed: 0 });
    expect(writeLane(0, 1_000).applies("POST", URL_)).toBe(false);
  });

  test("hands a turn over on a later turn of the event loop: what arrived while a write ran goes before the next write", async () => {
    const lane = writeLane(1, 60_000);
    const first = lane.enter() as () => void;
    const order: string[] = [];
    const writes = [1, 2, 3].map((i) =>
      Promise.resolve(lane.enter()).then((leave) => {
        order.push(`write ${i}`);
        // Stands for a request that came in while this write ran: the loop dispatches it on its next turn.
        setImmediate(() => order.push(`arrived during write ${i}`));
        leave();
      }),
    );
    first();
    await Promise.all(writes);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["write 1", "arrived during write 1", "write 2", "arrived during write 2", "write 3", "arrived during write 3"]);
    expect(lane.stats()).toEqual({ inFlight: 0, waiting: 0, overflowed: 0 });
  });

  test("a write that waited maxWaitMs goes in anyway", async () => {
    const lane = writeLane(1, 50);
    const first = lane.enter() as () => void;
    const second = await lane.enter();
    expect(lane.stats()).toEqual({ inFlight: 2, waiting: 0, overflowed: 1 });
    first();
    second();
  });

  test("after an overflow, a write leaving lets the next in only once the lane is back under its bound", async () => {
    const lane = writeLane(1, 50);
    const first = lane.enter() as () => void;
    const overflowed = await lane.enter(); // waited 50 ms, went in past the bound: 2 in flight
    const third = lane.enter() as Promise<() => void>;
    let thirdIn = false;
    void third.then(() => (thirdIn = true));
    first(); // 1 in flight: still at the bound, the third keeps waiting
    await Promise.resolve();
    expect(thirdIn).toBe(false);
    expect(lane.stats()).toMatchObject({ inFlight: 1, waiting: 1 });
    overflowed(); // 0 in flight: the third goes in
    (await third)();
    expect(lane.stats()).toMatchObject({ inFlight: 0, waiting: 0 });
  });

  for (const driver of ["bun:sqlite", "libsql"] as const satisfies readonly Driver[]) {
    test(`a write gives its turn back when it commits, not when it is answered (${driver})`, async () => {
      const database = await openDatabase(`file:${join(tempDir("lane-"), "app.db")}`, { setWal: true, driver });
      opened.push(database);
      await runMigrations(database);
      const lane = writeLane(1, 60_000);
      let answer!: () => void;
      const redisAnswers = new Promise<void>((r) => (answer = r));
      const steps: string[] = [];
      const first = inTurn(lane.enter() as () => void, async () => {
        await Bun.sleep(1);
        steps.push("first: before its write");
        await database.write((tx) => q(usersRepo.insert(tx, { email: "turn@example.com", passwordHash: "h", fullName: "T" })));
        steps.push("first: committed");
        await redisAnswers; // what is left: the invalidation, waiting on the network
        steps.push("first: answered");
      });
      const second = Promise.resolve(lane.enter()).then((leave) => inTurn(leave, async () => steps.push("second: in")));
      await waitUntil(() => steps.includes("second: in"), 5_000, "the second write's turn");
      // The second went in after the first's commit (the same tick), while the first still waits on its I/O.
      expect(steps.slice(0, 1)).toEqual(["first: before its write"]);
      expect(new Set(steps)).toEqual(new Set(["first: before its write", "first: committed", "second: in"]));
      answer();
      await Promise.all([first, second]);
      expect(lane.stats()).toEqual({ inFlight: 0, waiting: 0, overflowed: 0 });
    });
  }

  for (const driver of ["bun:sqlite", "libsql"] as const satisfies readonly Driver[]) {
    test(`a failure after COMMIT (giving the turn back) never turns a stored write into an error (${driver})`, async () => {
      const database = await openDatabase(`file:${join(tempDir("lane-"), "app.db")}`, { setWal: true, driver });
      opened.push(database);
      await runMigrations(database);
      const giveBack = () => {
        throw new Error("a defect in giving the turn back");
      };
      const stored = await holdingTurn(giveBack, () => database.write((tx) => q(usersRepo.insert(tx, { email: "after@example.com", passwordHash: "h", fullName: "A" }))));
      expect(stored?.email).toBe("after@example.com");
    });
  }

  test("a write whose transaction fails keeps its turn until it is answered; a commit outside any turn gives nothing back", async () => {
    const database = await openDatabase(`file:${join(tempDir("lane-"), "app.db")}`, { setWal: true });
    opened.push(database);
    await runMigrations(database);
    const insert = () => database.write((tx) => q(usersRepo.insert(tx, { email: "dup@example.com", passwordHash: "h", fullName: "D" })));
    await insert(); // outside any turn: nothing to give back
    const lane = writeLane(1, 60_000);
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    const failing = inTurn(lane.enter() as () => void, async () => {
      expect(await insert().then(() => "stored", () => "refused")).toBe("refused"); // duplicate email: rolled back
      await answered;
    });
    let nextIn = false;
    const next = Promise.resolve(lane.enter()).then((leave) => inTurn(leave, async () => void (nextIn = true)));
    await Bun.sleep(20);
    expect(nextIn).toBe(false);
    expect(lane.stats()).toEqual({ inFlight: 1, waiting: 1, overflowed: 0 });
    answer();
    await Promise.all([failing, next]);
    expect(nextIn).toBe(true);
    expect(lane.stats()).toEqual({ inFlight: 0, waiting: 0, overflowed: 0 });
  });

  test("through the server: a write with an Idempotency-Key keeps its turn past the key's claim (two password changes never hash at once)", async () => {
    const env = testEnv({ PORT: "0", HOST: "127.0.0.1", CRON_ENABLED: "false", CACHE_ENABLED: "false", WRITE_CONCURRENCY: "1", WRITE_LANE_WAIT_MS: "60000" });
    const inst = await startInstance(loadConfig(env), { logger: createLogger("silent", {}) });
    started.push(inst);
    const json = { "content-type": "application/json" };
    const users: { id: number; token: string }[] = [];
    for (const i of [1, 2]) {
      const reg = await fetch(`${inst.url}/api/v1/users`, { method: "POST", headers: json, body: JSON.stringify({ email: `keyed${i}@example.com`, password: "password-1", full_name: "K" }) });
      const login = await fetch(`${inst.url}/api/v1/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ email: `keyed${i}@example.com`, password: "password-1" }) });
      users.push({ id: ((await reg.json()) as { id: number }).id, token: ((await login.json()) as { access_token: string }).access_token });
    }
    // Counts the hashes running at once (the gate itself lets 8 run).
    const gate = inst.deps.hashing;
    const run = gate.run.bind(gate);
    let now = 0;
    let most = 0;
    gate.run = async (f) => {
      most = Math.max(most, ++now);
      try {
        return await run(f);
      } finally {
        now--;
      }
    };
    const answers = await Promise.all(
      users.map((u) =>
        fetch(`${inst.url}/api/v1/users/${u.id}`, {
          method: "PATCH",
          headers: { ...json, authorization: `Bearer ${u.token}`, "idempotency-key": `keyed-${u.id}` },
          body: JSON.stringify({ password: "password-2" }),
        }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(most).toBe(1);
  });

  test("through the server: a write whose body is still arriving holds no turn, the fast way or the app's", async () => {
    const { inst, json, id, token, metric } = await servedWithUser({ WRITE_CONCURRENCY: "1", WRITE_LANE_WAIT_MS: "60000" }, "slow");
    // Headers and the start of a body: the client is still sending it. A declared length goes the fast way; a
    // chunked body, or one with an Idempotency-Key, the app's.
    const slow = await Promise.all(
      ["Content-Length: 100\r\n\r\n{\"full_name\":", "Transfer-Encoding: chunked\r\n\r\nd\r\n{\"full_name\":\r\n", "Idempotency-Key: slow\r\nContent-Length: 100\r\n\r\n{\"full_name\":"].map(async (rest) => {
        const socket = await Bun.connect({ hostname: "127.0.0.1", port: inst.server.port!, socket: { data() {} } });
        socket.write(`PATCH /api/v1/users/${id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\n${rest}`);
        return socket;
      }),
    );
    try {
      await Bun.sleep(300);
      expect(await metric("http_writes_in_flight")).toBe(0);
      const other = fetch(`${inst.url}/api/v1/users/${id}`, { method: "PATCH", headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify({ full_name: "Other" }) });
      const status = await Promise.race([other.then((r) => r.status), Bun.sleep(15_000).then(() => "still waiting for a turn")]);
      expect(status).toBe(200);
    } finally {
      for (const socket of slow) socket.end();
    }
  });

  test("through the server: with the database locked elsewhere, two writes are in the app, the rest wait, reads answer, and every write is stored once the lock goes", async () => {
    const { env, inst, json, id, token, metric } = await servedWithUser({ WRITE_CONCURRENCY: "2", WRITE_LANE_WAIT_MS: "30000", DB_WRITE_WAIT_MS: "20000" }, "lane");

    const lock = await holdWriteLock(env.DATABASE_URL!.slice("file:".length));
    const posts = Array.from({ length: 6 }, (_, i) =>
      fetch(`${inst.url}/api/v1/users/${id}/posts`, { method: "POST", headers: { ...json, authorization: `Bearer ${token}` }, body: JSON.stringify({ title: `t${i}`, content: "c" }) }),
    );
    try {
      await waitUntil(async () => (await metric("http_writes_waiting")) === 4, 10_000, "four writes waiting");
      expect(await metric("http_writes_in_flight")).toBe(2);
      const read = await fetch(`${inst.url}/api/v1/users/${id}`, { headers: { authorization: `Bearer ${token}` } });
      expect(read.status).toBe(200);
    } finally {
      await lock.release();
    }
    expect((await Promise.all(posts)).map((r) => r.status)).toEqual(Array(6).fill(201));
    const page = await fetch(`${inst.url}/api/v1/users/${id}/posts?limit=100`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await page.json()) as { total: number }).total).toBe(6);
    expect(await metric("http_writes_in_flight")).toBe(0);
    expect(await metric("http_writes_overflowed_total")).toBe(0);
  }, 60_000);
});
