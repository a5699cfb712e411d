// zhijian supervisor wall: recent alerts over REST, live alerts over WebSocket.
// Reconnects by itself with backoff; after a reconnect it reloads what it missed.
"use strict";

const MAX_ROWS = 500;
const RULE_NAMES = {
  banned_word: "禁忌用词",
  impolite_address: "称呼不当（你/您）",
  forbidden_phrase: "禁忌语句",
  conflict: "与顾客冲突",
  deflection: "推脱",
  pii_leak: "信息泄露",
  customer_anger: "顾客情绪激动（需安抚）",
  slow_first_response: "首次响应超时",
  customer_waiting: "顾客等待",
  unanswered_at_end: "回复中断",
};
const STATE_NAMES = { cleared: "已回复", unanswered: "未回复即结束" };
const SEVERITY_NAMES = { critical: "严重", warning: "警告", info: "提示" };

const state = { token: localStorage.getItem("zhijian.token") || "", seen: new Map(), socket: null,
                retryMs: 500, newestTs: 0, boardSocket: null, board: new Map() };
const el = (id) => document.getElementById(id);

function setStatus(kind, text) {
  const status = el("status");
  status.className = `status status-${kind}`;
  status.dataset.state = kind === "on" ? "live" : kind === "wait" ? "reconnecting" : "offline";
  status.textContent = text;
}

function showLogin(message) {
  state.token = "";
  localStorage.removeItem("zhijian.token");
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
  if (state.boardSocket) { state.boardSocket.onclose = null; state.boardSocket.close(); state.boardSocket = null; }
  el("wall").hidden = true;
  el("logout").hidden = true;
  el("login").hidden = false;
  el("login-error").textContent = message || "";
  setStatus("off", "未连接");
}

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function excerptCell(alert) {
  const td = document.createElement("td");
  td.className = "excerpt";
  const text = alert.excerpt || "";
  const [start, end] = Array.isArray(alert.span) ? alert.span : [0, 0];
  td.append(document.createTextNode(text.slice(0, start)));
  if (end > start) {
    const mark = document.createElement("mark");
    mark.textContent = text.slice(start, end);
    td.append(mark);
  }
  td.append(document.createTextNode(text.slice(Math.max(end, start))));
  if (alert.rule === "slow_first_response" && alert.detail) {
    td.prepend(document.createTextNode(`首次响应 ${alert.detail.first_response_s} 秒 · `));
  }
  if (alert.rule === "customer_waiting" && alert.detail) {
    const note = STATE_NAMES[alert.state] ? ` · ${STATE_NAMES[alert.state]}` : "";
    td.prepend(document.createTextNode(`已等待 ${Math.round(alert.detail.waited_s)} 秒${note} · `));
  }
  return td;
}

function row(alert, fresh) {
  const tr = document.createElement("tr");
  tr.dataset.alertId = alert.alert_id;
  tr.dataset.severity = alert.severity;
  tr.dataset.state = alert.state || "open";
  if (fresh) tr.className = "fresh";
  const sev = document.createElement("td");
  const badge = document.createElement("span");
  badge.className = `sev sev-${alert.severity}`;
  badge.textContent = SEVERITY_NAMES[alert.severity] || alert.severity;
  sev.append(badge);
  tr.append(
    sev,
    cell(RULE_NAMES[alert.rule] || alert.rule),
    cell(new Date(alert.ts_ms).toLocaleTimeString("zh-CN", { hour12: false })),
    cell(alert.agent_id || "—"),
    cell(alert.team_id || "—"),
    cell(alert.conversation_id, "mono"),
    excerptCell(alert),
  );
  return tr;
}

