// The supervisor console (README.md, "Supervisor console"): agents, live
// calls, queues and today's counters over the public REST + SSE API, the
// same one CRMs use. Plain ES modules, no build step.
import {
  $, el, badge, api, apiAll, optional, session, takeHashToken, openStream, t, translate, languageSelect,
  statusName, dur, since, num, pct, clock, day, APIError,
} from "./common.js";

const S = {
  me: null, agents: new Map(), calls: new Map(), queues: new Map(), statuses: [], groups: [],
  stats: null, media: null, scope: "", view: localStorage.getItem("callfloor.view") || "agents",
  sort: { key: "name", dir: 1 }, stream: null,
};
const { wall } = takeHashToken();

// --- helpers -----------------------------------------------------------------------

function showError(e) {
  if (!e) { $("error").textContent = ""; return; }
  const msg = String(e.message || e);
  $("error").textContent = e instanceof APIError && e.status === 409 ? t("err.conflict", { msg }) : msg;
}

// act runs an action from a click and shows its error plainly.
const act = (fn) => () => fn().then(() => showError(null)).catch(showError);

const sup = () => S.me && S.me.role !== "agent";
const canManage = (a) => S.me && (S.me.role === "admin" || S.me.id === a.id ||
  (S.me.role === "supervisor" && (a.groups || []).some((g) => S.me.supervises.includes(g))));
const agentName = (id) => (S.agents.get(id) ? S.agents.get(id).name : id);

function options(sel, items, keep = true) {
  const prev = sel.value;
  sel.replaceChildren(el("option", { value: "" }, t("filter.all")), ...items.map(([v, label]) => el("option", { value: v }, label)));
  if (keep && [...sel.options].some((o) => o.value === prev)) sel.value = prev;
}

// timer is a cell text that the 1 s tick keeps moving: elapsed since
// data-since, plus data-base seconds.
const timer = (ts, cls = "") => el("span", { class: "timer " + cls, dataset: { since: ts || "" } }, dur(since(ts)));

// --- agents -------------------------------------------------------------------------

const sysClass = { available: "sys-free", ringing: "sys-ringing", talking: "sys-talking", after_call_work: "sys-acw", rona: "sys-rona" };

function agentMatches(a) {
  const f = (id) => $(id).value;
  if (f("f-agent-call") && a.call_status !== f("f-agent-call")) return false;
  if (f("f-agent-chat") && a.chat_status !== f("f-agent-chat")) return false;
  if (f("f-agent-online") && String(a.online) !== f("f-agent-online")) return false;
  if (f("f-agent-group") && !(a.groups || []).includes(f("f-agent-group"))) return false;
  const q = $("f-agent-search").value.trim().toLowerCase();
  if (q && ![a.id, a.name, a.email, a.phone].some((v) => String(v || "").toLowerCase().includes(q))) return false;
  return true;
}

function sortValue(a, key) {
  const v = a[key];
  if (Array.isArray(v)) return v.join(",");
  if (key === "status_since" || key === "system_status_since") return -Date.parse(v || 0) || 0; // longest first
  return v == null ? "" : typeof v === "boolean" ? (v ? 0 : 1) : v;
}

