// The API docs page in Debian's Chromium (playwright-core), offline: every request the page makes outside this
// instance is blocked and recorded (there must be none), CSP violations and script errors fail the test, and the
// operations of the document must be listed, at /swagger and at /swagger/. Screenshots go to .tmp/.
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import type { RunningInstance } from "../src/main/serve.ts";
import { REDIS_URL, TMP, serveApp, TEST_TIMEOUT_MS } from "./helpers.ts";
import { chromiumSuite } from "./support/chromium.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const suite = chromiumSuite("docs");
let instance: RunningInstance;
let browser: BrowserContext;
let operationIds: string[];
const blocked: string[] = [];

beforeAll(async () => {
  instance = await serveApp({ REDIS_URL }, suite.dir);
  suite.onClose(() => instance.stop());
  const doc = (await (await fetch(`${instance.url}/swagger/json`)).json()) as { paths: Record<string, Record<string, { operationId: string }>> };
  operationIds = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
  browser = await suite.launch({ width: 1280, height: 1000 });
  // No internet: only this instance answers; anything else is refused and remembered.
  const local = new URL(instance.url).host;
  await browser.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.host === local || url.protocol === "data:") return route.continue();
    blocked.push(route.request().url());
    return route.abort("internetdisconnected");
  });
}, 60_000);

describe("API docs page offline", () => {
  test.each([["/swagger"], ["/swagger/"]])("%s lists every operation with no outside request, no CSP violation, no error", async (path) => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error" || /Content Security Policy/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
    const res = await page.goto(`${instance.url}${path}`);
    expect(res?.status()).toBe(200);
    const csp = res?.headers()["content-security-policy"] ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");

    await page.locator(".opblock").first().waitFor({ state: "visible", timeout: 45_000 });
    await page.waitForFunction((n) => document.querySelectorAll(".opblock").length >= n, operationIds.length, { timeout: 45_000 });
    const shown = await page.$$eval(".opblock .opblock-summary-operation-id", (els) => els.map((e) => e.textContent?.trim() ?? ""));
    expect(shown.sort()).toEqual([...operationIds].sort());
    expect(await page.textContent(".info .title")).toContain("neodyme-edge");

    // One operation opened: its parameter is the documented integer.
    await page.click("#operations-users-getUserDetail .opblock-summary");
    await page.locator("#operations-users-getUserDetail .parameters").waitFor({ state: "visible", timeout: 10_000 });
    expect(await page.textContent("#operations-users-getUserDetail .parameters")).toContain("integer");

    await page.screenshot({ path: join(TMP, `swagger-ui${path.endsWith("/") ? "-slash" : ""}.png`), fullPage: false });
    expect(problems).toEqual([]);
    expect(blocked).toEqual([]);
    await page.close();
  }, 120_000);

  test("the assets come from the pinned swagger-ui-dist; an unknown asset is a 404 problem", async () => {
    const pinned = (await import("../package.json", { with: { type: "json" } })).default.dependencies["swagger-ui-dist"];
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    const bundle = await fetch(`${instance.url}/swagger/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get("content-type")).toContain("javascript");
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
    const missing = await fetch(`${instance.url}/swagger/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
  });
});
