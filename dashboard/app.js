// zhijian supervisor dashboard: sign-in, the alert wall, the waiting board, the scoreboard.
import { Unauthorised, api, el, liveSocket, session } from "./api.js";
import { applyTranslations, t, toggleLang } from "./i18n.js";
import { addAlert, applyAction, render, setupFilters, wall } from "./wall.js";
import { onConversation, renderBoard, resetBoard } from "./board.js";
import { setupConversation } from "./conversation.js";
import { showScores } from "./scores.js";

const sockets = [];

function setStatus(state) {
  const status = el("status");
  status.className = `status ${state === "live" ? "status-on" : state === "offline" ? "status-off" : "status-wait"}`;
  status.dataset.state = state;
  status.textContent = t(state === "connecting" ? "connecting" : state);
}

function showLogin(message) {
  for (const socket of sockets.splice(0)) socket.stop();
  session.token = "";
  session.user = null;
  localStorage.removeItem("zhijian.token");
  for (const id of ["wall", "scores", "tabs", "logout", "who", "sound-toggle"]) el(id).hidden = true;
  el("login").hidden = false;
  el("login-error").textContent = message || "";
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
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  el("wall").hidden = name !== "wall";
  el("scores").hidden = name !== "scores";
  showScores(name === "scores");
}

async function start() {
  try {
    session.user = await api("/api/me");
  } catch (err) {
    showLogin(err instanceof Unauthorised ? t("bad_token") : String(err));
    return;
  }
  el("login").hidden = true;
  for (const id of ["tabs", "logout", "who", "sound-toggle"]) el(id).hidden = false;
  const u = session.user;
  el("who").textContent = `${u.display_name} · ${u.role}${u.team_id ? ` · ${u.team_id}` : ""}`;
  el("who").dataset.role = u.role;
  showTab("wall");
  try { await loadRecent(); } catch (err) { console.warn("initial load failed", err); }
  sockets.push(liveSocket("/ws/alerts", {
    onMessage: (m) => { if (m.kind === "action") applyAction(m); else addAlert(m, true); render(); },
    onOpen: () => loadRecent().catch((err) => console.warn("reload after reconnect failed", err)),
    onState: setStatus,
    onRefused: () => showLogin(t("bad_token")),
  }));
  sockets.push(liveSocket("/ws/conversations", {
    onMessage: onConversation,
    onOpen: resetBoard,  // the server sends the waiting list first
  }));
}

el("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: el("username").value.trim(), password: el("password").value }),
  });
  if (!response.ok) { el("login-error").textContent = t("wrong_login"); return; }
  const body = await response.json();
  session.token = body.token;
  localStorage.setItem("zhijian.token", body.token);
  el("password").value = "";
  start();
});
el("logout").addEventListener("click", async () => {
  try { await api("/api/logout", { method: "POST" }); } catch (err) { console.warn(err); }
  showLogin("");
});
el("lang").addEventListener("click", toggleLang);
el("sound").addEventListener("change", (event) => wall.setSound(event.target.checked));
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
document.addEventListener("zhijian:lang", () => { setupFilters(); render(); renderBoard(); setStatus(el("status").dataset.state); });

applyTranslations();
setupFilters();
setupConversation();
const fromUrl = new URLSearchParams(location.search).get("token");
if (fromUrl) {
  session.token = fromUrl;
  localStorage.setItem("zhijian.token", fromUrl);
  history.replaceState(null, "", "/");
}
if (session.token) start(); else showLogin("");
