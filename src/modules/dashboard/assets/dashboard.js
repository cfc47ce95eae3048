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
    const rows = b.instances.map((i) => {
      const id = h("td", null, text(i.id));
      if (i.id !== undefined && i.id === b.least_loaded_instance) id.append(h("span", { cls: "mark", text: "least loaded" }));
      return h("tr", { data: { instance: text(i.id) } },
        id,
        td(text(i.region)),
        h("td", null, badge(i.role)),
        timeCell(i.last_heartbeat, i.seconds_since_heartbeat),
        td(int(i.in_flight), "num"),
        td(pct(i.cpu_usage), "num"),
        td(pct(i.memory_usage), "num"),
        h("td", null, badge(yesNo(i.healthy))));
    });
    return [summary, table([
      { label: "Instance" }, { label: "Region" }, { label: "Role" }, { label: "Last heartbeat" },
      { label: "In flight", num: true }, { label: "CPU", num: true }, { label: "Memory", num: true }, { label: "Healthy" },
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
  ];

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
    await Promise.all(PANELS.map(async (p) => {
      const r = await getJson(p.path, p.auth ? token : null);
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
        setPanel(p, "ok", "", p.render(r.body));
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
  $("signout").addEventListener("click", () => signOut(""));
  $("refresh").addEventListener("click", () => void poll());

  if (sessionStorage.getItem(TOKEN_KEY)) showDashboard();
  else $("email").focus();
})();
