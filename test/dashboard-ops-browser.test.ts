// The dashboard's operations panels in Debian's Chromium: jobs (a failed job retried and another discarded from
// the page, each after a confirmation, each audited in the log), breakers and scaler, the last hour's charts, and
// the cluster grouped by region with the primary marked while a second instance comes and goes. Screenshots in .tmp/.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { createLogger } from "../src/platform/observability/logger.ts";
import type { RunningInstance } from "../src/main/serve.ts";
import { REDIS_URL, serveApp, testPrefix, TMP, TEST_TIMEOUT_MS } from "./helpers.ts";
import { chromiumSuite } from "./support/chromium.ts";
import { startFaultyServer, type FaultyServer } from "./support/faulty-server.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const ADMIN = { email: "ops-panels@example.com", password: "admin-password-2" };

const suite = chromiumSuite("dash-ops");
let mail: FaultyServer;
let instance: RunningInstance;
let second: RunningInstance | undefined;
let browser: BrowserContext;
const logs: string[] = [];
const prefix = testPrefix("dash-ops");
const serve = (over: Record<string, string>, opts: Parameters<typeof serveApp>[2]) =>
  serveApp({ REDIS_URL, REDIS_PREFIX: prefix, HEARTBEAT_INTERVAL: "1", CRON_ENABLED: "false", ...over }, suite.dir, opts);

beforeAll(async () => {
  mail = startFaultyServer();
  suite.onClose(() => mail.close());
  mail.set({ kind: "fail", status: 400 });
  instance = await serve(
    { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, MAIL_API_URL: mail.url, JOB_MAX_RETRIES: "0", METRICS_ENABLED: "true", METRICS_PORT: "0", FLY_REGION: "ams", INSTANCE_ID: "ams-1" },
    { logger: createLogger("info", {}, (line) => logs.push(line)) },
  );
  suite.onClose(() => instance.stop());
  suite.onClose(() => second?.stop());
  for (const n of [1, 2]) {
    const r = await fetch(`${instance.url}/api/v1/users`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: `fails-${n}-${crypto.randomUUID().slice(0, 6)}@example.com`, password: "member-password-1", full_name: "F" }),
    });
    expect(r.status).toBe(201);
  }
  browser = await suite.launch({ width: 1280, height: 1400 });
}, 60_000);

