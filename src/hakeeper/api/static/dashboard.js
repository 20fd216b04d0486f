// hakeeper dashboard: reads the operator API like any client. Plain JS, no build step, no outside files.
//
// Live updates: one server-sent event stream (/v1/events/stream, read with fetch so the token can travel
// in a header); each event (or burst of events) triggers one re-read of /v1/cluster and /v1/resources.
// A slow re-read every SAFETY_REFRESH_MS catches what no event announces (a link going down).
"use strict";

const TOKEN_KEY = "hakeeper-token";
const ROLES = { read: 1, operate: 2, admin: 3 };
const MAX_EVENTS = 200;
const SAFETY_REFRESH_MS = 30000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10000;

const state = {
  role: 0,
  cluster: null,
  resources: null,
  fetchedAt: 0,        // performance.now() of the last resources read: countdowns count from it
  lastEventId: 0,
  events: [],
  refreshing: false,
  refreshAgain: false,
  streamAbort: null,
  retryMs: RETRY_MIN_MS,
};

// --- small helpers ---------------------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  const t = token();
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

class ApiFailure extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (err) {
    throw new ApiFailure(0, "the node serving this page does not answer (" + err.message + ")");
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    throw new ApiFailure(resp.status, (data && data.error) || ("HTTP " + resp.status));
  }
  return data;
}

function banner(text, ok) {
  const b = $("banner");
  b.textContent = text || "";
  b.hidden = !text;
  b.classList.toggle("ok", Boolean(ok));
}

function setConnection(stateName, text) {
  const badge = $("connection");
  badge.dataset.state = stateName;
  badge.textContent = text;
}

function clock(epochSeconds) {
  if (!epochSeconds) return "";
  const d = new Date(epochSeconds * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + (Date.now() - d > 86400000 ? " " + d.toLocaleDateString() : "");
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
  return Math.floor(m / 60) + " h " + String(m % 60).padStart(2, "0") + " min";
}

function canOperate() { return state.role >= ROLES.operate; }

// --- authentication ----------------------------------------------------------------------------------------

function takeTokenFromFragment() {
  // "#token=..." (as `hakeeper demo` prints it): keep it for this tab, then take it out of the address bar
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

async function signIn() {
  try {
    const who = await api("GET", "v1/whoami");
    state.role = ROLES[who.role] || 0;
    $("identity").textContent = who.actor + " (" + who.role + ")";
    $("forget-token").hidden = !token();
    document.body.classList.toggle("read-only", !canOperate());
    if (state.cluster) render();  // another token, another role: its buttons at once
    $("login").hidden = true;
    $("main").hidden = false;
    return true;
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      showLogin(token() ? err.message : "");
      return false;
    }
    banner(err.message);
    setConnection("lost", "no answer");
    setTimeout(start, RETRY_MAX_MS);
    return false;
  }
}

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  setConnection("connecting", "no token");
  $("token-input").focus();
}

// --- reading the cluster -----------------------------------------------------------------------------------

async function refresh() {
  if (state.refreshing) { state.refreshAgain = true; return; }
  state.refreshing = true;
  try {
    do {
      state.refreshAgain = false;
      const [cluster, resources] = await Promise.all([api("GET", "v1/cluster"), api("GET", "v1/resources")]);
      state.cluster = cluster;
      state.resources = resources;
      state.fetchedAt = performance.now();
      render();
    } while (state.refreshAgain);
  } catch (err) {
    if (err.status === 401) { showLogin(err.message); return; }
    banner("could not read the cluster: " + err.message);
  } finally {
    state.refreshing = false;
  }
}

async function loadRecentEvents() {
  const list = await api("GET", "v1/events?limit=50");
  state.events = list.events.slice().reverse();
  state.lastEventId = list.last_id;
  renderEvents();
}

function onEvent(event) {
  if (event.id <= state.lastEventId) return;
  state.lastEventId = event.id;
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, MAX_EVENTS);
  renderEvents();
  refresh();
}

