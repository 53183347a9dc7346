// Shared by the supervisor console and the agent desktop: the API client,
// the message catalog lookups, Intl formatting, element building (text
// only: everything user-supplied goes through textContent, never
// innerHTML) and the resumable event stream.
import { catalog } from "./i18n.js";

const TOKEN_KEY = "callfloor.token";
const LANG_KEY = "callfloor.lang";

// takeHashToken signs in from a link like /#token=…&wallboard: the token
// is a URL fragment, so it never reaches the server or its logs; it is
// moved to session storage and wiped from the address bar at once.
export function takeHashToken() {
  const p = new URLSearchParams(location.hash.slice(1));
  const token = p.get("token");
  const wall = p.has("wallboard");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search + (wall ? "#wallboard" : ""));
  }
  return { wall };
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY) || ""; },
  set token(v) { if (v) sessionStorage.setItem(TOKEN_KEY, v); else sessionStorage.removeItem(TOKEN_KEY); },
};

export class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: Object.assign({ Authorization: "Bearer " + session.token },
      body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const err = data && data.error;
    throw new APIError(res.status, err ? err.code : "http_" + res.status, (err && err.message) || res.statusText);
  }
  return data;
}

// apiAll reads a paged list whole, following X-Next-Cursor (the agent
// list comes in pages of at most 1,000).
export async function apiAll(path) {
  const all = [];
  let cursor = "";
  do {
    const sep = path.includes("?") ? "&" : "?";
    const res = await fetch(path + (cursor ? `${sep}cursor=${encodeURIComponent(cursor)}` : ""), { headers: { Authorization: "Bearer " + session.token } });
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const err = data && data.error;
      throw new APIError(res.status, err ? err.code : "http_" + res.status, (err && err.message) || res.statusText);
    }
    all.push(...data);
    cursor = res.headers.get("X-Next-Cursor") || "";
  } while (cursor);
  return all;
}

// optional loads what this user may not be allowed to read (403) or this
// server does not serve (404, 501) as empty.
export async function optional(path, empty) {
  try { return await api("GET", path); } catch (e) { if ([403, 404, 501].includes(e.status)) return empty; throw e; }
}

// --- languages -------------------------------------------------------------

export const languages = { en: "English", vi: "Tiếng Việt", ru: "Русский" };

function pickLang() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved && catalog[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (catalog[base]) return base;
  }
  return "en";
}

export let lang = pickLang();

export function setLang(l) {
  if (!catalog[l]) return;
  lang = l;
  localStorage.setItem(LANG_KEY, l);
  document.documentElement.lang = l;
}

export function t(key, vars) {
  let s = (catalog[lang] && catalog[lang][key]) ?? catalog.en[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll("{" + k + "}", String(v));
  return s;
}

// translate fills every element marked data-i18n (text), data-i18n-ph
// (placeholder), data-i18n-title and data-i18n-aria in root.
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const n of root.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  for (const n of root.querySelectorAll("[data-i18n-ph]")) n.placeholder = t(n.dataset.i18nPh);
  for (const n of root.querySelectorAll("[data-i18n-title]")) n.title = t(n.dataset.i18nTitle);
  for (const n of root.querySelectorAll("[data-i18n-aria]")) n.setAttribute("aria-label", t(n.dataset.i18nAria));
}

// languageSelect fills a <select> with the shipped languages.
export function languageSelect(sel, onChange) {
  sel.replaceChildren(...Object.entries(languages).map(([id, name]) => el("option", { value: id, selected: id === lang }, name)));
  sel.addEventListener("change", () => { setLang(sel.value); onChange(); });
}

// statusName is a call status's label: built-in ones from the catalog,
// custom ones by the name the admin gave them.
export function statusName(id, statuses) {
  const key = "status." + id;
  if (catalog.en[key]) return t(key);
  const s = (statuses || []).find((x) => x.id === id);
  return s ? s.name : id;
}

// --- formatting (the browser's locale) ---------------------------------------

export function dur(sec) {
  if (sec == null || !isFinite(sec)) return "–";
  sec = Math.max(0, Math.floor(sec));
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

// since returns seconds elapsed since an RFC 3339 time, by the local clock.
export const since = (ts) => (ts ? (Date.now() - Date.parse(ts)) / 1000 : null);

const fmtCache = new Map();
function fmtr(kind, opts) {
  const key = lang + kind;
  if (!fmtCache.has(key)) fmtCache.set(key, kind === "n" || kind === "p" ? new Intl.NumberFormat(locale(), opts) : new Intl.DateTimeFormat(locale(), opts));
  return fmtCache.get(key);
}
// locale is the browser's own locale when it speaks the chosen language,
// otherwise the language itself.
function locale() {
  const nav = navigator.language || "en";
  return nav.toLowerCase().startsWith(lang) ? nav : lang;
}
export const num = (n) => (n == null ? "–" : fmtr("n", {}).format(n));
export const pct = (n) => (n == null ? "–" : fmtr("p", { maximumFractionDigits: 0 }).format(n) + "%");
export const clock = (ts) => (ts ? fmtr("t", { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(ts)) : "–");
// day shows the calendar date written in ts (the account's day, not the
// browser's: "today" starts in the account's time zone).
export const day = (ts) => (ts ? fmtr("d", { dateStyle: "full", timeZone: "UTC" }).format(new Date(ts.slice(0, 10) + "T12:00:00Z")) : "");

// --- DOM -----------------------------------------------------------------------

export const $ = (id) => document.getElementById(id);

// el builds an element; children are nodes or text (set as text, never HTML).
export function el(tag, attrs, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "dataset") Object.assign(n.dataset, v);
    else if (k === "translate") n.setAttribute("translate", v);
    else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k in n && typeof n[k] !== "function" && k !== "list") n[k] = v;
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) n.append(c instanceof Node ? c : String(c));
  return n;
}

export function badge(text, cls, title) { return el("span", { class: "badge " + cls, title }, text); }

// --- the event stream ------------------------------------------------------------

// openStream reads GET /v1/events with fetch (the token goes in a header,
// never in a URL), and after a network blip or a server cut-off
// reconnects with Last-Event-ID so no event is lost. "reset" (our
// position was trimmed from the log) calls onReset: reload everything.
export function openStream({ onEvent, onReset, onState }) {
  let lastID = "", stopped = false, ctrl = null, delay = 500;
  async function once() {
    ctrl = new AbortController();
    const headers = { Authorization: "Bearer " + session.token, Accept: "text/event-stream" };
    if (lastID) headers["Last-Event-ID"] = lastID;
    const res = await fetch("/v1/events", { headers, signal: ctrl.signal, cache: "no-store" });
    if (!res.ok) throw new APIError(res.status, "stream", res.statusText);
    onState(true);
    delay = 500;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value.replaceAll("\r\n", "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let type = "message", id = null;
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith(":")) continue;
          const c = line.indexOf(":");
          const field = c < 0 ? line : line.slice(0, c);
          const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
          if (field === "event") type = val;
          else if (field === "data") data.push(val);
          else if (field === "id") id = val;
        }
        if (id !== null) lastID = id;
        if (type === "reset") { onReset(); continue; }
        if (type === "cutoff" || !data.length) continue;
        try { onEvent(type, JSON.parse(data.join("\n"))); } catch (e) { console.error("event", type, e); }
      }
    }
  }
  (async () => {
    while (!stopped) {
      try { await once(); } catch (e) { if (stopped) return; if (e.status === 401) { onState(false, e); return; } }
      if (stopped) return;
      onState(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  })();
  return { close() { stopped = true; if (ctrl) ctrl.abort(); }, get lastID() { return lastID; } };
}