async function signedIn(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of 4\d\d/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${instance.url}/admin`);
  await page.fill("#email", ADMIN.email);
  await page.fill("#password", ADMIN.password);
  await page.click("#login-submit");
  await page.locator("#dash-view").waitFor({ state: "visible", timeout: 15_000 });
  return { page, problems };
}

const failedRows = (page: Page) => page.locator("#panel-jobs tr[data-failed-job]");

describe("operations panels in Chromium", () => {
  test("failed jobs: retry and discard from the page, confirmed and audited; breakers and scaler shown", async () => {
    const { page, problems } = await signedIn();
    await page.waitForFunction(() => document.querySelectorAll("#panel-jobs tr[data-failed-job]").length >= 2, undefined, { timeout: 20_000 });
    expect(await page.textContent("#panel-jobs")).toContain("mail API answered 400");
    expect(Number(await page.textContent('#panel-jobs tr[data-type="send_welcome_email"] td[data-col="failed"]'))).toBeGreaterThanOrEqual(2);
    expect((await page.textContent('#panel-ops tr[data-breaker="mail_api"] .status'))?.trim()).toBe("closed");
    expect(await page.textContent('#panel-ops [data-stat="scaler-mode"] .value')).toBe("off");
    await page.screenshot({ path: join(TMP, "dashboard-ops-failed-jobs.png"), fullPage: true });

    const [first, other] = await failedRows(page).evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.failedJob!));
    mail.set({ kind: "ok" });
    // Dismissed: nothing happens. The page would send the retry right after confirm() returns, so a request it
    // makes later proves the moment has passed.
    const posted: string[] = [];
    const onRequest = (r: { method(): string; url(): string }) => void (r.method() === "POST" && posted.push(r.url()));
    page.on("request", onRequest);
    page.once("dialog", (d) => void d.dismiss());
    await page.click(`#panel-jobs button[data-action="retry"][data-job="${first}"]`);
    expect(await page.evaluate(() => fetch("/health/live", { cache: "no-store" }).then((r) => r.status))).toBe(200);
    page.off("request", onRequest);
    expect(posted).toEqual([]);
    expect(logs.some((l) => l.includes('"audit":true') && l.includes(first!))).toBe(false);
    // Accepted: retried as a new job, the row goes away, the audit line names the admin.
    page.once("dialog", (d) => {
      expect(d.message()).toContain(first!);
      void d.accept();
    });
    await page.click(`#panel-jobs button[data-action="retry"][data-job="${first}"]`);
    await page.waitForFunction(() => (document.getElementById("action-result")?.textContent ?? "").includes("retried as"), undefined, { timeout: 10_000 });
    await page.waitForFunction((id) => !document.querySelector(`#panel-jobs tr[data-failed-job="${id}"]`), first, { timeout: 10_000 });
    const audit = logs.map((l) => JSON.parse(l)).find((l) => l.audit === true && l.action === "retry" && l.job_id === first);
    expect(audit).toMatchObject({ by_user: expect.any(Number), new_job_id: expect.any(String) });

    page.once("dialog", (d) => void d.accept());
    await page.click(`#panel-jobs button[data-action="discard"][data-job="${other}"]`);
    await page.waitForFunction((id) => !document.querySelector(`#panel-jobs tr[data-failed-job="${id}"]`), other, { timeout: 10_000 });
    expect(await page.textContent("#action-result")).toContain("discarded");
    expect(logs.some((l) => l.includes('"action":"discard"') && l.includes(other!))).toBe(true);
    await page.screenshot({ path: join(TMP, "dashboard-ops-after-actions.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  test("the cluster is grouped by region with the primary marked; an instance that goes away leaves the table", async () => {
    second = await serve({ FLY_REGION: "syd", INSTANCE_ID: "syd-1", METRICS_ENABLED: "false" }, { logger: createLogger("silent") });
    const { page, problems } = await signedIn();
    await page.waitForSelector('#panel-cluster tr[data-instance="syd-1"]', { timeout: 15_000 });
    const regions = await page.locator("#panel-cluster tr.region-row").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.region));
    expect(regions).toEqual(["ams", "syd"]);
    expect(await page.textContent('#panel-cluster tr[data-instance="ams-1"]')).toContain("primary");
    await page.screenshot({ path: join(TMP, "dashboard-ops-two-regions.png"), fullPage: true });
    await second.stop();
    second = undefined;
    await page.waitForSelector('#panel-cluster tr[data-instance="syd-1"]', { state: "detached", timeout: 15_000 });
    expect(await page.locator("#panel-cluster tr.region-row").count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  test("the last hour: charts appear once the first point is sampled", async () => {
    const { page, problems } = await signedIn();
    await page.waitForSelector('#panel-history figure[data-chart="Requests"] :is(path, circle)', { timeout: 25_000 });
    for (const name of ["Requests", "Latency", "Errors (5xx)", "Cache hit ratio (L1)", "Queue depth"]) {
      expect(await page.locator(`#panel-history figure[data-chart="${name}"]`).count()).toBe(1);
    }
    await page.screenshot({ path: join(TMP, "dashboard-ops-history.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  test("the cluster's last hour: every instance's from its heartbeat, regions grouped, the primary marked, replica lag shown", async () => {
    second = await serve({ FLY_REGION: "syd", INSTANCE_ID: "syd-2", METRICS_ENABLED: "true", METRICS_PORT: "0" }, { logger: createLogger("silent") });
    // Traffic on syd-2 only: its own sampler takes the first point after one step, its next beat carries it.
    const load = setInterval(() => void fetch(`${second!.url}/health/live`).catch(() => undefined), 20);
    try {
      const { page, problems } = await signedIn();
      await page.waitForFunction(() => {
        const cell = document.querySelector('#panel-history tr[data-history-instance="syd-2"] td[data-col="rps"]');
        return cell !== null && parseFloat(cell.textContent ?? "") > 0;
      }, undefined, { timeout: 30_000 });
      const regions = await page.locator("#panel-history tr.region-row").evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.region));
      expect(regions).toEqual(["ams", "syd"]);
      expect(await page.textContent('#panel-history tr[data-history-instance="ams-1"]')).toContain("primary");
      expect((await page.textContent('#panel-history tr[data-history-instance="ams-1"] td[data-col="lag"]'))?.trim()).toBe("0.0 s");
      expect((await page.textContent('#panel-cluster tr[data-instance="syd-2"] td[data-col="lag"]'))?.trim()).toBe("0.0 s");
      // The cluster's charts by default; then syd-2's own, picked from the list.
      expect(await page.locator('#panel-history [data-history-charts="cluster"] figure[data-chart="Requests"] :is(path, circle)').count()).toBe(1);
      await page.selectOption("#panel-history select[data-history-scope]", "instance:syd-2");
      await page.waitForSelector('#panel-history [data-history-charts="instance:syd-2"] figure[data-chart="Latency"] :is(path, circle)', { timeout: 10_000 });
      await page.screenshot({ path: join(TMP, "dashboard-ops-cluster-history.png"), fullPage: true });
      // The choice survives the next poll: its end is marked by the "updated" line, cleared here beforehand.
      await page.evaluate(() => void (document.getElementById("updated")!.textContent = ""));
      await page.click("#refresh");
      await page.waitForFunction(() => (document.getElementById("updated")?.textContent ?? "") !== "", undefined, { timeout: 10_000 });
      expect(await page.locator('#panel-history [data-history-charts="instance:syd-2"]').count()).toBe(1);
      // The API behind it: the cluster's request rate is at least syd-2's.
      const ops = await page.evaluate(async () => {
        const r = await fetch("/api/v1/admin/operations", { headers: { authorization: `Bearer ${sessionStorage.getItem("neodyme.dashboard.token") ?? ""}` } });
        return { status: r.status, body: await r.json() };
      });
      expect(ops.status).toBe(200);
      const last = (pts: { t: string; rps: number | null }[]) => [...pts].reverse().find((p) => p.rps !== null);
      const sydLast = last(ops.body.cluster_history.instances.find((i: { id: string }) => i.id === "syd-2").points)!;
      const clusterAt = ops.body.cluster_history.cluster.find((p: { t: string }) => p.t === sydLast.t);
      expect(sydLast.rps).toBeGreaterThan(0);
      expect(clusterAt.rps).toBeGreaterThanOrEqual(sydLast.rps!);
      clearInterval(load);
      await second.stop();
      second = undefined;
      await page.waitForSelector('#panel-history tr[data-history-instance="syd-2"]', { state: "detached", timeout: 15_000 });
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      clearInterval(load);
    }
  }, 90_000);
});
