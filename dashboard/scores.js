// The scoreboard: live running scores per agent with a sparkline of the shift, and one agent's day.
import { api, el, node, session } from "./api.js";
import { ruleName, t } from "./i18n.js";
import { openConversation } from "./conversation.js";

let refresh = null;

function sparkline(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "28");
  svg.setAttribute("class", "spark");
  if (points.length) {
    const xs = points.map((p, i) => (points.length === 1 ? 60 : 4 + (112 * i) / (points.length - 1)));
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map((p, i) => `${xs[i].toFixed(1)},${(26 - (24 * (p.mean_score || 0)) / 100).toFixed(1)}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#3e9ef5");
    line.setAttribute("stroke-width", "2");
    svg.append(line);
    points.forEach((p, i) => {  // a dot per hour: one hour alone still shows
      const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
      dot.setAttribute("cx", xs[i].toFixed(1));
      dot.setAttribute("cy", (26 - (24 * (p.mean_score || 0)) / 100).toFixed(1));
      dot.setAttribute("r", "2");
      dot.setAttribute("fill", "#3e9ef5");
      svg.append(dot);
    });
  }
  return svg;
}

async function load() {
  const body = await api("/api/agents");
  el("scoreboard").replaceChildren(...body.agents.map((a) => {
    const tr = node("tr", { attrs: { "data-agent-id": a.agent_id } },
      node("td", { text: a.agent_id }), node("td", { text: a.team_id || "—" }),
      node("td", { className: "num", text: a.mean_score ?? "—" }), node("td", { className: "num", text: a.conversations }),
      node("td", { className: "num", text: a.fatal }),
      node("td", { className: "num", text: a.first_response_mean_s != null ? `${a.first_response_mean_s} s` : "—" }),
      node("td", { className: "num", text: a.reply_rate != null ? `${Math.round(a.reply_rate * 100)}%` : "—" }),
      node("td", {}, sparkline(a.by_hour || [])));
    tr.onclick = () => showAgent(a.agent_id);
    return tr;
  }));
  el("scores-empty").hidden = body.agents.length > 0;
}

async function showAgent(agentId) {
  const a = await api(`/api/agents/${encodeURIComponent(agentId)}`);
  const panel = el("agent-detail");
  const dl = (entries) => node("dl", {}, ...entries.flatMap(([k, v]) => [node("dt", { text: k }), node("dd", { text: v ?? "—" })]));
  const findings = node("ol", { className: "findings" }, ...a.recent_findings.map((f) => {
    const li = node("li", { attrs: { "data-finding-id": f.finding_id, "data-status": f.status } },
      node("a", { className: "link", text: `${ruleName(f.label)} · ${f.matched || f.conversation_id}` }),
      node("span", { className: "rt", text: t(`finding_${f.status}`) }));
    li.querySelector("a").onclick = () => openConversation(f.conversation_id, f.message_id);
    if (session.can("appeal") && f.status === "active") {
      const button = node("button", { className: "small", text: t("appeal"), attrs: { "data-act": "appeal" } });
      button.onclick = async () => {
        const reason = window.prompt(t("appeal_prompt"));
        if (!reason) return;
        try {
          await api(`/api/findings/${encodeURIComponent(f.finding_id)}/appeals`, { method: "POST", body: { reason } });
          showAgent(agentId);
        } catch (err) { window.alert(String(err.message || err)); }
      };
      li.append(button);
    }
    return li;
  }));
  panel.replaceChildren(node("h2", { text: `${t("agent")} ${a.agent_id}` }),
    dl([[t("mean_score"), a.mean_score], [t("conversations"), a.conversations], [t("fatal"), a.fatal],
        [t("first_response_mean"), a.first_response_mean_s != null ? `${a.first_response_mean_s} s` : null],
        [t("reply_rate"), a.reply_rate != null ? `${Math.round(a.reply_rate * 100)}%` : null]]),
    node("h2", { text: t("sections") }), dl(Object.entries(a.sections || {})),
    node("h2", { text: t("labels") }), dl(Object.entries(a.labels || {}).map(([k, v]) => [ruleName(k), v])),
    node("h2", { text: t("recent_findings") }), findings);
  panel.hidden = false;
}

// QA's queue: open appeals, accepted (the finding leaves the score) or rejected with a note.
async function loadAppeals() {
  if (!session.can("decide_appeal")) return;
  const body = await api("/api/appeals?status=open");
  el("appeals-panel").hidden = false;
  el("appeals").replaceChildren(...body.appeals.map((appeal) => {
    const li = node("li", { attrs: { "data-appeal-id": appeal.appeal_id } },
      node("span", { text: `${appeal.agent_id} · ${ruleName(appeal.label)} · ${appeal.matched || ""} — ${appeal.reason}` }));
    for (const accept of [true, false]) {
      const button = node("button", { className: "small", text: t(accept ? "accept" : "reject"),
                                      attrs: { "data-act": accept ? "accept" : "reject" } });
      button.onclick = async () => {
        const note = window.prompt(t("decision_prompt")) || "";
        try {
          await api(`/api/appeals/${encodeURIComponent(appeal.appeal_id)}/decision`, { method: "POST", body: { accept, note } });
          await Promise.all([loadAppeals(), load()]);
        } catch (err) { window.alert(String(err.message || err)); }
      };
      li.append(button);
    }
    return li;
  }));
  el("appeals-empty").hidden = body.appeals.length > 0;
}

function refreshAll() {
  load().catch((err) => console.warn("scoreboard", err));
  loadAppeals().catch((err) => console.warn("appeals", err));
}

export function showScores(visible) {
  clearInterval(refresh);
  if (!visible) return;
  refreshAll();
  refresh = setInterval(refreshAll, 15000);
}
