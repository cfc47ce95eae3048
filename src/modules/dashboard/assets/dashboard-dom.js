// The dashboard's DOM and formatting helpers, shared by dashboard-ops.js and dashboard.js (one inline script:
// the three files are joined in that order by page.ts). Every value goes through textContent, never markup.
"use strict";

/** Builds an element; `text` goes through textContent, children are nodes or strings (text nodes). */
function h(tag, opts, ...children) {
  const e = document.createElement(tag);
  if (opts) {
    if (opts.cls) e.className = opts.cls;
    if (opts.text !== undefined && opts.text !== null) e.textContent = String(opts.text);
    if (opts.title) e.title = String(opts.title);
    if (opts.data) for (const [k, v] of Object.entries(opts.data)) e.dataset[k] = String(v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// ---- formatting -------------------------------------------------------------------------------------

const intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const int = (v) => (isNum(v) ? intFmt.format(v) : "—");
const pct = (v) => (isNum(v) ? dec1.format(v) + " %" : "—");
const ms = (v) => (isNum(v) ? (v < 10 ? v.toFixed(2) : dec1.format(v)) + " ms" : "—");
const text = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));
const yesNo = (v) => (v === true ? "yes" : v === false ? "no" : "—");
/** hit_ratio is a fraction (0..1). */
const ratio = (v) => (isNum(v) ? pct(v * 100) : "—");

function relative(seconds) {
  const future = seconds < 0;
  const s = Math.abs(seconds);
  let out;
  if (s < 1) return "now";
  if (s < 90) out = Math.round(s) + " s";
  else if (s < 90 * 60) out = Math.round(s / 60) + " min";
  else if (s < 36 * 3600) out = Math.round(s / 3600) + " h";
  else out = Math.round(s / 86400) + " d";
  return future ? "in " + out : out + " ago";
}

/** A time cell: relative on top, the UTC time below, the ISO string as tooltip. */
function timeCell(iso, secondsAgo) {
  if (!iso) return h("td", { text: "—" });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("td", { text: String(iso) });
  const ago = isNum(secondsAgo) ? secondsAgo : (Date.now() - d.getTime()) / 1000;
  const utc = d.toISOString().replace("T", " ").slice(0, 19) + " UTC";
  return h("td", { title: d.toISOString() }, relative(ago), h("span", { cls: "sub", text: utc }));
}

function tone(status) {
  const s = String(status).toLowerCase();
  if (["ok", "up", "healthy", "completed", "success", "succeeded", "primary", "yes", "true"].includes(s)) return "ok";
  if (["degraded", "running", "retrying", "pending", "skipped", "stale"].includes(s)) return "warn";
  if (["down", "failed", "failure", "error", "unhealthy", "no", "false", "timeout"].includes(s)) return "bad";
  return "";
}
const badge = (value) => h("span", { cls: ("badge " + tone(value)).trim(), text: text(value) });

function table(columns, rows) {
  const head = h("tr", null, ...columns.map((c) => h("th", { cls: c.num ? "num" : "", text: c.label })));
  return h("table", null, h("thead", null, head), h("tbody", null, ...rows));
}
const td = (value, cls) => h("td", { cls: cls || "", text: value });
const stat = (label, value, key) => h("div", { cls: "stat", data: { stat: key } }, h("span", { cls: "label", text: label }), h("span", { cls: "value", text: value }));
function kvGroup(title, pairs, key) {
  const dl = h("dl", { cls: "kv" });
  for (const [k, v] of pairs) dl.append(h("dt", { text: k }), h("dd", { text: v }));
  return h("div", { data: { group: key } }, h("h3", { text: title }), dl);
}
