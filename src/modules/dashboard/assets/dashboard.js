// The operations dashboard in the browser: sign in, keep the token in this tab's sessionStorage, poll the
// admin endpoints every 5 s. Every value from the server is rendered with textContent, never as markup.
(() => {
  "use strict";

  const POLL_MS = 5000;
  const FETCH_TIMEOUT_MS = 4000;
  const TOKEN_KEY = "neodyme.dashboard.token";
  const EMAIL_KEY = "neodyme.dashboard.email";
  const NOT_ADMIN = "This account is not an admin: the operations data needs an admin account. Sign out and sign in as an admin.";

  const $ = (id) => document.getElementById(id);

  // ---- panels -----------------------------------------------------------------------------------------

  function renderHealth(b) {
    if (!b || typeof b.checks !== "object" || b.checks === null) throw new Error("unexpected response");
    const rows = Object.entries(b.checks).map(([name, c]) => {
      const check = c && typeof c === "object" ? c : { status: c };
      let detail = check.detail;
      if (!detail && check.role) detail = "role " + check.role + (check.primary ? ", primary " + check.primary : "");
      return h("tr", { data: { check: name } },
        td(name),
        h("td", { cls: "status" }, badge(check.status)),
        td(ms(check.latency_ms), "num"),
        td(text(detail), "wrap"));
    });
    return [
      h("div", { cls: "summary" },
        h("div", { cls: "stat", data: { stat: "status" } }, h("span", { cls: "label", text: "Status" }), h("span", { cls: "value" }, badge(b.status))),
        stat("Instance", text(b.instance_id), "instance"),
        stat("Region", text(b.region), "region")),
      table([{ label: "Check" }, { label: "Status" }, { label: "Latency", num: true }, { label: "Detail" }], rows),
    ];
  }

  function renderCache(b) {
    if (!b || typeof b !== "object" || !b.l1) throw new Error("unexpected response");
    const l1 = b.l1 || {}, l2 = b.l2 || {}, bus = b.bus || {};
    return [h("div", { cls: "kv-groups" },
      kvGroup("L1 (in process)", [
        ["Size", int(l1.size) + " / " + int(l1.max_items)],
        ["Hits", int(l1.hits)],
        ["Misses", int(l1.misses)],
        ["Evictions", int(l1.evictions)],
        ["Hit ratio", ratio(l1.hit_ratio)],
      ], "l1"),
      kvGroup("L2 (Redis)", [
        ["Available", yesNo(l2.available)],
        ["Hits", int(l2.hits)],
        ["Misses", int(l2.misses)],
        ["Errors", int(l2.errors)],
      ], "l2"),
      kvGroup("Invalidation bus", [
        ["Published", int(bus.published)],
        ["Received", int(bus.received)],
      ], "bus"))];
  }

  function renderCluster(b) {
    if (!b || typeof b !== "object" || !Array.isArray(b.instances)) throw new Error("unexpected response");
    const summary = h("div", { cls: "summary" },
      stat("Instances", int(b.total_instances), "total"),
      stat("Healthy", int(b.healthy_instances) + " / " + int(b.total_instances), "healthy"),
      stat("In flight", int(b.total_connections), "connections"),
      stat("Avg CPU", pct(b.average_cpu_usage), "cpu"),
      stat("Avg memory", pct(b.average_memory_usage), "memory"),
      stat("Least loaded", text(b.least_loaded_instance), "least-loaded"));
    if (b.instances.length === 0) return [summary, h("p", { cls: "empty", text: "No instance in the heartbeat table yet." })];
    // Grouped by region, the primary first in its region and marked.
    const sorted = [...b.instances].sort((x, y) => String(x.region).localeCompare(String(y.region)) || (x.role === "primary" ? -1 : y.role === "primary" ? 1 : 0));
    const rows = [];
    let region = null;
    for (const i of sorted) {
      if (i.region !== region) {
        region = i.region;
        const n = sorted.filter((x) => x.region === region).length;
        const cell = h("td", { text: text(region) + " · " + int(n) + (n === 1 ? " instance" : " instances") });
        cell.colSpan = 9;
        rows.push(h("tr", { cls: "region-row", data: { region: text(region) } }, cell));
      }
      rows.push(instanceRow(i));
    }
    function instanceRow(i) {
      const id = h("td", null, text(i.id));
      if (i.role === "primary") id.append(h("span", { cls: "mark primary", text: "primary" }));
      if (i.id !== undefined && i.id === b.least_loaded_instance) id.append(h("span", { cls: "mark", text: "least loaded" }));
      return h("tr", { data: { instance: text(i.id) } },
        id,
        td(text(i.region)),
        h("td", null, badge(i.role)),
        timeCell(i.last_heartbeat, i.seconds_since_heartbeat),
        td(int(i.in_flight), "num"),
        td(pct(i.cpu_usage), "num"),
        td(pct(i.memory_usage), "num"),
        h("td", { cls: "num", text: isNum(i.replica_lag_seconds) ? dec1.format(i.replica_lag_seconds) + " s" : "—", data: { col: "lag" } }),
        h("td", null, badge(yesNo(i.healthy))));
    }
    return [summary, table([
      { label: "Instance" }, { label: "Region" }, { label: "Role" }, { label: "Last heartbeat" },
      { label: "In flight", num: true }, { label: "CPU", num: true }, { label: "Memory", num: true }, { label: "Replica lag", num: true }, { label: "Healthy" },
    ], rows)];
  }

  function renderCron(b) {
    const list = Array.isArray(b) ? b : b && Array.isArray(b.items) ? b.items : b && Array.isArray(b.jobs) ? b.jobs : null;
    if (!list) throw new Error("unexpected response");
    if (list.length === 0) return [h("p", { cls: "empty", text: "No scheduled job is registered." })];
    const rows = list.map((j) => h("tr", { data: { job: text(j.name) } },
      td(text(j.name)),
      h("td", null, h("code", { text: text(j.schedule) })),
      timeCell(j.last_run_at),
      td(text(j.last_instance)),
      h("td", null, j.last_status ? badge(j.last_status) : "—"),
      timeCell(j.next_run_at)));
    return [table([
      { label: "Name" }, { label: "Schedule" }, { label: "Last run" }, { label: "Last instance" }, { label: "Last status" }, { label: "Next run" },
    ], rows)];
  }

  const PANELS = [
    { id: "panel-health", path: "/health", auth: false, render: renderHealth },
    { id: "panel-cache", path: "/cache/stats", auth: true, render: renderCache },
    { id: "panel-cluster", path: "/cluster/stats", auth: true, render: renderCluster },
    { id: "panel-cron", path: "/api/v1/admin/cron", auth: true, render: renderCron },
    ...OPS_PANELS,
  ];

  /** Retry or discard a failed job, after the admin confirms; the server logs it as an audit line. */
  async function jobAction(job, action, button) {
    const verb = action === "retry" ? "Run failed job " + job.id + " (" + job.type + ") again as a new job?" : "Discard failed job " + job.id + " (" + job.type + ")?";
    if (!window.confirm(verb)) return;
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return signOut("");
    button.disabled = true;
    let message;
    try {
      const res = await fetch("/api/v1/admin/jobs/" + encodeURIComponent(job.id) + "/" + action, {
        method: "POST",
        headers: { accept: "application/json", authorization: "Bearer " + token },
        cache: "no-store",
        credentials: "omit",
      });
      if (res.status === 401) return signOut("Your session has ended. Sign in again.");
      let body = null;
      try {
        body = await res.json();
      } catch {}
      if (res.ok) message = action === "retry" ? "Job " + job.id + " retried as " + text(body && body.job_id) + "." : "Job " + job.id + " discarded.";
      else message = "Could not " + action + " job " + job.id + ": " + ((body && (body.detail || body.title)) || "HTTP " + res.status) + ".";
    } catch {
      message = "The service did not answer; nothing was done.";
    }
    $("action-result").textContent = message;
    void poll();
  }
  const panelContext = { jobAction };

  function setPanel(p, state, status, nodes) {
    const el = $(p.id);
    el.dataset.state = state;
    el.querySelector(".panel-status").textContent = status;
    el.querySelector(".panel-body").replaceChildren(...nodes);
  }

  function unavailable(p, reason) {
    setPanel(p, "unavailable", "not available", [h("p", { cls: "empty", text: "Not available (" + reason + ")." })]);
  }

  // ---- data -------------------------------------------------------------------------------------------

  async function getJson(path, token) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = { accept: "application/json" };
      if (token) headers.authorization = "Bearer " + token;
      const res = await fetch(path, { headers, signal: ctrl.signal, cache: "no-store", credentials: "omit" });
      let body = null;
      try {
        body = await res.json();
      } catch {}
      return { status: res.status, body, retryAfter: res.headers.get("retry-after") };
    } catch (err) {
      return { status: 0, body: null, error: err && err.name === "AbortError" ? "timed out" : "no answer" };
    } finally {
      clearTimeout(timer);
    }
  }

  let session = 0; // bumped on sign-in and sign-out: answers that belong to an older session are dropped
  let notAdmin = false; // what /users/me said about this session's account
  let timer = null;
  let pollingFor = -1; // the session whose poll is in flight: one poll at a time per session

  async function pollOnce() {
    const mine = session;
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return signOut("");
    let forbidden = false;
    // Panels that read the same endpoint share one request per round.
    const answers = new Map();
    const fetchOnce = (p) => {
      if (!answers.has(p.path)) answers.set(p.path, getJson(p.path, p.auth ? token : null));
      return answers.get(p.path);
    };
    await Promise.all(PANELS.map(async (p) => {
      const r = await fetchOnce(p);
      if (mine !== session) return;
      if (p.auth && r.status === 401) return signOut("Your session has ended. Sign in again.");
      if (r.status === 403) {
        forbidden = true;
        showNotice(NOT_ADMIN);
        return setPanel(p, "forbidden", "not an admin", [h("p", { cls: "empty", text: "Not available: this account is not an admin." })]);
      }
      if (r.status === 0) return unavailable(p, r.error);
      if (r.status !== 200 || r.body === null) return unavailable(p, "HTTP " + r.status + " from " + p.path);
      try {
        setPanel(p, "ok", "", p.render(r.body, panelContext));
      } catch {
        unavailable(p, "unexpected response from " + p.path);
      }
    }));
    if (mine !== session) return;
    if (!forbidden && !notAdmin) showNotice("");
    $("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB", { hour12: false });
  }

  async function poll() {
    const mine = session;
    if (pollingFor === mine) return;
    pollingFor = mine;
    clearTimeout(timer);
    try {
      await pollOnce();
    } finally {
      if (pollingFor === mine) pollingFor = -1;
      if (mine === session) timer = setTimeout(poll, POLL_MS);
    }
  }

  function showNotice(message) {
    const n = $("notice");
    n.textContent = message;
    n.hidden = !message;
  }

  /** Once per session: who is signed in, and whether the account is an admin (the admin panels may not exist yet). */
  async function whoAmI() {
    const mine = session;
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return;
    const r = await getJson("/api/v1/users/me", token);
    if (mine !== session) return;
    if (r.status === 401) return signOut("Your session has ended. Sign in again.");
    const user = r.status === 200 && r.body && typeof r.body.user === "object" ? r.body.user : null;
    if (!user) return;
    if (typeof user.email === "string") $("who").textContent = user.email;
    if (user.is_admin === false) {
      notAdmin = true;
      showNotice(NOT_ADMIN);
    }
  }

  // ---- views ------------------------------------------------------------------------------------------

  function showDashboard() {
    session++;
    $("login-view").hidden = true;
    $("dash-view").hidden = false;
    $("session").hidden = false;
    $("who").textContent = sessionStorage.getItem(EMAIL_KEY) || "";
    $("updated").textContent = "";
    notAdmin = false;
    showNotice("");
    for (const p of PANELS) setPanel(p, "loading", "loading…", []);
    void whoAmI();
    void poll();
  }

  function signOut(message) {
    session++;
    clearTimeout(timer);
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(EMAIL_KEY);
    for (const p of PANELS) setPanel(p, "loading", "loading…", []);
    $("dash-view").hidden = true;
    $("session").hidden = true;
    $("login-view").hidden = false;
    const err = $("login-error");
    err.textContent = message || "";
    err.hidden = !message;
    $("password").value = "";
    $("email").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const err = $("login-error");
    const button = $("login-submit");
    const email = $("email").value.trim();
    const password = $("password").value;
    err.hidden = true;
    if (!email || !password) {
      err.textContent = "Enter your email and password.";
      err.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const ctrl = new AbortController();
      const t = setTimeout(() => ctrl.abort(), 15000);
      let res;
      try {
        res = await fetch("/api/v1/auth/login", {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ email, password }),
          signal: ctrl.signal,
          cache: "no-store",
          credentials: "omit",
        });
      } finally {
        clearTimeout(t);
      }
      let body = null;
      try {
        body = await res.json();
      } catch {}
      if (res.ok && body && typeof body.access_token === "string") {
        sessionStorage.setItem(TOKEN_KEY, body.access_token);
        sessionStorage.setItem(EMAIL_KEY, email);
        $("password").value = "";
        showDashboard();
        return;
      }
      let message;
      if (res.status === 401) message = "Wrong email or password.";
      else if (res.status === 422) message = "Enter a valid email address and password.";
      else if (res.status === 429) {
        const wait = res.headers.get("retry-after");
        message = "Too many attempts. Try again" + (wait ? " in " + wait + " s." : " later.");
      } else message = "Sign-in failed (" + ((body && (body.detail || body.title)) || "HTTP " + res.status) + ").";
      err.textContent = message;
      err.hidden = false;
    } catch {
      err.textContent = "The service did not answer. Try again.";
      err.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  $("login-form").addEventListener("submit", signIn);
  // Signing out ends the token's session on the server too (the token stops working everywhere), not only in this tab.
  $("signout").addEventListener("click", async () => {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) {
      await fetch("/api/v1/auth/logout", { method: "POST", headers: { authorization: "Bearer " + token }, signal: AbortSignal.timeout(5000) }).catch(
        () => {},
      );
    }
    signOut("");
  });
  $("refresh").addEventListener("click", () => void poll());

  if (sessionStorage.getItem(TOKEN_KEY)) showDashboard();
  else $("email").focus();
})();
