// zhijian supervisor dashboard: sign-in, the alert wall, the waiting board, the scoreboard.
import { Unauthorised, api, el, liveSocket, message, session } from "./api.js";
import { applyTranslations, roleName, t, toggleLang } from "./i18n.js";
import { addAlert, applyAction, relabel, render, setupFilters, setupSettings, wall } from "./wall.js";
import { onConversation, renderBoard, resetBoard, startBoard, stopBoard } from "./board.js";
import { setupSearch } from "./search.js";
import { openConversation, setupConversation } from "./conversation.js";
import { showScores } from "./scores.js";
import { adminAllowed, showAdmin } from "./admin.js";
import { reviewAllowed, showReview } from "./review.js";
import { hideError, setupToast } from "./toast.js";

// The shell's state: the live sockets of this sign-in and what each reports.
const shell = { sockets: [], socketStates: new Map() /* socket name → connecting | live | interrupted */ };

function setStatus(state) {
  const status = el("status");
  status.className = `status ${state === "live" ? "status-on" : state === "interrupted" ? "status-down"
    : state === "offline" ? "status-off" : "status-wait"}`;
  status.dataset.state = state;
  status.textContent = t(state);
  el("outage").hidden = state !== "interrupted";
}

function socketState(name, state) {
  shell.socketStates.set(name, state);
  const states = [...shell.socketStates.values()];
  setStatus(states.includes("interrupted") ? "interrupted" : states.every((s) => s === "live") ? "live" : "connecting");
}

function showLogin(text) {
  for (const socket of shell.sockets.splice(0)) socket.stop();
  shell.socketStates.clear();
  session.token = "";
  session.user = null;
  localStorage.removeItem("zhijian.token");
  sessionStorage.removeItem("zhijian.token");
  for (const id of ["wall", "scores", "admin", "review", "tabs", "logout", "who", "sound-toggle", "settings-open", "search"]) el(id).hidden = true;
  stopBoard();
  search.clear();
  el("login").hidden = false;
  el("login-error").textContent = text || "";
  if (el("conversation").open) el("conversation").close();
  hideError();
  wall.reset();
  setStatus("offline");
}

async function loadRecent() {
  const since = wall.newestTs();
  const body = await api(`/api/alerts?${since ? `limit=500&since_ms=${since}` : "limit=300"}`);
  for (const alert of body.alerts.slice().reverse()) addAlert(alert, false);
  render();
}

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.tab === name);
    tab.setAttribute("aria-pressed", String(tab.dataset.tab === name));
  }
  el("wall").hidden = name !== "wall";
  el("scores").hidden = name !== "scores";
  el("admin").hidden = name !== "admin";
  el("review").hidden = name !== "review";
  showScores(name === "scores");
  showAdmin(name === "admin");
  showReview(name === "review");
}

function refused(code) {
  showLogin(code === 4401 ? t("session_ended") : t("bad_token"));
}

async function start() {
  try {
    session.user = await api("/api/me");
  } catch (err) {
    showLogin(err instanceof Unauthorised ? t("bad_token") : message(err));
    return;
  }
  el("login").hidden = true;
  for (const id of ["tabs", "logout", "who", "sound-toggle", "settings-open", "search"]) el(id).hidden = false;
  startBoard();
  const u = session.user;
  el("who").textContent = `${u.display_name} · ${roleName(u.role)}${u.team_id ? ` · ${u.team_id}` : ""}`;
  el("who").dataset.role = u.role;
  document.body.dataset.role = u.role;
  document.querySelector(".tab[data-tab=admin]").hidden = !adminAllowed();
  document.querySelector(".tab[data-tab=review]").hidden = !reviewAllowed();
  showTab("wall");
  el("alerts-loading").hidden = false;
  try { await loadRecent(); } catch (err) { console.warn("initial load failed", message(err)); }
  el("alerts-loading").hidden = true;
  shell.sockets.push(liveSocket("/ws/alerts", {
    onMessage: (m, { replay }) => { if (m && m.kind === "action") applyAction(m); else addAlert(m, !replay); },
    // a server that replays from our cursor needs no reload; otherwise catch up over REST
    onOpen: ({ resumed }) => {
      if (!resumed) loadRecent().catch((err) => console.warn("reload after reconnect failed", message(err)));
    },
    onState: (state) => socketState("alerts", state),
    onRefused: refused,
  }));
  shell.sockets.push(liveSocket("/ws/conversations", {
    onMessage: onConversation,
    onOpen: resetBoard,  // the server sends the waiting list first
    onState: (state) => socketState("conversations", state),
    onRefused: refused,
  }));
  const linked = /^#conversation=(.+)$/.exec(location.hash);
  if (linked) openConversation(decodeURIComponent(linked[1]));
}

el("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  let response;
  try {
    response = await fetch("/api/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: el("username").value.trim(), password: el("password").value }),
    });
  } catch {
    el("login-error").textContent = t("err_network");
    return;
  }
  if (!response.ok) { el("login-error").textContent = response.status === 401 ? t("wrong_login") : t("err_server", { status: response.status }); return; }
  const body = await response.json();
  session.token = body.token;
  localStorage.setItem("zhijian.token", body.token);
  el("password").value = "";
  start();
});
el("logout").addEventListener("click", async () => {
  try { await api("/api/logout", { method: "POST" }); } catch (err) { console.warn(message(err)); }
  showLogin("");
});
el("lang").addEventListener("click", toggleLang);
el("sound").addEventListener("change", (event) => wall.setSound(event.target.checked));
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
document.addEventListener("zhijian:lang", () => {
  setupFilters();
  relabel();
  renderBoard();
  setStatus(el("status").dataset.state);
  if (session.user) {
    const u = session.user;
    el("who").textContent = `${u.display_name} · ${roleName(u.role)}${u.team_id ? ` · ${u.team_id}` : ""}`;
  }
});

applyTranslations();
setupFilters();
setupSettings();
setupToast();
setupConversation();
const search = setupSearch();
// The operator's direct link: /#token=… (a fragment never reaches the server or its logs); ?token= still read.
// A link opened in a tab that is already on the page only changes the fragment: hashchange.
function tokenFromAddress() {
  const fromHash = /^#token=(.+)$/.exec(location.hash);
  const token = fromHash ? decodeURIComponent(fromHash[1]) : new URLSearchParams(location.search).get("token");
  if (!token) return false;
  for (const socket of shell.sockets.splice(0)) socket.stop();
  shell.socketStates.clear();
  session.token = token;
  localStorage.setItem("zhijian.token", token);
  history.replaceState(null, "", "/");
  return true;
}
window.addEventListener("hashchange", () => {
  if (tokenFromAddress()) start();
  else if (session.user) {
    const linked = /^#conversation=(.+)$/.exec(location.hash);
    if (linked) openConversation(decodeURIComponent(linked[1]));
  }
});
tokenFromAddress();
if (session.token) start(); else showLogin("");
