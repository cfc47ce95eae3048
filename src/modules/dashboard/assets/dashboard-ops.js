// The operations panels (GET /api/v1/admin/operations, fetched once per poll for all three): the job queue with
// retry and discard of failed jobs (confirmed, then audited by the server), this instance's last hour as small
// charts, and the circuit breakers with the scaler's last decisions. dashboard.js adds them to its panels.

function svg(tag, attrs) {
  // The SVG namespace, from an <svg> the HTML parser made (the page names no URL at all).
  const e = document.createElementNS(document.getElementById("svg-ns").namespaceURI, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

/** A small line chart of one or two series (nulls are gaps), its latest values as the caption. */
function chart(title, points, series, format) {
  const W = 260, H = 60;
  const values = points.flatMap((p) => series.map((s) => p[s.key])).filter(isNum);
  const max = Math.max(1e-9, ...values);
  const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": title });
  box.append(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
  const step = points.length > 1 ? W / (points.length - 1) : W;
  for (const s of series) {
    let d = "";
    points.forEach((p, i) => {
      const v = p[s.key];
      if (!isNum(v)) return;
      const x = (i * step).toFixed(1), y = (H - 2 - (v / max) * (H - 6)).toFixed(1);
      d += (d && isNum(points[i - 1] && points[i - 1][s.key]) ? " L" : " M") + x + " " + y;
    });
    if (d) box.append(svg("path", { d: d.trim(), class: "line " + s.cls }));
  }
  const last = points[points.length - 1] || {};
  const caption = series.map((s) => s.label + " " + format(last[s.key])).join(" · ");
  return h("figure", { cls: "chart", data: { chart: title } }, box, h("figcaption", null, h("strong", { text: title }), " " + caption));
}

function renderHistory(b) {
  if (!b || !b.history || !Array.isArray(b.history.points)) throw new Error("unexpected response");
  const pts = b.history.points;
  const head = h("p", { cls: "muted", text: "Instance " + text(b.instance_id) + " (" + text(b.region) + "), one point every " + int(b.history.step_seconds) + " s, last hour." });
  if (pts.length === 0) return [head, h("p", { cls: "empty", text: "Collecting: the first point comes after one step." })];
  const rate = (v) => (isNum(v) ? dec1.format(v) + "/s" : "—");
  return [head, h("div", { cls: "charts" },
    chart("Requests", pts, [{ key: "rps", label: "rate", cls: "a" }], rate),
    chart("Latency", pts, [{ key: "p50_ms", label: "p50", cls: "a" }, { key: "p99_ms", label: "p99", cls: "b" }], ms),
    chart("Errors (5xx)", pts, [{ key: "error_rate", label: "share", cls: "b" }], ratio),
    chart("Cache hit ratio (L1)", pts, [{ key: "cache_hit_ratio", label: "hits", cls: "a" }], ratio),
    chart("Queue depth", pts, [{ key: "queue_depth", label: "jobs", cls: "a" }], int))];
}

function renderJobs(b, ctx) {
  if (!b || !b.jobs) throw new Error("unexpected response");
  const j = b.jobs;
  const summary = h("div", { cls: "summary" },
    stat("Waiting", int(j.waiting), "waiting"),
    stat("Delayed", int(j.delayed), "delayed"),
    stat("Running here", int(j.running_here), "running"),
    stat("Failed", int(j.failed), "failed"));
  const out = [summary];
  if (!j.available) out.push(h("p", { cls: "empty", text: "The queue did not answer; counts are unknown." }));
  // Per type: the queue's counts (cluster-wide with Redis) beside this instance's own runs.
  const byType = Array.isArray(j.by_type) ? j.by_type : [];
  const types = [...new Set([...byType.map((r) => r.type), ...j.runs_here_by_type.map((r) => r.type)])].sort();
  if (types.length > 0) {
    const col = (v, name) => h("td", { cls: "num", text: int(v || 0), data: { col: name } });
    out.push(table([{ label: "Type" }, { label: "Waiting", num: true }, { label: "Delayed", num: true }, { label: "Running", num: true }, { label: "Failed", num: true },
      { label: "Completed here", num: true }, { label: "Retried here", num: true }, { label: "Deferred here", num: true }],
      types.map((t) => {
        const c = byType.find((x) => x.type === t) || {};
        const r = j.runs_here_by_type.find((x) => x.type === t) || {};
        return h("tr", { data: { type: t } }, td(t), col(c.waiting, "waiting"), col(c.delayed, "delayed"), col(c.running, "running"), col(c.failed, "failed"),
          col(r.completed, "completed-here"), col(r.retry, "retried-here"), col(r.deferred, "deferred-here"));
      })));
    if (j.by_type_complete === false && j.available) out.push(h("p", { cls: "muted", text: "Long queue: the per-type counts cover its oldest jobs; the totals above are exact." }));
  }
  if (j.failed_jobs.length === 0) {
    out.push(h("p", { cls: "empty", text: "No failed job retained." }));
    return out;
  }
  const act = (job, action) => {
    const b = h("button", { cls: "small", text: action === "retry" ? "Retry" : "Discard", data: { action, job: job.id } });
    b.type = "button";
    b.addEventListener("click", () => ctx.jobAction(job, action, b));
    return b;
  };
  out.push(h("h3", { cls: "sub-head", text: "Failed jobs" }), table(
    [{ label: "Job" }, { label: "Type" }, { label: "Last error" }, { label: "Attempts", num: true }, { label: "Created" }, { label: "Failed" }, { label: "" }],
    j.failed_jobs.map((job) => h("tr", { data: { failedJob: job.id } },
      td(job.id), td(job.type), td(text(job.error_message), "wrap"), td(int(job.retry_count + 1), "num"),
      timeCell(job.created_at), timeCell(job.completed_at), h("td", { cls: "actions" }, act(job, "retry"), act(job, "discard"))))));
  return out;
}

const OUTCOME_TONE = { ok: "ok", "dry-run": "", blocked: "warn", error: "bad" };

function renderBreakersScaler(b) {
  if (!b || !Array.isArray(b.breakers) || !b.scaler) throw new Error("unexpected response");
  const stateTone = { closed: "ok", half_open: "warn", open: "bad" };
  const breakers = b.breakers.length === 0
    ? h("p", { cls: "empty", text: "No outbound dependency guarded on this instance." })
    : table([{ label: "Dependency" }, { label: "State" }, { label: "Since" }, { label: "Failures", num: true }, { label: "Refused", num: true }, { label: "Opened", num: true }],
      b.breakers.map((x) => h("tr", { data: { breaker: x.dependency } },
        td(x.dependency + (x.managed ? "" : " (own breaker)")),
        h("td", { cls: "status" }, h("span", { cls: "badge " + (stateTone[x.state] || ""), text: x.state.replace("_", "-") })),
        timeCell(x.since), td(int(x.failures), "num"), td(int(x.rejected), "num"), td(int(x.opened_total), "num"))));
  const s = b.scaler;
  const scaler = h("div", { cls: "summary" },
    stat("Scaler", s.enabled ? s.mode : "off", "scaler-mode"),
    stat("Interval", int(s.interval_seconds) + " s", "scaler-interval"),
    stat("Replica lag here", isNum(b.replica_lag_seconds) ? dec1.format(b.replica_lag_seconds) + " s" : "—", "replica-lag"));
  const decisions = s.decisions.length === 0
    ? h("p", { cls: "empty", text: s.enabled ? "No decision recorded yet." : "Off: set FLY_API_TOKEN and FLY_APP_NAME (docs/operations.md)." })
    : table([{ label: "When" }, { label: "Region" }, { label: "From → to", num: true }, { label: "Reason" }, { label: "Outcome" }],
      s.decisions.map((d) => h("tr", { data: { decision: d.id } },
        timeCell(d.at), td(d.region), td(int(d.from) + " → " + int(d.to), "num"), td(d.reason + (d.detail ? " (" + d.detail + ")" : ""), "wrap"),
        h("td", null, h("span", { cls: "badge " + (OUTCOME_TONE[d.outcome] || ""), text: d.outcome })))));
  return [h("h3", { cls: "sub-head", text: "Circuit breakers" }), breakers, h("h3", { cls: "sub-head", text: "Scaler" }), scaler, decisions];
}

const OPS_PATH = "/api/v1/admin/operations";
const OPS_PANELS = [
  { id: "panel-jobs", path: OPS_PATH, auth: true, render: renderJobs },
  { id: "panel-history", path: OPS_PATH, auth: true, render: renderHistory },
  { id: "panel-ops", path: OPS_PATH, auth: true, render: renderBreakersScaler },
];
