// The dashboard end to end: a real server in this process on a free port, Debian's Chromium driven by
// playwright-core, an admin and a non-admin signing in through the page. Screenshots go to .tmp/.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import type { RunningInstance } from "../src/main/serve.ts";
import { REDIS_URL, TMP, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { chromiumSuite } from "./support/chromium.ts";
import { waitUntil } from "./support/wait.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const TOKEN_KEY = "neodyme.dashboard.token";
const ADMIN = { email: "ops-admin@example.com", password: "admin-password-1" };
const MEMBER = { email: "ops-member@example.com", password: "member-password-1" };
const ADMIN_PANELS = [
  { id: "panel-cluster", path: "/cluster/stats" },
  { id: "panel-cache", path: "/cache/stats" },
  { id: "panel-cron", path: "/api/v1/admin/cron" },
] as const;

const suite = chromiumSuite("dashboard");
let instance: RunningInstance;
let browser: BrowserContext;

beforeAll(async () => {
  instance = await serveApp({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, REDIS_URL }, suite.dir);
  suite.onClose(() => instance.stop());
  const reg = await fetch(`${instance.url}/api/v1/users`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...MEMBER, full_name: "Ops Member" }),
  });
  expect(reg.status).toBe(201);
  browser = await suite.launch();
}, 60_000);

interface Watched {
  page: Page;
  /** Uncaught exceptions and console errors, except the browser's own "Failed to load resource" lines for 4xx answers. */
  problems: string[];
  requests: string[];
}

async function openDashboard(): Promise<Watched> {
  const page = await browser.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
      problems.push(`console: ${msg.text()}`);
    }
  });
  page.on("request", (req) => requests.push(new URL(req.url()).pathname));
  const res = await page.goto(`${instance.url}/admin`);
  expect(res?.status()).toBe(200);
  return { page, problems, requests };
}

async function signIn(page: Page, who: { email: string; password: string }): Promise<void> {
  await page.fill("#email", who.email);
  await page.fill("#password", who.password);
  await page.click("#login-submit");
  await page.locator("#dash-view").waitFor({ state: "visible", timeout: 15_000 });
}

/** Waits until the panel has left its loading state, and returns the state it settled in. */
async function settled(page: Page, id: string): Promise<string> {
  await page.waitForFunction((pid) => document.getElementById(pid)?.dataset.state !== "loading", id, { timeout: 15_000 });
  return (await page.getAttribute(`#${id}`, "data-state")) ?? "";
}

