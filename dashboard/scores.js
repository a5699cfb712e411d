// The scoreboard: live running scores per agent with a sparkline of the shift, one agent's day, and QA's
// queue of open appeals (each opens its conversation at the message, with the score breakdown).
import { api, el, message, node, session } from "./api.js";
import { oneDecimal, percent, seconds } from "./format.js";
import { ruleName, sectionName, t } from "./i18n.js";
import { openConversation } from "./conversation.js";
import { showError } from "./toast.js";
import { ask } from "./ask.js";

// The scoreboard view's state: the agents loaded, the sort, the 15 s refresh while the tab is shown.
const view = { refresh: null, board: [], sortKey: "mean_score", sortDir: -1 /* best mean score first */, wired: false };

function sparkline(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "28");
  svg.setAttribute("class", "spark");
  svg.setAttribute("aria-hidden", "true");
  if (points.length) {
    const xs = points.map((p, i) => (points.length === 1 ? 60 : 4 + (112 * i) / (points.length - 1)));
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map((p, i) => `${xs[i].toFixed(1)},${(26 - (24 * (p.mean_score || 0)) / 100).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#6cb6ff");
    line.setAttribute("stroke-width", "2");
    svg.append(line);
    points.forEach((p, i) => {  // a dot per hour: one hour alone still shows
      const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      dot.setAttribute("cx", xs[i].toFixed(1));
      dot.setAttribute("cy", (26 - (24 * (p.mean_score || 0)) / 100).toFixed(1));
      dot.setAttribute("r", "2");
      dot.setAttribute("fill", "#6cb6ff");
      svg.append(dot);
    });
  }
  return svg;
}


function query() {
  const params = new URLSearchParams();
  if (el("s-date").value) params.set("date", el("s-date").value);
  if (el("s-shift").value) params.set("shift", el("s-shift").value);
  return params.toString() ? `?${params}` : "";
}

function sortedBoard() {
  const value = (a) => a[view.sortKey];
  return [...view.board].sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === y) return String(a.agent_id).localeCompare(String(b.agent_id));
    if (x === null || x === undefined) return 1;  // no figure: last, whichever the direction
    if (y === null || y === undefined) return -1;
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * view.sortDir;
  });
}

function renderBoardTable() {
  for (const th of document.querySelectorAll(".board-table th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === view.sortKey ? (view.sortDir > 0 ? "ascending" : "descending") : "none");
  }
  el("scoreboard").replaceChildren(...sortedBoard().map((a) => {
    const open = node("button", { className: "linkish", text: a.agent_id, attrs: { type: "button" } });
    open.addEventListener("click", () => showAgent(a.agent_id));
    const tr = node("tr", { attrs: { "data-agent-id": a.agent_id } },
      node("td", {}, open), node("td", { text: a.team_id || "—" }),
      node("td", { className: "num", text: oneDecimal(a.mean_score) }), node("td", { className: "num", text: a.conversations }),
      node("td", { className: "num", text: a.fatal }),
      node("td", { className: "num", text: seconds(a.first_response_mean_s) }),
      node("td", { className: "num", text: seconds(a.avg_response_s) }),
      node("td", { className: "num", text: percent(a.reply_rate) }),
      node("td", {}, sparkline(a.by_hour || [])));
    tr.addEventListener("click", (event) => { if (event.target !== open) showAgent(a.agent_id); });
    return tr;
  }));
  el("scores-empty").hidden = view.board.length > 0;
}

async function load() {
  const body = await api(`/api/agents${query()}`);
  el("scores-loading").hidden = true;
  view.board = body.agents;
  renderBoardTable();
}

function wire() {
  if (view.wired) return;
  view.wired = true;
  for (const th of document.querySelectorAll(".board-table th[data-sort]")) {
    th.querySelector("button").addEventListener("click", () => {
      if (view.sortKey === th.dataset.sort) view.sortDir = -view.sortDir;
      else { view.sortKey = th.dataset.sort; view.sortDir = ["agent_id", "team_id", "first_response_mean_s", "avg_response_s"].includes(view.sortKey) ? 1 : -1; }
      renderBoardTable();
    });
  }
  for (const id of ["s-date", "s-shift"]) {
    el(id).addEventListener("change", () => {
      el("scores-loading").hidden = false;
      load().catch((err) => { el("scores-loading").hidden = true; showError(message(err), () => load()); });
    });
  }
}

async function showAgent(agentId) {
  let a;
  try {
    a = await api(`/api/agents/${encodeURIComponent(agentId)}${query()}`);
  } catch (err) {
    showError(message(err), () => showAgent(agentId));
    return;
  }
  const panel = el("agent-detail");
  const dl = (entries) => node("dl", {}, ...entries.flatMap(([k, v]) => [node("dt", { text: k }), node("dd", { text: v ?? "—" })]));
  const findings = node("ol", { className: "findings" }, ...a.recent_findings.map((f) => {
    const link = node("a", { className: "link", text: `${ruleName(f.label)} · ${f.matched || f.conversation_id}`,
                             attrs: { href: `#conversation=${encodeURIComponent(f.conversation_id)}` } });
    link.addEventListener("click", (event) => { event.preventDefault(); openConversation(f.conversation_id, f.message_id); });
    const li = node("li", { attrs: { "data-finding-id": f.finding_id, "data-status": f.status } },
      link, node("span", { className: "rt", text: t(`finding_${f.status}`) }));
    if (session.can("appeal") && f.status === "active") {
      const button = node("button", { className: "small", text: t("appeal"), attrs: { type: "button", "data-act": "appeal" } });
      const appeal = async (answered = null) => {
        const answer = answered || await ask({ title: t("appeal"), ok: t("appeal_submit"),
          message: `${ruleName(f.label)} · ${f.matched || ""}`,
          fields: [{ name: "reason", type: "textarea", label: t("appeal_prompt"), required: true, maxLength: 2000 }] });
        if (answer === null) return;
        try {
          await api(`/api/findings/${encodeURIComponent(f.finding_id)}/appeals`, { method: "POST", body: { reason: answer.reason } });
          showAgent(agentId);
        } catch (err) { showError(t("action_failed", { why: message(err) }), () => appeal(answer)); }
      };
      button.addEventListener("click", () => appeal());
      li.append(button);
    }
    return li;
  }));
  // the agent's conversations running now (live from the worker's snapshots in SQL)
  const live = await Promise.all(["waiting", "open"].map((status) => api(
    `/api/conversations?agent_id=${encodeURIComponent(agentId)}&status=${status}&limit=50`).then((b) => b.conversations)
    .catch(() => [])));
  const chats = live.flat();
  const openList = node("ul", { className: "open-chats", attrs: { "data-agent-id": agentId } }, ...chats.map((c) => {
    const link = node("a", { className: "link", text: c.conversation_id,
                             attrs: { href: `#conversation=${encodeURIComponent(c.conversation_id)}` } });
    link.addEventListener("click", (event) => { event.preventDefault(); openConversation(c.conversation_id); });
    return node("li", { attrs: { "data-conversation-id": c.conversation_id } }, link,
                node("span", { className: "rt", text: ` ${t(`status_${c.status}`)}` }));
  }));
  panel.replaceChildren(node("h2", { text: `${t("agent")} ${a.agent_id}` }),
    node("h2", { text: t("open_chats") }), chats.length ? openList : node("p", { className: "empty", text: t("no_open_chats") }),
    dl([[t("mean_score"), oneDecimal(a.mean_score)], [t("conversations"), a.conversations], [t("fatal"), a.fatal],
        [t("first_response_mean"), seconds(a.first_response_mean_s)], [t("avg_response"), seconds(a.avg_response_s)],
        [t("reply_rate"), percent(a.reply_rate)]]),
    node("h2", { text: t("sections") }),
    dl(Object.entries(a.sections || {}).map(([k, v]) => [sectionName(k), oneDecimal(v)])),
    node("h2", { text: t("labels") }), dl(Object.entries(a.labels || {}).map(([k, v]) => [ruleName(k), v])),
    node("h2", { text: t("recent_findings") }), findings);
  panel.hidden = false;
}

