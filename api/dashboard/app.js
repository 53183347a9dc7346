// callfloor dashboard: a wallboard and supervisor console over the public
// REST + SSE API (the same one CRMs use). No framework, no build step.
// Everything user-supplied is rendered with textContent, never innerHTML.
"use strict";

const state = { token: sessionStorage.getItem("callfloor.token") || "", me: null,
  agents: new Map(), calls: new Map(), queues: new Map(), statuses: [], stats: null, es: null };

const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: Object.assign({ Authorization: "Bearer " + state.token },
      body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = new Error((data && data.error && data.error.message) || res.statusText);
    e.status = res.status;
    throw e;
  }
  return data;
}

// optional loads data this user may not have: outside their role (403),
// or not served by this media path (404, 501) → shown as empty.
async function optional(path, empty) {
  try { return await api("GET", path); } catch (e) { if ([403, 404, 501].includes(e.status)) return empty; throw e; }
}

function showError(e) { $("error").textContent = e ? String(e.message || e) : ""; }

function fmt(sec) {
  if (sec == null || sec < 0) return "–";
  sec = Math.floor(sec);
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// since returns seconds elapsed since an RFC 3339 time, by the local clock.
const since = (t) => (t ? (Date.now() - Date.parse(t)) / 1000 : null);

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(td, label, onClick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label;
  b.addEventListener("click", () => onClick().then(() => showError(null)).catch(showError));
  td.appendChild(b);
}

function renderAgents() {
  const tb = $("agents").tBodies[0];
  tb.replaceChildren();
  const canManage = state.me && state.me.role !== "agent";
  for (const a of [...state.agents.values()].sort((x, y) => x.id.localeCompare(y.id))) {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.id;
    cell(tr, `${a.name} (${a.id})`);
    cell(tr, (a.groups || []).join(", "));
    cell(tr, a.online ? "online" : "offline", a.online ? "s-available" : "muted");
    const st = cell(tr, "");
    if (canManage || (state.me && state.me.id === a.id)) {
      const sel = document.createElement("select");
      sel.setAttribute("aria-label", "call status of " + a.id);
      for (const s of state.statuses) {
        const o = document.createElement("option");
        o.value = s.id; o.textContent = s.name; o.selected = s.id === a.call_status;
        sel.appendChild(o);
      }
      sel.addEventListener("change", () => api("PUT", `/v1/agents/${encodeURIComponent(a.id)}/status`, { call_status: sel.value })
        .then((v) => { state.agents.set(v.id, v); renderAgents(); showError(null); }).catch(showError));
      st.appendChild(sel);
    } else {
      st.textContent = a.call_status;
    }
    const total = a.call_status === "available" ? "" : " / " + fmt(a.idle_total_seconds + (since(a.status_since) - a.status_seconds));
    cell(tr, fmt(since(a.status_since)) + total, "timer");
    cell(tr, a.system_status, "s-" + a.system_status);
    cell(tr, a.call_id || "");
    tb.appendChild(tr);
  }
}

function renderCalls() {
  const tb = $("calls").tBodies[0];
  tb.replaceChildren();
  const sup = state.me && state.me.role !== "agent";
  for (const c of [...state.calls.values()].sort((x, y) => (x.started_at || "").localeCompare(y.started_at || ""))) {
    const tr = document.createElement("tr");
    tr.dataset.call = c.id;
    cell(tr, c.customer_number); cell(tr, c.hotline); cell(tr, c.queue); cell(tr, c.direction);
    cell(tr, c.state, "s-" + (c.state === "answered" ? "talking" : c.state));
    cell(tr, fmt(since(c.state_since)), "timer");
    cell(tr, c.agent || "");
    cell(tr, c.monitor ? `${c.monitor.mode} by ${c.monitor.supervisor}${c.monitor.paused ? " (paused)" : ""}` : "");
    const td = cell(tr, "", "actions");
    if (sup && c.state === "answered") {
      for (const act of ["listen", "whisper", "barge", "takeover"]) {
        button(td, act, () => api("POST", `/v1/calls/${encodeURIComponent(c.id)}/${act}`));
      }
    }
    if (sup) button(td, "hang up", () => api("POST", `/v1/calls/${encodeURIComponent(c.id)}/hangup`));
    tb.appendChild(tr);
  }
}

function renderQueues() {
  const tb = $("queues").tBodies[0];
  tb.replaceChildren();
  for (const q of [...state.queues.values()].sort((x, y) => x.id.localeCompare(y.id))) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.id;
    cell(tr, q.name); cell(tr, q.strategy); cell(tr, q.waiting); cell(tr, fmt(q.longest_wait_seconds));
    cell(tr, q.agents_available); cell(tr, q.agents_busy); cell(tr, q.answered_today); cell(tr, q.abandoned_today);
    cell(tr, q.service_level_percent == null ? "–" : Math.round(q.service_level_percent) + "%");
    tb.appendChild(tr);
  }
}