function renderAgents() {
  const tb = $("agents").tBodies[0];
  const { key, dir } = S.sort;
  const rows = [...S.agents.values()].filter(agentMatches).sort((x, y) => {
    const a = sortValue(x, key), b = sortValue(y, key);
    return (typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b))) * dir || x.id.localeCompare(y.id);
  });
  for (const th of $("agents").tHead.rows[0].cells) {
    if (th.dataset.sort) th.setAttribute("aria-sort", th.dataset.sort === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
  tb.replaceChildren(...rows.map(agentRow));
  $("agents-empty").hidden = rows.length > 0;
}

function agentRow(a) {
  const manage = canManage(a) && sup() && !wall;
  const notAvail = a.call_status !== "available";
  const statusCell = el("td", { class: "status" });
  if (manage) {
    statusCell.append(el("select", {
      class: "status-select " + (notAvail ? "manual-na" : "manual-av"), "aria-label": t("act.setstatus", { id: a.id }),
      onchange: (ev) => setStatus(a.id, { call_status: ev.target.value }),
    }, S.statuses.map((s) => el("option", { value: s.id, selected: s.id === a.call_status }, statusName(s.id, S.statuses)))));
  } else {
    statusCell.append(badge(statusName(a.call_status, S.statuses), notAvail ? "manual-na" : "manual-av"));
  }
  // "current / running not-available total" (Webex): the total only
  // while not available; it keeps counting across not-available statuses.
  const time = el("td", { class: "num" }, timer(a.status_since));
  if (notAvail) {
    const base = a.idle_total_seconds - a.status_seconds;
    time.append(el("span", { class: "muted" }, " / "), el("span", { class: "timer", dataset: { since: a.status_since, base } }, dur(base + since(a.status_since))));
  }
  const chat = el("td");
  if (manage) {
    chat.append(el("select", { class: "chat-select", "aria-label": t("act.setchat", { id: a.id }), onchange: (ev) => setStatus(a.id, { chat_status: ev.target.value }) },
      ["available", "unavailable"].map((c) => el("option", { value: c, selected: c === a.chat_status }, t("chat." + c)))));
  } else {
    chat.append(badge(t("chat." + a.chat_status), "chat-" + a.chat_status));
  }
  const sysTimed = a.system_status !== "available";
  const actions = el("td", { class: "actions" });
  // Only the actions that apply now: end wrap-up while wrapping up, log
  // out while logged in (the API's 409, e.g. on a call, is shown plainly).
  if (manage && a.system_status === "after_call_work") {
    actions.append(el("button", { type: "button", class: "sm", dataset: { action: "endwrapup" }, onclick: act(() => api("POST", `/v1/agents/${encodeURIComponent(a.id)}/wrapup/end`)) }, t("act.endwrapup")));
  }
  if (manage && a.online) {
    actions.append(el("button", { type: "button", class: "sm danger", dataset: { action: "logout" }, onclick: act(() => api("POST", `/v1/agents/${encodeURIComponent(a.id)}/logout`)) }, t("act.logout")));
  }
  return el("tr", { dataset: { agent: a.id }, class: a.online ? "" : "is-offline" },
    el("td", {}, el("div", { class: "name" }, a.name), el("div", { class: "sub muted", translate: "no" }, a.id)),
    el("td", { class: "wide" }, a.email),
    el("td", { class: "wide" }, a.phone),
    el("td", { class: "wide" }, t("role." + a.role)),
    el("td", { class: "wide" }, (a.groups || []).join(", ")),
    el("td", {}, badge(t(a.online ? "online" : "offline"), a.online ? "pres-on" : "pres-off")),
    statusCell, time, chat,
    el("td", {}, badge(t("sys." + a.system_status), sysClass[a.system_status] || "")),
    el("td", { class: "num" }, sysTimed ? timer(a.system_status_since) : ""),
    el("td", { class: "wide" }, t("dist." + a.distribution)),
    el("td", { class: "wide mono" }, a.call_id || ""),
    actions);
}

// Row actions show their result when its event arrives: a response can
// be older than an event already applied.
function setStatus(id, body) {
  return act(() => api("PUT", `/v1/agents/${encodeURIComponent(id)}/status`, body))();
}

// --- calls ---------------------------------------------------------------------------

function callMatches(c) {
  const f = (id) => $(id).value;
  if (f("f-call-queue") && c.queue !== f("f-call-queue")) return false;
  if (f("f-call-direction") && c.direction !== f("f-call-direction")) return false;
  if (f("f-call-state") && c.state !== f("f-call-state")) return false;
  const ag = f("f-call-agent");
  if (ag && c.agent !== ag && !(c.ringing_agents || []).includes(ag)) return false;
  return true;
}

// can says whether the media path can do action; the reason when not.
function can(action) {
  const m = S.media && S.media.actions && S.media.actions[action];
  if (!m) return { ok: true };
  return { ok: m.supported, why: m.reason || "" };
}

function actionButton(action, run, extra = {}) {
  const c = can(action);
  const disabled = !c.ok || extra.disabled;
  return el("button", { type: "button", class: "sm" + (action === "hangup" ? " danger" : ""), dataset: { action }, disabled,
    title: !c.ok ? c.why : extra.title || "", onclick: disabled ? null : act(run) }, t("act." + action));
}

function renderCalls() {
  const tb = $("calls").tBodies[0];
  const rows = [...S.calls.values()].filter(callMatches).sort((x, y) => (x.started_at || "").localeCompare(y.started_at || ""));
  tb.replaceChildren(...rows.map(callRow));
  $("calls-empty").hidden = rows.length > 0;
}

function callRow(c) {
  const id = encodeURIComponent(c.id);
  const agentCell = el("td");
  if (c.agent) agentCell.append(el("div", {}, agentName(c.agent)));
  if (c.state === "ringing" && (c.ringing_agents || []).length) {
    agentCell.append(el("div", { class: "sub ringing-agents" }, t("ringing.agents", { list: c.ringing_agents.map(agentName).join(", ") })));
  }
  const m = c.monitor;
  const monCell = el("td");
  if (m) {
    monCell.append(badge(t("mon.by", { mode: t("mon." + m.mode), who: agentName(m.supervisor) }) + (m.paused ? " · " + t("mon.paused") : ""), "mon"));
  }
  const actions = el("td", { class: "actions" });
  if (sup()) {
    if (m && m.supervisor === S.me.id) {
      const mid = encodeURIComponent(m.id);
      actions.append(m.paused
        ? actionButton("monitor_resume", () => api("POST", `/v1/monitors/${mid}/resume`))
        : actionButton("monitor_pause", () => api("POST", `/v1/monitors/${mid}/pause`)));
      if (m.mode !== "barge") actions.append(actionButton("monitor_barge", () => api("POST", `/v1/monitors/${mid}/barge`)));
      actions.append(actionButton("monitor_end", () => api("DELETE", `/v1/monitors/${mid}`)));
    } else if (c.state === "answered") {
      const other = m ? { disabled: true, title: t("mon.other", { who: agentName(m.supervisor) }) } : {};
      for (const a of ["listen", "whisper", "barge", "takeover"]) {
        actions.append(actionButton(a, () => api("POST", `/v1/calls/${id}/${a}`), other));
      }
    }
    if (c.state === "answered") actions.append(actionButton("transfer", () => openTransfer(c)));
    actions.append(actionButton("hangup", () => api("POST", `/v1/calls/${id}/hangup`)));
  }
  return el("tr", { dataset: { call: c.id } },
    el("td", { class: "wide mono" }, c.id),
    el("td", { class: "mono" }, c.customer_number),
    el("td", { class: "mono" }, c.hotline),
    el("td", {}, c.queue || ""),
    el("td", {}, t("dir." + c.direction)),
    el("td", {}, badge(t("state." + c.state), "call-" + c.state)),
    el("td", { class: "num" }, timer(c.state_since)),
    agentCell,
    el("td", { class: "wide" }, c.answered_at ? clock(c.answered_at) : ""),
    el("td", { class: "wide" }, clock(c.started_at)),
    el("td", { class: "wide" }, c.campaign || ""),
    monCell, actions);
}

function openTransfer(c) {
  const dlg = $("transfer-dlg");
  $("transfer-title").textContent = t("transfer.title", { id: c.id });
  const free = [...S.agents.values()].filter((a) => a.online && a.call_status === "available" && a.system_status === "available" && a.id !== c.agent);
  $("transfer-agent").replaceChildren(...free.map((a) => el("option", { value: a.id }, `${a.name} (${a.id})`)));
  $("transfer-none").hidden = free.length > 0;
  $("transfer-ok").disabled = free.length === 0;
  return new Promise((resolve, reject) => {
    dlg.onclose = () => {
      if (dlg.returnValue !== "ok") return resolve();
      api("POST", `/v1/calls/${encodeURIComponent(c.id)}/transfer`, { agent: $("transfer-agent").value }).then(resolve, reject);
    };
    dlg.showModal();
  });
}

function renderMedia() {
  const m = S.media;
  const p = $("media");
  if (!m) { p.textContent = ""; return; }
  // The call actions in the order the buttons show (monitor controls follow listen).
  const cannot = ["listen", "whisper", "barge", "takeover", "transfer", "hangup"]
    .map((k) => [k, (m.actions || {})[k]]).filter(([, v]) => v && !v.supported);
  p.replaceChildren(
    el("span", { class: "pill " + (m.connected ? "on" : "off"), title: m.reason || "" },
      t("media.path", { path: t("media." + m.path) }) + " · " + t(m.connected ? "media.connected" : "media.disconnected")),
    cannot.length ? el("span", { class: "cannot", title: [...new Set(cannot.map(([, v]) => v.reason))].join("\n") },
      t("media.cannot", { list: cannot.map(([k]) => t("act." + k)).join(", ") })) : "");
}

// --- queues ---------------------------------------------------------------------------

// queueLevel is the wallboard alert of a queue now: "" / "amber" / "red".
function queueLevel(q, longest) {
  const lvl = (v, amber, red) => (red > 0 && v >= red ? 2 : amber > 0 && v >= amber ? 1 : 0);
  const l = Math.max(lvl(q.waiting, q.waiting_amber, q.waiting_red), lvl(longest, q.longest_wait_amber_seconds, q.longest_wait_red_seconds));
  return ["", "amber", "red"][l];
}

// longestSince is when the longest-waiting caller of q started waiting,
// so the cell ticks between queue events (the server sends one only when
// a count changes).
const longestSince = (q) => (q.waiting > 0 ? new Date(q._at - q.longest_wait_seconds * 1000).toISOString() : null);

function renderQueues() {
  const tb = $("queues").tBodies[0];
  const admin = S.me && S.me.role === "admin";
  tb.replaceChildren(...[...S.queues.values()].sort((x, y) => x.id.localeCompare(y.id)).map((q) => {
    const from = longestSince(q);
    const thr = (a, r, f) => (a || r ? `${a ? f(a) : t("thr.off")} / ${r ? f(r) : t("thr.off")}` : t("thr.off"));
    const thrCell = el("td", { class: "wide thr" },
      el("span", { class: "muted" }, thr(q.waiting_amber, q.waiting_red, num) + " · " + thr(q.longest_wait_amber_seconds, q.longest_wait_red_seconds, dur)));
    if (admin) thrCell.append(el("button", { type: "button", class: "sm ghost", title: t("thr.edit"), "aria-label": t("thr.edit"), onclick: act(() => editThresholds(q)) }, "⚙"));
    const tr = el("tr", { dataset: { queue: q.id }, class: "lvl-" + queueLevel(q, since(from) || 0) },
      el("td", {}, el("div", { class: "name" }, q.name), el("div", { class: "sub muted", translate: "no" }, q.id)),
      el("td", { class: "num big" }, num(q.waiting)),
      el("td", { class: "num big" }, from ? el("span", { class: "timer", dataset: { since: from } }, dur(since(from))) : dur(0)),
      el("td", { class: "num" }, num(q.agents_logged_in)),
      el("td", { class: "num" }, num(q.agents_available)),
      el("td", { class: "num" }, num(q.agents_busy)),
      el("td", { class: "num" }, num(q.answered_today)),
      el("td", { class: "num" }, num(q.abandoned_today)),
      el("td", { class: "num" }, pct(q.service_level_percent)),
      el("td", { class: "wide" }, t("strat." + q.strategy)),
      thrCell);
    tr._queue = q;
    return tr;
  }));
}

function editThresholds(q) {
  const dlg = $("thr-dlg");
  $("thr-title").textContent = t("thr.title", { name: q.name });
  const f = { "thr-wa": "waiting_amber", "thr-wr": "waiting_red", "thr-la": "longest_wait_amber_seconds", "thr-lr": "longest_wait_red_seconds" };
  for (const [id, k] of Object.entries(f)) $(id).value = q[k] || 0;
  return new Promise((resolve, reject) => {
    dlg.onclose = () => {
      if (dlg.returnValue !== "ok") return resolve();
      const body = {};
      for (const [id, k] of Object.entries(f)) body[k] = Number($(id).value) || 0;
      api("PATCH", `/v1/queues/${encodeURIComponent(q.id)}`, body).then((v) => { upsertQueue(v); resolve(); }, reject);
    };
    dlg.showModal();
  });
}

function upsertQueue(q) {
  if (q.deleted) S.queues.delete(q.id);
  else S.queues.set(q.id, Object.assign(q, { _at: Date.now() }));
  renderAll();
}

// --- today --------------------------------------------------------------------------------

function scopeQuery() {
  const [kind, id] = S.scope.split(":");
  return kind ? `?${kind}=${encodeURIComponent(id)}` : "";
}

function scopeOptions() {
  const sel = $("scope");
  const opts = [];
  if (S.me.role === "admin") opts.push(["", t("today.floor")]);
  for (const g of S.groups) opts.push(["group:" + g.id, t("today.group", { name: g.name || g.id })]);
  for (const q of [...S.queues.values()].sort((x, y) => x.id.localeCompare(y.id))) opts.push(["queue:" + q.id, t("today.queue", { name: q.name })]);
  sel.replaceChildren(...opts.map(([v, label]) => el("option", { value: v }, label)));
  if (!opts.some(([v]) => v === S.scope)) S.scope = opts.length ? opts[0][0] : "";
  sel.value = S.scope;
}

function renderStats() {
  const s = S.stats;
  const set = (id, v) => { $(id).textContent = v; };
  set("c-accepted", s ? num(s.accepted) : "–"); set("c-missed", s ? num(s.missed) : "–");
  set("c-wait", s ? dur(s.avg_wait_seconds) : "–"); set("c-ivr", s ? num(s.in_ivr) : "–");
  set("c-waiting", s ? num(s.waiting) : "–"); set("c-talking", s ? num(s.talking) : "–");
  const e = s && s.agents;
  set("e-free", e ? num(e.free) : "–"); set("e-talking", e ? num(e.talking) : "–");
  set("e-ringing", e ? num(e.ringing) : "–"); set("e-outbound", e ? num(e.outbound) : "–");
  $("daystart").textContent = s && s.day_start ? t("today.since", { date: day(s.day_start) }) : "";
}

function statsMatch(s) {
  const [kind, id] = S.scope.split(":");
  return kind === "queue" ? s.queue === id && !s.group : kind === "group" ? s.group === id && !s.queue : !s.queue && !s.group;
}

async function loadStats() {
  S.stats = await optional("/v1/stats/today" + scopeQuery(), null);
  renderStats();
}

// --- reports (GET /v1/reports/*, issue 14's SQL projection) -------------------------------------

// Report times are the account's wall-clock time, as the server writes it.
const dt = (ts) => (ts ? `${ts.slice(0, 10)} ${ts.slice(11, 19)}` : "");
const period = (ts) => (!ts ? "" : $("rep-interval").value === "day" ? ts.slice(0, 10) : `${ts.slice(0, 10)} ${ts.slice(11, 16)}`);
// Report columns holding figures, aligned right.
const figureColumns = new Set(["rc.wait", "rc.talk", "rc.transfers", "rc.monitors", "rc.seconds", "rc.offered", "rc.answered", "rc.noanswer",
  "rc.busy", "rc.unreachable", "rc.talktime", "rc.acw", "rc.aht", "rc.outbound", "rc.availtime", "rc.natime", "rc.abandoned",
  "rc.withinsl", "col.sl", "rc.avgwait", "rc.maxwait", "rc.avgtalk"]);
const secs = (v) => (v == null ? "" : dur(v));
// statusSeconds sums an agent report's seconds in manual call statuses.
const statusSeconds = (r, pick) => (r.statuses || []).filter((s) => s.field === "call_status" && pick(s.status)).reduce((n, s) => n + s.seconds, 0);

// reportColumns: per report, the header key and how each row shows.
const reportColumns = {
  calls: [["col.started", (r) => dt(r.started_at)], ["col.direction", (r) => t("dir." + r.direction)], ["col.customer", (r) => r.customer_number],
    ["col.hotline", (r) => r.hotline], ["col.queue", (r) => r.queue], ["col.agent", (r) => (r.agent ? agentName(r.agent) : "")],
    ["rep.outcome", (r) => t("out." + r.outcome)], ["rc.wait", (r) => secs(r.wait_seconds)], ["rc.talk", (r) => secs(r.talk_seconds)],
    ["rc.ended", (r) => dt(r.ended_at)], ["rc.cause", (r) => r.end_cause], ["rc.hungupby", (r) => r.hung_up_by],
    ["col.campaign", (r) => r.campaign], ["rc.transfers", (r) => num(r.transfers)], ["rc.monitors", (r) => num(r.monitors)], ["col.callid", (r) => r.id]],
  attempts: [["col.started", (r) => dt(r.started_at)], ["col.agent", (r) => agentName(r.agent)], ["col.queue", (r) => r.queue],
    ["rc.kind", (r) => t("kind." + r.kind)], ["rc.device", (r) => t("dist." + r.device)], ["rep.outcome", (r) => t("out." + r.outcome)],
    ["rc.seconds", (r) => secs(r.seconds)], ["col.callid", (r) => r.call_id]],
  agents: [["col.name", (r) => r.name || r.agent], ["rc.offered", (r) => num(r.offered)], ["rc.answered", (r) => num(r.answered)],
    ["rc.noanswer", (r) => num(r.no_answer)], ["rc.busy", (r) => num(r.busy)], ["rc.unreachable", (r) => num(r.unreachable)],
    ["rc.talktime", (r) => secs(r.talk_seconds)], ["rc.acw", (r) => secs(r.after_call_work_seconds)], ["rc.aht", (r) => secs(r.avg_handle_seconds)],
    ["rc.outbound", (r) => num(r.outbound_calls)], ["rc.availtime", (r) => secs(statusSeconds(r, (s) => s === "available"))],
    ["rc.natime", (r) => secs(statusSeconds(r, (s) => s !== "available"))]],
  monitors: [["col.started", (r) => dt(r.started_at)], ["rc.supervisor", (r) => agentName(r.supervisor)], ["col.agent", (r) => (r.agent ? agentName(r.agent) : "")],
    ["col.queue", (r) => r.queue], ["rc.modes", (r) => r.mode_changes], ["rc.seconds", (r) => secs(r.seconds)],
    ["rc.endreason", (r) => r.end_reason], ["col.callid", (r) => r.call_id]],
  queues: [["col.queue", (r) => (S.queues.get(r.queue) || {}).name || r.queue], ["rc.interval", (r) => period(r.interval_start)],
    ["rc.offered", (r) => num(r.offered)], ["rc.answered", (r) => num(r.answered)], ["rc.abandoned", (r) => num(r.abandoned)],
    ["rc.withinsl", (r) => num(r.answered_within_sl)], ["col.sl", (r) => pct(r.service_level_percent)],
    ["rc.avgwait", (r) => secs(r.avg_wait_seconds)], ["rc.maxwait", (r) => secs(r.max_wait_seconds)], ["rc.avgtalk", (r) => secs(r.avg_talk_seconds)]],
};

// reportQuery is the query string of the chosen report and filters.
function reportQuery() {
  const kind = $("rep-kind").value;
  const q = new URLSearchParams();
  const add = (name, id) => { const v = $(id).value.trim(); if (v) q.set(name, v); };
  add("from", "rep-from"); add("to", "rep-to");
  const applies = (id) => $(id).closest("label").dataset.for.split(" ").includes(kind);
  for (const [name, id] of [["queue", "rep-queue"], ["agent", "rep-agent"], ["direction", "rep-direction"], ["outcome", "rep-outcome"], ["customer_number", "rep-customer"], ["interval", "rep-interval"], ["supervisor", "rep-supervisor"]]) {
    if (applies(id)) add(name, id);
  }
  return { kind, q };
}

function reportFilters() {
  const kind = $("rep-kind").value;
  for (const l of $("report-form").querySelectorAll("label[data-for]")) l.hidden = !l.dataset.for.split(" ").includes(kind);
  options($("rep-queue"), [...S.queues.values()].map((q) => [q.id, q.name]));
  options($("rep-agent"), [...S.agents.values()].sort((x, y) => x.name.localeCompare(y.name)).map((a) => [a.id, a.name]));
  options($("rep-supervisor"), [...S.agents.values()].filter((a) => a.role !== "agent").sort((x, y) => x.name.localeCompare(y.name)).map((a) => [a.id, a.name]));
  options($("rep-direction"), ["inbound", "outbound"].map((d) => [d, t("dir." + d)]));
  const outcomes = kind === "attempts" ? ["answered", "no_answer", "busy", "unreachable", "cancelled"] : ["answered", "abandoned", "unanswered", "live"];
  options($("rep-outcome"), outcomes.map((o) => [o, t("out." + o)]));
  $("report").tHead.rows[0].replaceChildren(...reportColumns[kind].map(([k]) => el("th", { class: figureColumns.has(k) ? "num" : "" }, t(k))));
}

async function runReport(more) {
  const { kind, q } = reportQuery();
  if (more) q.set("cursor", S.reportCursor);
  const page = await api("GET", `/v1/reports/${kind}?${q}`);
  const cols = reportColumns[kind];
  const rows = (page.items || []).map((r) => el("tr", {}, cols.map(([k, f]) => el("td", { class: figureColumns.has(k) ? "num" : "" }, f(r)))));
  if (more) $("report").tBodies[0].append(...rows); else $("report").tBodies[0].replaceChildren(...rows);
  $("report-empty").hidden = $("report").tBodies[0].rows.length > 0;
  S.reportCursor = page.next_cursor || "";
  $("report-more").hidden = !S.reportCursor;
}

// downloadCSV fetches the whole report as CSV with the token in a header
// (never in a URL) and saves it.
async function downloadCSV() {
  const { kind, q } = reportQuery();
  q.set("format", "csv");
  const res = await fetch(`/v1/reports/${kind}?${q}`, { headers: { Authorization: "Bearer " + session.token, Accept: "text/csv" } });
  if (!res.ok) {
    const d = await res.json().catch(() => null);
    throw new APIError(res.status, "csv", (d && d.error && d.error.message) || res.statusText);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = el("a", { href: url, download: `callfloor-${kind}-${q.get("from") || "today"}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- filters, views, the page ----------------------------------------------------------------

function fillFilters() {
  options($("f-agent-call"), S.statuses.map((s) => [s.id, statusName(s.id, S.statuses)]));
  options($("f-agent-chat"), ["available", "unavailable"].map((c) => [c, t("chat." + c)]));
  options($("f-agent-online"), [["true", t("online")], ["false", t("offline")]]);
  options($("f-agent-group"), S.groups.map((g) => [g.id, g.name || g.id]));
  options($("f-call-queue"), [...S.queues.values()].map((q) => [q.id, q.name]));
  options($("f-call-direction"), ["inbound", "outbound"].map((d) => [d, t("dir." + d)]));
  options($("f-call-state"), ["calling", "ringing", "answered"].map((s) => [s, t("state." + s)]));
  options($("f-call-agent"), [...S.agents.values()].sort((x, y) => x.name.localeCompare(y.name)).map((a) => [a.id, a.name]));
}

function showView(v) {
  S.view = v;
  $("notice").textContent = "";
  localStorage.setItem("callfloor.view", v);
  for (const b of $("nav").querySelectorAll("button")) b.setAttribute("aria-current", b.dataset.view === v ? "page" : "false");
  for (const id of ["agents", "calls", "queues", "reports"]) $("view-" + id).hidden = id === "reports" ? wall || v !== "reports" : !wall && id !== v;
}

function renderAll() { renderStats(); renderQueues(); renderCalls(); renderAgents(); }

function retranslate() {
  translate();
  if (!S.me) return;
  $("who").textContent = `${S.me.name} · ${t("role." + S.me.role)}`;
  fillFilters(); scopeOptions(); renderMedia(); renderAll(); reportFilters();
  setLive(S.live);
}

function setLive(on) {
  S.live = on;
  const l = $("live");
  l.textContent = t(on ? "live.on" : "live.off");
  l.className = "pill " + (on ? "on" : "off");
}

async function load() {
  const [me, agents, statuses, groups, calls, queues, media] = await Promise.all([
    api("GET", "/v1/me"), apiAll("/v1/agents"), api("GET", "/v1/statuses"), optional("/v1/groups", []),
    optional("/v1/calls", []), optional("/v1/queues", []), optional("/v1/media", null),
  ]);
  S.me = me; S.statuses = statuses; S.groups = groups; S.media = media;
  S.agents = new Map(agents.map((a) => [a.id, a]));
  S.calls = new Map(calls.map((c) => [c.id, c]));
  const now = Date.now();
  S.queues = new Map(queues.map((q) => [q.id, Object.assign(q, { _at: now })]));
  if (!S.scope && me.role !== "admin") S.scope = (me.supervises[0] && "group:" + me.supervises[0]) || (me.groups[0] && "group:" + me.groups[0]) || "";
  retranslate();
  await loadStats();
}

function startStream() {
  if (S.stream) S.stream.close();
  S.stream = openStream({
    onState: (on, err) => { setLive(on); if (err) showError(err); },
    onReset: () => location.reload(),
    onEvent: (type, d) => {
      switch (type) {
        case "agent": S.agents.set(d.id, d); break;
        case "call": S.calls.set(d.id, d); break;
        case "call_ended": S.calls.delete(d.id); break;
        case "queue": upsertQueue(d); return;
        case "monitor": {
          const c = S.calls.get(d.call_id);
          if (c) c.monitor = d.ended ? null : d;
          break;
        }
        case "stats": if (statsMatch(d)) { S.stats = d; renderStats(); } return;
        default: return;
      }
      renderAll();
    },
  });
}

async function signIn() {
  $("login").hidden = true;
  try {
    await load();
  } catch (e) {
    if (e.status === 401) { session.token = ""; $("login").hidden = false; }
    showError(e);
    return;
  }
  $("app").hidden = false; $("nav").hidden = wall; $("signout").hidden = wall;
  const link = $("wall-link");
  link.hidden = wall || !sup();
  showError(null);
  startStream();
}

// The 1 s tick moves every timer without re-rendering rows (an open
// dropdown stays open) and re-colours queues as their longest wait grows.
function tick() {
  if (wall) $("clock").textContent = clock(new Date().toISOString());
  for (const n of document.querySelectorAll(".timer[data-since]")) {
    if (!n.dataset.since) continue;
    n.textContent = dur(Number(n.dataset.base || 0) + since(n.dataset.since));
  }
  for (const tr of $("queues").tBodies[0].rows) {
    const q = tr._queue;
    if (q) tr.className = "lvl-" + queueLevel(q, since(longestSince(q)) || 0);
  }
}

function init() {
  if (wall) { document.body.classList.add("wall"); $("clock").hidden = false; }
  languageSelect($("lang"), retranslate);
  translate();
  for (const b of $("nav").querySelectorAll("button")) b.addEventListener("click", () => showView(b.dataset.view));
  showView(S.view);
  for (const id of ["f-agent-call", "f-agent-chat", "f-agent-online", "f-agent-group"]) $(id).addEventListener("change", renderAgents);
  $("f-agent-search").addEventListener("input", renderAgents);
  for (const id of ["f-call-queue", "f-call-direction", "f-call-state", "f-call-agent"]) $(id).addEventListener("change", renderCalls);
  for (const th of $("agents").tHead.rows[0].cells) {
    if (!th.dataset.sort) continue;
    th.tabIndex = 0;
    const sort = () => { S.sort = { key: th.dataset.sort, dir: S.sort.key === th.dataset.sort ? -S.sort.dir : 1 }; renderAgents(); };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
  }
  $("rep-kind").addEventListener("change", () => { reportFilters(); $("report").tBodies[0].replaceChildren(); $("report-more").hidden = true; });
  $("report-form").addEventListener("submit", (ev) => { ev.preventDefault(); act(() => runReport(false))(); });
  $("report-more").addEventListener("click", act(() => runReport(true)));
  $("report-csv").addEventListener("click", act(downloadCSV));
  $("scope").addEventListener("change", () => { S.scope = $("scope").value; loadStats().catch(showError); });
  $("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); session.token = $("token").value.trim(); signIn(); });
  $("signout").addEventListener("click", () => { session.token = ""; location.reload(); });
  $("wall-link").addEventListener("click", () => {
    const link = `${location.origin}/#token=${encodeURIComponent(session.token)}&wallboard`;
    $("wall-link").dataset.href = link;
    if (navigator.clipboard) navigator.clipboard.writeText(link).catch(() => {});
    $("notice").textContent = t("hdr.wallboard.copied");
  });
  tick();
  setInterval(tick, 1000);
  if (session.token) signIn(); else $("login").hidden = false;
}

init();