// QA's queue: open appeals, each with its conversation at the message; accepted (the finding leaves the
// score) or rejected with a note.
async function loadAppeals() {
  if (!session.can("decide_appeal")) return;
  const body = await api("/api/appeals?status=open");
  el("appeals-panel").hidden = false;
  el("appeals").replaceChildren(...body.appeals.map((appeal) => {
    const context = node("a", { className: "link", text: t("show_context"),
                                attrs: { href: `#conversation=${encodeURIComponent(appeal.conversation_id)}`,
                                         "data-act": "context" } });
    context.addEventListener("click", (event) => {
      event.preventDefault();
      openConversation(appeal.conversation_id, appeal.message_id);
    });
    const li = node("li", { attrs: { "data-appeal-id": appeal.appeal_id } },
      node("span", { text: `${appeal.agent_id} · ${ruleName(appeal.label)} · ${appeal.matched || ""}` }),
      node("span", { className: "reason", text: `${t("appeal_reason")}：${appeal.reason}` }), context);
    for (const accept of [true, false]) {
      const button = node("button", { className: "small", text: t(accept ? "accept" : "reject"),
                                      attrs: { type: "button", "data-act": accept ? "accept" : "reject" } });
      const decide = async (answered = null) => {
        const answer = answered || await ask({ title: t(accept ? "accept_title" : "reject_title"), ok: t(accept ? "accept" : "reject"),
          message: `${appeal.agent_id} · ${ruleName(appeal.label)}：${appeal.reason}`,
          fields: [{ name: "note", type: "textarea", label: t("decision_prompt"), maxLength: 2000 }] });
        if (answer === null) return;
        try {
          await api(`/api/appeals/${encodeURIComponent(appeal.appeal_id)}/decision`, { method: "POST", body: { accept, note: answer.note } });
          await Promise.all([loadAppeals(), load()]);
        } catch (err) { showError(t("action_failed", { why: message(err) }), () => decide(answer)); }
      };
      button.addEventListener("click", () => decide());
      li.append(button);
    }
    return li;
  }));
  el("appeals-empty").hidden = body.appeals.length > 0;
}

function refreshAll() {
  load().catch((err) => console.warn("scoreboard", message(err)));
  loadAppeals().catch((err) => console.warn("appeals", message(err)));
}

export function showScores(visible) {
  clearInterval(view.refresh);
  if (!visible) return;
  wire();
  if (!el("scoreboard").children.length) el("scores-loading").hidden = false;
  refreshAll();
  view.refresh = setInterval(refreshAll, 15000);
}