// Server-sent events over fetch: blocks separated by a blank line, "id:"/"event:"/"data:" fields.
async function follow() {
  if (state.streamAbort) state.streamAbort.abort();
  const abort = new AbortController();
  state.streamAbort = abort;
  try {
    const resp = await fetch("v1/events/stream?since=" + state.lastEventId, {
      headers: headers({ Accept: "text/event-stream" }),
      signal: abort.signal,
      cache: "no-store",
    });
    if (resp.status === 401) { showLogin("the token stopped working (revoked?)"); return; }
    if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
    setConnection("live", "live");
    banner("");
    state.retryMs = RETRY_MIN_MS;
    refresh();  // whatever happened while we were away
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        handleBlock(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
    throw new Error("the event stream ended");
  } catch (err) {
    if (abort.signal.aborted) return;
    const node = state.cluster ? state.cluster.local_node : "the node";
    setConnection("lost", "disconnected");
    banner("lost the connection to " + node + " (" + err.message + "); retrying in "
      + Math.round(state.retryMs / 1000) + " s. What is shown may be out of date.");
    setTimeout(follow, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
  }
}

function handleBlock(block) {
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (!data.length) return;  // a comment (": ...") or keep-alive
  try {
    onEvent(JSON.parse(data.join("\n")));
  } catch (_) {
    // a malformed event: skip it, the next re-read shows the state anyway
  }
}

// --- rendering ---------------------------------------------------------------------------------------------

function nodeState(n) {
  if (n.unclean) return "unclean";
  if (!n.online) return "offline";
  if (n.standby) return "standby";
  if (n.maintenance) return "maintenance";
  return "online";
}

function render() {
  const c = state.cluster;
  $("cluster-name").textContent = c.cluster_name;
  const q = $("quorum");
  q.textContent = c.quorate ? "quorate" : "NO QUORUM";
  q.className = "badge " + (c.quorate ? "quorate" : "no-quorum");
  $("dc").textContent = "DC: " + (c.dc || "none");
  $("local-node").textContent = "via " + c.local_node;
  $("version").textContent = "CIB " + c.version;
  $("version").className = "muted";
  renderNodes(c);
  renderResources(c, state.resources);
  renderFailed(state.resources.failed_actions || []);
  tick();
}

function renderNodes(c) {
  const body = $("nodes").tBodies[0];
  body.replaceChildren(...c.nodes.map((n) => {
    const st = nodeState(n);
    const badges = [el("span", { class: "badge state-" + st, "data-role": "state" }, st)];
    if (n.is_dc) badges.push(" ", el("span", { class: "badge dc" }, "DC"));
    if (n.fenced_at) badges.push(" ", el("span", { class: "badge state-fenced" }, "fenced " + clock(n.fenced_at)));
    if (n.maintenance && st !== "maintenance") badges.push(" ", el("span", { class: "badge state-maintenance" }, "maintenance"));
    const ops = el("td", { class: "ops" });
    if (canOperate()) {
      ops.append(n.standby
        ? el("button", { type: "button", onclick: () => confirmAction({ action: "unstandby", node: n.name }) }, "unstandby")
        : el("button", { type: "button", onclick: () => confirmAction({ action: "standby", node: n.name }) }, "standby"));
    }
    return el("tr", { "data-node": n.name, "data-state": st },
      el("td", {}, n.name), el("td", {}, badges), el("td", {}, (n.resources || []).join(", ")), ops);
  }));
}

function renderResources(c, list) {
  const all = list.resources;
  $("resource-counts").textContent = c.resources_active + " of " + c.resources_configured + " active";
  const online = c.nodes.filter((n) => n.online && !n.standby).map((n) => n.name);
  $("resources").tBodies[0].replaceChildren(...all.map((r) => {
    const role = [el("span", { class: "badge state-" + r.role }, r.role)];
    if (r.failed) role.push(" ", el("span", { class: "badge state-failed" }, "failed"));
    const nodes = r.nodes || [];
    const where = nodes.length ? nodes.map((n) => (r.promoted_on || []).includes(n) ? n + " (promoted)" : n).join(", ") : "—";
    const name = [r.parent ? el("span", { class: "muted" }, r.parent + " / ") : null, r.id];
    if (r.target_role) name.push(" ", el("span", { class: "muted" }, "target " + r.target_role));
    if (!r.managed) name.push(" ", el("span", { class: "badge state-maintenance" }, "unmanaged"));
    return el("tr", { "data-rsc": r.id, "data-nodes": nodes.join(" "), "data-role": r.role, "data-failed": r.failed },
      el("td", {}, name),
      el("td", { class: "muted" }, r.agent || r.kind),
      el("td", {}, role),
      el("td", { "data-role": "where" }, where),
      el("td", {}, failCounts(r.fail_counts || [])),
      resourceOps(r, online));
  }));
}

function failCounts(counts) {
  return counts.map((f) => el("div", {},
    f.count + " on " + f.node + " (threshold " + f.migration_threshold + ")",
    f.expires_in_s === null || f.expires_in_s === undefined ? " never expires"
      : [" expires in ", el("span", { class: "countdown", "data-expires": f.expires_in_s }, duration(f.expires_in_s))]));
}

function resourceOps(r, online) {
  const td = el("td", { class: "ops" });
  if (!canOperate()) return td;
  const isTop = !r.parent;  // groups and clones move as a whole
  if (isTop && r.kind !== "clone") {
    const targets = online.filter((n) => !(r.nodes || []).includes(n));
    if (targets.length) {
      const select = el("select", { "aria-label": "move " + r.id + " to" }, targets.map((n) => el("option", { value: n }, n)));
      td.append(select, el("button", { type: "button", onclick: () => confirmAction({ action: "move", rsc: r.id, node: select.value }) }, "move"));
    }
  }
  if ((r.fail_counts || []).length || r.failed) {
    td.append(el("button", { type: "button", onclick: () => confirmAction({ action: "cleanup", rsc: r.id }) }, "cleanup"));
  }
  return td;
}

function renderFailed(failed) {
  $("no-failed").hidden = failed.length > 0;
  $("failed").hidden = failed.length === 0;
  $("failed").tBodies[0].replaceChildren(...failed.map((f) => el("tr", { "data-rsc": f.rsc },
    el("td", {}, f.rsc), el("td", {}, f.node),
    el("td", {}, f.operation + (f.interval_ms ? " every " + duration(f.interval_ms / 1000) : "")),
    el("td", {}, String(f.rc)), el("td", {}, f.exit_reason || "—"), el("td", {}, clock(f.last_rc_change)))));
}

// what happened, with whom: the event's own words plus the resource, operation and node they omit
// (the same wording as `hakeeper status`)
function eventText(e) {
  const subject = [];
  const desc = e.desc || "";
  if (e.rsc && !desc.includes(e.rsc)) subject.push(e.rsc);
  if (e.task && !desc.includes(e.task)) subject.push(e.interval_ms ? e.task + " (" + Math.floor(e.interval_ms / 1000) + "s)" : e.task);
  if (e.attribute_name && !desc.includes(e.attribute_name)) subject.push(e.attribute_name + "=" + (e.attribute_value || ""));
  if (e.node && !desc.includes(e.node)) subject.push(subject.length ? "on " + e.node : e.node);
  return subject.length ? subject.join(" ") + ": " + desc : desc;
}

function renderEvents() {
  $("events").replaceChildren(...state.events.map((e) => el("li", { "data-kind": e.kind },
    el("time", {}, clock(e.timestamp)), el("span", { class: "badge" }, e.kind), " ", eventText(e))));
}

// countdowns move every second between re-reads, from the time left when they were read
function tick() {
  const elapsed = (performance.now() - state.fetchedAt) / 1000;
  for (const span of document.querySelectorAll("[data-expires]")) {
    span.textContent = duration(Number(span.dataset.expires) - elapsed);
  }
}

// --- operating ----------------------------------------------------------------------------------------------

function describeAction(a) {
  if (a.action === "move") return "Move " + a.rsc + " to " + a.node;
  if (a.action === "cleanup") return "Clean up " + a.rsc + " (forget its failures; it is probed again)";
  if (a.action === "standby") return "Put " + a.node + " in standby (its resources move away)";
  return "Take " + a.node + " out of standby";
}

function writeRoute(a) {
  const enc = encodeURIComponent;
  if (a.action === "move") return ["v1/resources/" + enc(a.rsc) + "/move", { node: a.node }];
  if (a.action === "cleanup") return ["v1/resources/" + enc(a.rsc) + "/cleanup", {}];
  return ["v1/nodes/" + enc(a.node) + "/" + a.action, undefined];
}

async function confirmAction(a) {
  const dialog = $("confirm");
  const ok = $("confirm-ok");
  $("confirm-title").textContent = describeAction(a) + "?";
  $("confirm-plan").textContent = "predicting…";
  $("confirm-error").textContent = "";
  ok.disabled = true;
  dialog.returnValue = "";
  const closed = new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
  dialog.showModal();
  try {
    const plan = await api("POST", "v1/preview", a);
    const lines = plan.summary.length ? plan.summary : ["(nothing would change)"];
    $("confirm-plan").textContent = lines.concat(plan.warnings.map((w) => "warning: " + w)).join("\n");
    ok.disabled = false;
  } catch (err) {
    $("confirm-plan").textContent = "";
    $("confirm-error").textContent = "cannot predict this action: " + err.message;
  }
  if ((await closed) !== "ok") return;
  const [path, body] = writeRoute(a);
  try {
    const result = await api("POST", path, body);
    banner(describeAction(a) + ": " + (result.changed === false ? "nothing needed changing" : "committed (CIB " + result.version + ")"), true);
    refresh();
  } catch (err) {
    banner(describeAction(a) + " failed: " + err.message);
  }
}

// --- start ---------------------------------------------------------------------------------------------------

async function start() {
  takeTokenFromFragment();
  if (!(await signIn())) return;
  try {
    await loadRecentEvents();
  } catch (err) {
    banner("could not read the recent events: " + err.message);
  }
  await refresh();
  follow();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    start();
  });
  $("forget-token").addEventListener("click", () => {
    if (state.streamAbort) state.streamAbort.abort();
    showLogin("");
  });
  // a link with another token, opened in this tab: the page does not reload for a new fragment
  window.addEventListener("hashchange", () => { if (/(?:^#|&)token=/.test(location.hash)) start(); });
  setInterval(tick, 1000);
  setInterval(() => { if (state.cluster && !$("main").hidden) refresh(); }, SAFETY_REFRESH_MS);
  start();
});
