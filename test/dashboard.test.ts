// GET /admin through app.handle: the page, its headers, and its absence from the OpenAPI document.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { makeApp, type TestApp, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

let t: TestApp;
beforeAll(async () => {
  t = await makeApp();
});
afterAll(async () => {
  await t.close();
});

const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`;

/** The text of every inline element `tag` in the page. */
function inline(html: string, tag: "script" | "style"): string[] {
  return [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
}

/** The CSP as directive name -> sources. */
function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp.split(";").map((d) => d.trim()).filter(Boolean).map((d) => {
      const [name, ...sources] = d.split(/\s+/);
      return [name!, sources];
    }),
  );
}

describe("GET /admin", () => {
  test("serves the dashboard as HTML, uncached, with the sign-in form", async () => {
    const res = await t.request("GET", "/admin");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/html");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const html = await res.text();
    expect(html).toStartWith("<!doctype html>");
    expect(html).toContain('<form id="login-form" method="post"');
    expect(html).toContain('<input id="email" name="email" type="email"');
    expect(html).toContain('<input id="password" name="password" type="password"');
    expect(html).toContain('id="signout"');
    // Self-contained: nothing is loaded from elsewhere.
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+stylesheet|https?:\/\//);
    // Values are rendered as text, never parsed as markup.
    expect(html).not.toContain("innerHTML");
    expect(html).not.toContain("insertAdjacentHTML");
  });

  test("the Content-Security-Policy allows exactly the page's own inline script and style, by hash", async () => {
    const res = await t.request("GET", "/admin");
    const html = await res.text();
    const csp = directives(res.headers.get("content-security-policy") ?? "");
    const scripts = inline(html, "script");
    const styles = inline(html, "style");
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    expect(csp.get("default-src")).toEqual(["'none'"]);
    expect(csp.get("script-src")).toEqual([sha256(scripts[0]!)]);
    expect(csp.get("style-src")).toEqual([sha256(styles[0]!)]);
    expect(csp.get("connect-src")).toEqual(["'self'"]);
    expect(csp.get("form-action")).toEqual(["'none'"]);
    expect(csp.get("frame-ancestors")).toEqual(["'none'"]);
    expect(csp.get("base-uri")).toEqual(["'none'"]);
    const all = [...csp.values()].flat();
    expect(all).not.toContain("'unsafe-inline'");
    expect(all).not.toContain("'unsafe-eval'");
  });

  test("is answered to anyone, without a token, and the page's data calls are the admin endpoints", async () => {
    const res = await t.request("GET", "/admin", { token: "not-a-token" });
    expect(res.status).toBe(200);
    const html = await res.text();
    for (const path of ["/api/v1/auth/login", "/cluster/stats", "/cache/stats", "/api/v1/admin/cron", '"/health"']) {
      expect(html).toContain(path);
    }
    expect(html).toContain("sessionStorage");
    expect(html).not.toContain("localStorage");
  });

  test("is not in the OpenAPI document", async () => {
    const { status, body } = await t.json("GET", "/swagger/json");
    expect(status).toBe(200);
    expect(Object.keys(body.paths).length).toBeGreaterThan(0);
    expect(body.paths["/admin"]).toBeUndefined();
  });
});