function renderStats() {
  const s = state.stats;
  if (!s) return;
  $("c-accepted").textContent = s.accepted; $("c-missed").textContent = s.missed;
  $("c-wait").textContent = fmt(s.avg_wait_seconds); $("c-ivr").textContent = s.in_ivr;
  $("c-waiting").textContent = s.waiting; $("c-talking").textContent = s.talking;
  $("c-free").textContent = s.agents ? s.agents.free : "–";
  $("daystart").textContent = (s.group ? "group " + s.group + ", " : "") + (s.day_start ? "since " + s.day_start : "");
}

function render() { renderStats(); renderQueues(); renderCalls(); renderAgents(); }

// statsScope is the counters this user may read: the whole floor for an
// admin, otherwise the first group they supervise or belong to.
function statsScope() {
  const me = state.me;
  if (!me || me.role === "admin") return { query: "", group: "" };
  const g = (me.supervises && me.supervises[0]) || (me.groups && me.groups[0]) || "";
  return { query: g ? "?group=" + encodeURIComponent(g) : "", group: g };
}

async function load() {
  const scope = statsScope();
  const [agents, statuses, calls, queues, stats] = await Promise.all([
    api("GET", "/v1/agents"), api("GET", "/v1/statuses"),
    optional("/v1/calls", []), optional("/v1/queues", []), optional("/v1/stats/today" + scope.query, null),
  ]);
  state.agents = new Map(agents.map((a) => [a.id, a]));
  state.calls = new Map(calls.map((c) => [c.id, c]));
  state.queues = new Map(queues.map((q) => [q.id, q]));
  state.statuses = statuses; state.stats = stats;
  render();
}

function stream() {
  if (state.es) state.es.close();
  const es = new EventSource("/v1/events?access_token=" + encodeURIComponent(state.token));
  state.es = es;
  const live = $("live");
  es.onopen = () => { live.textContent = "live"; live.className = "pill on"; };
  es.onerror = () => { live.textContent = "reconnecting"; live.className = "pill off"; };
  const on = (type, fn) => es.addEventListener(type, (ev) => { fn(JSON.parse(ev.data)); render(); });
  on("agent", (a) => state.agents.set(a.id, a));
  on("call", (c) => state.calls.set(c.id, c));
  on("call_ended", (c) => state.calls.delete(c.id));
  on("queue", (q) => state.queues.set(q.id, q));
  on("stats", (s) => { const g = statsScope().group; if (!s.queue && (s.group || "") === g) state.stats = s; });
  // The log no longer holds our position: reload everything.
  es.addEventListener("reset", () => load().catch(showError));
}

async function connect(token) {
  state.token = token;
  sessionStorage.setItem("callfloor.token", token);
  try {
    await load();
    stream();
    showError(null);
  } catch (e) { showError(e); }
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = $("token").value.trim();
  // Who am I? Decides which controls make sense (the server still checks).
  state.token = token;
  try {
    const who = await api("GET", "/v1/me");
    state.me = who;
    $("who").textContent = `${who.name} (${who.role})`;
  } catch (e) { $("who").textContent = ""; }
  await connect(token);
});

setInterval(() => { renderAgents(); renderCalls(); }, 1000);
if (state.token) { $("token").value = state.token; $("login").requestSubmit(); }
