// Rivet inspector: a single page over the JSON API in ../inspector/.
// Plain JavaScript, no build step. Every value from the server is put in
// the page as text (textContent), never as HTML.
"use strict";

const API = new URL("../inspector/", location.href);
const TOKEN_KEY = "rivet-admin-token";

const $ = (id) => document.getElementById(id);
const state = {
  selected: null,     // id of the selected actor
  detail: null,       // last ActorDetail
  stream: null,       // EventSource of the selected actor
  next: "",           // cursor of the actor list
  stateText: "",      // current state, pretty JSON
  tokenWaiters: [],
};

// ---- API ---------------------------------------------------------------

class APIError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : "HTTP " + status);
    this.status = status;
    this.group = body && body.group;
    this.code = body && body.code;
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, opts = {}) {
  for (;;) {
    const headers = Object.assign({}, opts.headers || {});
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(new URL(path, API), { method: opts.method || "GET", headers, body: opts.body });
    let body = null;
    const text = await res.text();
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { message: text }; }
    if (res.status === 401) {
      await askToken(body && body.message, !!token());
      continue;
    }
    if (!res.ok) throw new APIError(res.status, body);
    return body;
  }
}

function askToken(message, wrong) {
  const dlg = $("token-dialog");
  const err = $("token-error");
  if (wrong) {
    err.textContent = message || "The token is wrong.";
    err.hidden = false;
  } else {
    err.hidden = true;
  }
  dlg.hidden = false;
  $("token-input").focus();
  return new Promise((resolve) => state.tokenWaiters.push(resolve));
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-input").value = "";
  $("token-dialog").hidden = true;
  $("forget-token").hidden = false;
  const waiters = state.tokenWaiters.splice(0);
  waiters.forEach((w) => w());
  if (state.selected) openStream(state.selected);
});

$("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  $("forget-token").hidden = true;
  location.reload();
});

// ---- helpers -----------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function pretty(v) { return JSON.stringify(v, null, 2); }

function compact(v) { return JSON.stringify(v); }

function time(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function dateTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString([], { hour12: false });
}

function show(id, text) {
  const e = $(id);
  e.textContent = text;
  e.hidden = false;
}

function hide(...ids) { ids.forEach((id) => { $(id).hidden = true; }); }

function errText(err) {
  return err.group ? `${err.message} (${err.group}.${err.code})` : String(err.message || err);
}

function keyLabel(a) { return a.key.length ? a.keyString : "(no key)"; }

// ---- actor list ----------------------------------------------------------

let searchTimer = 0;

async function loadActors(append) {
  const q = new URLSearchParams({ limit: "100" });
  if ($("search").value.trim()) q.set("q", $("search").value.trim());
  if ($("name-filter").value.trim()) q.set("name", $("name-filter").value.trim());
  if (append && state.next) q.set("after", state.next);
  try {
    const list = await api("actors?" + q);
    hide("list-error");
    renderActors(list.actors, append);
    state.next = list.next || "";
    $("load-more").hidden = !state.next;
    $("conn-status").textContent = "connected";
  } catch (err) {
    show("list-error", errText(err));
  }
}

function renderActors(actors, append) {
  const ul = $("actor-list");
  if (!append) ul.replaceChildren();
  const names = new Set([...$("names").options].map((o) => o.value));
  for (const a of actors) {
    const li = el("li");
    li.dataset.id = a.id;
    if (a.id === state.selected) li.classList.add("selected");
    const name = el("div", "name");
    name.append(el("span", "", a.name), el("span", "dot" + (a.awake ? " awake" : "")));
    name.lastChild.title = a.awake ? "awake" : "sleeping";
    const key = el("div", "key", keyLabel(a));
    // Actors of other namespaces than "default" carry theirs, so that
    // the same name and key in two namespaces are two distinct rows.
    if (a.namespace !== "default") key.prepend(el("span", "ns", a.namespace));
    li.append(name, key);
    li.addEventListener("click", () => select(a.id));
    ul.append(li);
    if (!names.has(a.name)) {
      names.add(a.name);
      const o = document.createElement("option");
      o.value = a.name;
      $("names").append(o);
    }
  }
  if (!ul.children.length) ul.append(el("li", "muted", "No actors match."));
}

$("search-form").addEventListener("submit", (e) => { e.preventDefault(); loadActors(false); });
for (const id of ["search", "name-filter"]) {
  $(id).addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadActors(false), 200);
  });
}
$("load-more").addEventListener("click", () => loadActors(true));

// ---- selected actor --------------------------------------------------------