function addAlerts(alerts, fresh) {
  const body = el("alerts");
  // Newest first: keep the table ordered by event time, whatever order alerts arrive in.
  for (const alert of alerts) {
    if (!alert || !alert.alert_id) continue;
    const revision = alert.revision || 0;
    if (state.seen.has(alert.alert_id)) {
      // the same alert, changed (a waiting customer: warning → critical → answered): newest revision wins
      if (revision <= state.seen.get(alert.alert_id)) continue;
      const old = body.querySelector(`tr[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
      if (old) old.remove();
    }
    state.seen.set(alert.alert_id, revision);
    state.newestTs = Math.max(state.newestTs, alert.ts_ms || 0);
    const tr = row(alert, fresh);
    let before = null;
    for (const existing of body.children) {
      if (Number(existing.dataset.ts) < alert.ts_ms) { before = existing; break; }
    }
    tr.dataset.ts = String(alert.ts_ms);
    body.insertBefore(tr, before);
  }
  while (body.children.length > MAX_ROWS) {
    state.seen.delete(body.lastElementChild.dataset.alertId);
    body.lastElementChild.remove();
  }
  el("empty").hidden = body.children.length > 0;
  el("count").textContent = `${body.children.length} 条告警`;
}

async function loadRecent() {
  const query = state.newestTs ? `?limit=500&since_ms=${state.newestTs}` : "?limit=200";
  const response = await fetch(`/api/alerts${query}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (response.status === 401) { showLogin("令牌无效，请重新输入"); return false; }
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const body = await response.json();
  addAlerts(body.alerts.slice().reverse(), false);
  return true;
}

function connect() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/alerts?token=${encodeURIComponent(state.token)}`);
  state.socket = socket;
  setStatus("wait", "连接中…");
  socket.onopen = async () => {
    state.retryMs = 500;
    setStatus("on", "实时");
    try { await loadRecent(); } catch (err) { console.warn("reload after reconnect failed", err); }
  };
  socket.onmessage = (event) => {
    try { addAlerts([JSON.parse(event.data)], true); } catch (err) { console.warn("bad alert", err); }
  };
  socket.onclose = (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (event.code === 1008) { showLogin("令牌无效，请重新输入"); return; }
    setStatus("wait", "重连中…");
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 10000);
  };
}

// The waiting board: conversations whose customer has waited long enough to show, longest first.
function renderBoard() {
  const list = el("waiting");
  const now = Date.now();
  const items = [...state.board.values()].sort((a, b) => a.waiting_since_ms - b.waiting_since_ms);
  list.replaceChildren(...items.map((c) => {
    const li = document.createElement("li");
    li.dataset.conversationId = c.conversation_id;
    li.dataset.level = String(c.waiting_level || 0);
    const waited = document.createElement("span");
    waited.className = "waited";
    waited.textContent = `${Math.max(0, Math.floor((now - c.waiting_since_ms) / 1000))} 秒`;
    const who = document.createElement("span");
    who.textContent = `${c.agent_id || "未分配"} · ${c.team_id || "—"}`;
    const id = document.createElement("span");
    id.className = "mono";
    id.textContent = c.conversation_id;
    li.append(who, waited, id);
    return li;
  }));
  el("waiting-count").textContent = String(items.length);
  el("waiting-empty").hidden = items.length > 0;
}

function onConversation(c) {
  if (!c || !c.conversation_id) return;
  const known = state.board.get(c.conversation_id);
  if (known && known.version > c.version) return;  // an older snapshot arriving late
  if (c.status === "waiting" && c.waiting_since_ms) state.board.set(c.conversation_id, c);
  else state.board.delete(c.conversation_id);
  renderBoard();
}

function connectBoard() {
  if (!state.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/conversations?token=${encodeURIComponent(state.token)}`);
  state.boardSocket = socket;
  socket.onopen = () => { state.board.clear(); renderBoard(); };  // the server sends the waiting list first
  socket.onmessage = (event) => {
    try { onConversation(JSON.parse(event.data)); } catch (err) { console.warn("bad conversation", err); }
  };
  socket.onclose = (event) => {
    if (state.boardSocket !== socket || event.code === 1008) return;
    state.boardSocket = null;
    setTimeout(connectBoard, 1000);
  };
}
setInterval(() => { if (state.board.size) renderBoard(); }, 1000);

async function start() {
  el("login").hidden = true;
  el("wall").hidden = false;
  el("logout").hidden = false;
  try {
    if (!(await loadRecent())) return;
  } catch (err) {
    console.warn("initial load failed", err);
  }
  connect();
  connectBoard();
}

el("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = el("token").value.trim();
  if (!state.token) return;
  localStorage.setItem("zhijian.token", state.token);
  start();
});
el("logout").addEventListener("click", () => showLogin(""));

const fromUrl = new URLSearchParams(location.search).get("token");
if (fromUrl) { state.token = fromUrl; localStorage.setItem("zhijian.token", fromUrl); history.replaceState(null, "", "/"); }
if (state.token) start(); else showLogin("");
