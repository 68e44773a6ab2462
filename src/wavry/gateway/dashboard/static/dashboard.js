// Wavry gateway admin dashboard. No framework, no inline code, no HTML strings: every value from
// the API reaches the page through textContent (Trusted Types are enforced by the CSP, so any
// HTML-string sink would throw). The admin token lives in sessionStorage only.
"use strict";

const TOKEN_KEY = "wavry-admin-token";
const API = "/admin/api";
const REQUEST_TIMEOUT_MS = 15000;

const $ = (id) => {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`missing #${id}`);
  return node;
};

// ---------------------------------------------------------------------------------- DOM helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(node, visible) {
  node.hidden = !visible;
}

function setText(id, text) {
  const node = $(id);
  node.textContent = text;
  show(node, Boolean(text));
}

function fmtTime(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "never";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function table(node, headers, rows, empty) {
  node.replaceChildren();
  node.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody", {});
  if (rows.length === 0) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: headers.length }, empty)));
  }
  for (const row of rows) body.append(row);
  node.append(body);
}

// ---------------------------------------------------------------------------------- API access

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, { method = "GET", body, adminToken } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = { accept: "application/json", "x-admin-token": adminToken ?? token() };
  if (body !== undefined) headers["content-type"] = "application/json";
  let resp;
  try {
    resp = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      signal: controller.signal,
    });
  } catch (err) {
    throw new ApiError(0, controller.signal.aborted ? "the gateway did not answer in time"
      : "the gateway is unreachable");
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await resp.json();
  } catch (err) {
    data = null;
  }
  if (!resp.ok) {
    let message = data && typeof data.error === "string" ? data.error : `HTTP ${resp.status}`;
    if (resp.status === 429) {
      const retry = resp.headers.get("retry-after");
      message = `rate limited${retry ? `: retry in ${retry} s` : ""}`;
    }
    throw new ApiError(resp.status, message);
  }
  return data;
}

function explain(err) {
  if (!(err instanceof ApiError)) return `unexpected error: ${err && err.message}`;
  if (err.status === 401) return "Token rejected: the admin token is missing or wrong.";
  if (err.status === 403) return `Refused: ${err.message}`;
  return err.message;
}

// A 401 after sign-in (token rotated on the server): back to the sign-in form.
function handleFailure(err) {
  if (err instanceof ApiError && err.status === 401) {
    signOut("Signed out: the admin token is no longer accepted.");
    return;
  }
  setText("app-error", explain(err));
}

// ---------------------------------------------------------------------------------- notices

let noticeTimer = 0;
function notice(text) {
  const node = $("notice");
  node.textContent = text;
  show(node, true);
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => show(node, false), 8000);
}

// ---------------------------------------------------------------------------------- rows

function userRow(user) {
  const actions = el("td", { class: "actions" });
  if (user.banned) {
    actions.append(el("button", {
      type: "button", "aria-label": `Unban ${user.username}`, onclick: () => unban(user),
    }, "Unban"));
  } else {
    actions.append(el("button", {
      type: "button", class: "danger", "aria-label": `Ban ${user.username}`,
      onclick: () => openBan(user),
    }, "Ban"));
  }
  actions.append(el("button", {
    type: "button", "aria-label": `Sessions of ${user.username}`,
    onclick: () => { $("sessions-user").value = user.id; selectTab("sessions"); },
  }, "Sessions"));
  return el("tr", { dataset: { userId: user.id, username: user.username } },
    el("td", {}, user.username),
    el("td", {}, user.display_name),
    el("td", {}, user.email),
    el("td", {}, user.has_totp ? "on" : "off"),
    el("td", {}, fmtTime(user.created_at)),
    el("td", { class: user.banned ? "status banned" : "status" }, user.banned ? "banned" : "active"),
    actions);
}
const USER_HEADERS = ["Username", "Display name", "Email", "2FA", "Created", "Status", "Actions"];