async function select(id) {
  state.selected = id;
  for (const li of $("actor-list").children) li.classList.toggle("selected", li.dataset.id === id);
  if (location.hash !== "#" + id) history.replaceState(null, "", "#" + id);
  hide("state-error", "state-ok", "action-error", "action-result", "kv-error");
  try {
    const d = await api("actors/" + encodeURIComponent(id));
    if (state.selected !== id) return;
    state.detail = d;
    $("empty").hidden = true;
    $("actor").hidden = false;
    renderSummary(d);
    setState(d.state, false);
    $("state-editor").value = state.stateText;
    renderConnections(d.connections);
    renderAlarms(d.alarms);
    loadQueue(id);
    $("events").replaceChildren();
    d.events.forEach(addEvent);
    loadLogs(id);
    loadKV();
    openStream(id);
  } catch (err) {
    $("empty").hidden = false;
    $("actor").hidden = true;
    $("empty").replaceChildren(el("p", "error", errText(err)));
  }
}

function renderSummary(d) {
  $("actor-title").textContent = (d.namespace !== "default" ? d.namespace + " · " : "") + d.name + " · " + keyLabel(d);
  setStatus(d.awake ? "awake" : "sleeping");
  const dl = $("summary");
  dl.replaceChildren();
  const rows = [["id", d.id], ["namespace", d.namespace], ["name", d.name], ["key", compact(d.key)], ["created", dateTime(d.createdAt)]];
  for (const [k, v] of rows) dl.append(el("dt", "", k), el("dd", "", v));
}

function setStatus(status) {
  const b = $("actor-status");
  b.textContent = status;
  b.className = "badge" + (status === "awake" ? " awake" : "");
  const li = [...$("actor-list").children].find((x) => x.dataset.id === state.selected);
  const dot = li && li.querySelector(".dot");
  if (dot) dot.className = "dot" + (status === "awake" ? " awake" : "");
}

function setState(value, flash) {
  const text = value === null || value === undefined ? "null" : pretty(value);
  const editorClean = $("state-editor").value === state.stateText;
  state.stateText = text;
  const view = $("state-view");
  view.textContent = value === null || value === undefined ? "(no state yet)" : text;
  if (flash) {
    view.classList.remove("flash");
    void view.offsetWidth;
    view.classList.add("flash");
  }
  // Follow live changes in the editor unless the user is editing it.
  if (editorClean) $("state-editor").value = text;
}

function renderConnections(conns) {
  const box = $("connections");
  box.replaceChildren();
  $("conn-count").textContent = conns.length ? "(" + conns.length + ")" : "";
  if (!conns.length) { box.append(el("p", "muted", "No open connections.")); return; }
  for (const c of conns) {
    const d = el("div", "conn");
    d.append(el("div", "conn-id", c.id));
    const dl = el("dl", "kv-grid");
    dl.append(el("dt", "", "params"), el("dd", "", compact(c.params)));
    dl.append(el("dt", "", "state"), el("dd", "", compact(c.state)));
    dl.append(el("dt", "", "subscribed"), el("dd", "", c.subscriptions.join(", ") || "—"));
    d.append(dl);
    box.append(d);
  }
}

function renderAlarms(alarms) {
  const box = $("alarms");
  box.replaceChildren();
  $("alarm-count").textContent = alarms.length ? "(" + alarms.length + ")" : "";
  if (!alarms.length) { box.append(el("p", "muted", "Nothing scheduled.")); return; }
  const t = el("table", "table");
  const head = el("tr");
  ["at", "action", "args"].forEach((h) => head.append(el("th", "", h)));
  t.append(el("thead"));
  t.firstChild.append(head);
  const body = el("tbody");
  for (const a of alarms) {
    const tr = el("tr");
    tr.append(el("td", "", dateTime(a.at)), el("td", "", a.action), el("td", "", compact(a.args)));
    body.append(tr);
  }
  t.append(body);
  box.append(t);
}

function addEvent(ev) {
  const li = el("li");
  li.append(el("span", "time", time(ev.at)), el("span", "ev-name", ev.name), document.createTextNode(" " + compact(ev.args)));
  const ol = $("events");
  ol.prepend(li);
  while (ol.children.length > 100) ol.lastChild.remove();
}

async function loadQueue(id) {
  const box = $("queue");
  try {
    const r = await api("actors/" + encodeURIComponent(id) + "/queue");
    if (state.selected !== id) return;
    box.replaceChildren();
    $("queue-count").textContent = r.messages.length ? "(" + r.messages.length + ")" : "";
    if (!r.messages.length) { box.append(el("p", "muted", "No queued messages.")); return; }
    const t = el("table", "table");
    const head = el("tr");
    ["id", "queue", "body", "sent"].forEach((h) => head.append(el("th", "", h)));
    t.append(el("thead"));
    t.firstChild.append(head);
    const body = el("tbody");
    for (const m of r.messages) {
      const tr = el("tr");
      tr.append(el("td", "", String(m.id)), el("td", "", m.name), el("td", "", compact(m.body)), el("td", "", dateTime(m.createdAt)));
      body.append(tr);
    }
    t.append(body);
    box.append(t);
  } catch (err) {
    box.replaceChildren(el("p", "error", errText(err)));
  }
}

$("queue-refresh").addEventListener("click", () => { if (state.selected) loadQueue(state.selected); });

