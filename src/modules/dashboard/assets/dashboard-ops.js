// The operations panels (GET /api/v1/admin/operations, fetched once per poll for all three): the job queue with
// retry and discard of failed jobs (confirmed, then audited by the server), the last hour of the cluster, of each
// instance and of this one as small charts, and the circuit breakers with the scaler's last decisions. dashboard.js adds them to its panels.

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
      const joined = i > 0 && isNum(points[i - 1][s.key]);
      d += (joined ? " L" : " M") + x + " " + y;
      // A point with no neighbour (a single minute of data) is a dot, or it would not show.
      if (!joined && !isNum(points[i + 1] && points[i + 1][s.key])) box.append(svg("circle", { cx: x, cy: y, r: 2, class: "dot " + s.cls }));
    });
    if (d.includes("L")) box.append(svg("path", { d: d.trim(), class: "line " + s.cls }));
  }
  const last = points[points.length - 1] || {};
  const caption = series.map((s) => s.label + " " + format(last[s.key])).join(" · ");
  return h("figure", { cls: "chart", data: { chart: title } }, box, h("figcaption", null, h("strong", { text: title }), " " + caption));
}

const rate = (v) => (isNum(v) ? dec1.format(v) + "/s" : "—");

function historyCharts(pts) {
  if (pts.every((p) => !isNum(p.rps))) return [h("p", { cls: "empty", text: "Collecting: nothing reported for this hour yet." })];
  return [h("div", { cls: "charts" },
    chart("Requests", pts, [{ key: "rps", label: "rate", cls: "a" }], rate),
    chart("Latency", pts, [{ key: "p50_ms", label: "p50", cls: "a" }, { key: "p99_ms", label: "p99", cls: "b" }], ms),
    chart("Errors (5xx)", pts, [{ key: "error_rate", label: "share", cls: "b" }], ratio),
    chart("Cache hit ratio (L1)", pts, [{ key: "cache_hit_ratio", label: "hits", cls: "a" }], ratio),
    chart("Queue depth", pts, [{ key: "queue_depth", label: "jobs", cls: "a" }], int))];
}

/** The latest point that has figures (the current minute may have none yet). */
const latest = (pts) => [...pts].reverse().find((p) => isNum(p.rps)) || {};

// Which last hour the panel shows; kept across polls. "cluster", "here" (the answering instance at its own
// step) or "instance:<id>".
let historyScope = "cluster";

function renderHistory(b) {
  if (!b || !b.history || !Array.isArray(b.history.points) || !b.cluster_history || !Array.isArray(b.cluster_history.instances)) throw new Error("unexpected response");
  const ch = b.cluster_history;
  const scopes = [
    { value: "cluster", label: "Cluster: " + int(ch.instances.length) + " instances, a point a minute", points: ch.cluster },
    { value: "here", label: "This instance (" + text(b.instance_id) + "), a point every " + int(b.history.step_seconds) + " s", points: b.history.points },
    ...ch.instances.map((i) => ({ value: "instance:" + i.id, label: text(i.region) + " · " + text(i.id) + (i.role === "primary" ? " (primary)" : "") + ", a point a minute", points: i.points })),
  ];
  if (!scopes.some((s) => s.value === historyScope)) historyScope = "cluster";
  const select = h("select", { data: { historyScope: "" } }, ...scopes.map((s) => {
    const o = h("option", { text: s.label });
    o.value = s.value;
    o.selected = s.value === historyScope;
    return o;
  }));
  select.setAttribute("aria-label", "Whose last hour");
  const charts = h("div", { data: { historyCharts: historyScope } }, ...historyCharts(scopes.find((s) => s.value === historyScope).points));
  select.addEventListener("change", () => {
    historyScope = select.value;
    charts.dataset.historyCharts = historyScope;
    charts.replaceChildren(...historyCharts(scopes.find((s) => s.value === historyScope).points));
  });
  const out = [h("p", { cls: "muted" }, "Last hour of ", select), charts];
  if (ch.instances.length > 0) {
    // Per instance, its latest minute: regions grouped, the primary first and marked, the replica lag it reported.
    const rows = [];
    let region = null;
    for (const i of ch.instances) {
      if (i.region !== region) {
        region = i.region;
        const cell = h("td", { text: text(region) });
        cell.colSpan = 7;
        rows.push(h("tr", { cls: "region-row", data: { region: text(region) } }, cell));
      }
      const last = latest(i.points);
      const id = h("td", null, text(i.id));
      if (i.role === "primary") id.append(h("span", { cls: "mark primary", text: "primary" }));
      rows.push(h("tr", { data: { historyInstance: i.id } }, id,
        h("td", { cls: "num", text: rate(last.rps), data: { col: "rps" } }),
        h("td", { cls: "num", text: ms(last.p99_ms), data: { col: "p99" } }),
        h("td", { cls: "num", text: ratio(last.error_rate), data: { col: "errors" } }),
        h("td", { cls: "num", text: ratio(last.cache_hit_ratio), data: { col: "hits" } }),
        h("td", { cls: "num", text: isNum(i.replica_lag_seconds) ? dec1.format(i.replica_lag_seconds) + " s" : "—", data: { col: "lag" } }),
        h("td", null, badge(yesNo(i.healthy)))));
    }
    out.push(h("h3", { cls: "sub-head", text: "Per instance, latest minute" }), table(
      [{ label: "Instance" }, { label: "Requests", num: true }, { label: "p99", num: true }, { label: "5xx", num: true }, { label: "L1 hits", num: true }, { label: "Replica lag", num: true }, { label: "Healthy" }],
      rows));
  }
  return out;
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