const statusOf = async (path: string, token: string) =>
  (await fetch(`${instance.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status;

describe("operations dashboard in Chromium", () => {
  test("an admin signs in: the token stays in sessionStorage, health shows the database ok, every panel settles", async () => {
    const { page, problems, requests } = await openDashboard();
    await expect(page.locator("#login-form").isVisible()).resolves.toBe(true);
    await signIn(page, ADMIN);

    expect(await settled(page, "panel-health")).toBe("ok");
    expect((await page.textContent('#panel-health tr[data-check="database"] .status'))?.trim()).toBe("ok");
    expect((await page.textContent('#panel-health tr[data-check="redis"] .status'))?.trim()).toBe("ok");
    expect((await page.textContent('#panel-health [data-stat="instance"] .value'))?.trim()).toBe(instance.deps.config.INSTANCE_ID);
    await page.waitForFunction(() => document.getElementById("who")?.textContent !== "");
    expect(await page.textContent("#who")).toBe(ADMIN.email);

    // The token is where the page says, and nowhere a URL or localStorage would keep it.
    const token = await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY);
    expect(token).toBeString();
    expect(token!.split(".")).toHaveLength(3);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(page.url()).toBe(`${instance.url}/admin`);
    expect(requests.some((p) => p.includes(token!) || p.includes(ADMIN.password))).toBe(false);

    // The admin endpoints are built in parallel: each panel shows its data when its endpoint answers 200,
    // and "not available" (without breaking the others) when it does not exist yet.
    for (const p of ADMIN_PANELS) {
      const status = await statusOf(p.path, token!);
      const state = await settled(page, p.id);
      expect({ path: p.path, state }).toEqual({ path: p.path, state: status === 200 ? "ok" : "unavailable" });
      if (state === "unavailable") expect(await page.textContent(`#${p.id} .panel-status`)).toBe("not available");
    }
    if ((await statusOf("/cluster/stats", token!)) === 200) {
      const body = (await (await fetch(`${instance.url}/cluster/stats`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
        total_instances: number;
      };
      expect(await page.textContent('#panel-cluster [data-stat="total"] .value')).toBe(String(body.total_instances));
    }
    expect(await page.isVisible("#notice")).toBe(false);

    // It keeps polling: a second round of requests arrives without any click.
    await page.waitForFunction(() => performance.getEntriesByName(new URL("/health", location.href).href).length >= 2, undefined, {
      timeout: 20_000,
    });

    await page.screenshot({ path: join(TMP, "dashboard-admin.png"), fullPage: true });
    expect(problems).toEqual([]);

    const signedIn = (await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY))!;
    await page.click("#signout");
    await page.locator("#login-view").waitFor({ state: "visible" });
    expect(await page.isVisible("#dash-view")).toBe(false);
    expect(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)).toBeNull();
    expect(await page.inputValue("#password")).toBe("");
    // Signing out ended the session on the server: the token no longer works anywhere.
    const after = () => fetch(`${instance.url}/api/v1/users/me`, { headers: { authorization: `Bearer ${signedIn}` } }).then((r) => r.status);
    await waitUntil(async () => (await after()) === 401, { timeoutMs: 5_000, intervalMs: 100 }, "the signed-out token to be refused");
    expect(await after()).toBe(401);
    await page.close();
  }, 60_000);

  test("a non-admin account sees that it is not an admin, and health still works", async () => {
    const { page, problems } = await openDashboard();
    await signIn(page, MEMBER);
    await page.locator("#notice").waitFor({ state: "visible", timeout: 15_000 });
    expect(await page.textContent("#notice")).toContain("not an admin");
    expect(await settled(page, "panel-health")).toBe("ok");
    expect((await page.textContent('#panel-health tr[data-check="database"] .status'))?.trim()).toBe("ok");

    const token = (await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY))!;
    for (const p of ADMIN_PANELS) {
      const status = await statusOf(p.path, token);
      const state = await settled(page, p.id);
      expect({ path: p.path, state }).toEqual({ path: p.path, state: status === 403 ? "forbidden" : "unavailable" });
      if (state === "forbidden") expect(await page.textContent(`#${p.id} .panel-body`)).toContain("not an admin");
    }
    // The notice must survive the poll's end (it is not only shown by /users/me and then cleared).
    await page.waitForFunction(() => document.getElementById("updated")?.textContent !== "");
    expect(await page.isVisible("#notice")).toBe(true);
    await page.screenshot({ path: join(TMP, "dashboard-non-admin.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  test("panels whose endpoint is missing, failing or unreachable show 'not available'; the others still render", async () => {
    const { page } = await openDashboard();
    // The browser, not the server, stands in for the broken endpoints: a 404, a 500 and a dropped connection.
    await page.route("**/cache/stats", (route) => route.fulfill({ status: 404, contentType: "application/problem+json", body: "{}" }));
    await page.route("**/cluster/stats", (route) => route.fulfill({ status: 500, contentType: "text/plain", body: "boom" }));
    await page.route("**/api/v1/admin/cron", (route) => route.abort("connectionrefused"));
    await signIn(page, ADMIN);
    expect(await settled(page, "panel-health")).toBe("ok");
    expect((await page.textContent('#panel-health tr[data-check="database"] .status'))?.trim()).toBe("ok");
    for (const [id, reason] of [
      ["panel-cache", "HTTP 404 from /cache/stats"],
      ["panel-cluster", "HTTP 500 from /cluster/stats"],
      ["panel-cron", "no answer"],
    ] as const) {
      expect(await settled(page, id)).toBe("unavailable");
      expect(await page.textContent(`#${id} .panel-status`)).toBe("not available");
      expect(await page.textContent(`#${id} .panel-body`)).toContain(reason);
    }
    // Still signed in, no "not an admin" notice: a failing panel is not an auth problem.
    expect(await page.isVisible("#dash-view")).toBe(true);
    expect(await page.isVisible("#notice")).toBe(false);
    await page.close();
  }, 60_000);

  test("a wrong password stays on the form with a message", async () => {
    const { page, problems } = await openDashboard();
    await page.fill("#email", ADMIN.email);
    await page.fill("#password", "not-the-password");
    await page.click("#login-submit");
    await page.locator("#login-error").waitFor({ state: "visible", timeout: 15_000 });
    expect(await page.textContent("#login-error")).toBe("Wrong email or password.");
    expect(await page.isVisible("#dash-view")).toBe(false);
    expect(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)).toBeNull();
    expect(page.url()).toBe(`${instance.url}/admin`);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  test("a token the server rejects (401) returns to the sign-in form", async () => {
    const { page, problems } = await openDashboard();
    await page.evaluate((k) => sessionStorage.setItem(k, "expired.or.forged"), TOKEN_KEY);
    await page.reload();
    await page.locator("#login-error").waitFor({ state: "visible", timeout: 15_000 });
    expect(await page.textContent("#login-error")).toContain("session has ended");
    expect(await page.isVisible("#login-view")).toBe(true);
    expect(await page.isVisible("#dash-view")).toBe(false);
    expect(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)).toBeNull();
    await page.screenshot({ path: join(TMP, "dashboard-signin.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);
});