async function loadLogs(id) {
  try {
    const r = await api("actors/" + encodeURIComponent(id) + "/logs");
    if (state.selected !== id) return;
    $("logs").replaceChildren();
    r.logs.forEach(addLog);
  } catch (err) {
    $("logs").replaceChildren(el("li", "error", errText(err)));
  }
}

function addLog(l) {
  const li = el("li");
  li.append(el("span", "time", time(l.time)), el("span", "lvl " + l.level, l.level), document.createTextNode(l.message));
  for (const a of l.attrs) li.append(el("span", "attr", a.key + "=" + a.value));
  const ol = $("logs");
  ol.prepend(li);
  while (ol.children.length > 200) ol.lastChild.remove();
}

// ---- live updates -----------------------------------------------------------

function openStream(id) {
  if (state.stream) state.stream.close();
  const url = new URL("actors/" + encodeURIComponent(id) + "/stream", API);
  if (token()) url.searchParams.set("token", token());
  const es = new EventSource(url);
  state.stream = es;
  const mine = (fn) => (e) => { if (state.stream === es) fn(JSON.parse(e.data)); };
  es.addEventListener("open", () => { $("live").hidden = false; });
  es.addEventListener("error", () => { $("live").hidden = true; });
  es.addEventListener("state", mine((d) => {
    const changed = state.detail && pretty(d.state) !== state.stateText;
    setState(d.state, changed);
    if (d.awake) setStatus("awake");
  }));
  es.addEventListener("event", mine(addEvent));
  es.addEventListener("log", mine(addLog));
  es.addEventListener("connections", mine((d) => renderConnections(d.connections)));
  es.addEventListener("lifecycle", mine((d) => {
    setStatus(d.status);
    if (d.status === "sleeping") renderConnections([]);
    if (d.status === "destroyed") { es.close(); $("live").hidden = true; }
  }));
  es.addEventListener("resync", mine(() => select(id)));
}

// ---- state editor -------------------------------------------------------------

$("save-state").addEventListener("click", async () => {
  hide("state-error", "state-ok");
  const text = $("state-editor").value;
  try {
    JSON.parse(text);
  } catch (err) {
    show("state-error", "Invalid JSON: " + err.message + ". Nothing was changed.");
    return;
  }
  const id = state.selected;
  try {
    const r = await api("actors/" + encodeURIComponent(id) + "/state", { method: "PUT", body: '{"state":' + text + "}" });
    setState(r.state, true);
    $("state-editor").value = state.stateText;
    show("state-ok", "State saved.");
  } catch (err) {
    show("state-error", errText(err) + "\nNothing was changed.");
  }
});

$("reset-state").addEventListener("click", () => {
  $("state-editor").value = state.stateText;
  hide("state-error", "state-ok");
});

// ---- actions ----------------------------------------------------------------------

$("action-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  hide("action-error", "action-result");
  const name = $("action-name").value.trim();
  const args = $("action-args").value.trim() || "[]";
  try {
    const v = JSON.parse(args);
    if (!Array.isArray(v)) throw new Error("the arguments must be a JSON array, like [1, \"two\"]");
  } catch (err) {
    show("action-error", "Invalid arguments: " + err.message);
    return;
  }
  try {
    const r = await api("actors/" + encodeURIComponent(state.selected) + "/actions/" + encodeURIComponent(name),
      { method: "POST", body: '{"args":' + args + "}" });
    show("action-result", pretty(r.output));
  } catch (err) {
    show("action-error", errText(err));
  }
});

// ---- KV ------------------------------------------------------------------------------

async function loadKV() {
  hide("kv-error");
  const id = state.selected;
  const q = new URLSearchParams({ limit: "200" });
  const prefix = $("kv-prefix").value;
  if (prefix) q.set("prefix", prefix);
  const body = $("kv-table").tBodies[0];
  try {
    const r = await api("actors/" + encodeURIComponent(id) + "/kv?" + q);
    if (state.selected !== id) return;
    body.replaceChildren();
    if (!r.entries.length) {
      const tr = el("tr");
      const td = el("td", "muted", prefix ? "No keys with this prefix." : "The KV store is empty.");
      td.colSpan = 2;
      tr.append(td);
      body.append(tr);
    }
    for (const kv of r.entries) {
      const tr = el("tr");
      const k = el("td", "", kv.key);
      k.title = "hex " + kv.keyHex;
      k.append(el("span", "enc", kv.keyEncoding));
      const v = el("td", "", kv.valueEncoding === "json" ? compact(kv.value) : kv.value);
      v.append(el("span", "enc", kv.valueEncoding + " · " + kv.size + " B"));
      tr.append(k, v);
      body.append(tr);
    }
  } catch (err) {
    show("kv-error", errText(err));
  }
}

$("kv-form").addEventListener("submit", (e) => { e.preventDefault(); loadKV(); });

// ---- start ------------------------------------------------------------------------------

if (token()) $("forget-token").hidden = false;
loadActors(false).then(() => {
  const id = location.hash.slice(1);
  if (id) select(id);
});
