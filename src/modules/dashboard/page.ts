// Assembles the dashboard page once, at module load, from assets/ and derives its Content-Security-Policy:
// the inline <style> and <script> are allowed by their SHA-256 hashes, nothing else runs or loads.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

const read = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), "utf8");

const TEMPLATE = read("dashboard.html");
const STYLE = read("dashboard.css");
// One inline script: the shared helpers, the operations panels, then the page itself.
const SCRIPT = ["dashboard-dom.js", "dashboard-ops.js", "dashboard.js"].map(read).join("\n");

/** CSP source expression for an inline element's exact text. */
export function cspHash(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

function assemble(): { html: string; csp: string } {
  for (const [name, text, closer] of [["dashboard.css", STYLE, "</style"], ["dashboard.js", SCRIPT, "</script"]] as const) {
    // The text is inlined raw: a closing tag inside it would end the element early.
    if (text.toLowerCase().includes(closer) || text.includes("<!--")) throw new Error(`${name} must not contain ${closer} or <!--`);
  }
  if (!TEMPLATE.includes("/*STYLE*/") || !TEMPLATE.includes("/*SCRIPT*/")) throw new Error("dashboard.html lacks its placeholders");
  // Function replacers: the assets' `$` characters must not be read as replacement patterns.
  const html = TEMPLATE.replace("/*STYLE*/", () => STYLE).replace("/*SCRIPT*/", () => SCRIPT);
  const csp = [
    "default-src 'none'",
    `script-src ${cspHash(SCRIPT)}`,
    `style-src ${cspHash(STYLE)}`,
    "connect-src 'self'",
    "img-src data:",
    "base-uri 'none'",
    // The sign-in form is submitted by the script; without it nothing may be sent (no password in a URL).
    "form-action 'none'",
    "frame-ancestors 'none'",
    // The page builds its DOM with textContent only; this makes any innerHTML-style sink throw.
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join("; ");
  return { html, csp };
}

const PAGE = assemble();

export function dashboardPage(): { html: string; headers: Record<string, string> } {
  return {
    html: PAGE.html,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": PAGE.csp,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
    },
  };
}
