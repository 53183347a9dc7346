// The agent desktop (README.md, "Agent desktop"): the agent's own status,
// the call ringing or in progress, RONA, wrap-up, click-to-call and
// today's own figures, over the public REST + SSE API.
import {
  $, el, api, optional, session, takeHashToken, openStream, t, translate, languageSelect,
  statusName, dur, since, num, APIError,
} from "./common.js";

const S = { me: null, statuses: [], call: null, queues: new Map(), history: [], stream: null, notified: "" };
takeHashToken();

function showError(e) {
  if (!e) { $("error").textContent = ""; return; }
  const msg = String(e.message || e);
  $("error").textContent = e instanceof APIError && e.status === 409 ? t("err.conflict", { msg }) : msg;
}
const act = (fn) => () => fn().then(() => showError(null)).catch(showError);
const me = () => `/v1/agents/${encodeURIComponent(S.me.id)}`;
const sysClass = { available: "sys-free", ringing: "sys-ringing", talking: "sys-talking", after_call_work: "sys-acw", rona: "sys-rona" };

function setMe(a) {
  if (!a || !a.id) return;
  const prev = S.me ? S.me.system_status + S.me.call_status : "";
  S.me = Object.assign(S.me || {}, a);
  if (a.call_id && (!S.call || S.call.id !== a.call_id)) loadCall(a.call_id);
  if (!a.call_id && a.system_status !== "after_call_work") S.call = null;
  // History rows are recorded just after the change that the event
  // carries: read them now and once more a moment later.
  if (prev !== a.system_status + a.call_status) { loadHistory(); setTimeout(loadHistory, 1500); }
  render();
}

async function loadCall(id) {
  const c = await optional(`/v1/calls/${encodeURIComponent(id)}`, null);
  if (c) { S.call = c; if (c.queue && !S.queues.has(c.queue)) S.queues.set(c.queue, await optional(`/v1/queues/${encodeURIComponent(c.queue)}`, null)); }
  render();
}

function render() {
  const a = S.me;
  if (!a) return;
  $("who").textContent = `${a.name} · ${t("role." + a.role)}`;
  const sel = $("my-status");
  sel.replaceChildren(...S.statuses.map((s) => el("option", { value: s.id, selected: s.id === a.call_status }, statusName(s.id, S.statuses))));
  sel.className = a.call_status === "available" ? "manual-av" : "manual-na";
  $("my-chat").replaceChildren(...["available", "unavailable"].map((c) => el("option", { value: c, selected: c === a.chat_status }, t("chat." + c))));
  $("my-timer").dataset.since = a.status_since;
  const notAvail = a.call_status !== "available";
  $("my-total-wrap").hidden = !notAvail;
  $("my-total").dataset.since = a.status_since;
  $("my-total").dataset.base = a.idle_total_seconds - a.status_seconds;
  const sys = $("my-system");
  sys.textContent = t("sys." + a.system_status);
  sys.className = "badge " + (sysClass[a.system_status] || "");
  $("my-systime").dataset.since = a.system_status !== "available" ? a.system_status_since : "";
  $("rona").hidden = a.system_status !== "rona";
  renderCall();
  tick();
}

function renderCall() {
  const a = S.me, c = S.call;
  const card = $("callcard");
  const st = a.system_status;
  card.className = "card callcard " + ({ ringing: "ringing", talking: "talking", after_call_work: "acw" }[st] || "");
  $("call-state").textContent = st === "ringing" ? t("agent.incoming") : st === "talking" ? t("agent.connected")
    : st === "after_call_work" ? t("agent.wrapup") : st === "rona" ? t("sys.rona") : t("agent.idle");
  const info = $("call-info");
  info.replaceChildren();
  if (c && (st === "ringing" || st === "talking" || st === "after_call_work")) {
    const row = (k, v) => info.append(el("dt", {}, t(k)), el("dd", {}, v));
    row("agent.customer", c.customer_number);
    if (c.hotline) row("agent.hotline", c.hotline);
    if (c.queue) row("agent.queue", (S.queues.get(c.queue) || {}).name || c.queue);
    if (st === "ringing") {
      info.append(el("dt", {}, t("col.waiting")), el("dd", {}, el("span", { class: "timer", id: "call-wait", dataset: { since: c.state_since } }, dur(since(c.state_since)))));
    }
    if (st === "talking") {
      info.append(el("dt", {}, t("agent.connected")), el("dd", {}, el("span", { class: "timer bigtime", id: "call-connected", dataset: { since: a.system_status_since } }, dur(since(a.system_status_since)))));
    }
  }
  $("wrapup").hidden = st !== "after_call_work";
  // One notification per call, once the call (its number) is known.
  if (st === "ringing" && c && document.hidden && "Notification" in window && Notification.permission === "granted" && S.notified !== c.id) {
    S.notified = c.id;
    new Notification(t("agent.incoming"), { body: t("agent.notify", { num: c.customer_number }), tag: "callfloor-ring" });
  }
}

// ringTimeout is the ring timeout of the queue ringing the agent (the
// API default, 18 s, when unknown).
function ringTimeout() {
  const q = S.call && S.queues.get(S.call.queue);
  return (q && q.ring_timeout_seconds) || 18;
}