function sessionRow(s) {
  return el("tr", { dataset: { sessionId: s.id, userId: s.user_id, username: s.username } },
    el("td", { class: "mono" }, s.id),
    el("td", {}, s.username),
    el("td", {}, fmtTime(s.created_at)),
    el("td", {}, fmtTime(s.expires_at)),
    el("td", { class: "ua" }, s.user_agent || ""),
    el("td", { class: "actions" }, el("button", {
      type: "button", class: "danger", "aria-label": `Revoke session ${s.id}`,
      onclick: () => revokeSession(s),
    }, "Revoke")));
}
const SESSION_HEADERS = ["Session", "User", "Created", "Expires", "User agent", "Actions"];

function banRow(b) {
  return el("tr", { dataset: { userId: b.user_id, username: b.username } },
    el("td", {}, b.username),
    el("td", {}, b.reason),
    el("td", {}, fmtTime(b.created_at)),
    el("td", {}, b.expires_at === null ? "permanent" : fmtTime(b.expires_at)),
    el("td", { class: "actions" }, el("button", {
      type: "button", "aria-label": `Unban ${b.username}`,
      onclick: () => unban({ id: b.user_id, username: b.username }),
    }, "Unban")));
}

function auditRow(e) {
  let details = "";
  if (e.details !== null && e.details !== undefined) {
    details = JSON.stringify(e.details);
    if (details.length > 300) details = details.slice(0, 300) + "…";
  }
  return el("tr", { dataset: { action: e.action } },
    el("td", {}, fmtTime(e.created_at)),
    el("td", {}, e.actor),
    el("td", {}, e.action),
    el("td", {}, e.target_id ? `${e.target_type} ${e.target_id}` : e.target_type),
    el("td", { class: `outcome ${e.outcome}` }, e.outcome),
    el("td", { class: "mono details" }, details));
}

function relayRow(r) {
  const endpoints = Array.isArray(r.endpoints) ? r.endpoints.join(", ") : "";
  const seen = typeof r.last_seen_ms_ago === "number" ? `${(r.last_seen_ms_ago / 1000).toFixed(1)} s ago` : "";
  return el("tr", { dataset: { relayId: String(r.relay_id ?? "") } },
    el("td", { class: "mono" }, String(r.relay_id ?? "")),
    el("td", {}, String(r.state ?? "")),
    el("td", {}, String(r.region ?? "")),
    el("td", {}, endpoints),
    el("td", {}, r.load_pct === undefined ? "" : `${r.load_pct} %`),
    el("td", {}, seen));
}

// ---------------------------------------------------------------------------------- views

const loaders = {
  async overview() {
    const o = await api("/overview");
    $("stat-users").textContent = String(o.users_total);
    $("stat-sessions").textContent = String(o.sessions_active);
    $("stat-bans").textContent = String(o.active_bans.length);
    table($("overview-users"), USER_HEADERS, o.recent_users.map(userRow), "No users yet.");
    table($("overview-sessions"), SESSION_HEADERS, o.recent_sessions.map(sessionRow),
      "No active sessions.");
    table($("overview-bans"), ["User", "Reason", "Since", "Until", "Actions"],
      o.active_bans.map(banRow), "No active bans.");
  },
  async users() {
    const q = $("users-query").value.trim();
    const data = await api(`/users?limit=200&query=${encodeURIComponent(q)}`);
    table($("users-table"), USER_HEADERS, data.users.map(userRow),
      q ? "No user matches." : "No users yet.");
  },
  async sessions() {
    const userId = $("sessions-user").value.trim();
    const query = userId ? `?limit=500&user_id=${encodeURIComponent(userId)}` : "?limit=500";
    const data = await api(`/sessions${query}`);
    table($("sessions-table"), SESSION_HEADERS, data.sessions.map(sessionRow),
      "No active sessions.");
  },
  async audit() {
    const action = $("audit-action").value.trim();
    const query = action ? `?limit=200&action=${encodeURIComponent(action)}` : "?limit=200";
    const data = await api(`/audit${query}`);
    table($("audit-table"), ["Time", "Actor", "Action", "Target", "Outcome", "Details"],
      data.events.map(auditRow), "No events.");
  },
  async relays() {
    const source = $("relays-source");
    try {
      const data = await api("/relays");
      source.textContent = `As the master at ${data.master_url} sees them.`;
      table($("relays-table"), ["Relay", "State", "Region", "Endpoints", "Load", "Last seen"],
        data.relays.map(relayRow), "The master knows no relay.");
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 401 || err.status === 429) throw err;
      source.textContent = explain(err);
      $("relays-table").replaceChildren();
    }
  },
};

