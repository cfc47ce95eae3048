// Clients in every region at once, each through its own region's edge: detail reads of hot and cold ids, posts
// pages, /users/me, writes (posts, preferences) and logins, bounded by a request count and a deadline.
import { LAB_PASSWORD, type Lab } from "./topology.ts";

export type Kind = "read_hot" | "read_cold" | "posts" | "me" | "write_post" | "write_prefs" | "login";

export interface Sample {
  kind: Kind;
  ms: number;
  status: number;
  /** x-cache of a detail read (hit-l1, hit-l2, miss, stale). */
  cache: string | null;
}

const MIX: [Kind, number][] = [
  ["read_hot", 40],
  ["read_cold", 22],
  ["posts", 10],
  ["me", 10],
  ["write_post", 8],
  ["write_prefs", 8],
  ["login", 2],
];

export interface Caller {
  id: number;
  token: string;
}

/** Logs in `n` users straight at the primary (setup, not measured). */
export async function login(lab: Lab, email: string): Promise<string> {
  const res = await fetch(`${lab.primary.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email, password: LAB_PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export async function callersFor(lab: Lab, region: number, n: number): Promise<Caller[]> {
  const out: Caller[] = [];
  for (let i = 0; i < n; i++) {
    const id = lab.seeded.ids[lab.seeded.ids.length - 1 - region * n - i]!;
    out.push({ id, token: await login(lab, lab.seeded.emailOf(id)) });
  }
  return out;
}

function pick(r: number): Kind {
  let acc = 0;
  const total = MIX.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of MIX) {
    acc += w / total;
    if (r < acc) return k;
  }
  return "read_hot";
}

export async function request(edge: string, kind: Kind, caller: Caller, lab: Lab, seq: number): Promise<Sample> {
  const ids = lab.seeded.ids;
  const auth = { authorization: `Bearer ${caller.token}` };
  const json = { ...auth, "content-type": "application/json" };
  let path: string;
  let init: RequestInit = { headers: auth };
  switch (kind) {
    case "read_hot":
      path = `/api/v1/users/${ids[seq % 10]}`;
      break;
    case "read_cold":
      path = `/api/v1/users/${ids[10 + Math.floor(Math.random() * (ids.length - 10))]}`;
      break;
    case "posts":
      path = `/api/v1/users/${ids[Math.floor(Math.random() * ids.length)]}/posts?page=1&limit=10`;
      break;
    case "me":
      path = "/api/v1/users/me";
      break;
    case "write_post":
      path = `/api/v1/users/${caller.id}/posts`;
      init = { method: "POST", headers: json, body: JSON.stringify({ title: `t${seq}`, content: "lab" }) };
      break;
    case "write_prefs":
      path = `/api/v1/users/${caller.id}/preferences`;
      init = { method: "PATCH", headers: json, body: JSON.stringify({ n: seq }) };
      break;
    case "login":
      path = "/api/v1/auth/login";
      init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ email: lab.seeded.emailOf(caller.id), password: LAB_PASSWORD }) };
      break;
  }
  const t0 = performance.now();
  try {
    const res = await fetch(edge + path, { ...init, signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    return { kind, ms: performance.now() - t0, status: res.status, cache: res.headers.get("x-cache") };
  } catch {
    return { kind, ms: performance.now() - t0, status: 599, cache: null };
  }
}

/** Runs `requests` requests from `concurrency` clients in one region (or until the deadline). */
export async function runRegion(lab: Lab, region: string, callers: Caller[], opts: { requests: number; concurrency: number; deadline: number; kinds?: Kind[] }): Promise<Sample[]> {
  const edge = lab.edgeUrl(region);
  const samples: Sample[] = [];
  let issued = 0;
  const worker = async (w: number) => {
    while (issued < opts.requests && performance.now() < opts.deadline) {
      const seq = issued++;
      const kind = opts.kinds ? opts.kinds[seq % opts.kinds.length]! : pick(Math.random());
      samples.push(await request(edge, kind, callers[(w + seq) % callers.length]!, lab, seq));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  return samples;
}

export function pct(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const round1 = (n: number) => Math.round(n * 10) / 10;