function tick() {
  for (const n of document.querySelectorAll(".timer[data-since]")) {
    n.textContent = n.dataset.since ? dur(Number(n.dataset.base || 0) + since(n.dataset.since)) : "";
  }
  const a = S.me;
  if (!a) return;
  // Webex-style warning: with a ring timeout over 8 s, the alert flashes
  // for the last 5 s before the call rings out (RONA).
  const ringing = a.system_status === "ringing";
  const left = ringTimeout() - since(a.system_status_since);
  $("callcard").classList.toggle("flash", ringing && ringTimeout() > 8 && left <= 5);
  if (a.system_status === "after_call_work" && a.wrapup_until) {
    $("wrapup-left").textContent = t("agent.wrapup.left", { time: dur(-since(a.wrapup_until)) });
  }
}

// loadHistory computes today's own figures from the status history:
// calls answered (moves to talking), talk time, not-available time.
async function loadHistory() {
  const start = new Date(); start.setHours(0, 0, 0, 0);
  const rows = await optional(`${me()}/history?from=${encodeURIComponent(start.toISOString())}`, []);
  S.history = rows || [];
  figures();
}

function figures() {
  const now = Date.now();
  let answered = 0, talk = 0, notAvail = 0;
  // Counted from the first change today (signing in makes one), so the
  // hours before the agent came in are not "not available".
  const first = S.history.length ? Date.parse(S.history[0].at) : now;
  const spans = (field, pick) => {
    const rs = S.history.filter((r) => r.field === field);
    let from = first, cur = rs.length ? rs[0].from : (field === "call_status" ? S.me.call_status : S.me.system_status);
    let sum = 0;
    for (const r of rs) {
      const at = Date.parse(r.at);
      if (pick(cur)) sum += at - from;
      cur = r.to; from = at;
    }
    if (pick(cur)) sum += now - from;
    return sum / 1000;
  };
  answered = S.history.filter((r) => r.field === "system_status" && r.to === "talking").length;
  talk = spans("system_status", (s) => s === "talking");
  notAvail = spans("call_status", (s) => s && s !== "available");
  $("f-answered").textContent = num(answered);
  $("f-talk").textContent = dur(talk);
  $("f-notavail").textContent = dur(notAvail);
}

// login logs the agent in (the first heartbeat does; the open event
// stream then keeps them online) and keeps heartbeating as the API asks.
async function login(id) {
  await api("POST", `/v1/agents/${encodeURIComponent(id)}/heartbeat`);
  if (!S.beat) S.beat = setInterval(() => api("POST", `/v1/agents/${encodeURIComponent(id)}/heartbeat`).catch(() => {}), 20000);
}

async function load() {
  const who = await api("GET", "/v1/me");
  await login(who.id);
  const [m, statuses] = await Promise.all([api("GET", "/v1/me"), api("GET", "/v1/statuses")]);
  S.statuses = statuses;
  S.me = null;
  setMe(m);
}

async function signIn() {
  $("login").hidden = true;
  try { await load(); } catch (e) {
    if (e.status === 401) { session.token = ""; $("login").hidden = false; }
    showError(e); return;
  }
  $("app").hidden = false; $("signout").hidden = false;
  showError(null);
  if (S.stream) S.stream.close();
  S.stream = openStream({
    onState: (on, err) => { const l = $("live"); l.textContent = t(on ? "live.on" : "live.off"); l.className = "pill " + (on ? "on" : "off"); if (err) showError(err); },
    onReset: () => location.reload(),
    onEvent: (type, d) => {
      if (type === "agent" && d.id === S.me.id) setMe(d);
      else if (type === "call" && (d.id === S.me.call_id || (S.call && d.id === S.call.id))) { S.call = d; render(); }
    },
  });
}

function init() {
  languageSelect($("lang"), () => { translate(); render(); });
  translate();
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    session.token = $("token").value.trim();
    // Asked on a click: browsers only prompt from a user gesture.
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
    signIn();
  });
  // Signing out logs the agent out (refused, and shown, while on a call).
  $("signout").addEventListener("click", act(async () => {
    await api("POST", `${me()}/logout`);
    session.token = "";
    location.reload();
  }));
  // Changes show when their event arrives: a response can be older than
  // an event already applied (routing may ring the agent in between).
  $("my-status").addEventListener("change", (ev) => act(() => api("PUT", `${me()}/status`, { call_status: ev.target.value }))());
  $("my-chat").addEventListener("change", (ev) => act(() => api("PUT", `${me()}/status`, { chat_status: ev.target.value }))());
  $("end-wrapup").addEventListener("click", act(() => api("POST", `${me()}/wrapup/end`)));
  $("rona-available").addEventListener("click", act(() => api("PUT", `${me()}/status`, { call_status: "available" })));
  // "Go to idle" puts the agent in the account's default idle status;
  // servers without POST …/idle get the built-in "unavailable".
  $("rona-idle").addEventListener("click", act(() => api("POST", `${me()}/idle`).catch((e) => {
    if (e.status === 404 || e.status === 405) return api("PUT", `${me()}/status`, { call_status: "unavailable" });
    throw e;
  })));
  $("dial-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = { agent: S.me.id, number: $("dial-number").value.trim() };
    const campaign = $("dial-campaign").value.trim();
    if (campaign) body.campaign = campaign;
    act(() => api("POST", "/v1/calls", body).then((c) => { S.call = c; render(); }))();
  });
  setInterval(() => { tick(); if (S.me) figures(); }, 1000);
  if (session.token) signIn(); else $("login").hidden = false;
}

init();