let currentTab = "overview";

async function refresh() {
  setText("app-error", "");
  try {
    await loaders[currentTab]();
  } catch (err) {
    handleFailure(err);
  }
}

function selectTab(name) {
  if (!(name in loaders)) return;
  currentTab = name;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  }
  for (const section of document.querySelectorAll(".tab")) {
    show(section, section.id === `tab-${name}`);
  }
  return refresh();
}

// ---------------------------------------------------------------------------------- actions

let banTarget = null;

function openBan(user) {
  banTarget = user;
  $("ban-username").textContent = user.username;
  $("ban-reason").value = "";
  $("ban-hours").value = "";
  setText("ban-error", "");
  $("ban-dialog").showModal();
  $("ban-reason").focus();
}

async function confirmBan(event) {
  event.preventDefault();
  if (banTarget === null) return;
  const reason = $("ban-reason").value.trim();
  const hoursText = $("ban-hours").value.trim();
  if (!reason) {
    setText("ban-error", "A reason is required.");
    return;
  }
  const body = { user_id: banTarget.id, reason };
  if (hoursText) {
    const hours = Number(hoursText);
    if (!Number.isFinite(hours) || hours <= 0 || hours > 87600) {
      setText("ban-error", "Duration: a number of hours above 0 (at most 87600), or empty.");
      return;
    }
    body.duration_hours = hours;
  }
  const button = $("ban-confirm");
  button.disabled = true;
  try {
    await api("/ban", { method: "POST", body });
    const who = banTarget.username;
    $("ban-dialog").close();
    banTarget = null;
    notice(`Banned ${who}${body.duration_hours ? ` for ${body.duration_hours} h` : ""}; ` +
      "their sessions are revoked.");
    await refresh();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      $("ban-dialog").close();
      handleFailure(err);
    } else {
      setText("ban-error", explain(err));
    }
  } finally {
    button.disabled = false;
  }
}

async function unban(user) {
  try {
    await api("/unban", { method: "POST", body: { user_id: user.id } });
    notice(`Unbanned ${user.username}.`);
    await refresh();
  } catch (err) {
    handleFailure(err);
  }
}

async function revokeSession(s) {
  try {
    const data = await api("/sessions/revoke", { method: "POST", body: { session_id: s.id } });
    notice(data.revoked ? `Revoked session ${s.id} of ${s.username}.`
      : `Session ${s.id} was already gone.`);
    await refresh();
  } catch (err) {
    handleFailure(err);
  }
}

// ---------------------------------------------------------------------------------- sign-in

function enterApp() {
  show($("login-view"), false);
  show($("app-view"), true);
  show($("sign-out"), true);
  show($("refresh"), true);
  setText("login-error", "");
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  show($("app-view"), false);
  show($("sign-out"), false);
  show($("refresh"), false);
  show($("login-view"), true);
  $("token").value = "";
  setText("login-error", message || "");
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  if (!candidate) {
    setText("login-error", "Enter the admin token.");
    return;
  }
  const button = $("sign-in");
  button.disabled = true;
  try {
    await api("/overview", { adminToken: candidate });
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $("token").value = "";
    enterApp();
    await selectTab("overview");
  } catch (err) {
    setText("login-error", explain(err));
  } finally {
    button.disabled = false;
  }
}

function start() {
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("refresh").addEventListener("click", () => refresh());
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
  $("users-search").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("sessions-filter").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("audit-filter").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });
  $("ban-form").addEventListener("submit", confirmBan);
  $("ban-cancel").addEventListener("click", () => { banTarget = null; $("ban-dialog").close(); });
  document.body.dataset.ready = "true";
  if (token()) {
    enterApp();
    selectTab("overview");
  } else {
    $("token").focus();
  }
}

start();
